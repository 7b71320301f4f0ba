"""Parse and type-check a rule expression once, into the typed form of :mod:`benefits.lang.nodes`.

Names resolve against a :class:`Scope`: facts (by kind), parameters in force for the month
(folded to exact constants), month constants, extra columns, flag functions (``paid('x')``)
and ``let`` sub-expressions (inlined). Constant sub-expressions are folded exactly; every
type error — a fact divided by a fact, a decimal fact in an amount, an ``in`` list that does
not fit the number's precision — is raised here, as an :class:`ExprError` quoting the text.

Example:
    >>> node = check("dibao_std - hh_pci", Scope(facts={"hh_pci": "money"},
    ...                                         params={"dibao_std": Fraction(1301)}))
    >>> node.op, node.kind, node.den
    ('add', 'num', 100)
"""

from __future__ import annotations

import ast
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from benefits.lang.nodes import ExprError, Months, Node, const
from benefits.period import add_months, completed_years

FACT_TYPES: dict[str, tuple[str, int, bool]] = {  # fact kind -> (kind, den, is_float)
    "bool": ("bool", 1, False),
    "int": ("num", 1, False),
    "money": ("num", 100, False),
    "number": ("num", 1, True),
    "date": ("date", 1, False),
    "str": ("str", 1, False),
}
CMP = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}
PY_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda x, y: x == y,
    "ne": lambda x, y: x != y,
    "lt": lambda x, y: x < y,
    "le": lambda x, y: x <= y,
    "gt": lambda x, y: x > y,
    "ge": lambda x, y: x >= y,
}


@dataclass
class Scope:
    """What names mean: facts (name → kind), parameters and constants (values), extra columns
    (name → anything with ``kind``/``den``/``is_float``), flag functions, previous-month
    parameters and lets (name → text).

    `used_facts`, `used_params` and `used_prev_params` record what checked expressions read,
    in reading order, for the audit trace.
    """

    facts: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)
    prev_params: dict[str, Any] = field(default_factory=dict)
    lets: dict[str, str] = field(default_factory=dict)
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


def parse(text: str) -> ast.Expression:
    """Parse an expression, with errors that quote it."""
    try:
        return ast.parse(str(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"cannot parse {text!r}: {exc.msg}") from exc


def names_in(text: str) -> list[str]:
    """Every plain name an expression mentions, each once.

    >>> sorted(names_in("age >= 80 and resident"))
    ['age', 'resident']
    """
    tree = parse(text)
    functions = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    seen: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in functions and node.id not in seen:
            seen.append(node.id)
    return seen


def check(text: str, scope: Scope) -> Node:
    """The typed form of `text` in `scope` (see module doc)."""
    return _Checker(str(text), scope).visit(parse(text).body)


def check_amount(node: Node, text: str) -> Node:
    """`node` as an amount: a number without an unfloored decimal fact."""
    if node.kind != "num":
        raise ExprError(f"{text!r}: an amount must be a number, not {node.kind}")
    if node.is_float and not node.is_const:
        raise ExprError(f"{text!r}: a decimal fact must go through floor() before an amount")
    return node


def check_condition(node: Node) -> Node:
    """`node` as a condition (true, false or unknown)."""
    if node.kind not in ("bool", "null"):
        raise ExprError(f"expected a condition, got a {node.kind}")
    return node


# ---------------------------------------------------------------------------------- numbers


def lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


def half_up_fen(value: Fraction) -> int:
    """A constant amount in yuan → integer fen, half-up (away from zero at .5)."""
    cents = value * 100
    q = math.floor(abs(cents) + Fraction(1, 2))
    return q if cents >= 0 else -q


def _num(op: str, args: tuple[Node, ...], den: int, is_float: bool, value: Any = None) -> Node:
    return Node(op, "num", args, value, den, is_float)


def num_add(a: Node, b: Node, sign: int = 1) -> Node:
    if a.is_const and b.is_const:
        return const(a.value + sign * b.value)
    return _num("add", (a, b), lcm(a.den, b.den), a.is_float or b.is_float, sign)


def num_mul(a: Node, b: Node) -> Node:
    if a.is_const and b.is_const:
        return const(a.value * b.value)
    if a.is_const:
        a, b = b, a
    if b.is_const:
        f: Fraction = b.value
        p, den = f.numerator, a.den * f.denominator
        g = math.gcd(abs(p), den)
        return _num("scale", (a,), den // g, a.is_float, (f, p // g))
    return _num("mul", (a, b), a.den * b.den, a.is_float or b.is_float)


# ------------------------------------------------------------------------------- the checker


class _Checker:
    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.scope = scope

    def fail(self, message: str) -> ExprError:
        return ExprError(f"{self.text!r}: {message}")

    def visit(self, node: ast.AST) -> Node:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"{type(node).__name__} is not allowed in a rule expression")
        return method(node)

    # leaves
    def visit_Constant(self, node: ast.Constant) -> Node:
        if isinstance(node.value, bool) or node.value is None or isinstance(node.value, str):
            return const(node.value)
        if isinstance(node.value, int | float):
            segment = ast.get_source_segment(self.text, node) or repr(node.value)
            return const(Fraction(Decimal(segment)))
        raise self.fail(f"constant {node.value!r} is not allowed")

    def visit_Name(self, node: ast.Name) -> Node:
        name, s = node.id, self.scope
        if name in s.lets:
            return _Checker(s.lets[name], s).visit(parse(s.lets[name]).body)
        if name in s.columns:
            return self._column(name)
        if name in s.facts:
            s.note(s.used_facts, name)
            kind, den, is_float = FACT_TYPES[s.facts[name]]
            return Node("fact", kind, (), (name, s.facts[name]), den, is_float)
        if name in s.params:
            s.note(s.used_params, name)
            return const(s.params[name])
        if name in s.constants:
            return const(s.constants[name])
        raise self.fail(f"unknown name '{name}' (not a fact, parameter or constant)")

    def _column(self, name: str) -> Node:
        t = self.scope.columns[name]
        return Node("col", t.kind, (), name, t.den, t.is_float)

    def visit_Attribute(self, node: ast.Attribute) -> Node:
        if isinstance(node.value, ast.Name):
            dotted = f"{node.value.id}.{node.attr}"
            if dotted in self.scope.columns:
                return self._column(dotted)
        raise self.fail(f"unknown name '{ast.unparse(node)}'")

    def visit_List(self, node: ast.List | ast.Tuple) -> Node:
        items = [self.visit(e) for e in node.elts]
        if not all(i.is_const for i in items):
            raise self.fail("list items must be constants")
        return Node("const", "list", value=[i.value for i in items])

    visit_Tuple = visit_List

    # operators
    def _bool(self, v: Node) -> Node:
        if v.kind not in ("bool", "null"):
            raise self.fail(f"expected a condition (true/false), got a {v.kind}")
        return v

    def visit_BoolOp(self, node: ast.BoolOp) -> Node:
        values = [self._bool(self.visit(v)) for v in node.values]
        is_and = isinstance(node.op, ast.And)
        consts = [v.value for v in values if v.is_const]
        exprs = tuple(v for v in values if not v.is_const)
        if is_and and any(c is False for c in consts):
            return const(False)
        if not is_and and any(c is True for c in consts):
            return const(True)
        if not exprs:
            return const(is_and)
        if len(exprs) == 1:
            return exprs[0]
        return Node("and" if is_and else "or", "bool", exprs)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Node:
        v = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            v = self._bool(v)
            return const(not v.value) if v.is_const else Node("not", "bool", (v,))
        if isinstance(node.op, ast.USub) and v.kind == "num":
            return num_mul(v, const(-1))
        raise self.fail(f"operator {type(node.op).__name__} is not allowed here")

    def visit_BinOp(self, node: ast.BinOp) -> Node:
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
            if not b.is_const:
                raise self.fail("division only by a parameter or a number, not by a fact")
            if b.value == 0:
                raise self.fail("division by zero")
            return num_mul(a, const(1 / b.value))
        raise self.fail(f"operator {op.__name__} is not allowed")

    def _shift_date(self, a: Node, delta: Node, sign: int) -> Node:
        d = delta.value
        if a.is_const:
            if isinstance(d, Months):
                return const(add_months(a.value, sign * d.n))
            return const(a.value + dt.timedelta(days=sign * d.days))
        return Node("shift", "date", (a,), (d, sign))

    def visit_Compare(self, node: ast.Compare) -> Node:
        left = self.visit(node.left)
        parts: list[Node] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            parts.append(self._compare(left, op, right))
            left = right
        out = parts[0]
        for p in parts[1:]:
            if out.is_const and p.is_const:
                out = const(bool(out.value) and bool(p.value))
            else:
                out = Node("and", "bool", (out, p))
        return out

    def _compare(self, a: Node, op: ast.cmpop, b: Node) -> Node:
        if isinstance(op, ast.Is | ast.IsNot):
            if b.kind != "null":
                raise self.fail("'is' compares only with None")
            is_ = isinstance(op, ast.Is)
            if a.is_const:
                return const((a.value is None) == is_)
            return Node("isnull", "bool", (a,), is_)
        if isinstance(op, ast.In | ast.NotIn):
            if b.kind != "list":
                raise self.fail("'in' needs a list of constants, e.g. x in ['a', 'b']")
            negate = isinstance(op, ast.NotIn)
            items = list(b.value)
            if a.kind == "num":
                items = [Fraction(i) for i in items]
                if a.is_const:
                    return const((a.value in items) != negate)
                if any((i * a.den).denominator != 1 for i in items):
                    raise self.fail("'in' list does not match the number's precision")
                return Node("in", "bool", (a,), (items, [int(i * a.den) for i in items], negate))
            if a.is_const:
                return const((a.value in items) != negate)
            return Node("in", "bool", (a,), (items, items, negate))
        kind = CMP.get(type(op))
        if kind is None:
            raise self.fail(f"comparison {type(op).__name__} is not allowed")
        if a.kind != b.kind and "null" not in (a.kind, b.kind):
            raise self.fail(f"cannot compare {a.kind} with {b.kind}")
        if a.is_const and b.is_const:
            if a.value is None or b.value is None:
                return const(None)
            return const(PY_CMP[kind](a.value, b.value))
        return Node("cmp", "bool", (a, b), kind)

    def visit_IfExp(self, node: ast.IfExp) -> Node:
        test = self._bool(self.visit(node.test))
        yes, no = self.visit(node.body), self.visit(node.orelse)
        if test.is_const:
            return yes if test.value else no
        if yes.kind == "num" and no.kind == "num":
            return _num("if", (test, yes, no), lcm(yes.den, no.den), yes.is_float or no.is_float)
        if yes.kind != no.kind and "null" not in (yes.kind, no.kind):
            raise self.fail(f"both branches must have one type ({yes.kind} vs {no.kind})")
        other = yes if yes.kind != "null" else no
        return Node("if", other.kind, (test, yes, no), None, other.den, other.is_float)

    def visit_Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self.fail("only plain function calls like min(a, b) are allowed")
        name = node.func.id
        if name == "previous_month":
            return self._previous_month(node)
        if name in self.scope.functions:
            arg = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise ExprError("expected a quoted name, e.g. paid('old_age_allowance')")
            return Node("flag", "bool", (), (name, arg.value))
        args = [self.visit(a) for a in node.args]
        builtin = getattr(self, f"fn_{name}", None)
        if builtin is None:
            raise self.fail(f"unknown function {name}()")
        try:
            return builtin(*args)
        except TypeError as exc:
            raise self.fail(f"{name}() got the wrong number of arguments") from exc

    def _previous_month(self, node: ast.Call) -> Node:
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            raise self.fail("previous_month() takes one parameter name")
        name = node.args[0].id
        if name not in self.scope.prev_params:
            raise self.fail(f"unknown parameter '{name}'")
        self.scope.note(self.scope.used_prev_params, name)
        return const(self.scope.prev_params[name])

    # built-in functions
    def _nums(self, args: tuple[Node, ...], name: str) -> None:
        if not args or any(a.kind != "num" for a in args):
            raise self.fail(f"{name}() takes numbers")

    def fn_min(self, *args: Node) -> Node:
        return self._extreme(args, "min")

    def fn_max(self, *args: Node) -> Node:
        return self._extreme(args, "max")

    def _extreme(self, args: tuple[Node, ...], which: str) -> Node:
        self._nums(args, which)
        if all(a.is_const for a in args):
            return const((min if which == "min" else max)(a.value for a in args))
        den = 1
        for a in args:
            den = lcm(den, a.den)
        return _num(which, args, den, any(a.is_float for a in args))

    def fn_floor(self, a: Node) -> Node:
        self._nums((a,), "floor")
        if a.is_const:
            return const(math.floor(a.value))
        return _num("floor", (a,), 1, False)

    def fn_round(self, a: Node) -> Node:
        """Half-up to the cent."""
        self._nums((a,), "round")
        if a.is_const:
            return const(Fraction(math.floor(a.value * 100 + Fraction(1, 2)), 100))
        check_amount(a, self.text)
        return _num("round", (a,), 100, False)

    def fn_days(self, a: Node) -> Node:
        if not (a.is_const and a.kind == "num" and a.value.denominator == 1):
            raise self.fail("days() takes a whole number")
        return Node("const", "delta", value=dt.timedelta(days=int(a.value)))

    def fn_months(self, a: Node) -> Node:
        if not (a.is_const and a.kind == "num" and a.value.denominator == 1):
            raise self.fail("months() takes a whole number")
        return Node("const", "delta", value=Months(int(a.value)))

    def fn_years_between(self, a: Node, b: Node) -> Node:
        """Completed years from date a to date b (like an age)."""
        if a.kind not in ("date", "null") or b.kind not in ("date", "null"):
            raise self.fail("years_between() takes two dates")
        if a.is_const and b.is_const:
            if a.value is None or b.value is None:
                return const(None)
            return const(completed_years(a.value, b.value))
        return _num("years", (a, b), 1, False)

    def fn_coalesce(self, *args: Node) -> Node:
        kinds = {a.kind for a in args if a.kind != "null"}
        if len(kinds) != 1:
            raise self.fail("coalesce() takes values of one type")
        kind = kinds.pop()
        if kind == "num":
            den = 1
            for a in args:
                if a.kind == "num":
                    den = lcm(den, a.den)
            return _num("coalesce", args, den, any(a.is_float for a in args))
        return Node("coalesce", kind, args)
