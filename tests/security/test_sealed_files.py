"""Sealed sweep outputs and cycle snapshots (``BENEFITS_SEAL_FILES=1``, benefits.sealedfiles).

A copy of a sealed output folder, of the web app's work folder and of the cycle's store holds
no resident ID, account number or name of the delivery's persons in clear, while everything
that reads them — the ledger's import, the web person page and alert inbox, the cycle, the
event service's load — works as on plain files. A sealed file that was altered, truncated or
whose key is gone does not open.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from benefits.cycle.runner import run_cycle
from benefits.events.service import EventService
from benefits.keys import KeyRing, MissingKey, SealBroken
from benefits.ledger import Ledger
from benefits.sealedfiles import (
    ENV_SEAL,
    SEGMENT,
    is_sealed,
    open_output,
    read_output,
    seal_file,
    sealed_key,
)
from benefits.sweep import run_sweep
from benefits.web.app import create_app
from benefits.web.demo import seed_demo
from tests.cycle.cycle_helpers import MutableClock, make_settings
from tests.security.leakscan import recording
from tests.security.test_ledger_dump import secrets_of_sample
from tests.web.conftest import PASSWORDS, SAMPLE, login, settings_for


@pytest.fixture
def sealing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(ENV_SEAL, "1")
    yield


def clear_hits(folder: Path, secrets: dict[str, set[str]]) -> dict[str, list[str]]:
    """file: the secrets found in its raw bytes (as UTF-8 text: every run of digits, every
    run of Chinese characters)."""
    hits: dict[str, list[str]] = {}
    numbers = secrets["resident ID"] | secrets["account number"]
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        found = {m.decode() for m in re.findall(rb"[0-9X]{8,}", raw)} & numbers
        text = raw.decode("utf-8", errors="ignore")
        runs = set(re.findall(r"[\u4e00-\u9fff]{2,}", text))
        found |= {n for n in secrets["name"] if any(n in run for run in runs)}
        if found:
            hits[str(path.relative_to(folder))] = sorted(found)
    return hits


def _secrets_of(delivery: Path) -> dict[str, set[str]]:
    with open(delivery / "persons.csv", encoding="utf-8", newline="") as fh:
        persons = list(csv.DictReader(fh))
    with open(delivery / "bank_accounts.csv", encoding="utf-8", newline="") as fh:
        accounts = [r["account_no"].strip() for r in csv.DictReader(fh)]
    return {
        "resident ID": {r["id_no"].strip() for r in persons if len(r["id_no"].strip()) >= 15},
        "account number": {a for a in accounts if len(a) >= 8},
        "name": {r["name"] for r in persons if len(r["name"]) >= 2},
    }


def test_a_copy_of_a_sealed_output_folder_reveals_no_id_account_or_name(
    tmp_path: Path, sealing: None
) -> None:
    old = os.umask(0)
    try:
        sealed = run_sweep(SAMPLE, "2025-01", out=tmp_path / "sealed", traces="both")
    finally:
        os.umask(old)
    os.environ[ENV_SEAL] = "0"
    plain = run_sweep(SAMPLE, "2025-01", out=tmp_path / "plain", traces="both")
    secrets = secrets_of_sample()
    # the scan finds what is there: the plain folder quotes IDs, accounts (and names in traces
    # as masked names only, so names are not expected there)
    found_plain = clear_hits(tmp_path / "plain", secrets)
    assert set(found_plain["entitlements.csv"]) & secrets["resident ID"]
    assert set(found_plain["entitlements.csv"]) & secrets["account number"]

    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "sealed", copy)
    assert clear_hits(copy, secrets) == {}
    names = {p.name for p in copy.iterdir()}
    assert {"entitlements.csv", "entitlements.parquet", "alerts.csv", "traces.jsonl"} <= names
    assert {"rules.parquet", "part-00000.parquet"} <= {p.name for p in (copy / "traces").iterdir()}
    files = [p for p in copy.rglob("*") if p.is_file()]
    assert {p.name for p in files if not is_sealed(p)} == {"summary.json"}
    # still owner-only, whatever the umask
    sealed_out = tmp_path / "sealed"
    assert {stat.S_IMODE(p.stat().st_mode) for p in [sealed_out, sealed_out / "traces"]} == {0o700}
    assert {stat.S_IMODE(p.stat().st_mode) for p in sealed_out.rglob("*") if p.is_file()} == {
        0o600
    }
    # the clear bytes are exactly what a plain sweep writes
    for name in ("entitlements.csv", "alerts.csv", "quarantine.csv", "traces.jsonl",
                 "traces/part-00000.parquet", "traces/rules.parquet"):  # fmt: skip
        assert read_output(tmp_path / "sealed" / name) == (tmp_path / "plain" / name).read_bytes()
    assert sealed.summary["outputs"] == plain.summary["outputs"]

    # the ledger imports the sealed folder as it imports the plain one
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    led.init(by="admin")
    try:
        a = led.import_run(tmp_path / "sealed", by="alice")
        assert a.payable_total == Decimal(plain.summary["totals"]["pay_and_credit_amount"])
    finally:
        led.close()


def test_sealed_files_refuse_tampering_truncation_and_a_missing_key(tmp_path: Path) -> None:
    ring = KeyRing.generate()
    data = os.urandom(SEGMENT * 2 + 100)
    path = tmp_path / "traces.jsonl"
    path.write_bytes(data)
    assert seal_file(path, ring) and not seal_file(path, ring)  # sealing twice is a no-op
    assert read_output(path, ring) == data
    with open_output(path, ring) as fh:  # seekable across segments
        fh.seek(SEGMENT - 10)
        assert fh.read(30) == data[SEGMENT - 10 : SEGMENT + 20]
    raw = path.read_bytes()

    flipped = tmp_path / "flipped"
    flipped.write_bytes(raw[:-50] + bytes([raw[-50] ^ 1]) + raw[-49:])
    with pytest.raises(SealBroken, match="does not authenticate"):
        read_output(flipped, ring)
    cut = tmp_path / "cut"  # the last whole segment dropped: the new last one is not "last"
    cut.write_bytes(raw[: len(raw) - (100 + 16)])
    with pytest.raises(SealBroken):
        read_output(cut, ring)
    with pytest.raises(MissingKey, match="no data key"):
        read_output(path, KeyRing({}))
    other = KeyRing.generate()
    with pytest.raises(MissingKey, match=r"traces\.jsonl is sealed"):
        read_output(path, other)


def test_a_sealed_sweep_without_a_data_key_stops_before_writing(
    tmp_path: Path, sealing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BENEFITS_KEY_FILE", raising=False)
    monkeypatch.setattr("benefits.keys._LAST_LEDGER_RING", None)
    with pytest.raises(MissingKey, match="no data key: set BENEFITS_KEY_FILE"):
        run_sweep(SAMPLE, "2025-01", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_web_app_reads_sealed_outputs_and_its_work_folder_reveals_nothing(
    tmp_path: Path, sealing: None
) -> None:
    settings = settings_for(tmp_path)
    seed_demo(settings, passwords=PASSWORDS, months=("2025-01",))
    app = create_app(settings)
    try:
        ctx = app.state.ctx
        from fastapi.testclient import TestClient

        client = login(TestClient(recording(app), base_url="http://testserver"), "auditor")
        batch = ctx.ledger.batches()[0]
        item = next(i for i in ctx.ledger.items(batch.id, limit=None)
                    if i.policy_id == "old_age_allowance")  # fmt: skip
        ref = ctx.directory.ref(item.id_no)
        page = client.get(f"/persons/{ref}?month=2025-01")
        assert page.status_code == 200
        assert 'id="p-old_age_allowance"' in page.text  # from the sealed traces
        api = client.get(f"/api/v1/persons/{ref}/explanation?month=2025-01").json()
        assert any(p["policy_id"] == "old_age_allowance" for p in api["policies"])
        inbox = client.get("/api/v1/alerts?month=2025-01")
        assert inbox.status_code == 200 and inbox.json()["total"] > 0  # from sealed alerts.csv
    finally:
        app.state.ctx.ledger.close()
    work = Path(settings.work)
    runs = [p for p in work.rglob("entitlements.csv")]
    assert runs and all(is_sealed(p) for p in runs)
    traces = list(work.rglob("traces/part-*.parquet"))  # the person page read these
    assert traces and all(is_sealed(p) for p in traces)
    assert clear_hits(work, secrets_of_sample()) == {}


def test_a_sealed_cycle_store_reveals_nothing_and_the_cycle_runs_on_it(
    tmp_path: Path, sealing: None, db_url: str
) -> None:
    from benefits.synth import generate

    source = tmp_path / "delivery"
    generate(persons=300, seed=7, out=source, month="2025-01", dirty=0)
    settings = make_settings(tmp_path, db_url, write_traces=True)
    landing = Path(settings.landing_dir) / "2025-01"
    shutil.copytree(source, landing)
    clock = MutableClock.local(2025, 1, 3, 10, 0)
    led = Ledger(settings.database_url, clock=clock)
    led.init(by="admin")
    try:
        outcome = run_cycle(settings, "2025-01", clock=clock, ledger=led)
        assert outcome.status == "done", outcome.message
        assert led.batches("2025-01")[0].status == "draft"
    finally:
        led.close()
    store = Path(settings.store_dir)
    secrets = _secrets_of(source)
    assert clear_hits(store, secrets) == {}
    snapshot = next((store / "snapshots").iterdir())
    persons = snapshot / "persons.csv"
    assert is_sealed(persons) and read_output(persons) == (source / "persons.csv").read_bytes()
    outbox = store / "outbox" / "2025-01" / "alerts.csv"
    assert is_sealed(outbox)
    # the event service loads the sealed snapshot and decides as the sweep did
    service = EventService(snapshot, "2025-01", freeze_gc=False)
    assert service.entitlements().height > 0


def test_landing_counts_rows_of_sealed_files(tmp_path: Path) -> None:
    from benefits.cycle.landing import count_rows

    path = tmp_path / "persons.csv"
    path.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    seal_file(path)
    assert count_rows(path) == 2
    assert io.BytesIO(read_output(path)).read().count(b"\n") == 3


def test_reseal_files_moves_sealed_outputs_to_the_current_key(
    tmp_path: Path, sealing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "keys.json"
    KeyRing.generate().write(key_file)
    monkeypatch.setenv("BENEFITS_KEY_FILE", str(key_file))
    out = tmp_path / "out"
    run_sweep(SAMPLE, "2025-01", out=out, write_traces=False)
    before = {p.name: read_output(p) for p in out.iterdir()}
    old = KeyRing.load(key_file).current("data")[0]
    ring = KeyRing.load(key_file)
    new = ring.add("data")
    ring.replace_file(key_file)
    from typer.testing import CliRunner

    from benefits.cli import app

    result = CliRunner().invoke(app, ["keys", "reseal-files", str(out)])
    assert result.exit_code == 0, result.output
    assert f"re-sealed 6 files under {new}" in result.output
    assert {sealed_key(p) for p in out.iterdir() if is_sealed(p)} == {new}
    ring = KeyRing.load(key_file)  # the old key can go: everything opens without it
    del ring.keys["data"][old]
    ring.replace_file(key_file)
    assert {p.name: read_output(p) for p in out.iterdir()} == before
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
    again = CliRunner().invoke(app, ["keys", "reseal-files", str(out)])
    assert again.exit_code == 0 and "re-sealed 0 files" in again.output


@pytest.mark.parametrize("engine", ["partitioned"])
def test_every_engine_seals_its_outputs_before_they_appear(
    tmp_path: Path, sealing: None, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """The partition engines seal in their work folder, before the folder is renamed into
    place: the finished folder holds nothing in clear but summary.json, and its files open to
    exactly what a plain run of the same engine writes."""
    from benefits.engines import run_engine
    from benefits.rulebook import load_pack

    pack = load_pack()
    run_engine(engine, SAMPLE, "2025-01", tmp_path / "sealed", pack=pack, partitions=3, workers=1)
    monkeypatch.setenv(ENV_SEAL, "0")
    run_engine(engine, SAMPLE, "2025-01", tmp_path / "plain", pack=pack, partitions=3, workers=1)
    sealed, plain = tmp_path / "sealed", tmp_path / "plain"
    assert clear_hits(sealed, secrets_of_sample()) == {}
    files = sorted(p.relative_to(sealed) for p in sealed.rglob("*") if p.is_file())
    assert {f.name for f in files if not is_sealed(sealed / f)} == {"summary.json"}
    assert [p.relative_to(plain) for p in sorted(plain.rglob("*")) if p.is_file()] == files
    for f in files:
        if f.name != "summary.json":
            assert read_output(sealed / f) == (plain / f).read_bytes(), f
