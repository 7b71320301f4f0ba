"""Run reuse and retention (issue 11 point 9): identical runs are recognised, a run whose
folder was pruned is relinked, and `prune-runs` removes only superseded old folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ledger_helpers import ALICE, BOB, pay_month, town, write_sweep
from sqlalchemy import select
from typer.testing import CliRunner

from benefits.ledger import Ledger
from benefits.ledger.errors import InvalidInput
from benefits.ledger.models import AuditEntry
from benefits.ledger.runs import find_identical_run, prune_runs


def _actions(ledger: Ledger, action: str) -> list[AuditEntry]:
    with ledger.db.snapshot() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.seq)).scalars())  # fmt: skip


def _with_engine(out: Path, version: str = "0.1.0") -> Path:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    summary["engine_version"] = version
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return out


def test_an_identical_run_is_found_by_month_rule_pack_and_inputs(
    ledger: Ledger, sweeps: Path
) -> None:
    out = _with_engine(write_sweep(sweeps / "a", "2025-01", town(3), persons_sha="11" * 32))
    run = ledger.import_run(out, by=ALICE)
    pack = "sha256:" + "ab" * 32
    inputs = {"persons": {"file": "persons.csv", "sha256": "11" * 32}}
    found = find_identical_run(ledger.db, "2025-01", pack, inputs, "0.1.0")
    assert found is not None and found.id == run.run_id
    changed = {"persons": {"file": "persons.csv", "sha256": "22" * 32}}
    assert find_identical_run(ledger.db, "2025-01", pack, changed, "0.1.0") is None
    assert find_identical_run(ledger.db, "2025-01", "sha256:" + "cd" * 32, inputs, "0.1.0") is None
    assert find_identical_run(ledger.db, "2025-02", pack, inputs, "0.1.0") is None
    assert find_identical_run(ledger.db, "2025-01", pack, inputs, "0.2.0") is None
    shutil.rmtree(out)  # a pruned run cannot be reused: there is nothing to show
    assert find_identical_run(ledger.db, "2025-01", pack, inputs, "0.1.0") is None


def test_a_run_whose_folder_is_gone_is_relinked_to_a_new_identical_sweep(
    ledger: Ledger, sweeps: Path
) -> None:
    first = write_sweep(sweeps / "first", "2025-01", town(3))
    run = ledger.import_run(first, by=ALICE)
    shutil.copytree(first, sweeps / "second")
    shutil.rmtree(first)
    again = ledger.import_run(sweeps / "second", by=BOB)
    assert again.already and again.run_id == run.run_id
    assert Path(ledger.runs()[0].source) == (sweeps / "second").resolve()
    (relink,) = _actions(ledger, "run.relink")
    assert relink.actor == BOB and relink.object_id == str(run.run_id)
    # while its folder is there, a run keeps it
    shutil.copytree(sweeps / "second", sweeps / "third")
    ledger.import_run(sweeps / "third", by=BOB)
    assert Path(ledger.runs()[0].source) == (sweeps / "second").resolve()
    assert ledger.verify_audit().ok


def _month_of_runs(ledger: Ledger, sweeps: Path, month: str, sizes: list[int]) -> list[int]:
    ids = []
    for n in sizes:
        out = write_sweep(sweeps / f"{month}-{n}", month, town(n))
        ids.append(ledger.import_run(out, by=ALICE).run_id)
    return ids


def test_prune_removes_only_superseded_old_folders(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    gone = ledger.import_run(write_sweep(sweeps / "gone", "2024-10", town(6)), by=ALICE).run_id
    shutil.rmtree(sweeps / "gone")  # a folder already removed is not listed again
    oct_old, oct_latest = _month_of_runs(ledger, sweeps, "2024-10", [3, 4])
    nov_paid = ledger.import_run(write_sweep(sweeps / "2024-11-paid", "2024-11", town(3)),
                                 by=ALICE).run_id  # fmt: skip
    bank = tmp_path / "bank"
    bank.mkdir()
    pay_month(ledger, sweeps / "2024-11-paid", bank)
    (nov_latest,) = _month_of_runs(ledger, sweeps, "2024-11", [5])
    dec_rejected, dec_latest = _month_of_runs(ledger, sweeps, "2024-12", [3, 4])
    batch = ledger.create_batch(dec_rejected, by=ALICE)
    ledger.submit(batch.id, by=ALICE)
    ledger.reject(batch.id, by=BOB, reason="wrong delivery")
    jan_old, jan_latest = _month_of_runs(ledger, sweeps, "2025-01", [3, 4])
    folders = {r.id: Path(r.source) for r in ledger.runs()}

    plan = prune_runs(ledger.db, keep_months=1, by="ops", dry_run=True)
    assert {e.run_id for e in plan.removed} == {oct_old, dec_rejected}
    assert all(p.is_dir() for i, p in folders.items() if i != gone)  # a dry run deletes nothing
    assert plan.freed == sum(f.stat().st_size for f in folders[oct_old].iterdir()) + sum(
        f.stat().st_size for f in folders[dec_rejected].iterdir())
    kept = {e.run_id: e.reason for e in plan.kept}
    assert set(kept) == {oct_latest, nov_paid, nov_latest, dec_latest, jan_old, jan_latest}
    assert "reconciled" in kept[nov_paid] and kept[oct_latest] == "latest run of 2024-10"
    assert plan.months_kept == ["2025-01"] and _actions(ledger, "run.prune") == []

    done = prune_runs(ledger.db, keep_months=1, by="ops")
    assert {e.run_id for e in done.removed} == {oct_old, dec_rejected}
    assert not folders[oct_old].exists() and not folders[dec_rejected].exists()
    assert all(folders[i].is_dir() for i in kept)
    pruned = _actions(ledger, "run.prune")
    assert sorted(int(e.object_id) for e in pruned) == sorted([oct_old, dec_rejected])
    assert {e.actor for e in pruned} == {"ops"}
    assert len(ledger.runs()) == 9  # the ledger keeps every run's rows
    assert ledger.verify_audit().ok
    assert prune_runs(ledger.db, keep_months=1, by="ops").removed == []

    # with three months kept, December's superseded run would have stayed
    assert prune_runs(ledger.db, keep_months=3, by="ops", dry_run=True).months_kept == [
        "2025-01", "2024-12", "2024-11"]
    with pytest.raises(InvalidInput, match="keep-months must be 1 or more"):
        prune_runs(ledger.db, keep_months=0, by="ops")


def test_prune_runs_command_lists_what_it_removes(tmp_path: Path) -> None:
    from benefits.cli import app

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Ledger(url) as ledger:
        ledger.init(by="admin")
        old, _ = _month_of_runs(ledger, tmp_path / "sweeps", "2024-12", [3, 4])
        _month_of_runs(ledger, tmp_path / "sweeps", "2025-01", [3])
    runner = CliRunner()
    args = ["ledger", "prune-runs", "--keep-months", "1", "--db", url, "--by", "ops"]
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would remove run {old} (2024-12, superseded by run 2 of 2024-12)" in dry.output
    assert "kept run 2 (2024-12): latest run of 2024-12" in dry.output
    assert (tmp_path / "sweeps" / "2024-12-3").is_dir()
    real = runner.invoke(app, args)
    assert real.exit_code == 0 and f"removed run {old}" in real.output, real.output
    assert not (tmp_path / "sweeps" / "2024-12-3").exists()
    bad = runner.invoke(app, [*args[:3], "0", *args[4:]])
    assert bad.exit_code == 2 and "keep-months must be 1 or more" in bad.output
