"""Benchmark the event reactions (rules/events.yaml) as durable_rules runs them.

Times :meth:`benefits.events.reactions.Reactions.match` (and ``remember``) per event on a
mix of every event type for a quarter as many people (so that deaths are reported again and
people move back in: correlations fire), against a plain-Python matcher of the same
declarations (a stand-in that shows what the rule engine costs). With ``--joins``, runs
durable_rules' own two-fact joins over kept facts (the first design, dropped) in fresh
processes and counts the crashes.

    python benchmarks/reactions.py                     # 20,000 events
    python benchmarks/reactions.py --joins --runs 10   # the crash count of kept-fact joins
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benefits.events.reactions import Reactions, event_fact  # noqa: E402
from benefits.events.schema import EventBase, parse_event  # noqa: E402
from benefits.idcard import make_id  # noqa: E402
from benefits.rulebook import EventBook, load_pack  # noqa: E402

FIELDS: dict[str, dict[str, Any]] = {
    "death_registered": {},
    "hukou_moved_out": {},
    "hukou_moved_in": {},
    "certificate_issued": {"cert_no": "C", "category": "physical", "grade": 2,
                           "expiry_date": "2030-01-01"},
    "certificate_cancelled": {"cert_no": "C"},
    "assistance_approved": {"household_no": "H1", "assistance_type": "dibao"},
    "assistance_ended": {"assistance_type": "dibao"},
    "finance_assessed": {"per_capita_income": "800", "per_capita_assets": "0"},
    "care_assessed": {"care_level": "full", "institution_resident": False},
    "parent_situation_started": {"situation": "imprisoned"},
    "parent_situation_ended": {"situation": "imprisoned"},
    "bank_account_changed": {"account_no": "6222000011112222", "account_name": "某人"},
    "birth_registered": {},
}  # fmt: skip
DEPARTMENTS = {
    "death_registered": ("police", "health", "funeral"),
    "certificate_issued": ("disabled_federation",),
    "certificate_cancelled": ("disabled_federation",),
    "assistance_approved": ("civil_affairs",),
    "assistance_ended": ("civil_affairs",),
    "finance_assessed": ("civil_affairs",),
    "care_assessed": ("health",),
    "parent_situation_started": ("court",),
    "parent_situation_ended": ("court",),
    "bank_account_changed": ("bank",),
}


def events(n: int, seed: int) -> list[EventBase]:
    """`n` parsed events of every type for n/4 people (births left out: their ID carries the
    date)."""
    rnd = random.Random(seed)
    first = dt.date(1940, 1, 1)
    people = [make_id("330106", first + dt.timedelta(days=i), 3) for i in range(n // 4)]
    types = [t for t in FIELDS if t != "birth_registered"]
    out = []
    for i in range(n):
        etype = rnd.choice(types)
        day = dt.date(2025, 1, 1) + dt.timedelta(days=rnd.randint(0, 40))
        raw = {"event_id": f"e{i}", "type": etype, "effective_date": day.isoformat(),
               "department": rnd.choice(DEPARTMENTS.get(etype, ("police",))),
               **FIELDS[etype]}  # fmt: skip
        if etype == "finance_assessed":
            raw["household_no"] = f"H{rnd.randint(0, 999)}"
        else:
            raw["id_no"] = rnd.choice(people)
        out.append(parse_event(raw))
    return out


class PythonReactions:
    """The same declarations matched by plain Python (a comparison, not used by the service)."""

    def __init__(self, book: EventBook) -> None:
        self.book = book
        self.seen: dict[str, dict[tuple[Any, ...], list[dict[str, Any]]]] = {
            c.id: {} for c in book.correlations
        }

    def match(self, event: EventBase) -> tuple[list[str], list[Any]]:
        fact = event_fact(event)
        fired = [
            r.id for r in self.book.reactions
            if event.type in r.events and all(
                fact.get(k) in (v if isinstance(v, list) else [v]) for k, v in r.where.items()
            )
        ]  # fmt: skip
        correlated = []
        for c in self.book.correlations:
            if c.then != event.type:
                continue
            for first in self.seen[c.id].get(tuple(fact.get(f) for f in c.same), ()):
                gap = fact["day"] - first["day"]
                low = 0 if c.order == "after" else -c.within_days
                if low <= gap <= c.within_days and all(fact[f] != first[f] for f in c.differ):
                    correlated.append(c)
        return fired, correlated

    def remember(self, event: EventBase) -> None:
        for c in self.book.correlations:
            if c.first == event.type:
                fact = event_fact(event)
                self.seen[c.id].setdefault(tuple(fact.get(f) for f in c.same), []).append(fact)


def timed(engine: Any, stream: list[EventBase], durable: bool) -> tuple[list[float], int]:
    times = []
    correlated = 0
    for ev in stream:
        t = time.perf_counter()
        m = engine.match(ev)
        if not (m.confirms if durable else any(c.effect == "confirm" for c in m[1])):
            engine.remember(ev)
        times.append(time.perf_counter() - t)
        correlated += len(m.correlated) if durable else len(m[1])
    return times, correlated


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


JOIN_CHILD = """
import json, random, durable_rules_engine as d
rules = {"confirm": {"all": [
    {"first": {"$and": [{"kind": "report"}, {"type": "death"}]}},
    {"later": {"$and": [{"kind": "event"}, {"type": "death"}, {"id_no": {"first": "id_no"}},
        {"$neq": {"department": {"first": "department"}}},
        {"$lte": {"day": {"$add": {"$l": {"first": "day"}, "$r": 3}}}},
        {"$gte": {"day": {"$sub": {"$l": {"first": "day"}, "$r": 3}}}}]}}]},
    "any": {"all": [{"m": {"kind": "event"}}]}}
rnd = random.Random(SEED)
n = 0
for r in range(RULESETS):
    h = d.create_ruleset(f"j{r}", json.dumps(rules))
    kept = []
    for i in range(EVENTS):
        base = {"type": "death", "id_no": str(rnd.randint(0, 3)),
                "department": rnd.choice(["police", "health"]), "day": rnd.randint(0, 60)}
        for kind in ("event", "report"):
            n += 1
            text = json.dumps(dict(base, kind=kind, id=f"f{n}"))
            code, state = d.assert_fact(h, text)
            res = d.start_action_for_state(h, state) if code == 0 else None
            m = res[1] if res else None
            while m:
                m = d.complete_and_start_action(h, state)
            if kind == "event":
                d.retract_fact(h, text)
            else:
                kept.append(text)
    if RETRACT:
        for text in kept:
            d.retract_fact(h, text)
print("ok")
"""


def joins(runs: int) -> None:
    """Kept-fact joins in fresh processes: how many runs crash."""
    for label, rulesets, retract in (
        ("several rulesets, kept facts retracted", 200, True),
        ("several rulesets, kept facts kept", 200, False),
        ("one ruleset, kept facts kept", 1, False),
    ):
        crashes = 0
        for seed in range(runs):
            code = (
                JOIN_CHILD.replace("SEED", str(seed)).replace("RULESETS", str(rulesets))
                .replace("EVENTS", "20" if rulesets > 1 else "4000")
                .replace("RETRACT", str(retract))
            )  # fmt: skip
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            crashes += done.returncode != 0
        print(f"durable two-fact joins, {label}: {crashes} of {runs} runs crashed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--joins", action="store_true", help="count crashes of kept-fact joins")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if args.joins:
        joins(args.runs)
        return 0
    book = load_pack().events
    stream = events(args.events, args.seed)
    for name, engine, durable in (
        ("durable_rules", Reactions(book), True),
        ("plain Python", PythonReactions(book), False),
    ):
        times, correlated = timed(engine, stream, durable)
        print(
            f"{name:>13}: {len(stream):,} events, {correlated:,} correlations fired; per event "
            f"mean {statistics.fmean(times) * 1e6:.1f} µs, p50 {pct(times, 0.5):.1f}, "
            f"p99 {pct(times, 0.99):.1f}, max {max(times) * 1e6:.0f} µs"
        )
        if durable:
            print(f"{'':>15}durable working memory after the stream: {engine.working_memory()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
