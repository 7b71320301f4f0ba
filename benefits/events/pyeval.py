"""An exact Python evaluator of the rule expression language (amounts, due dates, orderings).

The same expressions as :mod:`benefits.expr`, parsed with :mod:`ast`, but evaluated for one
person at a time with :class:`fractions.Fraction`: money facts are integer fen turned into
``Fraction(fen, 100)``, parameters are fractions, and an amount is rounded half-up to the cent
once, at the end (:func:`to_fen`) — so ``0.30 * 1301`` is 390.30 exactly, as in the sweep.
Unknown values follow the sweep's (Kleene) logic: a comparison with ``None`` is ``None``,
``None and False`` is ``False``, ``x if None else y`` is ``y``.

Each expression is compiled once into nested closures; evaluation is a call with the
person's facts.

Example:
    >>> ev = PyEval(facts={"hh_pci": "money"}, params={"dibao_std": Fraction(1301)})
    >>> to_fen(ev.compile("dibao_std - hh_pci")({"hh_pci": 80000}))
    50100
"""

from __future__ import annotations

import ast
import datetime as dt
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from benefits.expr import ExprError, Months
from benefits.period import add_months, completed_years

Fn = Callable[[Mapping[str, Any]], Any]
HALF = Fraction(1, 2)


def to_fen(value: Any, text: str = "") -> int | None:
    """An amount in yuan rounded half-up to the cent, as integer fen (None stays None).

    >>> to_fen(Fraction(39030, 100)), to_fen(Fraction(-1, 200)), to_fen(None)
    (39030, -1, None)
    """
    if value is None:
        return None
    if isinstance(value, float):
        raise ExprError(f"{text!r}: a decimal fact must go through floor() before an amount")
    if isinstance(value, bool) or not isinstance(value, int | Fraction):
        raise ExprError(f"{text!r}: an amount must be a number, not {type(value).__name__}")
    cents = Fraction(value) * 100
    q = math.floor(abs(cents) + HALF)
    return q if cents >= 0 else -q


def _not(v: Any) -> Any:
    return None if v is None else not v


def _and(values: list[Any]) -> Any:
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def _or(values: list[Any]) -> Any:
    if any(v is True for v in values):
        return True
    if any(v is None for v in values):
        return None
    return False


def _num(v: Any) -> bool:
    return isinstance(v, int | Fraction | float) and not isinstance(v, bool)


def _div(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, float) or isinstance(b, float):
        return float(a) / float(b)
    return Fraction(a) / Fraction(b)


def _shift(day: Any, delta: Any, sign: int) -> Any:
    if day is None:
        return None
    if isinstance(delta, Months):
        return add_months(day, sign * delta.n)
    return day + sign * delta


_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda x, y: x == y,
    ast.NotEq: lambda x, y: x != y,
    ast.Lt: lambda x, y: x < y,
    ast.LtE: lambda x, y: x <= y,
    ast.Gt: lambda x, y: x > y,
    ast.GtE: lambda x, y: x >= y,
}


class PyEval:
    """Compiles expressions over facts (by kind), parameters, constants and named lets.

    `columns` are extra names read from the evaluation mapping as they are (e.g.
    ``tekun_support.care_supplement`` as a Fraction); `functions` map a function name to the
    mapping key it reads, given its quoted argument (``paid('x')`` → ``paid__x``).
    """

    def __init__(
        self,
        *,
        facts: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        prev_params: Mapping[str, Any] | None = None,
        constants: Mapping[str, Any] | None = None,
        lets: Mapping[str, str] | None = None,
        columns: frozenset[str] = frozenset(),
        functions: Mapping[str, Callable[[str], str]] | None = None,
    ) -> None:
        self.facts = dict(facts or {})
        self.params = dict(params or {})
        self.prev_params = dict(prev_params or {})
        self.constants = dict(constants or {})
        self.lets = dict(lets or {})
        self.columns = columns
        self.functions = dict(functions or {})
        self._cache: dict[str, Fn] = {}

    def with_lets(self, lets: Mapping[str, str], columns: frozenset[str] = frozenset()) -> PyEval:
        """The same names plus a policy's lets (and extra columns)."""
        return PyEval(
            facts=self.facts,
            params=self.params,
            prev_params=self.prev_params,
            constants=self.constants,
            lets=lets,
            columns=self.columns | columns,
            functions=self.functions,
        )

    def compile(self, text: str) -> Fn:
        """A function of the facts mapping that evaluates `text`."""
        fn = self._cache.get(text)
        if fn is None:
            try:
                tree = ast.parse(str(text).strip(), mode="eval")
            except SyntaxError as exc:
                raise ExprError(f"cannot parse {text!r}: {exc.msg}") from exc
            fn = _Builder(self, str(text).strip()).build(tree.body)
            self._cache[text] = fn
        return fn

    def value(self, text: str, env: Mapping[str, Any]) -> Any:
        """Evaluate once (compiling on first use)."""
        return self.compile(text)(env)


class _Builder:
    def __init__(self, ev: PyEval, text: str) -> None:
        self.ev = ev
        self.text = text

    def fail(self, message: str) -> ExprError:
        return ExprError(f"{self.text!r}: {message}")

    def build(self, node: ast.AST) -> Fn:
        method = getattr(self, f"b_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"{type(node).__name__} is not allowed in a rule expression")
        return method(node)

    @staticmethod
    def const(value: Any) -> Fn:
        return lambda env: value

    # leaves
    def b_Constant(self, node: ast.Constant) -> Fn:
        v = node.value
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return self.const(v)
        if isinstance(v, int | float):
            segment = ast.get_source_segment(self.text, node) or repr(v)
            return self.const(Fraction(Decimal(segment)))
        raise self.fail(f"constant {v!r} is not allowed")

    def b_Name(self, node: ast.Name) -> Fn:
        name, ev = node.id, self.ev
        if name in ev.lets:
            tree = ast.parse(ev.lets[name].strip(), mode="eval")
            return _Builder(ev, ev.lets[name]).build(tree.body)
        if name in ev.columns:
            return lambda env: env.get(name)
        if name in ev.facts:
            kind = ev.facts[name]
            if kind == "money":
                return lambda env: None if (v := env.get(name)) is None else Fraction(v, 100)
            return lambda env: env.get(name)
        if name in ev.params:
            return self.const(_param(ev.params[name]))
        if name in ev.constants:
            return self.const(_param(ev.constants[name]))
        raise self.fail(f"unknown name '{name}' (not a fact, parameter or constant)")

    def b_Attribute(self, node: ast.Attribute) -> Fn:
        if isinstance(node.value, ast.Name):
            dotted = f"{node.value.id}.{node.attr}"
            if dotted in self.ev.columns:
                return lambda env: env.get(dotted)
        raise self.fail(f"unknown name '{ast.unparse(node)}'")

    def b_List(self, node: ast.List | ast.Tuple) -> Fn:
        items = [self.build(e)({}) for e in node.elts]
        return self.const(items)

    b_Tuple = b_List

    # operators
    def b_BoolOp(self, node: ast.BoolOp) -> Fn:
        parts = [self.build(v) for v in node.values]
        combine = _and if isinstance(node.op, ast.And) else _or
        return lambda env: combine([p(env) for p in parts])

    def b_UnaryOp(self, node: ast.UnaryOp) -> Fn:
        inner = self.build(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: _not(inner(env))
        if isinstance(node.op, ast.USub):
            return lambda env: None if (v := inner(env)) is None else -v
        raise self.fail(f"operator {type(node.op).__name__} is not allowed here")

    def b_BinOp(self, node: ast.BinOp) -> Fn:
        a, b = self.build(node.left), self.build(node.right)
        op = type(node.op)

        def run(env: Mapping[str, Any]) -> Any:
            x, y = a(env), b(env)
            if isinstance(y, dt.timedelta | Months):
                return _shift(x, y, 1 if op is ast.Add else -1)
            if x is None or y is None:
                return None
            if op is ast.Add:
                return x + y
            if op is ast.Sub:
                return x - y
            if op is ast.Mult:
                return x * y
            if op is ast.Div:
                return _div(x, y)
            raise self.fail(f"operator {op.__name__} is not allowed")

        return run

    def b_Compare(self, node: ast.Compare) -> Fn:
        left = self.build(node.left)
        rights = [self.build(c) for c in node.comparators]
        ops = list(node.ops)

        def run(env: Mapping[str, Any]) -> Any:
            x = left(env)
            results = []
            for op, right in zip(ops, rights, strict=True):
                y = right(env)
                results.append(_compare(x, op, y))
                x = y
            return results[0] if len(results) == 1 else _and(results)

        return run

    def b_IfExp(self, node: ast.IfExp) -> Fn:
        test, yes, no = self.build(node.test), self.build(node.body), self.build(node.orelse)
        return lambda env: yes(env) if test(env) is True else no(env)

    def b_Call(self, node: ast.Call) -> Fn:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self.fail("only plain function calls like min(a, b) are allowed")
        name = node.func.id
        ev = self.ev
        if name == "previous_month":
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                raise self.fail("previous_month() takes one parameter name")
            pname = node.args[0].id
            if pname not in ev.prev_params:
                raise self.fail(f"unknown parameter '{pname}'")
            return self.const(_param(ev.prev_params[pname]))
        if name in ev.functions:
            arg = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise self.fail(f"{name}() takes a quoted name")
            key = ev.functions[name](arg.value)
            return lambda env: bool(env.get(key, False))
        args = [self.build(a) for a in node.args]
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise self.fail(f"unknown function {name}()")
        return lambda env: fn(*[a(env) for a in args])


def _param(value: Any) -> Any:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return Fraction(value)
    return value


def _compare(x: Any, op: ast.cmpop, y: Any) -> Any:
    if isinstance(op, ast.Is | ast.IsNot):
        return (x is None) == isinstance(op, ast.Is)
    if isinstance(op, ast.In | ast.NotIn):
        if x is None:
            return None
        hit = x in y
        return hit if isinstance(op, ast.In) else not hit
    if x is None or y is None:
        return None
    return _CMP[type(op)](x, y)


def _min(*args: Any) -> Any:
    return None if any(a is None for a in args) else min(args)


def _max(*args: Any) -> Any:
    return None if any(a is None for a in args) else max(args)


def _floor(a: Any) -> Any:
    return None if a is None else Fraction(math.floor(a))


def _round(a: Any) -> Any:
    return None if a is None else Fraction(to_fen(a), 100)  # type: ignore[arg-type]


def _days(a: Any) -> Any:
    return dt.timedelta(days=int(a))


def _months(a: Any) -> Any:
    return Months(int(a))


def _years_between(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return completed_years(a, b)


def _coalesce(*args: Any) -> Any:
    return next((a for a in args if a is not None), None)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": _min,
    "max": _max,
    "floor": _floor,
    "round": _round,
    "days": _days,
    "months": _months,
    "years_between": _years_between,
    "coalesce": _coalesce,
}
