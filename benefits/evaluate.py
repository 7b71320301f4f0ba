"""Evaluate: the rule pack compiled to Polars → candidates → exclusions → amounts → alerts.

For one benefit month the pack's policies are compiled against the month's parameters;
each policy's conditions become boolean columns over the merged facts (so every condition
of every person considered is known for the trace), then one-per-group selection,
the declared exclusions, the final amounts (integer fen, half-up), entitlements, alerts and
holds.

Example:
    >>> ev = evaluate(load_pack(), load_extracts(Path("datasets/sample")),
    ...               BenefitMonth.parse("2025-01"))  # doctest: +SKIP
    >>> ev.entitlements.group_by("policy_id").len()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from benefits.alertid import fingerprint
from benefits.errors import ParameterError, RuleError
from benefits.expr import ExprError, Scope, Value, fen_value, names_in, to_fen
from benefits.ingest import Extracts
from benefits.lang import Node, check, check_amount
from benefits.lang.polars import to_polars
from benefits.merge import build_facts, death_dates
from benefits.period import BenefitMonth
from benefits.pipeline import (
    AlertStage,
    ExclusionStage,
    OnePer,
    alert_stages,
    exclusion_stages,
    one_per_stage,
    text_rule,
)
from benefits.rulebook import Policy, RulePack

PAID_PREV = "paid_or_credited_prev_month"
PAY_MODES_PREV = ("pay", "credit")

ENTITLEMENT_SCHEMA: dict[str, pl.DataType] = {
    "id_no": pl.String(),
    "household_no": pl.String(),
    "policy_id": pl.String(),
    "month": pl.String(),
    "mode": pl.String(),
    "amount_fen": pl.Int64(),
    "hukou_community": pl.String(),
    "name": pl.String(),
    "account_no": pl.String(),
    "policy_number": pl.Int64(),
}
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "id_no": pl.String(),
    "kind": pl.String(),
    "policy_id": pl.String(),
    "due_date": pl.Date(),
    "message": pl.String(),
    "holds": pl.String(),
    "rule_id": pl.String(),
    "party": pl.String(),
    "subject": pl.String(),
    "fingerprint": pl.String(),
}


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


@dataclass
class Evaluation:
    """The result of evaluating one month: facts with decision columns, and the outputs."""

    month: BenefitMonth
    facts: pl.DataFrame
    policies: list[CompiledPolicy]
    entitlements: pl.DataFrame
    alerts: pl.DataFrame
    params: dict[str, dict[str, str]] = field(default_factory=dict)
    exclusions: tuple[ExclusionStage, ...] = ()  # the exclusion stages between policies in force


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


# --------------------------------------------------------------------------- evaluation


def evaluate(
    pack: RulePack,
    extracts: Extracts,
    month: BenefitMonth,
    *,
    with_alerts: bool = True,
    timings: dict[str, float] | None = None,
) -> Evaluation:
    """Decide entitlements (and alerts) for every person for `month`.

    `timings`, when given, receives the seconds spent in the merge and evaluate stages.
    """
    t0 = time.perf_counter()
    facts = build_facts(
        extracts, month, pack.info.district_code, tuple(pack.info.status_precedence),
        pack.catalogue,
    ).with_row_index("__i")  # fmt: skip
    if with_alerts:
        paid_prev = paid_previous_month(pack, extracts, month)
        facts = facts.with_columns(pl.col("id_no").is_in(paid_prev.implode()).alias(PAID_PREV))
    else:
        facts = facts.with_columns(pl.lit(False).alias(PAID_PREV))
    t1 = time.perf_counter()
    scope, shown = month_scope(pack, month)
    compiled = [compile_policy(pack, p, scope, shown, month) for p in pack.policies_for(month)]

    # stage A: conditions, components and provisional amounts
    cols: list[pl.Expr] = []
    for cp in compiled:
        pid = cp.id
        cols.append(cp.considered.alias(col_name(pid, "considered")))
        cols += [c.expr.alias(col_name(pid, "c", c.id)) for c in cp.conditions]
        cols += [e.alias(col_name(pid, "comp", n)) for n, e in cp.components.items()]
    facts = facts.with_columns(cols)
    cols = []
    for cp in compiled:
        pid = cp.id
        conds = [pl.col(col_name(pid, "considered"))] + [
            pl.col(col_name(pid, "c", c.id)) for c in cp.conditions
        ]
        cols.append(pl.all_horizontal(conds).alias(col_name(pid, "eligible")))
        cols.append(cp.amount_raw.alias(col_name(pid, "amount")))
    facts = facts.with_columns(cols)

    # one per group (e.g. one lead per household)
    cols = []
    for cp in compiled:
        eligible = pl.col(col_name(cp.id, "eligible"))
        if cp.one_per:
            cols.append(
                (eligible & _select_one_per(facts, eligible, cp.one_per)).alias(
                    col_name(cp.id, "candidate")
                )
            )
        else:
            cols.append(eligible.alias(col_name(cp.id, "candidate")))
    facts = facts.with_columns(cols)

    exclusions = exclusion_stages(pack, scope, {cp.id: cp.components for cp in compiled})
    facts = apply_exclusions(exclusions, compiled, facts, scope)

    # final amounts
    cols = []
    for cp in compiled:
        pid = cp.id
        excluded = [
            pl.col(col_name(pid, "excl", e.id))
            for e in exclusions
            if e.target == pid and e.component is None
        ]
        paid = pl.col(col_name(pid, "candidate"))
        if excluded:
            paid = paid & ~pl.any_horizontal(excluded)
        cols.append(paid.alias(col_name(pid, "paid")))
        cols.append(pl.when(paid).then(cp.amount_final).alias(col_name(pid, "final_amount")))
        if cp.case_final is not None:
            cols.append(pl.when(paid).then(cp.case_final).alias(col_name(pid, "case")))
    facts = facts.with_columns(cols)
    for mode in ("pay", "credit", "lead", "notice"):
        flags = [pl.col(col_name(cp.id, "paid")) for cp in compiled if cp.policy.mode == mode]
        facts = facts.with_columns(
            (pl.any_horizontal(flags) if flags else pl.lit(False)).alias(f"__has_{mode}")
        )
    _check_outcomes(pack, compiled, facts)
    entitlements = collect_entitlements(compiled, facts, month)
    alerts = pl.DataFrame(schema=ALERT_SCHEMA)
    if with_alerts:
        alerts = evaluate_alerts(pack, facts, scope, extracts.quarantine, month)
    if timings is not None:
        timings["merge"] = t1 - t0
        timings["evaluate"] = time.perf_counter() - t1
    return Evaluation(month, facts, compiled, entitlements, alerts, shown, exclusions)


def apply_exclusions(
    exclusions: tuple[ExclusionStage, ...],
    compiled: list[CompiledPolicy],
    facts: pl.DataFrame,
    scope: Scope,
) -> pl.DataFrame:
    """Evaluate every declared exclusion on the candidates; two firing on one pair is an error."""
    columns: dict[str, Value] = {}
    for cp in compiled:
        columns[f"{cp.id}.amount"] = fen_value(pl.col(col_name(cp.id, "amount")))
        for n in cp.components:
            columns[f"{cp.id}.{n}"] = fen_value(pl.col(col_name(cp.id, "comp", n)))
    sc = Scope(**{**scope.__dict__, "columns": {**scope.columns, **columns}})
    cols: list[pl.Expr] = []
    fired_by_pair: dict[frozenset[str], list[str]] = {}
    for e in exclusions:
        a, b = e.between
        fires = pl.col(col_name(a, "candidate")) & pl.col(col_name(b, "candidate"))
        if e.when is not None:
            fires = fires & _bool_expr(to_polars(e.when, sc))
        name = (
            col_name(e.target, "drop", e.component)
            if e.component
            else col_name(e.target, "excl", e.id)
        )
        cols.append(fires.alias(name))
        fired_by_pair.setdefault(frozenset(e.between), []).append(name)
    # components no exclusion can drop still need their flag column
    declared = {name for names in fired_by_pair.values() for name in names}
    for cp in compiled:
        for n in cp.components:
            name = col_name(cp.id, "drop", n)
            if name not in declared:
                cols.append(pl.lit(False).alias(name))
    facts = facts.with_columns(cols)
    for pair, names in fired_by_pair.items():
        if len(names) < 2:
            continue
        clash = facts.filter(pl.sum_horizontal([pl.col(n).cast(pl.Int8) for n in names]) > 1)
        if clash.height:
            raise RuleError(
                f"exclusions.yaml: exclusions {names} between {sorted(pair)} all apply to "
                f"{clash['id_no'][0]} for the same month — the pack must say which one wins"
            )
    return facts


def _check_outcomes(pack: RulePack, compiled: list[CompiledPolicy], facts: pl.DataFrame) -> None:
    ids = {cp.id for cp in compiled}
    for pair in pack.exclusions.mutually_exclusive:
        a, b = pair.policies
        if a not in ids or b not in ids:
            continue
        both = facts.filter(pl.col(col_name(a, "paid")) & pl.col(col_name(b, "paid")))
        if both.height:
            raise RuleError(
                f"rule pack: {a} and {b} must not both be paid ({pair.resolved_by}), but "
                f"{both.height} person(s) get both, e.g. {both['id_no'][0]}"
            )
    for cp in compiled:
        missing = facts.filter(
            pl.col(col_name(cp.id, "paid")) & pl.col(col_name(cp.id, "final_amount")).is_null()
        )
        if missing.height:
            raise RuleError(
                f"{cp.policy.source_file}: the amount of '{cp.id}' is empty for "
                f"{missing['id_no'][0]} — a fact it reads is missing"
            )


def collect_entitlements(
    compiled: list[CompiledPolicy], facts: pl.DataFrame, month: BenefitMonth
) -> pl.DataFrame:
    """One row per person × policy paid, credited, led or noticed."""
    lazy = facts.lazy()
    frames = [
        lazy.filter(pl.col(col_name(cp.id, "paid"))).select(
            "id_no",
            "household_no",
            pl.lit(cp.id).alias("policy_id"),
            pl.lit(month.label).alias("month"),
            pl.lit(cp.policy.mode).alias("mode"),
            pl.col(col_name(cp.id, "final_amount")).alias("amount_fen"),
            "hukou_community",
            "name",
            "account_no",
            pl.lit(cp.policy.number, pl.Int64).alias("policy_number"),
        )
        for cp in compiled
    ]
    if not frames:
        return pl.DataFrame(schema=ENTITLEMENT_SCHEMA)
    return pl.concat(frames).cast(ENTITLEMENT_SCHEMA).collect()


def paid_previous_month(pack: RulePack, extracts: Extracts, month: BenefitMonth) -> pl.Series:
    """IDs paid or credited for M−1 among people who died in M−1 (for `death_stop`)."""
    prev = month.previous
    died = (
        death_dates(extracts)
        .filter((pl.col("death_date") >= prev.start) & (pl.col("death_date") <= prev.end))
        .collect()["id_no"]
    )
    persons = extracts.frame("persons")
    households = persons.filter(pl.col("id_no").is_in(died.implode()))["household_no"].unique()
    subset = persons.filter(pl.col("household_no").is_in(households.implode()))
    if subset.is_empty():
        return pl.Series("id_no", [], pl.String)
    try:
        ev = evaluate(pack, extracts.with_persons(subset), prev, with_alerts=False)
    except ParameterError:
        return pl.Series("id_no", [], pl.String)
    paid = ev.entitlements.filter(pl.col("mode").is_in(PAY_MODES_PREV))["id_no"]
    return paid.filter(paid.is_in(died.implode())).unique(maintain_order=True)


# ------------------------------------------------------------------------------- alerts


def display_expr(name: str, kind: str) -> pl.Expr:
    """A fact rendered for people, by the kind's :func:`benefits.pipeline.text_rule`."""
    c = pl.col(name)
    rule = text_rule(kind)
    if rule == "yuan":
        return yuan_expr(c)
    if rule == "iso":
        return c.dt.strftime("%Y-%m-%d")
    if rule == "true_false":
        return pl.when(c).then(pl.lit("true")).when(~c).then(pl.lit("false"))
    return c.cast(pl.String)


def yuan_expr(fen: pl.Expr) -> pl.Expr:
    """Integer fen → '459.00'."""
    sign = pl.when(fen < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    a = fen.abs()
    return pl.concat_str(
        [sign, (a // 100).cast(pl.String), pl.lit("."), (a % 100).cast(pl.String).str.zfill(2)]
    )


def _message(pieces: tuple[tuple[str, str], ...]) -> pl.Expr:
    out: list[pl.Expr] = []
    for text, kind in pieces:
        if kind == "":
            out.append(pl.lit(text))
        elif kind == "due":
            out.append(pl.col("__due").dt.strftime("%Y-%m-%d").fill_null(""))
        else:
            out.append(display_expr(text, kind).fill_null(""))
    return pl.concat_str(out) if out else pl.lit("")


def _fingerprints(texts: pl.Series) -> pl.Series:
    """Each row's fingerprint, from a struct column of the facts a message reports."""
    return pl.Series([fingerprint(row) for row in texts.to_list()], dtype=pl.String)


def _identity_columns(alert: AlertStage) -> list[pl.Expr]:
    """rule_id, party, subject and fingerprint of an alert rule's rows (:mod:`benefits.alertid`).

    The facts are rendered as the message renders them, so the event path, which renders them
    the same way, gives the same fingerprint.
    """
    party = pl.col("id_no").cast(pl.String)
    if alert.party_by:
        group = pl.col(alert.party_by).cast(pl.String)
        party = pl.when(group.fill_null("") != "").then(group).otherwise(party)
    if alert.subject_from_due:
        subject = pl.col("__due").dt.strftime("%Y-%m-%d").fill_null("")
    else:
        subject = pl.lit("")
    kinds = dict(p for p in alert.message if p[1] not in ("", "due"))
    if alert.reported:
        facts = pl.struct(
            [display_expr(n, kinds[n]).fill_null("").alias(n) for n in alert.reported]
        )
        prints = facts.map_batches(_fingerprints, return_dtype=pl.String, is_elementwise=True)
    else:
        prints = pl.lit(fingerprint({}))
    return [
        pl.lit(alert.id).alias("rule_id"),
        party.alias("party"),
        subject.alias("subject"),
        prints.alias("fingerprint"),
    ]


def evaluate_alerts(
    pack: RulePack,
    facts: pl.DataFrame,
    scope: Scope,
    quarantine: pl.DataFrame,
    month: BenefitMonth,
) -> pl.DataFrame:
    """Every alert of the pack for the month, each identity once."""
    frames = []
    q_scope = Scope(constants=scope.constants, params=scope.params)
    for alert in alert_stages(pack, scope):
        if alert.source == "quarantine":
            frame, sc = quarantine.with_row_index("__i"), q_scope
        else:
            frame, sc = facts, scope
        cond = _bool_expr(to_polars(alert.when, sc))
        if alert.scope == "residents":
            cond = cond & pl.col("resident") & pl.col("alive")
        if alert.one_per:
            cond = cond & _select_one_per(frame, cond, _lower_one_per(alert.one_per, sc))
        frames.append(
            frame.lazy()
            .filter(cond)
            .with_columns(to_polars(alert.due, sc).polars().alias("__due"))
            .select(
                pl.col("id_no"),
                pl.lit(alert.kind).alias("kind"),
                pl.lit(alert.policy).alias("policy_id"),
                pl.col("__due").alias("due_date"),
                _message(alert.message).alias("message"),
                pl.lit(alert.holds, pl.String).alias("holds"),
                *_identity_columns(alert),
            )
        )
    if not frames:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    alerts = pl.concat(frames).cast(ALERT_SCHEMA).filter(pl.col("id_no").is_not_null()).collect()
    return alerts.unique(
        subset=["id_no", "kind", "policy_id", "due_date"], keep="first", maintain_order=True
    ).sort(["id_no", "kind", "policy_id", "due_date"])


def fen_to_decimal(fen: int) -> Decimal:
    """Integer fen → Decimal yuan (for summaries)."""
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def json_const(value: Any) -> str:
    """Deterministic JSON text of a constant (UTF-8, no ASCII escaping)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
