"""Issue 14, point 1: every field, fact, ledger column and output column has a data class.

The declaration is :mod:`benefits.classes`; adding a column to the data contract, a fact to
the merge, a column to a ledger model or to a sweep output without declaring its class fails
here. The masking of the web app reads the same declaration.
"""

from __future__ import annotations

import dataclasses

import pytest

import benefits.cycle.models
import benefits.web.models
from benefits import classes
from benefits.ingest import QUARANTINE_SCHEMA
from benefits.ledger.models import Base
from benefits.merge import FACTS
from benefits.schema import TABLES, Column, Table
from benefits.sweep import ALERT_COLUMNS, ENTITLEMENT_COLUMNS
from benefits.web import privacy

assert benefits.cycle.models and benefits.web.models  # their tables join the metadata


def input_fields(tables: dict[str, Table]) -> set[tuple[str, str]]:
    return {(t.name, c.name) for t in tables.values() for c in t.columns}


def ledger_fields() -> set[tuple[str, str]]:
    return {(t.name, c.name) for t in Base.metadata.sorted_tables for c in t.columns}


def output_fields() -> set[tuple[str, str]]:
    return ({("entitlements", c) for c in ENTITLEMENT_COLUMNS}
            | {("alerts", c) for c in ALERT_COLUMNS}
            | {("quarantine", c) for c in QUARANTINE_SCHEMA})  # fmt: skip


def declared(groups: dict[str, dict[str, classes.Declared]]) -> set[tuple[str, str]]:
    return {(g, c) for g, cols in groups.items() for c in cols}


def undeclared(have: set[tuple[str, str]],
               groups: dict[str, dict[str, classes.Declared]]) -> list[str]:
    return sorted(f"{g}.{c}" for g, c in have - declared(groups))


def test_every_input_field_has_a_class() -> None:
    assert undeclared(input_fields(TABLES), classes.INPUTS) == []
    assert sorted(declared(classes.INPUTS) - input_fields(TABLES)) == []  # nothing stale


def test_every_fact_has_a_class() -> None:
    assert sorted(set(FACTS) - set(classes.FACTS)) == []


def test_every_ledger_column_has_a_class() -> None:
    assert undeclared(ledger_fields(), classes.LEDGER) == []
    assert sorted(declared(classes.LEDGER) - ledger_fields()) == []


def test_every_output_column_has_a_class() -> None:
    assert undeclared(output_fields(), classes.OUTPUTS) == []
    assert sorted(declared(classes.OUTPUTS) - output_fields()) == []


def test_a_new_field_without_a_class_is_caught() -> None:
    persons = TABLES["persons"]
    grown = dataclasses.replace(persons, columns=(*persons.columns, Column("phone", "text")))
    assert undeclared(input_fields({**TABLES, "persons": grown}),
                      classes.INPUTS) == ["persons.phone"]  # fmt: skip
    with pytest.raises(KeyError, match=r"declare it in benefits/classes\.py"):
        classes.fact_class("phone")
    with pytest.raises(KeyError, match=r"ledger column web_users\.phone"):
        classes.ledger_class("web_users", "phone")


def test_every_declaration_uses_a_known_class_and_mask() -> None:
    everything = [d for g in (classes.INPUTS, classes.LEDGER, classes.OUTPUTS)
                  for cols in g.values() for d in cols.values()]  # fmt: skip
    everything += [*classes.FACTS.values(), *classes.OTHER_FIELDS.values()]
    assert {d.cls for d in everything} <= set(classes.CLASSES)
    assert {d.mask for d in everything} <= {None, *classes.MASKS}
    assert set(classes.RULES) == set(classes.CLASSES)


def test_ids_accounts_health_disability_and_family_situation_are_sensitive() -> None:
    for table in TABLES.values():
        for column in table.columns:
            if column.kind in ("id", "ref_id", "account"):
                assert classes.input_class(table.name, column.name) == "sensitive", column
        if table.name in ("disability_certificates", "care_assessments", "parent_situations",
                          "health_conditions", "medical_expenses"):
            assert {classes.input_class(table.name, c) for c in table.names} == {"sensitive"}
    for table, column in ledger_fields() | output_fields():
        if column in ("id_no", "account_no", "release_account"):
            group = classes.LEDGER if (table, column) in ledger_fields() else classes.OUTPUTS
            assert group[table][column].cls == "sensitive", (table, column)
    assert classes.ledger_class("web_users", "password_hash") == "credential"
    # every sensitive fact is masked or restricted without the grant
    for name, d in classes.FACTS.items():
        if d.cls == "sensitive":
            assert d.mask in ("id", "account", "restricted"), name


def test_the_web_masking_reads_the_classes() -> None:
    assert classes.masked_as("id") == privacy.ID_FIELDS
    assert classes.masked_as("restricted") == privacy.SENSITIVE_FACTS
    for name, d in classes.FACTS.items():
        value = "1945-01-01" if d.mask == "birth" else "330106194501011233"
        shown = privacy.mask_value(name, value, reveal=False)
        assert (shown == value) is (d.mask is None), name
    assert {"disability_certificates", "care_assessments",
                                        "parent_situations", "health_conditions",
                                        "medical_expenses"} == privacy.SENSITIVE_TABLES  # fmt: skip
