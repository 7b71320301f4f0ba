"""Corrections as new rows: adjustments when a later sweep re-decides a month already paid.

For every person × policy of the month the ledger knows what it has settled — the payment
plus any earlier adjustments (its *net*). A later sweep says what is due. The difference
becomes one new item, linked to what it corrects, with its reason:

- **arrears** (positive) when the amount rose (a standard raised retroactively) or the person
  was found eligible late;
- **recovery** (negative) when the amount fell or the person is no longer entitled, e.g. a
  death or a move reported after payment (the handbook's "payment to the deceased").

Nothing already in the ledger is changed.

Example:
    >>> paid = {("P1", "dibao_allowance", "2025-01"): Settled(
    ...     Decimal("459.00"), 7, "H1", "翠苑一区", "张*明", "6222", "pay")}
    >>> due = Due(9, "P1", "H1", "dibao_allowance", "2025-01", "pay", Decimal("501.00"),
    ...           False, None, "翠苑一区", "张*明", "6222")
    >>> [(a["kind"], a["amount"], a["corrects_item_id"])
    ...  for a in compute_adjustments(paid, {due.key: due}, run_id=2)]
    [('arrears', Decimal('42.00'), 7)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from benefits.ledger.items import Due, item_row
from benefits.ledger.models import ARREARS, PAYMENT, RECOVERY, BatchItem
from benefits.ledger.money import ZERO, format_amount

Key = tuple[str, str, str]  # (id_no, policy_id, month)
SETTLING_KINDS = (PAYMENT, ARREARS, RECOVERY)  # a reissue re-sends money already counted


@dataclass(frozen=True)
class Settled:
    """What the ledger holds for one person × policy × month: the net amount and the item
    an adjustment links to (the payment, else the first arrears item), with its details."""

    net: Decimal
    anchor_item_id: int
    household_no: str
    community: str
    masked_name: str
    account_no: str
    mode: str


def settled_for_month(session: Session, month: str) -> dict[Key, Settled]:
    """Net settled amount per person × policy for `month`, over live (not voided) items.

    Example:
        >>> settled_for_month(session, "2025-01")[("P1", "dibao_allowance", "2025-01")].net
        ...                                                      # doctest: +SKIP
        Decimal('459.00')
    """
    rows = (
        session.connection()
        .execute(
            select(
                BatchItem.id,
                BatchItem.kind,
                BatchItem.id_no,
                BatchItem.policy_id,
                BatchItem.month,
                BatchItem.amount,
                BatchItem.household_no,
                BatchItem.community,
                BatchItem.masked_name,
                BatchItem.account_no,
                BatchItem.mode,
            )
            .where(
                BatchItem.month == month,
                BatchItem.kind.in_(SETTLING_KINDS),
                BatchItem.voided.is_(False),
            )
            .order_by(BatchItem.id)
        )
        .all()
    )
    out: dict[Key, Settled] = {}
    for r in rows:
        key = (r.id_no, r.policy_id, r.month)
        prev = out.get(key)
        if prev is None:
            out[key] = Settled(
                r.amount, r.id, r.household_no, r.community, r.masked_name, r.account_no, r.mode
            )
            continue
        anchor = r.id if r.kind == PAYMENT else prev.anchor_item_id
        out[key] = Settled(
            prev.net + r.amount,
            anchor,
            prev.household_no,
            prev.community,
            prev.masked_name,
            prev.account_no,
            prev.mode,
        )
    return out


def _recovery_due(key: Key, s: Settled) -> Due:
    id_no, policy_id, month = key
    return Due(
        None, id_no, s.household_no, policy_id, month, s.mode, ZERO, False, None,
        s.community, s.masked_name, s.account_no,
    )  # fmt: skip


def compute_adjustments(
    settled: Mapping[Key, Settled], dues: Mapping[Key, Due], run_id: int
) -> list[dict[str, Any]]:
    """Adjustment item rows (arrears and recoveries) bringing each net to what is now due.

    Keys are processed in sorted order, so the same inputs give the same rows.
    """
    rows: list[dict[str, Any]] = []
    for key in sorted(set(settled) | set(dues)):
        paid = settled.get(key)
        due = dues.get(key)
        net = paid.net if paid else ZERO
        target = due.amount if due else ZERO
        delta = target - net
        if delta == 0:
            continue
        month = key[2]
        if delta > 0:
            assert due is not None
            if paid is None or net == 0:
                reason = (
                    f"arrears for {month}: found eligible late by run {run_id} "
                    f"({format_amount(target)} due, {format_amount(net)} paid)"
                )
            else:
                reason = (
                    f"arrears for {month}: run {run_id} gives {format_amount(target)}, "
                    f"{format_amount(net)} was paid (item {paid.anchor_item_id}) — "
                    "e.g. a standard raised retroactively"
                )
            rows.append(
                item_row(
                    due,
                    kind=ARREARS,
                    amount=delta,
                    reason=reason,
                    corrects_item_id=paid.anchor_item_id if paid else None,
                )
            )
            continue
        assert paid is not None
        if due is None:
            reason = (
                f"recovery for {month}: not entitled according to run {run_id} "
                f"(e.g. a death or a move reported after payment); {format_amount(net)} "
                f"was paid (item {paid.anchor_item_id})"
            )
        else:
            reason = (
                f"recovery for {month}: run {run_id} gives {format_amount(target)}, "
                f"{format_amount(net)} was paid (item {paid.anchor_item_id})"
            )
        base = due if due is not None else _recovery_due(key, paid)
        rows.append(
            item_row(
                base,
                kind=RECOVERY,
                amount=delta,
                reason=reason,
                corrects_item_id=paid.anchor_item_id,
            )
        )
    return rows
