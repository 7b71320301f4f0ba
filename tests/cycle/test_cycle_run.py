"""The cycle as one unit of work: landing folder → snapshot → sweep → run → draft batch → alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cycle_helpers import MutableClock, corrupt_ids, counts, deliver, make_settings
from freezegun import freeze_time
from sqlalchemy.exc import OperationalError

from benefits.cycle import stages
from benefits.cycle.retries import run_with_retries
from benefits.cycle.runner import run_cycle
from benefits.cycle.settings import CycleSettings
from benefits.cycle.store import CycleStore
from benefits.ledger import Ledger

CALLS: list[dict[str, Any]] = []


def record_hook(payload: dict[str, Any]) -> None:
    """A Python hook the settings name as ``test_cycle_run:record_hook``."""
    CALLS.append(payload)


HOOK = "test_cycle_run:record_hook"


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


def _events() -> list[str]:
    return [c.get("event", "publication") for c in CALLS]


def test_full_cycle_from_landing_folder_to_draft_batch(
    settings: CycleSettings, ledger: Ledger, clock: MutableClock, deliveries: Path
) -> None:
    settings = settings.model_copy(update={"alert_hook": HOOK, "publish_hook": HOOK})
    deliver(settings, deliveries, "2025-01")

    outcome = run_cycle(settings, "auto", clock=clock, ledger=ledger)

    assert outcome.status == "done", outcome.message
    assert outcome.exit_code == 0
    assert outcome.month == "2025-01"  # 'auto' by the Hangzhou calendar
    assert counts(ledger, "2025-01") == (1, 1)
    [batch] = ledger.batches("2025-01")
    assert batch.status == "draft" and batch.created_by == "cycle"
    assert batch.run_id == outcome.run_id and batch.id == outcome.batch_id
    assert f"draft batch {batch.id}" in outcome.message

    # the run records the snapshot's file hashes; the snapshot is content-addressed
    [run] = ledger.runs("2025-01")
    store = CycleStore(ledger.db)
    month = store.month("2025-01")
    assert month is not None and month.status == "done" and month.stage == "published"
    snap = Path(settings.store_dir) / "snapshots" / month.snapshot
    manifest = json.loads((snap / "manifest.json").read_text(encoding="utf-8"))
    assert run.inputs["persons"]["sha256"] == manifest["files"]["persons.csv"]["sha256"]
    assert (snap / "persons.csv").stat().st_mode & 0o222 == 0  # read-only
    assert run.started_by == "cycle"

    # alerts published to the outbox and handed to the publish hook
    outbox = Path(settings.store_dir) / "outbox" / "2025-01"
    publication = json.loads((outbox / "publication.json").read_text(encoding="utf-8"))
    assert publication["run_id"] == run.id and publication["batch_id"] == batch.id
    assert publication["alerts"] > 0
    assert (outbox / "alerts.csv").read_bytes() == (
        Path(month.sweep_out) / "alerts.csv"
    ).read_bytes()
    assert _events() == ["publication"]

    # history and audit
    [attempt] = store.attempts("2025-01")
    assert (attempt.outcome, attempt.trigger, attempt.number) == ("done", "cli", 1)
    assert attempt.duration_seconds is not None and attempt.run_id == run.id
    actions = [e.action for e in ledger.audit_entries(last=3)]
    assert actions == ["run.import", "batch.create", "cycle.attempt"]
    assert ledger.verify_audit().ok

    # the same month again does nothing, and says so
    again = run_cycle(settings, "2025-01", clock=clock, ledger=ledger)
    assert again.status == "already" and again.exit_code == 0
    assert "already done" in again.message and "nothing to do" in again.message
    assert counts(ledger, "2025-01") == (1, 1)
    assert len(store.attempts("2025-01")) == 1


def test_auto_month_follows_the_calendar_across_the_month_boundary(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    # 2025-01-31 23:30 in Hangzhou is still January; 00:30 on 1 February is February,
    # although UTC is still on 31 January.
    with freeze_time("2025-01-31 15:30:00"):
        assert run_cycle(settings, "auto").month == "2025-01"
    with freeze_time("2025-01-31 16:30:00"):
        outcome = run_cycle(settings, "auto")
    assert outcome.month == "2025-02"
    assert outcome.status == "waiting"
    assert "no delivery" in outcome.message and "2025-02-04 12:00" in outcome.message


def test_incomplete_delivery_waits_then_proceeds_after_the_deadline(
    settings: CycleSettings, ledger: Ledger, clock: MutableClock, deliveries: Path
) -> None:
    settings = settings.model_copy(update={"alert_hook": HOOK})
    deliver(settings, deliveries, "2025-01", skip=("pensions",))

    waiting = run_cycle(settings, "2025-01", clock=clock, ledger=ledger)
    assert waiting.status == "waiting" and waiting.exit_code == 3
    assert "missing pensions" in waiting.message and "deadline 2025-01-04 12:00" in waiting.message
    assert counts(ledger, "2025-01") == (0, 0)

    clock.set_local(2025, 1, 4, 11, 59)
    assert run_cycle(settings, "2025-01", clock=clock, ledger=ledger).status == "waiting"
    assert _events() == []  # waiting is not an operator alert

    clock.set_local(2025, 1, 4, 12, 0)  # the deadline
    done = run_cycle(settings, "2025-01", clock=clock, ledger=ledger)
    assert done.status == "done", done.message
    assert done.late_tables == ["pensions"]
    assert "proceeded without late table(s) pensions" in done.message
    assert counts(ledger, "2025-01") == (1, 1)
    assert _events() == ["cycle.late"]

    store = CycleStore(ledger.db)
    attempts = store.attempts("2025-01")
    assert [a.outcome for a in reversed(attempts)] == ["waiting", "waiting", "done"]
    assert attempts[0].details["late_tables"] == ["pensions"]
    summary = json.loads((Path(store.month("2025-01").sweep_out) / "summary.json").read_text())
    assert summary["cycle"]["late_tables"] == ["pensions"]
    assert summary["tables"]["pensions"]["read"] == 0  # treated as empty, reported

    # the late table arriving afterwards changes nothing: the month is done
    deliver(settings, deliveries, "2025-01", only=("pensions",))
    assert run_cycle(settings, "2025-01", clock=clock, ledger=ledger).status == "already"


def test_required_table_missing_after_the_deadline_stops(
    sqlite_url: str, tmp_path: Path, deliveries: Path
) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    deliver(settings, deliveries, "2025-01", skip=("persons",))
    clock = MutableClock.local(2025, 1, 5, 9, 0)
    outcome = run_cycle(settings, "2025-01", clock=clock)
    assert outcome.status == "gated" and outcome.exit_code == 5
    assert "required table(s) persons missing" in outcome.message
    # unchanged delivery: stays stopped without a new attempt
    again = run_cycle(settings, "2025-01", clock=clock)
    assert again.status == "gated" and "nothing changed" in again.message
    with Ledger(sqlite_url) as ledger:
        assert len(CycleStore(ledger.db).attempts("2025-01")) == 1
    # the department delivers persons: the next run proceeds
    deliver(settings, deliveries, "2025-01", only=("persons",))
    assert run_cycle(settings, "2025-01", clock=clock).status == "done"


def test_twenty_percent_bad_rows_in_one_table_stop_the_gate(
    settings: CycleSettings, ledger: Ledger, clock: MutableClock, deliveries: Path
) -> None:
    settings = settings.model_copy(update={"alert_hook": HOOK})
    folder = deliver(settings, deliveries, "2025-01")
    broken = corrupt_ids(folder / "bank_accounts.csv", 0.2)
    assert broken > 50

    gated = run_cycle(settings, "2025-01", clock=clock, ledger=ledger)
    assert gated.status == "gated" and gated.exit_code == 5
    assert "bank_accounts quarantined" in gated.message and "limit 5.0%" in gated.message
    assert counts(ledger, "2025-01") == (0, 0)  # a broken export is not a batch
    assert _events() == ["cycle.gated"]
    store = CycleStore(ledger.db)
    [attempt] = store.attempts("2025-01")
    assert attempt.outcome == "gated" and attempt.stage == "gate"
    rate = attempt.details["gate"]["metrics"]["tables"]["bank_accounts"]["rate"]
    assert 0.19 < rate < 0.21

    # again without a change: still stopped, no new attempt, no second alert
    again = run_cycle(settings, "2025-01", clock=clock, ledger=ledger)
    assert again.status == "gated" and "nothing changed" in again.message
    assert len(store.attempts("2025-01")) == 1 and _events() == ["cycle.gated"]

    # a human accepts this delivery
    accepted = run_cycle(
        settings,
        "2025-01",
        clock=clock,
        ledger=ledger,
        by="alice",
        accept_gate="bank confirmed: accounts re-keyed, resent next month",
    )
    assert accepted.status == "done", accepted.message
    assert counts(ledger, "2025-01") == (1, 1)
    assert ledger.batches("2025-01")[0].created_by == "alice"
    entries = [e for e in ledger.audit_entries(last=20) if e.action == "cycle.gate.accept"]
    assert len(entries) == 1 and entries[0].actor == "alice"
    assert "bank confirmed" in entries[0].content


def test_payee_and_amount_change_against_last_month_stop_the_gate(
    sqlite_url: str, tmp_path: Path, deliveries: Path
) -> None:
    settings = make_settings(tmp_path, sqlite_url, max_payee_change=0.5, max_amount_change=0.01)
    deliver(settings, deliveries, "2024-12")
    deliver(settings, deliveries, "2025-01")
    clock = MutableClock.local(2025, 1, 5, 9, 0)
    assert run_cycle(settings, "2024-12", clock=clock).status == "done"
    gated = run_cycle(settings, "2025-01", clock=clock)
    assert gated.status == "gated"
    assert "total" in gated.message and "in 2024-12" in gated.message
    with Ledger(sqlite_url) as ledger:
        [attempt] = CycleStore(ledger.db).attempts("2025-01")
        metrics = attempt.details["gate"]["metrics"]
        assert metrics["previous"]["month"] == "2024-12" and metrics["amount_change"] > 0.01
        assert counts(ledger, "2025-01") == (0, 0)
    # the operator raises the limit (a settings change) and reruns with --retry
    looser = settings.model_copy(update={"max_amount_change": 0.9})
    assert run_cycle(looser, "2025-01", clock=clock).status == "gated"  # unchanged: stopped
    assert run_cycle(looser, "2025-01", clock=clock, retry=True).status == "done"


def test_transient_failures_are_retried_with_backoff(
    sqlite_url: str, tmp_path: Path, deliveries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        tmp_path,
        sqlite_url,
        retry_attempts=3,
        alert_hook=HOOK,
        retry_backoff_seconds=5,
        retry_backoff_max_seconds=8,
    )
    deliver(settings, deliveries, "2025-01")
    real = stages.publish_alerts
    failures = iter([True, True])

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if next(failures, False):
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(stages, "publish_alerts", flaky)
    waits: list[float] = []
    outcome = run_with_retries(
        settings, "2025-01", sleep=waits.append, clock=MutableClock.local(2025, 1, 3, 10, 0)
    )
    assert outcome.status == "done", outcome.message
    assert waits == [5.0, 8.0]
    with Ledger(sqlite_url) as ledger:
        attempts = list(reversed(CycleStore(ledger.db).attempts("2025-01")))
        assert [(a.outcome, a.trigger, a.transient) for a in attempts] == [
            ("failed", "cli", True),
            ("failed", "retry", True),
            ("done", "retry", None),
        ]
        assert attempts[0].stage == "publish" and "OperationalError" in attempts[0].reason
        assert counts(ledger, "2025-01") == (1, 1)  # resumed from the run: still one of each
        assert attempts[1].details["resumed_from"] == "run"
    assert _events() == []  # recovered before retries ran out: no operator alert


def test_retries_running_out_alert_the_operator(
    sqlite_url: str, tmp_path: Path, deliveries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "alert.json"
    settings = make_settings(tmp_path, sqlite_url, retry_attempts=1, alert_command=f"cat > {out}")
    deliver(settings, deliveries, "2025-01")

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("could not connect to server"))

    monkeypatch.setattr(stages, "scan_landing", down)
    outcome = run_with_retries(
        settings, "2025-01", sleep=lambda s: None, clock=MutableClock.local(2025, 1, 3, 10, 0)
    )
    assert outcome.status == "failed" and outcome.transient and outcome.exit_code == 2
    alert = json.loads(out.read_text(encoding="utf-8"))
    assert alert["event"] == "cycle.failed" and alert["month"] == "2025-01"
    assert "gave up after 2 attempt(s)" in alert["reason"]


def test_a_permanent_failure_stops_until_retried(
    sqlite_url: str, tmp_path: Path, deliveries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, sqlite_url, alert_hook=HOOK)
    deliver(settings, deliveries, "2025-01")
    clock = MutableClock.local(2025, 1, 3, 10, 0)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(stages, "publish_alerts", broken)
    failed = run_cycle(settings, "2025-01", clock=clock)
    assert (
        failed.status == "failed" and not failed.transient and "ValueError: a bug" in failed.message
    )
    assert _events() == ["cycle.failed"]
    assert run_cycle(settings, "2025-01", clock=clock).status == "failed"  # stays stopped
    assert _events() == ["cycle.failed"]
    monkeypatch.undo()
    fixed = run_cycle(settings, "2025-01", clock=clock, retry=True)
    assert fixed.status == "done", fixed.message
    with Ledger(sqlite_url) as ledger:
        assert counts(ledger, "2025-01") == (1, 1)
        assert [a.outcome for a in CycleStore(ledger.db).attempts("2025-01")] == ["done", "failed"]


def test_an_open_batch_made_by_hand_stops_the_cycle(
    sqlite_url: str, tmp_path: Path, deliveries: Path
) -> None:
    from benefits.sweep import run_sweep

    settings = make_settings(tmp_path, sqlite_url)
    deliver(settings, deliveries, "2025-01", skip=("deaths",))
    run_sweep(deliveries / "2025-01", "2025-01", out=tmp_path / "by-hand", write_traces=False)
    clock = MutableClock.local(2025, 1, 5, 9, 0)
    with Ledger(sqlite_url) as ledger:
        ledger.init()
        manual = ledger.create_batch(
            ledger.import_run(tmp_path / "by-hand", by="bob").run_id, "bob"
        )
    outcome = run_cycle(settings, "2025-01", clock=clock)
    assert outcome.status == "gated"
    assert f"batch {manual.id}" in outcome.message and "one open batch" in outcome.message
    with Ledger(sqlite_url) as ledger:
        assert counts(ledger, "2025-01") == (2, 1)
        ledger.reject(manual.id, by="carol", reason="superseded by the scheduled cycle")
    assert run_cycle(settings, "2025-01", clock=clock).status == "gated"  # stopped until retry
    done = run_cycle(settings, "2025-01", clock=clock, retry=True)
    assert done.status == "done", done.message
