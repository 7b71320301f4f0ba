"""Evaluate: the month's stages — candidates → one per group → exclusions → amounts → outputs.

For one benefit month the pack's policies are compiled against the month's parameters
(:mod:`benefits.compiled`); each policy's conditions become boolean columns over the merged
facts (so every condition of every person considered is known for the trace), then
one-per-group selection, the declared exclusions, the final amounts (integer fen, half-up),
entitlements, and the alerts and holds (:mod:`benefits.alerting`).

Example:
    >>> ev = evaluate(load_pack(), load_extracts(Path("datasets/sample")),
    ...               BenefitMonth.parse("2025-01"))  # doctest: +SKIP
    >>> ev.entitlements.group_by("policy_id").len()  # doctest: +SKIP
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from benefits.alerting import ALERT_SCHEMA, evaluate_alerts
from benefits.compiled import (
    PAID_PREV,
    CompiledPolicy,
    _bool_expr,
    _select_one_per,
    col_name,
    compile_policy,
    month_scope,
)
from benefits.errors import ParameterError, RuleError
from benefits.expr import Scope, Value, fen_value
from benefits.ingest import Extracts
from benefits.lang.polars import to_polars
from benefits.merge import build_facts, death_dates
from benefits.period import BenefitMonth
from benefits.pipeline import ExclusionStage, exclusion_stages
from benefits.rulebook import RulePack

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


# --------------------------------------------------------------------------- evaluation


def evaluate(
    pack: RulePack,
    extracts: Extracts,
    month: BenefitMonth,
    *,
    with_alerts: bool = True,
    timings: dict[str, float] | None = None,
    facts: pl.DataFrame | None = None,
) -> Evaluation:
    """Decide entitlements (and alerts) for every person for `month`.

    `timings`, when given, receives the seconds spent in the merge and evaluate stages.
    `facts`, when given, are this month's :func:`merged_facts` of a pack with the same district,
    precedence and fact catalogue (a what-if merges once and evaluates two packs).
    """
    t0 = time.perf_counter()
    with ThreadPoolExecutor(1, thread_name_prefix="paid-prev") as pool:
        # the previous month of a few households (much Python, little data) is decided while
        # the month's merge (Polars, which releases the GIL) runs
        paid_prev = pool.submit(paid_previous_month, pack, extracts, month) if with_alerts else None
        if facts is None:
            facts = merged_facts(pack, extracts, month)
        if paid_prev is not None:
            ids = paid_prev.result()
            facts = facts.with_columns(pl.col("id_no").is_in(ids.implode()).alias(PAID_PREV))
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


def merged_facts(pack: RulePack, extracts: Extracts, month: BenefitMonth) -> pl.DataFrame:
    """The merge stage: one row per person with every fact of the pack's catalogue."""
    return build_facts(
        extracts, month, pack.info.district_code, tuple(pack.info.status_precedence),
        pack.catalogue,
    ).with_row_index("__i")  # fmt: skip


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
