"""Command line of the ledger: ``benefits ledger …``, ``benefits batch …``, ``benefits audit …``.

A thin layer over :class:`benefits.ledger.Ledger`. Every command takes ``--db URL``
(default ``$BENEFITS_DATABASE_URL``, else ``sqlite:///benefits.sqlite``); acting commands take
``--by OFFICER`` (default ``$BENEFITS_USER``). A refused action prints who, the state and why
not, and exits with code 2.

Example:
    $ benefits ledger init
    $ benefits ledger import-run --out out/2025-01 --by alice
    $ benefits ledger prune-runs --keep-months 12 --dry-run --by ops
    $ benefits batch create --run 1 --by alice
    $ benefits batch submit 1 --by alice
    $ benefits batch approve 1 --by bob
    $ benefits batch export 1 --to bank/2025-01.csv --by carol
    $ benefits batch reconcile 1 --file bank/2025-01-return.csv --by carol
    $ benefits audit checkpoint --to /var/lib/benefits/audit-checkpoints.jsonl
    $ benefits audit verify --checkpoints /var/lib/benefits/audit-checkpoints.jsonl
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from benefits.idcard import mask_id
from benefits.ledger.batchstate import describe_state
from benefits.ledger.batchviews import Total
from benefits.ledger.db import display_url, resolve_url
from benefits.ledger.errors import LedgerError, NothingToBatch
from benefits.ledger.money import format_amount
from benefits.ledger.service import Ledger

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="BENEFITS_DATABASE_URL",
        help="Database URL (default sqlite:///benefits.sqlite; e.g. postgresql+psycopg://…).",
        show_default=False,
    ),
]
ByOpt = Annotated[
    str,
    typer.Option("--by", envvar="BENEFITS_USER", help="The officer doing this (recorded)."),
]

ledger_app = typer.Typer(
    name="ledger",
    help="The payment ledger's database: create it, record sweep runs, settings.",
    no_args_is_help=True,
    add_completion=False,
)
batch_app = typer.Typer(
    name="batch",
    help=(
        "Payout batches: create from a run, submit, approve (another officer), reject, "
        "release held items, export the bank file, reconcile the bank's return file."
    ),
    no_args_is_help=True,
    add_completion=False,
)
audit_app = typer.Typer(
    name="audit",
    help="The keyed, hash-chained audit log: verify it, sign checkpoints of it, read it.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(
    name="keys",
    help="Secret keys of the audit chain, its checkpoints, the blind index and sealed data.",
    no_args_is_help=True,
    add_completion=False,
)


@contextmanager
def _ledger(db: str | None) -> Iterator[Ledger]:
    """Open the ledger; turn ledger and database errors into a message and exit code 2."""
    url = resolve_url(db)
    try:
        with Ledger(url) as ledger:
            yield ledger
    except LedgerError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    except OperationalError as exc:
        err.print(
            "[bold red]error:[/] "
            + escape(
                f"cannot use the database {display_url(url)}: "
                f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
            ),
            highlight=False,
        )
        raise typer.Exit(2) from exc
    except SQLAlchemyError as exc:
        err.print(
            f"[bold red]database error:[/] {escape(str(exc).splitlines()[0])}", highlight=False
        )
        raise typer.Exit(2) from exc


def _say(message: str) -> None:
    out.print(message, highlight=False, markup=False)  # reasons and paths are not markup


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit code 2."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


# --------------------------------------------------------------------------------- ledger


@ledger_app.command("init")
def init_cmd(db: DbOpt = None, by: ByOpt = "system") -> None:
    """Create the ledger tables, or upgrade them to this version (safe to run again)."""
    with _ledger(db) as ledger:
        before, _ = ledger.revision()
        rev = ledger.init(by=by)
        state = "already at" if before == rev else "now at"
        _say(f"ledger in {ledger.url} {state} schema revision {rev}")


@ledger_app.command("import-run")
def import_run_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="The sweep's output folder.")],
    by: ByOpt,
    db: DbOpt = None,
) -> None:
    """Record a sweep (entitlements.csv + summary.json); importing it again changes nothing."""
    with _ledger(db) as ledger:
        r = ledger.import_run(out_dir, by=by)
        verb = "was already recorded as" if r.already else "recorded as"
        _say(
            f"sweep {out_dir} for {r.month} {verb} run {r.run_id}: {r.payable_rows} pay/credit "
            f"entitlements, {format_amount(r.payable_total)} yuan"
        )


@ledger_app.command("runs")
def runs_cmd(
    month: Annotated[str | None, typer.Option(help="Only this month (YYYY-MM).")] = None,
    db: DbOpt = None,
) -> None:
    """List recorded sweep runs, newest first."""
    with _ledger(db) as ledger:
        t = Table(title="Sweep runs")
        for col in ("run", "month", "rule pack", "rows", "pay/credit", "total", "by", "at"):
            t.add_column(col, justify="right" if col in ("run", "rows", "pay/credit", "total")
                         else "left")  # fmt: skip
        for r in ledger.runs(month):
            t.add_row(
                str(r.id), r.month, f"{r.rule_pack_version} {r.rule_pack_hash[:15]}",
                str(r.entitlement_rows), str(r.payable_rows), format_amount(r.payable_total),
                r.started_by, f"{r.imported_at:%Y-%m-%d %H:%M}",
            )  # fmt: skip
        out.print(t)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


@ledger_app.command("prune-runs")
def prune_runs_cmd(
    keep_months: Annotated[
        int, typer.Option(help="Keep every run of the newest N benefit months recorded.")
    ],
    by: ByOpt,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Delete the output folders of old runs superseded by a later run of their month.

    Never removed: the runs of the newest N months, the latest run of every month, and any
    run with a batch that was not rejected. The ledger keeps every run's rows, hashes and
    audit entries; each removal is audited (run.prune).
    """
    from benefits.ledger.runs import prune_runs

    with _ledger(db) as ledger:
        plan = prune_runs(ledger.db, keep_months, by=by, dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for e in plan.removed:
            _say(f"{verb} run {e.run_id} ({e.month}, {e.reason}): {e.folder} [{_mb(e.size)}]")
        for e in plan.kept:
            _say(f"kept run {e.run_id} ({e.month}): {e.reason}")
        months = ", ".join(plan.months_kept) or "none"
        _say(f"{len(plan.removed)} run folder(s) {verb}, {_mb(plan.freed)}; "
             f"{len(plan.kept)} kept; newest months kept: {months}")  # fmt: skip


@ledger_app.command("setting")
def setting_cmd(
    key: Annotated[str | None, typer.Argument(help="Setting key; omit to list all.")] = None,
    value: Annotated[str | None, typer.Argument(help="New value; omit to show.")] = None,
    by: ByOpt = "system",
    db: DbOpt = None,
) -> None:
    """Show or change ledger settings (every change is audited)."""
    with _ledger(db) as ledger:
        current = ledger.settings()
        if key is None:
            for k, v in current.items():
                _say(f"{k} = {v}")
            return
        if value is None:
            _say(f"{key} = {current.get(key, '(not set)')}")
            return
        ledger.set_setting(key, value, by=by)
        _say(f"{key} = {value}")


# ---------------------------------------------------------------------------------- batch


@batch_app.command("create")
def create_cmd(
    run: Annotated[int, typer.Option("--run", help="Run id (see `benefits ledger runs`).")],
    by: ByOpt,
    db: DbOpt = None,
) -> None:
    """Create a draft batch from a run (adjustments only, if the month was already paid)."""
    with _ledger(db) as ledger:
        try:
            b = ledger.create_batch(run, by=by)
        except NothingToBatch as exc:
            _say(str(exc))
            return
        _say(
            f"batch {b.id} for {b.month} created as draft by {by}: {b.item_count} items, "
            f"{format_amount(b.total)} yuan — next: `benefits batch submit {b.id}`"
        )


BatchArg = Annotated[int, typer.Argument(help="Batch id.")]


@batch_app.command("submit")
def submit_cmd(batch: BatchArg, by: ByOpt, db: DbOpt = None) -> None:
    """Submit a draft for approval by another officer."""
    with _ledger(db) as ledger:
        b = ledger.submit(batch, by=by)
        _say(f"batch {b.id} {describe_state(b)}; another officer approves it")


@batch_app.command("approve")
def approve_cmd(batch: BatchArg, by: ByOpt, db: DbOpt = None) -> None:
    """Approve a submitted batch (not its creator or submitter: four eyes)."""
    with _ledger(db) as ledger:
        b = ledger.approve(batch, by=by)
        _say(f"batch {b.id} {describe_state(b)}: {b.item_count} items, "
             f"{format_amount(b.total)} yuan")  # fmt: skip


@batch_app.command("reject")
def reject_cmd(
    batch: BatchArg,
    reason: Annotated[str, typer.Option(help="Why (recorded; shown to the preparer).")],
    by: ByOpt,
    db: DbOpt = None,
) -> None:
    """Reject a batch before export; a new sweep then gives a new draft."""
    with _ledger(db) as ledger:
        b = ledger.reject(batch, by=by, reason=reason)
        _say(f"batch {b.id} {describe_state(b)}: {reason}")


@batch_app.command("release")
def release_cmd(
    item: Annotated[int, typer.Argument(help="Item id (see `benefits batch show`).")],
    reason: Annotated[str, typer.Option(help="Why it can go out now (recorded).")],
    by: ByOpt,
    account: Annotated[
        str | None, typer.Option(help="Corrected account number, if that was the problem.")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Release one held item (before approval: in this batch; after export: reissued)."""
    with _ledger(db) as ledger:
        it = ledger.release(item, by=by, reason=reason, account=account)
        where = (
            "goes out with this batch's bank file" if it.status == "pending"
            else "will be reissued in the next batch"
        )  # fmt: skip
        _say(f"item {it.id} of batch {it.batch_id} released by {by}: {where}")


@batch_app.command("export")
def export_cmd(
    batch: BatchArg,
    to: Annotated[Path, typer.Option("--to", help="Bank file to write (CSV).")],
    by: ByOpt,
    db: DbOpt = None,
) -> None:
    """Write the bank payment file of an approved batch (safe to run again)."""
    with _ledger(db) as ledger:
        r = ledger.export(batch, to, by=by)
        note = " (already exported: identical file written again)" if r.already else ""
        if r.held:
            note += (f"\nheld, not sent (account number not valid): items "
                     f"{', '.join(map(str, r.held))}")  # fmt: skip
        _say(f"batch {r.batch_id}: {r.count} payments, {format_amount(r.total)} yuan → {r.path}"
             f"{note}\nsha256 {r.sha256}")  # fmt: skip


@batch_app.command("reconcile")
def reconcile_cmd(
    batch: BatchArg,
    file: Annotated[Path, typer.Option("--file", help="The bank's return file (CSV).")],
    by: ByOpt,
    db: DbOpt = None,
) -> None:
    """Apply the bank's return file: paid, or failed → held with the bank's reason."""
    with _ledger(db) as ledger:
        r = ledger.reconcile(batch, file, by=by)
        if r.already:
            _say(f"{file} was already applied to batch {r.batch_id}; nothing changed")
            return
        _say(
            f"batch {r.batch_id}: {r.paid} paid, {r.failed} failed (now held), {r.unchanged} "
            f"already applied, {r.still_sent} awaiting the bank — batch is {r.status}"
        )


@batch_app.command("list")
def list_cmd(
    month: Annotated[str | None, typer.Option(help="Only this month.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    db: DbOpt = None,
) -> None:
    """List batches, newest first."""
    with _ledger(db) as ledger:
        t = Table(title="Batches")
        for col in ("batch", "month", "run", "status", "items", "total", "created", "approved"):
            t.add_column(col, justify="right" if col in ("batch", "run", "items", "total")
                         else "left")  # fmt: skip
        for b in ledger.batches(month, status):
            t.add_row(
                str(b.id), b.month, str(b.run_id), b.status, str(b.item_count),
                format_amount(b.total), b.created_by, b.approved_by or "—",
            )  # fmt: skip
        out.print(t)


def _totals_table(title: str, rows: list[Total]) -> Table:
    t = Table(title=title)
    for col in ("", "items", "amount", "held items", "held amount"):
        t.add_column(col, justify="left" if col == "" else "right")
    for r in rows:
        t.add_row(r.key, str(r.items), format_amount(r.amount), str(r.held_items),
                  format_amount(r.held_amount))  # fmt: skip
    return t


@batch_app.command("show")
def show_cmd(
    batch: BatchArg,
    items: Annotated[int, typer.Option(help="Also list this many items (0: none).")] = 0,
    status: Annotated[str | None, typer.Option(help="List only items in this status.")] = None,
    db: DbOpt = None,
) -> None:
    """A batch's state, who did what, and totals per policy, community, kind and status."""
    with _ledger(db) as ledger:
        d = ledger.batch(batch)
        b = d.batch
        _say(f"batch {b.id} for {b.month} from run {b.run_id}: {describe_state(b)}")
        _say(f"  {b.item_count} items, {format_amount(b.total)} yuan")
        for label, who, when in (
            ("created", b.created_by, b.created_at), ("submitted", b.submitted_by, b.submitted_at),
            ("approved", b.approved_by, b.approved_at), ("exported", b.exported_by, b.exported_at),
            ("reconciled", b.reconciled_by, b.reconciled_at),
            ("rejected", b.rejected_by, b.rejected_at),
        ):  # fmt: skip
            if who:
                _say(f"  {label:<10} by {who} at {when:%Y-%m-%d %H:%M:%S}")
        if b.reject_reason:
            _say(f"  reason: {b.reject_reason}")
        if d.bank_file_sha256:
            _say(f"  bank file sha256 {d.bank_file_sha256}")
        out.print(_totals_table("By policy", d.by_policy))
        out.print(_totals_table("By community", d.by_community))
        out.print(_totals_table("By kind", d.by_kind))
        out.print(_totals_table("By item status", d.by_status))
        if items:
            # Plain lines, not a table: an item line is wider than a terminal and gets piped.
            _say(f"items (first {items}): id, kind, ID, name, policy, month, amount, status, note")
            for it in ledger.items(batch, status=status, limit=items):
                _say(
                    f"{it.id:>9}  {it.kind:<8}  {mask_id(it.id_no)}  {it.masked_name}  "
                    f"{it.policy_id}  {it.month}  {format_amount(it.amount):>10}  "
                    f"{it.status:<8}  {it.hold_reason or it.reason or ''}"
                )


# ---------------------------------------------------------------------------------- audit


@audit_app.command("verify")
def verify_cmd(
    db: DbOpt = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            envvar="BENEFITS_AUDIT_CHECKPOINTS",
            help="Signed checkpoint file (JSONL) to check the chain against.",
        ),
    ] = None,
) -> None:
    """Recompute the keyed chain and check the signed checkpoints (exit code 1 if broken)."""
    with _ledger(db) as ledger:
        result = ledger.verify_audit()
        problems = ledger.verify_checkpoints(checkpoints) if checkpoints else []
    if result.ok:
        _say(str(result))
    else:
        err.print(f"[bold red]{result}[/]", highlight=False)
    for problem in problems:
        err.print(f"[bold red]checkpoint problem:[/] {problem}", highlight=False)
    if checkpoints and not problems:
        _say(f"checkpoints in {checkpoints} hold: every signature valid, every head in the chain")
    if not result.ok or problems:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint_cmd(
    to: Annotated[
        Path,
        typer.Option(
            "--to",
            envvar="BENEFITS_AUDIT_CHECKPOINTS",
            help="Append-only checkpoint file (JSONL), outside the database.",
        ),
    ],
    db: DbOpt = None,
) -> None:
    """Sign the chain's head (Ed25519, audit_signing key) and append it to the file."""
    with _ledger(db) as ledger:
        point = ledger.checkpoint(to)
    _say(
        f"checkpoint appended to {to}: {point.seq} entries, head {point.head[:16]}…, "
        f"signed with {point.key_id}"
    )


@audit_app.command("log")
def log_cmd(
    last: Annotated[int, typer.Option(help="How many of the newest entries.")] = 20,
    db: DbOpt = None,
) -> None:
    """Show the newest audit entries."""
    with _ledger(db) as ledger:
        for e in ledger.audit_entries(last):
            _say(
                f"#{e.seq:<6} {e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<10} {e.action:<22} "
                f"{e.object_type} {e.object_id:<8} {e.hash[:12]}"
            )


# ----------------------------------------------------------------------------------- keys


@keys_app.command("init")
def keys_init_cmd(
    to: Annotated[Path, typer.Option("--out", help="The new key file (JSON, mode 0600).")],
) -> None:
    """Write a new key file: one random key per purpose (audit_hmac, audit_signing,
    blind_index, data). Point BENEFITS_KEY_FILE at it; keep it off the database server."""
    from benefits.keys import ENV_FILE, KeyRing

    if to.exists():
        err.print(f"[bold red]error:[/] {to} already exists: keys are never overwritten",
                  highlight=False)  # fmt: skip
        raise typer.Exit(2)
    ring = KeyRing.generate()
    try:
        ring.write(to)
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot write {to}: {exc.strerror}", highlight=False)
        raise typer.Exit(2) from exc
    ids = ", ".join(f"{p} {kid}" for p, kid in ring.currents.items())
    _say(f"key file {to} written (mode 0600): {ids}; set {ENV_FILE}={to}")


@keys_app.command("add")
def keys_add_cmd(
    purpose: Annotated[str, typer.Option("--purpose", help="The purpose, e.g. data.")],
    file: Annotated[
        Path | None, typer.Option("--file", help="The key file (default: $BENEFITS_KEY_FILE).")
    ] = None,
) -> None:
    """Add a new random key for a purpose to the key file and make it current (old keys are
    kept: what they protect stays readable). For `data`, run `benefits keys rotate` next."""
    from benefits.keys import ENV_FILE, PURPOSES, KeyProblem, KeyRing

    path = file or (Path(os.environ[ENV_FILE]) if os.environ.get(ENV_FILE) else None)
    if path is None:
        _fail(f"name the key file with --file or {ENV_FILE}")
    if purpose not in PURPOSES:
        _fail(f"unknown purpose {purpose!r} (known: {', '.join(PURPOSES)})")
    if purpose == "blind_index":
        _fail("the blind_index key finds persons in the ledger: it cannot be changed in place")
    try:
        ring = KeyRing.load(path)
        kid = ring.add(purpose)
        ring.replace_file(path)
    except (KeyProblem, OSError) as exc:
        _fail(str(exc) if isinstance(exc, KeyProblem) else f"cannot write {path}: {exc}")
    _say(f"{purpose} key {kid} added to {path} and made current")


@keys_app.command("rotate")
def keys_rotate_cmd(
    purpose: Annotated[str, typer.Option("--purpose", help="Only `data` can be rotated.")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 1000,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Stop after this many rows.")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Re-seal the ledger's sensitive values under the current `data` key, a batch per
    transaction. Interrupted, run it again: it finishes what is left. Exit 0 when every value
    is under the current key, 1 when rows remain (after --limit)."""
    from benefits.ledger.rotate import key_ids_in_use, rotate_data

    if purpose != "data":
        _fail(
            f"only the data key is rotated by re-sealing; {purpose} keys are changed by adding "
            "a new current key (benefits keys add), see docs/security.md"
        )
    with _ledger(db) as ledger:
        report = rotate_data(ledger.db, batch_size=batch_size, limit=limit)
        in_use = key_ids_in_use(ledger.db)
    tables = ", ".join(f"{t} {n}" for t, n in report.by_table.items()) or "nothing to do"
    keys = ", ".join(f"{k} {n}" for k, n in in_use.items()) or "none"
    _say(
        f"re-sealed {report.resealed} rows under {report.key_id} in {report.batches} "
        f"batches ({tables}); rows left under older keys: {report.remaining}; "
        f"values by key: {keys}"
    )
    if not report.done:
        raise typer.Exit(1)


@keys_app.command("reseal-files")
def keys_reseal_files_cmd(
    folders: Annotated[list[Path], typer.Argument(help="Sweep output, cycle store or web work "
                                                       "folders holding sealed files.")],
) -> None:
    """Re-seal the sealed output files and snapshots under FOLDERS with the current `data` key
    (one file at a time, each replaced whole: interrupted, run it again). Exit 0 when every
    sealed file is under the current key."""
    from benefits.keys import KeyProblem
    from benefits.sealedfiles import file_keys, reseal_tree

    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        _fail(f"no such folder: {', '.join(missing)}")
    try:
        keys = file_keys()
        current, _ = keys.current("data")
        done, by_key = reseal_tree(folders, keys)
    except KeyProblem as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot re-seal {exc.filename}: {exc.strerror}")
    left = sum(n for k, n in by_key.items() if k != current)
    counts = ", ".join(f"{k} {n}" for k, n in sorted(by_key.items())) or "none"
    _say(f"re-sealed {done} files under {current}; sealed files by key: {counts}")
    if left:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command groups to the main `benefits` app.

    >>> register(typer.Typer())
    """
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(batch_app, name="batch")
    app.add_typer(audit_app, name="audit")
    app.add_typer(keys_app, name="keys")
