"""Decide one household for one month: the sweep's stages over one household's members.

The stages are the sweep's (:mod:`benefits.evaluate`), for the members of one household, and
every expression is the node the sweep checked (:mod:`benefits.lang`), lowered to a Python
closure (:mod:`benefits.lang.python`) — no second parser, no rule engine:

1. **conditions** — every policy's `considers` and conditions; a condition holds when it is
   true (unknown does not hold, as in the sweep);
2. **one per household** (e.g. one temporary-assistance lead) — among the eligible members,
   by the policy's ordering, ties by file order, unknowns last;
3. **exclusions** — the declared exclusions over the candidates and their amounts;
4. **amounts** — exact fractions, integer fen, half-up once;
5. **alerts** — the alert conditions over the facts plus what was paid, then due dates,
   messages and holds (an ``account_problem`` holds the person's payments).

The result per person — entitlements, alerts, and on request the trace records, in the shape
of the sweep's ``traces.jsonl`` — is what the service compares with what it had before.

Example:
    >>> program = build_program(load_pack(), BenefitMonth.parse("2025-01"))  # doctest: +SKIP
    >>> decider = MonthDecider(program)                                 # doctest: +SKIP
    >>> outcomes = decider.decide(household_facts(store, "H1", ctx))   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benefits.alertid import NOT_FACTS, fingerprint
from benefits.compiled import PAID_PREV
from benefits.errors import RuleError
from benefits.events.program import MonthProgram, PolicySpec
from benefits.household import ORDER
from benefits.lang.python import Fn, to_fen, to_python
from benefits.pipeline import TRACE_AS_TEXT, AlertStage, OnePer, text_rule

MODES = ("pay", "credit", "lead", "notice")


def paid_key(policy_id: str) -> str:
    return f"paid__{policy_id}"


def has_key(mode: str) -> str:
    return f"has__{mode}"


FUNCTIONS = {"paid": paid_key, "has_entitlement": has_key}


def yuan(fen: int | None) -> str | None:
    """Integer fen → '459.00' (None stays None).

    >>> yuan(45900), yuan(-5), yuan(None)
    ('459.00', '-0.05', None)
    """
    if fen is None:
        return None
    sign = "-" if fen < 0 else ""
    a = abs(fen)
    return f"{sign}{a // 100}.{a % 100:02d}"


def display(kind: str, value: Any) -> Any:
    """A fact as the trace shows it: the kinds of ``TRACE_AS_TEXT`` as text, others as they are."""
    if value is None or kind not in TRACE_AS_TEXT:
        return value
    return text_of(kind, value)


def text_of(kind: str, value: Any) -> str:
    """A fact as an alert message shows it, by the kind's ``text_rule`` (empty when unknown)."""
    if value is None:
        return ""
    rule = text_rule(kind)
    if rule == "yuan":
        return yuan(value) or ""
    if rule == "iso":
        return value.isoformat()
    if rule == "true_false":
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Entitlement:
    """One person × policy paid, credited, led or noticed for the month."""

    policy_id: str
    mode: str
    amount_fen: int
    held: bool = False
    hold_reason: str | None = None
    number: int = 0


@dataclass(frozen=True)
class Alert:
    """One alert; its identity is (id_no, kind, policy_id, due_date). ``rule_id``, ``party``,
    ``subject`` and ``fingerprint`` say what it is about across months (:mod:`benefits.alertid`).
    """

    id_no: str
    kind: str
    policy_id: str
    due_date: dt.date | None
    message: str
    holds: str | None = None
    rule_id: str = ""
    party: str = ""
    subject: str = ""
    fingerprint: str = ""

    @property
    def identity(self) -> tuple[str, str, str, dt.date | None]:
        return (self.id_no, self.kind, self.policy_id, self.due_date)

    def sort_key(self) -> tuple[Any, ...]:
        return (self.id_no, self.kind, self.policy_id, self.due_date is not None, self.due_date)


@dataclass
class PersonOutcome:
    """Everything decided for one persons row: entitlements, alerts, and (on request) the
    state of each policy considered, from which
    :func:`benefits.events.tracing.trace_record` builds its trace."""

    id_no: str
    household_no: str
    community: str
    name: str
    account_no: str | None
    entitlements: dict[str, Entitlement] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    states: dict[str, PolicyState] | None = None  # per policy considered, for traces


@dataclass
class PolicyState:
    """How one policy was decided for one person: what the trace of the decision shows."""

    conditions: tuple[bool, ...]
    eligible: bool
    components: dict[str, int | None]
    amount: int | None
    candidate: bool = False
    excluded: list[str] = field(default_factory=list)  # fired policy exclusions
    dropped: set[str] = field(default_factory=set)  # components dropped
    paid: bool = False
    final: int | None = None
    case: int | None = None  # the amount case (1-based) that chose `final`


@dataclass
class _CompiledPolicy:
    spec: PolicySpec
    considers: Fn
    tests: tuple[Fn, ...]
    components: tuple[tuple[str, Fn], ...]
    cases: tuple[tuple[Fn | None, Fn], ...]
    order: tuple[tuple[Fn, bool], ...] | None


@dataclass
class _CompiledAlert:
    spec: AlertStage
    test: Fn
    due: Fn
    order: tuple[tuple[Fn, bool], ...] | None


def _order(one_per: OnePer | None) -> tuple[tuple[Fn, bool], ...] | None:
    """A one-per declaration's ordering keys as closures (the group is the household)."""
    return tuple((to_python(n, FUNCTIONS), d) for n, d in one_per.keys) if one_per else None


def _true(fn: Fn, env: Mapping[str, Any]) -> bool:
    """A condition holds when it is true: unknown does not hold."""
    return fn(env) is True


# --------------------------------------------------------------------------------- compiling


class MonthDecider:
    """The month's checked rules as Python closures, and the decision pipeline."""

    def __init__(self, program: MonthProgram) -> None:
        self.program = program
        self.kinds = dict(program.fact_kinds)
        self.policies = [self._compile_policy(s) for s in program.policies]
        self.by_id = {cp.spec.id: cp for cp in self.policies}
        self.exclusions = [
            None if e.when is None else to_python(e.when, FUNCTIONS) for e in program.exclusions
        ]
        self.alerts = [self._compile_alert(a) for a in program.alerts]

    @staticmethod
    def _compile_policy(spec: PolicySpec) -> _CompiledPolicy:
        nodes = spec.nodes
        assert nodes is not None, "a program's policies carry their checked nodes"
        return _CompiledPolicy(
            spec,
            to_python(nodes.considers, FUNCTIONS),
            tuple(to_python(n, FUNCTIONS) for n in nodes.conditions),
            tuple((n, to_python(node, FUNCTIONS)) for n, node in nodes.components.items()),
            tuple(
                (None if when is None else to_python(when, FUNCTIONS), to_python(value, FUNCTIONS))
                for when, value in nodes.amount
            ),
            _order(nodes.one_per),
        )

    @staticmethod
    def _compile_alert(a: AlertStage) -> _CompiledAlert:
        test = to_python(a.when, FUNCTIONS)
        if a.scope == "residents":
            when = test

            def test(env: Mapping[str, Any]) -> Any:
                return when(env) is True and env.get("resident") is True and env.get("alive")

        return _CompiledAlert(a, test, to_python(a.due), _order(a.one_per))

    # ----------------------------------------------------------------------------- helpers
    @staticmethod
    def _select(rows: list[tuple[int, dict]], keys: tuple[tuple[Fn, bool], ...]) -> int | None:
        """Index (into the household) of the member chosen by the ordering keys."""
        if not rows:
            return None
        ranked = sorted(rows, key=lambda r: r[1][ORDER])
        for fn, desc in reversed(keys):
            values = [(fn(env), r) for r in ranked for env in (r[1],)]
            known = [(v, r) for v, r in values if v is not None]
            unknown = [r for v, r in values if v is None]
            known.sort(key=lambda vr: vr[0], reverse=desc)
            ranked = [r for _, r in known] + unknown
        return ranked[0][0]

    @staticmethod
    def _amount(
        cp: _CompiledPolicy, env: dict[str, Any], comps: dict[str, int | None],
        dropped: set[str],
    ) -> tuple[int | None, int]:  # fmt: skip
        """The amount in fen and the number (1-based) of the amount case that chose it."""
        scope = dict(env)
        for n, fen in comps.items():
            scope[n] = 0 if n in dropped else fen
        for number, (when, value) in enumerate(cp.cases, start=1):
            if when is None or when(scope) is True:
                return to_fen(value(scope)), number
        return None, 0  # pragma: no cover - the last case has no when

    # --------------------------------------------------------------------------- deciding
    def decide(
        self,
        people: Sequence[dict[str, Any]],
        *,
        with_alerts: bool = True,
        traces: bool = False,
    ) -> list[PersonOutcome]:
        """Decide the members of one household (their facts, file order) for the month."""
        states: list[dict[str, PolicyState]] = []
        for p in people:
            p.setdefault(PAID_PREV, False)
            mine: dict[str, PolicyState] = {}
            for cp in self.policies:
                if not _true(cp.considers, p):
                    continue
                conds = tuple(_true(t, p) for t in cp.tests)
                comps = {n: to_fen(fn(p)) for n, fn in cp.components}
                amount, _ = self._amount(cp, p, comps, set())
                mine[cp.spec.id] = PolicyState(conds, all(conds), comps, amount)
            states.append(mine)

        # one per household
        for cp in self.policies:
            eligible = [
                (i, p) for i, p in enumerate(people) if cp.spec.id in states[i]
                and states[i][cp.spec.id].eligible
            ]  # fmt: skip
            chosen = self._select(eligible, cp.order) if cp.order else None
            for i, _ in eligible:
                states[i][cp.spec.id].candidate = cp.order is None or i == chosen

        self._exclusions(people, states)

        # final amounts and checks
        for p, mine in zip(people, states, strict=True):
            for cp in self.policies:
                st = mine.get(cp.spec.id)
                if st is None:
                    continue
                st.paid = st.candidate and not st.excluded
                if st.paid:
                    st.final, st.case = self._amount(cp, p, st.components, st.dropped)
                    if st.final is None:
                        raise RuleError(
                            f"{cp.spec.id}: the amount is empty for {p['id_no']} — a fact it "
                            "reads is missing"
                        )
            for a, b, why in self.program.exclusive_pairs:
                if a in mine and b in mine and mine[a].paid and mine[b].paid:
                    raise RuleError(
                        f"rule pack: {a} and {b} must not both be paid ({why}), but "
                        f"{p['id_no']} gets both"
                    )

        outcomes = []
        for p, mine in zip(people, states, strict=True):
            out = PersonOutcome(
                p["id_no"], p["household_no"], p["hukou_community"], p["name"], p["account_no"]
            )
            for cp in self.policies:
                st = mine.get(cp.spec.id)
                if st is not None and st.paid:
                    out.entitlements[cp.spec.id] = Entitlement(
                        cp.spec.id,
                        cp.spec.mode,
                        st.final,
                        number=cp.spec.number,  # type: ignore[arg-type]
                    )
            outcomes.append(out)
        if with_alerts:
            self._alerts(people, states, outcomes)
        if traces:
            for mine, out in zip(states, outcomes, strict=True):
                out.states = mine
        return outcomes

    def _exclusions(self, people: Sequence[dict], states: list[dict[str, PolicyState]]) -> None:
        specs = self.program.exclusions
        for i, mine in enumerate(states):
            active = [
                (e, when) for e, when in zip(specs, self.exclusions, strict=True)
                if all(x in mine and mine[x].candidate for x in e.between)
            ]  # fmt: skip
            if not active:
                continue
            env: dict[str, Any] = dict(people[i])
            for pid, st in mine.items():
                env[f"{pid}.amount"] = st.amount
                for n, fen in st.components.items():
                    env[f"{pid}.{n}"] = fen
            pairs: dict[frozenset[str], list[str]] = {}
            for e, when in active:
                if when is not None and not _true(when, env):
                    continue
                pairs.setdefault(frozenset(e.between), []).append(e.id)
                st = mine[e.target]
                if e.component:
                    st.dropped.add(e.component)
                else:
                    st.excluded.append(e.id)
            for pair, ids in pairs.items():
                if len(ids) > 1:
                    raise RuleError(
                        f"exclusions.yaml: exclusions {ids} between {sorted(pair)} all apply to "
                        f"{people[i]['id_no']} for the same month — the pack must say which "
                        "one wins"
                    )

    def _alerts(
        self,
        people: Sequence[dict],
        states: list[dict[str, PolicyState]],
        outcomes: list[PersonOutcome],
    ) -> None:
        for p, mine in zip(people, states, strict=True):
            for cp in self.policies:
                p[paid_key(cp.spec.id)] = bool(cp.spec.id in mine and mine[cp.spec.id].paid)
            for mode in MODES:
                p[has_key(mode)] = any(
                    st.paid for pid, st in mine.items() if self.by_id[pid].spec.mode == mode
                )
        raised: list[list[Alert]] = [[] for _ in people]
        for ca in self.alerts:
            if ca.spec.source != "persons":
                continue
            hits = [(i, p) for i, p in enumerate(people) if _true(ca.test, p)]
            if ca.order is not None:
                chosen = self._select(hits, ca.order)
                hits = [(i, p) for i, p in hits if i == chosen]
            for i, p in hits:
                raised[i].append(self._alert(ca, p, p["id_no"]))
        for out, alerts in zip(outcomes, raised, strict=True):
            out.alerts = dedupe(alerts)
            holds = [a for a in out.alerts if a.holds == "pay"]
            if holds:
                reason = min(holds, key=Alert.sort_key).message
                out.entitlements = {
                    pid: (
                        Entitlement(e.policy_id, e.mode, e.amount_fen, True, reason, e.number)
                        if e.mode == "pay"
                        else e
                    )
                    for pid, e in out.entitlements.items()
                }

    def _alert(self, ca: _CompiledAlert, facts: Mapping[str, Any], id_no: str) -> Alert:
        due = ca.due(facts)
        parts = []
        reported: dict[str, str] = {}  # the facts the message reports, as it shows them
        for text, kind in ca.spec.message:
            if kind == "":
                parts.append(text)
            elif kind == "due":
                parts.append("" if due is None else due.isoformat())
            else:
                parts.append(text_of(kind, facts.get(text)))
                if text not in NOT_FACTS:
                    reported[text] = parts[-1]
        spec = ca.spec
        party = id_no
        if spec.party_by and facts.get(spec.party_by):
            party = str(facts[spec.party_by])
        subject = due.isoformat() if spec.subject_from_due and due is not None else ""
        return Alert(
            id_no, spec.kind, spec.policy, due, "".join(parts), spec.holds,
            spec.id, party, subject, fingerprint(reported),
        )  # fmt: skip

    def quarantine_alerts(self, rows: Sequence[dict[str, Any]]) -> list[Alert]:
        """Alerts read from quarantined rows (identity conflicts), in the sweep's order."""
        out = []
        for ca in self.alerts:
            if ca.spec.source != "quarantine":
                continue
            for r in rows:
                if _true(ca.test, r) and r.get("id_no"):
                    out.append(self._alert(ca, r, r["id_no"]))
        return dedupe(out)

    def paid_ids(self, people: Sequence[dict[str, Any]], modes: tuple[str, ...]) -> set[str]:
        """IDs with an entitlement of these modes (used for the previous month)."""
        outcomes = self.decide(people, with_alerts=False)
        return {o.id_no for o in outcomes if any(e.mode in modes for e in o.entitlements.values())}


def dedupe(alerts: Sequence[Alert]) -> list[Alert]:
    """Each identity once (the first raised), sorted by identity."""
    seen: dict[tuple[Any, ...], Alert] = {}
    for a in alerts:
        seen.setdefault(a.identity, a)
    return sorted(seen.values(), key=Alert.sort_key)
