"""The rule-engine adapter: one small interface, a durable_rules backend and a reference one.

The event path asks a rule engine one question: *which of these rules hold for this fact?*
(:meth:`RulesEngine.match`). Rules come in as the condition IR of
:mod:`benefits.events.conditions`, so replacing the engine means writing one class.

:class:`DurableRulesEngine` runs them on durable_rules 2.0.28 (its C engine,
``durable_rules_engine``, driven directly with the ruleset JSON its Python DSL would produce),
working around what was measured on this machine:

- an *event* (``post``) is consumed by the first rule that matches, so a person eligible for
  three policies would get one: every person is asserted as a **fact**, the rules that fired
  are collected, and the fact is **retracted** at once — working memory stays empty between
  evaluations (kept facts slow inserts down and collide on a 32-bit hash, upstream #376);
- a condition with ``$or`` fires once per matching branch: firings are collected into a
  **set**, so a rule counts once (the raw count is kept in :attr:`DurableRulesEngine.stats`);
- a fact no rule matches is refused (``MessageNotHandledException`` in the Python API): every
  ruleset gets a catch-all rule, and an unmatched result is handled, never raised;
- at most 1024 live sessions per ruleset, and ``delete_state`` crashed the process: everything
  runs in the one default session, and ``delete_state`` is never called;
- dates must be strings or numbers: facts carry ``yyyymmdd`` integers, and the evaluation
  date is compiled into the rules as data (no timers, no wall clock);
- durable's Python ``Host`` starts dispatch threads that would race with us and runs each
  action through several JSON round trips: it is not used.

The C extension holds the GIL and can crash the process: run it in the supervised worker
(:mod:`benefits.events.worker`).

Example:
    >>> from benefits.events.conditions import Cmp
    >>> engine = DurableRulesEngine()
    >>> engine.define("demo", {"old": Cmp("ge", "age", 80), "dibao": Cmp("eq", "status", "dibao")})
    >>> [sorted(r) for r in engine.match("demo", [{"age": 85, "status": "dibao"}, {"age": 3}])]
    [['dibao', 'old'], []]
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from benefits.events.conditions import (
    And,
    Cmp,
    Cond,
    Const,
    Exists,
    Missing,
    Or,
    Ref,
)

TAG = "__fact"  # every asserted fact carries it; rules test it (the session's own state fact
# matches any rule without a field test)
CATCH_ALL = "__seen"
_DURABLE_OPS = {"ne": "$neq", "lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}


class EngineError(RuntimeError):
    """The rule engine refused a ruleset or a fact."""


class RulesEngine(Protocol):
    """What the event path needs from a rule engine."""

    name: str

    def define(self, ruleset: str, rules: Mapping[str, Cond]) -> None:
        """Create a ruleset: rule name → condition (constant conditions are not passed)."""
        ...

    def match(self, ruleset: str, facts: Sequence[Mapping[str, Any]]) -> list[set[str]]:
        """For each fact (field → value, absent = unknown), the names of the rules that hold."""
        ...


# ------------------------------------------------------------------------------ durable


def durable_condition(c: Cond) -> dict[str, Any]:
    """A condition as durable_rules ruleset JSON (the form its Python DSL defines).

    >>> durable_condition(Or((Cmp("eq", "status", "dibao"), Cmp("ge", "age", 80))))
    {'$or': [{'status': 'dibao'}, {'$gte': {'age': 80}}]}
    """
    if isinstance(c, Cmp):
        value = {"$m": c.value.field} if isinstance(c.value, Ref) else c.value
        if c.op == "eq":
            return {c.field: value}
        return {_DURABLE_OPS[c.op]: {c.field: value}}
    if isinstance(c, Exists):
        return {"$ex": {c.field: 1}}
    if isinstance(c, Missing):
        return {"$nex": {c.field: 1}}
    if isinstance(c, And):
        return {"$and": [durable_condition(i) for i in c.items]}
    if isinstance(c, Or):
        return {"$or": [durable_condition(i) for i in c.items]}
    raise EngineError(f"cannot give durable_rules the condition {c!r}")


def durable_ruleset(rules: Mapping[str, Cond]) -> dict[str, Any]:
    """The ruleset JSON: one rule per condition, each testing the fact tag, plus a catch-all."""
    out: dict[str, Any] = {}
    for name, cond in rules.items():
        if isinstance(cond, Const):
            raise EngineError(f"rule {name}: a constant condition is decided at compile time")
        out[name] = {"all": [{"m": {"$and": [{TAG: 1}, durable_condition(cond)]}}]}
    out[CATCH_ALL] = {"all": [{"m": {TAG: 1}}]}
    return out


class DurableRulesEngine:
    """durable_rules behind the adapter (see module doc)."""

    name = "durable_rules"

    def __init__(self) -> None:
        import durable_rules_engine  # the C engine of durable-rules

        self._d = durable_rules_engine
        self._handles: dict[str, int] = {}
        self._names = itertools.count()
        self._nonce = itertools.count()
        self.stats = {"facts": 0, "firings": 0, "repeat_firings": 0, "unmatched": 0}

    def define(self, ruleset: str, rules: Mapping[str, Cond]) -> None:
        if ruleset in self._handles:
            raise EngineError(f"ruleset {ruleset} is already defined")
        definition = json.dumps(durable_ruleset(rules), ensure_ascii=False)
        # durable keeps rulesets by name for the life of the process: make names unique
        unique = f"{ruleset}__{next(self._names)}"
        try:
            self._handles[ruleset] = self._d.create_ruleset(unique, definition)
        except Exception as exc:  # the C engine raises plain Exception
            raise EngineError(f"durable_rules refused ruleset {ruleset}: {exc}") from exc

    def match(self, ruleset: str, facts: Sequence[Mapping[str, Any]]) -> list[set[str]]:
        handle = self._handles[ruleset]
        return [self._match_one(handle, fact) for fact in facts]

    def _match_one(self, handle: int, fact: Mapping[str, Any]) -> set[str]:
        d = self._d
        body = {k: v for k, v in fact.items() if v is not None}
        body[TAG] = 1
        body["id"] = f"f{next(self._nonce)}"  # durable identifies facts by `id`
        text = json.dumps(body, ensure_ascii=False)
        fired: set[str] = set()
        raw = 0
        code, state = d.assert_fact(handle, text)
        try:
            if code == 2:
                raise EngineError(f"durable_rules has already seen fact {body['id']}")
            if code == 1:  # MessageNotHandled: cannot happen with the catch-all, kept safe
                self.stats["unmatched"] += 1
            result = d.start_action_for_state(handle, state)
            message = result[1] if result else None
            while message:
                # the message is {"<rule>": {"m": {...}}}; rule names are our identifiers
                fired.add(message[2 : message.index('"', 2)])
                raw += 1
                message = d.complete_and_start_action(handle, state)
        finally:
            d.retract_fact(handle, text)
        self.stats["facts"] += 1
        self.stats["firings"] += raw
        self.stats["repeat_firings"] += raw - len(fired)
        fired.discard(CATCH_ALL)
        return fired

    def working_memory(self, ruleset: str) -> list[Any]:
        """Facts currently held by the ruleset's session (empty between evaluations)."""
        facts = json.loads(self._d.get_facts(self._handles[ruleset], "0"))
        return [f for f in facts if TAG in f]


# ----------------------------------------------------------------------------- reference


def holds(c: Cond, fact: Mapping[str, Any]) -> bool:
    """Evaluate a condition on a fact as a rule engine does (absent field: no match)."""
    if isinstance(c, Cmp):
        x = fact.get(c.field)
        y = fact.get(c.value.field) if isinstance(c.value, Ref) else c.value
        if x is None or y is None:
            return False
        return {
            "eq": x == y,
            "ne": x != y,
            "lt": x < y,
            "le": x <= y,
            "gt": x > y,
            "ge": x >= y,
        }[c.op]
    if isinstance(c, Exists):
        return fact.get(c.field) is not None
    if isinstance(c, Missing):
        return fact.get(c.field) is None
    if isinstance(c, And):
        return all(holds(i, fact) for i in c.items)
    if isinstance(c, Or):
        return any(holds(i, fact) for i in c.items)
    if isinstance(c, Const):
        return c.value is True
    raise EngineError(f"cannot evaluate {c!r}")


class ReferenceEngine:
    """A plain-Python engine with the same contract: a check on durable, and a stand-in."""

    name = "reference"

    def __init__(self) -> None:
        self._rules: dict[str, dict[str, Cond]] = {}

    def define(self, ruleset: str, rules: Mapping[str, Cond]) -> None:
        self._rules[ruleset] = dict(rules)

    def match(self, ruleset: str, facts: Sequence[Mapping[str, Any]]) -> list[set[str]]:
        rules = self._rules[ruleset]
        return [{n for n, c in rules.items() if holds(c, f)} for f in facts]


ENGINES = {"durable_rules": DurableRulesEngine, "reference": ReferenceEngine}


def make_engine(name: str = "durable_rules") -> RulesEngine:
    """An engine by name: ``durable_rules`` (default) or ``reference``."""
    try:
        return ENGINES[name]()  # type: ignore[return-value]
    except KeyError:
        raise EngineError(f"unknown rule engine {name!r} (known: {', '.join(ENGINES)})") from None
