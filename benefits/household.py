"""Per-person facts for one household and one month, from the event store's rows.

The event path's backend of the fact declarations (``rules/facts.yaml``,
:mod:`benefits.catalogue`): the same facts as :func:`benefits.merge.build_facts`, with the same
meaning, computed for the members of one household at a time by dictionary lookups instead of
a Polars plan over everyone. The declarations are compiled once per month into closures
(:meth:`MonthContext.for_month`); a call only runs them. Values are plain Python: dates as
:class:`datetime.date`, money as integer fen, missing as ``None``. The differential test holds
the two backends to the same answers.

Example:
    >>> ctx = MonthContext.for_month(BenefitMonth.parse("2025-01"), "330106",
    ...                              ("tekun", "dibao", "dibian"))
    >>> ctx.day_before
    datetime.date(2024, 12, 31)
    >>> household_facts(store, "H1", ctx)[0]["age"]    # doctest: +SKIP
    80
"""

from __future__ import annotations

import calendar
import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Protocol

from benefits.catalogue import Catalogue, Node, Selection, default_catalogue
from benefits.merge import month_days
from benefits.period import BenefitMonth, completed_years
from benefits.validity import row_check

ORDER = "_order"  # the persons row number: file order, for one-per-group tie-breaks

Facts = dict[str, Any]


class Store(Protocol):
    """The rows a household's facts are read from (:class:`benefits.events.store.Store`)."""

    persons: dict[str, Any]  # id_no -> persons row
    members: dict[str, list[str]]  # household_no -> ids in file order
    rows: dict[str, dict[str, list[Any]]]  # table -> index value -> rows in file order

Picked = dict[str, Any]  # selection -> its picked row (for formulas that read its columns)
Formula = Callable[[Facts, Picked], Any]
Step = Callable[[Store, Any, Facts, Picked], None]

_COMPARE = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
    "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}  # fmt: skip


@dataclass(frozen=True)
class MonthContext:
    """The dates and settings a month's facts depend on, and the compiled declarations."""

    month: BenefitMonth
    district: str
    start: dt.date
    end: dt.date
    day_before: dt.date
    phases: tuple[tuple[tuple[Step, ...], tuple[tuple[str, str, Formula | None], ...]], ...] = (
        field(default=(), repr=False)
    )
    members: Formula | None = field(default=None, repr=False)

    @classmethod
    def for_month(
        cls,
        month: BenefitMonth,
        district: str,
        precedence: tuple[str, ...],
        catalogue: Catalogue | None = None,
    ) -> MonthContext:
        """Context for `month` (precedence: the pack's status order, strongest first)."""
        cat = catalogue or default_catalogue()
        compiler = _Compiler(cat, month, district, {t: i for i, t in enumerate(precedence)})
        phases, members = compiler.compile()
        return cls(
            month,
            district,
            month.start,
            month.end,
            month.start - dt.timedelta(days=1),
            phases,
            members,
        )


def birthday_in_year(birth: dt.date, year: int) -> dt.date:
    """The birthday in `year`; 29 February falls on 1 March in common years."""
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return dt.date(year, 3, 1)
    return dt.date(year, birth.month, birth.day)


class _Compiler:
    """Turns a catalogue into closures for one month (see module doc)."""

    def __init__(
        self, cat: Catalogue, month: BenefitMonth, district: str, rank: dict[str, int]
    ) -> None:
        self.cat = cat
        self.month = month
        self.district = district
        self.rank = rank
        self.days = month_days(month)

    def compile(self) -> tuple[tuple[Any, ...], Formula]:
        cat = self.cat
        phases: list[Any] = []
        steps: list[Step] = []
        households: list[tuple[str, str, Formula | None]] = []
        done: set[str] = set()
        added = {cat.person}
        columns = [(f, str(d.column)) for f, d in cat.derivations.items() if d.how == "column"]
        steps.append(self.person_step(columns, str(cat.selections[cat.person].row)))
        done |= {f for f, _ in columns}
        for fact in cat.order:
            if fact in done:
                continue
            d = cat.derivations[fact]
            if d.how == "household":
                fn = None if d.formula is None else self.formula(d.formula)
                households.append((fact, str(d.household), fn))
                done.add(fact)
                continue
            if households:  # a fact after a household aggregate: the next phase
                phases.append((tuple(steps), tuple(households)))
                steps, households = [], []
            sels = {d.selection} if d.selection else _selections_read(d.formula, cat)
            for s in sorted(sels - added):  # a selection's step derives all its facts
                steps.append(self.selection_step(cat.selections[s]))
                added.add(s)
                done |= {f for f, x in cat.derivations.items() if x.selection == s}
            if d.formula is not None:
                steps.append(self.formula_step(fact, self.formula(d.formula), d.default))
                done.add(fact)
        phases.append((tuple(steps), tuple(households)))
        return tuple(phases), self.formula(cat.members)

    # ------------------------------------------------------------------------------- steps
    def person_step(self, columns: list[tuple[str, str]], row: str) -> Step:
        names = (*(fact for fact, _ in columns), row, ORDER)
        get = attrgetter(*(col for _, col in columns), "row_no", "row_no")

        def step(store: Store, p: Any, f: Facts, picked: Picked) -> None:
            f.update(zip(names, get(p), strict=True))

        return step

    def formula_step(self, fact: str, fn: Formula, default: Any) -> Step:
        if default is None:

            def step(store: Store, p: Any, f: Facts, picked: Picked) -> None:
                f[fact] = fn(f, picked)

        else:

            def step(store: Store, p: Any, f: Facts, picked: Picked) -> None:
                v = fn(f, picked)
                f[fact] = default if v is None else v

        return step

    def selection_step(self, sel: Selection) -> Step:
        """Find a person's rows of the selection's table, filter, order, pick, derive."""
        cat = self.cat
        table = cat.tables[sel.table]
        name, of, row_fact, pick = sel.name, sel.of, sel.row, sel.pick
        tests: list[Callable[[Any], bool]] = []
        for column, day in sel.before:
            get, limit = attrgetter(column), self.days[day]
            tests.append(lambda r, get=get, limit=limit: (v := get(r)) is not None and v < limit)
        if sel.open_on is not None:
            check, day = row_check(table), self.days[sel.open_on]
            tests.append(lambda r, check=check, day=day: check(r, day))
        if sel.window is not None:
            get = attrgetter(sel.window[0])
            months = frozenset(self.month.shift(-k).label for k in range(1, sel.window[1] + 1))
            tests.append(lambda r, get=get, months=months: get(r) in months)
        sorts = []
        for column, desc, by_rank in reversed(sel.order):
            get = attrgetter(column)
            key = (lambda r, get=get: self.rank[get(r)]) if by_rank else get
            sorts.append((key, desc))
        derived = []
        for fact, d in cat.derivations.items():
            if d.selection == name and d.how != "column":
                derived.append((fact, d.how, attrgetter(str(d.column)) if d.column else None,
                                d.where, d.default))  # fmt: skip

        fast: Callable[[Any], Any] | None = None
        if (
            sorts
            and not any(desc for _, desc in sorts)
            and not any(d[1] == "first" for d in derived)
        ):
            keys = [k for k, _ in reversed(sorts)]
            fast = keys[0] if len(keys) == 1 else (lambda r: tuple(k(r) for k in keys))
        empty: dict[str, Any] = {row_fact: None} if row_fact else {}
        for fact, how, _, _, default in derived:
            empty[fact] = {"exists": False, "count": 0}.get(how, default)
        index = sel.table

        def step(store: Store, p: Any, f: Facts, picked: Picked) -> None:
            key = f[of]
            rows = store.rows[index].get(key, ()) if key else ()
            if tests and rows:
                rows = [r for r in rows if all(t(r) for t in tests)]
            if not rows:  # the common case: nothing to pick or count
                picked[name] = None
                f.update(empty)
                return
            # the store keeps each key's rows in file order: the final tie-break is free
            if len(rows) < 2 or pick == "all":
                one = None if pick == "all" else rows[0] if pick == "first" else rows[-1]
            elif fast is not None:  # ascending keys, no ordered aggregate: one pass
                one = min(rows, key=fast) if pick == "first" else max(reversed(rows), key=fast)
            else:
                if sorts:
                    rows = list(rows)
                    for k, desc in sorts:
                        rows.sort(key=k, reverse=desc)  # stable: ties keep file order
                one = rows[0] if pick == "first" else rows[-1]
            picked[name] = one
            if row_fact:
                f[row_fact] = None if one is None else one.row_no
            for fact, how, get, where, default in derived:
                v: Any
                if how == "pick":
                    v = None if one is None else get(one)  # type: ignore[misc]
                elif how == "exists":
                    v = bool(rows)
                elif how == "count":
                    v = len(rows)
                elif not rows:
                    v = None
                elif how == "sum":
                    v = sum(get(r) for r in rows)  # type: ignore[misc]
                elif how == "n_unique":
                    v = len({get(r) for r in rows})  # type: ignore[misc]
                else:  # first, optionally where column = value
                    v = next(
                        (get(r) for r in rows if where is None or getattr(r, where[0]) == where[1]),  # type: ignore[misc]
                        None,
                    )
                f[fact] = default if v is None else v

        return step

    # ---------------------------------------------------------------------------- formulas
    def formula(self, n: Node | None) -> Formula:
        """A formula as a closure over (facts, picked rows); None propagates (Kleene logic)."""
        if n is None:  # pragma: no cover - callers pass parsed formulas
            raise ValueError("no formula")
        op = n[0]
        if op == "name":
            name = n[1]
            return lambda f, r: f[name]
        if op in ("day", "const", "lit"):
            value = self.days[n[1]] if op == "day" else self.district if op == "const" else n[1]
            return lambda f, r: value
        if op == "row":
            row = str(self.cat.selections[n[1]].row)
            return lambda f, r: f[row]
        if op == "col":
            sel, get = n[1], attrgetter(n[2])
            return lambda f, r: None if (one := r.get(sel)) is None else get(one)
        if op in _COMPARE and n[1][0] == "name" and n[2][0] in ("day", "const", "lit"):
            # the common shape, a fact against a constant: one closure, no calls inside
            cmp, name, value = _COMPARE[op], n[1][1], self.formula(n[2])({}, {})
            if value is None:
                return lambda f, r: None
            return lambda f, r: None if (x := f[name]) is None else cmp(x, value)
        if op in ("missing", "present") and n[1][0] == "name":
            name = n[1][1]
            if op == "missing":
                return lambda f, r: f[name] is None
            return lambda f, r: f[name] is not None
        args = [self.formula(a) for a in n[1:] if op != "cases"]
        if op in _COMPARE:
            cmp, a, b = _COMPARE[op], args[0], args[1]

            def compare(f: Facts, r: Picked) -> Any:
                x = a(f, r)
                if x is None:
                    return None
                y = b(f, r)
                return None if y is None else cmp(x, y)

            return compare
        if op == "all":

            def all_of(f: Facts, r: Picked) -> Any:
                out: Any = True
                for a in args:
                    v = a(f, r)
                    if v is False:
                        return False
                    if v is None:
                        out = None
                return out

            return all_of
        if op == "any":

            def any_of(f: Facts, r: Picked) -> Any:
                out: Any = False
                for a in args:
                    v = a(f, r)
                    if v is True:
                        return True
                    if v is None:
                        out = None
                return out

            return any_of
        a = args[0] if args else None
        if op == "not":
            return lambda f, r: None if (v := a(f, r)) is None else not v  # type: ignore[misc]
        if op == "missing":
            return lambda f, r: a(f, r) is None  # type: ignore[misc]
        if op == "present":
            return lambda f, r: a(f, r) is not None  # type: ignore[misc]
        if op == "strip":
            return lambda f, r: None if (v := a(f, r)) is None else v.strip()  # type: ignore[misc]
        if op == "completed_years":
            day = self.days[n[2][1]]
            return lambda f, r: None if (v := a(f, r)) is None else completed_years(v, day)  # type: ignore[misc]
        if op == "birthday_in_year":
            year = self.month.year
            return lambda f, r: None if (v := a(f, r)) is None else birthday_in_year(v, year)  # type: ignore[misc]
        if op == "cases":
            cases = [(self.formula(w), self.formula(t)) for w, t in n[1]]
            otherwise = self.formula(n[2])

            def choose(f: Facts, r: Picked) -> Any:
                for when, then in cases:
                    if when(f, r) is True:
                        return then(f, r)
                return otherwise(f, r)

            return choose
        raise ValueError(f"unknown formula operator {op!r}")  # pragma: no cover - parsed


def _selections_read(n: Node | None, cat: Catalogue) -> set[str]:
    from benefits.catalogue import references

    return set() if n is None else references(n)[1] - {cat.person}


def household_facts(store: Store, household_no: str, ctx: MonthContext) -> list[dict[str, Any]]:
    """Facts of every persons row of a household (in file order), aggregates included."""
    if not ctx.phases:  # pragma: no cover - for_month compiles
        raise ValueError("MonthContext without compiled facts: use MonthContext.for_month")
    ids = store.members.get(household_no, ())
    people = [(store.persons[i], {}, {}) for i in ids]
    members_fn = ctx.members
    for steps, aggregates in ctx.phases:
        for p, f, picked in people:
            for step in steps:
                step(store, p, f, picked)
        if aggregates:
            members = [(f, r) for _, f, r in people if members_fn(f, r) is True]  # type: ignore[misc]
            values: dict[str, Any] = {}
            for fact, how, fn in aggregates:
                if how == "count":
                    values[fact] = len(members)
                else:
                    values[fact] = any(fn(f, r) is True for f, r in members)  # type: ignore[misc]
            for _, f, _ in people:
                f.update(values)
    return [f for _, f, _ in people]
