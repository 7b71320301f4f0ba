"""The decision pipeline's stages, declared once from the rule pack for a month.

The sweep (:mod:`benefits.evaluate`, Polars over the population) and the event path
(:mod:`benefits.events.decide`, Python over one household) run the same stage declarations;
each executor implements only the primitives (lower a checked expression, sort a group,
render a value). Declared here, with every expression checked once (:mod:`benefits.lang`):

- **one per group** (:class:`OnePer`): the group column and the ordering keys — among the
  candidates of a group the first by the keys wins, unknown values last, ties by file order;
- **exclusions** (:class:`ExclusionStage`): the two policies, the test over their amounts and
  components, what is excluded (the policy or one component) and in whose favour;
- **alerts** (:class:`AlertStage`): the test, the due date, the message as literal and fact
  pieces, the hold, the one-per group, and the identity columns' rules (party, subject,
  reported facts: :mod:`benefits.alertid`);
- **display** (:func:`text_rule`): how a value of each kind is written for people — money as
  yuan with two decimals, dates ISO, flags ``true``/``false`` — and which kinds a trace
  record writes as text (:data:`TRACE_AS_TEXT`; the others stay JSON numbers and booleans).

Example:
    >>> from benefits.compiled import month_scope
    >>> from benefits.period import BenefitMonth
    >>> from benefits.rulebook import load_pack
    >>> pack = load_pack()
    >>> scope, _ = month_scope(pack, BenefitMonth.parse("2025-01"))
    >>> [a.id for a in alert_stages(pack, scope)][:2]
    ['cert_expiring', 'age_milestone']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from benefits.alertid import PLACEHOLDER, due_from_month, reported_facts
from benefits.errors import RuleError
from benefits.ingest import QUARANTINE_SCHEMA
from benefits.lang import MONEY, ExprError, Node, Scope, check, check_condition
from benefits.rulebook import OnePer as OnePerRule
from benefits.rulebook import RulePack

QUARANTINE_KINDS = {c: ("int" if c == "row" else "str") for c in QUARANTINE_SCHEMA}
TEXT_RULES = {"money": "yuan", "date": "iso", "bool": "true_false"}  # any other kind: "str"
TRACE_AS_TEXT = frozenset({"money", "date"})


def text_rule(kind: str) -> str:
    """How a value of `kind` is written for people: yuan, iso, true_false or str.

    >>> text_rule("money"), text_rule("int")
    ('yuan', 'str')
    """
    return TEXT_RULES.get(kind, "str")


Piece = tuple[str, str]  # (literal text, "") | ("due_date", "due") | (fact name, fact kind)


@dataclass(frozen=True)
class OnePer:
    """One row per group: the first candidate by the keys (descending or not), unknowns last,
    ties by file order."""

    by: str
    keys: tuple[tuple[Node, bool], ...]


@dataclass(frozen=True)
class ExclusionStage:
    """A declared exclusion: when both policies are candidates and `when` holds, `target`
    (or its `component`) is not paid, in favour of `winner`."""

    id: str
    between: tuple[str, str]
    when_text: str | None
    target: str
    component: str | None
    winner: str
    when: Node | None


@dataclass(frozen=True)
class AlertStage:
    """A declared alert: who it is raised for, when it is due, what its message says."""

    id: str
    kind: str
    policy: str
    scope: str  # residents: only resident, living people
    source: str  # persons | quarantine
    holds: str | None
    when: Node
    due: Node
    message: tuple[Piece, ...]
    one_per: OnePer | None
    party_by: str | None  # the one-per group: the alert's party when it has a value
    subject_from_due: bool  # the subject is the due date (else empty: due every month)
    reported: tuple[str, ...]  # the facts the message reports, for the fingerprint


def _fail(where: str, exc: Exception) -> RuleError:
    return RuleError(f"{where}: {exc}")


def one_per_stage(rule: OnePerRule | None, scope: Scope, where: str) -> OnePer | None:
    """The one-per declaration of a policy or alert (None without one)."""
    if rule is None:
        return None
    try:
        keys = tuple((check(k.expr, scope.fresh()), k.descending) for k in rule.order)
    except ExprError as exc:
        raise _fail(f"{where}, one_per.order", exc) from exc
    return OnePer(rule.by, keys)


def exclusion_scope(scope: Scope, components: Mapping[str, Iterable[str]]) -> Scope:
    """The month's names plus each policy's amount and components (fen): ``p.amount``, ``p.x``."""
    columns: dict[str, object] = dict(scope.columns)
    for pid, names in components.items():
        columns[f"{pid}.amount"] = MONEY
        for n in names:
            columns[f"{pid}.{n}"] = MONEY
    return Scope(**{**scope.__dict__, "columns": columns})


def exclusion_stages(
    pack: RulePack, scope: Scope, components: Mapping[str, Iterable[str]]
) -> tuple[ExclusionStage, ...]:
    """The pack's exclusions between policies in force (`components`: policy → its names)."""
    x_scope = exclusion_scope(scope, components)
    out = []
    for e in pack.exclusions.exclusions:
        if not all(pid in components for pid in e.between):
            continue
        when = None
        if e.when:
            try:
                when = check_condition(check(e.when, x_scope.fresh()))
            except ExprError as exc:
                raise _fail(f"exclusions.yaml: exclusion '{e.id}'", exc) from exc
        out.append(
            ExclusionStage(e.id, e.between, e.when, e.target_policy, e.component, e.winner, when)
        )
    return tuple(out)


def message_pieces(template: str, kinds: Mapping[str, str], where: str) -> tuple[Piece, ...]:
    """A message template as literal and placeholder pieces (each placeholder a fact)."""
    pieces: list[Piece] = []
    for i, part in enumerate(PLACEHOLDER.split(template)):
        if i % 2 == 0:
            if part:
                pieces.append((part, ""))
        elif part == "due_date":
            pieces.append((part, "due"))
        elif part in kinds:
            pieces.append((part, kinds[part]))
        else:
            raise RuleError(f"{where}: message placeholder {{{part}}} is not a fact")
    return tuple(pieces)


def alert_stages(pack: RulePack, scope: Scope) -> tuple[AlertStage, ...]:
    """The pack's alerts, checked in the month's names (quarantine rules: the row's columns)."""
    person_kinds = {k: f.kind for k, f in pack.catalogue.facts.items()}
    q_scope = Scope(facts=QUARANTINE_KINDS, constants=scope.constants, params=scope.params)
    out = []
    for a in pack.alerts:
        where = f"alerts.yaml: alert '{a.id}'"
        quarantine = a.source == "quarantine"
        sc, kinds = (q_scope, QUARANTINE_KINDS) if quarantine else (scope, person_kinds)
        try:
            when = check_condition(check(a.when, sc.fresh()))
        except ExprError as exc:
            raise _fail(where, exc) from exc
        one_per = one_per_stage(a.one_per, sc, where)
        try:
            due = check(a.due, sc.fresh())
        except ExprError as exc:
            raise _fail(where, exc) from exc
        if due.kind != "date":
            raise RuleError(f"{where}: due must be a date, got {due.kind}")
        out.append(
            AlertStage(
                id=a.id,
                kind=a.kind,
                policy=a.policy or "",
                scope=a.scope,
                source=a.source,
                holds=a.holds,
                when=when,
                due=due,
                message=message_pieces(a.message, kinds, where),
                one_per=one_per,
                party_by=a.one_per.by if a.one_per else None,
                subject_from_due=not due_from_month(a.due, pack.parameters),
                reported=tuple(reported_facts(a.message)),
            )
        )
    return tuple(out)


__all__ = [
    "QUARANTINE_KINDS",
    "TEXT_RULES",
    "TRACE_AS_TEXT",
    "AlertStage",
    "ExclusionStage",
    "OnePer",
    "alert_stages",
    "exclusion_scope",
    "exclusion_stages",
    "message_pieces",
    "one_per_stage",
    "text_rule",
]
