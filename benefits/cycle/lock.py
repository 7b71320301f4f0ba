"""Lease locks in the ledger database: one instance works on a month at a time.

A lock is a row of ``cycle_locks`` (``month:2025-01``) naming its holder (a random token,
host and process id) and when the lease expires. Taking it is one transaction that reads the
row with ``SELECT … FOR UPDATE`` on PostgreSQL — on SQLite the ledger's ``BEGIN IMMEDIATE``
holds the database's write lock — so of two instances exactly one gets it; a unique key on the
name settles two first inserts. The holder renews the lease from a background thread. A lock
whose lease ran out, or whose holder is a dead process on this host, is taken over (the
caller learns who held it, to record the interrupted attempt). The holder checks that it
still holds the lock between stages (:meth:`LeaseLock.check`).

Example:
    >>> with LeaseLock(db, "month:2025-01", lease_seconds=300) as previous:   # doctest: +SKIP
    ...     ...   # work; `previous` is the dead holder taken over, or None
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from benefits.cycle.models import CycleLock
from benefits.ledger.clock import as_utc
from benefits.ledger.db import Database

log = logging.getLogger("benefits.cycle")

HOST = socket.gethostname()[:128]


class LockBusy(Exception):
    """Another live instance holds the lock."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        super().__init__(f"held by {holder.describe()}")


class LockLost(Exception):
    """The lease ran out and another instance took the lock over (this one must stop)."""


def wall_now() -> dt.datetime:
    """The wall clock (UTC) that leases are measured with (freezegun moves it)."""
    return dt.datetime.now(dt.UTC)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host.

    >>> pid_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock."""

    holder: str
    host: str
    pid: int
    acquired_at: dt.datetime
    heartbeat_at: dt.datetime
    expires_at: dt.datetime

    @classmethod
    def of(cls, row: CycleLock) -> Holder:
        return cls(
            row.holder,
            row.host,
            row.pid,
            as_utc(row.acquired_at),
            as_utc(row.heartbeat_at),
            as_utc(row.expires_at),
        )

    def describe(self) -> str:
        """e.g. 'web-1 pid 4242 since 2025-01-02 08:00:01 UTC'."""
        return (
            f"{self.host} pid {self.pid} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(last seen {self.heartbeat_at:%H:%M:%S})"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for the run history."""
        return {
            "host": self.host,
            "pid": self.pid,
            "acquired_at": self.acquired_at.isoformat(),
            "heartbeat_at": self.heartbeat_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def is_stale(holder: Holder, now: dt.datetime, host: str = HOST) -> bool:
    """A lease that ran out, or a holder process on this host that no longer exists."""
    if holder.expires_at <= now:
        return True
    return holder.host == host and not pid_alive(holder.pid)


class LeaseLock:
    """A named lease lock in the ledger database (see the module's docstring).

    Args:
        db: the ledger database.
        name: the lock's name, e.g. ``month:2025-01``.
        lease_seconds: how long the lock holds without renewal; renewed every quarter of it.
        now: the wall clock (injectable).
    """

    def __init__(
        self, db: Database, name: str, lease_seconds: float = 300, *, now: Any = wall_now
    ) -> None:
        self.db = db
        self.name = name
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.now = now
        self.token = uuid.uuid4().hex
        self.host = HOST
        self.pid = os.getpid()
        self.held = False
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- taking and giving back ---------------------------------------------------------
    def acquire(self) -> Holder | None:
        """Take the lock; return the stale holder taken over (or None); raise LockBusy."""
        for _ in range(5):
            try:
                previous = self._try_acquire()
            except IntegrityError:
                continue  # another instance inserted the row first: read it again
            self.held = True
            self._start_heartbeat()
            return previous
        raise LockBusy(self._current() or self._me())  # pragma: no cover - needs 5 lost races

    def _me(self) -> Holder:
        now = as_utc(self.now())
        return Holder(self.token, self.host, self.pid, now, now, now + self.lease)

    def _current(self) -> Holder | None:
        with self.db.snapshot() as s:
            row = s.get(CycleLock, self.name)
            return None if row is None else Holder.of(row)

    def _try_acquire(self) -> Holder | None:
        with self.db.transaction() as s:
            row = s.get(CycleLock, self.name, with_for_update=True)
            now = as_utc(self.now())
            expires = now + self.lease
            if row is None:
                s.add(
                    CycleLock(
                        name=self.name,
                        holder=self.token,
                        host=self.host,
                        pid=self.pid,
                        acquired_at=now,
                        heartbeat_at=now,
                        expires_at=expires,
                    )
                )
                s.flush()
                return None
            current = Holder.of(row)
            if not is_stale(current, now, self.host):
                raise LockBusy(current)
            log.warning("taking over lock %s from %s (stale)", self.name, current.describe())
            row.holder, row.host, row.pid = self.token, self.host, self.pid
            row.acquired_at, row.heartbeat_at, row.expires_at = now, now, expires
            s.flush()
            return current

    def release(self) -> None:
        """Stop renewing and delete the lock row if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if not self.held:
            return
        self.held = False
        try:
            with self.db.transaction() as s:
                s.execute(
                    delete(CycleLock).where(
                        CycleLock.name == self.name, CycleLock.holder == self.token
                    )
                )
        except Exception:  # the lease runs out by itself; never hide the caller's error
            log.exception("could not release lock %s (its lease will expire)", self.name)

    def __enter__(self) -> Holder | None:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- while holding ------------------------------------------------------------------
    def renew(self) -> bool:
        """Extend the lease now; False when the lock is no longer ours."""
        now = as_utc(self.now())
        with self.db.transaction() as s:
            moved = s.execute(
                update(CycleLock)
                .where(CycleLock.name == self.name, CycleLock.holder == self.token)
                .values(heartbeat_at=now, expires_at=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            ok = moved.rowcount == 1  # type: ignore[attr-defined]
        if not ok:
            self._lost.set()
        return ok

    def check(self) -> None:
        """Raise LockLost when another instance took the lock over."""
        if self._lost.is_set():
            raise LockLost(
                f"lock {self.name} was taken over by another instance (lease expired); "
                "stopping this attempt"
            )

    def _start_heartbeat(self) -> None:
        interval = max(min(self.lease.total_seconds() / 4, 60.0), 0.05)
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.renew():
                        log.error("lost lock %s: another instance took it over", self.name)
                        return
                except Exception:  # a database hiccup: try again at the next beat
                    log.warning("could not renew lock %s; retrying", self.name, exc_info=True)

        self._thread = threading.Thread(target=beat, name=f"lease {self.name}", daemon=True)
        self._thread.start()
