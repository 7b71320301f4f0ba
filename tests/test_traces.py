"""traces.jsonl names what an auditor needs: the amount branch taken, the target-group test
with the values it read, and each parameter's value and effective date (its label, unit and
basis in the policy's rule record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benefits.rulebook import load_pack
from benefits.sweep import run_sweep
from tests.conftest import person, write_delivery

PACK = load_pack()


def elderly_and_dibao() -> dict[str, list[dict]]:
    """Four old people (92, 85, 101, and 95 living outside the district) and a 低保 head."""
    return {
        "persons": [
            person("1932-06-15", 2, "H1"),  # 92 in January 2025
            person("1939-06-15", 4, "H2"),  # 85
            person("1923-06-15", 6, "H3"),  # 101
            person("1929-06-15", 8, "H4", hukou_district="330105"),  # 95, not resident
            person("1975-06-15", 10, "H5"),  # 49, 低保
        ],
        "assistance": [
            {"id_no": person("1975-06-15", 10)["id_no"], "household_no": "H5",
             "assistance_type": "dibao", "approved_date": "2020-03-01",
             "next_review_date": ""},
        ],
        "household_finance": [
            {"household_no": "H5", "per_capita_income": "600.00",
             "per_capita_assets": "5000.00", "assessed_on": "2024-06-15"},
        ],
    }


def records(tables: dict[str, list[dict]], month: str, folder: Path) -> tuple[dict, dict]:
    """(rule records by policy, decision records by (id_no, policy)) of a sweep."""
    result = run_sweep(write_delivery(folder, tables), month, pack=PACK)
    rules, decisions = {}, {}
    for line in result.traces.to_list():
        r = json.loads(line)
        if r["record"] == "rule":
            rules[r["policy_id"]] = r
        else:
            decisions[(r["id_no"], r["policy_id"])] = r
    return rules, decisions


@pytest.fixture(scope="module")
def january(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    return records(elderly_and_dibao(), "2025-01", tmp_path_factory.mktemp("traces"))


def test_the_amount_branch_taken_is_named(january: tuple[dict, dict]) -> None:
    _, decisions = january
    old = "old_age_allowance"
    aged_92 = decisions[(person("1932-06-15", 2)["id_no"], old)]
    assert aged_92["amount"] == "100.00"
    assert aged_92["amount_branch"] == {
        "case": 2, "when": "age >= 90", "value": "old_age_90", "values": {"age": 92}
    }  # fmt: skip
    aged_85 = decisions[(person("1939-06-15", 4)["id_no"], old)]
    assert aged_85["amount"] == "60.00"
    assert aged_85["amount_branch"] == {
        "case": 3, "when": "otherwise", "value": "old_age_80", "values": {"age": 85}
    }  # fmt: skip
    aged_101 = decisions[(person("1923-06-15", 6)["id_no"], old)]
    assert aged_101["amount_branch"]["value"] == "old_age_100"
    # nothing paid, no branch; a single formula has no cases to choose from
    outside = decisions[(person("1929-06-15", 8)["id_no"], old)]
    assert outside["decision"] == "not_eligible" and "amount_branch" not in outside
    dibao = decisions[(person("1975-06-15", 10)["id_no"], "dibao_allowance")]
    assert dibao["amount"] == "701.00" and "amount_branch" not in dibao


def test_the_target_group_test_is_repeated_with_the_values_read(
    january: tuple[dict, dict],
) -> None:
    _, decisions = january
    aged_92 = decisions[(person("1932-06-15", 2)["id_no"], "old_age_allowance")]
    assert aged_92["target_group"] == {
        "test": "age >= 79", "values": {"age": 92}, "sources": {"persons": 1}
    }  # fmt: skip
    dibao = decisions[(person("1975-06-15", 10)["id_no"], "dibao_allowance")]
    assert dibao["target_group"]["test"] == "status == 'dibao'"
    assert dibao["target_group"]["values"] == {"status": "dibao"}


def test_parameters_give_value_and_effective_date_and_the_rule_record_label_and_basis(
    january: tuple[dict, dict],
) -> None:
    rules, decisions = january
    dibao = decisions[(person("1975-06-15", 10)["id_no"], "dibao_allowance")]
    # the standard raised on 2025-01-23 applies to the whole of January
    assert dibao["parameters"] == {"dibao_std": {"value": "1301", "from": "2025-01-23"}}
    described = rules["dibao_allowance"]["parameters"]["dibao_std"]
    assert described == {
        "value": "1301",
        "from": "2025-01-23",
        "label": "低保标准 / minimum living standard",
        "unit": "CNY/person/month",
        "basis": "杭州市区最低生活保障标准调整通知（handbook §1, published）",
    }
    old = rules["old_age_allowance"]
    assert old["amount_rule"]["cases"] == [
        {"case": 1, "when": "age >= 100", "value": "old_age_100"},
        {"case": 2, "when": "age >= 90", "value": "old_age_90"},
        {"case": 3, "when": "otherwise", "value": "old_age_80"},
    ]
    assert rules["dibao_allowance"]["amount_rule"]["cases"] == []
    for (_, pid), d in decisions.items():
        for name, used in d["parameters"].items():
            assert set(used) == {"value", "from"}
            info = rules[pid]["parameters"][name]
            assert info["label"] and info["basis"] and info["value"] == used["value"]


def test_a_case_test_through_a_let_reports_the_facts_it_read(tmp_path: Path) -> None:
    """Policy 12: a 低保 child with a grade-2 certificate is paid on the first case, whose
    test (`ill_or_severely_disabled`, a let) reads the certificate facts."""
    mother, child = person("1985-06-15", 2, "H1"), person("2015-06-15", 4, "H1",
                                                        relation="child")  # fmt: skip
    child["mother_id_no"] = mother["id_no"]
    tables = {
        "persons": [mother, child],
        "assistance": [
            {"id_no": mother["id_no"], "household_no": "H1", "assistance_type": "dibao",
             "approved_date": "2020-03-01", "next_review_date": ""},
        ],
        "household_finance": [
            {"household_no": "H1", "per_capita_income": "600.00",
             "per_capita_assets": "5000.00", "assessed_on": "2024-06-15"},
        ],
        "disability_certificates": [
            {"id_no": child["id_no"], "cert_no": "C1", "category": "physical", "grade": "2",
             "issue_date": "2023-01-01", "expiry_date": "2028-01-01", "status": "valid"},
        ],
    }  # fmt: skip
    _, decisions = records(tables, "2025-01", tmp_path)
    record = decisions[(child["id_no"], "child_in_difficulty_subsidy")]
    assert record["amount"] == "1224.00"  # orphan_scattered 2525 - dibao_std 1301
    branch = record["amount_branch"]
    assert (branch["case"], branch["when"]) == (1, "ill_or_severely_disabled")
    assert branch["value"] == "orphan_scattered - dibao_std"
    assert branch["values"]["cert_grade"] == 2 and branch["values"]["has_cert"] is True
