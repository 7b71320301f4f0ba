"""The built-in scheduler: APScheduler 3 with its job store in the ledger database.

:func:`start_scheduler` starts a background scheduler whose one cron job
(``benefits-monthly-cycle``, stored in ``cycle_scheduler_jobs``) runs :func:`catch_up` on the
configured crontab, and which runs :func:`catch_up` once at start, so a month missed while the
service was down is run at once. :func:`catch_up` brings every *due* month to done, oldest
first: the current month once its first scheduled time has passed, and each of the previous
``catch_up_months`` months that has a landing folder and is not done yet. Each month goes
through :func:`benefits.cycle.retries.run_with_retries`, so the month lock in the database keeps
two schedulers (two ``benefits serve`` processes, or a scheduler and a cron job) from running
one month twice, and a stopped month is not retried until its delivery changes.

A third job (``benefits-rules-calendar``, in memory) checks every day, and at start, that
each yearly parameter of the rule pack in use has its value for the coming year
(:mod:`benefits.cycle.rulecalendar`), alerting the operators once per parameter and year.

With ``audit_checkpoints`` set, a second job (``benefits-audit-checkpoint``, in memory) signs
the audit chain's head into that file at start and every ``checkpoint_minutes``
(:func:`checkpoint_tick`; see docs/security.md).

Jobs run one at a time in one worker thread; shutting down interrupts a retry's wait.

Example (what ``benefits serve`` does)::

    from benefits.cycle.scheduler import start_scheduler
    from benefits.cycle.settings import load_settings

    scheduler = start_scheduler(load_settings())   # returns at once; jobs run in a thread
    ...
    scheduler.shutdown()                           # waits for a running job to finish
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from benefits.cycle.clock import (
    Clock,
    as_utc,
    current_month,
    first_fire_in_month,
    months_back,
    utc_now,
)
from benefits.cycle.models import DONE, SCHEDULER_JOBS_TABLE
from benefits.cycle.notify import Notifier
from benefits.cycle.outcome import CycleOutcome
from benefits.cycle.retries import run_with_retries
from benefits.cycle.runner import ensure_schema
from benefits.cycle.settings import CycleSettings
from benefits.cycle.store import CycleStore
from benefits.ledger import Ledger

log = logging.getLogger("benefits.cycle")

JOB_ID = "benefits-monthly-cycle"
CATCH_UP_JOB_ID = "benefits-cycle-catch-up"
CHECKPOINT_JOB_ID = "benefits-audit-checkpoint"
CALENDAR_JOB_ID = "benefits-rules-calendar"


def due_months(settings: CycleSettings, now: dt.datetime, store: CycleStore) -> list[str]:
    """Months the cycle should bring to done at `now`, oldest first.

    Example:
        >>> due_months(settings, dt.datetime(2025, 1, 2, 2, tzinfo=dt.UTC), store)  # doctest: +SKIP
        ['2024-12', '2025-01']
    """
    zone = settings.zone
    current = current_month(now, zone)
    due = []
    for month in months_back(current, settings.catch_up_months):
        if settings.first_month and month < settings.first_month:
            continue
        fire = first_fire_in_month(settings.schedule, month, zone)
        if fire is None or fire > as_utc(now):
            continue  # the schedule has not (or never) come round to this month
        if month != current and not (settings.landing_dir / month).is_dir():
            continue  # a past month with no delivery: nothing to catch up
        state = store.month(month)
        if state is not None and state.status == DONE:
            continue
        due.append(month)
    return due


def catch_up(
    settings: CycleSettings,
    *,
    clock: Clock | None = None,
    trigger: str = "catch-up",
    sleep: Any = None,
    notifier: Notifier | None = None,
) -> list[CycleOutcome]:
    """Run every due month (see :func:`due_months`); return what each run did.

    Example:
        >>> [o.status for o in catch_up(settings)]      # doctest: +SKIP
        ['done', 'waiting']
    """
    clock = clock or utc_now
    with Ledger(settings.database_url, clock=clock) as ledger:
        ensure_schema(ledger, settings.actor)
        months = due_months(settings, as_utc(clock()), CycleStore(ledger.db))
    outcomes = []
    for month in months:
        kwargs: dict[str, Any] = {"clock": clock, "trigger": trigger, "notifier": notifier}
        if sleep is not None:
            kwargs["sleep"] = sleep
        outcome = run_with_retries(settings, month, **kwargs)
        log.info("cycle %s (%s): %s", month, trigger, outcome.message)
        outcomes.append(outcome)
    if not months:
        log.info("cycle (%s): no month is due", trigger)
    return outcomes


@dataclass
class _Runtime:
    settings: CycleSettings
    clock: Clock | None
    notifier: Notifier | None
    stop: threading.Event = field(default_factory=threading.Event)
    last: list[CycleOutcome] = field(default_factory=list)
    runs: int = 0
    ledger: Ledger | None = None
    checkpoints: int = 0


# Scheduler runtimes of this process, by database. Jobs stored in the database carry only
# this key (no settings, no password); each process runs them with its own settings.
_RUNTIMES: dict[str, _Runtime] = {}


def _runtime(key: str) -> _Runtime | None:
    runtime = _RUNTIMES.get(key)
    if runtime is None and len(_RUNTIMES) == 1:
        runtime = next(iter(_RUNTIMES.values()))
    return runtime


def scheduled_tick(key: str, trigger: str = "schedule") -> None:
    """The scheduler's job: :func:`catch_up` with this process's settings (never raises)."""
    runtime = _runtime(key)
    if runtime is None:
        log.error("cycle job %s: no scheduler runtime in this process; skipped", key)
        return
    try:
        runtime.last = catch_up(
            runtime.settings,
            clock=runtime.clock,
            trigger=trigger,
            sleep=runtime.stop.wait,
            notifier=runtime.notifier,
        )
    except Exception:
        log.exception("cycle job (%s) failed", trigger)
    finally:
        runtime.runs += 1


def checkpoint_tick(key: str) -> None:
    """The checkpoint job: sign the audit chain's head into ``audit_checkpoints`` (never
    raises: a missing signing key or an unwritable file is logged, the next tick retries)."""
    runtime = _runtime(key)
    if runtime is None or runtime.ledger is None or runtime.settings.audit_checkpoints is None:
        log.error("audit checkpoint job %s: no scheduler runtime in this process; skipped", key)
        return
    path = runtime.settings.audit_checkpoints
    try:
        cp = runtime.ledger.checkpoint(path)
        runtime.checkpoints += 1
        log.info("audit checkpoint: entry %s signed into %s", cp.seq, path)
    except Exception as exc:
        log.error("audit checkpoint into %s failed: %s", path, exc)


def calendar_tick(key: str) -> None:
    """The daily job: alert the admins to a yearly parameter with no value for the coming year
    (:func:`benefits.cycle.rulecalendar.check_yearly`; never raises)."""
    from benefits.cycle.rulecalendar import check_yearly

    runtime = _runtime(key)
    if runtime is None or runtime.ledger is None:
        log.error("rules calendar job %s: no scheduler runtime in this process; skipped", key)
        return
    try:
        notifier = runtime.notifier or Notifier(runtime.settings)
        check_yearly(runtime.settings, runtime.ledger, notifier, (runtime.clock or utc_now)())
    except Exception as exc:
        log.error("rules calendar check failed: %s", exc)


class CycleScheduler(BackgroundScheduler):
    """A background scheduler that owns its ledger connection and runtime.

    ``shutdown()`` interrupts a retry's backoff wait, waits for a running job (by default),
    and closes the database connections.
    """

    ledger: Ledger
    runtime: _Runtime
    key: str

    def shutdown(self, wait: bool = True) -> None:
        self.runtime.stop.set()
        try:
            if self.running:
                super().shutdown(wait=wait)
        finally:
            if _RUNTIMES.get(self.key) is self.runtime:
                del _RUNTIMES[self.key]
            self.ledger.close()

    def next_run(self) -> dt.datetime | None:
        """When the monthly cycle job runs next (None when the scheduler is paused)."""
        job = self.get_job(JOB_ID)
        return None if job is None else job.next_run_time


def start_scheduler(
    settings: CycleSettings,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    catch_up_on_start: bool = True,
) -> CycleScheduler:
    """Start the cycle's scheduler in a background thread and return it (see module doc).

    Example:
        >>> scheduler = start_scheduler(load_settings(), clock=my_clock)   # doctest: +SKIP
        >>> scheduler.next_run()                                          # doctest: +SKIP
        datetime.datetime(2025, 2, 1, 8, 0, tzinfo=zoneinfo.ZoneInfo(key='Asia/Shanghai'))
        >>> scheduler.shutdown()                                          # doctest: +SKIP
    """
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.triggers.cron import CronTrigger

    ledger = Ledger(settings.database_url, clock=clock)
    try:
        ensure_schema(ledger, settings.actor)
        key = ledger.url
        runtime = _Runtime(settings, clock, notifier, ledger=ledger)
        scheduler = CycleScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(
                    engine=ledger.db.engine, tablename=SCHEDULER_JOBS_TABLE
                ),
                "memory": MemoryJobStore(),
            },
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=settings.zone,
        )
        scheduler.ledger, scheduler.runtime, scheduler.key = ledger, runtime, key
        _RUNTIMES[key] = runtime
        scheduler.add_job(
            scheduled_tick,
            CronTrigger.from_crontab(settings.schedule, timezone=settings.zone),
            id=JOB_ID,
            name="benefits monthly cycle",
            kwargs={"key": key},
            replace_existing=True,
        )
        if settings.audit_checkpoints is not None:  # one at start, then every few minutes
            scheduler.add_job(
                checkpoint_tick,
                "interval",
                minutes=settings.checkpoint_minutes,
                id=CHECKPOINT_JOB_ID,
                name="benefits audit checkpoint",
                kwargs={"key": key},
                jobstore="memory",
                replace_existing=True,
                next_run_time=dt.datetime.now(settings.zone),
            )
        scheduler.add_job(  # yearly parameters: at start, then every day
            calendar_tick,
            "interval",
            hours=24,
            id=CALENDAR_JOB_ID,
            name="benefits rules calendar",
            kwargs={"key": key},
            jobstore="memory",
            replace_existing=True,
            next_run_time=dt.datetime.now(settings.zone),
        )
        if catch_up_on_start:
            scheduler.add_job(
                scheduled_tick,
                "date",
                id=CATCH_UP_JOB_ID,
                name="benefits cycle catch-up",
                kwargs={"key": key, "trigger": "catch-up"},
                jobstore="memory",
                replace_existing=True,
            )
        scheduler.start()
    except Exception:
        _RUNTIMES.pop(ledger.url, None)
        ledger.close()
        raise
    log.info(
        "cycle scheduler started: %r in %s, database %s",
        settings.schedule,
        settings.timezone,
        ledger.url,
    )
    return scheduler
