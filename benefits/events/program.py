"""A month's rule program: the rule pack resolved for one benefit month, as plain data.

Built in the service from the same rule files the sweep reads, with the sweep's own checker
(:mod:`benefits.lang`) and compiler for everything the trace shows (which facts each
condition reads, which parameters with their effective dates), so the two paths cannot drift
apart on what they decide or explain. Every expression is carried as its checked node
(:class:`benefits.lang.Node`, the one the sweep lowered to Polars); the decider lowers the
same nodes to Python (:mod:`benefits.events.decide`). The texts stay for the trace.

Example:
    >>> from benefits.rulebook import load_pack
    >>> program = build_program(load_pack(), BenefitMonth.parse("2025-01"))
    >>> program.params["dibao_std"]
    Fraction(1301, 1)
    >>> [p.id for p in program.policies][:2]
    ['dibao_allowance', 'dibian_living_subsidy']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from benefits.compiled import PAID_PREV, AmountCase, PolicyNodes, compile_policy, month_scope
from benefits.errors import RuleError
from benefits.lang import Node
from benefits.period import BenefitMonth
from benefits.pipeline import (
    QUARANTINE_KINDS,
    AlertStage,
    ExclusionStage,
    alert_stages,
    exclusion_stages,
)
from benefits.rulebook import RulePack
from benefits.traces import DecisionLayout, decision_layout, decision_parameters

EVENT_ONE_PER = "household_no"  # the event path evaluates whole households


@dataclass(frozen=True)
class ConditionSpec:
    id: str
    label: str
    test: str
    facts: tuple[str, ...]  # facts the condition reads, in the sweep's order (for the trace)
    node: Node


@dataclass(frozen=True)
class PolicySpec:
    id: str
    number: int
    mode: str
    version: str
    considers: str
    conditions: tuple[ConditionSpec, ...]
    lets: dict[str, str]
    components: dict[str, str]
    amount: tuple[tuple[str | None, str], ...]  # (when, value) cases; the last has no when
    one_per: tuple[tuple[str, bool], ...] | None  # (expression, descending) keys
    params: dict[str, dict[str, str]]  # name -> {"value", "from"} (the trace's "parameters")
    considers_facts: tuple[str, ...] = ()  # facts the target group test reads (for the trace)
    cases: tuple[AmountCase, ...] = ()  # the amount cases as the trace names them
    nodes: PolicyNodes | None = None  # the checked expressions
    layout: DecisionLayout | None = None  # what its decision records hold (the sweep's)


# the exclusion and alert stages are the sweep's declarations (benefits.pipeline)
ExclusionSpec = ExclusionStage
AlertSpec = AlertStage


@dataclass(frozen=True)
class MonthProgram:
    """Everything the rules worker needs to decide a month."""

    key: str
    month: str
    number: int
    start: dt.date
    end: dt.date
    district: str
    precedence: tuple[str, ...]
    params: dict[str, Any]
    prev_params: dict[str, Any]
    constants: dict[str, Any]
    fact_kinds: dict[str, str]
    quarantine_kinds: dict[str, str]
    policies: tuple[PolicySpec, ...]
    exclusions: tuple[ExclusionSpec, ...]
    exclusive_pairs: tuple[tuple[str, str, str], ...]
    alerts: tuple[AlertSpec, ...]
    pack_version: str
    pack_digest: str


def _one_per(spec: Any, where: str) -> tuple[tuple[str, bool], ...] | None:
    if spec is None:
        return None
    if spec.by != EVENT_ONE_PER:
        raise RuleError(
            f"{where}: one_per by '{spec.by}' — the event path decides whole households and "
            f"supports one_per by {EVENT_ONE_PER} only"
        )
    return tuple((k.expr, k.descending) for k in spec.order)


_CACHE: dict[tuple[str, str, str], MonthProgram] = {}
_CACHE_SIZE = 64


def build_program(pack: RulePack, month: BenefitMonth) -> MonthProgram:
    """Resolve the pack for `month`; errors as the sweep's (ParameterError, RuleError).

    Programs are cached by (rule-pack folder, digest, month): the same rule files resolve to
    the same program.
    """
    key = (str(pack.folder), pack.digest, month.label)
    found = _CACHE.get(key)
    if found is None:
        found = _build(pack, month)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = found
    return found


def _build(pack: RulePack, month: BenefitMonth) -> MonthProgram:
    scope, shown = month_scope(pack, month)
    compiled = [compile_policy(pack, p, scope, shown, month) for p in pack.policies_for(month)]
    exclusions = exclusion_stages(pack, scope, {cp.id: cp.components for cp in compiled})
    policies = []
    for cp in compiled:
        policy = cp.policy
        amount: tuple[tuple[str | None, str], ...]
        if isinstance(policy.amount, str):
            amount = ((None, policy.amount),)
        else:
            amount = tuple((c.when, c.value) for c in policy.amount)
        policies.append(
            PolicySpec(
                id=policy.id,
                number=policy.number,
                mode=policy.mode,
                version=policy.version,
                considers=policy.considers,
                conditions=tuple(
                    ConditionSpec(c.id, c.label, c.test, tuple(c.facts), c.node)  # type: ignore[arg-type]
                    for c in cp.conditions
                ),
                lets=dict(policy.let),
                components=dict(policy.components),
                amount=amount,
                one_per=_one_per(policy.one_per, f"{policy.source_file}: policy '{policy.id}'"),
                params=decision_parameters(cp.params),
                considers_facts=tuple(cp.considers_facts),
                cases=tuple(cp.cases),
                nodes=cp.nodes,
                layout=decision_layout(month.label, cp, exclusions, pack.catalogue.facts),
            )
        )
    ids = {p.id for p in policies}
    pairs = tuple(
        (p.policies[0], p.policies[1], p.resolved_by)
        for p in pack.exclusions.mutually_exclusive
        if p.policies[0] in ids and p.policies[1] in ids
    )
    alerts = alert_stages(pack, scope)
    for a in pack.alerts:
        _one_per(a.one_per, f"alerts.yaml: alert '{a.id}'")
    fact_kinds = {name: f.kind for name, f in pack.catalogue.facts.items()}
    fact_kinds[PAID_PREV] = "bool"
    return MonthProgram(
        key=f"{pack.digest[:16]}:{month.label}",
        month=month.label,
        number=month.month,
        start=month.start,
        end=month.end,
        district=pack.info.district_code,
        precedence=tuple(pack.info.status_precedence),
        params=dict(scope.params),
        prev_params=dict(scope.prev_params),
        constants=dict(scope.constants),
        fact_kinds=fact_kinds,
        quarantine_kinds=dict(QUARANTINE_KINDS),
        policies=tuple(policies),
        exclusions=exclusions,
        exclusive_pairs=pairs,
        alerts=alerts,
        pack_version=pack.version,
        pack_digest=pack.digest,
    )


__all__ = ["AlertSpec", "ExclusionSpec", "MonthProgram", "PolicySpec", "build_program"]
