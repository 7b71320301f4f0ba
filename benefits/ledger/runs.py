"""Sweep runs: read a sweep's output folder and record it, with its pay and credit rows.

A run is identified by a fingerprint of its month, rule pack, input file hashes and the bytes
of ``entitlements.csv``; the database holds each fingerprint once, so importing the same sweep
twice (or from two terminals at once) records one run. Once the ledger has an approved rule
pack release, a sweep decided with any other pack is refused and each run records its release
(:mod:`benefits.ledger.packs`). The folder is recorded by its absolute
path. :func:`find_identical_run` finds a recorded run of the same month, rule pack and input
files (a re-sweep that can be skipped); :func:`prune_runs` removes old superseded folders.

Example:
    >>> out = read_sweep(Path("out/2025-01"))            # doctest: +SKIP
    >>> out.month, len(out.rows), out.payable_total      # doctest: +SKIP
    ('2025-01', 23358, Decimal('1204816.30'))
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from benefits.ledger import audit
from benefits.ledger.audit import canonical
from benefits.ledger.bulk import bulk_insert
from benefits.ledger.db import Database
from benefits.ledger.errors import InvalidInput, NotFound
from benefits.ledger.faults import crashpoint
from benefits.ledger.items import account_hold
from benefits.ledger.models import REJECTED, Batch, RunEntitlement, SweepRun
from benefits.ledger.money import ZERO, format_amount, parse_amount
from benefits.ledger.packs import release_for_sweep
from benefits.sealedfiles import read_output

ENTITLEMENTS = "entitlements.csv"
SUMMARY = "summary.json"
REQUIRED_COLUMNS = (
    "id_no",
    "household_no",
    "policy_id",
    "month",
    "mode",
    "amount",
    "held",
    "hukou_community",
    "masked_name",
    "account_no",
)
ALL_MODES = ("pay", "credit", "lead", "notice")
PAYABLE_MODES = ("pay", "credit")
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_REPORTED_ERRORS = 10
IMPORT_CHUNK = 20_000  # rows sealed and copied at a time (a multiple of the bulk chunk)


@dataclass
class SweepOutput:
    """What the ledger takes from a sweep folder (only `pay`/`credit` rows are kept).

    Read once to check every row and add up the totals; the rows themselves are read again
    in chunks (:meth:`chunks`) from the same bytes while they are loaded, so a city's million
    rows are never all in memory at once.
    """

    source: str
    month: str
    rule_pack_version: str
    rule_pack_hash: str
    inputs: dict[str, Any]
    counts: dict[str, Any]
    entitlements_sha256: str
    entitlement_rows: int
    payable_rows: int = 0
    payable_total: Decimal = ZERO
    started_by: str | None = None
    data: bytes = field(default=b"", repr=False)

    def chunks(self, size: int = IMPORT_CHUNK) -> Iterator[list[dict[str, Any]]]:
        """The pay and credit rows, checked, in file order, `size` at a time."""
        errors: list[str] = []
        chunk: list[dict[str, Any]] = []
        for line, raw in _records(self.data):
            parsed = _parse_row(line, raw, self.month, errors)
            if parsed is not None:
                chunk.append(parsed)
                if len(chunk) == size:
                    yield chunk
                    chunk = []
        if errors:  # pragma: no cover - the same bytes were checked by read_sweep
            raise InvalidInput(f"entitlements changed while read: {errors[0]}")
        if chunk:
            yield chunk

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every pay and credit row (a town's; a city imports in :meth:`chunks`)."""
        return [r for chunk in self.chunks() for r in chunk]

    @property
    def fingerprint(self) -> str:
        """SHA-256 identifying the sweep: month, rule pack, inputs and entitlement bytes."""
        ident = {
            "month": self.month,
            "rule_pack": {"version": self.rule_pack_version, "hash": self.rule_pack_hash},
            "inputs": self.inputs,
            "entitlements_sha256": self.entitlements_sha256,
        }
        return hashlib.sha256(canonical(ident).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ImportResult:
    """The recorded run; `already` is True when this sweep had been imported before."""

    run_id: int
    month: str
    payable_rows: int
    payable_total: Decimal
    already: bool
    reused: bool = False  # an identical run (inputs, rule pack, month) was reused, no sweep


def _read_summary(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidInput(f"{path}: missing — is this a sweep output folder?")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(summary, dict):
        raise InvalidInput(f"{path}: must hold a JSON object")
    month = summary.get("month")
    if not isinstance(month, str) or not MONTH_RE.match(month):
        raise InvalidInput(f"{path}: field month must look like 2025-01, got {month!r}")
    pack = summary.get("rule_pack")
    if not isinstance(pack, dict) or not pack.get("version") or not pack.get("hash"):
        raise InvalidInput(f"{path}: field rule_pack must have a version and a hash")
    if not isinstance(summary.get("inputs"), dict):
        raise InvalidInput(f"{path}: field inputs must map each input table to its file hash")
    return summary


def _parse_row(
    line: int, row: dict[str, str], month: str, errors: list[str]
) -> dict[str, Any] | None:
    """One validated payable row, or None (non-payable row or an error appended)."""

    def bad(field_name: str, why: str) -> None:
        errors.append(f"line {line}, {field_name}: {why}")

    mode = (row.get("mode") or "").strip()
    if mode not in ALL_MODES:
        bad("mode", f"must be one of {', '.join(ALL_MODES)}, got {mode!r}")
        return None
    row_month = (row.get("month") or "").strip()
    if row_month != month:
        bad("month", f"is {row_month!r} but summary.json is for {month}")
        return None
    try:
        amount = parse_amount(row.get("amount") or "")
    except ValueError as exc:
        bad("amount", str(exc))
        return None
    held_text = (row.get("held") or "").strip().lower()
    if held_text not in ("true", "false"):
        bad("held", f"must be true or false, got {row.get('held')!r}")
        return None
    if mode not in PAYABLE_MODES:
        return None
    id_no = (row.get("id_no") or "").strip()
    policy_id = (row.get("policy_id") or "").strip()
    if not id_no:
        bad("id_no", "is empty")
        return None
    if not policy_id:
        bad("policy_id", "is empty")
        return None
    if amount <= 0:
        bad("amount", f"a {mode} row must have a positive amount, got {amount}")
        return None
    held = held_text == "true"
    reason = (row.get("hold_reason") or "").strip()
    return {
        "id_no": id_no,
        "household_no": (row.get("household_no") or "").strip(),
        "policy_id": policy_id,
        "month": row_month,
        "mode": mode,
        "amount": amount,
        "held": held,
        "hold_reason": (reason or "held by the sweep (no reason given)") if held else None,
        "community": (row.get("hukou_community") or "").strip(),
        "masked_name": (row.get("masked_name") or "").strip(),
        "account_no": (row.get("account_no") or "").strip(),
    }


def read_sweep(out: Path) -> SweepOutput:
    """Read and check a sweep output folder; raise InvalidInput naming file, line and field.

    Example:
        >>> read_sweep(Path("out/2025-01")).month        # doctest: +SKIP
        '2025-01'
    """
    out = Path(out)
    summary = _read_summary(out / SUMMARY)
    month: str = summary["month"]
    ent_path = out / ENTITLEMENTS
    if not ent_path.is_file():
        raise InvalidInput(f"{ent_path}: missing — is this a sweep output folder?")
    data = read_output(ent_path)
    try:
        header = next(csv.reader(io.StringIO(_first_line(data).decode("utf-8-sig"))), [])
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{ent_path}: not UTF-8 ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InvalidInput(f"{ent_path}: missing column(s) {', '.join(missing)}")

    errors: list[str] = []
    seen: dict[str, int] = {}
    count = payable = 0
    total = ZERO
    by_mode: dict[str, int] = {}
    people: set[str] = set()
    by_community: dict[str, dict[str, Any]] = {}
    try:
        for line, raw in _records(data):
            count += 1
            parsed = _parse_row(line, raw, month, errors)
            if parsed is None:
                continue
            key = f"{parsed['id_no']}\x1f{parsed['policy_id']}"
            if key in seen:
                errors.append(
                    f"line {line}: {parsed['policy_id']} for this person in {month} again "
                    f"(first on line {seen[key]}); one payment per person × policy × month"
                )
                continue
            seen[key] = line
            payable += 1
            total += parsed["amount"]
            by_mode[parsed["mode"]] = by_mode.get(parsed["mode"], 0) + 1
            _count_person(parsed, people, by_community)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{ent_path}: not UTF-8 ({exc})") from exc
    except csv.Error as exc:
        raise InvalidInput(f"{ent_path}: not a CSV file ({exc})") from exc
    del seen
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        listed = "; ".join(errors[:MAX_REPORTED_ERRORS])
        if more > 0:
            listed += f"; and {more} more"
        raise InvalidInput(f"{ent_path}: {listed}")

    pack = summary["rule_pack"]
    communities = {k: {"items": v["items"], "people": v["people"],
                       "amount": format_amount(v["amount"]), "held": v["held"]}
                   for k, v in sorted(by_community.items())}  # fmt: skip
    return SweepOutput(
        source=str(out.resolve()),  # absolute: the web app may start from another directory
        month=month,
        rule_pack_version=str(pack["version"]),
        rule_pack_hash=str(pack["hash"]),
        inputs=summary["inputs"],
        counts={
            "tables": summary.get("tables", {}),
            "policies": summary.get("policies", {}),
            "entitlements": {"rows": count, "payable": by_mode},
            # what the dashboard shows, kept with the run so that no page counts it
            "people": len(people),
            "communities": communities,
        },
        entitlements_sha256=hashlib.sha256(data).hexdigest(),
        entitlement_rows=count,
        payable_rows=payable,
        payable_total=total,
        started_by=summary.get("started_by"),
        data=data,
    )


def _first_line(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def _records(data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of each record of the CSV bytes, decoded as it goes."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    for n, raw in enumerate(reader, start=1):
        yield n + 1, raw  # the header is line 1


def _count_person(
    row: dict[str, Any], people: set[str], by_community: dict[str, dict[str, Any]]
) -> None:
    """Add a pay/credit row to the people and per-community figures the dashboard shows."""
    c = by_community.setdefault(row["community"], {"items": 0, "people": 0, "amount": ZERO,
                                                   "held": 0, "_ids": set()})  # fmt: skip
    c["items"] += 1
    c["amount"] += row["amount"]
    c["held"] += row["held"]
    ids = c["_ids"]
    if row["id_no"] not in ids:
        ids.add(row["id_no"])
        c["people"] += 1
    people.add(row["id_no"])


def _result(run: SweepRun, already: bool) -> ImportResult:
    return ImportResult(run.id, run.month, run.payable_rows, run.payable_total, already)


def import_run(db: Database, out: Path, by: str) -> ImportResult:
    """Record a sweep (idempotent): the run, its pay/credit rows and an audit entry.

    Example:
        >>> import_run(db, Path("out/2025-01"), by="alice")     # doctest: +SKIP
        ImportResult(run_id=1, month='2025-01', payable_rows=23358, ..., already=False)
    """
    sweep = read_sweep(out)
    fingerprint = sweep.fingerprint
    try:
        with db.transaction() as s:
            existing = s.execute(
                select(SweepRun).where(SweepRun.fingerprint == fingerprint)
            ).scalar_one_or_none()
            if existing is not None:
                _relink(s, db, existing, sweep.source, by)
                return _result(existing, already=True)
            # Only the approved rule pack release in force may pay (UnapprovedPack otherwise).
            release_id = release_for_sweep(s, sweep.rule_pack_hash)
            now = db.now()
            run = SweepRun(
                month=sweep.month,
                fingerprint=fingerprint,
                rule_pack_version=sweep.rule_pack_version,
                rule_pack_hash=sweep.rule_pack_hash,
                inputs=sweep.inputs,
                counts=sweep.counts,
                entitlements_sha256=sweep.entitlements_sha256,
                entitlement_rows=sweep.entitlement_rows,
                payable_rows=sweep.payable_rows,
                payable_total=sweep.payable_total,
                source=sweep.source,
                started_by=sweep.started_by or by,
                imported_by=by,
                imported_at=now,
                release_id=release_id,
                accounts_checked=True,
            )
            s.add(run)
            s.flush()
            crashpoint("import:run_added")
            for chunk in sweep.chunks():  # sealed and copied 20,000 rows at a time
                for r in chunk:
                    r["run_id"] = run.id
                    r["account_problem"] = account_hold(r["account_no"])
                bulk_insert(s, RunEntitlement.__table__, chunk)
            audit.append(
                s,
                at=now,
                actor=by,
                action="run.import",
                object_type="run",
                object_id=run.id,
                after={
                    "month": run.month,
                    "fingerprint": fingerprint,
                    "rule_pack": {"version": run.rule_pack_version, "hash": run.rule_pack_hash},
                    "inputs": run.inputs,
                    "entitlements_sha256": run.entitlements_sha256,
                    "entitlement_rows": run.entitlement_rows,
                    "payable_rows": run.payable_rows,
                    "payable_total": format_amount(run.payable_total),
                    "started_by": run.started_by,
                    "source": run.source,
                    **({"release": release_id} if release_id is not None else {}),
                },
            )
            crashpoint("import:db_mid")
            return _result(run, already=False)
    except IntegrityError:
        # Another process imported the same sweep between our check and our insert.
        with db.transaction() as s:
            existing = s.execute(
                select(SweepRun).where(SweepRun.fingerprint == fingerprint)
            ).scalar_one_or_none()
            if existing is None:
                raise
            return _result(existing, already=True)


def get_run(session: Session, run_id: int) -> SweepRun:
    """The run with this id, or NotFound."""
    run = session.get(SweepRun, run_id)
    if run is None:
        raise NotFound(f"there is no sweep run {run_id} in the ledger")
    return run


def list_runs(db: Database, month: str | None = None) -> list[SweepRun]:
    """Recorded runs, newest first, optionally for one month."""
    with db.snapshot() as s:
        q = select(SweepRun).order_by(SweepRun.id.desc())
        if month:
            q = q.where(SweepRun.month == month)
        return list(s.execute(q).scalars())


def _folder_present(source: str | None) -> bool:
    return bool(source) and (Path(source) / SUMMARY).is_file()


def _relink(session: Session, db: Database, run: SweepRun, source: str, by: str) -> None:
    """Point a recorded run at a new folder of the same sweep when its own folder is gone
    (pruned or moved): the same fingerprint means the same entitlements, byte for byte."""
    if run.source == source or _folder_present(run.source) or not _folder_present(source):
        return
    before = run.source
    run.source = source
    audit.append(session, at=db.now(), actor=by, action="run.relink", object_type="run",
                 object_id=run.id, before={"source": before}, after={"source": source})  # fmt: skip


# ------------------------------------------------------------------------- reuse of a run


def delivery_inputs(folder: Path) -> dict[str, dict[str, str]] | None:
    """The input files of a delivery and their SHA-256, as summary.json records them
    (``{"persons": {"file": "persons.csv", "sha256": ...}, ...}``); None when the folder is
    not a usable delivery (the sweep then says why)."""
    from benefits.errors import BenefitsError
    from benefits.ingest import find_file
    from benefits.schema import TABLE_ORDER

    folder = Path(folder)
    if not folder.is_dir():
        return None
    found: dict[str, dict[str, str]] = {}
    try:
        for name in TABLE_ORDER:
            path = find_file(folder, name)
            if path is not None:
                digest = hashlib.sha256(read_output(path)).hexdigest()
                found[name] = {"file": path.name, "sha256": digest}
    except (BenefitsError, OSError):
        return None
    return found


def run_identity(month: str, rule_pack_hash: str, inputs: dict[str, Any]) -> str:
    """SHA-256 of what decides a sweep's result: the month, the rule pack and the inputs."""
    ident = {"month": month, "rule_pack": rule_pack_hash, "inputs": inputs}
    return hashlib.sha256(canonical(ident).encode("utf-8")).hexdigest()


def find_identical_run(
    db: Database, month: str, rule_pack_hash: str, inputs: dict[str, Any], engine_version: str
) -> SweepRun | None:
    """The newest recorded run of `month` with the same rule pack and input files, swept by
    the same engine version, whose output folder is still there — or None."""
    wanted = run_identity(month, rule_pack_hash, inputs)
    with db.snapshot() as s:
        candidates = list(s.execute(
            select(SweepRun).where(SweepRun.month == month,
                                   SweepRun.rule_pack_hash == rule_pack_hash)
            .order_by(SweepRun.id.desc())
        ).scalars())  # fmt: skip
    for run in candidates:
        if run_identity(run.month, run.rule_pack_hash, run.inputs or {}) != wanted:
            continue
        if not _folder_present(run.source):
            continue
        try:
            summary = json.loads((Path(run.source) / SUMMARY).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if summary.get("engine_version") == engine_version:
            return run
    return None


def record_reuse(db: Database, run: SweepRun, by: str) -> ImportResult:
    """Audit that `by` asked for a sweep whose identical run was reused; the run's result."""
    with db.transaction() as s:
        audit.append(s, at=db.now(), actor=by, action="run.reuse", object_type="run",
                     object_id=run.id, after={"month": run.month, "source": run.source,
                                              "fingerprint": run.fingerprint})  # fmt: skip
    return ImportResult(run.id, run.month, run.payable_rows, run.payable_total, already=True,
                        reused=True)  # fmt: skip


# ---------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class PruneEntry:
    """One run's output folder: removed (or to be, in a dry run) or kept, and why."""

    run_id: int
    month: str
    folder: str
    size: int
    reason: str


@dataclass
class PrunePlan:
    """What `prune_runs` removed (or would remove) and what it kept."""

    keep_months: int
    months_kept: list[str]
    removed: list[PruneEntry] = field(default_factory=list)
    kept: list[PruneEntry] = field(default_factory=list)
    dry_run: bool = False

    @property
    def freed(self) -> int:
        """Bytes removed (or that a real run would remove)."""
        return sum(e.size for e in self.removed)


def _month_index(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def prune_runs(db: Database, keep_months: int, by: str, dry_run: bool = False) -> PrunePlan:
    """Delete the output folders of old, superseded runs; the ledger rows stay.

    Kept, whatever their age: every run of the newest `keep_months` benefit months recorded,
    the latest run of each month (its files back the month's decisions), and every run with a
    batch that was not rejected (draft, submitted, approved, exported, reconciled: the money
    and the audit rely on it). The rest — runs superseded by a later run of their month — lose
    their output folder; their rows, entitlements, hashes and audit entries stay in the
    ledger, and each removal is audited as ``run.prune``.

    Example:
        >>> plan = prune_runs(db, keep_months=12, by="ops", dry_run=True)   # doctest: +SKIP
        >>> [(e.run_id, e.reason) for e in plan.removed]                     # doctest: +SKIP
        [(3, 'superseded by run 4 of 2024-12')]
    """
    if keep_months < 1:
        raise InvalidInput(f"keep-months must be 1 or more, got {keep_months}")
    with db.snapshot() as s:
        runs = list(s.execute(select(SweepRun).order_by(SweepRun.id)).scalars())
        batches = s.execute(select(Batch.run_id, Batch.id, Batch.status)).all()
    live: dict[int, str] = {}
    for run_id, batch_id, status in batches:
        if status != REJECTED:
            live.setdefault(run_id, f"batch {batch_id} is {status}")
    latest: dict[str, SweepRun] = {}
    for run in runs:
        latest[run.month] = run  # ids grow: the last one seen is the newest
    months = sorted(latest, reverse=True)
    newest = _month_index(months[0]) if months else 0
    recent = [m for m in months if newest - _month_index(m) < keep_months]
    plan = PrunePlan(keep_months, recent, dry_run=dry_run)
    sources_kept: set[str] = set()
    doomed: list[tuple[SweepRun, str]] = []
    for run in runs:
        if not _folder_present(run.source):
            continue
        if run.month in recent:
            reason = f"{run.month} is one of the {keep_months} newest months"
        elif latest[run.month].id == run.id:
            reason = f"latest run of {run.month}"
        elif run.id in live:
            reason = live[run.id]
        else:
            doomed.append((run, f"superseded by run {latest[run.month].id} of {run.month}"))
            continue
        sources_kept.add(str(Path(run.source).resolve()))
        plan.kept.append(PruneEntry(run.id, run.month, run.source, 0, reason))
    for run, reason in doomed:
        folder = Path(run.source)
        if str(folder.resolve()) in sources_kept:  # shared with a kept run: never
            plan.kept.append(PruneEntry(run.id, run.month, run.source, 0,
                                        "its folder is also a kept run's"))  # fmt: skip
            continue
        entry = PruneEntry(run.id, run.month, run.source, _size(folder), reason)
        plan.removed.append(entry)
        if dry_run:
            continue
        with db.transaction() as s:  # a failed removal rolls its audit entry back
            audit.append(s, at=db.now(), actor=by, action="run.prune", object_type="run",
                         object_id=run.id, before={"source": run.source},
                         after={"removed_bytes": entry.size, "reason": reason,
                                "keep_months": keep_months})  # fmt: skip
            s.flush()
            shutil.rmtree(folder)
    return plan
