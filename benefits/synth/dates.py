"""Calendar helpers and the handbook's default figures the generator places data around.

The figures here never decide anything: they only let the generator put incomes and pensions
just below, at and just above the thresholds the rule pack will apply.

Example:
    >>> m = Month.parse("2025-01")
    >>> m.start, m.end, m.prev.start
    (datetime.date(2025, 1, 1), datetime.date(2025, 1, 31), datetime.date(2024, 12, 1))
    >>> m.dibao_std, years_before(dt.date(2024, 2, 29), 1)
    (1301, datetime.date(2023, 2, 28))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

EPOCH = dt.date(1970, 1, 1)

# (effective_from, value) — policy handbook §1 defaults.
DIBAO_STD = ((dt.date(2022, 7, 1), 1216), (dt.date(2023, 7, 1), 1259), (dt.date(2025, 1, 23), 1301))
MIN_WAGE = 2280
PROV_URBAN_INCOME = (
    (dt.date(2023, 1, 1), 68487),
    (dt.date(2024, 1, 1), 71268),
    (dt.date(2025, 1, 1), 74997),
)


def _in_force(table: tuple[tuple[dt.date, int], ...], day: dt.date) -> int:
    value = table[0][1]
    for start, v in table:
        if start <= day:
            value = v
    return value


def days(d: dt.date) -> int:
    """Days since 1970-01-01 (Polars' Date representation)."""
    return (d - EPOCH).days


def years_before(d: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` earlier (29 February → 28 February)."""
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


def add_months(d: dt.date, k: int) -> dt.date:
    """The first day of the month ``k`` months after the month of ``d``."""
    n = d.year * 12 + d.month - 1 + k
    return dt.date(n // 12, n % 12 + 1, 1)


@dataclass(frozen=True)
class Month:
    """A benefit month ``M`` and the dates the generator builds its facts around."""

    start: dt.date

    @classmethod
    def parse(cls, month: str) -> Month:
        year, mon = month.split("-")
        return cls(dt.date(int(year), int(mon), 1))

    def shift(self, k: int) -> Month:
        return Month(add_months(self.start, k))

    @property
    def prev(self) -> Month:
        return self.shift(-1)

    @property
    def next(self) -> Month:
        return self.shift(1)

    @property
    def end(self) -> dt.date:
        return self.next.start - dt.timedelta(days=1)

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"

    def day(self, n: int) -> dt.date:
        """The ``n``-th day of the month (1-based)."""
        return self.start + dt.timedelta(days=n - 1)

    @property
    def dibao_std(self) -> int:
        return _in_force(DIBAO_STD, self.end)

    @property
    def prov_urban_income(self) -> int:
        return _in_force(PROV_URBAN_INCOME, self.end)
