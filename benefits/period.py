"""Benefit months and the date arithmetic of handbook §0 (age in completed years, 29 February).

Example:
    >>> m = BenefitMonth.parse("2025-01")
    >>> m.start, m.end, m.previous.label
    (datetime.date(2025, 1, 1), datetime.date(2025, 1, 31), '2024-12')
    >>> completed_years(dt.date(1945, 1, 1), dt.date(2024, 12, 31))
    79
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

import polars as pl

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def date_pattern(sep: str = "-") -> str:
    """A regular expression (no anchors) of the real dates ``YYYY{sep}MM{sep}DD`` of the
    Gregorian calendar, years 0000-9999 (29 February only in leap years): one pass of a
    regex where parsing each cell as a date costs several times more.

    >>> [bool(re.fullmatch(date_pattern(), d)) for d in ("2024-02-29", "1900-02-29")]
    [True, False]
    """
    days = (
        f"(0[1-9]|1[0-2]){sep}(0[1-9]|1[0-9]|2[0-8])"  # every month has days 1-28,
        f"|(0[13-9]|1[0-2]){sep}(29|30)"  # all but February 29 and 30,
        f"|(0[13578]|1[02]){sep}31"  # seven months 31
    )
    leap = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)"
    return f"([0-9]{{4}}{sep}({days})|{leap}{sep}02{sep}29)"


@dataclass(frozen=True, order=True)
class BenefitMonth:
    """A benefit month `M`: the sweep for `M` decides who is paid for `M`."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> BenefitMonth:
        m = _MONTH.match(text.strip())
        if not m:
            raise ValueError(f"a benefit month looks like 2025-01, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def end(self) -> dt.date:
        return dt.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def shift(self, months: int) -> BenefitMonth:
        index = self.year * 12 + (self.month - 1) + months
        return BenefitMonth(index // 12, index % 12 + 1)

    @property
    def previous(self) -> BenefitMonth:
        return self.shift(-1)

    def __str__(self) -> str:
        return self.label


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day `months` later (clamped to the month's last day).

    >>> add_months(dt.date(2025, 1, 1), -24)
    datetime.date(2023, 1, 1)
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def completed_years(birth: dt.date, on: dt.date) -> int:
    """Completed years (周岁) on a day; a 29 February birthday falls on 1 March in common years."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def completed_years_expr(birth: pl.Expr, on: pl.Expr | dt.date) -> pl.Expr:
    """Vectorised :func:`completed_years` (either side may be a column)."""
    if isinstance(on, dt.date):
        on_year, on_md = pl.lit(on.year), pl.lit(on.month * 100 + on.day)
    else:
        on_year, on_md = on.dt.year(), on.dt.month().cast(pl.Int32) * 100 + on.dt.day()
    birth_md = birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day()
    return (
        on_year.cast(pl.Int32) - birth.dt.year().cast(pl.Int32) - (on_md < birth_md).cast(pl.Int32)
    )


def birthday_in_year_expr(birth: pl.Expr, year: int) -> pl.Expr:
    """The date of the birthday in `year` (29 February → 1 March in common years)."""
    leap = calendar.isleap(year)
    feb29 = (birth.dt.month() == 2) & (birth.dt.day() == 29)
    month = pl.when(feb29 & (not leap)).then(pl.lit(3)).otherwise(birth.dt.month())
    day = pl.when(feb29 & (not leap)).then(pl.lit(1)).otherwise(birth.dt.day())
    return pl.date(pl.lit(year), month, day)
