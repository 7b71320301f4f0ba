"""The parameter calendar: for each parameter, its values, the months each applies to, which
are history and which are scheduled; and the yearly parameters still missing next year's value.

The value in force for a month is the newest whose effective date is on or before the
month's last day (handbook §0), so a value applies from the month of its effective date to
the month before the next value's month; a value followed by another in the same month never
applies. A parameter declared ``yearly: true`` in its parameter file (e.g. a standard tied to
last year's provincial urban income) expects a value effective in each calendar year: from a
configured day of the year on (``MM-DD``, ledger setting ``rules.yearly_due``, default
11-01), one with no value effective in the coming year is reported (:func:`missing_yearly`).

Pure functions of the pack and a date (no wall clock).

Example:
    >>> import datetime as dt
    >>> from benefits.rulebook import load_pack
    >>> cal = parameter_calendar(load_pack(), dt.date(2025, 3, 1))
    >>> [(e.value, e.months, e.state) for e in cal["dibao_std"].entries][-2:]
    [('1259', '2023-07 – 2024-12', 'past'), ('1301', 'from 2025-01', 'in force')]
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from benefits.errors import BenefitsError
from benefits.rulebook import Parameter, RulePack

DEFAULT_YEARLY_DUE = "11-01"
YEARLY_DUE_SETTING = "rules.yearly_due"
MMDD = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


def _label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def _month_before(year: int, month: int) -> tuple[int, int]:
    return (year, month - 1) if month > 1 else (year - 1, 12)


@dataclass(frozen=True)
class CalendarEntry:
    """One value of a parameter and the months it applies to."""

    effective: dt.date
    value: str
    first: str | None  # first month it applies to (None: never, superseded in its month)
    last: str | None  # last month (None: open-ended)
    state: str  # "past", "in force", "scheduled" or "never applies"

    @property
    def months(self) -> str:
        """'2023-07 – 2024-12', 'from 2025-01', '2026-01' or 'never (superseded in 2025-01)'."""
        if self.first is None:
            return f"never (superseded in {_label(self.effective.year, self.effective.month)})"
        if self.last is None:
            return f"from {self.first}"
        return self.first if self.first == self.last else f"{self.first} – {self.last}"


@dataclass(frozen=True)
class ParameterCalendar:
    """A parameter's calendar: its entries, oldest first."""

    name: str
    parameter: Parameter
    entries: list[CalendarEntry]

    @property
    def scheduled(self) -> list[CalendarEntry]:
        return [e for e in self.entries if e.state == "scheduled"]


def calendar_of(name: str, param: Parameter, today: dt.date) -> ParameterCalendar:
    """One parameter's calendar relative to `today`'s month."""
    days = sorted(param.values)
    now = (today.year, today.month)
    entries: list[CalendarEntry] = []
    for i, day in enumerate(days):
        start = (day.year, day.month)
        nxt = days[i + 1] if i + 1 < len(days) else None
        value = str(param.values[day])
        if nxt is not None and (nxt.year, nxt.month) == start:
            entries.append(CalendarEntry(day, value, None, None, "never applies"))
            continue
        end = _month_before(nxt.year, nxt.month) if nxt is not None else None
        if start > now:
            state = "scheduled"
        elif end is not None and end < now:
            state = "past"
        else:
            state = "in force"
        entries.append(CalendarEntry(day, value, _label(*start),
                                     _label(*end) if end else None, state))  # fmt: skip
    return ParameterCalendar(name, param, entries)


def parameter_calendar(pack: RulePack, today: dt.date) -> dict[str, ParameterCalendar]:
    """Every parameter's calendar, by name (sorted)."""
    return {n: calendar_of(n, p, today) for n, p in sorted(pack.parameters.items())}


def check_due(text: str) -> str:
    """A valid ``MM-DD`` day of the year, or BenefitsError naming the setting."""
    text = (text or "").strip()
    if not MMDD.match(text):
        raise BenefitsError(
            f"{YEARLY_DUE_SETTING} must be a day of the year as MM-DD (e.g. 11-01), got {text!r}"
        )
    return text


@dataclass(frozen=True)
class MissingYearly:
    """A yearly parameter without a value effective in `year`."""

    name: str
    label: str
    year: int
    latest: dt.date

    @property
    def message(self) -> str:
        return (
            f"yearly parameter {self.name} ({self.label}) has no value for {self.year} "
            f"(latest effective {self.latest.isoformat()}); add it to the rule pack and release it"
        )


def missing_yearly(pack: RulePack, today: dt.date, due: str = DEFAULT_YEARLY_DUE) -> list[
        MissingYearly]:  # fmt: skip
    """The yearly parameters with no value effective in the coming year, once `today` is on
    or after the `due` day (MM-DD) of its year; before it, none. A year already begun without
    its value is reported too."""
    month, day = (int(x) for x in check_due(due).split("-"))
    due_day = dt.date(today.year, month, min(day, 28) if month == 2 else day)
    years = [today.year] + ([today.year + 1] if today >= due_day else [])
    found = []
    for name, p in sorted(pack.parameters.items()):
        if not p.yearly:
            continue
        have = {d.year for d in p.values}
        for year in years:
            if year not in have and year > min(have):
                found.append(MissingYearly(name, p.label.en, year, max(p.values)))
    return found
