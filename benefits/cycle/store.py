"""The cycle's state and run history in the ledger database, with audit entries.

Every attempt is a ``cycle_attempts`` row, opened when an instance takes the month's lock and
closed with its outcome, stage, duration and reason; closing it updates the month's row and
appends a ``cycle.attempt`` entry to the hash-chained audit log in the same transaction.
An attempt left ``running`` by a process that died is closed as ``interrupted`` by the next
attempt (also audited).

Example:
    >>> store = CycleStore(ledger.db)                                   # doctest: +SKIP
    >>> [(a.number, a.outcome, a.reason) for a in store.attempts("2025-01")]  # doctest: +SKIP
    [(2, 'done', 'draft batch 1 …'), (1, 'waiting', 'missing pensions …')]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from benefits.cycle.lock import Holder
from benefits.cycle.models import (
    DONE,
    INTERRUPTED,
    RUNNING,
    CycleAttempt,
    CycleLock,
    CycleMonth,
)
from benefits.ledger import audit
from benefits.ledger.clock import as_utc
from benefits.ledger.db import Database
from benefits.ledger.models import Batch, RunEntitlement, SweepRun

OBJECT_TYPE = "cycle_month"


@dataclass
class Finish:
    """How an attempt ended: what goes into its row, its month's row and the audit entry."""

    outcome: str
    stage: str | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    month: dict[str, Any] = field(default_factory=dict)
    snapshot: str | None = None
    run_id: int | None = None
    batch_id: int | None = None
    transient: bool | None = None
    extra_audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _seconds(start: dt.datetime, end: dt.datetime) -> float:
    return round((as_utc(end) - as_utc(start)).total_seconds(), 3)


class CycleStore:
    """Reads and writes ``cycle_months`` and ``cycle_attempts`` (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ------------------------------------------------------------------------
    def month(self, month: str) -> CycleMonth | None:
        """The month's row, or None when the cycle never ran it."""
        with self.db.snapshot() as s:
            return s.get(CycleMonth, month)

    def months(self) -> list[CycleMonth]:
        """Every month's row, newest month first."""
        with self.db.snapshot() as s:
            return list(s.execute(select(CycleMonth).order_by(CycleMonth.month.desc())).scalars())

    def attempts(self, month: str | None = None, last: int | None = 50) -> list[CycleAttempt]:
        """Attempts, newest first (optionally of one month)."""
        with self.db.snapshot() as s:
            q = select(CycleAttempt).order_by(CycleAttempt.id.desc())
            if month:
                q = q.where(CycleAttempt.month == month)
            if last:
                q = q.limit(last)
            return list(s.execute(q).scalars())

    def locks(self) -> list[CycleLock]:
        """Locks held now (or left by a dead holder)."""
        with self.db.snapshot() as s:
            return list(s.execute(select(CycleLock).order_by(CycleLock.name)).scalars())

    def batch_of_run(self, run_id: int) -> Batch | None:
        """The newest batch made from ledger run `run_id`, whatever its state."""
        with self.db.snapshot() as s:
            return (
                s.execute(select(Batch).where(Batch.run_id == run_id).order_by(Batch.id.desc()))
                .scalars()
                .first()
            )

    def previous_run(self, month: str) -> tuple[int, int, Any] | None:
        """(run id, payees, pay + credit total) of the run to compare month `month` with.

        The run the cycle finished for that month when there is one, else the newest run of
        that month in the ledger (a month swept by hand).
        """
        with self.db.snapshot() as s:
            row = s.get(CycleMonth, month)
            run_id = row.run_id if row is not None and row.status == DONE else None
            if run_id is None:
                run_id = s.execute(
                    select(SweepRun.id)
                    .where(SweepRun.month == month)
                    .order_by(SweepRun.id.desc())
                    .limit(1)
                ).scalar_one_or_none()
            if run_id is None:
                return None
            run = s.get(SweepRun, run_id)
            assert run is not None
            payees = s.execute(
                select(func.count(func.distinct(RunEntitlement.id_index))).where(
                    RunEntitlement.run_id == run_id
                )
            ).scalar_one()
            return run_id, int(payees), run.payable_total

    # -- writing ------------------------------------------------------------------------
    def begin_attempt(
        self,
        month: str,
        *,
        trigger: str,
        instance: str,
        actor: str,
        now: dt.datetime,
        took_over: Holder | None = None,
    ) -> tuple[CycleAttempt, CycleMonth]:
        """Open an attempt (the caller holds the month's lock); close any left running."""
        with self.db.transaction() as s:
            row = s.get(CycleMonth, month, with_for_update=True)
            if row is None:
                row = CycleMonth(
                    month=month, status=RUNNING, attempts=0, created_at=now, updated_at=now
                )
                s.add(row)
                s.flush()
            dead = list(
                s.execute(
                    select(CycleAttempt).where(
                        CycleAttempt.month == month, CycleAttempt.outcome == RUNNING
                    )
                ).scalars()
            )
            row.attempts += 1
            attempt = CycleAttempt(
                month=month,
                number=row.attempts,
                trigger=trigger,
                instance=instance,
                actor=actor,
                started_at=now,
                outcome=RUNNING,
                stage="start",
            )
            s.add(attempt)
            s.flush()
            row.status, row.last_attempt_id, row.updated_at = RUNNING, attempt.id, now
            for old in dead:
                seen = took_over.heartbeat_at if took_over is not None else now
                end = max(as_utc(seen), as_utc(old.started_at))
                who = took_over.describe() if took_over is not None else old.instance
                old.outcome, old.finished_at = INTERRUPTED, end
                old.duration_seconds = _seconds(old.started_at, end)
                old.reason = (
                    f"interrupted at stage {old.stage}: its process stopped ({who}); "
                    f"attempt {attempt.number} takes over"
                )
            s.flush()
            for old in dead:
                audit.append(
                    s,
                    at=now,
                    actor=actor,
                    action="cycle.attempt",
                    object_type=OBJECT_TYPE,
                    object_id=month,
                    after=self._audit_body(old),
                )
            return attempt, row

    def update_month(self, month: str, now: dt.datetime, **values: Any) -> None:
        """Record progress on the month's row (stage, snapshot, run id, batch id…)."""
        with self.db.transaction() as s:
            row = s.get(CycleMonth, month, with_for_update=True)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now

    def set_attempt_stage(self, attempt_id: int, stage: str) -> None:
        """Note how far the attempt got (shown for an attempt interrupted there)."""
        with self.db.transaction() as s:
            attempt = s.get(CycleAttempt, attempt_id)
            assert attempt is not None
            attempt.stage = stage

    def finish_attempt(
        self, attempt_id: int, finish: Finish, *, now: dt.datetime, duration: float
    ) -> CycleAttempt:
        """Close the attempt, update its month, append the audit entries; one transaction."""
        with self.db.transaction() as s:
            attempt = s.get(CycleAttempt, attempt_id, with_for_update=True)
            assert attempt is not None
            row = s.get(CycleMonth, attempt.month, with_for_update=True)
            assert row is not None
            attempt.outcome, attempt.reason = finish.outcome, finish.reason
            attempt.stage = finish.stage or attempt.stage
            attempt.finished_at, attempt.duration_seconds = now, round(duration, 3)
            attempt.details = finish.details or None
            attempt.snapshot = finish.snapshot or attempt.snapshot
            attempt.run_id = finish.run_id if finish.run_id is not None else row.run_id
            attempt.batch_id = finish.batch_id if finish.batch_id is not None else row.batch_id
            attempt.transient = finish.transient
            for key, value in finish.month.items():
                setattr(row, key, value)
            row.status, row.reason, row.updated_at = finish.outcome, finish.reason, now
            if finish.outcome == DONE:
                row.finished_at = now
            s.flush()
            audit.append(
                s,
                at=now,
                actor=attempt.actor,
                action="cycle.attempt",
                object_type=OBJECT_TYPE,
                object_id=attempt.month,
                after=self._audit_body(attempt),
            )
            for action, body in finish.extra_audit:
                audit.append(
                    s,
                    at=now,
                    actor=attempt.actor,
                    action=action,
                    object_type=OBJECT_TYPE,
                    object_id=attempt.month,
                    after=body,
                )
            return attempt

    @staticmethod
    def _audit_body(attempt: CycleAttempt) -> dict[str, Any]:
        details = attempt.details or {}
        return {
            "attempt": attempt.number,
            "trigger": attempt.trigger,
            "instance": attempt.instance,
            "outcome": attempt.outcome,
            "stage": attempt.stage,
            "reason": attempt.reason,
            "started_at": as_utc(attempt.started_at).isoformat(),
            "duration_seconds": attempt.duration_seconds,
            "snapshot": attempt.snapshot,
            "run_id": attempt.run_id,
            "batch_id": attempt.batch_id,
            "late_tables": details.get("late_tables"),
            "gate": details.get("gate", {}).get("breaches") if details.get("gate") else None,
        }
