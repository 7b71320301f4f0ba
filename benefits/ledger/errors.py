"""Errors the ledger raises. Every message names who, what and why, in words an officer reads.

Example:
    >>> err = IllegalTransition("approve", "bob", "batch 3", "draft", "it has not been submitted")
    >>> str(err)
    'bob cannot approve batch 3: it is draft — it has not been submitted'
"""

from __future__ import annotations

from benefits.errors import BenefitsError


class LedgerError(BenefitsError):
    """Base of every ledger error; the CLI prints it and exits with code 2."""


class NotFound(LedgerError):
    """A run, batch or item id that does not exist."""


class InvalidInput(LedgerError):
    """A sweep folder or bank return file that breaks the data contract (names file and line)."""


class NotInitialised(LedgerError):
    """The database has no ledger tables yet (run `benefits ledger init`)."""


class IllegalTransition(LedgerError):
    """An action the lifecycle or the four-eyes rule does not allow.

    Attributes say who tried what on which object, its state and why not.
    """

    def __init__(self, action: str, who: str, obj: str, state: str, why: str) -> None:
        self.action, self.who, self.obj, self.state, self.why = action, who, obj, state, why
        super().__init__(f"{who} cannot {action} {obj}: it is {state} — {why}")


class FourEyesViolation(IllegalTransition):
    """The person who prepared (created or submitted) a batch tried to approve it."""


class Conflict(LedgerError):
    """A concurrent operation won the race (the database refused a duplicate); retry."""


class NothingToBatch(LedgerError):
    """A run gives no new payment and no adjustment: everything is already in the ledger."""
