"""Checks before money: is the delivery complete, and does the sweep look like last month's?

**Delivery.** Complete when every expected table has a settled file and no department
manifest disagrees with its file. Until the deadline an incomplete or inconsistent delivery
*waits* (the department may still fix it). After the deadline the cycle *proceeds* without a
late table — naming it — unless the table is required (``persons``) or the delivery has a
problem (two files for one table, a manifest mismatch): then it *stops* for a human.

**Data-quality gate.** After the sweep and before the ledger: stop when a table quarantines
more than its limit, or when the number of payees or the pay + credit total moves more than
the limit against the previous month's run in the ledger.

Example:
    >>> s = CycleSettings(max_quarantine_rate=0.1, quarantine_min_rows=0)
    >>> summary = {"tables": {"deaths": {"read": 50, "accepted": 40, "quarantined": 10}}}
    >>> [b.check for b in quality_gate(summary, 5, Decimal("10"), None, s).breaches]
    ['quarantine_rate']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from benefits.cycle.landing import Landing
from benefits.cycle.settings import CycleSettings

Action = Literal["wait", "proceed", "stop"]


@dataclass
class DeliveryVerdict:
    """What to do with a delivery now, and why."""

    action: Action
    reason: str
    missing: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """JSON-able form for the run history."""
        return {
            "action": self.action,
            "reason": self.reason,
            "missing": self.missing,
            "late": self.late,
            "problems": self.problems,
        }


def _when(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M %Z")


def assess_delivery(
    landing: Landing,
    settings: CycleSettings,
    now: dt.datetime,
    due: dt.datetime,
    extra_problems: list[str] | None = None,
) -> DeliveryVerdict:
    """Wait, proceed or stop, for `landing` at time `now` with the deadline `due`.

    Example:
        >>> from pathlib import Path
        >>> from zoneinfo import ZoneInfo
        >>> z = ZoneInfo("Asia/Shanghai")
        >>> empty = Landing("2025-01", Path("landing/2025-01"), exists=False)
        >>> due = dt.datetime(2025, 1, 4, 12, tzinfo=z)
        >>> assess_delivery(empty, CycleSettings(), dt.datetime(2025, 1, 2, tzinfo=z), due).action
        'wait'
    """
    past = now >= due
    deadline_text = f"deadline {_when(due)}"
    if not landing.exists:
        if past:
            return DeliveryVerdict(
                "stop",
                f"no delivery in {landing.folder} by the {deadline_text}",
                missing=list(settings.expected_tables),
            )
        return DeliveryVerdict(
            "wait",
            f"no delivery in {landing.folder} yet ({deadline_text})",
            missing=list(settings.expected_tables),
        )
    problems = list(landing.problems) + list(extra_problems or [])
    for table, names in sorted(landing.duplicates.items()):
        problems.append(f"table {table} is delivered twice ({', '.join(names)}); keep one")
    arriving = sorted(t for t in landing.arriving if t in settings.expected_tables)
    missing = [t for t in settings.expected_tables if t not in landing.files and t not in arriving]
    if arriving:
        return DeliveryVerdict(
            "wait",
            f"still arriving: {', '.join(arriving)} (files being copied)",
            missing=missing + arriving,
            problems=problems,
        )
    if not past:
        if missing or problems:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if problems:
                parts.append("; ".join(problems))
            return DeliveryVerdict(
                "wait",
                f"{'; '.join(parts)} — waiting until the {deadline_text}",
                missing=missing,
                problems=problems,
            )
        return DeliveryVerdict("proceed", "delivery complete", problems=problems)
    required_missing = [t for t in missing if t in settings.required_tables]
    if required_missing or problems:
        parts = []
        if required_missing:
            parts.append(f"required table(s) {', '.join(required_missing)} missing")
        parts.extend(problems)
        return DeliveryVerdict(
            "stop",
            f"{'; '.join(parts)} after the {deadline_text}",
            missing=missing,
            problems=problems,
        )
    if missing:
        return DeliveryVerdict(
            "proceed",
            f"proceeding without late table(s) {', '.join(missing)} "
            f"(past the {deadline_text}; treated as empty)",
            missing=missing,
            late=missing,
        )
    return DeliveryVerdict("proceed", "delivery complete")


# ---------------------------------------------------------------------------------- gate


@dataclass(frozen=True)
class Previous:
    """The previous month's run in the ledger, for comparison."""

    month: str
    run_id: int
    payees: int
    amount: Decimal


@dataclass(frozen=True)
class Breach:
    """One gate check that failed."""

    check: str
    subject: str
    value: float
    limit: float
    message: str


@dataclass
class GateResult:
    """The gate's breaches (empty = pass) and the metrics it looked at."""

    breaches: list[Breach]
    metrics: dict[str, Any]

    @property
    def passed(self) -> bool:
        return not self.breaches

    def reason(self) -> str:
        """One line naming every breach."""
        return "data-quality gate: " + "; ".join(b.message for b in self.breaches)


def _change(now: Decimal | int, before: Decimal | int) -> float | None:
    if not before:
        return None
    return float((Decimal(now) - Decimal(before)) / Decimal(before))


def quality_gate(
    summary: dict[str, Any],
    payees: int,
    amount: Decimal,
    previous: Previous | None,
    settings: CycleSettings,
) -> GateResult:
    """Check a sweep's quarantine rates, payees and total against the limits in `settings`.

    `summary` is the sweep's summary.json; `payees` the people with a pay or credit row;
    `amount` their total; `previous` the previous month's run (None: nothing to compare).

    Example:
        >>> prev = Previous("2024-12", 1, 100, Decimal("1000"))
        >>> s = CycleSettings(max_payee_change=0.2)
        >>> [b.message for b in quality_gate({"tables": {}}, 70, Decimal("1000"), prev, s).breaches]
        ['payees 70 vs 100 in 2024-12 (-30.0%, limit ±20.0%)']
    """
    breaches: list[Breach] = []
    tables: dict[str, Any] = {}
    for table, info in summary.get("tables", {}).items():
        read, quarantined = int(info.get("read", 0)), int(info.get("quarantined", 0))
        rate = quarantined / read if read else 0.0
        limit = settings.quarantine_limit(table)
        tables[table] = {"read": read, "quarantined": quarantined, "rate": round(rate, 4)}
        if read >= max(settings.quarantine_min_rows, 1) and rate > limit:
            breaches.append(
                Breach(
                    "quarantine_rate",
                    table,
                    rate,
                    limit,
                    f"{table} quarantined {quarantined} of {read} rows "
                    f"({rate:.1%}, limit {limit:.1%})",
                )
            )
    metrics: dict[str, Any] = {"tables": tables, "payees": payees, "amount": f"{amount:.2f}"}
    if previous is not None:
        metrics["previous"] = {
            "month": previous.month,
            "run_id": previous.run_id,
            "payees": previous.payees,
            "amount": f"{previous.amount:.2f}",
        }
        for check, now, before, limit, label in (
            ("payee_change", payees, previous.payees, settings.max_payee_change, "payees"),
            ("amount_change", amount, previous.amount, settings.max_amount_change, "total"),
        ):
            change = _change(now, before)
            metrics[check] = None if change is None else round(change, 4)
            if change is not None and abs(change) > limit:
                shown = (
                    (f"{now}", f"{before}")
                    if label == "payees"
                    else (f"{Decimal(now):.2f}", f"{Decimal(before):.2f}")
                )
                breaches.append(
                    Breach(
                        check,
                        label,
                        change,
                        limit,
                        f"{label} {shown[0]} vs {shown[1]} in {previous.month} "
                        f"({change:+.1%}, limit ±{limit:.1%})",
                    )
                )
    return GateResult(breaches, metrics)
