"""The rules worker can crash, hang or be killed: no event is lost, none is applied twice.

These tests run durable_rules in its supervised child process, as the service does in
production, and break it on purpose — SIGKILL from outside, a segmentation fault inside the
request (as durable_rules' own crashes were), a hang, a request that crashes it every time.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from events_helpers import PACK, apply_rows, assert_agrees, event, sweep

from benefits.events.service import EventService
from benefits.events.worker import WorkerEvaluator
from tests.conftest import bank, person, write_delivery

MONTH = "2025-02"
ELDER = person("1940-01-10", 3, "H1", name="王老汉")
OTHER = person("1939-05-05", 5, "H2", name="李老")


def tables() -> dict[str, list[dict]]:
    return {"persons": [dict(ELDER), dict(OTHER)], "bank_accounts": [bank(ELDER), bank(OTHER)]}


def death(eid: str, who: dict) -> dict:
    return event("death_registered", eid, "police", "2025-01-10", id_no=who["id_no"])


def start(tmp_path: Path, **kw: object) -> tuple[EventService, WorkerEvaluator]:
    data = write_delivery(tmp_path / "data", tables(), with_bank=False)
    evaluator = WorkerEvaluator(**kw)  # type: ignore[arg-type]
    service = EventService(data, MONTH, pack=PACK, evaluator=evaluator, freeze_gc=False,
                           dead_letter=tmp_path / "dead.jsonl")  # fmt: skip
    return service, evaluator


def stops(result: object) -> list[tuple[str, str]]:
    return [(c.kind, c.id_no) for c in result.changes if c.kind == "stop"]  # type: ignore[attr-defined]


def test_the_worker_killed_between_events_is_restarted(tmp_path: Path) -> None:
    service, evaluator = start(tmp_path)
    try:
        first = service.apply(death("d1", ELDER))
        assert stops(first) == [("stop", ELDER["id_no"])]
        pid = evaluator.pid
        assert pid is not None and pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        second = service.apply(death("d2", OTHER))
        assert second.status == "applied" and stops(second) == [("stop", OTHER["id_no"])]
        assert evaluator.restarts == 1 and evaluator.pid not in (None, pid)
        raw = tables()
        apply_rows(raw, first.rows + second.rows)
        assert_agrees(service, sweep(raw, MONTH, tmp_path / "s"))
    finally:
        service.close()
        evaluator.close()
    assert evaluator.pid is None


def test_a_crash_in_flight_is_replayed_and_the_event_applied_once(tmp_path: Path) -> None:
    fault = tmp_path / "fault"
    service, evaluator = start(tmp_path, fault_file=fault)
    try:
        evaluator.start()
        pid = evaluator.pid
        fault.write_text("segfault-once")  # the next request dies in C code, mid-evaluation
        result = service.apply(death("d1", ELDER))
        assert result.status == "applied"
        assert stops(result) == [("stop", ELDER["id_no"])]  # exactly once, nothing lost
        assert evaluator.restarts == 1 and evaluator.pid != pid
        assert any("-11" in c for c in evaluator.crashes)  # SIGSEGV
        assert service.apply(death("d1", ELDER)).status == "duplicate"
        assert service.dead_letter.read() == []  # type: ignore[union-attr]
        raw = tables()
        apply_rows(raw, result.rows)
        assert_agrees(service, sweep(raw, MONTH, tmp_path / "s"))
    finally:
        service.close()
        evaluator.close()


def test_an_event_that_always_crashes_the_worker_is_dead_lettered(tmp_path: Path) -> None:
    fault = tmp_path / "fault"
    service, evaluator = start(tmp_path, fault_file=fault, max_attempts=2)
    try:
        before = service.entitlements()
        fault.write_text("segfault")  # every attempt dies
        result = service.apply(death("d1", ELDER))
        assert result.status == "failed" and "died on 2 attempts" in (result.error or "")
        assert service.entitlements().equals(before)  # the row changes were undone
        assert service.store.person_rows("deaths", ELDER["id_no"]) == []
        [dead] = service.dead_letter.read()  # type: ignore[union-attr]
        assert dead["status"] == "failed" and dead["event"]["event_id"] == "d1"
        fault.unlink()
        again = service.apply(death("d1", ELDER))  # not a duplicate: it never applied
        assert again.status == "applied" and stops(again) == [("stop", ELDER["id_no"])]
    finally:
        service.close()
        evaluator.close()


def test_a_hung_worker_is_replaced(tmp_path: Path) -> None:
    fault = tmp_path / "fault"
    service, evaluator = start(tmp_path, fault_file=fault, timeout=2.0)
    try:
        evaluator.start()
        fault.write_text("hang-once")
        result = service.apply(death("d1", ELDER))
        assert result.status == "applied" and evaluator.restarts == 1
    finally:
        service.close()
        evaluator.close()


def test_the_caller_keeps_running_when_durable_rules_crashes(tmp_path: Path) -> None:
    """Crash containment is the point: this very test process is the service."""
    fault = tmp_path / "fault"
    service, evaluator = start(tmp_path, fault_file=fault, max_attempts=1)
    try:
        fault.write_text("exit")
        assert service.apply(death("d1", ELDER)).status == "failed"
        fault.unlink()
        assert service.apply(death("d2", OTHER)).status == "applied"
        assert service.status()["worker"]["restarts"] == 1
    finally:
        service.close()
        evaluator.close()


@pytest.mark.parametrize("kind", ["segfault-once", "exit-once"])
def test_baseline_through_the_worker_survives_a_crash(tmp_path: Path, kind: str) -> None:
    fault = tmp_path / "fault"
    fault.write_text(kind)
    data = write_delivery(tmp_path / "data", tables(), with_bank=False)
    evaluator = WorkerEvaluator(fault_file=fault)
    with EventService(
        data, MONTH, pack=PACK, evaluator=evaluator, baseline="rules", freeze_gc=False
    ) as service:
        assert service.entitlements()["policy_id"].to_list() == ["old_age_allowance"] * 2
        assert evaluator.restarts == 1
    evaluator.close()
