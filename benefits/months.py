"""The months a sweep may cover: from the first month the rule pack can decide to a horizon ahead.

One definition for every place a month is given (``benefits sweep``, ``benefits events``, the
web page and the JSON API, the monthly cycle):

- **earliest**: the first month for which every parameter of the rule pack has a value in force
  for the month *and the month before it* (a sweep of M also reads M−1: ``previous_month()``
  parameters and the ``death_stop`` re-run). With the bundled pack that is 2023-02, the month
  after the latest first effective date (2023-01-01).
- **latest**: the current month plus a horizon, 12 months unless
  ``$BENEFITS_SWEEP_HORIZON_MONTHS`` says otherwise (0 to 120). The current month is read from
  the wall clock by the caller, never inside evaluation.

Example:
    >>> from benefits.rulebook import load_pack
    >>> span = sweep_range(load_pack(), dt.date(2025, 6, 15), horizon=12)
    >>> span.text
    '2023-02 … 2026-06'
    >>> try:
    ...     check_sweep_month("2100-01", load_pack(), dt.date(2025, 6, 15), horizon=12)
    ... except MonthError as exc:
    ...     print(exc)
    month 2100-01 is outside the months this rule pack can sweep (2023-02 … 2026-06)
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from benefits.errors import BenefitsError
from benefits.period import BenefitMonth

if TYPE_CHECKING:
    from benefits.rulebook import RulePack

ENV_HORIZON = "BENEFITS_SWEEP_HORIZON_MONTHS"
DEFAULT_HORIZON = 12
MAX_HORIZON = 120
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
_MONTH = re.compile(MONTH_PATTERN)


class MonthError(BenefitsError, ValueError):
    """A month that is not YYYY-MM, or outside the months the rule pack can sweep."""


@dataclass(frozen=True)
class MonthRange:
    """The months a sweep may cover, both ends included (``latest`` None: no upper bound)."""

    earliest: BenefitMonth
    latest: BenefitMonth | None

    def __contains__(self, month: BenefitMonth) -> bool:
        return month >= self.earliest and (self.latest is None or month <= self.latest)

    @property
    def text(self) -> str:
        """``2023-02 … 2026-06`` (``2023-02 …`` without an upper bound)."""
        return f"{self.earliest} … {self.latest or ''}".rstrip()

    def labels(self) -> list[str]:
        """Every month of the range, oldest first (needs an upper bound)."""
        if self.latest is None:
            raise ValueError("an open range has no list of months")
        out, m = [], self.earliest
        while m <= self.latest:
            out.append(m.label)
            m = m.shift(1)
        return out

    def pattern(self) -> str:
        """A regular expression matching exactly the months of the range (for OpenAPI).

        >>> MonthRange(BenefitMonth(2024, 11), BenefitMonth(2025, 2)).pattern()
        '^(2024-(11|12)|2025-(01|02))$'
        """
        by_year: dict[str, list[str]] = {}
        for label in self.labels():
            by_year.setdefault(label[:4], []).append(label[5:])
        parts = [f"{year}-({'|'.join(months)})" for year, months in by_year.items()]
        return f"^({'|'.join(parts)})$"


def parse_month(text: str) -> BenefitMonth:
    """A YYYY-MM month, or MonthError saying what a month looks like.

    >>> parse_month("2025-13")
    Traceback (most recent call last):
    ...
    benefits.months.MonthError: month must look like 2025-01, got '2025-13'
    """
    value = text.strip() if isinstance(text, str) else ""
    if not _MONTH.match(value):
        raise MonthError(f"month must look like 2025-01, got {text!r}")
    return BenefitMonth(int(value[:4]), int(value[5:]))


def horizon_months(value: str | None = None) -> int:
    """The horizon in months: `value`, else ``$BENEFITS_SWEEP_HORIZON_MONTHS``, else 12.

    >>> horizon_months("6")
    6
    """
    raw = value if value is not None else os.environ.get(ENV_HORIZON)
    if raw is None or raw.strip() == "":
        return DEFAULT_HORIZON
    text = raw.strip()
    if not text.isdigit() or int(text) > MAX_HORIZON:
        raise MonthError(
            f"{ENV_HORIZON} must be a whole number of months from 0 to {MAX_HORIZON}, got {raw!r}"
        )
    return int(text)


def earliest_month(pack: RulePack) -> BenefitMonth:
    """The first month whose sweep finds every parameter in force for it and the month before."""
    first = max(min(param.values) for param in pack.parameters.values())
    return BenefitMonth(first.year, first.month).shift(1)


def sweep_range(
    pack: RulePack, today: dt.date | None, *, horizon: int | None = None
) -> MonthRange:
    """The months `pack` can sweep when it is `today` (None: no upper bound)."""
    latest = None
    if today is not None:
        ahead = horizon_months() if horizon is None else horizon
        latest = BenefitMonth(today.year, today.month).shift(ahead)
    return MonthRange(earliest_month(pack), latest)


def check_sweep_month(
    text: str, pack: RulePack, today: dt.date | None, *, horizon: int | None = None
) -> BenefitMonth:
    """`text` as a month the pack can sweep when it is `today`, or one clear MonthError.

    `today` comes from the wall clock of the caller (None: only the pack's earliest month
    bounds the range, as inside :func:`benefits.sweep.run_sweep`).
    """
    month = parse_month(text)
    span = sweep_range(pack, today, horizon=horizon)
    if month not in span:
        raise MonthError(
            f"month {month} is outside the months this rule pack can sweep ({span.text})"
        )
    return month


def today_utc() -> dt.date:
    """Today's date on the wall clock (UTC), for callers outside evaluation; freezegun moves it."""
    return dt.datetime.now(dt.UTC).date()
