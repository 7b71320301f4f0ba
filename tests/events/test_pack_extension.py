"""A new input table, a fact derived from it and a 13th policy, added by declarations only.

A copy of the rule pack gets a school-enrolment table (``tables.yaml``), a selection and two
facts read from it (``facts.yaml``), a parameter and a policy that pays a school-meal subsidy
to resident children enrolled on the first day of the month. No Python changes: the sweep
ingests the new file, builds the facts in its Polars plan and pays; the event service indexes
the table, computes the same facts for one household and decides the same — before an event
and after an event that changes the household.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
from events_helpers import apply_rows, assert_agrees, event, service_for

from benefits.errors import RuleError
from benefits.household import MonthContext, household_facts
from benefits.period import BenefitMonth
from benefits.resources import bundled
from benefits.rulebook import RulePack, load_pack
from benefits.sweep import SweepResult, run_sweep
from tests.conftest import bank, person, write_delivery

MONTH = "2025-02"

TABLE = """
  school_enrolments:
    department: 教育局 education bureau
    index: id_no
    key: [id_no, school]
    period: {start: enrolled_on, end: left_on}
    columns:
      - {name: id_no, kind: id, required: true}
      - {name: school, kind: code, required: true}
      - {name: enrolled_on, kind: date, required: true}
      - {name: left_on, kind: date}
"""

SELECTION = """
  school:
    table: school_enrolments
    open_on: month_start
    order: [enrolled_on]
    pick: last
    row: school_row
"""

FACTS = """
  in_school:
    kind: bool
    en: enrolled at a school on the first day of the month
    zh: 月初在读
    from: school
    exists: true
  school_code: {kind: str, en: school, zh: 就读学校, from: school, column: school}
"""

PARAMETER = """
school_meal:
  label: {zh: 学生营养餐补助, en: "school-meal subsidy"}
  unit: CNY/person/month
  basis: test pack
  values: {2024-01-01: 150}
"""

POLICY = """
id: school_meal_subsidy
number: 13
version: "2025.1"
valid_from: 2024-01-01
name: {zh: 学生营养餐补助, en: "School-meal subsidy"}
group: children
mode: pay
basis:
  - {doc: test pack}
considers: in_school
conditions:
  - {id: resident, label: {zh: 户籍在本区, en: hukou in the district}, when: resident}
  - {id: alive, label: {zh: 月初健在, en: alive at the start of the month}, when: alive}
  - {id: enrolled, label: {zh: 月初在读, en: enrolled on the first day}, when: in_school}
  - {id: minor, label: {zh: 未满18周岁, en: under 18}, when: age < 18}
amount: school_meal
"""


def extended_pack(folder: Path) -> Path:
    """A copy of the bundled pack with the table, fact, parameter and policy added."""
    rules = folder / "rules"
    shutil.copytree(bundled("rules"), rules)
    (rules / "tables.yaml").write_text(
        (rules / "tables.yaml").read_text(encoding="utf-8") + TABLE, encoding="utf-8"
    )
    facts = (rules / "facts.yaml").read_text(encoding="utf-8")
    facts = facts.replace("\nselections:\n", "\nselections:\n" + SELECTION.lstrip("\n"), 1)
    (rules / "facts.yaml").write_text(facts + FACTS, encoding="utf-8")
    (rules / "parameters" / "school.yaml").write_text(PARAMETER, encoding="utf-8")
    (rules / "policies" / "children" / "school_meal_subsidy.yaml").write_text(
        POLICY, encoding="utf-8"
    )
    return rules


def household() -> dict[str, list[dict]]:
    """Two enrolled children (one left school before the month) and their mother."""
    mum = person("1985-03-02", 4, "H1", "王丽", relation="head")
    kid = person("2014-05-06", 13, "H1", "王小明", relation="child")
    sis = person("2012-08-09", 22, "H1", "王小红", relation="child")
    return {
        "persons": [mum, kid, sis],
        "bank_accounts": [bank(mum), bank(kid), bank(sis)],
        "school_enrolments": [
            {"id_no": kid["id_no"], "school": "XH-PRIMARY-7", "enrolled_on": "2020-09-01",
             "left_on": "2026-07-15"},  # a planned end: in force on 1 February
            {"id_no": sis["id_no"], "school": "XH-PRIMARY-7", "enrolled_on": "2018-09-01",
             "left_on": "2025-01-20"},  # left before the month
            {"id_no": sis["id_no"], "school": "XH-MIDDLE-2", "enrolled_on": "2025-02-01"},
        ],
    }  # fmt: skip


def swept(tables: dict[str, list[dict]], folder: Path, pack: RulePack) -> SweepResult:
    return run_sweep(write_delivery(folder, tables, with_bank=False), MONTH, pack=pack)


def paid(result: SweepResult) -> list[tuple[str, str, str]]:
    ent = result.entitlements.filter(pl.col("policy_id") == "school_meal_subsidy")
    return sorted(ent.select("id_no", "policy_id", "amount").rows())


def test_a_table_fact_and_policy_added_by_declarations(tmp_path: Path) -> None:
    pack = load_pack(extended_pack(tmp_path))
    assert "school_enrolments" in pack.catalogue.tables
    assert pack.catalogue.facts["in_school"].source == "school_enrolments"
    assert pack.catalogue.facts["in_school"].row == "school_row"
    tables = household()
    kid, sis = (p["id_no"] for p in tables["persons"][1:])

    # the sweep ingests the new file and pays the 13th policy from the new fact
    before = swept(tables, tmp_path / "sweep-before", pack)
    summary = before.summary["tables"]["school_enrolments"]
    assert (summary["read"], summary["accepted"]) == (3, 3)
    assert paid(before) == sorted(
        [(kid, "school_meal_subsidy", "150.00"), (sis, "school_meal_subsidy", "150.00")]
    )

    # the event path indexes the table and computes the same facts for the household
    service = service_for(tables, MONTH, tmp_path / "data", pack=pack, baseline="rules")
    assert len(service.store.person_rows("school_enrolments", sis)) == 2
    ctx = MonthContext.for_month(
        BenefitMonth.parse(MONTH), "330106", ("tekun", "dibao", "dibian"), pack.catalogue
    )
    facts = {f["id_no"]: f for f in household_facts(service.store, "H1", ctx)}
    assert (facts[kid]["in_school"], facts[kid]["school_code"]) == (True, "XH-PRIMARY-7")
    assert (facts[sis]["in_school"], facts[sis]["school_code"]) == (True, "XH-MIDDLE-2")
    assert (facts[sis]["school_row"], facts[tables["persons"][0]["id_no"]]["in_school"]) == (
        3,
        False,
    )
    # decided by the event path from its own facts (baseline "rules"), the same as the sweep
    assert_agrees(service, before)

    # an event that changes the household: the boy's death reported, dated before the month
    result = service.apply(event("death_registered", "d1", "police", "2025-01-28", id_no=kid))
    assert result.status == "applied", result.error
    assert ("stop", "school_meal_subsidy") in [(c.kind, c.policy_id) for c in result.changes]
    apply_rows(tables, result.rows)
    after = swept(tables, tmp_path / "sweep-after", pack)
    assert paid(after) == [(sis, "school_meal_subsidy", "150.00")]
    assert_agrees(service, after)


def test_a_fact_reading_an_undeclared_column_names_the_file(tmp_path: Path) -> None:
    rules = extended_pack(tmp_path)
    text = (rules / "facts.yaml").read_text(encoding="utf-8")
    (rules / "facts.yaml").write_text(
        text.replace("column: school}", "column: classroom}"), encoding="utf-8"
    )
    try:
        load_pack(rules)
    except RuleError as exc:
        assert "facts.yaml" in str(exc) and "'classroom' is not a column" in str(exc)
    else:  # pragma: no cover - the assertion is the test
        raise AssertionError("an unknown column was accepted")
