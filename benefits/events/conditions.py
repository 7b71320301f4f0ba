"""Rule conditions (the `when:` expressions) compiled from their AST to a small condition IR.

A rule engine matches *facts* — flat records of named values — against conditions built from
comparisons of one field with a constant or with another field, existence tests, and
and/or. This module turns a rule-pack expression into exactly that, so any such engine can
run it (:mod:`benefits.events.adapter` translates the IR to durable_rules' ruleset JSON, and
evaluates it directly for the reference engine):

- parameters and month constants are folded at compile time (``hh_pci < 2 * dibao_std`` for
  January 2025 becomes ``hh_pci < 260200`` in fen), exactly, with fractions;
- values are encoded as the engine sees them: money in integer fen, dates as ``yyyymmdd``
  integers (durable_rules compares numbers and strings only), booleans, strings; an unknown
  (``None``) value is simply absent from the fact;
- negations are pushed down to the comparisons (negation normal form), flipping each
  comparison. An absent field makes every comparison fail, which is the sweep's rule — a
  comparison with an unknown value is unknown, and an unknown condition does not hold — and
  stays right under negation only because negations end at comparisons;
- a comparison of an integer-encoded field with a fraction is turned into an exact integer
  comparison (``x < 5707.25`` yuan → ``x_fen < 570725``; ``age >= 17.5`` → ``age >= 18``).

Expressions outside this shape (arithmetic mixing two facts, an ``if`` on a fact) are refused
with an error naming the expression: they belong in amounts, which the exact evaluator
computes.

Example:
    >>> c = compile_condition("hh_pci < 2 * dibao_std", facts={"hh_pci": "money"},
    ...                       params={"dibao_std": Fraction(1301)})
    >>> c
    Cmp(op='lt', field='hh_pci', value=260200)
    >>> compile_condition("not (age >= 80 and resident)",
    ...                   facts={"age": "int", "resident": "bool"})
    Or(items=(Cmp(op='lt', field='age', value=80), Cmp(op='ne', field='resident', value=True)))
"""

from __future__ import annotations

import ast
import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from benefits.events.pyeval import PyEval
from benefits.expr import ExprError

# --------------------------------------------------------------------------------------- IR


@dataclass(frozen=True)
class Ref:
    """Another field of the same fact, as the right-hand side of a comparison."""

    field: str


@dataclass(frozen=True)
class Cmp:
    """``field <op> value``; op is eq, ne, lt, le, gt or ge; value a constant or a Ref."""

    op: str
    field: str
    value: Any


@dataclass(frozen=True)
class Exists:
    """The field has a value."""

    field: str


@dataclass(frozen=True)
class Missing:
    """The field has no value."""

    field: str


@dataclass(frozen=True)
class And:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Const:
    """A condition decided at compile time (True, False; None = unknown, which fails)."""

    value: bool | None


@dataclass(frozen=True)
class Not:
    """Only during compilation: removed by :func:`nnf`."""

    item: Cond


Cond = Cmp | Exists | Missing | And | Or | Const | Not
TRUE, FALSE, UNKNOWN = Const(True), Const(False), Const(None)
FLIP = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le"}
MIRROR = {"eq": "eq", "ne": "ne", "lt": "gt", "gt": "lt", "le": "ge", "ge": "le"}
_OPS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}


def nnf(c: Cond, negate: bool = False) -> Cond:
    """Negation normal form, simplified; an unknown constant ends up as False.

    >>> nnf(Not(And((Cmp('eq', 'a', 1), Missing('b')))))
    Or(items=(Cmp(op='ne', field='a', value=1), Exists(field='b')))
    """
    if isinstance(c, Not):
        return nnf(c.item, not negate)
    if isinstance(c, Const):
        if c.value is None:
            return FALSE
        return Const(c.value != negate)
    if isinstance(c, Cmp):
        return Cmp(FLIP[c.op], c.field, c.value) if negate else c
    if isinstance(c, Exists):
        return Missing(c.field) if negate else c
    if isinstance(c, Missing):
        return Exists(c.field) if negate else c
    is_and = isinstance(c, And) != negate
    items = [nnf(i, negate) for i in c.items]  # type: ignore[union-attr]
    return _junction(items, is_and)


def _junction(items: list[Cond], is_and: bool) -> Cond:
    kind = And if is_and else Or
    flat: list[Cond] = []
    for i in items:
        if isinstance(i, kind):
            flat.extend(i.items)
        elif isinstance(i, Const):
            if i.value is not is_and:  # False in an and, True in an or: decides it
                return i
        else:
            flat.append(i)
    unique = list(dict.fromkeys(flat))
    if not unique:
        return Const(is_and)
    if len(unique) == 1:
        return unique[0]
    return kind(tuple(unique))


def fields_of(c: Cond) -> set[str]:
    """Every field a condition reads."""
    if isinstance(c, Cmp):
        return {c.field} | ({c.value.field} if isinstance(c.value, Ref) else set())
    if isinstance(c, Exists | Missing):
        return {c.field}
    if isinstance(c, And | Or):
        return set().union(*(fields_of(i) for i in c.items))
    if isinstance(c, Not):
        return fields_of(c.item)
    return set()


# ------------------------------------------------------------------------------ encodings


def encode_date(day: dt.date) -> int:
    """A date as the integer yyyymmdd (how dates reach the rule engine).

    >>> encode_date(dt.date(2025, 1, 23))
    20250123
    """
    return day.year * 10000 + day.month * 100 + day.day


SCALE = {"money": 100, "int": 1, "number": 1}


def encode_value(kind: str, value: Any) -> Any:
    """A fact value as the engine sees it (None: leave the field out)."""
    if value is None:
        return None
    if kind == "date":
        return encode_date(value)
    return value


# ---------------------------------------------------------------------------------- symbols


@dataclass(frozen=True)
class _C:
    """A constant (numbers as Fraction, or float)."""

    value: Any


@dataclass(frozen=True)
class _Field:
    """A non-numeric fact: bool, date or str."""

    kind: str
    name: str


@dataclass(frozen=True)
class _Lin:
    """A number: sum of coef × field (in the field's natural unit, yuan for money) + const."""

    terms: tuple[tuple[str, Fraction], ...]
    const: Fraction = Fraction(0)


@dataclass(frozen=True)
class _Bool:
    cond: Cond


class ConditionCompiler:
    """Compiles expressions over facts (name → kind) in a month's names (see module doc)."""

    def __init__(
        self,
        *,
        facts: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
        prev_params: Mapping[str, Any] | None = None,
        constants: Mapping[str, Any] | None = None,
        lets: Mapping[str, str] | None = None,
        columns: Mapping[str, tuple[str, str]] | None = None,
        functions: Mapping[str, Callable[[str], str]] | None = None,
    ) -> None:
        self.facts = dict(facts)
        self.lets = dict(lets or {})
        self.columns = dict(columns or {})  # dotted name -> (field, kind)
        self.functions = dict(functions or {})
        self.consts = PyEval(params=params, prev_params=prev_params, constants=constants)

    def with_lets(self, lets: Mapping[str, str]) -> ConditionCompiler:
        """The same names plus a policy's named sub-expressions."""
        other = ConditionCompiler(facts=self.facts, lets=lets, columns=self.columns,
                                  functions=self.functions)  # fmt: skip
        other.consts = self.consts.with_lets(lets)
        return other

    def compile(self, text: str) -> Cond:
        """The condition of a boolean expression, in negation normal form."""
        try:
            tree = ast.parse(str(text).strip(), mode="eval")
        except SyntaxError as exc:
            raise ExprError(f"cannot parse {text!r}: {exc.msg}") from exc
        sym = _Sym(self, str(text).strip()).visit(tree.body)
        if isinstance(sym, _C):
            return nnf(Const(None if sym.value is None else bool(sym.value)))
        if isinstance(sym, _Field) and sym.kind == "bool":
            return Cmp("eq", sym.name, True)
        if not isinstance(sym, _Bool):
            raise ExprError(f"{text!r}: expected a condition (true/false)")
        return nnf(sym.cond)


def compile_condition(text: str, **names: Any) -> Cond:
    """Compile one expression (keyword arguments as for :class:`ConditionCompiler`)."""
    return ConditionCompiler(**names).compile(text)


def _frac(v: Any) -> Any:
    if isinstance(v, Decimal | int) and not isinstance(v, bool):
        return Fraction(v)
    return v


class _Sym:
    def __init__(self, cc: ConditionCompiler, text: str) -> None:
        self.cc = cc
        self.text = text

    def fail(self, message: str) -> ExprError:
        return ExprError(f"{self.text!r}: {message}")

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, f"v_{type(node).__name__}", None)
        if method is None:
            return self.constant(node)
        return method(node)

    def constant(self, node: ast.AST) -> _C:
        """A subtree without facts: evaluated exactly, once."""
        source = ast.unparse(node)
        try:
            return _C(_frac(self.cc.consts.value(source, {})))
        except ExprError as exc:
            raise self.fail(str(exc)) from exc

    def as_bool(self, s: Any) -> Cond:
        if isinstance(s, _Bool):
            return s.cond
        if isinstance(s, _Field) and s.kind == "bool":
            return Cmp("eq", s.name, True)
        if isinstance(s, _C) and (s.value is None or isinstance(s.value, bool)):
            return Const(s.value)
        raise self.fail("expected a condition (true/false)")

    # leaves
    def v_Name(self, node: ast.Name) -> Any:
        name, cc = node.id, self.cc
        if name in cc.lets:
            return _Sym(cc, cc.lets[name]).visit(ast.parse(cc.lets[name].strip(), mode="eval").body)
        if name in cc.facts:
            kind = cc.facts[name]
            if kind in SCALE:
                return _Lin(((name, Fraction(1)),))
            return _Field(kind, name)
        return self.constant(node)

    def v_Attribute(self, node: ast.Attribute) -> Any:
        if isinstance(node.value, ast.Name):
            dotted = f"{node.value.id}.{node.attr}"
            if dotted in self.cc.columns:
                field, kind = self.cc.columns[dotted]
                return _Lin(((field, Fraction(1)),)) if kind in SCALE else _Field(kind, field)
        raise self.fail(f"unknown name '{ast.unparse(node)}'")

    def v_Constant(self, node: ast.Constant) -> _C:
        return self.constant(node)

    # operators
    def v_BoolOp(self, node: ast.BoolOp) -> Any:
        items = [self.as_bool(self.visit(v)) for v in node.values]
        return _Bool(And(tuple(items)) if isinstance(node.op, ast.And) else Or(tuple(items)))

    def v_UnaryOp(self, node: ast.UnaryOp) -> Any:
        inner = self.visit(node.operand)
        if isinstance(inner, _C):
            return self.constant(node)
        if isinstance(node.op, ast.Not):
            return _Bool(Not(self.as_bool(inner)))
        if isinstance(node.op, ast.USub) and isinstance(inner, _Lin):
            return _Lin(tuple((n, -k) for n, k in inner.terms), -inner.const)
        raise self.fail(f"operator {type(node.op).__name__} is not supported here")

    def v_BinOp(self, node: ast.BinOp) -> Any:
        a, b = self.visit(node.left), self.visit(node.right)
        if isinstance(a, _C) and isinstance(b, _C):
            return self.constant(node)
        op = type(node.op)
        a, b = self.lin(a), self.lin(b)
        if op in (ast.Add, ast.Sub):
            sign = 1 if op is ast.Add else -1
            terms: dict[str, Fraction] = dict(a.terms)
            for n, k in b.terms:
                terms[n] = terms.get(n, Fraction(0)) + sign * k
            return _Lin(tuple((n, k) for n, k in terms.items() if k), a.const + sign * b.const)
        if op is ast.Mult and (not a.terms or not b.terms):
            k, x = (a.const, b) if not a.terms else (b.const, a)
            return _Lin(tuple((n, c * k) for n, c in x.terms), x.const * k)
        if op is ast.Div and not b.terms and b.const != 0:
            return _Lin(tuple((n, c / b.const) for n, c in a.terms), a.const / b.const)
        raise self.fail("arithmetic on two facts is not supported in a rule condition")

    def lin(self, s: Any) -> _Lin:
        if isinstance(s, _Lin):
            return s
        if isinstance(s, _C) and isinstance(s.value, int | Fraction) and not isinstance(
            s.value, bool
        ):
            return _Lin((), Fraction(s.value))
        raise self.fail("expected a number")

    def v_Compare(self, node: ast.Compare) -> Any:
        if all(isinstance(self.visit(n), _C) for n in [node.left, *node.comparators]):
            return self.constant(node)
        left = self.visit(node.left)
        parts: list[Cond] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            parts.append(self.compare(left, op, right))
            left = right
        return _Bool(parts[0] if len(parts) == 1 else And(tuple(parts)))

    def compare(self, a: Any, op: ast.cmpop, b: Any) -> Cond:
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(b, _C) and b.value is None):
                raise self.fail("'is' compares only with None")
            field = self.single_field(a)
            test: Cond = Missing(field)
            return test if isinstance(op, ast.Is) else Not(test)
        if isinstance(op, ast.In | ast.NotIn):
            if not (isinstance(b, _C) and isinstance(b.value, list)):
                raise self.fail("'in' needs a list of constants")
            alternatives = tuple(self.compare(a, ast.Eq(), _C(_frac(v))) for v in b.value)
            found: Cond = Or(alternatives) if alternatives else FALSE
            if isinstance(op, ast.In):
                return found
            # not in: unknown stays unknown (every alternative fails on an absent field)
            return Not(found) if alternatives else And((Exists(self.single_field(a)),))
        name = _OPS.get(type(op))
        if name is None:
            raise self.fail(f"comparison {type(op).__name__} is not allowed")
        if (isinstance(b, _C) and b.value is None) or (isinstance(a, _C) and a.value is None):
            return UNKNOWN
        if isinstance(a, _C) and not isinstance(b, _C):
            a, b, name = b, a, MIRROR[name]
        if isinstance(a, _Lin) or isinstance(b, _Lin):
            return self.compare_numbers(self.lin(a), name, self.lin(b))
        if isinstance(a, _Field) and isinstance(b, _Field):
            if a.kind != b.kind:
                raise self.fail(f"cannot compare {a.kind} with {b.kind}")
            self.check_order(a.kind, name)
            return Cmp(name, a.name, Ref(b.name))
        if isinstance(a, _Field) and isinstance(b, _C):
            value = b.value
            if a.kind == "date":
                if not isinstance(value, dt.date):
                    raise self.fail(f"cannot compare a date with {value!r}")
                return Cmp(name, a.name, encode_date(value))
            self.check_order(a.kind, name)
            if a.kind == "bool" and not isinstance(value, bool):
                raise self.fail(f"cannot compare a condition with {value!r}")
            if a.kind == "str" and not isinstance(value, str):
                raise self.fail(f"cannot compare text with {value!r}")
            return Cmp(name, a.name, value)
        raise self.fail("unsupported comparison")

    def check_order(self, kind: str, op: str) -> None:
        if kind in ("str", "bool") and op not in ("eq", "ne"):
            raise self.fail(f"ordering comparisons of {kind} values are not supported")

    def single_field(self, s: Any) -> str:
        if isinstance(s, _Field):
            return s.name
        if isinstance(s, _Lin) and len(s.terms) == 1:
            return s.terms[0][0]
        raise self.fail("expected a single fact")

    def compare_numbers(self, a: _Lin, op: str, b: _Lin) -> Cond:
        terms: dict[str, Fraction] = dict(a.terms)
        for n, k in b.terms:
            terms[n] = terms.get(n, Fraction(0)) - k
        live = [(n, k) for n, k in terms.items() if k]
        const = a.const - b.const  # sum(k * field) + const  <op>  0
        if not live:
            return Const(_py_cmp(op, const, 0))
        kinds = {n: self.kind_of(n) for n, _ in live}
        if len(live) == 1:
            (field, k), = live
            if k < 0:
                op = MIRROR[op]
            bound = -const / k * SCALE[kinds[field]]
            return _bounded(op, field, bound, kinds[field] == "number")
        if len(live) == 2 and const == 0:
            (f1, k1), (f2, k2) = live
            if k1 == -k2 and SCALE[kinds[f1]] == SCALE[kinds[f2]]:
                return Cmp(op if k1 > 0 else MIRROR[op], f1, Ref(f2))
        raise self.fail("this comparison of several facts is not supported in a rule condition")

    def kind_of(self, field: str) -> str:
        if field in self.cc.facts:
            return self.cc.facts[field]
        for name, kind in self.cc.columns.values():
            if name == field:
                return kind
        raise self.fail(f"unknown field {field}")  # pragma: no cover

    def v_IfExp(self, node: ast.IfExp) -> Any:
        test = self.visit(node.test)
        if isinstance(test, _C):
            return self.visit(node.body if test.value is True else node.orelse)
        raise self.fail("'x if condition else y' on a fact is not supported in a rule condition")

    def v_Call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id in self.cc.functions:
            arg = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise self.fail(f"{node.func.id}() takes a quoted name")
            return _Field("bool", self.cc.functions[node.func.id](arg.value))
        args = [self.visit(a) for a in node.args]
        if all(isinstance(a, _C) for a in args):
            return self.constant(node)
        raise self.fail("functions of facts are not supported in a rule condition")

    def v_List(self, node: ast.List | ast.Tuple) -> Any:
        return self.constant(node)

    v_Tuple = v_List


def _py_cmp(op: str, x: Any, y: Any) -> bool:
    return {
        "eq": x == y,
        "ne": x != y,
        "lt": x < y,
        "le": x <= y,
        "gt": x > y,
        "ge": x >= y,
    }[op]


def _bounded(op: str, field: str, bound: Fraction, is_float: bool) -> Cond:
    """``field <op> bound`` for a field encoded as an integer (or a float)."""
    if is_float:
        value: Any = int(bound) if bound.denominator == 1 else float(bound)
        return Cmp(op, field, value)
    if bound.denominator == 1:
        return Cmp(op, field, int(bound))
    lo, hi = math.floor(bound), math.ceil(bound)
    if op == "eq":
        return FALSE
    if op == "ne":
        return Exists(field)
    return Cmp(op, field, {"lt": hi, "ge": hi, "le": lo, "gt": lo}[op])


__all__ = [
    "FALSE",
    "TRUE",
    "And",
    "Cmp",
    "Cond",
    "ConditionCompiler",
    "Const",
    "Exists",
    "Missing",
    "Not",
    "Or",
    "Ref",
    "compile_condition",
    "encode_date",
    "encode_value",
    "fields_of",
    "nnf",
]
