"""One month's cycle as one idempotent unit of work: the month's lock and its attempts.

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

The stages are in :mod:`benefits.cycle.stages`; :func:`benefits.cycle.retries.run_with_retries`
repeats an attempt that failed for a transient reason.

Example:
    >>> from benefits.cycle.settings import load_settings
    >>> outcome = run_cycle(load_settings("benefits.toml"), "2025-01")     # doctest: +SKIP
    >>> outcome.status, outcome.message                                   # doctest: +SKIP
    ('done', '2025-01: draft batch 1 (160 items, 86,908.00 yuan) from run 1; 57 alerts published')
"""

from __future__ import annotations

import logging
import os
import time

from benefits.cycle.attempt import Attempt
from benefits.cycle.clock import Clock, as_utc, resolve_month, utc_now
from benefits.cycle.landing import Landing, scan_landing
from benefits.cycle.lock import HOST, LeaseLock, LockBusy
from benefits.cycle.models import DONE, FAILED, GATED, CycleMonth
from benefits.cycle.notify import Notifier, OperatorAlert
from benefits.cycle.outcome import ALREADY, BUSY, CycleOutcome, first_line, is_transient
from benefits.cycle.settings import CycleSettings
from benefits.cycle.stages import work
from benefits.cycle.store import CycleStore
from benefits.errors import BenefitsError
from benefits.ledger import Ledger

log = logging.getLogger("benefits.cycle")

PAUSE_ENV = "BENEFITS_CYCLE_TEST_PAUSE"  # seconds to wait once the lock is held (tests only)


def instance_name() -> str:
    """This process: ``host pid N``."""
    return f"{HOST} pid {os.getpid()}"


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
            f"{label}: {type(exc).__name__}: {first_line(exc)}",
            transient=transient,
        )
    finally:
        if owns_ledger:
            led.close()


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
        ctx = Attempt(
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
            finish = work(ctx)
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
            reason = f"failed at stage {ctx.stage}: {type(exc).__name__}: {first_line(exc)}"
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
