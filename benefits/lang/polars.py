"""The Polars backend: a checked expression (:mod:`benefits.lang.nodes`) as a Polars expression.

A number is an integer column over the node's constant denominator (money facts are fen over
100, parameters are folded fractions), so nothing is rounded before :func:`to_fen` rounds an
amount half-up to the cent, once. Extra columns and flag functions (``paid('x')``) come from
the scope the expression was checked in, as :class:`Value` objects and functions.

Example:
    >>> from benefits.lang.check import Scope, check
    >>> scope = Scope(facts={"hh_pci": "money"}, params={"dibao_std": Fraction(1301)})
    >>> v = to_polars(check("dibao_std - hh_pci", scope), scope)
    >>> pl.DataFrame({"hh_pci": [80000]}).select(to_fen(v)).item()
    50100
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import polars as pl

from benefits.lang.check import Scope, half_up_fen, lcm
from benefits.lang.nodes import ExprError, Months, Node
from benefits.period import completed_years_expr

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@dataclass
class Value:
    """A lowered node: a constant (``expr is None``) or a Polars expression.

    For numbers the value is ``expr / den`` (or ``const`` as a Fraction).
    """

    kind: str  # num | bool | date | str | null | delta | list
    expr: pl.Expr | None = None
    const: Any = None
    den: int = 1
    is_float: bool = False

    @property
    def is_const(self) -> bool:
        return self.expr is None

    def polars(self) -> pl.Expr:
        """The value as a Polars expression (numbers: the scaled numerator)."""
        if self.expr is not None:
            return self.expr
        if self.kind == "num":
            return pl.lit(self.const.numerator, dtype=pl.Int64)
        if self.kind == "date":
            return pl.lit(self.const, dtype=pl.Date)
        if self.kind == "null":
            return pl.lit(None)
        return pl.lit(self.const)

    def num_parts(self) -> tuple[pl.Expr, int]:
        """(numerator, denominator) of a number."""
        if self.expr is not None:
            return self.expr, self.den
        f: Fraction = self.const
        return pl.lit(f.numerator, dtype=pl.Int64), f.denominator


FACT_VALUE: dict[str, Callable[[pl.Expr], Value]] = {
    "bool": lambda c: Value("bool", expr=c),
    "int": lambda c: Value("num", expr=c.cast(pl.Int64), den=1),
    "money": lambda c: Value("num", expr=c, den=100),
    "number": lambda c: Value("num", expr=c, den=1, is_float=True),
    "date": lambda c: Value("date", expr=c),
    "str": lambda c: Value("str", expr=c),
}


def fen_value(expr: pl.Expr) -> Value:
    """A fen column as a number (yuan)."""
    return Value("num", expr=expr, den=100)


def to_fen(v: Value, text: str = "") -> pl.Expr:
    """An amount rounded half-up to the cent, as integer fen (Int64)."""
    if v.kind != "num":
        raise ExprError(f"{text!r}: an amount must be a number, not {v.kind}")
    if v.is_const:
        return pl.lit(half_up_fen(v.const), dtype=pl.Int64)
    if v.is_float:
        raise ExprError(f"{text!r}: a decimal fact must go through floor() before an amount")
    e, d = v.num_parts()
    if 100 % d == 0:
        return e * (100 // d) if d != 100 else e
    n = e * 100
    rounded = (n.abs() * 2 + d) // (2 * d)
    return pl.when(n < 0).then(-rounded).otherwise(rounded).cast(pl.Int64)


def _scaled(v: Value, target: int) -> pl.Expr:
    e, d = v.num_parts()
    factor = target // d
    return e if factor == 1 else e * factor


def _den(v: Value) -> int:
    return v.den if not v.is_const else v.const.denominator


def to_polars(node: Node, scope: Scope) -> Value:
    """Lower a checked node; `scope` gives the extra columns' values and flag functions."""
    return _Lower(scope).run(node)


class _Lower:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def run(self, node: Node) -> Value:
        return getattr(self, f"op_{node.op}")(node)

    def num(self, node: Node, expr: pl.Expr) -> Value:
        return Value("num", expr=expr, den=node.den, is_float=node.is_float)

    def scaled(self, node: Node, target: int) -> pl.Expr:
        if node.kind != "num":
            return pl.lit(None)
        return _scaled(self.run(node), target)

    # leaves
    def op_const(self, node: Node) -> Value:
        return Value(node.kind, const=node.value)

    def op_fact(self, node: Node) -> Value:
        name, kind = node.value
        return FACT_VALUE[kind](pl.col(name))

    def op_col(self, node: Node) -> Value:
        return self.scope.columns[node.value]

    def op_flag(self, node: Node) -> Value:
        fn, arg = node.value
        return self.scope.functions[fn](Value("str", const=arg))

    # logic
    def op_not(self, node: Node) -> Value:
        return Value("bool", expr=~self.run(node.args[0]).polars())

    def op_and(self, node: Node) -> Value:
        parts = [self.run(a).polars() for a in node.args]
        out = parts[0]
        for p in parts[1:]:
            out = out & p
        return Value("bool", expr=out)

    def op_or(self, node: Node) -> Value:
        parts = [self.run(a).polars() for a in node.args]
        out = parts[0]
        for p in parts[1:]:
            out = out | p
        return Value("bool", expr=out)

    def op_isnull(self, node: Node) -> Value:
        e = self.run(node.args[0]).polars()
        return Value("bool", expr=e.is_null() if node.value else e.is_not_null())

    def op_in(self, node: Node) -> Value:
        a = self.run(node.args[0])
        _, items, negate = node.value
        expr = pl.when(a.polars().is_not_null()).then(a.polars().is_in(items))
        return Value("bool", expr=~expr if negate else expr)

    def op_cmp(self, node: Node) -> Value:
        a_node, b_node = node.args
        fn = OPS[node.value]
        if "num" in (a_node.kind, b_node.kind):
            den = lcm(a_node.den, b_node.den)
            return Value("bool", expr=fn(self.scaled(a_node, den), self.scaled(b_node, den)))
        return Value("bool", expr=fn(self.run(a_node).polars(), self.run(b_node).polars()))

    def op_if(self, node: Node) -> Value:
        test, yes, no = node.args
        t = self.run(test).polars()
        if node.kind == "num":
            then = pl.when(t).then(self.scaled(yes, node.den)).otherwise(self.scaled(no, node.den))
            return self.num(node, then)
        e = pl.when(t).then(self.run(yes).polars()).otherwise(self.run(no).polars())
        return Value(node.kind, expr=e)

    # numbers
    def op_add(self, node: Node) -> Value:
        a, b = (self.scaled(x, node.den) for x in node.args)
        return self.num(node, a + b if node.value == 1 else a - b)

    def op_scale(self, node: Node) -> Value:
        _, p = node.value
        e, _ = self.run(node.args[0]).num_parts()
        return self.num(node, e * p if p != 1 else e)

    def op_mul(self, node: Node) -> Value:
        ea, _ = self.run(node.args[0]).num_parts()
        eb, _ = self.run(node.args[1]).num_parts()
        return self.num(node, ea * eb)

    def _extreme(self, node: Node, fn: Callable[..., pl.Expr]) -> Value:
        exprs = [self.scaled(a, node.den) for a in node.args]
        # unlike Polars' horizontal min/max, an unknown argument makes the result unknown
        any_null = pl.any_horizontal([e.is_null() for e in exprs])
        return self.num(node, pl.when(~any_null).then(fn(exprs)))

    def op_min(self, node: Node) -> Value:
        return self._extreme(node, pl.min_horizontal)

    def op_max(self, node: Node) -> Value:
        return self._extreme(node, pl.max_horizontal)

    def op_floor(self, node: Node) -> Value:
        a = self.run(node.args[0])
        e, d = a.num_parts()
        if a.is_float:
            return self.num(node, (e / d).floor().cast(pl.Int64))
        return self.num(node, e // d if d != 1 else e)

    def op_round(self, node: Node) -> Value:
        return self.num(node, to_fen(self.run(node.args[0])))

    def op_years(self, node: Node) -> Value:
        a, b = (self.run(x) for x in node.args)
        b_side = b.const if b.is_const else b.polars()
        return self.num(node, completed_years_expr(a.polars(), b_side).cast(pl.Int64))

    def op_coalesce(self, node: Node) -> Value:
        if node.kind == "num":
            return self.num(node, pl.coalesce([self.scaled(a, node.den) for a in node.args]))
        return Value(node.kind, expr=pl.coalesce([self.run(a).polars() for a in node.args]))

    # dates
    def op_shift(self, node: Node) -> Value:
        a = self.run(node.args[0]).polars()
        d, sign = node.value
        if isinstance(d, Months):
            return Value("date", expr=a.dt.offset_by(f"{sign * d.n}mo"))
        return Value("date", expr=a + pl.duration(days=sign * d.days))


__all__ = ["FACT_VALUE", "Value", "dt", "fen_value", "to_fen", "to_polars"]
