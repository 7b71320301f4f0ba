"""``benefits rules submit|approve|reject|list|show|rollback|fetch|calendar``: rule pack
releases with four eyes (:mod:`benefits.ledger.packs`).

Example:
    $ benefits rules submit rules/ --note "2026 standards" --by alice
    $ benefits rules approve 2 --by bob
    $ benefits rules list
    $ benefits rules rollback --reason "wrong dibao standard" --by carol
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from benefits.ledger import packs
from benefits.ledger.cli import ByOpt, DbOpt, _fail, _ledger, _say, out
from benefits.ledger.models import PackRelease

ReleaseArg = Annotated[int, typer.Argument(help="Release id (see `benefits rules list`).")]


def _when(r: PackRelease, who: str | None, at: object) -> str:
    return f"{who} at {at:%Y-%m-%d %H:%M} UTC" if who else "—"


def submit_cmd(
    folder: Annotated[Path, typer.Argument(help="The rule pack folder to submit.")],
    by: ByOpt,
    note: Annotated[str, typer.Option(help="What changes and why (shown to the approver).")] = "",
    diff_report: Annotated[
        Path | None,
        typer.Option(
            help="The `benefits rules diff` output to attach (default: made here "
            "against the release in force, when this installation has rules diff)."
        ),
    ] = None,
    whatif_report: Annotated[
        list[Path] | None,
        typer.Option(
            help="A `benefits whatif` report (HTML, PDF, CSV, JSON) to attach; repeatable."
        ),
    ] = None,
    whatif_data: Annotated[
        Path | None,
        typer.Option(help="Make the what-if here on this month's delivery (with --whatif-month)."),
    ] = None,
    whatif_month: Annotated[str | None, typer.Option(help="The what-if's month, YYYY-MM.")] = None,
    db: DbOpt = None,
) -> None:
    """Submit a rule pack as a release: its files, digest, diff and what-if are stored; another
    officer approves it before any sweep may pay with it."""
    from benefits.ledger.packreports import diff_report as make_diff
    from benefits.ledger.packreports import whatif_report as make_whatif

    if (whatif_data is None) != (whatif_month is None):
        _fail("give --whatif-data and --whatif-month together")
    with _ledger(db) as ledger, tempfile.TemporaryDirectory(prefix="benefits-pack-") as cache:
        reports: list[packs.Report] = []
        if diff_report is not None:
            reports.append(packs.Report.from_file("diff", diff_report, by))
        else:
            made = make_diff(ledger.db, folder, Path(cache))
            if made is not None:
                reports.append(made)
        for path in whatif_report or []:
            reports.append(packs.Report.from_file("whatif", path, by))
        if whatif_data is not None and whatif_month is not None:
            reports.append(make_whatif(ledger.db, folder, whatif_data, whatif_month, Path(cache)))
        r = ledger.submit_pack(folder, by=by, note=note, reports=reports)
        attached = ", ".join(f"{x.kind} {x.name}" for x in reports) or "no reports"
        _say(f"{packs.describe(r)} submitted by {by} ({r.file_count} files; {attached}) — "
             f"another officer approves it: `benefits rules approve {r.id}`")  # fmt: skip


def approve_cmd(release: ReleaseArg, by: ByOpt, db: DbOpt = None) -> None:
    """Approve a submitted release (not its submitter: four eyes); it is in force at once."""
    with _ledger(db) as ledger:
        r = ledger.approve_pack(release, by=by)
        _say(f"{packs.describe(r)} approved by {by}: in force from now on (generation "
             f"{r.generation}); sweeps and `cycle run` use it")  # fmt: skip


def reject_cmd(
    release: ReleaseArg,
    reason: Annotated[str, typer.Option(help="Why (recorded; shown to the submitter).")],
    by: ByOpt,
    db: DbOpt = None,
) -> None:
    """Reject a submitted release (its submitter may withdraw it the same way)."""
    with _ledger(db) as ledger:
        r = ledger.reject_pack(release, by=by, reason=reason)
        _say(f"{packs.describe(r)} rejected by {by}: {reason}")


def rollback_cmd(
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit chain).")],
    by: ByOpt,
    db: DbOpt = None,
) -> None:
    """Emergency: take the release in force out; the previous approved release is in force."""
    with _ledger(db) as ledger:
        done = ledger.rollback_pack(by=by, reason=reason)
        _say(f"{packs.describe(done.rolled_back)} rolled back by {by}: {reason}; "
             f"{packs.describe(done.in_force)} is in force again")  # fmt: skip


def releases_cmd(db: DbOpt = None) -> None:
    """List rule pack releases, newest first; the one in force is marked."""
    with _ledger(db) as ledger:
        current = ledger.release_in_force()
        t = Table(title="Rule pack releases")
        for col in ("release", "", "status", "pack", "digest", "submitted", "approved"):
            t.add_column(col)
        for r in ledger.pack_releases():
            t.add_row(
                str(r.id), "in force" if current and r.id == current.id else "", r.status,
                f"{r.name} {r.version}", r.digest[:12], _when(r, r.submitted_by, r.submitted_at),
                _when(r, r.approved_by, r.approved_at),
            )  # fmt: skip
        out.print(t)
        if current is None:
            _say("no release is approved yet: sweeps are not governed until the first one is")


def show_cmd(release: ReleaseArg, db: DbOpt = None) -> None:
    """A release: who did what, its files and the reports attached for its approver."""
    with _ledger(db) as ledger:
        r = ledger.pack_release(release)
        current = ledger.release_in_force()
        _say(f"{packs.describe(r)}: {r.status}"
             + (" — in force" if current and current.id == r.id else ""))  # fmt: skip
        _say(f"  digest   {r.digest}")
        _say(f"  base     {f'release {r.base_release_id}' if r.base_release_id else 'none'}")
        for label, who, at in (
            ("submitted", r.submitted_by, r.submitted_at), ("approved", r.approved_by,
                                                            r.approved_at),
            ("rejected", r.rejected_by, r.rejected_at),
            ("rolled back", r.rolled_back_by, r.rolled_back_at),
        ):  # fmt: skip
            if who:
                _say(f"  {label:<11} by {who} at {at:%Y-%m-%d %H:%M:%S} UTC")
        for label, text in (("note", r.note), ("rejected", r.reject_reason),
                            ("rollback", r.rollback_reason)):  # fmt: skip
            if text:
                _say(f"  {label}: {text}")
        _say(f"  files ({r.file_count}, {r.size:,} bytes):")
        for path in packs.release_files(ledger.db, r.id):
            _say(f"    {path}")
        for rep in packs.release_reports(ledger.db, r.id):
            _say(f"  {rep.kind} report {rep.name} ({rep.media_type}, {len(rep.content):,} bytes, "
                 f"{rep.origin})")  # fmt: skip
            if rep.media_type in ("text/markdown", "text/plain"):
                _say(rep.content.decode("utf-8", errors="replace").rstrip())


def fetch_cmd(
    release: Annotated[str, typer.Argument(help="Release id, or `current` for the one in force.")],
    to: Annotated[Path, typer.Option("--to", help="Folder to write the pack into (new).")],
    db: DbOpt = None,
) -> None:
    """Write a release's rule pack into a folder (e.g. to sweep with the release in force)."""
    with _ledger(db) as ledger:
        if release == "current":
            cur = ledger.release_in_force()
            if cur is None:
                _fail("no rule pack release is approved yet")
            rid = cur.id
        elif release.isdigit():
            rid = int(release)
        else:
            _fail(f"a release is a number or `current`, got {release!r}")
        if to.exists() and any(to.iterdir()):
            _fail(f"{to} exists and is not empty; give a new folder")
        files = packs.release_files(ledger.db, rid)
        for rel, data in files.items():
            (to / rel).parent.mkdir(parents=True, exist_ok=True)
            (to / rel).write_bytes(data)
        _say(f"release {rid}: {len(files)} files written to {to}")


def calendar_cmd(
    rules: Annotated[
        Path | None,
        typer.Option(
            help="Rule pack folder (default: the release in force, else the default pack)."
        ),
    ] = None,
    parameter: Annotated[str | None, typer.Option(help="Only this parameter.")] = None,
    db: DbOpt = None,
) -> None:
    """The parameter calendar: each value and the months it applies to (history, in force,
    scheduled); then the yearly parameters with no value for the coming year, by the day set
    in the ledger setting rules.yearly_due (MM-DD, default 11-01). Exit 1 when one is missing."""
    from benefits.cycle.rulecalendar import missing_for, pack_in_use
    from benefits.errors import BenefitsError
    from benefits.months import today_utc
    from benefits.paramcalendar import parameter_calendar
    from benefits.rulebook import load_pack

    today = today_utc()
    with _ledger(db) as ledger, tempfile.TemporaryDirectory(prefix="benefits-pack-") as cache:
        try:
            pack = load_pack(rules) if rules else pack_in_use(ledger, None, Path(cache))
            missing = missing_for(ledger, pack, today)
        except BenefitsError as exc:
            _fail(str(exc))
        cal = parameter_calendar(pack, today)
        if parameter is not None and parameter not in cal:
            _fail(f"the pack has no parameter {parameter!r}")
        t = Table(title=f"Parameter calendar of {pack.info.name} {pack.version} on {today}")
        for col in ("parameter", "effective", "value", "months it applies to", ""):
            t.add_column(col)
        for name, c in cal.items():
            if parameter not in (None, name):
                continue
            for i, e in enumerate(c.entries):
                label = (name + (" (yearly)" if c.parameter.yearly else "")) if i == 0 else ""
                t.add_row(label, e.effective.isoformat(), e.value, e.months, e.state)
        out.print(t)
    for m in missing:
        _say(f"missing: {m.message}")
    if missing:
        raise typer.Exit(1)


def register(rules_app: typer.Typer) -> None:
    """Add the release commands to ``benefits rules``."""
    rules_app.command("submit")(submit_cmd)
    rules_app.command("approve")(approve_cmd)
    rules_app.command("reject")(reject_cmd)
    rules_app.command("rollback")(rollback_cmd)
    rules_app.command("list")(releases_cmd)
    rules_app.command("show")(show_cmd)
    rules_app.command("fetch")(fetch_cmd)
    rules_app.command("calendar")(calendar_cmd)
