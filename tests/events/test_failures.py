"""A decision that fails loses no event and applies none twice; the service keeps running.

Eligibility is decided in the service's process (no worker to crash); what a user sees when a
household cannot be decided — a rule error, an unexpected failure — is the event in the
dead-letter file with its row changes undone, and the same event applied later once it can be.
"""

from __future__ import annotations

from pathlib import Path

from events_helpers import PACK, apply_rows, assert_agrees, event, sweep

from benefits.errors import RuleError
from benefits.events.evaluator import EvalRequest, EvalResponse, LocalEvaluator
from benefits.events.service import EventService
from tests.conftest import bank, person, write_delivery

MONTH = "2025-02"
ELDER = person("1940-01-10", 3, "H1", name="王老汉")
OTHER = person("1939-05-05", 5, "H2", name="李老")


class Breakable(LocalEvaluator):
    """Decides as usual until told to fail with `error`."""

    def __init__(self) -> None:
        super().__init__()
        self.error: Exception | None = None

    def evaluate(self, request: EvalRequest) -> EvalResponse:
        if self.error is not None:
            raise self.error
        return super().evaluate(request)


def tables() -> dict[str, list[dict]]:
    return {"persons": [dict(ELDER), dict(OTHER)], "bank_accounts": [bank(ELDER), bank(OTHER)]}


def death(eid: str, who: dict) -> dict:
    return event("death_registered", eid, "police", "2025-01-10", id_no=who["id_no"])


def start(tmp_path: Path) -> tuple[EventService, Breakable]:
    data = write_delivery(tmp_path / "data", tables(), with_bank=False)
    evaluator = Breakable()
    service = EventService(data, MONTH, pack=PACK, evaluator=evaluator, freeze_gc=False,
                           dead_letter=tmp_path / "dead.jsonl")  # fmt: skip
    return service, evaluator


def stops(result: object) -> list[tuple[str, str]]:
    return [(c.kind, c.id_no) for c in result.changes if c.kind == "stop"]  # type: ignore[attr-defined]


def test_a_failing_decision_is_dead_lettered_undone_and_can_be_applied_later(
    tmp_path: Path,
) -> None:
    service, evaluator = start(tmp_path)
    with service:
        before = service.entitlements()
        evaluator.error = RuleError("old_age_allowance: the amount is empty for someone")
        result = service.apply(death("d1", ELDER))
        assert result.status == "failed" and "the amount is empty" in (result.error or "")
        assert service.entitlements().equals(before)  # the row changes were undone
        assert service.store.person_rows("deaths", ELDER["id_no"]) == []
        [dead] = service.dead_letter.read()  # type: ignore[union-attr]
        assert dead["status"] == "failed" and dead["event"]["event_id"] == "d1"
        evaluator.error = None
        again = service.apply(death("d1", ELDER))  # not a duplicate: it never applied
        assert again.status == "applied" and stops(again) == [("stop", ELDER["id_no"])]
        assert service.apply(death("d1", ELDER)).status == "duplicate"
        raw = tables()
        apply_rows(raw, again.rows)
        assert_agrees(service, sweep(raw, MONTH, tmp_path / "s"))


def test_an_unexpected_failure_fails_that_event_only(tmp_path: Path) -> None:
    service, evaluator = start(tmp_path)
    with service:
        evaluator.error = RuntimeError("out of memory")
        assert service.apply(death("d1", ELDER)).status == "failed"
        evaluator.error = None
        assert service.apply(death("d2", OTHER)).status == "applied"
        assert service.status()["events"] == {
            "applied": 1, "duplicate": 0, "rejected": 0, "failed": 1,
        }  # fmt: skip


def test_the_baseline_from_the_event_path_equals_the_sweeps(tmp_path: Path) -> None:
    data = write_delivery(tmp_path / "data", tables(), with_bank=False)
    with EventService(data, MONTH, pack=PACK, baseline="rules", freeze_gc=False) as service:
        assert service.entitlements()["policy_id"].to_list() == ["old_age_allowance"] * 2
        assert_agrees(service, sweep(tables(), MONTH, tmp_path / "s"))
