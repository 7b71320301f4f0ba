"""The monthly dashboard: totals per policy and community, holds, alerts, change vs last month.

Figures come from the latest run recorded for the month (its per-policy counts and its
pay/credit rows in the ledger) and the month's batch; the previous month is the latest
recorded month before it.

Example:
    >>> view = dashboard(ctx, "2025-01")                        # doctest: +SKIP
    >>> view["totals"]["people"]                                 # doctest: +SKIP
    312
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from benefits.ledger.batchviews import add_up, kept_groups
from benefits.ledger.models import Batch, BatchItem, RunEntitlement, SweepRun
from benefits.ledger.money import ZERO
from benefits.web.context import WebContext
from benefits.web.format import split_label, to_decimal
from benefits.web.services import alerts as alert_service
from benefits.web.services import runs as run_service


def _communities(ctx: WebContext, run: SweepRun) -> list[dict[str, Any]]:
    kept = (run.counts or {}).get("communities")
    if isinstance(kept, dict):  # kept with the run at import (runs imported since issue 16)
        return [
            {"community": c or "—", "items": int(v["items"]), "people": int(v["people"]),
             "amount": to_decimal(v["amount"]), "held": int(v["held"])}
            for c, v in sorted(kept.items())
        ]  # fmt: skip
    run_id = run.id
    e = RunEntitlement
    with ctx.db.snapshot() as s:
        rows = s.execute(
            select(
                e.community,
                func.count(),
                func.count(func.distinct(e.id_index)),
                func.sum(e.amount),
                func.sum(case((e.held.is_(True), 1), else_=0)),
            )
            .where(e.run_id == run_id)
            .group_by(e.community)
            .order_by(e.community)
        ).all()
    return [
        {"community": c or "—", "items": int(n), "people": int(p), "amount": a or ZERO,
         "held": int(h or 0)}
        for c, n, p, a, h in rows
    ]  # fmt: skip


def _people(ctx: WebContext, run: SweepRun) -> int:
    kept = (run.counts or {}).get("people")
    if isinstance(kept, int):
        return kept
    run_id = run.id
    with ctx.db.snapshot() as s:
        return int(
            s.execute(
                select(func.count(func.distinct(RunEntitlement.id_index))).where(
                    RunEntitlement.run_id == run_id
                )
            ).scalar_one()
        )


def _policies(ctx: WebContext, run: SweepRun, prev: SweepRun | None) -> list[dict[str, Any]]:
    now = (run.counts or {}).get("policies", {})
    before = ((prev.counts or {}).get("policies", {})) if prev else {}
    out = []
    for pid, info in sorted(now.items(), key=lambda kv: kv[1].get("number", 99)):
        old = before.get(pid) or {}
        amount = to_decimal(info.get("amount"))
        old_amount = to_decimal(old.get("amount")) if old else None
        zh = info.get("name_zh") or pid
        en = info.get("name_en") or pid
        out.append(
            {
                "policy_id": pid,
                "number": info.get("number"),
                "name_zh": split_label(zh)[0],
                "name_en": en,
                "mode": info.get("mode"),
                "count": int(info.get("count", 0)),
                "amount": amount,
                "held": int(info.get("held", 0)),
                "held_amount": to_decimal(info.get("held_amount")),
                "prev_count": int(old.get("count", 0)) if old else None,
                "prev_amount": old_amount,
                "delta_count": int(info.get("count", 0)) - int(old.get("count", 0))
                if old
                else None,
                "delta_amount": amount - old_amount if old_amount is not None else None,
            }
        )
    return out


def dashboard(ctx: WebContext, month: str | None) -> dict[str, Any]:
    """Everything the dashboard shows for `month` (default: the latest month swept)."""
    months = run_service.months(ctx)
    if not months:
        return {"month": None, "months": [], "run": None}
    month = month if month in months else months[0]
    run = run_service.run_for_month(ctx, month)
    assert run is not None
    older = [m for m in months if m < month]
    prev = run_service.latest_run(ctx, older[0]) if older else None
    policies = _policies(ctx, run, prev)
    payable = [p for p in policies if p["mode"] in ("pay", "credit")]
    total = sum((p["amount"] for p in payable), ZERO)
    prev_total = (
        sum((p["prev_amount"] or ZERO for p in payable), ZERO) if prev is not None else None
    )
    people = _people(ctx, run)
    prev_people = _people(ctx, prev) if prev is not None else None
    with ctx.db.snapshot() as s:
        batches = list(
            s.execute(select(Batch).where(Batch.month == month).order_by(Batch.id.desc())).scalars()
        )
        live = next((b for b in batches if b.status != "rejected"), None)
        held_items, held_amount = 0, ZERO
        groups = kept_groups(s, live.id) if live is not None else None
        if groups is not None:
            held = [t for t in add_up(groups, "status") if t.key == "held"]
            held_items, held_amount = (held[0].items, held[0].amount) if held else (0, ZERO)
        elif live is not None:
            held_items, held_amount = s.execute(
                select(func.count(), func.coalesce(func.sum(BatchItem.amount), 0)).where(
                    BatchItem.batch_id == live.id, BatchItem.status == "held"
                )
            ).one()
    if live is None:
        held_items = sum(p["held"] for p in payable)
        held_amount = sum((p["held_amount"] for p in payable), ZERO)
    alert_rows = [
        {
            "kind": a["kind"],
            "rule": a["rule"],
            "label_zh": a["label_zh"],
            "label_en": a["label_en"],
            "total": sum(a["statuses"].values()),
            "open": a["statuses"].get("open", 0) + a["statuses"].get("acknowledged", 0),
        }
        for a in alert_service.counts_by_rule(ctx, month)
    ]
    alert_rows.sort(key=lambda a: (-a["total"], a["kind"], a["label_en"]))
    leads = sum(p["count"] for p in policies if p["mode"] == "lead")
    notices = sum(p["count"] for p in policies if p["mode"] == "notice")
    return {
        "month": month,
        "months": months,
        "run": run_service.run_row(run, []),
        "prev_month": older[0] if older else None,
        "policies": policies,
        "communities": _communities(ctx, run),
        "batches": batches,
        "live_batch": live,
        "totals": {
            "amount": total,
            "prev_amount": prev_total,
            "delta_amount": total - prev_total if prev_total is not None else None,
            "payments": sum(p["count"] for p in payable),
            "people": people,
            "prev_people": prev_people,
            "delta_people": people - prev_people if prev_people is not None else None,
            "held_items": int(held_items or 0),
            "held_amount": Decimal(held_amount or 0),
            "leads": leads,
            "notices": notices,
            "alerts": sum(a["total"] for a in alert_rows),
            "alerts_open": sum(a["open"] for a in alert_rows),
        },
        "alerts": alert_rows,
    }
