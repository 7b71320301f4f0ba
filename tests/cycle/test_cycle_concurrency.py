"""Exactly once: two processes at the same month, a process killed mid-run, lock leases."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import pytest
from cycle_helpers import (
    MutableClock,
    counts,
    cycle_command,
    deliver,
    make_settings,
    spawn,
    write_config,
)
from freezegun import freeze_time

from benefits.cycle.lock import LeaseLock, LockBusy, LockLost
from benefits.cycle.models import CycleLock
from benefits.cycle.runner import PAUSE_ENV, run_cycle
from benefits.cycle.settings import CycleSettings
from benefits.cycle.store import CycleStore
from benefits.ledger import Ledger
from benefits.ledger.faults import ENV as CRASH_ENV

TIMEOUT = 120


def _finish(proc: object) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=TIMEOUT)  # type: ignore[attr-defined]
    return proc.returncode, out  # type: ignore[attr-defined]


def test_same_month_twice_sequentially_and_concurrently_gives_one_run_and_one_batch(
    settings: CycleSettings, ledger: Ledger, deliveries: Path, tmp_path: Path
) -> None:
    deliver(settings, deliveries, "2025-01")
    config = write_config(tmp_path, settings)
    argv = cycle_command(config, settings.database_url or "", "run", "--month", "2025-01")

    # two processes at once; whichever takes the month's lock holds it a moment longer
    first, second = spawn(argv, **{PAUSE_ENV: "3"}), spawn(argv, **{PAUSE_ENV: "3"})
    results = sorted([_finish(first), _finish(second)])
    codes = [code for code, _ in results]
    assert codes == [0, 4], results
    assert "done" in results[0][1] and "being run by another instance" in results[1][1]
    assert counts(ledger, "2025-01") == (1, 1)

    # and again, one after the other
    code, out = _finish(spawn(argv))
    assert code == 0 and "already done" in out, out
    assert counts(ledger, "2025-01") == (1, 1)
    attempts = CycleStore(ledger.db).attempts("2025-01")
    assert [a.outcome for a in attempts] == ["done"]
    assert ledger.verify_audit().ok


@pytest.mark.parametrize("point", ["cycle:swept", "cycle:imported", "cycle:batched"])
def test_a_process_killed_mid_run_recovers(
    point: str, sqlite_url: str, tmp_path: Path, deliveries: Path
) -> None:
    _killed_then_recovered(point, make_settings(tmp_path, sqlite_url), tmp_path, deliveries)


@pytest.mark.postgres
def test_a_process_killed_mid_run_recovers_on_postgresql(
    pg_url: str, tmp_path: Path, deliveries: Path
) -> None:
    _killed_then_recovered("cycle:imported", make_settings(tmp_path, pg_url), tmp_path, deliveries)


def _killed_then_recovered(
    point: str, settings: CycleSettings, tmp_path: Path, deliveries: Path
) -> None:
    deliver(settings, deliveries, "2025-01")
    with Ledger(settings.database_url) as ledger:
        ledger.init()
    config = write_config(tmp_path, settings)
    argv = cycle_command(config, settings.database_url or "", "run", "--month", "2025-01")
    code, out = _finish(spawn(argv, **{CRASH_ENV: point}))
    assert code == -signal.SIGKILL, out

    with Ledger(settings.database_url) as ledger:
        store = CycleStore(ledger.db)
        [dead] = store.attempts("2025-01")
        assert dead.outcome == "running"
        assert [lk.name for lk in store.locks()] == ["month:2025-01"]  # left by the dead process

        # the restart finds the dead holder (same host, no such process), takes over, resumes
        outcome = run_cycle(settings, "2025-01", clock=MutableClock.local(2025, 1, 3, 11, 0))
        assert outcome.status == "done", outcome.message
        assert counts(ledger, "2025-01") == (1, 1)
        dead, done = reversed(store.attempts("2025-01"))
        assert dead.outcome == "interrupted" and "its process stopped" in dead.reason
        assert done.outcome == "done" and done.details["took_over"]["pid"] > 0
        expected = {"cycle:swept": None, "cycle:imported": "sweep", "cycle:batched": "run"}
        assert done.details.get("resumed_from") == expected[point]
        assert store.locks() == []
        assert ledger.verify_audit().ok
        actions = [e.action for e in ledger.audit_entries(last=50)]
        assert actions.count("cycle.attempt") == 2 and actions.count("batch.create") == 1


def test_a_lock_held_elsewhere_waits_for_its_lease_then_is_taken_over(
    sqlite_url: str, tmp_path: Path, deliveries: Path
) -> None:
    """A restart in the middle of a run on another machine: the lease decides, in frozen time."""
    settings = make_settings(tmp_path, sqlite_url, lock_lease_seconds=300)
    deliver(settings, deliveries, "2025-01")
    with Ledger(sqlite_url) as ledger:
        ledger.init()
        store = CycleStore(ledger.db)
        start = dt.datetime(2025, 1, 3, 2, 0, tzinfo=dt.UTC)
        store.begin_attempt(
            "2025-01", trigger="schedule", instance="web-2 pid 77", actor="cycle", now=start
        )
        with ledger.db.transaction() as s:
            s.add(
                CycleLock(
                    name="month:2025-01",
                    holder="x" * 32,
                    host="web-2",
                    pid=77,
                    acquired_at=start,
                    heartbeat_at=start,
                    expires_at=start + dt.timedelta(seconds=300),
                )
            )

    with freeze_time("2025-01-03 02:04:00"):  # lease still running: the other machine works
        busy = run_cycle(settings, "2025-01")
    assert busy.status == "busy" and busy.exit_code == 4 and "web-2 pid 77" in busy.message

    with freeze_time("2025-01-03 02:05:01"):  # web-2 stopped renewing: its lease ran out
        done = run_cycle(settings, "2025-01")
    assert done.status == "done", done.message
    with Ledger(sqlite_url) as ledger:
        old, new = reversed(CycleStore(ledger.db).attempts("2025-01"))
        assert old.outcome == "interrupted" and "web-2 pid 77" in old.reason
        assert new.details["took_over"]["host"] == "web-2"
        assert counts(ledger, "2025-01") == (1, 1)


def test_lease_lock_renews_and_notices_a_takeover(db_url: str) -> None:
    with Ledger(db_url) as ledger:
        ledger.init()
        now = [dt.datetime(2025, 1, 3, 2, 0, tzinfo=dt.UTC)]
        first = LeaseLock(ledger.db, "month:2025-01", lease_seconds=60, now=lambda: now[0])
        assert first.acquire() is None
        with pytest.raises(LockBusy, match="since 2025-01-03 02:00:00"):
            LeaseLock(ledger.db, "month:2025-01", lease_seconds=60, now=lambda: now[0]).acquire()
        first._stop.set()  # stop the heartbeat thread: simulate a hung holder
        now[0] += dt.timedelta(seconds=61)
        second = LeaseLock(ledger.db, "month:2025-01", lease_seconds=60, now=lambda: now[0])
        previous = second.acquire()
        assert previous is not None and previous.holder == first.token
        assert first.renew() is False
        with pytest.raises(LockLost):
            first.check()
        first.release()  # releasing a lock taken over leaves the new holder's row alone
        assert [lk.holder for lk in CycleStore(ledger.db).locks()] == [second.token]
        second.release()
        assert CycleStore(ledger.db).locks() == []
