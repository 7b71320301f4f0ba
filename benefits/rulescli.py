"""Commands for the people who maintain the rule pack: ``benefits rules check|test|diff`` and
``benefits whatif`` (registered on the main app by :mod:`benefits.cli`).

Exit codes: 0 all good; 1 the command ran and found something (warnings, failing cases,
differences); 2 it could not run (a pack that does not load, a bad argument) — with one
error line.

Example:
    $ benefits rules check rules/ --month 2026-01
    $ benefits rules test rules/ tests/cases/hardship
    $ benefits rules diff rules/ proposed/ --format markdown --out diff.md
    $ benefits whatif --data datasets/sample --month 2025-01 --set dibao_std=1400
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from benefits.whatif import WhatIf

console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error line on stderr (never wrapped, never markup) and return the exit."""
    console.print(
        f"[bold red]error:[/] {escape(' '.join(message.split()))}", soft_wrap=True, highlight=False
    )
    return typer.Exit(code)


def _out() -> Console:
    return Console(soft_wrap=False, highlight=False)


# ----------------------------------------------------------------------------- rules check


def rules_check(
    folder: Annotated[Path, typer.Argument(help="The rule pack folder to check.")],
    cases: Annotated[
        Path | None,
        typer.Option(
            help="Rule cases that should cover every policy (default: DIR/cases, "
            "else the clone's tests/cases)."
        ),
    ] = None,
    month: Annotated[
        str | None,
        typer.Option(help="First month of the horizon, YYYY-MM (default: the current month)."),
    ] = None,
    horizon_months: Annotated[
        int,
        typer.Option(
            min=0,
            max=120,
            help="Months ahead that must be decidable and whose "
            "parameter values must be scheduled.",
        ),
    ] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate a rule pack: load errors naming file, rule and field; warnings for a parameter
    whose next value is missing within the horizon, a policy with no rule case and an exclusion
    that can never apply. Exit 0 clean, 1 warnings, 2 does not load."""
    from benefits.months import MonthError, parse_month, today_utc
    from benefits.period import BenefitMonth
    from benefits.rulecheck import check_folder

    try:
        start = parse_month(month) if month else BenefitMonth(today_utc().year, today_utc().month)
    except MonthError as exc:
        raise _fail(str(exc)) from exc
    report = check_folder(folder, cases, month=start, horizon=horizon_months)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(report.exit_code)
    if report.error:
        raise _fail(report.error, 2)
    out = _out()
    pack = report.pack
    assert pack is not None
    out.print(
        f"{folder}: rule pack {pack.version} loads ({len(pack.policies)} policies, "
        f"{len(pack.parameters)} parameters, hash {pack.digest[:12]}); every policy compiles "
        f"for {start.label} … {start.shift(horizon_months).label}"
    )
    for note in report.notes:
        out.print(f"note: {note}")
    for w in report.warnings:
        out.print(f"warning [{w.code}] {w.where}: {w.message}", markup=False)
    out.print(f"{len(report.warnings)} warning(s)")
    raise typer.Exit(report.exit_code)


# ----------------------------------------------------------------------------- rules test


def rules_test(
    folder: Annotated[Path, typer.Argument(help="The rule pack folder to test.")],
    cases: Annotated[
        Path | None,
        typer.Argument(
            help="A case file or folder (default: DIR/cases, else the clone's tests/cases)."
        ),
    ] = None,
    match: Annotated[
        str | None, typer.Option("--match", "-k", help="Only cases whose id contains this.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="One line for every case, not per file.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Run the YAML rule cases against a rule pack: one line per case file, each failing case
    with its differences (every case with -v); exit 0 when all pass, 1 when some fail, 2 when
    the pack or the cases cannot be read."""
    from benefits.errors import BenefitsError
    from benefits.rulebook import load_pack
    from benefits.rulecases import CaseError, CaseResult, load_cases, run_cases
    from benefits.rulecheck import default_cases_folder

    try:
        pack = load_pack(folder)
        where = cases if cases is not None else default_cases_folder(folder)
        if where is None:
            raise CaseError("no rule cases found: give CASES (a case file or folder)")
        found = [c for c in load_cases(where) if not match or match in c.id]
    except (BenefitsError, CaseError, OSError) as exc:
        raise _fail(str(exc)) from exc
    if not found:
        raise _fail(f"no rule cases under {where}" + (f" matching {match!r}" if match else ""))
    results = run_cases(pack, found)
    failed = [r for r in results if not r.passed]
    if as_json:
        doc = {
            "pack": {"folder": str(folder), "version": pack.version, "hash": pack.digest},
            "cases": [
                {"id": r.case.id, "month": r.case.month, "passed": r.passed, "problems": r.problems}
                for r in results
            ],
            "passed": len(results) - len(failed),
            "failed": len(failed),
        }
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(1 if failed else 0)
    out = _out()
    by_file: dict[Path, list[CaseResult]] = {}
    for r in results:
        by_file.setdefault(r.case.path, []).append(r)
    for path, mine in by_file.items():
        bad = [r for r in mine if not r.passed]
        name = path.relative_to(mine[0].case.root).as_posix()
        if bad:
            out.print(f"[bold red]FAIL[/] {escape(name)}: {len(bad)} of {len(mine)} case(s) failed")
        elif not verbose:
            out.print(f"[green]PASS[/] {escape(name)}: {len(mine)} case(s)")
        for r in mine if verbose else bad:
            mark = "[green]PASS[/]" if r.passed else "[bold red]FAIL[/]"
            out.print(f"  {mark} {escape(r.case.id)}  ({r.case.month})")
            for problem in r.problems:
                out.print(f"         {problem}", markup=False)
            if r.problems and r.case.spec.get("note"):
                out.print(f"         note: {r.case.spec['note']}", markup=False)
    out.print(
        f"{len(results) - len(failed)} passed, {len(failed)} failed — rule pack {pack.version} "
        f"({pack.digest[:12]}), cases {where}"
    )
    raise typer.Exit(1 if failed else 0)


# ----------------------------------------------------------------------------- rules diff


def rules_diff(
    old: Annotated[Path, typer.Argument(help="The current rule pack folder.")],
    new: Annotated[Path, typer.Argument(help="The proposed rule pack folder.")],
    fmt: Annotated[str, typer.Option("--format", help="text, json or markdown.")] = "text",
    out: Annotated[
        Path | None, typer.Option(help="File to write (default: standard output).")
    ] = None,
) -> None:
    """What changed between two rule packs, in the handbook's words: parameters (old → new with
    effective dates), conditions, amounts, exclusions, alerts, policies added or removed.
    Exit 0 no difference, 1 differences, 2 a pack does not load."""
    from benefits.errors import BenefitsError
    from benefits.rulebook import load_pack
    from benefits.rulediff import diff_packs

    if fmt not in ("text", "json", "markdown"):
        raise _fail(f"--format takes text, json or markdown, got {fmt!r}")
    try:
        diff = diff_packs(load_pack(old), load_pack(new))
    except BenefitsError as exc:
        raise _fail(str(exc)) from exc
    text = {"text": diff.to_text, "json": diff.to_json, "markdown": diff.to_markdown}[fmt]()
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _fail(f"cannot write {out}: {exc.strerror or exc}") from exc
        console.print(f"wrote {out} ({len(diff.changes)} change(s))")
    raise typer.Exit(1 if diff.changes else 0)


# ----------------------------------------------------------------------------- whatif


def whatif(
    data: Annotated[Path, typer.Option(help="Folder with the month's departmental extracts.")],
    month: Annotated[str, typer.Option(help="Benefit month to price, YYYY-MM.")],
    base: Annotated[
        Path | None,
        typer.Option(help="The current rule pack (default: $BENEFITS_RULES, else rules/)."),
    ] = None,
    proposed: Annotated[Path | None, typer.Option(help="The proposed rule pack folder.")] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A proposed parameter value NAME=VALUE (repeatable), "
            "e.g. dibao_std=1400, added to the base pack.",
        ),
    ] = None,
    from_date: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Effective date of the --set values, YYYY-MM-DD "
            "(default: the first day of --month).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the tables (CSV and Parquet) + summary.json.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Tables in --out: csv, parquet or both.")
    ] = "both",
    report: Annotated[
        Path | None, typer.Option(help="Write the report with charts: FILE.html or FILE.pdf.")
    ] = None,
    top: Annotated[
        int, typer.Option(min=0, max=200, help="Largest individual changes to explain.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no tables.")] = False,
) -> None:
    """Price a rule change before anything is paid: both packs over the same month's records
    (ingested and merged once) — cost per policy per month and year, who gains, loses, starts
    or stops (by policy, community and group), the largest changes with both traces, and the
    households newly below or above a standard. Exit 0 ok, 2 bad input."""
    from benefits.errors import BenefitsError
    from benefits.months import MonthError, parse_month
    from benefits.progress import stage_progress
    from benefits.rulebook import load_pack
    from benefits.whatif import (
        WhatIfError,
        check_proposal_month,
        parse_settings,
        run_whatif,
        with_values,
    )

    formats = {"csv": ("csv",), "parquet": ("parquet",), "both": ("csv", "parquet")}
    try:
        if fmt not in formats:
            raise WhatIfError(f"--format takes csv, parquet or both, got {fmt!r}")
        if report is not None and report.suffix.lower() not in (".html", ".pdf"):
            raise WhatIfError(f"--report must end in .html or .pdf, got {report.name!r}")
        if (proposed is None) == (not setting):
            raise WhatIfError("give either --proposed FOLDER or --set NAME=VALUE (not both)")
        if from_date is not None and not setting:
            raise WhatIfError("--from goes with --set")
        bm = parse_month(month)
        base_pack = load_pack(base)
        if proposed is not None:
            proposed_pack = load_pack(proposed)
        else:
            start = bm.start
            if from_date is not None:
                try:
                    start = dt.date.fromisoformat(from_date)
                except ValueError:
                    raise WhatIfError(
                        f"--from must be a date like 2026-01-01, got {from_date!r}"
                    ) from None
            check_proposal_month(start, bm)
            proposed_pack = with_values(base_pack, parse_settings(setting or []), start)
        with stage_progress(console, enabled=not quiet and not as_json) as progress:
            result = run_whatif(data, bm.label, base_pack, proposed_pack, top=top,
                                progress=progress)  # fmt: skip
        if out is not None:
            result.write(out, formats[fmt])
        if report is not None:
            from benefits.whatifreport import write_report

            write_report(result, report)
    except (BenefitsError, MonthError) as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"{exc.filename or out}: {exc.strerror or exc}") from exc
    if as_json:
        sys.stdout.write(json.dumps(result.summary(), ensure_ascii=False, indent=2) + "\n")
        return
    if not quiet:
        print_whatif(result, _out())
        if out is not None:
            console.print(f"tables in {out}")
        if report is not None:
            console.print(f"report in {report}")


def _y(value: str | None) -> str:
    return "—" if value is None else value


def print_whatif(w: WhatIf, out: Console) -> None:
    """The what-if as terminal tables (masked names and IDs)."""
    s = w.summary()
    out.print(
        f"What-if {w.month.label}: base {w.base['version']} ({w.base['hash'][:12]}) → proposed "
        f"{w.proposed['version']} ({w.proposed['hash'][:12]}), {w.persons:,} persons evaluated",
        markup=False,
    )
    if w.parameters:
        t = Table(title="Parameters in force for the month")
        for c in ("parameter", "base", "proposed", "unit"):
            t.add_column(c)
        for p in w.parameters:
            b, n = p["base"], p["proposed"]
            t.add_row(f"{p['label']} ({p['name']})",
                      f"{b['value']} from {b['from']}" if b else "—",
                      f"{n['value']} from {n['from']}" if n else "—", p["unit"])  # fmt: skip
        out.print(t)
    t = Table(
        title="Cost by policy (yuan; year = month × 12)",
        caption="lead and notice rows are not in the pay + credit total",
    )
    t.add_column("#")
    t.add_column("policy", min_width=18, overflow="fold")
    t.add_column("mode")
    for c in ("people", "month base", "month proposed", "month Δ", "year Δ"):
        t.add_column(c, justify="right", no_wrap=True)
    for r in s["cost_by_policy"]:
        t.add_row(str(r["policy_number"]), r["policy_id"], r["mode"],
                  f"{r['base_people']:,} → {r['proposed_people']:,}", r["base"], r["proposed"],
                  r["difference"], r["difference_year"])  # fmt: skip
    out.print(t)
    tot = s["totals"]
    out.print(
        f"Pay + credit per month {tot['base_month']} → {tot['proposed_month']} "
        f"(Δ {tot['difference_month']}); per year {tot['base_year']} → {tot['proposed_year']} "
        f"(Δ {tot['difference_year']})"
    )
    c = s["counts"]
    out.print(
        f"{c['persons_changed']:,} people change: {c['persons_better_off']:,} better off, "
        f"{c['persons_worse_off']:,} worse off (pay + credit); entitlements: {c['starts']:,} "
        f"start, {c['stops']:,} stop, {c['gains']:,} gain, {c['loses']:,} lose"
    )
    for key, title, label in (
        ("changes_by_policy", "Changes by policy", "policy_id"),
        ("changes_by_group", "Changes by policy group", "group"),
        ("changes_by_community", "Changes by community", "hukou_community"),
    ):
        rows = s[key]
        if not rows:
            continue
        t = Table(title=f"{title} (Δ per month, yuan)")
        t.add_column(label, min_width=12, overflow="fold")
        for col in ("start", "stop", "gain", "lose", "net Δ", "min", "median", "max"):
            t.add_column(col, justify="right", no_wrap=True)
        for r in rows:
            t.add_row(str(r[label]), *(f"{r[k]:,}" for k in ("start", "stop", "gain", "lose")),
                      r["net_change"], r["min_change"], r["median_change"],
                      r["max_change"])  # fmt: skip
        out.print(t)
    t = Table(title="Distribution: people by monthly change of pay + credit (yuan)")
    t.add_column("change")
    t.add_column("people", justify="right")
    for r in s["distribution"]:
        t.add_row(r["change_yuan"], f"{r['people']:,}")
    out.print(t)
    if s["thresholds"]:
        t = Table(title="Conditions reading a changed parameter: who crosses the line")
        for col in ("policy", "condition", "households newly meeting", "newly failing"):
            t.add_column(col)
        for r in s["thresholds"]:
            meeting = f"{r['households_newly_meeting']:,} ({r['people_newly_meeting']:,} people)"
            failing = f"{r['households_newly_failing']:,} ({r['people_newly_failing']:,} people)"
            t.add_row(r["policy_id"], f"{r['label']}\n{r['test']}", meeting, failing)
        out.print(t)
    for i, person in enumerate(w.largest, 1):
        out.print(
            f"\n#{i} {person['masked_id']} {person['masked_name']} (community "
            f"{person['hukou_community']}): pay + credit Δ {person['change']} per month",
            markup=False,
        )
        for p in person["policies"]:
            t = Table(title=f"{p['policy_id']}: {p['status']} {_y(p['base'])} → "
                      f"{_y(p['proposed'])}", title_justify="left")  # fmt: skip
            for col in ("trace", "base", "proposed"):
                t.add_column(col, overflow="fold")
            for row in p["trace"]:
                if row["differs"] or row["what"] in ("decision", "amount"):
                    t.add_row(escape(row["what"]), escape(row["base"]), escape(row["proposed"]))
            out.print(t)


def register(app: typer.Typer, rules_app: typer.Typer) -> None:
    """Add `rules check|test|diff` and `whatif` to the command line."""
    rules_app.command("check")(rules_check)
    rules_app.command("test")(rules_test)
    rules_app.command("diff")(rules_diff)
    app.command("whatif")(whatif)
