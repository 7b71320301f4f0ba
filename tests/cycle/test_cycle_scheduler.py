"""The built-in scheduler: due months, catch-up on start, job state in the database, signals."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from pathlib import Path

import pytest
from cycle_helpers import ZONE, MutableClock, counts, cycle_command, deliver, spawn, write_config
from freezegun import freeze_time
from sqlalchemy import select

from benefits.cycle.clock import fire_times, first_fire_in_month
from benefits.cycle.models import scheduler_jobs
from benefits.cycle.runner import PAUSE_ENV
from benefits.cycle.scheduler import JOB_ID, catch_up, due_months, start_scheduler
from benefits.cycle.settings import CycleSettings
from benefits.cycle.store import CycleStore
from benefits.ledger import Ledger


def test_schedule_fire_times_across_the_month_boundary() -> None:
    schedule = "0 8-20 1-10 * *"
    with freeze_time("2025-01-31 15:59:00"):  # 23:59 on 31 January in Hangzhou
        from benefits.cycle.clock import utc_now

        [first, second] = fire_times(schedule, ZONE, utc_now(), 2)
    assert first == dt.datetime(2025, 2, 1, 8, 0, tzinfo=ZONE)
    assert second == dt.datetime(2025, 2, 1, 9, 0, tzinfo=ZONE)
    assert first_fire_in_month(schedule, "2025-02", ZONE) == first
    assert first_fire_in_month("0 8 31 * *", "2025-02", ZONE) is None  # never in February


def test_due_months(settings: CycleSettings, ledger: Ledger) -> None:
    for month in ("2024-10", "2024-11", "2024-12"):
        (Path(settings.landing_dir) / month).mkdir(parents=True)
    store = CycleStore(ledger.db)
    morning = dt.datetime(2025, 1, 2, 9, 30, tzinfo=ZONE)
    # 2024-10 is outside the two-month window; 2025-01 has no folder but is the current month
    assert due_months(settings, morning, store) == ["2024-11", "2024-12", "2025-01"]
    # before the month's first scheduled time (1 January 08:00) the current month is not due
    early = dt.datetime(2025, 1, 1, 7, 59, tzinfo=ZONE)
    assert due_months(settings, early, store) == ["2024-11", "2024-12"]
    later = settings.model_copy(update={"first_month": "2024-12"})
    assert due_months(later, morning, store) == ["2024-12", "2025-01"]


def test_missed_month_is_caught_up_on_start(
    settings: CycleSettings, ledger: Ledger, deliveries: Path
) -> None:
    """The service was down over the turn of the year: at start it runs December at once."""
    deliver(settings, deliveries, "2024-12")
    clock = MutableClock.local(2025, 1, 2, 9, 30)
    scheduler = start_scheduler(settings, clock=clock)
    try:
        deadline = time.monotonic() + 60
        while scheduler.runtime.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.runtime.runs == 1
        outcomes = {o.month: o.status for o in scheduler.runtime.last}
        assert outcomes == {"2024-12": "done", "2025-01": "waiting"}
        assert scheduler.next_run() is not None
        with ledger.db.engine.connect() as conn:
            ids = list(conn.execute(select(scheduler_jobs.c.id)).scalars())
        assert ids == [JOB_ID]  # the cron job's state lives in the ledger database
    finally:
        scheduler.shutdown()
    assert counts(ledger, "2024-12") == (1, 1)
    [attempt] = CycleStore(ledger.db).attempts("2024-12")
    assert attempt.trigger == "catch-up" and attempt.outcome == "done"


def test_two_schedulers_ticking_at_once_run_a_month_once(
    settings: CycleSettings, ledger: Ledger, deliveries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(settings, deliveries, "2025-01")
    monkeypatch.setenv(PAUSE_ENV, "1")
    clock = MutableClock.local(2025, 1, 3, 10, 0)
    results: dict[str, list[str]] = {}

    def tick(name: str) -> None:
        outcomes = catch_up(settings, clock=clock, trigger="schedule")
        results[name] = [o.status for o in outcomes]

    threads = [threading.Thread(target=tick, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results.values()) == [["busy"], ["done"]]
    assert counts(ledger, "2025-01") == (1, 1)


def test_scheduler_command_starts_and_stops_on_sigterm(sqlite_url: str, tmp_path: Path) -> None:
    from cycle_helpers import make_settings

    settings = make_settings(tmp_path, sqlite_url, first_month="2100-01")  # nothing is due
    with Ledger(sqlite_url) as ledger:
        ledger.init()
    config = write_config(tmp_path, settings)
    proc = spawn(cycle_command(config, sqlite_url, "scheduler"))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("no month is due" in x for x in lines):
            time.sleep(0.1)
        with Ledger(sqlite_url) as ledger, ledger.db.engine.connect() as conn:
            assert list(conn.execute(select(scheduler_jobs.c.id)).scalars()) == [JOB_ID]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "cycle scheduler running" in out and "cycle scheduler stopped" in out
    assert "no month is due" in out


def test_the_scheduler_signs_audit_checkpoints(
    settings: CycleSettings, ledger: Ledger, tmp_path: Path
) -> None:
    """With audit_checkpoints set, a checkpoint is signed at start and on each interval;
    an auditor's check of the file against the chain then passes."""
    path = tmp_path / "checkpoints" / "audit.jsonl"
    path.parent.mkdir()
    configured = settings.model_copy(update={"audit_checkpoints": path,
                                             "checkpoint_minutes": 0.01})  # fmt: skip
    scheduler = start_scheduler(configured, catch_up_on_start=False)
    try:
        deadline = time.monotonic() + 30
        while scheduler.runtime.checkpoints < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.runtime.checkpoints >= 2  # at start, then after the interval
        with ledger.db.engine.connect() as conn:  # the job is not stored in the database
            assert list(conn.execute(select(scheduler_jobs.c.id)).scalars()) == [JOB_ID]
    finally:
        scheduler.shutdown()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert sum('"type": "checkpoint"' in line or '"type":"checkpoint"' in line
               for line in lines) >= 2  # fmt: skip
    assert ledger.verify_checkpoints(path) == []


def test_no_checkpoint_job_without_a_file(settings: CycleSettings, ledger: Ledger) -> None:
    scheduler = start_scheduler(settings, catch_up_on_start=False)
    try:
        assert scheduler.get_job("benefits-audit-checkpoint") is None
    finally:
        scheduler.shutdown()
