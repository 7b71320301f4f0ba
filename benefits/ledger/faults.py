"""Fault injection for crash tests: kill the process at a named point, as a power cut would.

Set ``BENEFITS_LEDGER_CRASHPOINT`` to a point's name (e.g. ``export:file_written``) and the
process sends itself SIGKILL when it gets there: no cleanup, no rollback in Python, no
``finally``. Points exist only at phase boundaries of export and reconciliation (see
``POINTS``); with the variable unset, :func:`crashpoint` does nothing.

Example:
    >>> crashpoint("export:file_written")   # no variable set: returns None
"""

from __future__ import annotations

import os
import signal

ENV = "BENEFITS_LEDGER_CRASHPOINT"
POINTS = (
    "export:file_written",  # temp file written, not yet renamed, nothing in the database
    "export:file_renamed",  # bank file in place, database transaction not committed
    "export:db_mid",  # items marked sent inside the open transaction, batch not yet exported
    "reconcile:db_mid",  # return lines applied inside the open transaction, not committed
)


def crashpoint(name: str) -> None:
    """Die here with SIGKILL when ``$BENEFITS_LEDGER_CRASHPOINT`` names this point."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
