"""The landing folder, content-addressed snapshots, department manifests, delivery verdicts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from cycle_helpers import ZONE

from benefits.cycle.checks import Previous, assess_delivery, quality_gate
from benefits.cycle.landing import check_manifests, count_rows, scan_landing
from benefits.cycle.settings import CycleSettings
from benefits.cycle.snapshot import SnapshotChanged, SnapshotStore

DUE = dt.datetime(2025, 1, 4, 12, 0, tzinfo=ZONE)
BEFORE = DUE - dt.timedelta(hours=1)
AFTER = DUE + dt.timedelta(minutes=1)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "landing" / "2025-01"
    folder.mkdir(parents=True)
    (folder / "persons.csv").write_text("id_no,name\n1,a\n2,b\n", encoding="utf-8")
    (folder / "deaths.csv").write_text("id_no,death_date,source\n", encoding="utf-8")
    return tmp_path / "landing"


def test_scan_lists_tables_and_everything_else(landing_dir: Path) -> None:
    folder = landing_dir / "2025-01"
    (folder / "readme.txt").write_text("hello", encoding="utf-8")
    (folder / "pensions.csv.part").write_text("id_no", encoding="utf-8")
    (folder / "assistance.csv").write_text("x", encoding="utf-8")
    (folder / "assistance.parquet").write_bytes(b"PAR1")
    landing = scan_landing(landing_dir, "2025-01")
    assert sorted(landing.files) == ["deaths", "persons"]
    assert landing.files["persons"].sha256 == _sha(b"id_no,name\n1,a\n2,b\n")
    assert landing.duplicates == {"assistance": ["assistance.csv", "assistance.parquet"]}
    assert landing.arriving == {"pensions": ["pensions.csv.part"]}
    assert landing.unexpected == ["readme.txt"]
    # a recently changed file is still arriving while it settles
    settling = scan_landing(landing_dir, "2025-01", settle_seconds=60, wall_time=time.time())
    assert "persons" in settling.arriving and "persons" not in settling.files
    assert not scan_landing(landing_dir, "2025-02").exists


def test_snapshots_are_content_addressed_and_immutable(landing_dir: Path, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "store")
    first = store.take(scan_landing(landing_dir, "2025-01"))
    assert first.folder == tmp_path / "store" / "snapshots" / first.digest
    assert (first.folder / "persons.csv").read_text(encoding="utf-8").startswith("id_no")
    assert os.stat(first.folder / "persons.csv").st_mode & 0o222 == 0
    assert store.object_path(first.manifest["files"]["persons.csv"]["sha256"]).is_file()
    # the department overwrites a file: the old snapshot is untouched, a new one appears
    again = store.take(scan_landing(landing_dir, "2025-01"))
    assert again.digest == first.digest
    (landing_dir / "2025-01" / "persons.csv").write_text("id_no,name\n3,c\n", encoding="utf-8")
    changed = store.take(scan_landing(landing_dir, "2025-01"))
    assert changed.digest != first.digest
    assert (first.folder / "persons.csv").read_text(encoding="utf-8").endswith("2,b\n")
    assert store.verify(first) == [] and store.verify(changed) == []
    # deaths.csv is unchanged: stored once, shared by both snapshots
    assert (first.folder / "deaths.csv").stat().st_ino == (
        changed.folder / "deaths.csv"
    ).stat().st_ino


def test_a_file_changing_while_copied_is_refused(landing_dir: Path, tmp_path: Path) -> None:
    landing = scan_landing(landing_dir, "2025-01")
    (landing_dir / "2025-01" / "persons.csv").write_text("id_no,name\n9,z\n", encoding="utf-8")
    with pytest.raises(SnapshotChanged, match="changed while it was being copied"):
        SnapshotStore(tmp_path / "store").take(landing)


def test_department_manifests(landing_dir: Path, tmp_path: Path) -> None:
    folder = landing_dir / "2025-01"
    persons = (folder / "persons.csv").read_bytes()
    (folder / "公安.manifest.json").write_text(
        json.dumps(
            {
                "department": "公安",
                "files": [
                    {"name": "persons.csv", "rows": 2, "sha256": _sha(persons)},
                    {"name": "deaths.csv", "rows": 1},
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    (folder / "manifest.json").write_text('{"files": {"bank_accounts.csv": {"rows": "x"}}}')
    landing = scan_landing(landing_dir, "2025-01")
    assert landing.problems == ["manifest.json: bank_accounts.csv: rows must be a whole number ≥ 0"]
    snap = SnapshotStore(tmp_path / "store").take(landing)
    problems = check_manifests(landing, snap.paths())
    assert problems == ["deaths.csv (公安, 公安.manifest.json): 0 rows, the manifest says 1"]
    (folder / "persons.csv").write_text("id_no,name\n1,a\n", encoding="utf-8")
    mismatch = check_manifests(scan_landing(landing_dir, "2025-01"), {})
    assert any("persons.csv" in p and "SHA-256" in p for p in mismatch)


def test_count_rows_in_parquet(tmp_path: Path) -> None:
    pl.DataFrame({"id_no": ["1", "2", "3"]}).write_parquet(tmp_path / "t.parquet")
    assert count_rows(tmp_path / "t.parquet") == 3
    (tmp_path / "g.csv").write_bytes("姓名,id\n张三,1\n".encode("gbk"))
    assert count_rows(tmp_path / "g.csv") == 1


def test_delivery_verdicts(landing_dir: Path) -> None:
    s = CycleSettings(expected_tables=["persons", "deaths", "pensions"])
    landing = scan_landing(landing_dir, "2025-01")
    wait = assess_delivery(landing, s, BEFORE, DUE)
    assert (wait.action, wait.missing) == ("wait", ["pensions"])
    late = assess_delivery(landing, s, AFTER, DUE)
    assert (late.action, late.late) == ("proceed", ["pensions"])
    assert "without late table(s) pensions" in late.reason
    broken = assess_delivery(landing, s, AFTER, DUE, ["persons.csv: 2 rows, the manifest says 3"])
    assert broken.action == "stop" and "manifest says 3" in broken.reason
    assert assess_delivery(landing, s, BEFORE, DUE, ["x"]).action == "wait"
    complete = CycleSettings(expected_tables=["persons", "deaths"])
    assert assess_delivery(landing, complete, BEFORE, DUE).action == "proceed"
    (landing_dir / "2025-01" / "persons.csv").unlink()
    stop = assess_delivery(scan_landing(landing_dir, "2025-01"), s, AFTER, DUE)
    assert stop.action == "stop" and "required table(s) persons missing" in stop.reason
    (landing_dir / "2025-01" / "pensions.csv.filepart").write_text("", encoding="utf-8")
    arriving = assess_delivery(scan_landing(landing_dir, "2025-01"), s, AFTER, DUE)
    assert arriving.action == "wait" and "still arriving: pensions" in arriving.reason


def test_quality_gate() -> None:
    s = CycleSettings(
        max_quarantine_rate=0.05,
        quarantine_min_rows=20,
        max_payee_change=0.1,
        max_amount_change=0.1,
        table_quarantine_rates={"deaths": 0.5},
    )
    summary = {
        "tables": {
            "persons": {"read": 1000, "quarantined": 50},  # 5.0%: at the limit, passes
            "bank_accounts": {"read": 500, "quarantined": 100},  # 20%: stops
            "deaths": {"read": 10, "quarantined": 4},  # 40% but its own limit is 50%
            "health_conditions": {"read": 5, "quarantined": 5},  # too few rows to judge
        }
    }
    prev = Previous("2024-12", 7, 100, Decimal("50000.00"))
    gate = quality_gate(summary, 95, Decimal("60000.00"), prev, s)
    assert [(b.check, b.subject) for b in gate.breaches] == [
        ("quarantine_rate", "bank_accounts"),
        ("amount_change", "total"),
    ]
    assert gate.metrics["payee_change"] == -0.05 and gate.metrics["amount_change"] == 0.2
    assert "total 60000.00 vs 50000.00 in 2024-12 (+20.0%, limit ±10.0%)" in gate.reason()
    assert quality_gate(
        {"tables": {}}, 0, Decimal(0), Previous("2024-12", 1, 0, Decimal(0)), s
    ).passed
