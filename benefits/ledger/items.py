"""Batch item rows: what a sweep entitlement becomes in a batch, and whether it is held.

Example:
    >>> due = Due(1, "330106194501011233", "H1", "old_age_allowance", "2025-01", "pay",
    ...           Decimal("60.00"), False, None, "翠苑一区", "张*明", "")
    >>> row = item_row(due, kind="payment")
    >>> row["status"], row["hold_reason"]
    ('held', 'no bank account number in the sweep output')
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from benefits.accountno import account_no_problem
from benefits.ledger.models import HELD, PENDING, RECOVER, RECOVERY

NO_ACCOUNT = "no bank account number in the sweep output"
BAD_ACCOUNT = "bank account number not valid: {problem}"
SWEEP_HELD = "held by the sweep (no reason given)"

# Every row handed to a bulk insert must carry the same keys (executemany).
ITEM_COLUMNS = (
    "batch_id",
    "kind",
    "id_no",
    "household_no",
    "policy_id",
    "month",
    "mode",
    "amount",
    "status",
    "hold_reason",
    "community",
    "masked_name",
    "account_no",
    "reason",
    "entitlement_id",
    "corrects_item_id",
    "voided",
)


@dataclass(frozen=True)
class Due:
    """What a sweep says is due to one person under one policy for one month."""

    entitlement_id: int | None
    id_no: str
    household_no: str
    policy_id: str
    month: str
    mode: str
    amount: Decimal
    held: bool
    hold_reason: str | None
    community: str
    masked_name: str
    account_no: str

    @property
    def key(self) -> tuple[str, str, str]:
        """(id_no, policy_id, month): the unit paid exactly once."""
        return (self.id_no, self.policy_id, self.month)


def account_hold(account_no: str) -> str | None:
    """Why an item with this account number is held (none, or not valid), or None.

    >>> account_hold(""), account_hold("6222021234567890")
    ('no bank account number in the sweep output', None)
    """
    if not account_no:
        return NO_ACCOUNT
    problem = account_no_problem(account_no)
    return BAD_ACCOUNT.format(problem=problem) if problem else None


def hold_state(held: bool, hold_reason: str | None, account_no: str) -> tuple[str, str | None]:
    """(status, hold_reason) of a positive item: held by the sweep, held for want of an
    account number (or for an account number that is not valid), or pending (goes out with
    the bank file)."""
    if held:
        return HELD, hold_reason or SWEEP_HELD
    problem = account_hold(account_no)
    return (HELD, problem) if problem else (PENDING, None)


def item_row(
    due: Due,
    *,
    kind: str,
    amount: Decimal | None = None,
    reason: str | None = None,
    corrects_item_id: int | None = None,
) -> dict[str, Any]:
    """A complete batch_items row (batch_id filled in later) for `due`."""
    value = due.amount if amount is None else amount
    if kind == RECOVERY:
        status, hold_reason = RECOVER, None
    else:
        status, hold_reason = hold_state(due.held, due.hold_reason, due.account_no)
    return {
        "batch_id": None,
        "kind": kind,
        "id_no": due.id_no,
        "household_no": due.household_no,
        "policy_id": due.policy_id,
        "month": due.month,
        "mode": due.mode,
        "amount": value,
        "status": status,
        "hold_reason": hold_reason,
        "community": due.community,
        "masked_name": due.masked_name,
        "account_no": due.account_no,
        "reason": reason,
        "entitlement_id": due.entitlement_id,
        "corrects_item_id": corrects_item_id,
        "voided": False,
    }
