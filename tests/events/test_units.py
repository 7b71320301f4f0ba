"""Unit tests: the event schema, the store, the modules' examples."""

from __future__ import annotations

import doctest
import importlib
from decimal import Decimal
from pathlib import Path

import pytest
from events_helpers import event

from benefits.events.planners import plan
from benefits.events.schema import EVENT_TYPES, EventError, parse_event
from benefits.events.store import Store
from benefits.ingest import load_extracts
from tests.conftest import bank, person, write_delivery

ID = "11010519491231002X"
VALID = {
    "death_registered": {"department": "funeral", "id_no": ID},
    "birth_registered": {"department": "police", "id_no": "110105202501030012",
                         "name": "新生", "sex": "M", "household_no": "H1",
                         "hukou_community": "330106001", "effective_date": "2025-01-03"},
    "hukou_moved_out": {"department": "police", "id_no": ID},
    "hukou_moved_in": {"department": "police", "id_no": ID},
    "certificate_issued": {"department": "disabled_federation", "id_no": ID, "cert_no": "C1",
                           "category": "mental", "grade": 3, "expiry_date": "2030-01-01"},
    "certificate_cancelled": {"department": "disabled_federation", "id_no": ID, "cert_no": "C1"},
    "assistance_approved": {"department": "civil_affairs", "id_no": ID, "household_no": "H1",
                            "assistance_type": "tekun", "next_review_date": "2026-01-01"},
    "assistance_ended": {"department": "civil_affairs", "id_no": ID, "assistance_type": "dibian"},
    "finance_assessed": {"department": "civil_affairs", "household_no": "H1",
                         "per_capita_income": "800.5", "per_capita_assets": 12000},
    "care_assessed": {"department": "health", "id_no": ID, "care_level": "partial",
                      "institution_resident": "false"},
    "parent_situation_started": {"department": "court", "id_no": ID, "situation": "missing"},
    "parent_situation_ended": {"department": "justice", "id_no": ID, "situation": "missing"},
    "bank_account_changed": {"department": "bank", "id_no": ID,
                             "account_no": "6222000011112222", "account_name": "张三"},
}  # fmt: skip


@pytest.mark.parametrize("etype", sorted(EVENT_TYPES))
def test_every_event_type_validates_and_names_its_record(etype: str) -> None:
    fields = {"effective_date": "2025-01-03", **VALID[etype]}
    ev = parse_event({"event_id": f"x-{etype}", "type": etype, **fields})
    assert ev.type == etype and ev.schema_version == 1
    table, key = ev.record
    assert table == EVENT_TYPES[etype].table and key
    assert parse_event(ev.canonical()).canonical() == ev.canonical()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "death_registered", "department": "police", "effective_date": "2025-01-01",
          "id_no": ID}, "event_id: Field required"),
        ({"event_id": "a", "type": "death_registered", "department": "police",
          "effective_date": "2025-01-01", "id_no": "110105194912310022"},
         "check character does not match"),
        ({"event_id": "a", "type": "death_registered", "department": "police",
          "effective_date": "01/02/2025", "id_no": ID}, "not a date YYYY-MM-DD"),
        ({"event_id": "a", "type": "death_registered", "department": "bank",
          "effective_date": "2025-01-01", "id_no": ID}, "does not report death_registered"),
        ({"event_id": "a", "type": "finance_assessed", "department": "civil_affairs",
          "effective_date": "2025-01-01", "household_no": "H1", "per_capita_income": "-1",
          "per_capita_assets": "0"}, "per_capita_income"),
        ({"event_id": "a", "type": "finance_assessed", "department": "civil_affairs",
          "effective_date": "2025-01-01", "household_no": "H１", "per_capita_income": "1",
          "per_capita_assets": "0"}, "full-width digits"),
        ({"event_id": "a", "type": "birth_registered", "department": "police",
          "effective_date": "2025-01-04", "id_no": "110105202501030012", "name": "新生",
          "sex": "M", "household_no": "H1", "hukou_community": "330106001"},
         "disagrees with the ID's birth date"),
        ({"event_id": "a", "type": "birth_registered", "department": "police",
          "effective_date": "2025-01-03", "id_no": "110105202501030012", "name": "新生",
          "sex": "M", "household_no": "H1", "hukou_community": "c1"},
         "'c1' is not a 9-digit community code"),
        ({"event_id": "a", "type": "bank_account_changed", "department": "bank",
          "effective_date": "2025-01-03", "id_no": ID, "account_no": "6222-0000-1111",
          "account_name": "张三"}, "only digits 0-9"),
        ({"event_id": "a", "type": "bank_account_changed", "department": "bank",
          "effective_date": "2025-01-03", "id_no": ID, "account_no": "6222",
          "account_name": "张三"}, "8 to 32 digits"),
        ({"event_id": "a", "type": "certificate_issued", "department": "disabled_federation",
          "effective_date": "2025-01-01", "id_no": ID, "cert_no": "C", "category": "mental",
          "grade": "3", "expiry_date": "2030-01-01"}, "grade"),
        ({"event_id": "a", "type": "care_assessed", "department": "health",
          "effective_date": "2025-01-01", "id_no": ID, "care_level": "partial",
          "institution_resident": "maybe"}, "not a boolean"),
        ({"event_id": "a", "type": "death_registered", "department": "police",
          "effective_date": "2025-01-01", "id_no": ID, "note": "x"}, "note: Extra inputs"),
        ({"event_id": "a", "type": "death_registered", "schema_version": 2},
         "schema_version 2 is not supported"),
        ({"event_id": "a"}, "field type is missing"),
        ("[1, 2]", "expected a JSON object"),
    ],
)  # fmt: skip
def test_invalid_events_are_refused_with_a_clear_message(data: object, message: str) -> None:
    with pytest.raises(EventError) as raised:
        parse_event(data)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_money_is_exact_and_ids_are_normalised() -> None:
    ev = parse_event({"event_id": "f", "type": "finance_assessed", "department": "civil_affairs",
                      "effective_date": "2025-01-01", "household_no": " H1 ",
                      "per_capita_income": 800.1, "per_capita_assets": "0.05"})  # fmt: skip
    assert ev.per_capita_income == Decimal("800.1")  # type: ignore[attr-defined]
    assert ev.household_no == "H1"  # type: ignore[attr-defined]
    lower = parse_event({"event_id": "d", "type": "death_registered", "department": "police",
                         "effective_date": "2025-01-01", "id_no": ID.lower()})  # fmt: skip
    assert lower.person == ID


@pytest.mark.parametrize("zero", ["-0", "-0.00", " -0.0 "])
def test_minus_zero_in_an_event_is_zero_as_in_a_delivery(zero: str) -> None:
    ev = parse_event({"event_id": "z", "type": "finance_assessed", "department": "civil_affairs",
                      "effective_date": "2025-01-01", "household_no": "H1",
                      "per_capita_income": zero, "per_capita_assets": "-0"})  # fmt: skip
    assert ev.per_capita_income == 0 and ev.per_capita_assets == 0  # type: ignore[attr-defined]
    with pytest.raises(EventError, match="per_capita_income"):
        parse_event({"event_id": "n", "type": "finance_assessed", "department": "civil_affairs",
                     "effective_date": "2025-01-01", "household_no": "H1",
                     "per_capita_income": "-0.01", "per_capita_assets": "0"})  # fmt: skip



# ---------------------------------------------------------------------------------- store


def test_row_changes_are_undone_exactly(tmp_path: Path) -> None:
    a = person("1940-01-10", 3, "H1")
    kid = person("2015-01-01", 5, "H2", mother_id_no=a["id_no"])
    data = write_delivery(tmp_path, {
        "persons": [a, kid],
        "assistance": [{"id_no": a["id_no"], "household_no": "H1", "assistance_type": "dibao",
                        "approved_date": "2024-01-01"}],
        "bank_accounts": [bank(a)],
    })  # fmt: skip
    store = Store.from_extracts(load_extracts(data))
    assert store.next_row == {**store.next_row, "persons": 3, "assistance": 2, "deaths": 1}
    assert store.children[a["id_no"]] == [kid["id_no"]]  # her child, in another household
    snapshot = (dict(store.persons), {k: list(v) for k, v in store.members.items()},
                {k: list(v) for k, v in store.rows["assistance"].items()})  # fmt: skip
    changes = []
    for ev in (
        event("hukou_moved_out", "m", "police", "2025-01-01", id_no=a["id_no"]),
        event("assistance_ended", "e", "civil_affairs", "2025-01-01", id_no=a["id_no"],
              assistance_type="dibao"),
        event("death_registered", "d", "police", "2025-01-01", id_no=a["id_no"]),
    ):  # fmt: skip
        rows = plan(store, parse_event(ev), "330106")
        changes.append(store.apply(rows))
    assert store.persons[a["id_no"]].hukou_status == "moved_out"
    assert store.person_rows("assistance", a["id_no"]) == []
    assert store.next_row["deaths"] == 2
    for undo in reversed(changes):
        undo()
    assert (dict(store.persons), {k: list(v) for k, v in store.members.items()},
            {k: list(v) for k, v in store.rows["assistance"].items()}) == snapshot  # fmt: skip
    assert store.next_row["deaths"] == 1


@pytest.mark.parametrize(
    "module",
    ["schema", "decide", "evaluator", "generate", "changes", "cli", "program",
     "reactions"],
)  # fmt: skip
def test_doctests(module: str) -> None:
    mod = importlib.import_module(f"benefits.events.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
