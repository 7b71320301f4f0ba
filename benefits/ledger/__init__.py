"""The ledger: payout batches, four-eyes approval, bank files, reconciliation, audit chain.

A sweep only proposes; money moves through the ledger. See ``docs/ledger.md``.

Example:
    >>> from benefits.ledger import Ledger
    >>> ledger = Ledger("sqlite:///benefits.sqlite")      # doctest: +SKIP
    >>> ledger.init()                                      # doctest: +SKIP
"""

from __future__ import annotations

from benefits.ledger.errors import (
    Conflict,
    FourEyesViolation,
    IllegalTransition,
    InvalidInput,
    LedgerError,
    NotFound,
    NothingToBatch,
    NotInitialised,
)
from benefits.ledger.service import Ledger

__all__ = [
    "Conflict",
    "FourEyesViolation",
    "IllegalTransition",
    "InvalidInput",
    "Ledger",
    "LedgerError",
    "NotFound",
    "NotInitialised",
    "NothingToBatch",
]
