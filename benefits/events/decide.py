"""Decide one household for one month: the sweep's stages, run through a rule engine.

The stages are the sweep's (:mod:`benefits.evaluate`), for the members of one household:

1. **conditions** — every policy's `considers` and conditions, as rules of one ruleset; each
   person is asserted as a fact and the rules that fired are the conditions that hold;
2. **one per household** (e.g. one temporary-assistance lead) — among the eligible members,
   by the policy's ordering, ties by file order;
3. **exclusions** — the declared exclusions as rules over the candidates and their amounts;
4. **amounts** — the exact evaluator (:mod:`benefits.events.pyeval`), integer fen, half-up;
5. **alerts** — the alert rules over the facts plus what was paid, then due dates, messages
   and holds (an ``account_problem`` holds the person's payments).

The result per person — entitlements, alerts, and on request the trace records, in the shape
of the sweep's ``traces.jsonl`` — is what the service compares with what it had before.

Example:
    >>> decider = MonthDecider(build_program(load_pack(), BenefitMonth.parse("2025-01")),
    ...                        DurableRulesEngine())                     # doctest: +SKIP
    >>> outcomes = decider.decide(household_facts(store, "H1", ctx))   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from benefits.alertid import NOT_FACTS, fingerprint
from benefits.errors import RuleError
from benefits.evaluate import PAID_PREV
from benefits.events.adapter import RulesEngine
from benefits.events.conditions import (
    And,
    Cmp,
    Cond,
    ConditionCompiler,
    Const,
    encode_date,
    encode_value,
    fields_of,
)
from benefits.events.facts import ORDER
from benefits.events.program import AlertSpec, MonthProgram, PolicySpec
from benefits.events.pyeval import Fn, PyEval, to_fen
from benefits.expr import ExprError
from benefits.merge import FACTS
from benefits.traces import with_inputs

DECISIONS = {"pay": "paid", "credit": "credited", "lead": "lead", "notice": "notice"}
MODES = ("pay", "credit", "lead", "notice")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
Test = bool | str  # a condition decided at compile time, or the name of its rule


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
    """A fact as the trace shows it: money as yuan text, dates ISO, others as they are."""
    if value is None:
        return None
    if kind == "money":
        return yuan(value)
    if kind == "date":
        return value.isoformat()
    return value


def text_of(kind: str, value: Any) -> str:
    """A fact as an alert message shows it (empty when unknown)."""
    if value is None:
        return ""
    if kind == "money":
        return yuan(value) or ""
    if kind == "date":
        return value.isoformat()
    if kind == "bool":
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
    state of each policy considered, from which :func:`trace_record` builds its trace."""

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
    considers: Test
    tests: tuple[Test, ...]
    components: tuple[tuple[str, str, Fn], ...]
    cases: tuple[tuple[Fn | None, Fn, str], ...]
    order: tuple[tuple[Fn, bool], ...] | None


@dataclass
class _CompiledAlert:
    spec: AlertSpec
    test: Test
    due: Fn
    message: list[tuple[str, str]]  # (literal or fact name, kind) pieces
    order: tuple[tuple[Fn, bool], ...] | None


# --------------------------------------------------------------------------------- compiling


class MonthDecider:
    """The month's rules compiled for a rule engine, and the decision pipeline."""

    _ids = itertools.count()

    def __init__(self, program: MonthProgram, engine: RulesEngine) -> None:
        self.program = program
        self.engine = engine
        p = program
        self.kinds = dict(p.fact_kinds)
        names = {"params": p.params, "prev_params": p.prev_params, "constants": p.constants}
        self.ev = PyEval(facts=self.kinds, functions=FUNCTIONS, **names)
        self.cc = ConditionCompiler(facts=self.kinds, functions=FUNCTIONS, **names)
        prefix = f"m{next(self._ids)}"
        self.rs = {s: f"{prefix}/{p.month}/{s}" for s in ("policies", "exclusions", "alerts",
                                                           "quarantine")}  # fmt: skip
        self._rules: dict[str, dict[str, Cond]] = {s: {} for s in self.rs}
        self._names: dict[str, dict[Cond, str]] = {s: {} for s in self.rs}
        self.policies = [self._compile_policy(s) for s in p.policies]
        self.by_id = {cp.spec.id: cp for cp in self.policies}
        self.exclusions = [self._compile_exclusion(i, e) for i, e in enumerate(p.exclusions)]
        self.alerts = [self._compile_alert(i, a) for i, a in enumerate(p.alerts)]
        self.fields = {
            s: sorted(set().union(*(fields_of(c) for c in rules.values())) if rules else set())
            for s, rules in self._rules.items()
        }
        kinds = {**self.kinds, **self.program.quarantine_kinds}
        self._fields = {
            s: [(n, kinds.get(n) == "date" and s != "quarantine") for n in names]
            for s, names in self.fields.items()
        }
        for stage, rules in self._rules.items():
            engine.define(self.rs[stage], rules)

    def _where(self, what: str) -> str:
        return f"rule pack {self.program.pack_version} for {self.program.month}: {what}"

    def _test(self, stage: str, cond: Cond) -> Test:
        """A compile-time constant, or the name of the (shared) rule that tests `cond`."""
        if isinstance(cond, Const):
            return bool(cond.value)
        names = self._names[stage]
        if cond not in names:
            names[cond] = f"r{len(names)}"
            self._rules[stage][names[cond]] = cond
        return names[cond]

    def _compile_policy(self, spec: PolicySpec) -> _CompiledPolicy:
        where = self._where(f"policy '{spec.id}'")
        cc = self.cc.with_lets(spec.lets)
        ev = self.ev.with_lets(spec.lets, columns=frozenset(spec.components))
        try:
            considers = self._test("policies", cc.compile(spec.considers))
            tests = tuple(self._test("policies", cc.compile(c.test)) for c in spec.conditions)
            components = tuple((n, t, ev.compile(t)) for n, t in spec.components.items())
            cases = tuple(
                (None if when is None else ev.compile(when), ev.compile(value), value)
                for when, value in spec.amount
            )
            order = (
                tuple((ev.compile(t), desc) for t, desc in spec.one_per)
                if spec.one_per
                else None
            )
        except ExprError as exc:
            raise RuleError(f"{where}: {exc}") from exc
        return _CompiledPolicy(spec, considers, tests, components, cases, order)

    def _compile_exclusion(self, index: int, e: Any) -> Test:
        columns: dict[str, tuple[str, str]] = {}
        for cp in self.policies:
            columns[f"{cp.spec.id}.amount"] = (f"amt__{cp.spec.id}", "money")
            for n in cp.spec.components:
                columns[f"{cp.spec.id}.{n}"] = (f"comp__{cp.spec.id}__{n}", "money")
        cc = ConditionCompiler(
            facts=self.kinds, columns=columns, functions=FUNCTIONS,
            params=self.program.params, prev_params=self.program.prev_params,
            constants=self.program.constants,
        )  # fmt: skip
        a, b = e.between
        both: list[Cond] = [Cmp("eq", f"cand__{a}", True), Cmp("eq", f"cand__{b}", True)]
        if e.when:
            try:
                both.append(cc.compile(e.when))
            except ExprError as exc:
                raise RuleError(f"exclusions.yaml: exclusion '{e.id}': {exc}") from exc
        cond = And(tuple(both))
        name = f"x{index}"
        self._rules["exclusions"][name] = cond
        return name

    def _compile_alert(self, index: int, a: AlertSpec) -> _CompiledAlert:
        where = f"alerts.yaml: alert '{a.id}'"
        if a.source == "quarantine":
            kinds = self.program.quarantine_kinds
            cc = ConditionCompiler(facts=kinds, params=self.program.params,
                                   constants=self.program.constants)  # fmt: skip
            ev = PyEval(facts=kinds, params=self.program.params, constants=self.program.constants)
            stage = "quarantine"
        else:
            kinds, cc, ev, stage = self.kinds, self.cc, self.ev, "alerts"
        try:
            cond = cc.compile(a.when)
            if a.scope == "residents":
                cond = cc.compile(f"({a.when}) and resident and alive")
            due = ev.compile(a.due)
            order = tuple((ev.compile(t), d) for t, d in a.one_per) if a.one_per else None
        except ExprError as exc:
            raise RuleError(f"{where}: {exc}") from exc
        pieces: list[tuple[str, str]] = []
        for i, part in enumerate(_PLACEHOLDER.split(a.message)):
            if i % 2 == 0:
                if part:
                    pieces.append((part, ""))
            elif part == "due_date":
                pieces.append((part, "due"))
            elif part in kinds:
                pieces.append((part, kinds[part]))
            else:
                raise RuleError(f"{where}: message placeholder {{{part}}} is not a fact")
        test: Test
        if isinstance(cond, Const):
            test = bool(cond.value)
        else:
            test = f"a{index}"
            self._rules[stage][test] = cond
        return _CompiledAlert(a, test, due, pieces, order)

    # ----------------------------------------------------------------------------- helpers
    def _encode(self, facts: Mapping[str, Any], stage: str, extra: Mapping[str, Any] = {}) -> dict:
        """The fact as the engine sees it: the fields the stage's rules read, unknowns left out."""
        out = {}
        for name, is_date in self._fields[stage]:
            value = extra[name] if name in extra else facts.get(name)
            if value is not None:
                out[name] = encode_date(value) if is_date else value
        return out

    @staticmethod
    def _holds(test: Test, fired: set[str]) -> bool:
        return test if test.__class__ is bool else test in fired  # type: ignore[return-value]

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

    def _amount(
        self, cp: _CompiledPolicy, env: dict[str, Any], comps: dict[str, int | None],
        dropped: set[str],
    ) -> tuple[int | None, int]:  # fmt: skip
        """The amount in fen and the number (1-based) of the amount case that chose it."""
        scope = dict(env)
        for n, fen in comps.items():
            if n in dropped:
                scope[n] = Fraction(0)
            else:
                scope[n] = None if fen is None else Fraction(fen, 100)
        for number, (when, value, text) in enumerate(cp.cases, start=1):
            if when is None or when(scope) is True:
                return to_fen(value(scope), text), number
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
        for p in people:
            p.setdefault(PAID_PREV, False)
        facts = [self._encode(p, "policies") for p in people]
        fired = self.engine.match(self.rs["policies"], facts)
        states: list[dict[str, PolicyState]] = []
        for p, hit in zip(people, fired, strict=True):
            mine: dict[str, PolicyState] = {}
            for cp in self.policies:
                considers = cp.considers
                if not (considers if considers.__class__ is bool else considers in hit):
                    continue
                conds = tuple(t if t.__class__ is bool else t in hit for t in cp.tests)
                comps = {n: to_fen(fn(p), text) for n, text, fn in cp.components}
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
                        cp.spec.id, cp.spec.mode, st.final, number=cp.spec.number  # type: ignore[arg-type]
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
        todo = [
            i for i, mine in enumerate(states)
            if any(all(x in mine and mine[x].candidate for x in e.between) for e in specs)
        ]  # fmt: skip
        if not todo:
            return
        facts = []
        for i in todo:
            extra: dict[str, Any] = {}
            for cp in self.policies:
                st = states[i].get(cp.spec.id)
                pid = cp.spec.id
                extra[f"cand__{pid}"] = bool(st and st.candidate)
                extra[f"amt__{pid}"] = st.amount if st else None
                for n in cp.spec.components:
                    extra[f"comp__{pid}__{n}"] = st.components.get(n) if st else None
            facts.append(self._encode(people[i], "exclusions", extra))
        fired = self.engine.match(self.rs["exclusions"], facts)
        for i, hit in zip(todo, fired, strict=True):
            pairs: dict[frozenset[str], list[str]] = {}
            for e, name in zip(specs, self.exclusions, strict=True):
                if name not in hit:
                    continue
                pairs.setdefault(frozenset(e.between), []).append(e.id)
                st = states[i][e.target]
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
        facts = []
        for p, mine in zip(people, states, strict=True):
            extra: dict[str, Any] = {
                paid_key(cp.spec.id): bool(cp.spec.id in mine and mine[cp.spec.id].paid)
                for cp in self.policies
            }
            for mode in MODES:
                extra[has_key(mode)] = any(
                    st.paid for pid, st in mine.items() if self.by_id[pid].spec.mode == mode
                )
            p.update(extra)
            facts.append(self._encode(p, "alerts"))
        fired = self.engine.match(self.rs["alerts"], facts)
        raised: list[list[Alert]] = [[] for _ in people]
        for ca in self.alerts:
            if ca.spec.source != "persons":
                continue
            hits = [(i, p) for i, p in enumerate(people) if self._holds(ca.test, fired[i])]
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
        for text, kind in ca.message:
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
        subject = "" if spec.due_from_month or due is None else due.isoformat()
        return Alert(
            id_no, spec.kind, spec.policy, due, "".join(parts), spec.holds,
            spec.id, party, subject, fingerprint(reported),
        )  # fmt: skip

    def quarantine_alerts(self, rows: Sequence[dict[str, Any]]) -> list[Alert]:
        """Alerts read from quarantined rows (identity conflicts), in the sweep's order."""
        specs = [ca for ca in self.alerts if ca.spec.source == "quarantine"]
        if not specs or not rows:
            return []
        encoded = [
            {k: encode_value(self.program.quarantine_kinds.get(k, ""), r.get(k))
             for k in self.fields["quarantine"]}
            for r in rows
        ]  # fmt: skip
        fired = self.engine.match(self.rs["quarantine"], encoded)
        out = []
        for ca in specs:
            for r, hit in zip(rows, fired, strict=True):
                if self._holds(ca.test, hit) and r.get("id_no"):
                    out.append(self._alert(ca, r, r["id_no"]))
        return dedupe(out)

    def paid_ids(self, people: Sequence[dict[str, Any]], modes: tuple[str, ...]) -> set[str]:
        """IDs with an entitlement of these modes (used for the previous month)."""
        outcomes = self.decide(people, with_alerts=False)
        return {o.id_no for o in outcomes if any(e.mode in modes for e in o.entitlements.values())}



# -------------------------------------------------------------------------------- traces


def trace_record(
    program: MonthProgram,
    policy_id: str,
    facts: Mapping[str, Any],
    st: PolicyState,
    held: bool,
) -> dict[str, Any]:
    """The sweep's trace record (``traces.jsonl``) of one person × policy considered."""
    spec = next(p for p in program.policies if p.id == policy_id)
    if not st.eligible:
        decision = "not_eligible"
    elif not st.candidate:
        decision = "not_selected"
    elif not st.paid:
        decision = "excluded"
    elif held and spec.mode == "pay":
        decision = "held"
    else:
        decision = DECISIONS[spec.mode]
    conditions = {}
    for c, holds in zip(spec.conditions, st.conditions, strict=True):
        names = with_inputs(list(c.facts))
        conditions[c.id] = {
            "holds": holds,
            "values": {n: display(_kind(n), facts.get(n)) for n in names},
            "sources": sources(names, facts),
        }
    record: dict[str, Any] = {
        "record": "decision",
        "month": program.month,
        "policy_id": spec.id,
        "rule_version": spec.version,
        "id_no": facts["id_no"],
        "household_no": facts["household_no"],
        "decision": decision,
        "amount": yuan(st.final) if st.paid else None,
    }
    if spec.cases and st.paid and st.case:
        case = spec.cases[st.case - 1]
        record["amount_branch"] = {
            "case": case.number,
            "when": case.when,
            "value": case.value,
            "values": {n: display(_kind(n), facts.get(n)) for n in case.facts},
        }
    record["target_group"] = {
        "test": spec.considers,
        "values": {n: display(_kind(n), facts.get(n)) for n in spec.considers_facts},
        "sources": sources(spec.considers_facts, facts),
    }
    record["conditions"] = conditions
    if spec.components:
        record["components"] = {
            n: {"amount": yuan(st.components.get(n)) or "", "dropped": n in st.dropped}
            for n in spec.components
        }
    record["parameters"] = spec.params
    exclusions = []
    for e in program.exclusions:
        if e.target != spec.id:
            continue
        fired = e.component in st.dropped if e.component else e.id in st.excluded
        if fired:
            effect = f"component {e.component} dropped" if e.component else "not paid"
            exclusions.append({"id": e.id, "effect": effect, "in_favour_of": e.winner})
    if spec.one_per and st.eligible and not st.candidate:
        exclusions.append({"id": "one_per_household_no", "effect": "not selected"})
    record["exclusions"] = exclusions
    return record


def _kind(name: str) -> str:
    return FACTS[name].kind if name in FACTS else "bool"


def sources(names: Sequence[str], facts: Mapping[str, Any]) -> dict[str, Any]:
    """Department table → source row number, for the facts read."""
    rows: dict[str, Any] = {}
    for n in names:
        fact = FACTS.get(n)
        if fact and fact.row and fact.source not in rows:
            rows[fact.source] = facts.get(fact.row)
    return rows


def dedupe(alerts: Sequence[Alert]) -> list[Alert]:
    """Each identity once (the first raised), sorted by identity."""
    seen: dict[tuple[Any, ...], Alert] = {}
    for a in alerts:
        seen.setdefault(a.identity, a)
    return sorted(seen.values(), key=Alert.sort_key)
