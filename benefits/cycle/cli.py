"""Command line of the monthly cycle: ``benefits cycle …`` and ``benefits scheduler``.

Register in ``benefits/cli.py``::

    from benefits.cycle.cli import cycle_app, scheduler
    app.add_typer(cycle_app, name="cycle")
    app.command("scheduler")(scheduler)

(``python -m benefits.cycle …`` runs the same commands without the registration.) Every
command takes ``--config FILE`` (TOML or YAML; default ``$BENEFITS_CONFIG``) and ``--db URL``
(default ``$BENEFITS_DATABASE_URL``).

Exit codes of ``run`` and ``catch-up``: 0 done (or already done), 2 failed, 3 waiting for the
delivery, 4 another instance is running the month, 5 stopped for a human (gate or delivery).

Example:
    $ benefits cycle run --month 2025-01
    $ benefits cycle run --month auto
    $ benefits cycle run --month 2025-01 --accept-gate "civil affairs confirmed the dip" --by alice
    $ benefits cycle status
    $ benefits cycle history --month 2025-01
    $ benefits scheduler
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from benefits.cycle.outcome import CycleOutcome
    from benefits.cycle.settings import CycleSettings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

cycle_app = typer.Typer(
    name="cycle",
    help=(
        "The scheduled monthly cycle: take the month's delivery from the landing folder, "
        "check it, sweep, record the run, create the draft batch, publish the alerts — once."
    ),
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="BENEFITS_CONFIG",
        show_default=False,
        help="Settings file (TOML or YAML; keys at top level or under [cycle]).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        show_default=False,
        help="Ledger database URL (default $BENEFITS_DATABASE_URL, else sqlite:///benefits.sqlite).",
    ),
]


def _settings(config: Path | None, db: str | None) -> CycleSettings:
    from pydantic import ValidationError

    from benefits.cycle.settings import SettingsError, load_settings

    try:
        return load_settings(config, **({"database_url": db} if db else {}))
    except (SettingsError, ValidationError) as exc:
        err.print(f"[bold red]error:[/] settings: {exc}", highlight=False)
        raise typer.Exit(2) from exc


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _report(outcome: CycleOutcome) -> None:
    colour = {"done": "green", "already": "green", "waiting": "yellow", "busy": "yellow"}.get(
        outcome.status, "red"
    )
    out.print(f"[bold {colour}]{outcome.status}[/] {outcome.message}", highlight=False)


@cycle_app.command("run")
def run_cmd(
    month: Annotated[
        str, typer.Option(help="Benefit month YYYY-MM, or 'auto' for the current month.")
    ] = "auto",
    config: ConfigOpt = None,
    db: DbOpt = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            envvar="BENEFITS_USER",
            show_default=False,
            help="Who acts (recorded); default the configured actor 'cycle'.",
        ),
    ] = None,
    accept_gate: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Pass the data-quality gate that stopped this delivery; the reason.",
        ),
    ] = None,
    retry: Annotated[
        bool, typer.Option(help="Run a stopped month again although its delivery is unchanged.")
    ] = False,
    retries: Annotated[
        bool, typer.Option(help="Retry transient failures with backoff (per the settings).")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Run one month's cycle (idempotent: a finished month does nothing and says so)."""
    from benefits.cycle.retries import run_with_retries

    _logging(verbose)
    if accept_gate is not None and not by:
        err.print("[bold red]error:[/] --accept-gate needs --by NAME (who accepts)")
        raise typer.Exit(2)
    settings = _settings(config, db)
    if not retries:
        settings = settings.model_copy(update={"retry_attempts": 0})
    try:
        outcome = run_with_retries(settings, month, by=by, accept_gate=accept_gate, retry=retry)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    _report(outcome)
    raise typer.Exit(outcome.exit_code)


@cycle_app.command("catch-up")
def catch_up_cmd(
    config: ConfigOpt = None,
    db: DbOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Run every due month (what the built-in scheduler does at each tick; for cron/systemd).

    Exits with the most serious exit code among the months run (0 when none is due).
    """
    from benefits.cycle.scheduler import catch_up

    _logging(verbose)
    outcomes = catch_up(_settings(config, db), trigger="schedule")
    for outcome in outcomes:
        _report(outcome)
    if not outcomes:
        out.print("no month is due")
    order = [0, 3, 4, 5, 2]
    codes = [o.exit_code for o in outcomes] or [0]
    raise typer.Exit(max(codes, key=order.index))


def _when(value: Any) -> str:
    if value is None:
        return "—"
    from benefits.ledger.clock import as_utc

    return as_utc(value).strftime("%Y-%m-%d %H:%M")


@cycle_app.command("status")
def status_cmd(
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Where each month's cycle stands, locks held now, and the next scheduled times."""
    from benefits.cycle.clock import fire_times, utc_now
    from benefits.cycle.store import CycleStore
    from benefits.ledger import Ledger

    settings = _settings(config, db)
    with Ledger(settings.database_url) as ledger:
        _ready(ledger)
        store = CycleStore(ledger.db)
        months, locks = store.months(), store.locks()
    upcoming = list(fire_times(settings.schedule, settings.zone, utc_now(), 3))
    if as_json:
        data = {
            "months": [
                {
                    "month": m.month,
                    "status": m.status,
                    "stage": m.stage,
                    "attempts": m.attempts,
                    "run_id": m.run_id,
                    "batch_id": m.batch_id,
                    "late_tables": m.late_tables,
                    "reason": m.reason,
                    "updated_at": _when(m.updated_at),
                }
                for m in months
            ],
            "locks": [
                {
                    "name": lk.name,
                    "host": lk.host,
                    "pid": lk.pid,
                    "expires_at": _when(lk.expires_at),
                }
                for lk in locks
            ],
            "next_runs": [t.isoformat() for t in upcoming],
        }
        out.print_json(json.dumps(data, ensure_ascii=False))
        return
    t = Table(title=f"Monthly cycle — {ledger.url}")
    for col in ("month", "status", "stage", "attempts", "run", "batch", "updated (UTC)"):
        t.add_column(col, no_wrap=True)
    t.add_column("reason", overflow="fold", min_width=30)
    for m in months:
        t.add_row(
            m.month,
            m.status,
            m.stage or "—",
            str(m.attempts),
            str(m.run_id or "—"),
            str(m.batch_id or "—"),
            _when(m.updated_at),
            m.reason or "",
        )
    out.print(t)
    for lk in locks:
        out.print(f"lock {lk.name}: held by {lk.host} pid {lk.pid} until {_when(lk.expires_at)}")
    when = ", ".join(f"{x:%Y-%m-%d %H:%M %Z}" for x in upcoming) or "never"
    out.print(f"schedule {settings.schedule!r} ({settings.timezone}); next: {when}")


@cycle_app.command("history")
def history_cmd(
    month: Annotated[str | None, typer.Option(help="Only this month (YYYY-MM).")] = None,
    last: Annotated[int, typer.Option(help="How many attempts, newest first.")] = 30,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with details).")] = False,
) -> None:
    """Every attempt: when, trigger, instance, outcome, stage, duration and reason."""
    from benefits.cycle.store import CycleStore
    from benefits.ledger import Ledger

    settings = _settings(config, db)
    with Ledger(settings.database_url) as ledger:
        _ready(ledger)
        attempts = CycleStore(ledger.db).attempts(month, last)
    if as_json:
        rows = [
            {
                "id": a.id,
                "month": a.month,
                "attempt": a.number,
                "trigger": a.trigger,
                "instance": a.instance,
                "by": a.actor,
                "started_at": _when(a.started_at),
                "finished_at": _when(a.finished_at),
                "duration_seconds": a.duration_seconds,
                "outcome": a.outcome,
                "stage": a.stage,
                "reason": a.reason,
                "snapshot": a.snapshot,
                "run_id": a.run_id,
                "batch_id": a.batch_id,
                "transient": a.transient,
                "details": a.details,
            }
            for a in attempts
        ]
        out.print_json(json.dumps(rows, ensure_ascii=False, default=str))
        return
    t = Table(title="Cycle run history" + (f" — {month}" if month else ""))
    for col in ("month", "#", "started (UTC)", "trigger", "outcome", "stage", "s"):
        t.add_column(col, no_wrap=True)
    t.add_column("reason", overflow="fold", min_width=30)
    for a in attempts:
        t.add_row(
            a.month,
            str(a.number),
            _when(a.started_at),
            a.trigger,
            a.outcome,
            a.stage or "—",
            f"{a.duration_seconds:.1f}" if a.duration_seconds is not None else "—",
            a.reason or "",
        )
    out.print(t)


def _ready(ledger: Any) -> None:
    from benefits.ledger.errors import NotInitialised

    try:
        ledger.db.require_ready()
    except NotInitialised as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc


def scheduler(
    config: ConfigOpt = None,
    db: DbOpt = None,
    catch_up: Annotated[bool, typer.Option(help="Run missed and due months at start.")] = True,
) -> None:
    """Run the monthly cycle on its schedule until stopped (Ctrl-C or SIGTERM).

    The schedule, calendar and everything else come from the settings; the job state and the
    month locks live in the ledger database, so several instances are safe.
    """
    from benefits.cycle.scheduler import start_scheduler

    _logging(True)
    settings = _settings(config, db)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        logging.getLogger("benefits.cycle").info("signal %d: stopping the scheduler", signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    sched = start_scheduler(settings, catch_up_on_start=catch_up)
    out.print(
        f"cycle scheduler running: {settings.schedule!r} ({settings.timezone}); "
        f"next {sched.next_run()}; Ctrl-C to stop",
        highlight=False,
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sched.shutdown(wait=True)
    out.print("cycle scheduler stopped")
