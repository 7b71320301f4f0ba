"""The rule expression language: exact money, dates, null logic, safety."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import polars as pl
import pytest

from benefits.expr import ExprError, Scope, compile_expr, names_in, to_fen

FACTS = {"pci": "money", "age": "int", "years": "number", "day": "date", "st": "str", "ok": "bool"}
PARAMS = {
    "dibao_std": Fraction(1301),
    "rate": Fraction("0.30"),
    "avg": Fraction(74997),
    "half": Fraction("0.5"),
}
FRAME = pl.DataFrame(
    {
        "pci": [80000, 130100, None],
        "age": [80, 79, 100],
        "years": [15.5, 16.0, 4.99],
        "day": [dt.date(2024, 12, 31), dt.date(2025, 4, 1), None],
        "st": ["dibao", "x", None],
        "ok": [True, None, False],
    }
)


def run(text: str) -> list:
    scope = Scope(
        facts=FACTS,
        params=PARAMS,
        constants={"month_start": dt.date(2025, 1, 1)},
        prev_params={"avg": Fraction(68488)},
    )
    v = compile_expr(text, scope)
    expr = to_fen(v) if v.kind == "num" else v.polars()
    return FRAME.select(expr.alias("x"))["x"].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dibao_std - pci", [50100, 0, None]),
        ("rate * dibao_std", [39030]),  # 390.30 exactly, not 390.29999
        ("0.2 * dibao_std", [26020]),
        ("2 * previous_month(avg) / 12", [1141467]),  # 11414.666… → 11414.67 half-up
        ("previous_month(avg) / 12 * 7", [3995133]),
        ("round(2 * avg / 12) + round(avg / 12 * 9)", [6874725]),
        ("half * 5001", [250050]),
        ("half * 0.01", [1]),  # 0.005 → 0.01 (half-up)
        ("min(half * (pci - 5000), 6 * dibao_std, 50000)", [-210000, -184950, None]),
    ],
)
def test_money_is_exact(text: str, expected: list) -> None:
    out = run(text)
    assert out[: len(expected)] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pci < dibao_std", [True, False, None]),
        ("pci * 12 < avg", [True, True, None]),
        ("age >= 80 and ok", [True, False, False]),
        ("st in ['dibao', 'dibian']", [True, False, None]),
        ("st not in ['dibao']", [False, True, None]),
        ("day <= month_start + days(90)", [True, True, None]),  # 2025-04-01 included
        ("day < month_start + days(90)", [True, False, None]),
        ("day >= month_start - months(24)", [True, True, None]),
        ("day is None", [False, False, True]),
        ("not ok", [False, None, True]),
        (
            "3 if years < 5 else min(24, 9 + floor(years - 15))",
            [900, 1000, 300],
        ),  # whole numbers shown as fen
    ],
)
def test_conditions(text: str, expected: list) -> None:
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "unknown function"),
        ("pci / age", "division only by a parameter"),
        ("unknown_fact > 1", "unknown name 'unknown_fact'"),
        ("pci + st", "cannot apply"),
        ("age >=", "cannot parse"),
        ("[x for x in st]", "not allowed"),
        ("years + 1", "floor()"),
    ],
)
def test_bad_expressions_are_rejected_with_the_expression(text: str, message: str) -> None:
    with pytest.raises(ExprError, match=message):
        run(text)


def test_names_in_skips_function_names() -> None:
    assert set(names_in("min(a, b * c) if d else floor(e)")) == {"a", "b", "c", "d", "e"}
