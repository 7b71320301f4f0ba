"""Sweep runs: read a sweep's output folder and record it, with its pay and credit rows.

A run is identified by a fingerprint of its month, rule pack, input file hashes and the bytes
of ``entitlements.csv``; the database holds each fingerprint once, so importing the same sweep
twice (or from two terminals at once) records one run.

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
from benefits.ledger.models import RunEntitlement, SweepRun
from benefits.ledger.money import ZERO, format_amount, parse_amount

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


@dataclass
class SweepOutput:
    """What the ledger takes from a sweep folder (only `pay`/`credit` rows are kept)."""

    source: str
    month: str
    rule_pack_version: str
    rule_pack_hash: str
    inputs: dict[str, Any]
    counts: dict[str, Any]
    entitlements_sha256: str
    entitlement_rows: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    started_by: str | None = None

    @property
    def payable_total(self) -> Decimal:
        """Sum of the pay and credit amounts (held ones included)."""
        return sum((r["amount"] for r in self.rows), ZERO)

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
    data = ent_path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{ent_path}: not UTF-8 ({exc})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"{ent_path}: missing column(s) {', '.join(missing)}")

    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    count = 0
    for count, raw in enumerate(reader, start=1):
        line = count + 1  # the header is line 1
        parsed = _parse_row(line, raw, month, errors)
        if parsed is None:
            continue
        key = (parsed["id_no"], parsed["policy_id"])
        if key in seen:
            errors.append(
                f"line {line}: {parsed['policy_id']} for this person in {month} again "
                f"(first on line {seen[key]}); one payment per person × policy × month"
            )
            continue
        seen[key] = line
        rows.append(parsed)
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        listed = "; ".join(errors[:MAX_REPORTED_ERRORS])
        if more > 0:
            listed += f"; and {more} more"
        raise InvalidInput(f"{ent_path}: {listed}")

    pack = summary["rule_pack"]
    by_mode: dict[str, int] = {}
    for r in rows:
        by_mode[r["mode"]] = by_mode.get(r["mode"], 0) + 1
    return SweepOutput(
        source=str(out),
        month=month,
        rule_pack_version=str(pack["version"]),
        rule_pack_hash=str(pack["hash"]),
        inputs=summary["inputs"],
        counts={
            "tables": summary.get("tables", {}),
            "policies": summary.get("policies", {}),
            "entitlements": {"rows": count, "payable": by_mode},
        },
        entitlements_sha256=hashlib.sha256(data).hexdigest(),
        entitlement_rows=count,
        rows=rows,
        started_by=summary.get("started_by"),
    )


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
                return _result(existing, already=True)
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
                payable_rows=len(sweep.rows),
                payable_total=sweep.payable_total,
                source=sweep.source,
                started_by=sweep.started_by or by,
                imported_by=by,
                imported_at=now,
            )
            s.add(run)
            s.flush()
            crashpoint("import:run_added")
            if sweep.rows:
                bulk_insert(
                    s, RunEntitlement.__table__, [{"run_id": run.id, **r} for r in sweep.rows]
                )
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
