"""durable_rules as it really behaves (2.0.28), and how the event path copes with each trait.

Each test first shows the trait on durable_rules itself, then that the adapter or the service
is not affected by it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import durable_rules_engine
import pytest
from events_helpers import assert_agrees, service_for, shared_evaluator, sweep
from freezegun import freeze_time

from benefits.events.adapter import DurableRulesEngine, durable_ruleset
from benefits.events.conditions import And, Cmp, Exists, Or
from tests.conftest import bank, person


def drain(handle: int, state: int) -> list[str]:
    """Rule names of the actions durable_rules has queued for the session."""
    fired = []
    result = durable_rules_engine.start_action_for_state(handle, state)
    message = result[1] if result else None
    while message:
        fired.append(next(iter(json.loads(message))))
        message = durable_rules_engine.complete_and_start_action(handle, state)
    return fired


THREE_RULES = {
    "old": Cmp("ge", "age", 80),
    "dibao": Cmp("eq", "status", "dibao"),
    "certified": Cmp("eq", "has_cert", True),
}


def test_an_event_is_consumed_by_the_first_rule_so_persons_are_facts() -> None:
    rules = json.dumps(durable_ruleset(THREE_RULES))
    handle = durable_rules_engine.create_ruleset("pitfall_post", rules)
    message = {"id": "p1", "__fact": 1, "age": 85, "status": "dibao", "has_cert": True}
    _, state = durable_rules_engine.assert_event(handle, json.dumps(message))
    assert len(drain(handle, state)) == 1  # posted as an event: one of three rules fires
    engine = DurableRulesEngine()
    engine.define("three", THREE_RULES)
    person_fact = {"age": 85, "status": "dibao", "has_cert": True}
    assert engine.match("three", [person_fact]) == [{"old", "dibao", "certified"}]


def test_a_person_eligible_for_several_policies_gets_all_of_them(tmp_path: Path) -> None:
    elder = person("1938-03-03", 3, "H1", name="陈多")
    tables = {
        "persons": [elder],
        "assistance": [{"id_no": elder["id_no"], "household_no": "H1",
                        "assistance_type": "dibao", "approved_date": "2023-01-01"}],
        "household_finance": [{"household_no": "H1", "per_capita_income": "300.00",
                               "per_capita_assets": "0", "assessed_on": "2024-10-01"}],
        "disability_certificates": [{"id_no": elder["id_no"], "cert_no": "C1",
                                     "category": "physical", "grade": "1",
                                     "issue_date": "2020-01-01", "expiry_date": "2030-01-01",
                                     "status": "valid"}],
        "bank_accounts": [bank(elder)],
    }  # fmt: skip
    service = service_for(tables, "2025-02", tmp_path / "d", baseline="rules")
    got = {e["policy_id"]: e["amount"] for e in service.person(elder["id_no"])["entitlements"]}
    assert got == {
        "dibao_allowance": "1001.00",
        "disability_living_subsidy": "390.30",
        "severe_disability_nursing_subsidy": "390.30",
        "old_age_allowance": "60.00",
    }
    assert_agrees(service, sweep(tables, "2025-02", tmp_path / "s"))


def test_an_or_condition_fires_once_per_branch_but_counts_once() -> None:
    either = {"hardship_or_alone_80": Or((Cmp("eq", "status", "dibao"), And((
        Cmp("ge", "age", 80), Cmp("eq", "hh_members", 1)))))}  # fmt: skip
    handle = durable_rules_engine.create_ruleset("pitfall_or", json.dumps(durable_ruleset(either)))
    fact = {"id": "p1", "__fact": 1, "status": "dibao", "age": 85, "hh_members": 1}
    _, state = durable_rules_engine.assert_fact(handle, json.dumps(fact))
    assert drain(handle, state).count("hardship_or_alone_80") == 2  # one per matching branch
    engine = DurableRulesEngine()
    engine.define("or", either)
    assert engine.match("or", [{"status": "dibao", "age": 85, "hh_members": 1}]) == [
        {"hardship_or_alone_80"}
    ]
    assert engine.stats["repeat_firings"] == 1


def test_an_or_condition_gives_one_entitlement(tmp_path: Path) -> None:
    # 低保 *and* 80+ living alone: both branches of home care's last condition hold
    elder = person("1940-04-04", 5, "H1", name="林独")
    tables = {
        "persons": [elder],
        "assistance": [{"id_no": elder["id_no"], "household_no": "H1",
                        "assistance_type": "dibao", "approved_date": "2023-01-01"}],
        "household_finance": [{"household_no": "H1", "per_capita_income": "1000.00",
                               "per_capita_assets": "0", "assessed_on": "2024-10-01"}],
        "care_assessments": [{"id_no": elder["id_no"], "care_level": "partial",
                              "assessed_on": "2024-06-01", "institution_resident": "false"}],
        "bank_accounts": [bank(elder)],
    }  # fmt: skip
    service = service_for(tables, "2025-02", tmp_path / "d", baseline="rules")
    credits = [e for e in service.person(elder["id_no"])["entitlements"] if e["mode"] == "credit"]
    assert credits == [{"policy_id": "home_care_service_subsidy", "mode": "credit",
                        "amount": "300.00", "held": False, "hold_reason": None}]  # fmt: skip
    assert_agrees(service, sweep(tables, "2025-02", tmp_path / "s"))


def test_a_fact_no_rule_matches_raises_in_durable_but_not_here() -> None:
    from durable.engine import MessageNotHandledException
    from durable.lang import assert_fact, m, ruleset, when_all

    with ruleset("pitfall_unmatched"):

        @when_all(m.kind == "expected")
        def noted(c: Any) -> None:
            pass

    with pytest.raises(MessageNotHandledException):
        assert_fact("pitfall_unmatched", {"kind": "unexpected"})
    engine = DurableRulesEngine()
    engine.define("few", {"old": Cmp("ge", "age", 80)})
    assert engine.match("few", [{"age": 3}, {}]) == [set(), set()]
    assert engine.stats["unmatched"] == 0  # the catch-all rule matched instead


def test_one_session_for_everyone_and_no_delete_state(monkeypatch: pytest.MonkeyPatch) -> None:
    asserted: list[dict] = []
    real_assert = durable_rules_engine.assert_fact

    def spy(handle: int, text: str) -> Any:
        asserted.append(json.loads(text))
        return real_assert(handle, text)

    def forbidden(*args: Any) -> None:
        raise AssertionError("delete_state crashed the process in 3 of 6 runs: never call it")

    monkeypatch.setattr(durable_rules_engine, "assert_fact", spy)
    monkeypatch.setattr(durable_rules_engine, "delete_state", forbidden)
    engine = DurableRulesEngine()
    engine.define("many", THREE_RULES)
    people = [{"age": 60 + i % 40, "status": "dibao" if i % 3 else "none"} for i in range(1500)]
    results = engine.match("many", people)  # more people than the 1024-session limit
    assert sum("old" in r for r in results) == sum(p["age"] >= 80 for p in people)
    assert len(asserted) == 1500 and not any("sid" in f for f in asserted)  # default session
    assert len({f["id"] for f in asserted}) == 1500


def test_working_memory_stays_empty_and_equal_facts_stay_apart() -> None:
    engine = DurableRulesEngine()
    engine.define("wm", THREE_RULES)
    same = {"age": 90, "status": "dibao"}
    assert engine.match("wm", [same, dict(same), same]) == [{"old", "dibao"}] * 3
    for i in range(2000):
        engine.match("wm", [{"age": i % 100, "status": "dibao"}])
    assert engine.working_memory("wm") == []


def test_dates_reach_the_engine_as_integers_and_the_month_is_data(tmp_path: Path) -> None:
    evaluator = shared_evaluator()
    elder = person("1944-12-31", 7, "H1", name="韩八十")  # 80 on 2024-12-31
    tables = {"persons": [elder], "bank_accounts": [bank(elder)]}
    service = service_for(tables, "2025-01", tmp_path / "d", baseline="rules")
    decider = evaluator.worker.decider(service.program)
    for rules in decider._rules.values():
        text = json.dumps(durable_ruleset(rules))
        assert "2025-" not in text and "2024-" not in text  # no date strings, only yyyymmdd
    encoded = decider._encode({"birth_date": dt.date(1944, 12, 31), "cert_expiry_date": None,
                               "care_assessed_on": dt.date(2024, 6, 1)}, "policies")  # fmt: skip
    assert encoded.get("care_assessed_on") in (None, 20240601)
    before = service.entitlements()
    with freeze_time("2031-07-15"):  # the wall clock plays no part: the month is an input
        again = service_for(tables, "2025-01", tmp_path / "e", baseline="rules")
        assert again.entitlements().equals(before)
    assert before["policy_id"].to_list() == ["old_age_allowance"]


def test_the_rule_pack_compiles_to_durable_rules_rulesets(tmp_path: Path) -> None:
    evaluator = shared_evaluator()
    service = service_for({"persons": [person("1950-01-01", 9)]}, "2025-02", tmp_path / "d")
    decider = evaluator.worker.decider(service.program)
    policies = decider._rules["policies"]
    # shared conditions (resident, alive …) are one rule; every distinct test has its rule
    assert Cmp("eq", "resident", True) in policies.values()
    assert len(policies) == len(set(policies.values()))
    text = json.dumps(durable_ruleset(policies))
    assert '"$lt": {"hh_pci": 130100}' in text  # hh_pci < dibao_std, in fen, for 2025-02
    assert isinstance(decider.engine, DurableRulesEngine)
    assert Exists("cert_grade") not in policies.values()
