"""The data contract's reading of a row with a validity period, generated from its declaration.

A row is **in force on day D** when ``start ≤ D`` and (``end`` is empty or ``end ≥ D``): both
ends are included, and an end date later than D — a planned end, a scheduled release, a
certificate's expiry — does not make the row any less in force on D. Which tables have such a
period, its columns and the status a row needs are declared once, in the rule pack's
``tables.yaml`` (``period:``): today ``parent_situations`` (``start_date`` … ``end_date``),
``health_conditions`` (``diagnosed_on`` … ``end_date``) and ``disability_certificates``
(``issue_date`` … ``expiry_date``, only while ``status`` is ``valid``: handbook §0, the
counting certificate).

Each backend reads a table's period through one function generated from that declaration:
:func:`in_force_expr` (a Polars filter, for the sweep) and :func:`row_check` (a test on one
row, for the event path). An event that **ends** a row on D ends the rows in force on D whose
end is empty or later than D: their end becomes D (:func:`ends_after`).

Example:
    >>> d = dt.date(2025, 1, 20)
    >>> in_force(dt.date(2022, 6, 1), dt.date(2027, 6, 1), d)   # planned release in 2027
    True
    >>> in_force(dt.date(2022, 6, 1), d, d), in_force(d, None, d)   # both ends included
    (True, True)
    >>> in_force(dt.date(2022, 6, 1), dt.date(2025, 1, 19), d)  # ended the day before
    False
    >>> ends_after(dt.date(2027, 6, 1), d), ends_after(None, d), ends_after(d, d)
    (True, True, False)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import polars as pl

from benefits.schema import TABLES, Table


def in_force(start: dt.date | None, end: dt.date | None, day: dt.date) -> bool:
    """True when a period from `start` to `end` (None = no end) covers `day`, both included."""
    return start is not None and start <= day and (end is None or end >= day)


def ends_after(end: dt.date | None, day: dt.date) -> bool:
    """True when a period's end is empty or later than `day` (an ending on `day` shortens it)."""
    return end is None or end > day


def _period(table: Table) -> Any:
    if table.period is None:
        raise ValueError(f"table '{table.name}' declares no validity period")
    return table.period


def in_force_expr(table: Table, day: dt.date) -> pl.Expr:
    """The Polars filter: rows of `table` in force on `day` (see module doc)."""
    period = _period(table)
    expr = (pl.col(period.start) <= day) & (
        pl.col(period.end).is_null() | (pl.col(period.end) >= day)
    )
    if period.status is not None:
        expr = (pl.col(period.status[0]) == period.status[1]) & expr
    return expr


def row_check(table: Table) -> Callable[[Any, dt.date], bool]:
    """The test on one row (a store record) of `table`: in force on a day (see module doc)."""
    period = _period(table)
    start, end = attrgetter(period.start), attrgetter(period.end)
    if period.status is None:
        return lambda row, day: in_force(start(row), end(row), day)
    status, wanted = attrgetter(period.status[0]), period.status[1]
    return lambda row, day: status(row) == wanted and in_force(start(row), end(row), day)


_CHECKS = {name: row_check(t) for name, t in TABLES.items() if t.period is not None}


def row_in_force(table: str, row: Any, day: dt.date) -> bool:
    """True when a row of a bundled table (a store record) is in force on `day`."""
    return _CHECKS[table](row, day)
