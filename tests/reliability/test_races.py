"""Races: the same ledger command started twice at the same moment, as two real processes
released together by a barrier file — one result; the other is refused with a clear one-line
message, or (import, export: both idempotent by design) told that it was already done."""

from __future__ import annotations

from pathlib import Path

from ledger_helpers import ALICE, BOB, CAROL, bank_lines
from reliability_helpers import Figures, Month, Proc, counts, duplicates, finish, start
from test_ledger_crash import item_states

from benefits.ledger import Ledger


def race(fig: Figures, tmp_path: Path, first: list[str], second: list[str]) -> list[Proc]:
    """Start both commands, let them load, release them at once; both results."""
    barrier = tmp_path / "go"
    procs = [start(args, barrier=barrier) for args in (first, second)]
    barrier.touch()
    results = [finish(p, a) for p, a in zip(procs, (first, second), strict=True)]
    for r in results:
        fig.run(r)
        assert "Traceback" not in r.output, r.output
    return results


def one_line_refusal(fig: Figures, proc: Proc, *phrases: str) -> None:
    fig.refused += 1
    assert proc.returncode == 2, proc.output
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for phrase in phrases:
        assert phrase in proc.stderr, proc.stderr


def prepared(db_url: str, month: Month, upto: str) -> Ledger:
    """An initialised ledger with the month imported and, up to `upto`, batch 1 prepared."""
    ledger = Ledger(db_url)
    ledger.init(by="admin")
    ledger.import_run(month.out, by=ALICE)
    if upto in ("submitted", "approved"):
        ledger.create_batch(1, by=ALICE)
        ledger.submit(1, by=ALICE)
    if upto == "approved":
        ledger.approve(1, by=BOB)
    return ledger


def test_two_imports_of_one_sweep_at_once(
    month: Month, db_url: str, tmp_path: Path, figures: Figures
) -> None:
    ledger = Ledger(db_url)
    ledger.init(by="admin")
    args = ["ledger", "import-run", "--out", str(month.out), "--db", db_url]
    a, b = race(figures, tmp_path, [*args, "--by", ALICE], [*args, "--by", BOB])
    assert (a.returncode, b.returncode) == (0, 0), a.output + b.output
    (run,) = ledger.runs()
    said = sorted(f"was already recorded as run {run.id}:" in p.stdout for p in (a, b))
    assert said == [False, True], a.stdout + b.stdout  # one records it, one is told so
    assert counts(ledger)["runs"] == 1 and counts(ledger)["entitlements"] == month.payable
    assert ledger.verify_audit().ok
    ledger.close()


def test_two_batch_creations_at_once(
    month: Month, db_url: str, tmp_path: Path, figures: Figures
) -> None:
    ledger = prepared(db_url, month, "imported")
    args = ["batch", "create", "--run", "1", "--db", db_url]
    a, b = race(figures, tmp_path, [*args, "--by", ALICE], [*args, "--by", "dave"])
    won = [p for p in (a, b) if p.returncode == 0]
    lost = [p for p in (a, b) if p.returncode != 0]
    assert len(won) == 1 and "created as draft" in won[0].stdout, a.output + b.output
    one_line_refusal(figures, lost[0], "batch")
    assert counts(ledger)["batches"] == 1 and counts(ledger)["items"] == month.payable
    figures.duplicates = duplicates(ledger)
    figures.items = month.payable
    assert figures.duplicates == 0 and ledger.verify_audit().ok
    ledger.close()


def test_two_approvals_at_once(month: Month, db_url: str, tmp_path: Path, figures: Figures) -> None:
    ledger = prepared(db_url, month, "submitted")
    args = ["batch", "approve", "1", "--db", db_url]
    a, b = race(figures, tmp_path, [*args, "--by", BOB], [*args, "--by", CAROL])
    won = [p for p in (a, b) if p.returncode == 0]
    lost = [p for p in (a, b) if p.returncode != 0]
    assert len(won) == 1 and "approved (by" in won[0].stdout, a.output + b.output
    winner = ledger.batch(1).batch.approved_by
    one_line_refusal(figures, lost[0], "cannot approve batch 1", f"already approved by {winner}")
    approvals = [e for e in ledger.audit_entries(100) if e.action == "batch.approve"]
    assert len(approvals) == 1 and ledger.verify_audit().ok
    ledger.close()


def test_two_exports_at_once(month: Month, db_url: str, tmp_path: Path, figures: Figures) -> None:
    ledger = prepared(db_url, month, "approved")
    pending = item_states(ledger, 1)["pending"]
    bank = tmp_path / "bank" / "2025-01.csv"
    args = ["batch", "export", "1", "--to", str(bank), "--db", db_url]
    a, b = race(figures, tmp_path, [*args, "--by", CAROL], [*args, "--by", "erin"])
    assert (a.returncode, b.returncode) == (0, 0), a.output + b.output
    said = sorted("already exported: identical file written again" in p.stdout for p in (a, b))
    assert said == [False, True], a.stdout + b.stdout
    exports = [e for e in ledger.audit_entries(100) if e.action == "batch.export"]
    assert len(exports) == 1
    assert [p.name for p in bank.parent.iterdir()] == [bank.name]  # one bank file, no temp
    lines = bank_lines(bank)
    assert len(lines) == pending == item_states(ledger, 1)["sent"]
    figures.items = len(lines)
    figures.duplicates = len(lines) - len({line[3] for line in lines})
    assert figures.duplicates == 0
    assert ledger.batch(1).batch.status == "exported" and ledger.verify_audit().ok
    ledger.close()
