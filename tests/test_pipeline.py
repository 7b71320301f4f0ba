"""The pipeline's stages are declared once (benefits.pipeline) and run by both executors."""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest

from benefits.compiled import _lower_one_per, _select_one_per, month_scope
from benefits.errors import RuleError
from benefits.events.decide import MonthDecider
from benefits.events.program import build_program
from benefits.household import ORDER
from benefits.lang import Scope
from benefits.lang.python import to_python
from benefits.period import BenefitMonth
from benefits.pipeline import OnePer, alert_stages, exclusion_stages, message_pieces, one_per_stage
from benefits.rulebook import OnePer as OnePerRule
from benefits.rulebook import load_pack

PACK = load_pack()
MONTH = BenefitMonth.parse("2025-01")

ROWS = [  # household, income (fen), birth date; file order is the list's
    ("H1", 50000, dt.date(1950, 1, 1)),
    ("H1", None, dt.date(1940, 1, 1)),
    ("H1", 50000, dt.date(1960, 1, 1)),
    ("H2", None, None),
    ("H2", None, dt.date(1970, 1, 1)),
    ("H3", 10, dt.date(1980, 5, 5)),
    ("H3", 10, dt.date(1980, 5, 5)),
    ("H3", 9, None),
]


def chosen_by_both(order: list[tuple[str, bool]]) -> tuple[list[int], list[int]]:
    """The row each household keeps, by the Polars and by the Python executor."""
    scope = Scope(facts={"income": "money", "born": "date"})
    rule = OnePerRule.model_validate(
        {
            "by": "household_no",
            "order": [{"desc" if d else "asc": e} for e, d in order],
            "label": {"zh": "每户一条", "en": "once per household"},
        }
    )
    decl = one_per_stage(rule, scope, "test")
    assert isinstance(decl, OnePer)
    frame = pl.DataFrame(
        [{"household_no": h, "income": i, "born": b} for h, i, b in ROWS],
        schema={"household_no": pl.String, "income": pl.Int64, "born": pl.Date},
    ).with_row_index("__i")
    picked = frame.filter(_select_one_per(frame, pl.lit(True), _lower_one_per(decl, scope)))
    polars_side = sorted(picked["__i"].to_list())
    keys = tuple((to_python(n), d) for n, d in decl.keys)
    python_side = []
    for _, members in itertools.groupby(enumerate(ROWS), key=lambda r: r[1][0]):
        rows = [(i, {"income": r[1], "born": r[2], ORDER: i}) for i, r in members]
        python_side.append(MonthDecider._select(rows, keys))
    return polars_side, sorted(python_side)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ([("income", False)], [0, 3, 7]),  # unknown last; a tie goes to the first in the file
        ([("income", True)], [0, 3, 5]),
        ([("income", True), ("born", False)], [0, 4, 5]),  # known beats unknown
        ([("income", True), ("born", True)], [2, 4, 5]),
        ([("born", False)], [1, 4, 5]),
        ([("income * 2 - 1", False), ("born", True)], [2, 4, 7]),
    ],
)
def test_one_per_group_is_chosen_alike_by_both_executors(
    order: list[tuple[str, bool]], expected: list[int]
) -> None:
    polars_side, python_side = chosen_by_both(order)
    assert polars_side == python_side == expected


def test_the_event_path_runs_the_sweeps_declarations() -> None:
    scope, _ = month_scope(PACK, MONTH)
    program = build_program(PACK, MONTH)
    alerts = alert_stages(PACK, scope)
    assert [a.id for a in program.alerts] == [a.id for a in alerts]
    assert [a.message for a in program.alerts] == [a.message for a in alerts]
    components = {p.id: p.components for p in program.policies}
    assert [e.id for e in program.exclusions] == [
        e.id for e in exclusion_stages(PACK, scope, components)
    ]
    death = next(a for a in program.alerts if a.kind == "death_stop")
    assert death.subject_from_due and death.when.kind == "bool" and death.due.kind == "date"


def components() -> dict[str, dict[str, str]]:
    return {p.id: dict(p.components) for p in PACK.policies_for(MONTH)}


def test_exclusions_between_policies_not_in_force_are_left_out() -> None:
    scope, _ = month_scope(PACK, MONTH)
    every = exclusion_stages(PACK, scope, components())
    b = every[0].between[1]
    fewer = exclusion_stages(PACK, scope, {k: v for k, v in components().items() if k != b})
    assert len(fewer) < len(every) and all(b not in e.between for e in fewer)


def test_a_message_placeholder_must_be_a_fact_or_the_due_date() -> None:
    kinds = {"hh_pci": "money"}
    assert message_pieces("{hh_pci} due {due_date}", kinds, "x") == (
        ("hh_pci", "money"), (" due ", ""), ("due_date", "due"),
    )  # fmt: skip
    with pytest.raises(RuleError, match=r"alert 'a': message placeholder \{nope\} is not a fact"):
        message_pieces("{nope}", kinds, "alerts.yaml: alert 'a'")


def test_an_exclusion_compares_amounts_in_fen_on_the_event_path() -> None:
    scope, _ = month_scope(PACK, MONTH)
    [stage] = [
        e for e in exclusion_stages(PACK, scope, components())
        if e.id == "nursing_subsidy_replaces_care_supplement"
    ]  # fmt: skip
    assert stage.when is not None
    fires = to_python(stage.when)
    env = {
        "severe_disability_nursing_subsidy.amount": 10001,
        "tekun_support.care_supplement": 10000,
    }
    assert fires(env) is True
    assert fires({**env, "severe_disability_nursing_subsidy.amount": 10000}) is False
    assert fires({**env, "tekun_support.care_supplement": None}) is None  # unknown: no


@pytest.mark.parametrize(
    ("flags", "held", "mode", "word"),
    [
        ((False, False, False), False, "pay", "not_eligible"),
        ((True, False, False), True, "pay", "not_selected"),
        ((True, True, False), True, "pay", "excluded"),
        ((True, True, True), True, "pay", "held"),
        ((True, True, True), True, "credit", "credited"),  # only payments are held
        ((True, True, True), False, "lead", "lead"),
    ],
)
def test_the_decision_word_is_declared_once(
    flags: tuple[bool, bool, bool], held: bool, mode: str, word: str
) -> None:
    program = build_program(PACK, MONTH)
    spec = next(p for p in program.policies if p.mode == mode)
    assert spec.layout is not None
    names = dict(zip(("eligible", "candidate", "paid"), flags, strict=True))
    assert spec.layout.decision(names, held) == word
    assert spec.layout.header["policy_id"] == spec.id
