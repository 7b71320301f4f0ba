"""Sweep outputs, snapshots, the outbox and bank files are readable by the service account only.

Folders that hold sensitive personal data are 0700 and their files 0600 (snapshot files 0400),
whatever the process umask: a copy of the output folder by another account reads nothing.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from benefits.cycle.landing import scan_landing
from benefits.cycle.outbox import publish_alerts
from benefits.cycle.snapshot import SnapshotStore
from benefits.ledger import Ledger
from benefits.sweep import run_sweep

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "datasets" / "sample"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would let everyone read new files (0000): the code must not rely on it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_sweep_outputs_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    out = tmp_path / "out" / "2025-01"
    run_sweep(SAMPLE, "2025-01", out=out, traces="both")
    names = {p.name for p in out.iterdir()}
    assert {"entitlements.csv", "alerts.parquet", "quarantine.csv", "traces.jsonl"} <= names
    assert "summary.json" in names and "traces" in names
    assert mode(out) == 0o700
    assert {p.name: mode(p) for p in out.iterdir()} == {
        n: 0o700 if n == "traces" else 0o600 for n in names
    }
    columnar = {p.name: mode(p) for p in (out / "traces").iterdir()}
    assert columnar == {"rules.parquet": 0o600, "part-00000.parquet": 0o600}


def test_a_second_sweep_into_an_open_folder_closes_it(tmp_path: Path, open_umask: None) -> None:
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    (out / "entitlements.csv").write_text("old\n")
    os.chmod(out / "entitlements.csv", 0o666)
    run_sweep(SAMPLE, "2025-01", out=out, write_traces=False)
    assert mode(out) == 0o700
    assert all(mode(p) == 0o600 for p in out.iterdir())


def test_snapshots_and_outbox_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    landing = tmp_path / "landing" / "2025-01"
    shutil.copytree(SAMPLE, landing)
    store = SnapshotStore(tmp_path / "store")
    snap = store.take(scan_landing(tmp_path / "landing", "2025-01"))
    for folder in (store.root, store.objects, store.snapshots, snap.folder):
        assert mode(folder) == 0o700, folder
    files = list(snap.folder.iterdir()) + list(store.objects.rglob("*"))
    assert files
    for f in files:
        assert mode(f) == (0o700 if f.is_dir() else 0o400), f
    assert store.verify(snap) == []

    out = tmp_path / "out"
    run_sweep(snap.folder, "2025-01", out=out, write_traces=False)
    publish_alerts(store.root, "2025-01", out / "alerts.csv", run_id=1, batch_id=None)
    outbox = store.root / "outbox" / "2025-01"
    assert mode(outbox) == 0o700
    assert {p.name: mode(p) for p in outbox.iterdir()} == {
        "alerts.csv": 0o600,
        "publication.json": 0o600,
    }


def test_bank_file_is_owner_only(tmp_path: Path, open_umask: None) -> None:
    out = tmp_path / "out"
    run_sweep(SAMPLE, "2025-01", out=out, write_traces=False)
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    led.init(by="admin")
    try:
        run = led.import_run(out, by="alice")
        batch = led.create_batch(run.run_id, by="alice")
        led.submit(batch.id, by="alice")
        led.approve(batch.id, by="bob")
        bank = tmp_path / "bank" / "batch.csv"
        led.export(batch.id, bank, by="carol")
    finally:
        led.close()
    assert mode(bank) == 0o600
    assert [p.name for p in bank.parent.iterdir()] == ["batch.csv"]  # no temporary left
