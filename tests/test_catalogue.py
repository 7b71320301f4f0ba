"""The fact and table declarations of the rule pack: loading, checks and errors."""

from __future__ import annotations

import doctest
import importlib
import shutil
from pathlib import Path

import pytest

from benefits.catalogue import default_catalogue, load_catalogue
from benefits.errors import RuleError
from benefits.merge import FACTS, ROW_FACTS
from benefits.resources import bundled
from benefits.schema import TABLES, load_tables


def test_the_bundled_catalogue_is_the_importable_one() -> None:
    cat = default_catalogue()
    assert FACTS is cat.facts
    assert cat.row_facts == ROW_FACTS
    assert cat.tables == TABLES
    assert cat.columns[: len(FACTS)] == list(FACTS)
    assert ROW_FACTS == ("persons_row", "death_row", "assistance_row", "hh_finance_row",
                         "cert_row", "care_row", "pension_row", "bank_row")  # fmt: skip
    # every fact is computed after what it reads
    order = cat.order
    assert order.index("alive") > order.index("death_date")
    assert order.index("hh_has_dibao") > order.index("status")
    assert order.index("account_issue") > order.index("name")


def test_periods_are_declared_once_per_table() -> None:
    periods = {n: t.period for n, t in TABLES.items() if t.period is not None}
    assert {n: (p.start, p.end, p.status) for n, p in periods.items()} == {
        "parent_situations": ("start_date", "end_date", None),
        "health_conditions": ("diagnosed_on", "end_date", None),
        "disability_certificates": ("issue_date", "expiry_date", ("status", "valid")),
    }


def pack_copy(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(bundled("rules"), rules)
    return rules


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("pick: first, row: death_row}", "pick: first, row: death_row, table2: x}",
         "selections.death.table2"),
        ("  death: {table: deaths,", "  death: {table: funerals,", "unknown table 'funerals'"),
        ("open_on: month_start, pick: all}", "open_on: next_week, pick: all}", "open_on"),
        ("  pension: {table: pensions, pick: first,", "  pension: {table: pensions, pick: all,",
         "picks one row"),
        ("formula: {present: father_situation}", "formula: {present: fathers_situation}",
         "unknown name 'fathers_situation'"),
        ("formula: {present: father_situation}", "formula: {maybe: father_situation}",
         "unknown operator 'maybe'"),
        ("formula: {present: mother_id_no}", "formula: {present: mother_known}",
         "a cycle among"),
        ("    from: medical\n    sum: out_of_pocket", "    from: medical\n    sum: spent",
         "'spent' is not a column of medical_expenses"),
        ("order: [-issue_date, grade, cert_no]", "order: [-issue_date, grade, colour]",
         "order: 'colour'"),
    ],
)  # fmt: skip
def test_a_wrong_fact_declaration_names_the_file_and_the_fault(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    rules = pack_copy(tmp_path)
    edit(rules / "facts.yaml", old, new)
    with pytest.raises(RuleError) as err:
        load_catalogue(rules)
    assert "facts.yaml" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("period: {start: diagnosed_on, end: end_date}",
         "period: {start: diagnosed_on, end: condition}", "start and end must be date columns"),
        ("    index: id_no\n    columns:\n      - {name: id_no, kind: id, required: true}\n"
         "      - {name: death_date",
         "    columns:\n      - {name: id_no, kind: id, required: true}\n      - {name: death_date",
         "needs `index`"),
        ("kind: grade, required: true}", "kind: colour, required: true}", "kind"),
    ],
)  # fmt: skip
def test_a_wrong_table_declaration_names_the_file_and_the_fault(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    rules = pack_copy(tmp_path)
    edit(rules / "tables.yaml", old, new)
    with pytest.raises(RuleError) as err:
        load_tables(rules / "tables.yaml")
    assert "tables.yaml" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    "module", ["benefits.catalogue", "benefits.validity", "benefits.household"]
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
