"""The event reactions of the rule pack (rules/events.yaml), matched by durable_rules.

Each change event is matched against the pack's *reactions* (which departmental change
re-decides which households, concerns which policies and alerts, and holds which ledger
items) and *correlations* (a later event read together with an earlier one: a death reported
again by another department, a move back in after a move out). Eligibility is not decided
here: the service re-decides the households the fired reactions name
(:meth:`Reactions.households`).

The rules run in durable_rules 2.0.28's C engine, driven directly with the ruleset JSON its
Python DSL would produce (the measured pitfalls are in docs/events.md):

- the incoming event is asserted as a **fact** (an event, ``post``, is consumed by the first
  rule that fires, and one change sets off several reactions), every firing is collected and
  the fact is **retracted** at once: working memory is empty between events;
- a correlation is matched on a *pair* fact: the later event's fields beside the earlier
  event's (``first_…``), for each remembered event of the same person (a dictionary keyed by
  the correlation's ``same`` fields finds them); the rule compares the fields (``$m``) and
  tests the window by arithmetic on day numbers (``date.toordinal()``: durable compares
  numbers and strings only; no timer or wall clock). durable's own two-fact joins over kept
  facts were tried first and crashed the process (a segmentation fault in ``assert_fact``
  after a kept fact was retracted, or once a second ruleset with the same joins existed;
  ``benchmarks/reactions.py --joins`` reproduces it), so nothing is kept in durable;
- its default session only (``delete_state`` crashed the process); every fact carries a
  fresh process-wide ``id`` (equal facts would otherwise be one, upstream #376); a ``where``
  with a list of values becomes ``$or`` branches, which fire once per matching branch:
  firings are collected into a set; a catch-all rule means no fact is refused.

Example:
    >>> rx = Reactions(load_pack().events)                               # doctest: +SKIP
    >>> [r.id for r in rx.match(death_event).reactions]                  # doctest: +SKIP
    ['death_stops_payments', 'death_opens_survivor_notice', 'parent_death_redecides_children']
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from benefits.errors import RuleError
from benefits.events.schema import EventBase
from benefits.events.store import RowChange, Store
from benefits.rulebook import Correlation, EventBook, Reaction

EVENT = "event"  # the fact kind of the event being matched
PAIR = "pair"  # the fact kind of the event beside a remembered earlier one
CATCH_ALL = "__seen"
_RULESETS = itertools.count()
_FACT_IDS = itertools.count()  # process-wide: see the module doc


@dataclass(frozen=True)
class Correlated:
    """A correlation that fired: the rule and the earlier event it joined."""

    rule: Correlation
    first: dict[str, Any]

    def note(self, event: EventBase) -> str:
        """The rule's note with the earlier event filled in."""
        days = event.effective_date.toordinal() - int(self.first["day"])
        return self.rule.note.format(
            first_event=self.first["event_id"],
            first_department=self.first["department"],
            first_date=self.first["effective_date"],
            days=days,
        )


@dataclass
class Matched:
    """What an event set off: the reactions (in pack order) and the correlations."""

    reactions: list[Reaction] = field(default_factory=list)
    correlated: list[Correlated] = field(default_factory=list)

    @property
    def confirms(self) -> Correlated | None:
        """The first ``confirm`` correlation (the event then changes nothing), if any."""
        return next((c for c in self.correlated if c.rule.effect == "confirm"), None)

    def holds(self) -> frozenset[str]:
        """The change kinds (stop, held) that hold ledger items, over every reaction."""
        return frozenset(k for r in self.reactions for k in r.holds)

    def tables(self) -> set[str]:
        """The tables the fired reactions declare the event may touch."""
        return {t for r in self.reactions for t in r.touches}

    def describe(self) -> list[dict[str, Any]]:
        """JSON-ready list of what fired (id, label, policies, alerts, holds)."""
        out: list[dict[str, Any]] = [
            {"reaction": r.id, "label": r.label.text(), "policies": r.policies,
             "alerts": r.alerts, "holds": list(r.holds)}
            for r in self.reactions
        ]  # fmt: skip
        out += [
            {"correlation": c.rule.id, "label": c.rule.label.text(), "effect": c.rule.effect,
             "first": c.first["event_id"]}
            for c in self.correlated
        ]  # fmt: skip
        return out


def _value_test(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {"$or": [{name: v} for v in value]}
    return {name: value}


def reaction_condition(r: Reaction) -> dict[str, Any]:
    """durable_rules condition of a reaction: an event fact of one of its types, its tests.

    >>> from benefits.rulebook import load_pack
    >>> book = load_pack().events
    >>> reaction_condition(next(r for r in book.reactions if r.events == ["bank_account_changed"]))
    {'$and': [{'kind': 'event'}, {'type': 'bank_account_changed'}]}
    """
    tests: list[dict[str, Any]] = [{"kind": EVENT}, _value_test("type", list(r.events))]
    if len(r.events) == 1:
        tests[1] = {"type": r.events[0]}
    tests += [_value_test(name, value) for name, value in r.where.items()]
    return {"$and": tests}


def correlation_rule(c: Correlation) -> dict[str, Any]:
    """durable_rules rule of a correlation, on a pair fact (later event beside the first).

    >>> from benefits.rulebook import load_pack
    >>> c = next(c for c in load_pack().events.correlations if c.then == "hukou_moved_in")
    >>> correlation_rule(c)["all"][0]["m"]["$and"][3:]  # doctest: +NORMALIZE_WHITESPACE
    [{'id_no': {'$m': 'first_id_no'}},
     {'$lte': {'day': {'$add': {'$l': {'$m': 'first_day'}, '$r': 30}}}},
     {'$gte': {'day': {'$m': 'first_day'}}}]
    """
    tests: list[dict[str, Any]] = [{"kind": PAIR}, {"type": c.then}, {"first_type": c.first}]
    tests += [{name: {"$m": f"first_{name}"}} for name in c.same]
    tests += [{"$neq": {name: {"$m": f"first_{name}"}}} for name in c.differ]
    upper = {"$add": {"$l": {"$m": "first_day"}, "$r": c.within_days}}
    lower: Any = {"$m": "first_day"}
    if c.order == "either":
        lower = {"$sub": {"$l": {"$m": "first_day"}, "$r": c.within_days}}
    tests += [{"$lte": {"day": upper}}, {"$gte": {"day": lower}}]
    return {"all": [{"m": {"$and": tests}}]}


def ruleset(book: EventBook) -> dict[str, Any]:
    """The ruleset JSON of a pack's reactions and correlations, plus a catch-all."""
    out: dict[str, Any] = {r.id: {"all": [{"m": reaction_condition(r)}]} for r in book.reactions}
    out.update({c.id: correlation_rule(c) for c in book.correlations})
    out[CATCH_ALL] = {"all": [{"m": {"$or": [{"kind": EVENT}, {"kind": PAIR}]}}]}
    return out


def event_fact(event: EventBase) -> dict[str, Any]:
    """An event as a durable fact: its JSON fields, the kind and its day number."""
    fact = {k: v for k, v in event.model_dump(mode="json").items() if v is not None}
    fact["kind"] = EVENT
    fact["day"] = event.effective_date.toordinal()
    return fact


class Reactions:
    """The pack's reactions compiled into one durable_rules ruleset (see module doc)."""

    def __init__(self, book: EventBook) -> None:
        import durable_rules_engine  # the C engine of durable-rules

        self._d = durable_rules_engine
        self.book = book
        self.by_id: dict[str, Reaction | Correlation] = {r.id: r for r in book.reactions}
        self.by_id.update({c.id: c for c in book.correlations})
        self._order = {r.id: n for n, r in enumerate(book.reactions)}
        self._seen: dict[str, dict[tuple[Any, ...], list[dict[str, Any]]]] = {
            c.id: {} for c in book.correlations
        }
        self.remembered = 0
        self.asserted = 0
        definition = json.dumps(ruleset(book), ensure_ascii=False)
        try:  # durable keeps rulesets by name for the life of the process: a unique name
            self._handle = self._d.create_ruleset(f"reactions__{next(_RULESETS)}", definition)
        except Exception as exc:  # the C engine raises plain Exception
            raise RuleError(f"events.yaml: durable_rules refused the reactions: {exc}") from exc

    def _fire(self, fact: dict[str, Any]) -> list[str]:
        """Assert a fact, collect the names of the rules that fire, retract it."""
        fact["id"] = f"f{next(_FACT_IDS)}"
        text = json.dumps(fact, ensure_ascii=False)
        d, handle = self._d, self._handle
        code, state = d.assert_fact(handle, text)
        self.asserted += 1
        try:
            if code == 2:  # pragma: no cover - every fact has a fresh id
                raise RuleError(f"durable_rules has already seen fact {fact['id']}")
            names = []
            result = d.start_action_for_state(handle, state) if code == 0 else None
            message = result[1] if result else None
            while message:  # {"<rule>": {"m": {...}}}; rule names are identifiers
                names.append(message[2 : message.index('"', 2)])
                message = d.complete_and_start_action(handle, state)
        finally:
            d.retract_fact(handle, text)
        return names

    def match(self, event: EventBase) -> Matched:
        """The reactions and correlations an event sets off (working memory stays empty)."""
        fact = event_fact(event)
        fired = set(self._fire(dict(fact)))
        matched = Matched(reactions=[r for r in self.book.reactions if r.id in fired])
        for c in self.book.correlations:
            if c.then != event.type:
                continue
            for first in self._seen[c.id].get(tuple(fact.get(f) for f in c.same), ()):
                pair = {**fact, **{f"first_{k}": v for k, v in first.items()}, "kind": PAIR}
                if c.id in self._fire(pair):
                    matched.correlated.append(Correlated(c, first))
        return matched

    def remember(self, event: EventBase) -> None:
        """Keep an applied event that a correlation may read with a later one."""
        fact: dict[str, Any] | None = None
        for c in self.book.correlations:
            if c.first == event.type:
                fact = fact or event_fact(event)
                key = tuple(fact.get(f) for f in c.same)
                self._seen[c.id].setdefault(key, []).append(fact)
                self.remembered += 1

    def households(self, matched: Matched, event: EventBase, store: Store) -> set[str]:
        """The households the fired reactions name, read from the store after the change."""
        out: set[str] = set()
        for reaction in matched.reactions:
            for target in reaction.redecide:
                ((how, name),) = target.items()
                value = getattr(event, name, None)
                if not value:
                    continue
                if how == "household":
                    out.add(value)
                elif how == "household_of":
                    rec = store.persons.get(value)
                    if rec is not None:
                        out.add(rec.household_no)
                else:  # children_of
                    out.update(store.persons[c].household_no for c in store.children.get(value, ()))
        return out

    def check_tables(self, matched: Matched, event: EventBase, rows: list[RowChange]) -> None:
        """Refuse row changes no fired reaction declares (they would re-decide nobody)."""
        declared = matched.tables()
        stray = sorted({r.table for r in rows} - declared)
        if stray:
            fired = ", ".join(r.id for r in matched.reactions) or "none"
            raise RuleError(
                f"events.yaml: {event.type} changes {', '.join(stray)}, which no reaction that "
                f"fired declares in touches (fired: {fired})"
            )

    def working_memory(self) -> list[dict[str, Any]]:
        """The facts durable_rules holds between events (none)."""
        if not self.asserted:  # durable has no session before the first fact
            return []
        return [f for f in json.loads(self._d.get_facts(self._handle, "0")) if "kind" in f]
