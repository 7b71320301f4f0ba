"""Sweep runs: start a sweep from the web, record it in the ledger, list and show runs.

Example:
    >>> result = start_sweep(ctx, "2025-01", by="wang.fang")      # doctest: +SKIP
    >>> result.run_id, result.already                               # doctest: +SKIP
    (1, False)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benefits.errors import BenefitsError
from benefits.ledger import runs as ledger_runs
from benefits.ledger.errors import InvalidInput, NotFound
from benefits.ledger.models import OPEN_STATUSES, Batch, SweepRun
from benefits.ledger.runs import ImportResult
from benefits.months import MonthError, MonthRange, check_sweep_month, sweep_range
from benefits.web.context import WebContext
from benefits.web.services import alerts as alert_service


def sweep_months(ctx: WebContext) -> MonthRange:
    """The months a sweep may cover now (the rule pack's first month to the horizon)."""
    return sweep_range(ctx.pack, ctx.db.now().date())


def check_month(ctx: WebContext, month: str | None) -> str:
    """A month the rule pack can sweep now, or InvalidInput with one clear message."""
    try:
        return check_sweep_month(month or "", ctx.pack, ctx.db.now().date()).label
    except MonthError as exc:
        raise InvalidInput(str(exc)) from exc


def months(ctx: WebContext) -> list[str]:
    """Months with at least one recorded run, newest first."""
    with ctx.db.snapshot() as s:
        return list(
            s.execute(select(SweepRun.month).distinct().order_by(SweepRun.month.desc())).scalars()
        )


def latest_run(ctx: WebContext, month: str) -> SweepRun | None:
    """The newest run recorded for `month`."""
    with ctx.db.snapshot() as s:
        return s.execute(
            select(SweepRun).where(SweepRun.month == month).order_by(SweepRun.id.desc()).limit(1)
        ).scalar_one_or_none()


def get_run(ctx: WebContext, run_id: int) -> SweepRun:
    """A run by id, or NotFound."""
    with ctx.db.snapshot() as s:
        run = s.get(SweepRun, run_id)
    if run is None:
        raise NotFound(f"there is no sweep run {run_id}")
    return run


def run_rows(ctx: WebContext, limit: int = 200) -> list[dict[str, Any]]:
    """Runs newest first with the batches made from them (and whether one can be made)."""
    with ctx.db.snapshot() as s:
        runs = list(s.execute(select(SweepRun).order_by(SweepRun.id.desc()).limit(limit)).scalars())
        batch_rows = s.execute(select(Batch.run_id, Batch.id, Batch.status)).all()
        open_by_month = _open_batches(s)
    by_run: dict[int, list[dict[str, Any]]] = {}
    for run_id, batch_id, status in batch_rows:
        by_run.setdefault(run_id, []).append({"id": batch_id, "status": status})
    rows = []
    for r in runs:
        row = run_row(r, by_run.get(r.id, []))
        row["batch_block"] = batch_block(row["batches"], open_by_month.get(r.month))
        rows.append(row)
    return rows


def _open_batches(s: Any) -> dict[str, dict[str, Any]]:
    """The open (not yet exported or rejected) batch of each month."""
    found = s.execute(
        select(Batch.month, Batch.id, Batch.status).where(Batch.status.in_(OPEN_STATUSES))
    ).all()
    return {m: {"id": b, "status": st} for m, b, st in found}


def batch_block(batches: list[dict[str, Any]], open_batch: dict[str, Any] | None) -> str | None:
    """Why the ledger would refuse a batch from this run now (None: it can be created).

    >>> batch_block([{"id": 3, "status": "rejected"}], None)[:9]
    '此测算的批次 #3'
    """
    for b in batches:
        if b["status"] == "rejected":
            return (f"此测算的批次 #{b['id']} 已退回，请重新测算 / batch {b['id']} from this run "
                    "was rejected: run a new sweep of the month")  # fmt: skip
    if batches:
        b = batches[-1]
        return f"已由此测算生成批次 #{b['id']} / batch {b['id']} was created from this run"
    if open_batch is not None:
        return (f"本月已有未完成的批次 #{open_batch['id']}（{open_batch['status']}）/ the month "
                f"has open batch {open_batch['id']} ({open_batch['status']}): finish or "
                "reject it first")  # fmt: skip
    return None


def run_row(run: SweepRun, batches: list[dict[str, Any]]) -> dict[str, Any]:
    """One run as plain data (pages and API)."""
    tables = (run.counts or {}).get("tables", {})
    read = sum(int(t.get("read", 0)) for t in tables.values())
    quarantined = sum(int(t.get("quarantined", 0)) for t in tables.values())
    return {
        "id": run.id,
        "month": run.month,
        "imported_at": run.imported_at,
        "imported_by": run.imported_by,
        "started_by": run.started_by,
        "rule_pack_version": run.rule_pack_version,
        "rule_pack_hash": run.rule_pack_hash,
        "fingerprint": run.fingerprint,
        "entitlements_sha256": run.entitlements_sha256,
        "entitlement_rows": run.entitlement_rows,
        "payable_rows": run.payable_rows,
        "payable_total": run.payable_total,
        "rows_read": read,
        "rows_quarantined": quarantined,
        "source": run.source,
        "batches": sorted(batches, key=lambda b: b["id"]),
    }


def run_detail(ctx: WebContext, run_id: int) -> dict[str, Any]:
    """A run with its input files and hashes, per-table counts and per-policy totals."""
    run = get_run(ctx, run_id)
    with ctx.db.snapshot() as s:
        batches = [
            {"id": b, "status": st}
            for b, st in s.execute(
                select(Batch.id, Batch.status).where(Batch.run_id == run_id).order_by(Batch.id)
            ).all()
        ]
        open_batch = _open_batches(s).get(run.month)
    summary = ctx.run_summary(run)
    counts = run.counts or {}
    row = run_row(run, batches)
    row["batch_block"] = batch_block(row["batches"], open_batch)
    return {
        "run": row,
        "inputs": run.inputs or {},
        "tables": counts.get("tables", {}),
        "policies": dict(sorted((counts.get("policies") or {}).items(),
                                key=lambda kv: (int(kv[1].get("number") or 10**6), kv[0]))),
        "alerts": summary.get("alerts", {}),
        "outputs": summary.get("outputs", {}),
        "data": summary.get("data"),
        "run_seconds": summary.get("run_seconds"),
        "folder_present": bool(summary),
    }


def _out_folder(ctx: WebContext, month: str, by: str) -> Path:
    stamp = ctx.db.now().strftime("%Y%m%dT%H%M%S")
    safe = re.sub(r"[^a-z0-9._-]", "_", by.lower())
    return Path(ctx.settings.work) / "sweeps" / f"{month}-{stamp}-{safe}"


def start_sweep(ctx: WebContext, month: str, by: str) -> ImportResult:
    """Sweep `month` on the configured delivery, record the run, fill the alerts inbox.

    A run whose inputs (file hashes), rule pack (hash) and month are identical to a recorded
    run's — and whose folder is still there — is reused without sweeping (``reused`` and
    ``already`` are True, audited as ``run.reuse``). A sweep that turns out identical to a
    recorded run (``already``) does not keep a second output folder.
    """
    from benefits import __version__
    from benefits.engines import run_engine
    from benefits.rulebook import default_rules_folder, load_pack, pack_digest

    month = check_month(ctx, month)
    delivery = ctx.settings.delivery_for(month)
    inputs = ledger_runs.delivery_inputs(delivery)
    rules = Path(ctx.settings.rules or default_rules_folder())
    if inputs is not None and (rules / "pack.yaml").is_file():
        same = ledger_runs.find_identical_run(ctx.db, month, pack_digest(rules), inputs,
                                              __version__)  # fmt: skip
        if same is not None:  # unchanged inputs, rule pack and month: no second folder
            ctx.know_run(same)
            alert_service.import_alerts(ctx, same)
            return ledger_runs.record_reuse(ctx.db, same, by)
    out = _out_folder(ctx, month, by)
    try:
        pack = load_pack(ctx.settings.rules)
        result = run_engine("auto", delivery, month, out, pack=pack)  # the size's engine
    except BenefitsError as exc:
        raise InvalidInput(f"the sweep of {month} on {delivery} stopped: {exc}") from exc
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["started_by"] = by
    summary_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", "utf-8")
    imported = ctx.ledger.import_run(out, by=by)
    run = get_run(ctx, imported.run_id)
    if imported.already and Path(run.source) != out.resolve():
        shutil.rmtree(out)  # the same sweep is recorded with its own folder: keep one copy
    ctx.know_run(run)
    alert_service.import_alerts(ctx, run)
    del result
    return imported


def run_for_month(ctx: WebContext, month: str) -> SweepRun | None:
    """The latest run for a month, made known to the directory and the inbox."""
    run = latest_run(ctx, month)
    if run is not None:
        ctx.know_run(run)
        alert_service.import_alerts(ctx, run)
    return run


def count_runs(ctx: WebContext) -> int:
    """Number of recorded runs."""
    with ctx.db.snapshot() as s:
        return int(s.execute(select(func.count()).select_from(SweepRun)).scalar_one())


def suggested_month(ctx: WebContext) -> str:
    """The month an officer most likely sweeps next: the latest one swept, or this month."""
    found = months(ctx)
    if found:
        return found[0]
    today = ctx.db.now().date()
    return f"{today.year}-{today.month:02d}" if isinstance(today, dt.date) else "2025-01"
