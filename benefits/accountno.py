"""Bank account numbers (``bank_accounts.account_no``): the one rule, used everywhere.

A bank or 社保卡 account number is 8 to 32 ASCII digits. Ingest quarantines a
``bank_accounts`` row whose ``account_no`` breaks it, the events path dead-letters such an
event, the ledger refuses it when an officer releases a held item with a corrected account
(CLI, page and API alike), and the bank-file export holds — never sends — an item whose
account does not follow it.

Example:
    >>> account_no_problem("6217000000000001") is None
    True
    >>> account_no_problem("6217-0000")
    'an account number has only digits 0-9 (this one has other characters)'
    >>> check_account_no(" 62170000 ")
    '62170000'
"""

from __future__ import annotations

import re

ACCOUNT_NO_MIN = 8
ACCOUNT_NO_MAX = 32
ACCOUNT_NO_PATTERN = rf"^[0-9]{{{ACCOUNT_NO_MIN},{ACCOUNT_NO_MAX}}}$"
ACCOUNT_NO_RULE = f"{ACCOUNT_NO_MIN} to {ACCOUNT_NO_MAX} digits 0-9"

_FULL_WIDTH = re.compile("[０-９]")
_DIGITS = re.compile(r"^[0-9]+$")


def account_no_problem(value: str | None) -> str | None:
    """Why `value` (already trimmed) is not a valid account number, or None when it is."""
    if not value:
        return "the account number is empty"
    if _FULL_WIDTH.search(value):
        return "the account number has full-width digits; type them as 0-9"
    if not _DIGITS.match(value):
        return "an account number has only digits 0-9 (this one has other characters)"
    if not ACCOUNT_NO_MIN <= len(value) <= ACCOUNT_NO_MAX:
        return f"an account number has {ACCOUNT_NO_RULE} (this one has {len(value)})"
    return None


def is_valid_account_no(value: str | None) -> bool:
    """Whether `value` follows the rule exactly (no trimming)."""
    return account_no_problem(value) is None


def check_account_no(value: str) -> str:
    """The trimmed account number, or ValueError saying what is wrong with it."""
    trimmed = (value or "").strip()
    problem = account_no_problem(trimmed)
    if problem:
        raise ValueError(problem)
    return trimmed
