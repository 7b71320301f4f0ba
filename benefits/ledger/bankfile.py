"""Bank payment files out, bank return files in.

**Payment file** (UTF-8 CSV): a header ``account,masked_name,amount,reference``, one line per
pending item of the batch in item order (an item whose account number is not valid is held
at export, with the reason, instead of being sent), and a trailer ``TRAILER,<count>,<total>,<batch
reference>``. Held and recovery items never appear. The file's bytes depend only on the
ledger, so an export interrupted at any point and run again writes the very same file — the
same references, which the bank uses to refuse a duplicate — and its SHA-256 is recorded.

**Return file** (CSV with a header): ``reference,status[,reason][,amount]`` with status
``paid`` or ``failed``. Paid items become ``paid``; failed ones become ``held`` with the
bank's reason, to be released once fixed. A return file is applied whole or not at all, and
importing one twice changes nothing.

Example:
    >>> reference(3, 17)
    'BNF-B000003-I000000017'
    >>> parse_reference("BNF-B000003-I000000017")
    (3, 17)
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from benefits import classes, exports
from benefits.accountno import account_no_problem
from benefits.ledger import audit, totals
from benefits.ledger.batchstate import describe_state, get_batch, why_not
from benefits.ledger.db import Database
from benefits.ledger.errors import Conflict, IllegalTransition, InvalidInput, LedgerError
from benefits.ledger.faults import crashpoint
from benefits.ledger.items import BAD_ACCOUNT
from benefits.ledger.models import (
    APPROVED,
    EXPORTED,
    HELD,
    PAID,
    PENDING,
    RECONCILED,
    SENT,
    BankFile,
    BankReturn,
    Batch,
    BatchItem,
)
from benefits.ledger.money import ZERO, format_amount, parse_amount
from benefits.private import FILE_MODE

HEADER = ("account", "masked_name", "amount", "reference")
TRAILER = "TRAILER"
PREFIX = "BNF"
_REF_RE = re.compile(r"^BNF-B(\d{6,})-I(\d{9,})$")
CHUNK = 2000
STREAM_ROWS = 10_000  # items read at a time when writing a bank file


def reference(batch_id: int, item_id: int) -> str:
    """The payment reference of an item: unique, stable, and it names its batch."""
    return f"{PREFIX}-B{batch_id:06d}-I{item_id:09d}"


def batch_reference(batch_id: int) -> str:
    """The reference of a whole batch (on the trailer line)."""
    return f"{PREFIX}-B{batch_id:06d}"


def parse_reference(text: str) -> tuple[int, int] | None:
    """(batch id, item id) of a payment reference, or None when it is not one of ours."""
    m = _REF_RE.match(text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def render(batch_id: int, lines: Iterable[tuple[int, str, str, Decimal]]) -> bytes:
    """The payment file's bytes for (item id, account, masked name, amount) lines.

    Example:
        >>> print(render(3, [(17, "6222020000000001", "张*明", Decimal("459.00"))]).decode())
        account,masked_name,amount,reference
        6222020000000001,张*明,459.00,BNF-B000003-I000000017
        TRAILER,1,459.00,BNF-B000003
        <BLANKLINE>
    """
    out = io.BytesIO()
    write_lines(out, batch_id, lines)
    return out.getvalue()


def write_lines(
    out: BinaryIO, batch_id: int, lines: Iterable[tuple[int, str, str, Decimal]]
) -> tuple[int, Decimal, str]:
    """Write the payment file (header, a line per item, trailer) to `out` as it goes, in
    pieces of :data:`CHUNK` lines: the file is never held whole. Returns (lines, total,
    SHA-256 hex of the bytes written)."""
    digest = hashlib.sha256()
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")

    def flush() -> None:
        data = buf.getvalue().encode("utf-8")
        digest.update(data)
        out.write(data)
        buf.seek(0)
        buf.truncate()

    w.writerow(HEADER)
    count, total = 0, ZERO
    for item_id, account, masked_name, amount in lines:
        w.writerow((account, masked_name, format_amount(amount), reference(batch_id, item_id)))
        count += 1
        total += amount
        if count % CHUNK == 0:
            flush()
    w.writerow((TRAILER, count, format_amount(total), batch_reference(batch_id)))
    flush()
    return count, total, digest.hexdigest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def _write_atomic(
    path: Path, batch_id: int, lines: Iterable[tuple[int, str, str, Decimal]],
    expect_sha256: str | None = None,
) -> tuple[int, Decimal, str]:
    """Stream the payment file into a temporary file, fsync, rename: the path holds the old
    file or the whole new one, never half of it. With `expect_sha256`, a file whose bytes
    differ is removed and refused before it takes the path. Temporary files left by a killed
    earlier attempt are removed. Returns (lines, total, SHA-256)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.chmod(tmp, FILE_MODE)  # clear account numbers: the service account's eyes only
    try:
        with os.fdopen(fd, "wb") as fh:
            count, total, sha = write_lines(fh, batch_id, lines)
            fh.flush()
            os.fsync(fh.fileno())
        if expect_sha256 is not None and sha != expect_sha256:
            raise LedgerError(
                f"batch {batch_id}: the bank file rebuilt from the ledger has SHA-256 {sha}, "
                f"but {expect_sha256} was recorded at export — the ledger was changed after "
                "export; run `benefits audit verify` and do not send a new file"
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    crashpoint("export:file_written")
    os.replace(tmp, path)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        stale.unlink(missing_ok=True)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return count, total, sha
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return count, total, sha


@dataclass(frozen=True)
class ExportResult:
    """The written bank file; `already` when the batch had been exported before (the file
    was written again, identical to the recorded one)."""

    batch_id: int
    path: Path
    sha256: str
    count: int
    total: Decimal
    already: bool
    held: tuple[int, ...] = ()  # items held at export: their account number is not valid


def _sendable(
    rows: Iterable[tuple[int, str, str, Decimal]], invalid: list[tuple[int, str]]
) -> Iterator[tuple[int, str, str, Decimal]]:
    """The lines that may go out; each item whose account number is not valid is left out
    and appended to `invalid` as (item id, problem)."""
    for line in rows:
        problem = account_no_problem(line[1])
        if problem is None:
            yield line
        else:
            invalid.append((line[0], problem))


def _hold_invalid_accounts(
    db: Database, s: Session, batch_id: int, invalid: list[tuple[int, str]], by: str
) -> tuple[int, ...]:
    """Hold (with the reason, audited) every item whose account number is not valid, so it
    never reaches the bank file; the ids held."""
    now = db.now()
    for item_id, problem in invalid:
        reason = BAD_ACCOUNT.format(problem=problem) + " (held at export)"
        s.execute(
            update(BatchItem)
            .where(BatchItem.id == item_id, BatchItem.status == PENDING)
            .values(status=HELD, hold_reason=reason)
            .execution_options(synchronize_session=False)
        )
        audit.append(
            s, at=now, actor=by, action="item.hold", object_type="item", object_id=item_id,
            before={"status": PENDING}, after={"status": HELD, "hold_reason": reason,
                                               "batch": batch_id},
        )  # fmt: skip
    return tuple(item_id for item_id, _ in invalid)


def _watermark(by: str, now: Any, approved_by: str | None) -> dict[str, Any]:
    """The output-limit fields of a bank file's audit entry (benefits.exports): the bank's
    format has no room for a watermark line, so who, when, purpose and class are chained."""
    mark = exports.Watermark(by, now, exports.BANK_PURPOSE, None, classes.SENSITIVE)
    return {"class": classes.SENSITIVE, "purpose": exports.BANK_PURPOSE,
            "approved_by": approved_by, "watermark": mark.fields()}  # fmt: skip


def _lines(session: Session, *conds: Any) -> Iterator[tuple[int, str, str, Decimal]]:
    """The items' (id, account, masked name, amount) in item order, read :data:`STREAM_ROWS`
    at a time (a server-side cursor on PostgreSQL): memory stays bounded at any size."""
    result = session.connection().execute(
        select(BatchItem.id, BatchItem.account_no, BatchItem.masked_name, BatchItem.amount)
        .where(*conds)
        .order_by(BatchItem.id),
        execution_options={"yield_per": STREAM_ROWS},
    )
    with result:
        for part in result.partitions():
            for r in part:
                yield (r[0], r[1], r[2], r[3])


def export_batch(db: Database, batch_id: int, to: Path, by: str) -> ExportResult:
    """Write the bank payment file of an approved batch and mark it exported (re-runnable).

    The batch row stays locked from reading the items to the commit. If the process dies
    anywhere before the commit, the batch is still approved and running the export again
    writes the identical file; once exported, running it again re-writes the file and checks
    its SHA-256 against the recorded one.

    Example:
        >>> export_batch(db, 3, Path("bank/B3.csv"), by="carol").count   # doctest: +SKIP
        23112
    """
    to = Path(to)
    with db.transaction() as s:
        batch = get_batch(s, batch_id, lock=True)
        if batch.status in (EXPORTED, RECONCILED):
            return _rewrite(db, s, batch, to, by)
        if batch.status != APPROVED:
            raise IllegalTransition(
                "export", by, f"batch {batch.id}", describe_state(batch),
                why_not("export", batch),
            )  # fmt: skip
        invalid: list[tuple[int, str]] = []
        lines = _lines(
            s, BatchItem.batch_id == batch.id, BatchItem.status == PENDING,
            BatchItem.voided.is_(False),
        )  # fmt: skip
        count, total, sha = _write_atomic(to, batch.id, _sendable(lines, invalid))
        crashpoint("export:file_renamed")
        held = _hold_invalid_accounts(db, s, batch.id, invalid, by)

        now = db.now()
        bank_file = BankFile(
            batch_id=batch.id, path=str(to), sha256=sha, item_count=count, total=total,
            created_by=by, created_at=now,
        )  # fmt: skip
        s.add(bank_file)
        s.flush()
        sent = s.execute(
            update(BatchItem)
            .where(
                BatchItem.batch_id == batch.id, BatchItem.status == PENDING,
                BatchItem.voided.is_(False),
            )
            .values(status=SENT, bank_file_id=bank_file.id)
            .execution_options(synchronize_session=False)
        ).rowcount  # fmt: skip
        if sent != count:  # pragma: no cover - the batch lock makes this unreachable
            raise Conflict(f"batch {batch.id} items changed during export; nothing was recorded")
        totals.rebuild(s, batch.id)
        crashpoint("export:db_mid")
        before = describe_state(batch)
        s.execute(
            update(Batch)
            .where(Batch.id == batch.id, Batch.status == APPROVED)
            .values(status=EXPORTED, exported_by=by, exported_at=now)
            .execution_options(synchronize_session=False)
        )
        audit.append(
            s, at=now, actor=by, action="batch.export", object_type="batch", object_id=batch.id,
            before={"status": APPROVED, "state": before},
            after={"status": EXPORTED, "file": str(to), "sha256": sha, "count": count,
                   "total": format_amount(total), **_watermark(by, now, batch.approved_by)},
        )  # fmt: skip
        return ExportResult(batch.id, to, sha, count, total, already=False, held=held)


def _rewrite(db: Database, s: Session, batch: Batch, to: Path, by: str) -> ExportResult:
    """Write an exported batch's bank file again, byte-identical to the recorded one."""
    bank_file = s.execute(select(BankFile).where(BankFile.batch_id == batch.id)).scalar_one()
    lines = _lines(s, BatchItem.bank_file_id == bank_file.id)
    _, _, sha = _write_atomic(to, batch.id, lines, expect_sha256=bank_file.sha256)
    now = db.now()
    audit.append(
        s, at=now, actor=by, action="batch.export.rewrite", object_type="batch",
        object_id=batch.id,
        after={"file": str(to), "sha256": sha, **_watermark(by, now, batch.approved_by)},
    )  # fmt: skip
    return ExportResult(batch.id, to, sha, bank_file.item_count, bank_file.total, already=True)


# ------------------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class ReturnLine:
    """One line of a bank return file."""

    line: int
    batch_id: int
    item_id: int
    status: str
    reason: str
    amount: Decimal | None


def parse_return(path: Path, data: bytes) -> list[ReturnLine]:
    """Parse and check a return file; raise InvalidInput naming the file, line and field."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 ({exc})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "reference" not in fields or "status" not in fields:
        raise InvalidInput(f"{path}: needs a header with at least reference and status")
    out: list[ReturnLine] = []
    errors: list[str] = []
    for n, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
        if TRAILER in (row.get("reference"), row.get(fields[0])):
            continue
        ref = parse_reference(row.get("reference", ""))
        if ref is None:
            bad_ref = row.get("reference")
            errors.append(f"line {n}, reference: {bad_ref!r} is not a ledger reference")
            continue
        status = row.get("status", "").lower()
        if status not in (PAID, "failed"):
            errors.append(f"line {n}, status: must be paid or failed, got {row.get('status')!r}")
            continue
        amount = None
        if row.get("amount"):
            try:
                amount = parse_amount(row["amount"])
            except ValueError as exc:
                errors.append(f"line {n}, amount: {exc}")
                continue
        out.append(ReturnLine(n, ref[0], ref[1], status, row.get("reason", ""), amount))
    if errors:
        raise InvalidInput(f"{path}: " + "; ".join(errors[:10]))
    return out


@dataclass(frozen=True)
class ReconcileResult:
    """What a return file did: paid, failed (now held), lines already applied, items still
    awaiting the bank, the batch's status; `already` when this very file was imported."""

    batch_id: int
    paid: int
    failed: int
    unchanged: int
    still_sent: int
    status: str
    already: bool


def reconcile(db: Database, batch_id: int, file: Path, by: str) -> ReconcileResult:
    """Apply a bank return file to an exported batch, in one transaction.

    Example:
        >>> reconcile(db, 3, Path("bank/B3-return.csv"), by="carol").status  # doctest: +SKIP
        'reconciled'
    """
    file = Path(file)
    data = file.read_bytes()
    sha = sha256_hex(data)
    lines = parse_return(file, data)
    with db.transaction() as s:
        batch = get_batch(s, batch_id, lock=True)
        prior = s.execute(
            select(BankReturn).where(BankReturn.batch_id == batch.id, BankReturn.sha256 == sha)
        ).scalar_one_or_none()
        if prior is not None:
            still = _count_sent(s, batch.id)
            return ReconcileResult(batch.id, 0, 0, len(lines), still, batch.status, True)
        if batch.status not in (EXPORTED, RECONCILED):
            raise IllegalTransition(
                "reconcile", by, f"batch {batch.id}", describe_state(batch),
                why_not("reconcile", batch),
            )  # fmt: skip
        items = {
            r.id: r
            for r in s.connection().execute(
                select(BatchItem.id, BatchItem.status, BatchItem.bank_status,
                       BatchItem.bank_file_id, BatchItem.amount)
                .where(BatchItem.batch_id == batch.id, BatchItem.bank_file_id.is_not(None))
            ).all()
        }  # fmt: skip
        paid_ids: list[int] = []
        failed: list[dict[str, Any]] = []
        unchanged = 0
        errors: list[str] = []
        seen: set[int] = set()
        for ln in lines:
            item = items.get(ln.item_id)
            where = f"{file}, line {ln.line}"
            if ln.batch_id != batch.id or item is None:
                errors.append(f"{where}: {reference(ln.batch_id, ln.item_id)} was not sent "
                              f"in batch {batch.id}'s bank file")  # fmt: skip
                continue
            if ln.item_id in seen:
                errors.append(f"{where}: item {ln.item_id} appears twice")
                continue
            seen.add(ln.item_id)
            if ln.amount is not None and ln.amount != item.amount:
                errors.append(f"{where}: amount {ln.amount} but {item.amount} was sent")
                continue
            if item.status != SENT:
                if item.bank_status == ln.status:
                    unchanged += 1
                else:
                    errors.append(f"{where}: item {ln.item_id} is already {item.bank_status} "
                                  f"at the bank, this file says {ln.status}")  # fmt: skip
                continue
            if ln.status == PAID:
                paid_ids.append(ln.item_id)
            else:
                why = ln.reason or "the bank gave no reason"
                failed.append({"b_id": ln.item_id, "b_reason": why, "b_hold": f"bank: {why}"})
        if errors:
            raise InvalidInput(
                f"return file refused, nothing applied: {'; '.join(errors[:10])}"
                + (f"; and {len(errors) - 10} more" if len(errors) > 10 else "")
            )
        _mark_paid(s, paid_ids)
        if failed:
            s.connection().execute(
                update(BatchItem.__table__)
                .where(BatchItem.__table__.c.id == bindparam("b_id"),
                       BatchItem.__table__.c.status == SENT)
                .values(status=HELD, bank_status="failed", bank_reason=bindparam("b_reason"),
                        hold_reason=bindparam("b_hold")),
                failed,
            )  # fmt: skip
        totals.rebuild(s, batch.id)
        crashpoint("reconcile:db_mid")
        now = db.now()
        s.add(
            BankReturn(
                batch_id=batch.id, path=str(file), sha256=sha, paid=len(paid_ids),
                failed=len(failed), imported_by=by, imported_at=now,
            )
        )  # fmt: skip
        s.flush()
        still = _count_sent(s, batch.id)
        audit.append(
            s, at=now, actor=by, action="bank_return.import", object_type="batch",
            object_id=batch.id,
            after={"file": str(file), "sha256": sha, "paid": len(paid_ids),
                   "failed": len(failed), "unchanged": unchanged, "still_sent": still},
        )  # fmt: skip
        status = batch.status
        if still == 0 and batch.status == EXPORTED:
            s.execute(
                update(Batch)
                .where(Batch.id == batch.id, Batch.status == EXPORTED)
                .values(status=RECONCILED, reconciled_by=by, reconciled_at=now)
                .execution_options(synchronize_session=False)
            )
            status = RECONCILED
            audit.append(
                s, at=now, actor=by, action="batch.reconcile", object_type="batch",
                object_id=batch.id, before={"status": EXPORTED},
                after={"status": RECONCILED, "return_file_sha256": sha},
            )  # fmt: skip
        return ReconcileResult(
            batch.id, len(paid_ids), len(failed), unchanged, still, status, False
        )


def _mark_paid(s: Session, paid_ids: list[int]) -> None:
    """Sent items the bank paid become paid: on PostgreSQL the ids are copied into a
    temporary table and joined in one ``UPDATE … FROM``; elsewhere in chunks of ids."""
    conn = s.connection()
    if conn.dialect.name == "postgresql" and len(paid_ids) > CHUNK:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("CREATE TEMPORARY TABLE bank_paid_ids (id integer PRIMARY KEY) "
                        "ON COMMIT DROP")  # fmt: skip
            with cur.copy("COPY bank_paid_ids (id) FROM STDIN") as copy:
                for item_id in paid_ids:
                    copy.write_row((item_id,))
            cur.execute(
                "UPDATE batch_items AS i SET status = %s, bank_status = %s "
                "FROM bank_paid_ids AS p WHERE i.id = p.id AND i.status = %s",
                (PAID, PAID, SENT),
            )
            cur.execute("DROP TABLE bank_paid_ids")
        return
    for i in range(0, len(paid_ids), CHUNK):
        s.execute(
            update(BatchItem)
            .where(BatchItem.id.in_(paid_ids[i : i + CHUNK]), BatchItem.status == SENT)
            .values(status=PAID, bank_status=PAID)
            .execution_options(synchronize_session=False)
        )


def _count_sent(s: Session, batch_id: int) -> int:
    return int(
        s.execute(
            select(func.count()).where(BatchItem.batch_id == batch_id, BatchItem.status == SENT)
        ).scalar_one()
    )
