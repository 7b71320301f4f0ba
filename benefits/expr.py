"""The rule expression language, compiled to Polars expressions with exact money.

Rule files write conditions and amounts as short Python-syntax expressions over facts and
parameters (``age >= 80``, ``dibao_std - hh_pci``, ``min(ta_rate * (oop_12m - ta_deductible),
ta_cap)``). They are parsed with :mod:`ast` (a whitelist of node types, nothing is executed)
and compiled to Polars.

Numbers are exact: a numeric node is an integer (or, for `contribution_years`, float) column
over a constant integer denominator — money facts are integer fen over 100, parameters are
fractions folded at compile time — so ``0.30 * 1301`` is 390.30 exactly and
``74997 / 12`` is never rounded before the final half-up rounding to the cent.

Example:
    >>> import polars as pl
    >>> scope = Scope(facts={"hh_pci": "money"}, params={"dibao_std": Fraction(1301)})
    >>> v = compile_expr("dibao_std - hh_pci", scope)
    >>> pl.DataFrame({"hh_pci": [80000]}).select(to_fen(v)).item()
    50100
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from benefits.period import add_months, completed_years, completed_years_expr


class ExprError(ValueError):
    """An expression that does not compile; the message says what and where."""


@dataclass(frozen=True)
class Months:
    """A calendar-month offset, from ``months(n)``."""

    n: int


@dataclass
class Value:
    """A compiled node: a constant (``expr is None``) or a Polars expression.

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


def const(value: Any) -> Value:
    """A constant node from a Python value (Fraction/Decimal/int, bool, date, str, None)."""
    if value is None:
        return Value("null", const=None)
    if isinstance(value, bool):
        return Value("bool", const=value)
    if isinstance(value, int | Decimal | Fraction):
        return Value("num", const=Fraction(value))
    if isinstance(value, dt.date):
        return Value("date", const=value)
    if isinstance(value, str):
        return Value("str", const=value)
    raise ExprError(f"unsupported constant {value!r}")


@dataclass
class Scope:
    """What names mean when compiling: facts (columns), parameters, constants and functions.

    `used_facts` and `used_params` record what an expression read, for the audit trace.
    """

    facts: dict[str, str] = field(default_factory=dict)  # name -> fact kind
    params: dict[str, Any] = field(default_factory=dict)  # name -> value in force for M
    constants: dict[str, Any] = field(default_factory=dict)  # month_start, …
    columns: dict[str, Value] = field(default_factory=dict)  # extra names (policy.amount …)
    functions: dict[str, Callable[..., Value]] = field(default_factory=dict)
    prev_params: dict[str, Any] = field(default_factory=dict)  # for previous_month(name)
    lets: dict[str, str] = field(default_factory=dict)  # named sub-expressions (inlined)
    used_facts: list[str] = field(default_factory=list)
    used_params: list[str] = field(default_factory=list)
    used_prev_params: list[str] = field(default_factory=list)

    def note(self, bucket: list[str], name: str) -> None:
        if name not in bucket:
            bucket.append(name)

    def fresh(self) -> Scope:
        """The same names with empty usage records."""
        return Scope(
            self.facts,
            self.params,
            self.constants,
            self.columns,
            self.functions,
            self.prev_params,
            self.lets,
        )


FACT_VALUE = {
    "bool": lambda c: Value("bool", expr=c),
    "int": lambda c: Value("num", expr=c.cast(pl.Int64), den=1),
    "money": lambda c: Value("num", expr=c, den=100),
    "number": lambda c: Value("num", expr=c, den=1, is_float=True),
    "date": lambda c: Value("date", expr=c),
    "str": lambda c: Value("str", expr=c),
}


def parse(text: str) -> ast.Expression:
    """Parse an expression, with errors that quote it."""
    try:
        return ast.parse(str(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"cannot parse {text!r}: {exc.msg}") from exc


def names_in(text: str) -> list[str]:
    """Every plain name an expression mentions, in order.

    >>> names_in("age >= 80 and resident")
    ['age', 'resident']
    """
    tree = parse(text)
    functions = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    seen: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in functions and node.id not in seen:
            seen.append(node.id)
    return seen


def compile_expr(text: str, scope: Scope) -> Value:
    """Compile an expression in a scope (see module doc)."""
    tree = parse(text)
    return _Compiler(str(text), scope).visit(tree.body)


# ---------------------------------------------------------------------------------- numbers


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


def _scaled(v: Value, target: int) -> pl.Expr:
    e, d = v.num_parts()
    factor = target // d
    return e if factor == 1 else e * factor


def _common(a: Value, b: Value) -> tuple[pl.Expr, pl.Expr, int]:
    da = a.den if not a.is_const else a.const.denominator
    db = b.den if not b.is_const else b.const.denominator
    den = _lcm(da, db)
    return _scaled(a, den), _scaled(b, den), den


def _num(expr: pl.Expr, den: int, is_float: bool = False) -> Value:
    return Value("num", expr=expr, den=den, is_float=is_float)


def num_add(a: Value, b: Value, sign: int = 1) -> Value:
    if a.is_const and b.is_const:
        return const(a.const + sign * b.const)
    ea, eb, den = _common(a, b)
    return _num(ea + eb if sign == 1 else ea - eb, den, a.is_float or b.is_float)


def num_mul(a: Value, b: Value) -> Value:
    if a.is_const and b.is_const:
        return const(a.const * b.const)
    if a.is_const:
        a, b = b, a
    if b.is_const:
        f: Fraction = b.const
        expr, den = a.num_parts()
        p, q = f.numerator, f.denominator
        den *= q
        g = math.gcd(abs(p), den)
        p, den = p // g, den // g
        return _num(expr * p if p != 1 else expr, den, a.is_float)
    ea, da = a.num_parts()
    eb, db = b.num_parts()
    return _num(ea * eb, da * db, a.is_float or b.is_float)


def num_div(a: Value, b: Value, text: str) -> Value:
    if not b.is_const:
        raise ExprError(f"{text!r}: division only by a parameter or a number, not by a fact")
    if b.const == 0:
        raise ExprError(f"{text!r}: division by zero")
    return num_mul(a, const(1 / b.const))


def to_fen(v: Value, text: str = "") -> pl.Expr:
    """An amount rounded half-up to the cent, as integer fen (Int64)."""
    if v.kind != "num":
        raise ExprError(f"{text!r}: an amount must be a number, not {v.kind}")
    if v.is_const:
        cents = v.const * 100
        q = math.floor(abs(cents) + Fraction(1, 2))
        return pl.lit(q if cents >= 0 else -q, dtype=pl.Int64)
    if v.is_float:
        raise ExprError(f"{text!r}: a decimal fact must go through floor() before an amount")
    e, d = v.num_parts()
    if 100 % d == 0:
        return e * (100 // d) if d != 100 else e
    n = e * 100
    rounded = (n.abs() * 2 + d) // (2 * d)
    return pl.when(n < 0).then(-rounded).otherwise(rounded).cast(pl.Int64)


def fen_value(expr: pl.Expr) -> Value:
    """A fen column as a number (yuan)."""
    return _num(expr, 100)


# ------------------------------------------------------------------------------- compiler

_CMP = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
}
# the same operator functions work on Python constants and on Polars expressions
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


class _Compiler:
    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.scope = scope

    def fail(self, message: str) -> ExprError:
        return ExprError(f"{self.text!r}: {message}")

    def visit(self, node: ast.AST) -> Value:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"{type(node).__name__} is not allowed in a rule expression")
        return method(node)

    # leaves
    def visit_Constant(self, node: ast.Constant) -> Value:
        if isinstance(node.value, bool) or node.value is None or isinstance(node.value, str):
            return const(node.value)
        if isinstance(node.value, int | float):
            segment = ast.get_source_segment(self.text, node) or repr(node.value)
            return const(Fraction(Decimal(segment)))
        raise self.fail(f"constant {node.value!r} is not allowed")

    def visit_Name(self, node: ast.Name) -> Value:
        name, s = node.id, self.scope
        if name in s.lets:
            return _Compiler(s.lets[name], s).visit(parse(s.lets[name]).body)
        if name in s.columns:
            return s.columns[name]
        if name in s.facts:
            s.note(s.used_facts, name)
            return FACT_VALUE[s.facts[name]](pl.col(name))
        if name in s.params:
            s.note(s.used_params, name)
            return const(s.params[name])
        if name in s.constants:
            return const(s.constants[name])
        raise self.fail(f"unknown name '{name}' (not a fact, parameter or constant)")

    def visit_Attribute(self, node: ast.Attribute) -> Value:
        if isinstance(node.value, ast.Name):
            dotted = f"{node.value.id}.{node.attr}"
            if dotted in self.scope.columns:
                return self.scope.columns[dotted]
        raise self.fail(f"unknown name '{ast.unparse(node)}'")

    def visit_List(self, node: ast.List) -> Value:
        items = [self.visit(e) for e in node.elts]
        if not all(i.is_const for i in items):
            raise self.fail("list items must be constants")
        return Value("list", const=[i.const for i in items])

    visit_Tuple = visit_List

    # operators
    def visit_BoolOp(self, node: ast.BoolOp) -> Value:
        values = [self._bool(self.visit(v)) for v in node.values]
        is_and = isinstance(node.op, ast.And)
        consts = [v.const for v in values if v.is_const]
        exprs = [v.expr for v in values if not v.is_const]
        if is_and and any(c is False for c in consts):
            return const(False)
        if not is_and and any(c is True for c in consts):
            return const(True)
        if not exprs:
            return const(is_and)
        out = exprs[0]
        for e in exprs[1:]:
            out = (out & e) if is_and else (out | e)
        return Value("bool", expr=out)

    def _bool(self, v: Value) -> Value:
        if v.kind not in ("bool", "null"):
            raise self.fail(f"expected a condition (true/false), got a {v.kind}")
        return v

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Value:
        v = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            v = self._bool(v)
            return const(not v.const) if v.is_const else Value("bool", expr=~v.expr)
        if isinstance(node.op, ast.USub) and v.kind == "num":
            return num_mul(v, const(-1))
        raise self.fail(f"operator {type(node.op).__name__} is not allowed here")

    def visit_BinOp(self, node: ast.BinOp) -> Value:
        a, b = self.visit(node.left), self.visit(node.right)
        op = type(node.op)
        if a.kind == "date" and b.kind == "delta" and op in (ast.Add, ast.Sub):
            return self._shift_date(a, b, 1 if op is ast.Add else -1)
        if a.kind != "num" or b.kind != "num":
            raise self.fail(f"cannot apply {op.__name__} to {a.kind} and {b.kind}")
        if op is ast.Add:
            return num_add(a, b)
        if op is ast.Sub:
            return num_add(a, b, -1)
        if op is ast.Mult:
            return num_mul(a, b)
        if op is ast.Div:
            return num_div(a, b, self.text)
        raise self.fail(f"operator {op.__name__} is not allowed")

    def _shift_date(self, a: Value, delta: Value, sign: int) -> Value:
        d = delta.const
        if isinstance(d, Months):
            if a.is_const:
                return const(add_months(a.const, sign * d.n))
            return Value("date", expr=a.expr.dt.offset_by(f"{sign * d.n}mo"))
        days = sign * d.days
        if a.is_const:
            return const(a.const + dt.timedelta(days=days))
        return Value("date", expr=a.expr + pl.duration(days=days))

    def visit_Compare(self, node: ast.Compare) -> Value:
        left = self.visit(node.left)
        parts: list[Value] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            parts.append(self._compare(left, op, right))
            left = right
        if len(parts) == 1:
            return parts[0]
        out = parts[0]
        for p in parts[1:]:
            out = self._and(out, p)
        return out

    def _and(self, a: Value, b: Value) -> Value:
        if a.is_const and b.is_const:
            return const(bool(a.const) and bool(b.const))
        return Value("bool", expr=a.polars() & b.polars())

    def _compare(self, a: Value, op: ast.cmpop, b: Value) -> Value:
        if isinstance(op, ast.Is | ast.IsNot):
            if b.kind != "null":
                raise self.fail("'is' compares only with None")
            if a.is_const:
                return const((a.const is None) == isinstance(op, ast.Is))
            return Value(
                "bool", expr=a.expr.is_null() if isinstance(op, ast.Is) else a.expr.is_not_null()
            )
        if isinstance(op, ast.In | ast.NotIn):
            if b.kind != "list":
                raise self.fail("'in' needs a list of constants, e.g. x in ['a', 'b']")
            items = b.const
            if a.kind == "num":
                items_num = [Fraction(i) for i in items]
                if a.is_const:
                    hit = a.const in items_num
                    return const(hit if isinstance(op, ast.In) else not hit)
                e, d = a.num_parts()
                if any((i * d).denominator != 1 for i in items_num):
                    raise self.fail("'in' list does not match the number's precision")
                scaled = [int(i * d) for i in items_num]
                expr = e.is_in(scaled)
            else:
                if a.is_const:
                    hit = a.const in items
                    return const(hit if isinstance(op, ast.In) else not hit)
                expr = a.expr.is_in(items)
            # Kleene: a null value is neither in nor out
            expr = pl.when(a.expr.is_not_null()).then(expr)
            return Value("bool", expr=expr if isinstance(op, ast.In) else ~expr)
        kind = _CMP.get(type(op))
        if kind is None:
            raise self.fail(f"comparison {type(op).__name__} is not allowed")
        if a.kind != b.kind and "null" not in (a.kind, b.kind):
            raise self.fail(f"cannot compare {a.kind} with {b.kind}")
        if a.is_const and b.is_const:
            if a.const is None or b.const is None:
                return const(None)
            return const(_OPS[kind](a.const, b.const))
        if a.kind == "num":
            ea, eb, _ = _common(a, b)
            return Value("bool", expr=_OPS[kind](ea, eb))
        return Value("bool", expr=_OPS[kind](a.polars(), b.polars()))

    def visit_IfExp(self, node: ast.IfExp) -> Value:
        test = self._bool(self.visit(node.test))
        yes, no = self.visit(node.body), self.visit(node.orelse)
        if test.is_const:
            return yes if test.const else no
        if yes.kind == "num" and no.kind == "num":
            ey, en, den = _common(yes, no)
            return _num(pl.when(test.expr).then(ey).otherwise(en), den, yes.is_float or no.is_float)
        if yes.kind != no.kind and "null" not in (yes.kind, no.kind):
            raise self.fail(f"both branches must have one type ({yes.kind} vs {no.kind})")
        kind = yes.kind if yes.kind != "null" else no.kind
        return Value(kind, expr=pl.when(test.expr).then(yes.polars()).otherwise(no.polars()))

    def visit_Call(self, node: ast.Call) -> Value:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self.fail("only plain function calls like min(a, b) are allowed")
        name = node.func.id
        if name == "previous_month":
            return self._previous_month(node)
        if name in self.scope.functions:
            args = [
                const(a.value)
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
                else self.visit(a)
                for a in node.args
            ]
            return self.scope.functions[name](*args)
        args = [self.visit(a) for a in node.args]
        builtin = getattr(self, f"fn_{name}", None)
        if builtin is None:
            raise self.fail(f"unknown function {name}()")
        return builtin(*args)

    def _previous_month(self, node: ast.Call) -> Value:
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            raise self.fail("previous_month() takes one parameter name")
        name = node.args[0].id
        if name not in self.scope.prev_params:
            raise self.fail(f"unknown parameter '{name}'")
        self.scope.note(self.scope.used_prev_params, name)
        return const(self.scope.prev_params[name])

    # built-in functions
    def _nums(self, args: tuple[Value, ...], name: str) -> None:
        if not args or any(a.kind != "num" for a in args):
            raise self.fail(f"{name}() takes numbers")

    def fn_min(self, *args: Value) -> Value:
        return self._extreme(args, "min")

    def fn_max(self, *args: Value) -> Value:
        return self._extreme(args, "max")

    def _extreme(self, args: tuple[Value, ...], which: str) -> Value:
        self._nums(args, which)
        if all(a.is_const for a in args):
            return const((min if which == "min" else max)(a.const for a in args))
        den = 1
        for a in args:
            den = _lcm(den, a.den if not a.is_const else a.const.denominator)
        exprs = [_scaled(a, den) for a in args]
        fn = pl.min_horizontal if which == "min" else pl.max_horizontal
        # unlike Polars' horizontal min/max, an unknown argument makes the result unknown
        any_null = pl.any_horizontal([e.is_null() for e in exprs])
        return _num(pl.when(~any_null).then(fn(exprs)), den, any(a.is_float for a in args))

    def fn_floor(self, a: Value) -> Value:
        self._nums((a,), "floor")
        if a.is_const:
            return const(math.floor(a.const))
        e, d = a.num_parts()
        if a.is_float:
            return _num((e / d).floor().cast(pl.Int64), 1)
        return _num(e // d if d != 1 else e, 1)

    def fn_round(self, a: Value) -> Value:
        """Half-up to the cent."""
        self._nums((a,), "round")
        return (
            _num(to_fen(a, self.text), 100)
            if not a.is_const
            else const(Fraction(math.floor(a.const * 100 + Fraction(1, 2)), 100))
        )

    def fn_days(self, a: Value) -> Value:
        if not (a.is_const and a.kind == "num" and a.const.denominator == 1):
            raise self.fail("days() takes a whole number")
        return Value("delta", const=dt.timedelta(days=int(a.const)))

    def fn_months(self, a: Value) -> Value:
        if not (a.is_const and a.kind == "num" and a.const.denominator == 1):
            raise self.fail("months() takes a whole number")
        return Value("delta", const=Months(int(a.const)))

    def fn_years_between(self, a: Value, b: Value) -> Value:
        """Completed years from date a to date b (like an age)."""
        if a.kind not in ("date", "null") or b.kind not in ("date", "null"):
            raise self.fail("years_between() takes two dates")
        if a.is_const and b.is_const:
            if a.const is None or b.const is None:
                return const(None)
            return const(completed_years(a.const, b.const))
        b_side = b.const if b.is_const else b.expr
        return _num(completed_years_expr(a.polars(), b_side).cast(pl.Int64), 1)

    def fn_coalesce(self, *args: Value) -> Value:
        kinds = {a.kind for a in args if a.kind != "null"}
        if len(kinds) != 1:
            raise self.fail("coalesce() takes values of one type")
        kind = kinds.pop()
        if kind == "num":
            den = 1
            for a in args:
                if a.kind == "num":
                    den = _lcm(den, a.den if not a.is_const else a.const.denominator)
            return _num(
                pl.coalesce([_scaled(a, den) if a.kind == "num" else pl.lit(None) for a in args]),
                den,
                any(a.is_float for a in args),
            )
        return Value(kind, expr=pl.coalesce([a.polars() for a in args]))
