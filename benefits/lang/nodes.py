"""The typed intermediate form of a rule expression: one node kind per operation.

A node carries its type — ``kind`` (bool, num, date, str, null, delta, list) and, for numbers,
the constant denominator ``den`` its values are exact over and whether it reads a decimal fact
(``is_float``) — so the backends (:mod:`benefits.lang.polars`, :mod:`benefits.lang.python`)
translate it without checking anything again. Constants are exact (:class:`Fraction` for
numbers), parameters are already resolved for the month, ``let`` names are inlined.

Example:
    >>> Node("const", "num", value=Fraction(1301)).is_const
    True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

KINDS = ("bool", "num", "date", "str", "null", "delta", "list")


class ExprError(ValueError):
    """An expression that does not compile; the message says what and where."""


@dataclass(frozen=True)
class Months:
    """A calendar-month offset, from ``months(n)``."""

    n: int


@dataclass(frozen=True, eq=False)
class Node:
    """One operation of a checked expression.

    ``op`` is one of: const, fact, col, flag, not, and, or, add, scale, mul, cmp, isnull, in,
    if, min, max, floor, round, shift, years, coalesce. ``value`` holds what the op needs
    besides its arguments (the constant, the name, the comparison, the scale factor …).
    """

    op: str
    kind: str
    args: tuple[Node, ...] = ()
    value: Any = None
    den: int = 1
    is_float: bool = False

    @property
    def is_const(self) -> bool:
        return self.op == "const"


def const(value: Any) -> Node:
    """A constant node from a Python value (Fraction/Decimal/int, bool, date, str, None)."""
    from decimal import Decimal

    if value is None:
        return Node("const", "null")
    if isinstance(value, bool):
        return Node("const", "bool", value=value)
    if isinstance(value, int | Decimal | Fraction):
        f = Fraction(value)
        return Node("const", "num", value=f, den=f.denominator)
    if isinstance(value, dt.date):
        return Node("const", "date", value=value)
    if isinstance(value, str):
        return Node("const", "str", value=value)
    raise ExprError(f"unsupported constant {value!r}")


@dataclass(frozen=True)
class ColumnType:
    """The type of an extra name (``policy.amount``, a component, a flag column)."""

    kind: str
    den: int = 1
    is_float: bool = False


MONEY = ColumnType("num", 100)
