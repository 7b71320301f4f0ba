"""``benefits events``: apply change events to a month's decisions and print what changed.

Example:
    $ benefits events apply --data extracts/2025-02 --month 2025-02 events.jsonl
    $ cat events.jsonl | benefits events apply --data extracts/2025-02 --format jsonl -
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from benefits.errors import BenefitsError
from benefits.events.schema import EventError, parse_event
from benefits.period import BenefitMonth

events_app = typer.Typer(
    name="events",
    help=(
        "Instant re-evaluation: apply departmental change events (a death, a new disability "
        "certificate, a 低保 approval …) to the month's decisions through the same rule pack, "
        "and print the entitlements and alerts that change."
    ),
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@events_app.callback()
def main() -> None:
    """Apply departmental change events at once, through the same rule pack."""


@events_app.command("reactions")
def reactions(
    rules: Annotated[Path | None, typer.Option(help="Rule pack folder [default: bundled].")] = None,
    doc: Annotated[
        Path | None,
        typer.Option(help="Rewrite the generated reactions section of this file (docs/events.md)."),
    ] = None,
) -> None:
    """List the event reactions and correlations of the rule pack (rules/events.yaml)."""
    from benefits.rulebook import load_pack
    from benefits.rulesdoc import render_reactions, splice_reactions

    try:
        pack = load_pack(rules)
        if doc is None:
            sys.stdout.write(render_reactions(pack) + "\n")
            return
        doc.write_text(splice_reactions(doc.read_text(encoding="utf-8"), pack), encoding="utf-8")
    except (BenefitsError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    err.print(f"wrote the reactions of {pack.folder / 'events.yaml'} into {doc}")


@events_app.command("types")
def types() -> None:
    """List the event types (schema version 1): departments, fields, the record changed."""
    from benefits.events.schema import DEPARTMENTS, EVENT_TYPES, SCHEMA_VERSION

    out = Console(highlight=False, soft_wrap=True)
    out.print(f"schema_version {SCHEMA_VERSION}; every event has event_id, type, department, "
              "effective_date (YYYY-MM-DD)")  # fmt: skip
    common = {"event_id", "schema_version", "type", "department", "effective_date"}
    for name, cls in EVENT_TYPES.items():
        fields = [
            f + ("" if info.is_required() else "?")
            for f, info in cls.model_fields.items()
            if f not in common
        ]
        depts = ", ".join(f"{d} ({DEPARTMENTS[d]})" for d in cls.departments)
        out.print(f"\n{name} → {cls.table}: {cls.description}")
        out.print(f"  fields: {', '.join(fields)}")
        out.print(f"  departments: {depts}")


def _read_lines(file: str) -> tuple[list[str], str]:
    if file == "-":
        return sys.stdin.read().splitlines(), "stdin"
    path = Path(file)
    if not path.is_file():
        raise typer.BadParameter(f"{file}: no such file", param_hint="FILE")
    return path.read_text(encoding="utf-8-sig").splitlines(), str(path)


def default_month(lines: list[str]) -> str | None:
    """The month after the newest effective date among the valid events (None if none).

    >>> default_month(['{"event_id": "a", "type": "death_registered", "department": "police",'
    ...                ' "effective_date": "2025-01-10", "id_no": "11010519491231002X"}'])
    '2025-02'
    """
    newest: dt.date | None = None
    for line in lines:
        if not line.strip():
            continue
        try:
            event = parse_event(line)
        except EventError:
            continue
        if newest is None or event.effective_date > newest:
            newest = event.effective_date
    if newest is None:
        return None
    return BenefitMonth(newest.year, newest.month).shift(1).label


def _text(result: Any, out: Console) -> None:
    head = f"{result.event_id or '?'} {result.type or '?'}: {result.status}"
    if result.error:
        out.print(f"{head} — {result.error}")
        return
    if result.status == "duplicate":
        out.print(f"{head} (already applied: nothing changes)")
        return
    if not result.rows and result.notes:  # a report confirming an earlier one
        out.print(f"{head} — {'; '.join(result.notes)}")
        return
    rows = ", ".join(f"{r.op} {r.table} row {'/'.join(map(str, r.rows))}" for r in result.rows)
    hh = ", ".join(result.households) or "none"
    out.print(f"{head} — {rows}; households {hh}; {len(result.changes)} change(s)")
    for note in result.notes:
        out.print(f"  {note}")
    for c in result.changes:
        out.print(f"  {c.id_no}  {c.describe()}")
    for h in result.holds:
        out.print(
            f"  ledger: held item {h['item']} of batch {h['batch']} ({h['batch_status']}): "
            f"{h['policy_id']} {h['month']}"
        )
    if result.ledger_error:
        out.print(f"  ledger: NOT held — {result.ledger_error}")


@events_app.command("apply")
def apply(
    file: Annotated[str, typer.Argument(help="JSONL file of events (one per line), or -.")],
    data: Annotated[Path, typer.Option(help="The month's delivery folder (as for the sweep).")],
    month: Annotated[
        str | None,
        typer.Option(help="Benefit month YYYY-MM [default: the month after the newest event]."),
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Rule pack folder [default: bundled].")] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="BENEFITS_DATABASE_URL",
            help="Ledger database URL: a stop holds the person's pending item in an unexported "
            "batch at once [default: $BENEFITS_DATABASE_URL; none: no ledger].",
        ),
    ] = None,
    by: Annotated[str, typer.Option(envvar="BENEFITS_USER", help="Actor for the audit log.")] = (
        "events"
    ),
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            help="Where refused events go [default: FILE.dead.jsonl, or events.dead.jsonl "
            "for stdin]."
        ),
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option(help="Journal of applied events: replayed first, ids stay applied."),
    ] = None,
    output: Annotated[str, typer.Option("--format", help="text or jsonl.")] = "text",
    store: Annotated[
        str | None,
        typer.Option(
            envvar="BENEFITS_EVENTS_STORE",
            help="Event store URL (postgresql://… or sqlite:///file, filled by `benefits "
            "events load-store`): rows, decisions and applied event ids are read per event "
            "from it, not held in memory; --data is then not read [default: "
            "$BENEFITS_EVENTS_STORE; none: in memory].",
        ),
    ] = None,
    store_schema: Annotated[
        str, typer.Option(help="PostgreSQL schema of the event store.")
    ] = "events_store",
    in_process: Annotated[
        bool,
        typer.Option(hidden=True, help="No effect: eligibility is always decided in process."),
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(hidden=True, help="No effect: eligibility uses no rule engine any more."),
    ] = None,
) -> None:
    """Apply events and print the changed entitlements (start, stop, amount) and alerts.

    Exit code 0 when every event was applied (or already had been), 1 when some went to the
    dead-letter file, 2 when the data, rule pack or ledger cannot be used.
    """
    from benefits.events.service import EventService

    if output not in ("text", "jsonl"):
        raise typer.BadParameter("--format is text or jsonl")
    if month is not None and not MONTH_RE.match(month):
        raise typer.BadParameter(f"month must look like 2025-01, got {month!r}")
    lines, source = _read_lines(file)
    month = month or default_month(lines)
    if dead_letter is None:
        dead_letter = Path("events.dead.jsonl") if file == "-" else Path(f"{file}.dead.jsonl")
    if month is None:
        err.print("error: no valid event to apply; give --month YYYY-MM to record refused ones")
        raise typer.Exit(2)
    ledger = None
    out = Console(highlight=False, soft_wrap=True)
    try:
        from benefits.months import check_sweep_month, today_utc
        from benefits.rulebook import load_pack

        pack = load_pack(rules)
        check_sweep_month(month, pack, today_utc())
        if db:
            from benefits.ledger import Ledger

            ledger = Ledger(db)
            ledger.db.require_ready()
        service = EventService(
            data, month, pack=pack, ledger=ledger, by=by, dead_letter=dead_letter,
            journal=journal, store=store, store_schema=store_schema,
        )  # fmt: skip
    except (BenefitsError, SQLAlchemyError, ValueError, OSError) as exc:
        err.print(f"error: {exc}")
        if ledger is not None:
            ledger.close()
        raise typer.Exit(2) from exc
    refused = 0
    try:
        for result in service.apply_many(lines, source=source):
            if output == "jsonl":
                sys.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
            else:
                _text(result, out)
            refused += not result.ok
        counts = service.status()["events"]
    except Exception as exc:
        if store is None or not _store_error(exc):
            raise
        # the event store went away mid-run: the event in hand was rolled back, not lost
        err.print(f"error: event store: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        raise typer.Exit(2) from exc
    finally:
        service.close()
        if ledger is not None:
            ledger.close()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    refused_to = f"; refused → {dead_letter}" if refused else ""
    err.print(f"{month}: {summary or 'no events'}{refused_to}")
    if refused:
        raise typer.Exit(1)


def _store_error(exc: Exception) -> bool:
    """Whether `exc` is the event store's database failing (psycopg or sqlite3)."""
    import sqlite3

    import psycopg

    return isinstance(exc, psycopg.Error | sqlite3.Error)


@events_app.command("load-store")
def load_store_command(
    data: Annotated[Path, typer.Option(help="The month's delivery folder (as for the sweep).")],
    month: Annotated[str, typer.Option(help="Benefit month YYYY-MM.")],
    store: Annotated[
        str,
        typer.Option(
            envvar="BENEFITS_EVENTS_STORE",
            help="Event store URL: postgresql://… (bulk loaded with COPY) or sqlite:///file "
            "[default: $BENEFITS_EVENTS_STORE].",
        ),
    ],
    store_schema: Annotated[
        str, typer.Option(help="PostgreSQL schema of the event store (replaced).")
    ] = "events_store",
    rules: Annotated[Path | None, typer.Option(help="Rule pack folder [default: bundled].")] = None,
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Household partitions to load in, one at a time (memory follows a "
            "partition, not the city) [default: about 150,000 people each; 1: whole].",
        ),
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Folder for the staging [default: system temporary].")
    ] = None,
) -> None:
    """Load a month's delivery and the sweep's decisions into an event store (replacing it).

    The delivery is staged and decided partition by partition, as the partitioned sweep
    does. Then `benefits events apply --store URL` reads one household's rows per event
    from it and several service processes can share it. Exit code 2 when the data, rule
    pack or store cannot be used.
    """
    import time

    from benefits.events.storeload import load_store

    if not MONTH_RE.match(month):
        raise typer.BadParameter(f"month must look like 2025-01, got {month!r}")
    t0 = time.perf_counter()
    try:
        counts = load_store(data, month, store, rules=rules, schema=store_schema,
                            partitions=partitions, work_dir=work_dir,
                            progress=lambda stage: err.print(f"{month}: {stage}"))  # fmt: skip
    except (BenefitsError, SQLAlchemyError, ValueError, OSError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    except Exception as exc:  # a driver's own error (psycopg, sqlite3): one line, no traceback
        err.print(f"error: event store: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        raise typer.Exit(2) from exc
    persons = counts.get("persons", 0)
    err.print(
        f"{month}: loaded {persons:,} persons, {sum(counts.values()) - persons:,} other rows "
        f"and decisions into the event store in {time.perf_counter() - t0:.1f} s"
    )
