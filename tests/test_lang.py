"""The expression language checked once (benefits.lang): types, and two backends that agree."""

from __future__ import annotations

import datetime as dt
import doctest
import importlib
from fractions import Fraction
from typing import Any

import polars as pl
import pytest

from benefits.lang import MONEY, ExprError, Scope, check, check_amount
from benefits.lang.polars import to_fen as polars_fen
from benefits.lang.polars import to_polars
from benefits.lang.python import to_fen as python_fen
from benefits.lang.python import to_python

FACTS = {"pci": "money", "age": "int", "years": "number", "day": "date", "st": "str", "ok": "bool"}
ROWS: list[dict[str, Any]] = [
    {"pci": 80000, "age": 80, "years": 15.5, "day": dt.date(2024, 12, 31), "st": "dibao",
     "ok": True, "comp": 12345, "f.paid": True},
    {"pci": 130100, "age": 79, "years": 16.0, "day": dt.date(2025, 4, 1), "st": "x",
     "ok": None, "comp": None, "f.paid": False},
    {"pci": None, "age": 100, "years": 4.99, "day": None, "st": None, "ok": False,
     "comp": -1, "f.paid": False},
    {"pci": -50, "age": 17, "years": 0.0, "day": dt.date(2025, 1, 31), "st": "dibian",
     "ok": True, "comp": 5, "f.paid": True},
]  # fmt: skip
FRAME = pl.DataFrame(
    ROWS,
    schema={"pci": pl.Int64, "age": pl.Int64, "years": pl.Float64, "day": pl.Date,
            "st": pl.String, "ok": pl.Boolean, "comp": pl.Int64, "f.paid": pl.Boolean},
)  # fmt: skip


def scope() -> Scope:
    from benefits.lang.polars import fen_value

    return Scope(
        facts=FACTS,
        params={"std": Fraction(1301), "rate": Fraction("0.30"), "avg": Fraction(74997),
                "half": Fraction(1, 2), "kinds": "dibao"},
        constants={"month_start": dt.date(2025, 1, 1)},
        prev_params={"avg": Fraction(68488)},
        columns={"comp": fen_value(pl.col("comp"))},
        functions={"paid": lambda v: _flag(v.const)},
        lets={"gap": "std - pci", "old": "age >= 80"},
    )  # fmt: skip


def _flag(pid: str) -> Any:
    from benefits.lang.polars import Value

    return Value("bool", expr=pl.col(f"{pid}.paid"))


def both(text: str) -> tuple[list[Any], list[Any]]:
    """The expression's value for each row, from the Polars and from the Python backend."""
    s = scope()
    node = check(text, s)
    v = to_polars(node, s)
    if v.kind == "num":
        e, den = v.num_parts()
        frame = FRAME.select(e.alias("x")) if not v.is_const else None
        nums = [v.const] * len(ROWS) if frame is None else frame["x"].to_list()
        polars_side = [None if n is None else Fraction(n) / (1 if v.is_const else den)
                       for n in nums]  # fmt: skip
    else:
        out = FRAME.select(v.polars().alias("x"))["x"]
        polars_side = out.to_list() if len(out) == len(ROWS) else out.to_list() * len(ROWS)
    fn = to_python(node, {"paid": lambda pid: f"{pid}.paid"})
    python_side = [fn(r) for r in ROWS]
    return polars_side, python_side


TABLE = [
    ("gap", [Fraction(50100, 100), Fraction(0), None, Fraction(130150, 100)]),
    ("rate * std + pci", None),
    ("2 * previous_month(avg) / 12 - pci", None),
    ("half * (pci - 5000)", None),
    ("min(half * (pci - 5000), 6 * std, 500)", None),
    ("max(pci, comp) - min(comp, 3)", None),
    ("-pci", None),
    ("pci * comp", None),
    ("round(avg / 12 * pci / 7)", None),
    ("floor(years - 15)", None),
    ("floor(years * 3 / 2)", None),
    ("coalesce(pci, comp, 7)", None),
    ("1 if pci < std else 2.5", None),
    ("pci if ok else None", None),
    ("years_between(day, month_start)", None),
    ("pci < std", [True, False, None, True]),
    ("pci * 12 < avg", None),
    ("0 < pci <= std", None),
    ("old and ok", [True, False, False, False]),
    ("old or ok", [True, None, True, True]),
    ("not ok", [False, None, True, False]),
    ("st in ['dibao', 'dibian']", [True, False, None, True]),
    ("st not in ['dibao']", [False, True, None, True]),
    ("st == kinds", [True, False, None, False]),
    ("age in [80, 17]", [True, False, False, True]),
    ("pci in [800, -0.5]", [True, False, None, True]),
    ("day <= month_start + days(90)", [True, True, None, True]),
    ("day - months(1) < month_start", [True, False, None, True]),
    ("day is None", [False, False, True, False]),
    ("comp is not None and comp > 0", [True, False, False, True]),
    ("paid('f') and not (pci is None)", [True, False, False, True]),
    ("st if ok else 'none'", ["dibao", "none", "none", "dibian"]),
    ("coalesce(day, month_start)", None),
    ("day + days(1) if ok else day", None),
]


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_the_polars_and_python_backends_agree(text: str, expected: list | None) -> None:
    polars_side, python_side = both(text)
    assert polars_side == python_side
    if expected is not None:
        assert python_side == expected


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("rate * std", 39030),  # 390.30 exactly, not 390.2999…
        ("2 * previous_month(avg) / 12", 1141467),  # 11414.666… → 11414.67
        ("half * 0.01", 1),  # 0.005 → 0.01: half-up
        ("-half * 0.01", -1),  # away from zero
        ("avg / 12 * 3", 1874925),
        ("round(2 * avg / 12) + round(avg / 12 * 9)", 6874725),
    ],
)
def test_money_is_exact_and_rounded_half_up_once_in_both(text: str, fen: int) -> None:
    s = scope()
    node = check_amount(check(text, s), text)
    assert FRAME.head(1).select(polars_fen(to_polars(node, s))).item() == fen
    assert python_fen(to_python(node)({})) == fen


def test_amounts_with_facts_round_alike() -> None:
    s = scope()
    for text in ("avg / 12 * pci / 7", "half * pci", "comp / 3 - 0.005", "pci * rate / 9"):
        node = check_amount(check(text, s), text)
        polars_side = FRAME.select(polars_fen(to_polars(node, s)).alias("x"))["x"].to_list()
        fn = to_python(node)
        assert polars_side == [python_fen(fn(r)) for r in ROWS], text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pci / age", "division only by a parameter"),
        ("pci / (std - 1301)", "division by zero"),
        ("pci + st", "cannot apply Add to num and str"),
        ("pci < day", "cannot compare num with date"),
        ("ok and pci", "expected a condition"),
        ("pci in [0.001]", "'in' list does not match the number's precision"),
        ("st in st", "'in' needs a list of constants"),
        ("day is 3", "'is' compares only with None"),
        ("1 if ok else 'a'", "both branches must have one type"),
        ("days(1.5)", "days() takes a whole number"),
        ("min(pci, st)", "min() takes numbers"),
        ("coalesce(pci, st)", "coalesce() takes values of one type"),
        ("previous_month(std)", "unknown parameter 'std'"),
        ("round(years)", "a decimal fact must go through floor()"),
        ("nope(1)", "unknown function nope()"),
        ("x.y", "unknown name 'x.y'"),
        ("lambda: 1", "Lambda is not allowed"),
    ],
)
def test_type_errors_are_caught_when_checking(text: str, message: str) -> None:
    with pytest.raises(ExprError) as raised:
        check(text, scope())
    assert str(raised.value).startswith(f"{text!r}: ") and message in str(raised.value)


def test_an_amount_must_be_a_number_without_an_unfloored_decimal() -> None:
    s = scope()
    with pytest.raises(ExprError, match="an amount must be a number, not bool"):
        check_amount(check("pci < 1", s), "pci < 1")
    with pytest.raises(ExprError, match="floor"):
        check_amount(check("years + 1", s), "years + 1")
    assert check_amount(check("floor(years + 1)", s), "").kind == "num"


def test_constants_fold_exactly_and_names_are_recorded_once_in_order() -> None:
    s = scope()
    node = check("std * 2 / 3 + previous_month(avg)", s)
    assert node.is_const and node.value == Fraction(2602, 3) + 68488
    s = scope()
    node = check("gap > 0 and old and pci < std", s)
    assert node.op == "and" and node.kind == "bool"
    assert s.used_facts == ["pci", "age"] and s.used_params == ["std"]


def test_a_money_column_type_is_fen_over_100() -> None:
    s = Scope(columns={"p.amount": MONEY})
    node = check("p.amount + 1", s)
    assert (node.kind, node.den) == ("num", 100)
    assert to_python(node)({"p.amount": 1234}) == Fraction(1334, 100)


@pytest.mark.parametrize(
    "module",
    ["benefits.lang.check", "benefits.lang.nodes", "benefits.lang.polars",
     "benefits.lang.python", "benefits.expr", "benefits.pipeline"],
)  # fmt: skip
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
