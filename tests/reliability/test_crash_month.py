"""Crashes: every ledger command of a month killed with SIGKILL at each of its phases, then run
again — one run, one batch, one bank file, no item missing or twice, a consistent batch, and an
audit chain that verifies.

The month is the session's synthetic district (see conftest.py); the commands are the real
``benefits`` CLI in child processes, killed at named crash points
(``$BENEFITS_LEDGER_CRASHPOINT``, benefits/ledger/faults.py) rather than after a sleep, so every
run kills at the same places. ``bulk:rows:n`` dies after the n-th chunk of 5,000 rows of a bulk
insert, i.e. with part of the entitlements or items written.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ledger_helpers import ALICE, BOB, CAROL, bank_lines, write_return
from reliability_helpers import Figures, Month, Proc, benefits, counts, duplicates
from sqlalchemy import select
from test_ledger_crash import item_states

from benefits.ledger import Ledger
from benefits.ledger.bankfile import parse_reference, sha256_hex
from benefits.ledger.bulk import BULK_CHUNK
from benefits.ledger.models import BatchItem


def bulk_points(rows: int) -> list[str]:
    """`bulk:rows:n` for the first two chunks a bulk insert of `rows` rows completes."""
    return [f"bulk:rows:{n}" for n in range(1, min(2, rows // BULK_CHUNK) + 1)]


def payable_keys(month: Month) -> set[tuple[str, str]]:
    with open(month.out / "entitlements.csv", newline="", encoding="utf-8") as fh:
        return {
            (r["id_no"], r["policy_id"])
            for r in csv.DictReader(fh)
            if r["mode"] in ("pay", "credit")
        }


def item_keys(ledger: Ledger) -> set[tuple[str, str]]:
    with ledger.db.transaction() as s:
        rows = s.execute(
            select(BatchItem.id_no, BatchItem.policy_id).where(BatchItem.voided.is_(False))
        ).all()
    return {(r[0], r[1]) for r in rows}


def killed(fig: Figures, proc: Proc, point: str) -> None:
    fig.run(proc)
    assert proc.killed, f"{point}: the process was not killed at its crash point\n{proc.output}"


def ok(fig: Figures, proc: Proc) -> Proc:
    fig.run(proc)
    assert proc.returncode == 0, proc.output
    assert "Traceback" not in proc.output
    return proc


def test_month_killed_at_every_phase_then_rerun(
    month: Month, db_url: str, tmp_path: Path, figures: Figures
) -> None:
    fig = figures
    db = ["--db", db_url]
    ok(fig, benefits("ledger", "init", *db))
    ledger = Ledger(db_url)
    try:
        empty = counts(ledger)

        # --- ledger import-run ------------------------------------------------------------
        imp = ["ledger", "import-run", "--out", str(month.out), "--by", ALICE, *db]
        for point in ["import:run_added", *bulk_points(month.payable), "import:db_mid"]:
            killed(fig, benefits(*imp, crash_at=point), point)
            assert counts(ledger) == empty, point  # rolled back whole
            assert ledger.verify_audit().ok
        killed(fig, benefits(*imp, crash_at="import:committed"), "import:committed")
        again = ok(fig, benefits(*imp))
        (run,) = ledger.runs()  # PostgreSQL ids skip the numbers of rolled-back inserts
        assert f"was already recorded as run {run.id}:" in again.stdout
        after_import = counts(ledger)
        assert after_import["runs"] == 1 and after_import["entitlements"] == month.payable

        # --- batch create -----------------------------------------------------------------
        create = ["batch", "create", "--run", str(run.id), "--by", ALICE, *db]
        for point in ["create:batch_claimed", *bulk_points(month.payable), "create:db_mid"]:
            killed(fig, benefits(*create, crash_at=point), point)
            assert counts(ledger) == after_import, point
            assert ledger.verify_audit().ok
        killed(fig, benefits(*create, crash_at="create:committed"), "create:committed")
        refused = benefits(*create)
        fig.run(refused)
        fig.refused += 1
        assert refused.returncode == 2 and "Traceback" not in refused.output
        (batch,) = ledger.batches()
        assert batch.status == "draft" and batch.item_count == month.payable
        assert "one open batch at a time" in refused.stderr
        assert f"batch {batch.id}" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert item_keys(ledger) == payable_keys(month)  # no item missing
        assert duplicates(ledger) == 0

        b = batch.id
        ledger.submit(b, by=ALICE)
        ledger.approve(b, by=BOB)

        # --- batch export -----------------------------------------------------------------
        bank = tmp_path / "bank" / "2025-01.csv"
        export = ["batch", "export", str(b), "--to", str(bank), "--by", CAROL, *db]
        pending = item_states(ledger, b)
        for point in ["export:file_written", "export:file_renamed", "export:db_mid"]:
            killed(fig, benefits(*export, crash_at=point), point)
            assert ledger.batch(b).batch.status == "approved", point
            assert item_states(ledger, b) == pending
            assert counts(ledger)["bank_files"] == 0
            assert ledger.verify_audit().ok
        killed(fig, benefits(*export, crash_at="export:committed"), "export:committed")
        first = bank.read_bytes()
        again = ok(fig, benefits(*export))
        assert "already exported: identical file written again" in again.stdout
        assert bank.read_bytes() == first  # one bank file, the very same bytes
        assert [p.name for p in bank.parent.iterdir()] == [bank.name]  # no temp file left
        detail = ledger.batch(b)
        assert detail.batch.status == "exported"
        assert detail.bank_file_sha256 == sha256_hex(first)
        lines = bank_lines(bank)
        refs = [parse_reference(line[3]) for line in lines]
        assert len(lines) == pending["pending"] == item_states(ledger, b)["sent"]
        assert len(set(refs)) == len(refs)  # no payment twice in the file
        exports = [e for e in ledger.audit_entries(200) if e.action == "batch.export"]
        assert len(exports) == 1

        # --- batch reconcile --------------------------------------------------------------
        ret = write_return(bank, tmp_path / "return.csv", failed={0: "account closed", 7: "frozen"})
        rec = ["batch", "reconcile", str(b), "--file", str(ret), "--by", CAROL, *db]
        for point in ["reconcile:db_mid"]:
            killed(fig, benefits(*rec, crash_at=point), point)
            assert ledger.batch(b).batch.status == "exported"
            assert item_states(ledger, b).get("sent") == len(lines)
            assert counts(ledger)["returns"] == 0
        killed(fig, benefits(*rec, crash_at="reconcile:committed"), "reconcile:committed")
        again = ok(fig, benefits(*rec))
        assert "was already applied" in again.stdout
        assert ledger.batch(b).batch.status == "reconciled"
        states = item_states(ledger, b)
        assert states.get("paid") == len(lines) - 2 and "sent" not in states
        assert counts(ledger)["returns"] == 1

        # --- the whole month --------------------------------------------------------------
        verify = ok(fig, benefits("audit", "verify", *db))
        assert "Traceback" not in verify.output
        fig.duplicates = duplicates(ledger)
        fig.missing = len(payable_keys(month) - item_keys(ledger))
        fig.items = ledger.batch(b).batch.item_count
        assert fig.duplicates == 0 and fig.missing == 0
        assert counts(ledger)["runs"] == 1 and counts(ledger)["batches"] == 1
        assert fig.kills >= 12
    finally:
        ledger.close()
