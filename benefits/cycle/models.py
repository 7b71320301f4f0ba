"""The cycle's tables in the ledger database: months, attempts, locks, scheduler jobs.

They are declared on the ledger's metadata (``benefits.ledger.models.Base``) so that the
ledger's migrations-match-models check and Alembic autogenerate see them; the migration
``0003_cycle`` creates them and imports this module to register them.

- ``cycle_months``: one row per benefit month — where its cycle stands (``waiting``,
  ``running``, ``gated``, ``failed``, ``done``), the snapshot it used, the ledger run and
  batch it made, the reason it stopped.
- ``cycle_attempts``: the run history — every attempt with trigger, instance, outcome,
  stage reached, duration and reason.
- ``cycle_locks``: lease locks (one row per held lock, e.g. ``month:2025-01``) so that two
  instances never work on one month at the same time.
- ``cycle_scheduler_jobs``: APScheduler's job store (its own layout, created here so the
  schema has one owner).

Example:
    >>> sorted(t for t in Base.metadata.tables if t.startswith("cycle_"))
    ['cycle_attempts', 'cycle_locks', 'cycle_months', 'cycle_scheduler_jobs']
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from benefits.ledger.models import Base

# Month states.
WAITING, RUNNING, GATED, FAILED, DONE = "waiting", "running", "gated", "failed", "done"
MONTH_STATUSES = (WAITING, RUNNING, GATED, FAILED, DONE)
# Attempt outcomes: a month state, or `interrupted` (its process died mid-run).
INTERRUPTED = "interrupted"
OUTCOMES = (RUNNING, WAITING, GATED, FAILED, DONE, INTERRUPTED)

SCHEDULER_JOBS_TABLE = "cycle_scheduler_jobs"


class CycleMonth(Base):
    """Where the cycle of one benefit month stands (one row per month)."""

    __tablename__ = "cycle_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(16))
    snapshot: Mapped[str | None] = mapped_column(String(64))
    sweep_out: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sweep_runs.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    late_tables: Mapped[list[str] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    stop_snapshot: Mapped[str | None] = mapped_column(String(64))
    stop_transient: Mapped[bool | None]
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    last_attempt_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]


class CycleAttempt(Base):
    """One attempt at a month's cycle: who/what started it, how far it got, how it ended."""

    __tablename__ = "cycle_attempts"
    __table_args__ = (
        UniqueConstraint("month", "number"),
        Index("ix_cycle_attempts_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    instance: Mapped[str] = mapped_column(String(160))
    actor: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[int | None] = mapped_column(Integer)
    transient: Mapped[bool | None]
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CycleLock(Base):
    """A held lease lock; the holder renews `expires_at` while it works, deletes it when done."""

    __tablename__ = "cycle_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[dt.datetime]
    heartbeat_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


# APScheduler 3's SQLAlchemyJobStore layout (it creates the table only when it is missing).
scheduler_jobs = Table(
    SCHEDULER_JOBS_TABLE,
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
