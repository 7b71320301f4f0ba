"""One month's cycle as one idempotent unit of work, and its retries.

:func:`run_cycle` takes the month's lock, then goes stage by stage — landing → snapshot →
delivery checks → sweep → data-quality gate → ledger run → draft batch → alerts published —
recording each step on the month's row, so that a later attempt knows where to go on:

- a **finished** month does nothing and says so (no attempt is recorded);
- a month **being run** by another live instance does nothing and says so (``busy``);
- an attempt whose process died is closed as ``interrupted`` and the new attempt **resumes**:
  from the draft batch when the ledger run exists, from the import when the sweep passed the
  gate (importing the same folder again is a no-op in the ledger), else from the start with a
  fresh snapshot; the ledger's own keys (run fingerprint, one open batch per month) make a
  repeated step harmless;
- a month **stopped** (gated, or failed for a reason a retry cannot cure) stays stopped until
  its delivery changes or a human reruns it with ``retry`` or ``accept_gate`` — an hourly
  schedule does not re-alert every hour.

:func:`run_with_retries` repeats an attempt that failed for a transient reason (the database
unreachable, a lost lock, a disk error) with exponential backoff, and alerts the operator
when retries run out.

Example:
    >>> from benefits.cycle.settings import load_settings
    >>> outcome = run_with_retries(load_settings("benefits.toml"), "2025-01")  # doctest: +SKIP
    >>> outcome.status, outcome.message                                      # doctest: +SKIP
    ('done', '2025-01: draft batch 1 (160 items, 86,908.00 yuan) from run 1; 57 alerts published')
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from benefits.cycle.checks import DeliveryVerdict, Previous, assess_delivery, quality_gate
from benefits.cycle.clock import Clock, as_utc, deadline, resolve_month, utc_now
from benefits.cycle.landing import Landing, check_manifests, scan_landing
from benefits.cycle.lock import HOST, LeaseLock, LockBusy, LockLost
from benefits.cycle.models import DONE, FAILED, GATED, WAITING, CycleMonth
from benefits.cycle.notify import Notifier, OperatorAlert
from benefits.cycle.outbox import publish_alerts
from benefits.cycle.settings import CycleSettings
from benefits.cycle.snapshot import SnapshotChanged, SnapshotStore
from benefits.cycle.store import CycleStore, Finish
from benefits.errors import BenefitsError, IngestError
from benefits.ledger import Conflict, IllegalTransition, Ledger, NothingToBatch
from benefits.ledger.faults import crashpoint
from benefits.period import BenefitMonth

log = logging.getLogger("benefits.cycle")

# Outcomes that are not recorded as attempts.
ALREADY, BUSY = "already", "busy"
EXIT_CODES = {DONE: 0, ALREADY: 0, FAILED: 2, WAITING: 3, BUSY: 4, GATED: 5}
PAUSE_ENV = "BENEFITS_CYCLE_TEST_PAUSE"  # seconds to wait once the lock is held (tests only)


@dataclass
class CycleOutcome:
    """What a call to :func:`run_cycle` did.

    ``status`` is ``done``, ``already`` (finished before), ``busy`` (another instance runs
    it), ``waiting`` (delivery incomplete before the deadline), ``gated`` (stopped for a
    human) or ``failed``; ``exit_code`` maps it for the command line.
    """

    month: str
    status: str
    message: str
    attempt: int | None = None
    run_id: int | None = None
    batch_id: int | None = None
    late_tables: list[str] = field(default_factory=list)
    transient: bool = False

    @property
    def exit_code(self) -> int:
        """0 done/already, 2 failed, 3 waiting, 4 busy, 5 gated."""
        return EXIT_CODES[self.status]


def instance_name() -> str:
    """This process: ``host pid N``."""
    return f"{HOST} pid {os.getpid()}"


def is_transient(exc: BaseException) -> bool:
    """Whether a retry may cure the failure: database unreachable, lost lock, I/O trouble.

    >>> is_transient(TimeoutError()), is_transient(ValueError())
    (True, False)
    """
    from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | DisconnectionError | PoolTimeout):
        return True
    if isinstance(exc, LockLost | LockBusy | Conflict | SnapshotChanged):
        return True
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    if isinstance(exc, OSError):
        transient = (errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ENOSPC, errno.ESTALE)
        return exc.errno in transient
    return False


def ensure_schema(ledger: Ledger, actor: str) -> None:
    """Create or upgrade the ledger's tables when they are not at this code's revision."""
    current, needed = ledger.revision()
    if current == needed:
        return
    try:
        ledger.init(by=actor)
    except Exception:
        current, needed = ledger.revision()
        if current != needed:  # not a concurrent instance that just did it
            raise


def _pause_point() -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if seconds:
        time.sleep(float(seconds))


class _Stop(Exception):
    """A stage decided to end the attempt with this Finish."""

    def __init__(self, finish: Finish) -> None:
        self.finish = finish
        super().__init__(finish.reason)


@dataclass
class _Attempt:
    """Everything one attempt works with."""

    settings: CycleSettings
    ledger: Ledger
    store: CycleStore
    notifier: Notifier
    clock: Clock
    month: str
    actor: str
    lock: LeaseLock
    prior: CycleMonth | None
    attempt_id: int
    number: int
    accept_gate: str | None
    landing: Landing | None = None
    stage: str = "start"
    details: dict[str, Any] = field(default_factory=dict)
    month_values: dict[str, Any] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    snapshot: str | None = None
    alerts: list[OperatorAlert] = field(default_factory=list)
    extra_audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def now(self) -> dt.datetime:
        return as_utc(self.clock())

    def enter(self, stage: str) -> None:
        """Move to `stage` (checks the lock is still ours; notes the stage for the record)."""
        self.lock.check()
        self.stage = stage
        self.store.set_attempt_stage(self.attempt_id, stage)

    def record(self, **values: Any) -> None:
        """Save progress on the month's row at once (what a resumed attempt reads)."""
        self.month_values.update(values)
        self.store.update_month(self.month, self.now(), **values)

    def finish(self, outcome: str, reason: str, **kw: Any) -> Finish:
        return Finish(
            outcome=outcome,
            stage=self.stage,
            reason=reason,
            details={**self.details, "late_tables": self.late or None},
            month=kw.pop("month", {}),
            snapshot=self.snapshot,
            extra_audit=self.extra_audit,
            **kw,
        )


# ------------------------------------------------------------------------------ run_cycle


def run_cycle(
    settings: CycleSettings,
    month: str = "auto",
    *,
    trigger: str = "cli",
    by: str | None = None,
    accept_gate: str | None = None,
    retry: bool = False,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    ledger: Ledger | None = None,
) -> CycleOutcome:
    """Run month `month`'s cycle once (``auto``: the current month of the calendar).

    `trigger` is recorded (``cli``, ``schedule``, ``catch-up``, ``retry``); `by` names who
    acts in the ledger (default ``settings.actor``). `accept_gate` (a reason) lets a human
    pass the data-quality gate for the delivery it stopped; `retry` re-runs a stopped month
    whose delivery did not change. `clock` is injectable for tests.

    Example:
        >>> run_cycle(settings, "2025-01").status         # doctest: +SKIP
        'done'
        >>> run_cycle(settings, "2025-01").message        # doctest: +SKIP
        '2025-01 is already done (attempt 1, 2025-01-03 08:00 UTC): run 1, batch 1; nothing to do'
    """
    clock = clock or utc_now
    notifier = notifier or Notifier(settings)
    actor = by or settings.actor
    label = resolve_month(month, as_utc(clock()), settings.zone, rules=settings.rules_dir,
                          check=True)
    owns_ledger = ledger is None
    led = ledger or Ledger(settings.database_url, clock=clock)
    try:
        ensure_schema(led, actor)
        return _run_locked(
            settings,
            led,
            label,
            trigger=trigger,
            actor=actor,
            accept_gate=accept_gate,
            retry=retry,
            clock=clock,
            notifier=notifier,
        )
    except Exception as exc:
        transient = is_transient(exc)
        log.error(
            "cycle %s could not be recorded (%s): %s",
            label,
            "transient" if transient else "permanent",
            exc,
            exc_info=not transient,
        )
        return CycleOutcome(
            label,
            FAILED,
            f"{label}: {type(exc).__name__}: {_first_line(exc)}",
            transient=transient,
        )
    finally:
        if owns_ledger:
            led.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _already(state: CycleMonth) -> CycleOutcome:
    when = as_utc(state.finished_at or state.updated_at).strftime("%Y-%m-%d %H:%M UTC")
    batch = f"batch {state.batch_id}" if state.batch_id else "no batch"
    return CycleOutcome(
        state.month,
        ALREADY,
        f"{state.month} is already done ({when}): run {state.run_id}, {batch}; nothing to do",
        run_id=state.run_id,
        batch_id=state.batch_id,
        late_tables=state.late_tables or [],
    )


def _still_stopped(
    settings: CycleSettings, state: CycleMonth | None, retry: bool, accept_gate: str | None
) -> tuple[CycleOutcome | None, Landing | None]:
    """A stopped month whose delivery did not change stays stopped (no attempt, no alert)."""
    if state is None or state.status not in (GATED, FAILED) or state.stop_transient:
        return None, None
    if retry or accept_gate:
        return None, None
    landing = None
    if state.run_id is None:
        landing = scan_landing(
            settings.landing_dir, state.month, settle_seconds=settings.settle_seconds
        )
        if landing.digest != state.stop_snapshot:
            return None, landing  # a new delivery: try again
    hint = "--accept-gate REASON --by NAME" if state.status == GATED else "--retry"
    return (
        CycleOutcome(
            state.month,
            state.status,
            f"{state.month} is still {state.status} (attempt {state.attempts}): {state.reason} "
            f"— nothing changed since; fix the delivery, or rerun with {hint}",
            run_id=state.run_id,
            batch_id=state.batch_id,
        ),
        landing,
    )


def _run_locked(
    settings: CycleSettings,
    ledger: Ledger,
    month: str,
    *,
    trigger: str,
    actor: str,
    accept_gate: str | None,
    retry: bool,
    clock: Clock,
    notifier: Notifier,
) -> CycleOutcome:
    store = CycleStore(ledger.db)
    state = store.month(month)
    if state is not None and state.status == DONE:
        return _already(state)
    lock = LeaseLock(ledger.db, f"month:{month}", settings.lock_lease_seconds)
    try:
        took_over = lock.acquire()
    except LockBusy as busy:
        return CycleOutcome(
            month,
            BUSY,
            f"{month} is being run by another instance ({busy.holder.describe()}); nothing to do",
        )
    try:
        _pause_point()
        state = store.month(month)
        if state is not None and state.status == DONE:
            return _already(state)
        stopped, landing = _still_stopped(settings, state, retry, accept_gate)
        if stopped is not None:
            return stopped
        now = as_utc(clock())
        attempt, _ = store.begin_attempt(
            month,
            trigger=trigger,
            instance=instance_name(),
            actor=actor,
            now=now,
            took_over=took_over,
        )
        ctx = _Attempt(
            settings,
            ledger,
            store,
            notifier,
            clock,
            month,
            actor,
            lock,
            state,
            attempt.id,
            attempt.number,
            accept_gate,
            landing,
        )
        if took_over is not None:
            ctx.details["took_over"] = took_over.to_json()
        started = time.monotonic()
        try:
            finish = _work(ctx)
        except _Stop as stop:
            finish = stop.finish
        except Exception as exc:
            transient = is_transient(exc)
            log.error(
                "cycle %s attempt %d failed at stage %s: %s",
                month,
                attempt.number,
                ctx.stage,
                exc,
                exc_info=not isinstance(exc, BenefitsError),
            )
            ctx.details["error"] = {"type": type(exc).__name__, "message": str(exc)[:2000]}
            reason = f"failed at stage {ctx.stage}: {type(exc).__name__}: {_first_line(exc)}"
            finish = ctx.finish(
                FAILED,
                reason,
                transient=transient,
                month={
                    "stop_snapshot": ctx.snapshot or (ctx.landing.digest if ctx.landing else None),
                    "stop_transient": transient,
                },
            )
            if not transient:
                ctx.alerts.append(OperatorAlert("cycle.failed", month, "error", reason))
        duration = time.monotonic() - started
        done = store.finish_attempt(attempt.id, finish, now=as_utc(clock()), duration=duration)
        for alert in ctx.alerts:
            alert.attempt = attempt.number
            alert.details.setdefault("stage", finish.stage)
            notifier.alert(alert)
        row = store.month(month)
        return CycleOutcome(
            month,
            finish.outcome,
            f"{month}: {finish.reason}",
            attempt=attempt.number,
            run_id=done.run_id,
            batch_id=done.batch_id,
            late_tables=(row.late_tables if row else None) or [],
            transient=bool(finish.transient),
        )
    finally:
        lock.release()


# ----------------------------------------------------------------------------- the stages


def _work(ctx: _Attempt) -> Finish:
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


def _verdict_finish(ctx: _Attempt, verdict: DeliveryVerdict, digest: str) -> Finish:
    ctx.details["delivery"] = verdict.describe()
    if verdict.action == "wait":
        return ctx.finish(WAITING, verdict.reason, month={"stop_snapshot": None})
    reason = f"delivery stopped: {verdict.reason}"
    ctx.alerts.append(
        OperatorAlert("cycle.gated", ctx.month, "error", reason, details=verdict.describe())
    )
    return ctx.finish(GATED, reason, month={"stop_snapshot": digest, "stop_transient": False})


def _from_landing(ctx: _Attempt) -> Finish:
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
    from benefits.sweep import run_sweep

    out = Path(s.store_dir) / "runs" / ctx.month / f"attempt-{ctx.number:03d}"
    if out.exists():
        shutil.rmtree(out)
    try:
        result = run_sweep(
            snap.folder, ctx.month, out=out, rules=s.rules_dir, write_traces=s.write_traces
        )
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


def _from_sweep(ctx: _Attempt, out: Path) -> Finish:
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


def _from_run(ctx: _Attempt, run_id: int, out: Path) -> Finish:
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


# ---------------------------------------------------------------------------- retries


def backoff_delays(settings: CycleSettings) -> list[float]:
    """The waits before each retry: doubling from the first, capped.

    >>> backoff_delays(CycleSettings(retry_attempts=4, retry_backoff_seconds=30,
    ...                              retry_backoff_max_seconds=100))
    [30.0, 60.0, 100.0, 100.0]
    """
    first, cap = settings.retry_backoff_seconds, settings.retry_backoff_max_seconds
    return [float(min(first * 2**i, cap)) for i in range(settings.retry_attempts)]


def run_with_retries(
    settings: CycleSettings,
    month: str = "auto",
    *,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    trigger: str = "cli",
    **kwargs: Any,
) -> CycleOutcome:
    """:func:`run_cycle`, retried with backoff while it fails for a transient reason.

    `sleep` waits between attempts (a ``threading.Event.wait`` stops early when it returns
    True). Other keyword arguments go to :func:`run_cycle`.

    Example:
        >>> run_with_retries(settings, "auto", trigger="schedule").exit_code   # doctest: +SKIP
        0
    """
    clock = clock or utc_now
    notifier = notifier or Notifier(settings)
    label = resolve_month(month, as_utc(clock()), settings.zone, rules=settings.rules_dir,
                          check=True)
    delays = backoff_delays(settings)
    outcome = run_cycle(settings, label, clock=clock, notifier=notifier, trigger=trigger, **kwargs)
    for delay in delays:
        if outcome.status != FAILED or not outcome.transient:
            return outcome
        log.warning("cycle %s: %s — retrying in %.0f s", label, outcome.message, delay)
        if sleep(delay) is True:
            return outcome
        outcome = run_cycle(
            settings, label, clock=clock, notifier=notifier, trigger="retry", **kwargs
        )
    if outcome.status == FAILED and outcome.transient:
        notifier.alert(
            OperatorAlert(
                "cycle.failed",
                label,
                "error",
                f"gave up after {len(delays) + 1} attempt(s): {outcome.message}",
                attempt=outcome.attempt,
                details={"transient": True},
            )
        )
    return outcome
