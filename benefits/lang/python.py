"""The Python backend: a checked expression as a closure over one person's facts.

Numbers are exact (:class:`Fraction`; a decimal fact stays a float until ``floor()``); money
facts and money columns hold integer fen in the mapping and are read as ``Fraction(fen, 100)``.
Unknown values follow the sweep's (Kleene) logic: a comparison with ``None`` is ``None``,
``None and False`` is ``False``, ``x if None else y`` is ``y``. An amount is rounded half-up
to the cent once, by :func:`to_fen`.

Example:
    >>> from benefits.lang.check import Scope, check
    >>> scope = Scope(facts={"hh_pci": "money"}, params={"dibao_std": Fraction(1301)})
    >>> to_fen(to_python(check("dibao_std - hh_pci", scope))({"hh_pci": 80000}))
    50100
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from benefits.lang.check import PY_CMP, half_up_fen
from benefits.lang.nodes import Months, Node
from benefits.period import add_months, completed_years

Fn = Callable[[Mapping[str, Any]], Any]
Flags = Mapping[str, Callable[[str], str]]  # flag function → the mapping key of its argument


def to_fen(value: Any) -> int | None:
    """An amount in yuan rounded half-up to the cent, as integer fen (None stays None).

    >>> to_fen(Fraction(39030, 100)), to_fen(Fraction(-1, 200)), to_fen(None)
    (39030, -1, None)
    """
    return None if value is None else half_up_fen(Fraction(value))


def to_python(node: Node, flags: Flags | None = None) -> Fn:
    """A function of the facts mapping that evaluates `node`; `flags` name the mapping keys
    of flag functions (``paid('x')`` → ``paid__x``)."""
    return _Lower(flags or {}).run(node)


def kleene_and(values: list[Any]) -> Any:
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def kleene_or(values: list[Any]) -> Any:
    if any(v is True for v in values):
        return True
    if any(v is None for v in values):
        return None
    return False


def _reader(name: str, den: int) -> Fn:
    if den == 1:
        return lambda env: env.get(name)
    return lambda env: None if (v := env.get(name)) is None else Fraction(v, den)


class _Lower:
    def __init__(self, flags: Flags) -> None:
        self.flags = flags

    def run(self, node: Node) -> Fn:
        return getattr(self, f"op_{node.op}")(node)

    def runs(self, node: Node) -> list[Fn]:
        return [self.run(a) for a in node.args]

    # leaves
    def op_const(self, node: Node) -> Fn:
        value = node.value
        return lambda env: value

    def op_fact(self, node: Node) -> Fn:
        name, kind = node.value
        return _reader(name, 100 if kind == "money" else 1)

    def op_col(self, node: Node) -> Fn:
        return _reader(node.value, node.den if node.kind == "num" else 1)

    def op_flag(self, node: Node) -> Fn:
        fn, arg = node.value
        key = self.flags[fn](arg)
        return lambda env: bool(env.get(key, False))

    # logic
    def op_not(self, node: Node) -> Fn:
        (a,) = self.runs(node)
        return lambda env: None if (v := a(env)) is None else not v

    def op_and(self, node: Node) -> Fn:
        parts = self.runs(node)
        return lambda env: kleene_and([p(env) for p in parts])

    def op_or(self, node: Node) -> Fn:
        parts = self.runs(node)
        return lambda env: kleene_or([p(env) for p in parts])

    def op_isnull(self, node: Node) -> Fn:
        (a,) = self.runs(node)
        is_ = node.value
        return lambda env: (a(env) is None) == is_

    def op_in(self, node: Node) -> Fn:
        (a,) = self.runs(node)
        items, _, negate = node.value

        def run(env: Mapping[str, Any]) -> Any:
            x = a(env)
            return None if x is None else (x in items) != negate

        return run

    def op_cmp(self, node: Node) -> Fn:
        a, b = self.runs(node)
        fn = PY_CMP[node.value]

        def run(env: Mapping[str, Any]) -> Any:
            x, y = a(env), b(env)
            return None if x is None or y is None else fn(x, y)

        return run

    def op_if(self, node: Node) -> Fn:
        test, yes, no = self.runs(node)
        return lambda env: yes(env) if test(env) is True else no(env)

    # numbers
    def op_add(self, node: Node) -> Fn:
        a, b = self.runs(node)
        sign = node.value

        def run(env: Mapping[str, Any]) -> Any:
            x, y = a(env), b(env)
            if x is None or y is None:
                return None
            return x + y if sign == 1 else x - y

        return run

    def op_scale(self, node: Node) -> Fn:
        (a,) = self.runs(node)
        factor = node.value[0]
        return lambda env: None if (v := a(env)) is None else v * factor

    def op_mul(self, node: Node) -> Fn:
        a, b = self.runs(node)

        def run(env: Mapping[str, Any]) -> Any:
            x, y = a(env), b(env)
            return None if x is None or y is None else x * y

        return run

    def op_min(self, node: Node) -> Fn:
        parts = self.runs(node)

        def run(env: Mapping[str, Any]) -> Any:
            values = [p(env) for p in parts]
            return None if any(v is None for v in values) else min(values)

        return run

    def op_max(self, node: Node) -> Fn:
        parts = self.runs(node)

        def run(env: Mapping[str, Any]) -> Any:
            values = [p(env) for p in parts]
            return None if any(v is None for v in values) else max(values)

        return run

    def op_floor(self, node: Node) -> Fn:
        (a,) = self.runs(node)
        return lambda env: None if (v := a(env)) is None else Fraction(math.floor(v))

    def op_round(self, node: Node) -> Fn:
        (a,) = self.runs(node)
        return lambda env: None if (v := a(env)) is None else Fraction(to_fen(v), 100)

    def op_years(self, node: Node) -> Fn:
        a, b = self.runs(node)

        def run(env: Mapping[str, Any]) -> Any:
            x, y = a(env), b(env)
            return None if x is None or y is None else completed_years(x, y)

        return run

    def op_coalesce(self, node: Node) -> Fn:
        parts = self.runs(node)
        return lambda env: next((v for p in parts if (v := p(env)) is not None), None)

    # dates
    def op_shift(self, node: Node) -> Fn:
        (a,) = self.runs(node)
        d, sign = node.value
        if isinstance(d, Months):
            return lambda env: None if (v := a(env)) is None else add_months(v, sign * d.n)
        delta = dt.timedelta(days=sign * d.days)
        return lambda env: None if (v := a(env)) is None else v + delta
