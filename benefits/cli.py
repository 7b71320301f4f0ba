"""The `benefits` command line.

Example:
    $ benefits synth --persons 3000 --seed 1 --out datasets/sample
    $ benefits sweep --data datasets/sample --month 2025-01 --out out/2025-01
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="benefits",
    help=(
        "Proactive welfare eligibility engine (民生直达 / 免申即享). Reads the departmental "
        "extracts of one month, decides who is entitled to each of the 12 livelihood policies, "
        "and writes entitlements, alerts, quarantined rows and audit traces."
    ),
    no_args_is_help=True,
    add_completion=False,
)


@cache
def console() -> Console:
    """The console of progress and errors (standard error; rich is imported when first used:
    a quiet sweep that succeeds never needs it)."""
    from rich.console import Console

    return Console(stderr=True)


MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(value: str) -> str:
    if not MONTH_RE.match(value):
        raise typer.BadParameter(f"month must look like 2025-01, got {value!r}")
    return value


TRACE_FORMATS = ("parquet", "jsonl", "both", "none")  # as benefits.traces (not imported here)


def _trace_format(value: str) -> str:
    if value not in TRACE_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(TRACE_FORMATS)}, got {value!r}")
    return value


@app.command()
def sweep(
    data: Annotated[
        Path, typer.Option(help="Folder with one file per departmental table (CSV or Parquet).")
    ],
    month: Annotated[str, typer.Option(help="Benefit month to decide, YYYY-MM.", callback=_month)],
    out: Annotated[Path, typer.Option(help="Folder to write the sweep outputs into.")],
    rules: Annotated[
        Path | None,
        typer.Option(
            help="Rule pack folder (default: $BENEFITS_RULES, else the clone's "
            "rules/, else the copy installed with the package)."
        ),
    ] = None,
    traces: Annotated[
        str,
        typer.Option(
            help="Audit traces (one record per person × policy considered): parquet (the "
            "traces/ folder, read by the web app), jsonl (traces.jsonl), both, or none.",
            callback=_trace_format,
        ),
    ] = "parquet",
    no_traces: Annotated[
        bool, typer.Option("--no-traces", help="Write no traces (same as --traces none).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no table.")] = False,
    seal: Annotated[
        bool | None,
        typer.Option(
            "--seal/--no-seal",
            help="Seal the output files with the data key of "
            "$BENEFITS_KEY_FILE (default: $BENEFITS_SEAL_FILES; see docs/security.md).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="auto (partitioned for a large persons file, else single), single, "
            "partitioned (bounded memory, all cores) or spark."
        ),
    ] = "auto",
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Household partitions (partitioned/spark; default: about "
            "150,000 people each, at least 2 per worker).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes of the partitioned engine (default: cores)."),
    ] = None,
    master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL for --engine spark: local[2], yarn, k8s://…, "
            "spark://… (default: local[*] or spark-submit's)."
        ),
    ] = None,
) -> None:
    """Run the monthly eligibility sweep for one benefit month.

    The month must lie between the first month the rule pack can decide and the current month
    plus $BENEFITS_SWEEP_HORIZON_MONTHS (default 12); others are refused with exit code 2.

    Writes entitlements.csv/.parquet, alerts.csv/.parquet, quarantine.csv/.parquet,
    the traces (traces/ folder of Parquet files, or traces.jsonl) and summary.json into OUT,
    and prints the run summary.
    """
    from benefits.engines import run_engine
    from benefits.errors import BenefitsError
    from benefits.months import check_sweep_month, today_utc
    from benefits.progress import stage_progress
    from benefits.rulebook import load_pack
    from benefits.sealedfiles import ENV_SEAL

    if seal is not None:  # this process only: run_sweep reads the setting
        os.environ[ENV_SEAL] = "1" if seal else "0"
    try:
        pack = load_pack(rules)
        check_sweep_month(month, pack, today_utc())
        with stage_progress(console() if not quiet else None, enabled=not quiet) as progress:
            result = run_engine(
                engine, data, month, out, pack=pack, traces="none" if no_traces else traces,
                progress=progress, partitions=partitions, workers=workers, master=master,
            )  # fmt: skip
    except BenefitsError as exc:
        _error_line(str(exc))
        raise typer.Exit(2) from exc
    except OSError as exc:  # e.g. the output folder cannot be written
        _error_line(f"cannot write the outputs to {exc.filename or out}: {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    if not quiet:
        _print_summary(result.summary)
    # The process's exit is all that is left: the interpreter's last garbage collections would
    # walk every object of the libraries imported (0.05-0.15 s) to free what the exit frees
    # anyway. Frozen objects (gc.freeze) are not walked.
    atexit.unregister(gc.freeze)  # once, however many sweeps ran in this process
    atexit.register(gc.freeze)


def _error_line(message: str) -> None:
    """Print an error as exactly one line on stderr: never wrapped, never read as markup."""
    from rich.markup import escape

    console().print(
        f"[bold red]error:[/] {escape(' '.join(message.split()))}", soft_wrap=True, highlight=False
    )


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    out = Console()
    t = RichTable(title=f"Sweep {summary['month']} — input tables (read = accepted + quarantined)")
    t.add_column("table", no_wrap=True)
    t.add_column("format", no_wrap=True)
    for col in ("read", "accepted", "quarantined"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("note", overflow="fold")
    for name, info in summary["tables"].items():
        fmt = f"{info['format']} {info['encoding'] or ''}".strip() if info.get("file") else "—"
        t.add_row(
            name,
            fmt,
            f"{info['read']:,}",
            f"{info['accepted']:,}",
            f"{info['quarantined']:,}",
            info.get("note", ""),
        )
    out.print(t)
    p = RichTable(title="Entitlements by policy")
    p.add_column("#", justify="right")
    p.add_column("policy", overflow="fold", min_width=12)
    p.add_column("名称", overflow="fold", min_width=8)
    p.add_column("mode", min_width=6)
    for col in ("people", "held", "amount (yuan)"):
        p.add_column(col, justify="right", no_wrap=True)
    for pid, info in summary["policies"].items():
        p.add_row(
            str(info["number"]),
            pid,
            info["name_zh"],
            info["mode"],
            f"{info['count']:,}",
            f"{info['held']:,}",
            info["amount"],
        )
    out.print(p)
    a = ", ".join(f"{k} {v:,}" for k, v in summary["alerts"].items()) or "none"
    out.print(f"Alerts: {a}")
    totals = summary["totals"]
    out.print(
        f"{totals['entitlements']:,} entitlements for {totals['people']:,} people; "
        f"pay + credit {totals['pay_and_credit_amount']} yuan, {totals['held']:,} held. "
        f"Outputs in {summary['out']} ({summary['run_seconds']:.2f} s)"
    )


@app.command()
def synth(
    persons: Annotated[int, typer.Option(help="Number of people in the synthetic district.")],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")],
    out: Annotated[Path, typer.Option(help="Folder to write the extracts into.")],
    month: Annotated[
        str, typer.Option(help="The benefit month the delivery is for.", callback=_month)
    ] = "2025-01",
    dirty: Annotated[
        float, typer.Option(help="Fraction of rows to corrupt with every kind of bad value.")
    ] = 0.01,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    encoding: Annotated[str, typer.Option(help="CSV encoding: utf-8, utf-8-sig or gbk.")] = "utf-8",
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes for districts above a million persons (default: one per core); "
            "the files are the same for any number.",
            min=1,
        ),
    ] = None,
) -> None:
    """Generate a deterministic synthetic district in the data contract's format.

    Districts above a million persons are generated in chunks of 500,000 in parallel (a
    10-million-person city in Parquet takes a few minutes)."""
    from benefits.synth import generate

    try:
        counts = generate(
            persons=persons,
            seed=seed,
            out=out,
            month=month,
            dirty=dirty,
            fmt=fmt,
            encoding=encoding,
            workers=workers,
        )
    except ValueError as exc:
        _error_line(str(exc))
        raise typer.Exit(2) from exc
    for table, n in counts.items():
        console().print(f"{table:<24} {n:>9,} rows")


rules_app = typer.Typer(
    help="The rule pack in rules/: check, test, diff and document it, and its releases with "
    "four eyes (submit, approve, reject, list, show, rollback, fetch, calendar).",
    no_args_is_help=True,
)
app.add_typer(rules_app, name="rules")


@rules_app.command("doc")
def rules_doc(
    rules: Annotated[
        Path | None, typer.Option(help="Rule pack folder (default: the bundled rules/).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="File to write (default: print to standard output).")
    ] = None,
) -> None:
    """Write the rules document (docs/rules.md) generated from the rule pack."""
    from benefits.errors import BenefitsError
    from benefits.rulesdoc import write_rules_doc

    try:
        text = write_rules_doc(rules, out)
    except BenefitsError as exc:
        console().print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    except OSError as exc:
        console().print(f"[bold red]error:[/] cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    if out is None:
        sys.stdout.write(text)
    else:
        console().print(f"wrote {out}")


@app.command()
def paths(
    what: Annotated[
        str | None,
        typer.Argument(help="rules, sample or reports: print only that folder (for scripts)."),
    ] = None,
) -> None:
    """Where the default rule pack, the bundled sample delivery and the report templates are
    (the clone's folders, else the copies installed with the package)."""
    from benefits.resources import reports_folder, rules_folder, sample_folder

    found = {"rules": rules_folder(), "sample": sample_folder(), "reports": reports_folder()}
    if what is None:
        for name, folder in found.items():
            typer.echo(f"{name:<8} {folder}")
        return
    if what not in found:
        typer.echo(f"error: paths takes rules, sample or reports, got {what!r}", err=True)
        raise typer.Exit(2)
    typer.echo(str(found[what]))


def _sweep_synth_or_paths(argv: list[str]) -> bool:
    """True for `benefits sweep …` / `synth …` / `paths …`, which need none of the rule tools
    (`rules check|test|diff`, `whatif`): their module is then not imported."""
    return len(argv) > 1 and argv[1] in ("sweep", "synth", "paths")


def _register_rule_tools() -> None:
    from benefits.rulescli import register

    register(app, rules_app)


if not _sweep_synth_or_paths(sys.argv):
    _register_rule_tools()


def _register_ledger() -> None:
    from benefits.ledger.cli import audit_app, batch_app, keys_app, ledger_app

    app.add_typer(ledger_app, name="ledger")
    app.add_typer(batch_app, name="batch")
    app.add_typer(audit_app, name="audit")
    app.add_typer(keys_app, name="keys")


def _register_cycle() -> None:
    from benefits.cycle.cli import cycle_app, scheduler

    app.add_typer(cycle_app, name="cycle")
    app.command("scheduler")(scheduler)


def _register_web() -> None:
    from benefits.web.cli import serve, users_app

    app.command("serve")(serve)
    app.add_typer(users_app, name="users")


def _register_releases() -> None:
    from benefits.ledger.packcli import register

    register(rules_app)


def _register_events() -> None:
    from benefits.events.cli import events_app

    app.add_typer(events_app, name="events")


def _core_command_only(argv: list[str]) -> bool:
    """True for `benefits sweep …` / `synth …` / `whatif …`: then the database-backed command
    groups (SQLAlchemy, APScheduler, FastAPI) are not imported, which keeps the sweep's start
    half a second faster. `benefits --help` and every other command see them all."""
    return len(argv) > 1 and argv[1] in ("sweep", "synth", "paths", "whatif")


if not _core_command_only(sys.argv):
    _register_ledger()
    _register_cycle()
    _register_web()
    _register_events()
    _register_releases()

if __name__ == "__main__":  # pragma: no cover
    app()
