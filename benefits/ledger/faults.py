"""Fault injection for crash tests: kill the process at a named point, as a power cut would.

Set ``BENEFITS_LEDGER_CRASHPOINT`` to a point's name (e.g. ``export:file_written``) and the
process sends itself SIGKILL when it gets there: no cleanup, no rollback in Python, no
``finally``. ``<point>:<n>`` dies the n-th time the point is reached (``bulk:rows:3``: after
the third chunk of rows written by one process). Points sit at the phase boundaries of every
ledger write (see ``POINTS``); with the variable unset, :func:`crashpoint` does nothing.

Example:
    >>> crashpoint("export:file_written")   # no variable set: returns None
    >>> _target("bulk:rows:3"), _target("export:db_mid")
    (('bulk:rows', 3), ('export:db_mid', 1))
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "BENEFITS_LEDGER_CRASHPOINT"
POINTS = (
    "import:run_added",  # run row inserted inside the open transaction, no entitlement yet
    "import:db_mid",  # entitlements and audit entry written, transaction not committed
    "import:committed",  # run committed, the command has not answered yet
    "create:batch_claimed",  # draft batch row inserted (month claimed), no item yet
    "create:db_mid",  # items and audit entry written, transaction not committed
    "create:committed",  # batch committed, the command has not answered yet
    "bulk:rows",  # after each chunk of BULK_CHUNK rows of a bulk insert (import, create)
    "export:file_written",  # temp file written, not yet renamed, nothing in the database
    "export:file_renamed",  # bank file in place, database transaction not committed
    "export:db_mid",  # items marked sent inside the open transaction, batch not yet exported
    "export:committed",  # export committed, the command has not answered yet
    "reconcile:db_mid",  # return lines applied inside the open transaction, not committed
    "reconcile:committed",  # return file committed, the command has not answered yet
    "rotate:batch",  # after each committed batch of `benefits keys rotate`
)
_reached: Counter[str] = Counter()


def _target(value: str) -> tuple[str, int]:
    """(point, n) of a ``point`` or ``point:n`` setting."""
    name, _, count = value.rpartition(":")
    if name and count.isdigit():
        return name, int(count)
    return value, 1


def crashpoint(name: str) -> None:
    """Die here with SIGKILL when ``$BENEFITS_LEDGER_CRASHPOINT`` names this point (and this
    is the n-th time it is reached, for ``point:n``)."""
    value = os.environ.get(ENV)
    if not value:
        return
    point, n = _target(value)
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == n:
        os.kill(os.getpid(), signal.SIGKILL)
