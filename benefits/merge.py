"""Merge: the departmental tables → one row of facts per person for benefit month `M`.

Facts are the handbook's §0/§2 concepts (age for M, resident, alive, assistance status after
precedence, the household's latest finance row, the counting disability certificate, parents'
situations, 12-month medical spending, bank account state …), declared in the rule pack's
``facts.yaml`` (:mod:`benefits.catalogue`). This module is the sweep's backend: it turns the
declarations into one Polars plan over the whole population — each selection one grouped
frame joined to the persons, each household aggregate one grouped frame, each formula one
expression. Rules read facts, never raw tables; each fact names the table it comes from and
the fact holding that table's source row number, for the audit trace.

Example:
    >>> facts = build_facts(extracts, BenefitMonth.parse("2025-01"), "330106",
    ...                     ("tekun", "dibao", "dibian"))  # doctest: +SKIP
    >>> facts.select("id_no", "age", "resident", "alive", "status")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import operator
from functools import reduce
from typing import Any

import polars as pl

from benefits.catalogue import (
    Catalogue,
    Fact,
    FactKind,
    Node,
    Selection,
    default_catalogue,
    references,
)
from benefits.idcard import id_key
from benefits.ingest import Extracts
from benefits.period import BenefitMonth, birthday_in_year_expr, completed_years_expr
from benefits.validity import in_force_expr

__all__ = ["FACTS", "ROW_FACTS", "Fact", "FactKind", "build_facts", "death_dates", "month_days"]


FACTS: dict[str, Fact]  # the bundled pack's facts, loaded by __getattr__ below
ROW_FACTS: tuple[str, ...]


def __getattr__(name: str) -> Any:
    """``FACTS`` (the bundled pack's facts) and ``ROW_FACTS``, loaded when first asked for: a
    sweep reads its own pack's catalogue and need not parse the bundled one at import."""
    if name == "FACTS":
        return default_catalogue().facts
    if name == "ROW_FACTS":
        return default_catalogue().row_facts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_COMPARE = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
    "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}  # fmt: skip


def month_days(month: BenefitMonth) -> dict[str, dt.date]:
    """The days a fact declaration may name, for `month`."""
    return {
        "month_start": month.start,
        "month_end": month.end,
        "prev_month_start": month.previous.start,
        "prev_month_end": month.previous.end,
        "day_before": month.start - dt.timedelta(days=1),
    }


def death_dates(extracts: Extracts) -> pl.LazyFrame:
    """Earliest accepted death date per ID (whether or not the person is in persons)."""
    return (
        extracts.frame("deaths")
        .lazy()
        .with_columns(id_key(pl.col("id_no")).alias("__k"))
        .sort(["__k", "death_date", "_row"])
        .group_by("__k", maintain_order=True)
        .first()
        .select("__k", "id_no", "death_date", pl.col("_row").alias("death_row"))
    )


def aux_name(selection: str, column: str) -> str:
    """The frame column holding a picked row's column that a formula reads."""
    return f"__{selection}__{column}"


class _Plan:
    """The Polars plan of one catalogue for one month (see module doc)."""

    def __init__(
        self, cat: Catalogue, extracts: Extracts, month: BenefitMonth, district: str,
        precedence: tuple[str, ...],
    ) -> None:  # fmt: skip
        self.cat = cat
        self.extracts = extracts
        self.month = month
        self.days = month_days(month)
        self.district = district
        self.rank = {t: i for i, t in enumerate(precedence)}
        self.aux: dict[str, set[str]] = {}
        for n in [cat.members, *(d.formula for d in cat.derivations.values())]:
            for sel, column in references(n)[2] if n is not None else ():
                self.aux.setdefault(sel, set()).add(column)
        self._frames: dict[tuple[Any, ...], tuple[pl.LazyFrame, str, list[Any]]] = {}
        self._shape_requests = self._requests()

    # ------------------------------------------------------------------------------ formulas
    def expr(self, n: Node) -> pl.Expr:
        """A formula as a Polars expression (nulls propagate, Kleene logic)."""
        op = n[0]
        if op == "name":
            return pl.col(n[1])
        if op == "day":
            return pl.lit(self.days[n[1]])
        if op == "const":
            return pl.lit(self.district)
        if op == "lit":
            return pl.lit(n[1])
        if op == "col":
            return pl.col(aux_name(n[1], n[2]))
        if op == "row":
            return pl.col(str(self.cat.selections[n[1]].row))
        if op in _COMPARE:
            return _COMPARE[op](self.expr(n[1]), self.expr(n[2]))
        if op == "all":
            return reduce(operator.and_, [self.expr(a) for a in n[1:]])
        if op == "any":
            return reduce(operator.or_, [self.expr(a) for a in n[1:]])
        if op == "not":
            return ~self.expr(n[1])
        if op == "missing":
            return self.expr(n[1]).is_null()
        if op == "present":
            return self.expr(n[1]).is_not_null()
        if op == "strip":
            return self.expr(n[1]).str.strip_chars()
        if op == "completed_years":
            return completed_years_expr(self.expr(n[1]), self.days[n[2][1]])
        if op == "birthday_in_year":
            return birthday_in_year_expr(self.expr(n[1]), self.month.year)
        if op == "cases":
            (when, then), *rest = n[1]
            chain: Any = pl.when(self.expr(when)).then(self.expr(then))
            for when, then in rest:
                chain = chain.when(self.expr(when)).then(self.expr(then))
            if n[2] != ("lit", None):
                chain = chain.otherwise(self.expr(n[2]))
            return chain
        raise ValueError(f"unknown formula operator {op!r}")  # pragma: no cover - parsed

    # ---------------------------------------------------------------------------- selections
    def _requests(self) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
        """What each shape of selection (table, filters, order, pick) must aggregate.

        Selections of one shape (a person's death and a parent's) share one grouped frame,
        which the plan computes once; each joins it under its own names.
        """
        out: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for name, sel in self.cat.selections.items():
            if name == self.cat.person:
                continue
            wanted = out.setdefault(_shape(sel), [])
            for request in self._selection_requests(name)[1]:
                if request not in wanted:
                    wanted.append(request)
        return out

    def _selection_requests(self, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """(output names, requests) of a selection: its row, formula columns and facts."""
        sel = self.cat.selections[name]
        names: list[str] = []
        requests: list[tuple[Any, ...]] = []
        if sel.row:
            names.append(sel.row)
            requests.append(("col", "_row", False))
        for column in sorted(self.aux.get(name, ())):
            names.append(aux_name(name, column))
            requests.append(("col", column, False))
        for fact, d in self.cat.derivations.items():
            if d.selection == name and d.how != "column":
                names.append(fact)
                if d.how == "pick":
                    requests.append(("col", d.column, d.cast_int))
                else:
                    requests.append((d.how, d.column, d.where, d.cast_int))
        table = self.cat.tables[sel.table]
        if table.by_name[str(table.index)].kind == "id" and not self._by_key(sel):
            requests.append(("col", table.index, False))  # the ID, to join a reference on
        return names, requests

    def _by_key(self, sel: Selection) -> bool:
        """True when a selection joins on the integer ID key (a person's own rows)."""
        table = self.cat.tables[sel.table]
        return sel.of == "id_no" and table.by_name[str(table.index)].kind == "id"

    def grouped(self, sel: Selection) -> tuple[pl.LazyFrame, str, list[tuple[Any, ...]]]:
        """(frame, key, requests) of a selection's shape: one row per key, columns `__a{i}`."""
        shape = _shape(sel)
        if shape in self._frames:
            return self._frames[shape]
        requests = self._shape_requests[shape]
        table = self.cat.tables[sel.table]
        index = str(table.index)
        frame = self.extracts.frame(sel.table).lazy()
        if table.by_name[index].kind == "id":
            key = "__k"
            frame = frame.with_columns(id_key(pl.col(index)).alias(key))
        else:
            key = index
        for column, day in sel.before:
            frame = frame.filter(pl.col(column) < self.days[day])
        if sel.open_on is not None:
            frame = frame.filter(in_force_expr(table, self.days[sel.open_on]))
        if sel.window is not None:
            column, months = sel.window
            labels = [self.month.shift(-k).label for k in range(1, months + 1)]
            frame = frame.filter(pl.col(column).is_in(labels))
        unique = table.key == (index,) and not sel.order and sel.pick != "all"
        if unique and all(r[0] in ("col", "exists") for r in requests):
            # one row per person already (ingest quarantines duplicate keys): no grouping
            cols = [
                (pl.lit(True) if r[0] == "exists" else _cast(pl.col(r[1]), r[2])).alias(f"__a{i}")
                for i, r in enumerate(requests)
            ]
            result = (frame.select(key, *cols), key, requests)
            self._frames[shape] = result
            return result
        if sel.pick == "all":
            groups = frame.group_by(key)
        else:
            by: list[pl.Expr] = [pl.col(key)]
            for column, _, rank in sel.order:
                col = pl.col(column)
                by.append(col.replace_strict(self.rank, return_dtype=pl.Int32) if rank else col)
            by.append(pl.col("_row"))
            descending = [False, *(desc for _, desc, _ in sel.order), False]
            groups = frame.sort(by, descending=descending).group_by(key, maintain_order=True)

        def picked(column: str) -> pl.Expr:
            col = pl.col(column)
            return col.first() if sel.pick == "first" else col.last()

        aggs = [_aggregate(r, picked).alias(f"__a{i}") for i, r in enumerate(requests)]
        result = (groups.agg(aggs), key, requests)
        self._frames[shape] = result
        return result

    def selection(self, name: str) -> tuple[pl.LazyFrame, str, str]:
        """(frame, persons key, frame key) of a selection, its facts under their names."""
        sel = self.cat.selections[name]
        frame, key, requests = self.grouped(sel)
        names, mine = self._selection_requests(name)
        cols = [
            pl.col(f"__a{requests.index(r)}").alias(n)
            for n, r in zip(names, mine[: len(names)], strict=True)
        ]
        if self._by_key(sel):
            return frame.select(key, *cols), "__k", key
        table = self.cat.tables[sel.table]
        join_on = f"__key_{name}"
        if table.by_name[str(table.index)].kind == "id":
            ref = pl.col(f"__a{requests.index(('col', table.index, False))}")
        else:
            ref = pl.col(key)
        return frame.select(ref.alias(join_on), *cols), sel.of, join_on

    # ---------------------------------------------------------------------------- households
    def households(self, p: pl.LazyFrame, facts: list[str]) -> pl.LazyFrame:
        """The household aggregates `facts` over the members of each household."""
        aggs = []
        for fact in facts:
            d = self.cat.derivations[fact]
            if d.household == "count":
                aggs.append(pl.len().alias(fact))
            else:
                aggs.append(self.expr(d.formula).any().alias(fact))  # type: ignore[arg-type]
        return p.filter(self.expr(self.cat.members)).group_by("household_no").agg(aggs)

    # ---------------------------------------------------------------------------------- build
    def build(self) -> pl.DataFrame:
        cat = self.cat
        person = cat.selections[cat.person]
        p = (
            self.extracts.frame("persons")
            .lazy()
            .with_columns(id_key(pl.col("id_no")).alias("__k"))
            .rename({"_row": str(person.row)})
        )
        done: set[str] = set()
        pending: dict[str, pl.Expr] = {}

        def flush() -> None:
            nonlocal p
            if pending:
                p = p.with_columns(**pending)
                pending.clear()

        joined = {cat.person}

        def join(name: str) -> None:
            nonlocal p
            if name in joined:
                return
            if cat.selections[name].of in pending:
                flush()
            frame, left, right = self.selection(name)
            p = p.join(frame, left_on=left, right_on=right, how="left")
            joined.add(name)
            for fact, d in cat.derivations.items():
                if d.selection == name:
                    done.add(fact)
                    if d.default is not None:
                        pending[fact] = pl.col(fact).fill_null(d.default)

        order = list(cat.order)
        for i, fact in enumerate(order):
            if fact in done:
                continue
            d = cat.derivations[fact]
            if d.how == "column":
                if fact != d.column:
                    pending[fact] = pl.col(str(d.column))
            elif d.selection is not None:
                join(d.selection)
                continue
            elif d.how == "household":
                run = [fact]
                for later in order[i + 1 :]:
                    if cat.derivations[later].how != "household":
                        break
                    run.append(later)
                flush()
                p = p.join(self.households(p, run), on="household_no", how="left")
                for f in run:
                    pending[f] = pl.col(f).fill_null(cat.derivations[f].default)
                    done.add(f)
                continue
            else:
                names, sels, _ = references(d.formula)  # type: ignore[arg-type]
                for s in sels:
                    join(s)
                if names & set(pending) or any(cat.selections[s].row in pending for s in sels):
                    flush()
                e = self.expr(d.formula)  # type: ignore[arg-type]
                pending[fact] = e if d.default is None else e.fill_null(d.default)
            done.add(fact)
        flush()
        # the in-memory engine runs this join-heavy plan about twice as fast as streaming
        return p.select(cat.columns).collect(engine="in-memory")


def _shape(sel: Selection) -> tuple[Any, ...]:
    return (sel.table, sel.before, sel.open_on, sel.window, sel.order, sel.pick)


def _cast(e: pl.Expr, cast_int: bool) -> pl.Expr:
    return e.cast(pl.Int64) if cast_int else e


def _aggregate(request: tuple[Any, ...], picked: Any) -> pl.Expr:
    """One requested column of a group: a picked row's column or an aggregate."""
    how = request[0]
    if how == "col":
        return _cast(picked(str(request[1])), request[2])
    _, column, where, cast_int = request
    if how == "exists":
        return pl.len() > 0
    if how == "count":
        return pl.len()
    if how == "sum":
        return pl.col(str(column)).sum()
    if how == "n_unique":
        return pl.col(str(column)).n_unique()
    col = pl.col(str(column))
    if where is not None:
        col = col.filter(pl.col(where[0]) == where[1])
    return _cast(col.first(), cast_int)


def build_facts(
    extracts: Extracts,
    month: BenefitMonth,
    district_code: str,
    status_precedence: tuple[str, ...],
    catalogue: Catalogue | None = None,
) -> pl.DataFrame:
    """One row of facts per accepted persons row for `month` (the catalogue's columns)."""
    cat = catalogue or default_catalogue()
    return _Plan(cat, extracts, month, district_code, status_precedence).build()
