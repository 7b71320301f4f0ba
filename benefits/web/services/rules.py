"""The rules page: each policy with its conditions, amounts and parameter history, and the
parameter calendar (the months each value applies to; history, in force or scheduled).

Read from the loaded rule pack, so it shows exactly what the sweep compiles.

Example:
    >>> view = rules_view(ctx)                                    # doctest: +SKIP
    >>> view["policies"][0]["id"]                                 # doctest: +SKIP
    'dibao_allowance'
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from benefits.errors import BenefitsError
from benefits.expr import names_in
from benefits.paramcalendar import DEFAULT_YEARLY_DUE, YEARLY_DUE_SETTING, calendar_of
from benefits.paramcalendar import missing_yearly as _missing
from benefits.rulebook import Parameter, Policy, RulePack
from benefits.web.context import WebContext

MID_MONTH_RULE = {
    "zh": "某月适用的参数值，是生效日期不晚于该月最后一天的最新值。因此月中生效的标准适用于该月"
    "整月：待遇按月认定、按整月发放，不按天折算，同一个月内只适用一个标准（政策手册 §0）。",
    "en": "The value in force for a month is the newest one whose effective date is on or before "
    "the month's last day, so a standard that takes effect mid-month applies to that whole "
    "month: benefits are decided per month and paid for whole months, never prorated by "
    "days, so one month has one standard (policy handbook §0).",
}


def _param_view(name: str, p: Parameter, today: dt.date) -> dict[str, Any]:
    cal = calendar_of(name, p, today)
    return {
        "name": name,
        "label_zh": p.label.zh,
        "label_en": p.label.en,
        "unit": p.unit,
        "basis": p.basis,
        "published": p.published,
        "history": [
            {"from": d.isoformat(), "value": str(v), "whole_month": first_month(d)}
            for d, v in sorted(p.values.items())
        ],
        "yearly": p.yearly,
        # the calendar (issue 15): the months each value applies to, history or scheduled
        "calendar": [
            {
                "from": e.effective.isoformat(),
                "value": e.value,
                "months": e.months,
                "state": e.state,
            }
            for e in cal.entries
        ],
    }


def first_month(day: dt.date) -> str | None:
    """The month a value effective mid-month applies to in full (None on a 1st).

    The value in force for a month is the newest whose effective date is on or before the
    month's last day, so a standard effective on 23 January applies to all of January.

    >>> first_month(dt.date(2025, 1, 23)), first_month(dt.date(2023, 1, 1))
    ('2025-01', None)
    """
    return None if day.day == 1 else f"{day.year:04d}-{day.month:02d}"


def _policy_params(pack: RulePack, policy: Policy) -> list[str]:
    found: list[str] = []
    for _field, text in policy.expressions():
        for n in names_in(text):
            if n in pack.parameters and n not in found:
                found.append(n)
    return found


def _amount_cases(policy: Policy) -> list[dict[str, str | None]]:
    if isinstance(policy.amount, str):
        return [{"when": None, "value": policy.amount}]
    return [{"when": c.when, "value": c.value} for c in policy.amount]


def policy_view(pack: RulePack, policy: Policy) -> dict[str, Any]:
    """One policy as plain data."""
    exclusions = [
        {
            "id": e.id,
            "label_zh": e.label.zh,
            "label_en": e.label.en,
            "exclude": e.exclude,
            "winner": e.winner,
            "when": e.when,
            "basis": e.basis,
        }
        for e in pack.exclusions.exclusions
        if policy.id in e.between
    ]
    return {
        "id": policy.id,
        "number": policy.number,
        "version": policy.version,
        "valid_from": policy.valid_from.isoformat(),
        "valid_to": policy.valid_to.isoformat() if policy.valid_to else None,
        "name_zh": policy.name.zh,
        "name_en": policy.name.en,
        "group": policy.group,
        "mode": policy.mode,
        "basis": [b.model_dump(exclude_none=True) for b in policy.basis],
        "considers": policy.considers,
        "conditions": [
            {"id": c.id, "label_zh": c.label.zh, "label_en": c.label.en, "when": c.when}
            for c in policy.conditions
        ],
        "let": dict(policy.let),
        "components": dict(policy.components),
        "amount": _amount_cases(policy),
        "amount_label_zh": policy.amount_label.zh if policy.amount_label else None,
        "amount_label_en": policy.amount_label.en if policy.amount_label else None,
        "parameters": _policy_params(pack, policy),
        "exclusions": exclusions,
        "file": policy.source_file,
    }


def rules_view(ctx: WebContext) -> dict[str, Any]:
    """The whole rule pack for the rules page and API."""
    pack = ctx.pack
    today = ctx.db.now().date()
    release = ctx.ledger.release_in_force()
    return {
        "today": today.isoformat(),
        "release": None
        if release is None
        else {
            "id": release.id,
            "approved_by": release.approved_by,
            "approved_at": release.approved_at.isoformat() if release.approved_at else None,
        },
        "mid_month_rule": MID_MONTH_RULE,
        "name": pack.info.name,
        "version": pack.version,
        "hash": pack.digest,
        "district": f"{pack.info.district_name} ({pack.info.district_code})",
        "precedence": list(pack.info.status_precedence),
        "policies": [policy_view(pack, p) for p in pack.policies],
        "parameters": {n: _param_view(n, p, today) for n, p in sorted(pack.parameters.items())},
        "missing_yearly": [m.message for m in missing_yearly(pack, today, yearly_due(ctx))],
        "alerts": [
            {
                "kind": a.kind,
                "label_zh": a.label.zh,
                "label_en": a.label.en,
                "when": a.when,
                "policy": a.policy,
                "due": a.due,
                "holds": a.holds,
                "basis": a.basis,
            }
            for a in pack.alerts
        ],
    }


def yearly_due(ctx: WebContext) -> str:
    """The configured day (MM-DD) from which next year's yearly values are expected."""
    from benefits.ledger.settings import get_setting

    return get_setting(ctx.db, YEARLY_DUE_SETTING, DEFAULT_YEARLY_DUE) or DEFAULT_YEARLY_DUE


def missing_yearly(pack: RulePack, today: dt.date, due: str) -> list[Any]:
    """The yearly parameters missing a value (none when the setting is not a valid MM-DD)."""
    try:
        return _missing(pack, today, due)
    except BenefitsError:
        return []
