"""The ledger's clock: an injectable callable returning an aware UTC datetime.

Tests freeze it (freezegun patches :func:`utc_now`) or pass their own callable.

Example:
    >>> import datetime as dt
    >>> fixed = fixed_clock(dt.datetime(2025, 1, 5, 9, 30))
    >>> fixed().isoformat()
    '2025-01-05T09:30:00+00:00'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The wall clock in UTC (the default clock)."""
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime; a naive value is taken to be UTC already (SQLite returns naive).

    >>> as_utc(dt.datetime(2025, 1, 1)).tzinfo is dt.UTC
    True
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def fixed_clock(at: dt.datetime) -> Clock:
    """A clock that always returns `at` (naive means UTC)."""
    value = as_utc(at)
    return lambda: value
