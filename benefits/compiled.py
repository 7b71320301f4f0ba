"""The rule pack compiled for one benefit month: each policy's expressions as Polars.

:func:`month_scope` gives the names a rule may read in the month (facts, parameters in force,
month constants); :func:`compile_policy` checks a policy's expressions once
(:class:`PolicyNodes`, what both paths run) and lowers them to Polars
(:class:`CompiledPolicy`); one-per-group declarations are lowered and selected here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from benefits.errors import RuleError
from benefits.expr import ExprError, Scope, Value, fen_value, names_in, to_fen
from benefits.lang import Node, check, check_amount
from benefits.lang.polars import to_polars
from benefits.period import BenefitMonth
from benefits.pipeline import OnePer, one_per_stage
from benefits.rulebook import Policy, RulePack

PAID_PREV = "paid_or_credited_prev_month"


def col_name(policy_id: str, *parts: str) -> str:
    """The name of a per-policy working column, e.g. ``dibao_allowance.eligible``."""
    return ".".join((policy_id, *parts))


@dataclass
class CompiledCondition:
    id: str
    label: str
    test: str
    expr: pl.Expr
    facts: list[str]
    params: list[str]
    node: Node | None = None  # the checked expression (the event path runs it in Python)


@dataclass
class AmountCase:
    """One case of a policy's amount (`when` → `value`), as the trace names it."""

    number: int  # 1-based, in the rule file's order
    when: str  # the test, or "otherwise" for the last case
    value: str
    facts: list[str]  # facts read to choose it: this case's test and every earlier one's


@dataclass(frozen=True)
class PolicyNodes:
    """A policy's expressions checked once (:mod:`benefits.lang`): what both paths run."""

    considers: Node
    conditions: tuple[Node, ...]
    components: dict[str, Node]  # amounts: read through check_amount
    amount: tuple[tuple[Node | None, Node], ...]  # (when, value) cases; the last has no when
    one_per: OnePer | None  # one per group: the group and the ordering keys


@dataclass
class CompiledPolicy:
    policy: Policy
    considered: pl.Expr
    conditions: list[CompiledCondition]
    components: dict[str, pl.Expr]  # fen
    amount_raw: pl.Expr  # fen, before components are dropped
    amount_final: pl.Expr  # fen, after
    params: dict[str, dict[str, str]]  # for the trace
    one_per: tuple[str, list[tuple[pl.Expr, bool]]] | None = None
    considers_facts: list[str] = field(default_factory=list)  # facts the target group reads
    cases: list[AmountCase] = field(default_factory=list)  # empty for a single formula
    case_final: pl.Expr | None = None  # number of the case that chose the final amount
    nodes: PolicyNodes | None = None  # the checked expressions, for the event path

    @property
    def id(self) -> str:
        return self.policy.id


# ----------------------------------------------------------------------------- the scope


def _param_value(value: Decimal | str) -> Any:
    return Fraction(value) if isinstance(value, Decimal) else value


def month_scope(pack: RulePack, month: BenefitMonth) -> tuple[Scope, dict[str, dict[str, str]]]:
    """Names for compiling rules for `month`: facts, parameters in force, month constants."""
    params: dict[str, Any] = {}
    prev_params: dict[str, Any] = {}
    shown: dict[str, dict[str, str]] = {}
    for name, param in pack.parameters.items():
        found = param.at(month)
        if found is not None:
            params[name] = _param_value(found[0])
            shown[name] = {
                "value": str(found[0]),
                "from": found[1].isoformat(),
                "label": param.label.text(),
                "unit": param.unit,
                "basis": param.basis,
            }
        prev = param.at(month.previous)
        if prev is not None:
            prev_params[name] = _param_value(prev[0])
            shown[f"previous_month({name})"] = {
                "value": str(prev[0]),
                "from": prev[1].isoformat(),
                "label": param.label.text() + f" — in force in {month.previous.label}",
                "unit": param.unit,
                "basis": param.basis,
            }
    facts = {name: f.kind for name, f in pack.catalogue.facts.items()}
    facts[PAID_PREV] = "bool"
    scope = Scope(
        facts=facts,
        params=params,
        prev_params=prev_params,
        constants={
            "month_start": month.start,
            "month_end": month.end,
            "prev_month_start": month.previous.start,
            "prev_month_end": month.previous.end,
            "month_number": month.month,
            "district_code": pack.info.district_code,
        },
        functions={
            "paid": lambda pid: _bool_col(col_name(_const_str(pid), "paid")),
            "has_entitlement": lambda mode: _bool_col(f"__has_{_const_str(mode)}"),
        },
    )
    return scope, shown


def _const_str(v: Value) -> str:
    if not (v.is_const and v.kind == "str"):
        raise ExprError("expected a quoted name, e.g. paid('old_age_allowance')")
    return v.const


def _bool_col(name: str) -> Value:
    return Value("bool", expr=pl.col(name))


def _require_params(pack: RulePack, texts: list[str], scope: Scope, month: BenefitMonth) -> None:
    for text in texts:
        for name in names_in(text):
            if name in pack.parameters and name not in scope.params:
                pack.parameter_at(name, month)  # raises ParameterError naming both


def _check(text: str, scope: Scope, where: str, amount: bool = False) -> tuple[Node, Scope]:
    s = scope.fresh()
    try:
        node = check(text, s)
        return (check_amount(node, text) if amount else node), s
    except ExprError as exc:
        raise RuleError(f"{where}: {exc}") from exc


def _bool_expr(v: Value) -> pl.Expr:
    if v.kind not in ("bool", "null"):
        raise ExprError(f"expected a condition, got a {v.kind}")
    return v.polars().fill_null(False) if not v.is_const else pl.lit(bool(v.const))


# -------------------------------------------------------------------------- compilation


def compile_policy(
    pack: RulePack,
    policy: Policy,
    scope: Scope,
    shown: dict[str, dict[str, str]],
    month: BenefitMonth,
) -> CompiledPolicy:
    """Compile one policy for a month (parameters resolved, names checked)."""
    where = f"{pack.folder / policy.source_file}: policy '{policy.id}'"
    _require_params(
        pack, [t for _, t in policy.expressions()] + list(policy.let.values()), scope, month
    )
    scope = Scope(**{**scope.__dict__, "lets": dict(policy.let), "columns": dict(scope.columns)})
    used_params: list[str] = []

    def track(s: Scope) -> None:
        for p in s.used_params:
            if p not in used_params:
                used_params.append(p)
        for p in s.used_prev_params:
            key = f"previous_month({p})"
            if key not in used_params:
                used_params.append(key)

    considers_node, s = _check(policy.considers, scope, f"{where}, field considers")
    track(s)
    considers_facts = list(s.used_facts)
    considered_expr = _bool_expr(to_polars(considers_node, scope))
    conditions = []
    for c in policy.conditions:
        node, s = _check(c.when, scope, f"{where}, condition {c.id}")
        track(s)
        conditions.append(
            CompiledCondition(
                c.id,
                c.label.text(),
                c.when,
                _bool_expr(to_polars(node, scope)),
                s.used_facts,
                s.used_params + [f"previous_month({p})" for p in s.used_prev_params],
                node,
            )
        )
    components: dict[str, pl.Expr] = {}
    component_nodes: dict[str, Node] = {}
    for name, text in policy.components.items():
        node, s = _check(text, scope, f"{where}, component {name}")
        track(s)
        component_nodes[name] = check_amount(node, text)
        components[name] = to_fen(to_polars(node, scope), text)

    cases: list[AmountCase] = []
    # the amount's cases, checked once (in the cases' reading order: the last first)
    amount_scope = Scope(
        **{
            **scope.__dict__,
            "columns": {**scope.columns, **_component_types(policy.id, components)},
        }
    )
    case_nodes: list[tuple[Node | None, Node]] = []
    if isinstance(policy.amount, str):
        node, s = _check(policy.amount, amount_scope, f"{where}, field amount", amount=True)
        track(s)
        case_nodes.append((None, node))
    else:
        read: dict[int, list[str]] = {}  # case → facts its test reads
        for i in reversed(range(len(policy.amount))):
            case = policy.amount[i]
            node, s = _check(case.value, amount_scope, f"{where}, field amount", amount=True)
            track(s)
            test_node = None
            if case.when is not None:
                test_node, s2 = _check(case.when, amount_scope, f"{where}, field amount")
                track(s2)
                read[i] = s2.used_facts
            case_nodes.insert(0, (test_node, node))
        for i, case in enumerate(policy.amount):
            facts: list[str] = []
            for k in range(i + 1):
                facts += [n for n in read.get(k, []) if n not in facts]
            cases.append(AmountCase(i + 1, case.when or "otherwise", case.value, facts))

    def amount_with(columns: dict[str, Value]) -> tuple[pl.Expr, pl.Expr | None]:
        """The amount in fen and, for a list of cases, the number of the case that chose it."""
        sc = Scope(**{**scope.__dict__, "columns": {**scope.columns, **columns}})
        if isinstance(policy.amount, str):
            return to_fen(to_polars(case_nodes[0][1], sc), policy.amount), None
        out: pl.Expr | None = None
        number: pl.Expr | None = None
        for i in reversed(range(len(case_nodes))):
            when, value_node = case_nodes[i]
            value = to_fen(to_polars(value_node, sc), policy.amount[i].value)
            if when is None:
                out, number = value, pl.lit(i + 1, pl.Int32)
            else:
                test = _bool_expr(to_polars(when, sc))
                out = pl.when(test).then(value).otherwise(out)
                number = pl.when(test).then(pl.lit(i + 1, pl.Int32)).otherwise(number)
        assert out is not None
        return out, number

    raw_cols = {n: fen_value(pl.col(col_name(policy.id, "comp", n))) for n in components}
    final_cols = {
        n: fen_value(
            pl.when(pl.col(col_name(policy.id, "drop", n)))
            .then(pl.lit(0, pl.Int64))
            .otherwise(pl.col(col_name(policy.id, "comp", n)))
        )
        for n in components
    }
    amount_raw, _ = amount_with(raw_cols)
    amount_final, case_final = amount_with(final_cols)
    one_per_nodes = one_per_stage(policy.one_per, scope, where)
    one_per = _lower_one_per(one_per_nodes, scope) if one_per_nodes else None
    nodes = PolicyNodes(
        considers_node,
        tuple(c.node for c in conditions if c.node is not None),
        component_nodes,
        tuple(case_nodes),
        one_per_nodes,
    )
    return CompiledPolicy(
        policy,
        considered_expr,
        conditions,
        components,
        amount_raw,
        amount_final,
        {k: shown[k] for k in used_params if k in shown},
        one_per,
        considers_facts,
        cases,
        case_final,
        nodes,
    )


def _component_types(policy_id: str, components: dict[str, Any]) -> dict[str, Value]:
    return {n: fen_value(pl.col(col_name(policy_id, "comp", n))) for n in components}


def _lower_one_per(spec: OnePer, scope: Scope) -> tuple[str, list[tuple[pl.Expr, bool]]]:
    """A one-per declaration's group and ordering keys as Polars expressions."""
    out = []
    for node, descending in spec.keys:
        v = to_polars(node, scope)
        out.append((v.num_parts()[0] if v.kind == "num" else v.polars(), descending))
    return spec.by, out


def _select_one_per(
    frame: pl.DataFrame, candidates: pl.Expr, spec: tuple[str, list[tuple[pl.Expr, bool]]]
) -> pl.Expr:
    """Boolean expression: the row chosen in its group among the candidates."""
    by, keys = spec
    ranked = (
        frame.filter(candidates)
        .select(
            pl.col("__i"),
            pl.col(by).alias("__by"),
            *[k.alias(f"__k{i}") for i, (k, _) in enumerate(keys)],
        )
        .sort(
            ["__by", *[f"__k{i}" for i in range(len(keys))], "__i"],
            descending=[False, *[d for _, d in keys], False],
            nulls_last=True,
        )
        .unique(subset="__by", keep="first", maintain_order=True)
    )
    return pl.col("__i").is_in(ranked["__i"].implode())
