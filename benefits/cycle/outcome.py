"""What a cycle attempt ends with: the outcome and its exit code, and whether a failure is
transient (a retry may cure it)."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from benefits.cycle.lock import LockBusy, LockLost
from benefits.cycle.models import DONE, FAILED, GATED, WAITING
from benefits.cycle.snapshot import SnapshotChanged
from benefits.ledger import Conflict

# Outcomes that are not recorded as attempts.
ALREADY, BUSY = "already", "busy"
EXIT_CODES = {DONE: 0, ALREADY: 0, FAILED: 2, WAITING: 3, BUSY: 4, GATED: 5}


@dataclass
class CycleOutcome:
    """What a call to :func:`benefits.cycle.runner.run_cycle` did.

    ``status`` is ``done``, ``already`` (finished before), ``busy`` (another instance runs
    it), ``waiting`` (delivery incomplete before the deadline), ``gated`` (stopped for a
    human) or ``failed``; ``exit_code`` maps it for the command line.
    """

    month: str
    status: str
    message: str
    attempt: int | None = None
    run_id: int | None = None
    batch_id: int | None = None
    late_tables: list[str] = field(default_factory=list)
    transient: bool = False

    @property
    def exit_code(self) -> int:
        """0 done/already, 2 failed, 3 waiting, 4 busy, 5 gated."""
        return EXIT_CODES[self.status]


def is_transient(exc: BaseException) -> bool:
    """Whether a retry may cure the failure: database unreachable, lost lock, I/O trouble.

    >>> is_transient(TimeoutError()), is_transient(ValueError())
    (True, False)
    """
    from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | DisconnectionError | PoolTimeout):
        return True
    if isinstance(exc, LockLost | LockBusy | Conflict | SnapshotChanged):
        return True
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    if isinstance(exc, OSError):
        transient = (errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ENOSPC, errno.ESTALE)
        return exc.errno in transient
    return False


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
