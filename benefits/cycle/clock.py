"""Time as an input: the injectable clock, 'auto' months, deadlines and the schedule's calendar.

A clock is any callable returning the current time (aware, or naive meaning UTC). The default
reads the wall clock through :func:`benefits.ledger.clock.utc_now`, which freezegun moves.
Months and deadlines are reckoned in the configured time zone: in Hangzhou, 2025-02 begins at
2025-01-31 16:00 UTC.

Example:
    >>> import datetime as dt
    >>> from zoneinfo import ZoneInfo
    >>> now = dt.datetime(2025, 1, 31, 16, 30, tzinfo=dt.UTC)
    >>> current_month(now, ZoneInfo("Asia/Shanghai")), current_month(now, ZoneInfo("UTC"))
    ('2025-02', '2025-01')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from benefits.ledger.clock import Clock, as_utc, utc_now
from benefits.period import BenefitMonth

__all__ = [
    "Clock",
    "as_utc",
    "current_month",
    "deadline",
    "first_fire_in_month",
    "months_back",
    "resolve_month",
    "utc_now",
]


def current_month(now: dt.datetime, zone: ZoneInfo) -> str:
    """The month (YYYY-MM) that `now` falls in on the calendar of `zone`."""
    local = as_utc(now).astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def resolve_month(
    month: str, now: dt.datetime, zone: ZoneInfo, *, rules: Path | None = None,
    check: bool = False,
) -> str:
    """`month` checked, or the current month of the calendar when it is ``auto``.

    With ``check``, the month must also be one the rule pack in `rules` can sweep at `now`
    (:mod:`benefits.months`: its first month to the horizon), else MonthError (a ValueError).

    >>> resolve_month("2025-03", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), ZoneInfo("UTC"))
    '2025-03'
    """
    if month.strip().lower() == "auto":
        label = current_month(now, zone)
    else:
        label = BenefitMonth.parse(month).label
    if check:
        from benefits.months import check_sweep_month
        from benefits.rulebook import load_pack

        today = as_utc(now).astimezone(zone).date()
        check_sweep_month(label, load_pack(rules), today)
    return label


def deadline(month: str, day: int, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """When month `month`'s delivery is due: `day` of that month at `at`, in `zone` (aware).

    >>> deadline("2025-01", 4, dt.time(12), ZoneInfo("Asia/Shanghai")).isoformat()
    '2025-01-04T12:00:00+08:00'
    """
    m = BenefitMonth.parse(month)
    return dt.datetime.combine(dt.date(m.year, m.month, day), at, tzinfo=zone)


def month_start(month: str, zone: ZoneInfo) -> dt.datetime:
    """Midnight at the start of `month` in `zone` (aware)."""
    return dt.datetime.combine(BenefitMonth.parse(month).start, dt.time(0), tzinfo=zone)


def months_back(month: str, count: int) -> list[str]:
    """`month` and the `count` months before it, oldest first.

    >>> months_back("2025-01", 2)
    ['2024-11', '2024-12', '2025-01']
    """
    m = BenefitMonth.parse(month)
    return [m.shift(-i).label for i in range(count, -1, -1)]


def first_fire_in_month(schedule: str, month: str, zone: ZoneInfo) -> dt.datetime | None:
    """The first time the crontab `schedule` fires in `month` (None when it never does).

    >>> first_fire_in_month("0 8-20 1-10 * *", "2025-02", ZoneInfo("Asia/Shanghai")).isoformat()
    '2025-02-01T08:00:00+08:00'
    """
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(schedule, timezone=zone)
    start = month_start(month, zone)
    fire = trigger.get_next_fire_time(None, start)
    if fire is None or current_month(fire, zone) != month:
        return None
    return fire


def fire_times(
    schedule: str, zone: ZoneInfo, after: dt.datetime, count: int
) -> Iterator[dt.datetime]:
    """The next `count` fire times of the crontab `schedule` after `after` (for `cycle status`).

    >>> t = dt.datetime(2025, 1, 31, 23, 59, tzinfo=ZoneInfo("Asia/Shanghai"))
    >>> [f.isoformat() for f in fire_times("0 8-20 1-10 * *", t.tzinfo, t, 2)]
    ['2025-02-01T08:00:00+08:00', '2025-02-01T09:00:00+08:00']
    """
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(schedule, timezone=zone)
    previous: dt.datetime | None = None
    now = as_utc(after).astimezone(zone)
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            return
        yield fire
        previous = fire
        now = fire + dt.timedelta(microseconds=1)
