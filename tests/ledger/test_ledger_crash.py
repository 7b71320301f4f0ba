"""A process killed (SIGKILL) in the middle of an export or a reconciliation leaves the ledger
consistent, and running the operation again finishes it exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ledger_helpers import ALICE, BOB, CAROL, bank_lines, town, write_return, write_sweep
from sqlalchemy import func, select

from benefits.ledger import Ledger
from benefits.ledger.bankfile import sha256_hex
from benefits.ledger.faults import ENV
from benefits.ledger.models import BankFile, BankReturn, BatchItem

CHILD = """
import sys
from pathlib import Path
from benefits.ledger import Ledger
url, op, batch, path = sys.argv[1:5]
with Ledger(url) as ledger:
    if op == "export":
        ledger.export(int(batch), Path(path), by="carol")
    else:
        ledger.reconcile(int(batch), Path(path), by="carol")
print("finished")
"""


def run_child(db_url: str, op: str, batch: int, path: Path, crash_at: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if crash_at:
        env[ENV] = crash_at
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, db_url, op, str(batch), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(proc.stderr)
    return proc.returncode


def item_states(ledger: Ledger, batch: int) -> dict[str, int]:
    with ledger.db.transaction() as s:
        rows = s.execute(
            select(BatchItem.status, func.count())
            .where(BatchItem.batch_id == batch)
            .group_by(BatchItem.status)
        ).all()
    return {r[0]: r[1] for r in rows}


def approved_batch(ledger: Ledger, sweeps: Path) -> int:
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(40)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    return b.id


@pytest.mark.parametrize("point", ["export:file_written", "export:file_renamed", "export:db_mid"])
def test_killed_export_is_consistent_and_rerunnable(
    ledger: Ledger, db_url: str, sweeps: Path, tmp_path: Path, point: str
) -> None:
    b = approved_batch(ledger, sweeps)
    bank = tmp_path / "bank" / "2025-01.csv"
    assert run_child(db_url, "export", b, bank, point) == -signal.SIGKILL

    # Nothing was recorded: still approved, nothing sent, no bank file row, chain intact.
    assert ledger.batch(b).batch.status == "approved"
    assert item_states(ledger, b) == {"pending": 40}
    with ledger.db.transaction() as s:
        assert s.execute(select(func.count()).select_from(BankFile)).scalar_one() == 0
    assert ledger.verify_audit().ok
    half_written = bank.read_bytes() if bank.exists() else None
    assert (half_written is None) == (point == "export:file_written")

    # Running it again finishes the export, with the very same bytes if a file got out.
    assert run_child(db_url, "export", b, bank, None) == 0
    result = ledger.batch(b)
    assert result.batch.status == "exported"
    assert item_states(ledger, b) == {"sent": 40}
    assert result.bank_file_sha256 == sha256_hex(bank.read_bytes())
    if half_written is not None:
        assert half_written == bank.read_bytes()
    assert len(bank_lines(bank)) == 40
    assert [p.name for p in bank.parent.iterdir()] == [bank.name]  # no temporary file left
    exports = [e for e in ledger.audit_entries(100) if e.action == "batch.export"]
    assert len(exports) == 1 and ledger.verify_audit().ok


def test_killed_reconciliation_is_consistent_and_rerunnable(
    ledger: Ledger, db_url: str, sweeps: Path, tmp_path: Path
) -> None:
    b = approved_batch(ledger, sweeps)
    bank = tmp_path / "bank.csv"
    ledger.export(b, bank, by=CAROL)
    ret = write_return(bank, tmp_path / "return.csv", failed={0: "account closed", 5: "deceased"})
    assert run_child(db_url, "reconcile", b, ret, "reconcile:db_mid") == -signal.SIGKILL

    assert ledger.batch(b).batch.status == "exported"
    assert item_states(ledger, b) == {"sent": 40}
    with ledger.db.transaction() as s:
        assert s.execute(select(func.count()).select_from(BankReturn)).scalar_one() == 0
    assert ledger.verify_audit().ok

    assert run_child(db_url, "reconcile", b, ret, None) == 0
    assert ledger.batch(b).batch.status == "reconciled"
    assert item_states(ledger, b) == {"paid": 38, "held": 2}
    assert run_child(db_url, "reconcile", b, ret, None) == 0  # and once more: no change
    assert item_states(ledger, b) == {"paid": 38, "held": 2}
    assert ledger.verify_audit().ok
