"""Synthetic change events for tests and benchmarks: every type, mostly fitting the data.

:func:`next_event` draws one event for the current state of a store — a death of a person or
of a parent outside the registry, a birth into an existing or a new household, a certificate
issued or cancelled, a status approved or ended, a means test, … — dated around the benefit
month. A small share does not fit the data (a certificate number already in use, ending a
status nobody has), which the service must refuse without changing anything. The choices
come from a :class:`Chooser`, so a seeded random generator (benchmarks) and hypothesis (the
differential test) drive the same code.

Example:
    >>> chooser = RandomChooser(7)
    >>> ev = next_event(chooser, store, BenefitMonth.parse("2025-02"), n=0)   # doctest: +SKIP
    >>> ev["type"] in EVENT_TYPES                                              # doctest: +SKIP
    True
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from benefits.events.schema import EVENT_TYPES
from benefits.events.store import Store
from benefits.idcard import make_id
from benefits.period import BenefitMonth
from benefits.validity import in_force

T = TypeVar("T")
OUTSIDERS = tuple(make_id("330106", dt.date(1970 + k, 3, 1 + k), 501 + 2 * k) for k in range(3))
NAMES = ("张三明", "李四", "王小红", "赵敏", "欧阳小明")
SITUATIONS = ("imprisoned", "compulsory_rehab", "missing", "severely_disabled")
TYPES = tuple(sorted(EVENT_TYPES))


class Chooser(Protocol):
    """Where the choices come from."""

    def choice(self, options: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...


class RandomChooser:
    """Choices from a seeded :class:`random.Random`.

    >>> RandomChooser(1).integer(1, 6)
    2
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choice(self, options: Sequence[T]) -> T:
        return self.rng.choice(list(options))

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


def _event(etype: str, eid: str, department: str, day: dt.date, **fields: Any) -> dict[str, Any]:
    return {"event_id": eid, "type": etype, "department": department,
            "effective_date": day.isoformat(), **fields}  # fmt: skip


def _money(c: Chooser) -> str:
    fen = c.integer(0, 400000)
    return f"{fen // 100}.{fen % 100:02d}"


def _ending_day(c: Chooser, row: Any, day: dt.date) -> dt.date:
    """A day to end a situation row on: mostly one it is in force (a planned end brought
    forward); sometimes the day before it starts, or its planned end itself (nothing to end)."""
    start, end = row.start_date, row.end_date
    roll = c.integer(0, 7)
    if roll == 0:
        return start - dt.timedelta(days=1)
    if roll == 1 and end is not None:
        return end
    if end is not None and end >= start and (roll < 5 or not in_force(start, end, max(day, start))):
        return start + dt.timedelta(days=c.integer(0, (end - start).days))
    return max(day, start)


def next_event(
    c: Chooser,
    store: Store,
    month: BenefitMonth,
    n: int,
    *,
    people: Sequence[str] | None = None,
    households: Sequence[str] | None = None,
    etype: str | None = None,
) -> dict[str, Any]:
    """Event number `n` for the store's current data (see module doc).

    `people` / `households` restrict the choice (benchmarks pass a sample instead of
    listing 330,000 IDs per event); `etype` forces the type.
    """
    ids = list(people) if people is not None else sorted(store.persons)
    homes = list(households) if households is not None else sorted(store.members)
    who = c.choice(ids) if ids else OUTSIDERS[0]
    day = month.start + dt.timedelta(days=c.integer(-120, 45))
    etype = etype or c.choice(TYPES)
    eid = f"e{n}"
    if etype == "death_registered":
        dead = who
        if who in store.persons and c.integer(0, 4) == 0:  # a parent, maybe not registered
            p = store.persons[who]
            dead = c.choice([x for x in (p.father_id_no, p.mother_id_no) if x] or [who])
        return _event(etype, eid, c.choice(("police", "health", "funeral")), day, id_no=dead)
    if etype == "birth_registered":
        baby = make_id("330106", day, (300 + n * 2 + c.integer(0, 1)) % 1000)
        # a parent from the household, or someone not in the registry (one per birth)
        outsider = make_id("110105", dt.date(1990, 1, 1) + dt.timedelta(days=n % 3000), 2)
        return _event(
            etype, eid, "police", day, id_no=baby, name=c.choice(NAMES),
            sex="M" if int(baby[16]) % 2 else "F",
            household_no=c.choice([*homes[:50], f"HNEW{n}"]) if homes else f"HNEW{n}",
            hukou_community="330106001", father_id_no=c.choice([*ids[:50], ""]),
            mother_id_no=c.choice([*ids[:50], outsider]),
        )  # fmt: skip
    if etype == "hukou_moved_out":
        return _event(etype, eid, "police", day, id_no=who)
    if etype == "hukou_moved_in":  # mostly someone moved out (else refused)
        away = [i for i in ids if getattr(store.persons.get(i), "hukou_status", "") == "moved_out"]
        return _event(etype, eid, "police", day, id_no=c.choice(away) if away else who)
    if etype == "certificate_issued":
        used = next(iter(store.certs), f"C{n}")
        return _event(
            etype, eid, "disabled_federation", day, id_no=who,
            cert_no=f"E{n}" if c.integer(0, 9) else used,
            category=c.choice(("physical", "mental", "visual", "intellectual")),
            grade=c.integer(1, 4),
            expiry_date=(day + dt.timedelta(days=c.integer(10, 900))).isoformat(),
        )  # fmt: skip
    if etype == "certificate_cancelled":
        mine = store.person_rows("disability_certificates", who)
        if mine:
            cert = c.choice(mine)
            return _event(etype, eid, "disabled_federation", day, id_no=who, cert_no=cert.cert_no)
        if people is None and store.certs and c.integer(0, 3):
            cert = store.certs[c.choice(sorted(store.certs))]
            return _event(etype, eid, "disabled_federation", day, id_no=cert.id_no,
                          cert_no=cert.cert_no)  # fmt: skip
        return _event(etype, eid, "disabled_federation", day, id_no=who, cert_no=f"NONE{n}")
    if etype == "assistance_approved":
        review = (day + dt.timedelta(days=c.integer(1, 400))).isoformat()
        home = store.persons[who].household_no if who in store.persons else "H0"
        fields = {"next_review_date": review} if c.integer(0, 2) else {}
        return _event(etype, eid, "civil_affairs", day, id_no=who,
                      household_no=home if c.integer(0, 5) else "H9",
                      assistance_type=c.choice(("dibao", "dibian", "tekun")), **fields)  # fmt: skip
    if etype == "assistance_ended":
        mine = store.person_rows("assistance", who)
        if not mine and people is None and c.integer(0, 3):
            rows = sorted((r.id_no, r.row_no) for rs in store.rows["assistance"].values()
                          for r in rs)  # fmt: skip
            if rows:
                owner = c.choice(rows)[0]
                mine, who = store.person_rows("assistance", owner), owner
        kind = c.choice(mine).assistance_type if mine else "tekun"
        return _event(etype, eid, "civil_affairs", day, id_no=who, assistance_type=kind)
    if etype == "finance_assessed":
        home = (
            store.persons[who].household_no if who in store.persons else c.choice(homes or ["H0"])
        )
        return _event(etype, eid, "civil_affairs", day, household_no=home,
                      per_capita_income=_money(c), per_capita_assets=_money(c))  # fmt: skip
    if etype == "care_assessed":
        return _event(etype, eid, c.choice(("civil_affairs", "health")), day, id_no=who,
                      care_level=c.choice(("self_care", "partial", "full")),
                      institution_resident=c.choice((True, False, False)))  # fmt: skip
    if etype == "parent_situation_started":
        parent = who
        if who in store.persons and c.integer(0, 1):
            p = store.persons[who]
            parent = p.mother_id_no or p.father_id_no or who
        return _event(etype, eid, c.choice(("justice", "police", "court")), day, id_no=parent,
                      situation=c.choice(SITUATIONS))  # fmt: skip
    if etype == "parent_situation_ended":
        candidates = [who]
        if who in store.persons:
            p = store.persons[who]
            candidates += [x for x in (p.father_id_no, p.mother_id_no) if x]
        if people is None:
            candidates += sorted(store.rows["parent_situations"])[:20]
        for parent in candidates:
            rows = store.person_rows("parent_situations", parent)
            if rows:
                row = c.choice(rows)
                return _event(etype, eid, "court", _ending_day(c, row, day), id_no=parent,
                              situation=row.situation)  # fmt: skip
        return _event(etype, eid, "court", day, id_no=who, situation="missing")
    assert etype == "bank_account_changed"
    name = store.persons[who].name if who in store.persons else "某人"
    return _event(etype, eid, "bank", day, id_no=who, account_no=f"6222{n:012d}",
                  account_name=name if c.integer(0, 5) else "别人",
                  financial_active=c.choice((True, True, False)),
                  status=c.choice(("open", "open", "open", "closed")))  # fmt: skip
