"""The cycle's stages, each recorded on the month's row so that a later attempt resumes:
landing → snapshot → delivery checks → sweep → data-quality gate → ledger run → draft batch →
alerts published."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

from benefits.cycle.attempt import Attempt
from benefits.cycle.checks import DeliveryVerdict, Previous, assess_delivery, quality_gate
from benefits.cycle.clock import deadline
from benefits.cycle.landing import check_manifests, scan_landing
from benefits.cycle.models import DONE, GATED, WAITING
from benefits.cycle.notify import OperatorAlert
from benefits.cycle.outbox import publish_alerts
from benefits.cycle.snapshot import SnapshotChanged, SnapshotStore
from benefits.cycle.store import Finish
from benefits.errors import IngestError
from benefits.ledger import IllegalTransition, NothingToBatch
from benefits.ledger.faults import crashpoint
from benefits.period import BenefitMonth


def work(ctx: Attempt) -> Finish:
    """Run the attempt's stages, resuming after the last one a previous attempt recorded."""
    prior = ctx.prior
    if prior is not None and prior.run_id is not None:
        ctx.details["resumed_from"] = "run"
        ctx.snapshot, ctx.late = prior.snapshot, list(prior.late_tables or [])
        return _from_run(ctx, prior.run_id, Path(prior.sweep_out or ""))
    if prior is not None and prior.stage == "swept" and prior.sweep_out:
        out = Path(prior.sweep_out)
        if (out / "summary.json").is_file() and (out / "entitlements.csv").is_file():
            ctx.details["resumed_from"] = "sweep"
            ctx.snapshot, ctx.late = prior.snapshot, list(prior.late_tables or [])
            return _from_sweep(ctx, out)
    return _from_landing(ctx)


def _verdict_finish(ctx: Attempt, verdict: DeliveryVerdict, digest: str) -> Finish:
    ctx.details["delivery"] = verdict.describe()
    if verdict.action == "wait":
        return ctx.finish(WAITING, verdict.reason, month={"stop_snapshot": None})
    reason = f"delivery stopped: {verdict.reason}"
    ctx.alerts.append(
        OperatorAlert("cycle.gated", ctx.month, "error", reason, details=verdict.describe())
    )
    return ctx.finish(GATED, reason, month={"stop_snapshot": digest, "stop_transient": False})


def _from_landing(ctx: Attempt) -> Finish:
    s = ctx.settings
    ctx.enter("landing")
    landing = ctx.landing or scan_landing(s.landing_dir, ctx.month, settle_seconds=s.settle_seconds)
    ctx.landing = landing
    ctx.details["landing"] = landing.describe()
    now = ctx.now()
    due = deadline(ctx.month, s.deadline_day, s.deadline_time, s.zone)
    ctx.details["deadline"] = due.isoformat()
    verdict = assess_delivery(landing, s, now, due)
    if verdict.action != "proceed":
        return _verdict_finish(ctx, verdict, landing.digest)

    ctx.enter("snapshot")
    snaps = SnapshotStore(s.store_dir)
    try:
        snap = snaps.take(landing)
    except SnapshotChanged as exc:
        ctx.details["delivery"] = {"action": "wait", "reason": str(exc)}
        return ctx.finish(WAITING, str(exc), month={"stop_snapshot": None})
    ctx.snapshot = snap.digest
    ctx.details["snapshot"] = {
        "digest": snap.digest,
        "folder": str(snap.folder),
        "files": snap.manifest["files"],
    }
    problems = snaps.verify(snap) + check_manifests(landing, snap.paths())
    verdict = assess_delivery(landing, s, now, due, problems)
    if verdict.action != "proceed":
        return _verdict_finish(ctx, verdict, snap.digest)
    ctx.details["delivery"] = verdict.describe()
    ctx.late = verdict.late
    if verdict.late:
        ctx.alerts.append(
            OperatorAlert(
                "cycle.late",
                ctx.month,
                "warning",
                verdict.reason,
                details={"late_tables": verdict.late},
            )
        )

    ctx.enter("sweep")
    from benefits.engines import run_engine
    from benefits.rulebook import load_pack

    out = Path(s.store_dir) / "runs" / ctx.month / f"attempt-{ctx.number:03d}"
    if out.exists():
        shutil.rmtree(out)
    try:  # the engine for the delivery's size (benefits.engines.choose_engine)
        result = run_engine(
            "auto", snap.folder, ctx.month, out, pack=load_pack(s.rules_dir),
            traces="parquet" if s.write_traces else "none",
        )  # fmt: skip
    except IngestError as exc:
        reason = f"the delivery cannot be swept: {exc}"
        ctx.alerts.append(OperatorAlert("cycle.gated", ctx.month, "error", reason))
        return ctx.finish(
            GATED, reason, month={"stop_snapshot": snap.digest, "stop_transient": False}
        )
    summary = result.summary
    summary["started_by"] = ctx.actor
    summary["cycle"] = {
        "attempt": ctx.number,
        "snapshot": snap.digest,
        "late_tables": verdict.late,
        "deadline": due.isoformat(),
    }
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    crashpoint("cycle:swept")

    ctx.enter("gate")
    payable = result.entitlements.filter(result.entitlements["mode"].is_in(["pay", "credit"]))
    payees = int(payable["id_no"].n_unique())
    amount = Decimal(summary["totals"]["pay_and_credit_amount"])
    previous_month = BenefitMonth.parse(ctx.month).previous.label
    prev = ctx.store.previous_run(previous_month)
    previous = None if prev is None else Previous(previous_month, prev[0], prev[1], prev[2])
    gate = quality_gate(summary, payees, amount, previous, s)
    ctx.details["gate"] = {
        "metrics": gate.metrics,
        "breaches": [b.message for b in gate.breaches] or None,
    }
    if not gate.passed:
        prior = ctx.prior
        accepted = (
            ctx.accept_gate is not None
            and prior is not None
            and prior.status == GATED
            and prior.stop_snapshot == snap.digest
        )
        if not accepted:
            reason = gate.reason()
            if ctx.accept_gate is not None:
                reason += " (the acceptance given was for another delivery or no gate stop)"
            ctx.alerts.append(
                OperatorAlert("cycle.gated", ctx.month, "error", reason, details=gate.metrics)
            )
            return ctx.finish(
                GATED,
                reason,
                month={
                    "stop_snapshot": snap.digest,
                    "stop_transient": False,
                    "metrics": gate.metrics,
                },
            )
        acceptance = {
            "by": ctx.actor,
            "reason": ctx.accept_gate,
            "snapshot": snap.digest,
            "breaches": [b.message for b in gate.breaches],
        }
        ctx.details["gate"]["accepted"] = acceptance
        ctx.extra_audit.append(("cycle.gate.accept", acceptance))
    ctx.record(
        stage="swept",
        snapshot=snap.digest,
        sweep_out=str(out),
        late_tables=verdict.late or None,
        metrics=gate.metrics,
        stop_snapshot=None,
        stop_transient=None,
    )
    return _from_sweep(ctx, out)


def _from_sweep(ctx: Attempt, out: Path) -> Finish:
    ctx.enter("import")
    imported = ctx.ledger.import_run(out, by=ctx.actor)
    crashpoint("cycle:imported")
    ctx.details["run"] = {
        "id": imported.run_id,
        "already": imported.already,
        "payable_rows": imported.payable_rows,
        "payable_total": f"{imported.payable_total:.2f}",
    }
    ctx.record(stage="imported", run_id=imported.run_id)
    return _from_run(ctx, imported.run_id, out)


def _from_run(ctx: Attempt, run_id: int, out: Path) -> Finish:
    ctx.enter("batch")
    batch = ctx.store.batch_of_run(run_id)
    note = ""
    if batch is None:
        try:
            batch = ctx.ledger.create_batch(run_id, by=ctx.actor)
        except NothingToBatch as exc:
            note = f"no batch: {exc}"
        except IllegalTransition as exc:
            reason = f"cannot create the draft batch: {exc}"
            ctx.alerts.append(OperatorAlert("cycle.gated", ctx.month, "error", reason))
            return ctx.finish(
                GATED,
                reason,
                run_id=run_id,
                month={"stop_snapshot": ctx.snapshot, "stop_transient": False},
            )
    crashpoint("cycle:batched")
    batch_id = batch.id if batch is not None else None
    if batch is not None:
        ctx.details["batch"] = {
            "id": batch.id,
            "status": batch.status,
            "items": batch.item_count,
            "total": f"{batch.total:.2f}",
        }
        ctx.record(stage="batched", batch_id=batch.id)

    ctx.enter("publish")
    alerts_csv = out / "alerts.csv"
    if not alerts_csv.is_file():
        raise FileNotFoundError(
            f"{alerts_csv}: the sweep output of run {run_id} is gone; cannot publish its alerts"
        )
    publication = publish_alerts(
        ctx.settings.store_dir, ctx.month, alerts_csv, run_id=run_id, batch_id=batch_id
    )
    hook_errors = ctx.notifier.published(publication)
    ctx.details["publication"] = {**publication, "hook_errors": hook_errors or None}
    crashpoint("cycle:published")
    ctx.stage = "done"
    if batch is not None:
        what = f"draft batch {batch.id} ({batch.item_count:,} items, {batch.total:,.2f} yuan)"
    else:
        what = note
    reason = f"{what} from run {run_id}; {publication['alerts']:,} alerts published"
    if ctx.late:
        reason += f"; proceeded without late table(s) {', '.join(ctx.late)}"
    return ctx.finish(
        DONE,
        reason,
        run_id=run_id,
        batch_id=batch_id,
        month={
            "stage": "published",
            "run_id": run_id,
            "batch_id": batch_id,
            "stop_snapshot": None,
            "stop_transient": None,
        },
    )
