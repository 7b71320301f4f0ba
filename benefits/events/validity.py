"""The data contract's reading of a row with a validity period, in one place for the events path.

A row is **in force on day D** when ``start ≤ D`` and (``end`` is empty or ``end ≥ D``): both
ends are included, and an end date later than D — a planned end, a scheduled release, a
certificate's expiry — does not make the row any less in force on D. The tables with such a
period, and the columns that bound it:

- ``parent_situations``: ``start_date`` … ``end_date`` (empty = no end);
- ``health_conditions``: ``diagnosed_on`` … ``end_date`` (empty = no end);
- ``disability_certificates``: ``issue_date`` … ``expiry_date``, and only while its
  ``status`` is ``valid`` (handbook §0: the counting certificate).

An event that **ends** a row on D ends the rows in force on D whose end is empty or later than
D: their end becomes D (:func:`ends_after`). Every place in ``benefits.events`` that decides
whether a row is open, current or valid uses :func:`in_force` or :func:`row_in_force`, so the
facts, the planners and the event generator cannot read the contract differently from each
other (nor, the differential test checks, from the sweep's ``merge.open_on``).

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
from typing import Any

# table -> (start column, end column, required status or None)
PERIODS: dict[str, tuple[str, str, tuple[str, str] | None]] = {
    "parent_situations": ("start_date", "end_date", None),
    "health_conditions": ("diagnosed_on", "end_date", None),
    "disability_certificates": ("issue_date", "expiry_date", ("status", "valid")),
}


def in_force(start: dt.date, end: dt.date | None, day: dt.date) -> bool:
    """True when a period from `start` to `end` (None = no end) covers `day`, both included."""
    return start <= day and (end is None or end >= day)


def ends_after(end: dt.date | None, day: dt.date) -> bool:
    """True when a period's end is empty or later than `day` (an ending on `day` shortens it)."""
    return end is None or end > day


def row_in_force(table: str, row: Any, day: dt.date) -> bool:
    """True when a row of `table` (a store record) is in force on `day` (see module doc)."""
    start, end, status = PERIODS[table]
    if status is not None and getattr(row, status[0]) != status[1]:
        return False
    return in_force(getattr(row, start), getattr(row, end), day)

