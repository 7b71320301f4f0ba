"""Sensitive ledger columns sealed at rest (AES-GCM, key ID beside each value), persons found
through a keyed blind index, existing rows sealed by migration 0006, and `keys rotate`."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from benefits.keys import ENV_FILE, KeyRing, MissingKey, SealBroken
from benefits.ledger import Ledger
from benefits.ledger.models import BatchItem
from benefits.ledger.rotate import key_ids_in_use, rotate_data
from benefits.ledger.sealed import id_index
from tests.ledger.ledger_helpers import ALICE, BOB, CAROL, bank_lines, person_id, town, write_sweep

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 12


def accounts(n: int = PEOPLE) -> list[str]:
    return [f"62220200{i:08d}" for i in range(n)]


def ids(n: int = PEOPLE) -> list[str]:
    return [person_id(i) for i in range(n)]


def raw(ledger: Ledger, sql: str) -> list[tuple]:
    with ledger.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


def paid_month(ledger: Ledger, tmp_path: Path) -> int:
    """A run imported, a batch created, approved and exported; returns the batch id."""
    run = ledger.import_run(write_sweep(tmp_path / "sweep", "2025-01", town(PEOPLE)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    ledger.export(b.id, tmp_path / "bank.csv", by=CAROL)
    return b.id


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A key file of this test's own (rotation changes it)."""
    path = tmp_path / "keys.json"
    KeyRing.generate().write(path)
    monkeypatch.setenv(ENV_FILE, str(path))
    yield path


@pytest.fixture
def own_ledger(db_url: str, key_file: Path) -> Iterator[Ledger]:
    led = Ledger(db_url)
    led.init(by="admin")
    yield led
    led.close()


def test_ids_and_accounts_are_sealed_in_the_database(own_ledger: Ledger, tmp_path: Path) -> None:
    batch = paid_month(own_ledger, tmp_path)
    keys = own_ledger.db.keys
    kid, _ = keys.current("data")
    for table, cols in (("run_entitlements", "id_no, account_no, id_index"),
                        ("batch_items", "id_no, account_no, id_index")):  # fmt: skip
        rows = raw(own_ledger, f"SELECT {cols} FROM {table}")
        assert len(rows) == PEOPLE
        for id_no, account, index in rows:
            assert id_no.startswith(f"v1:{kid}:") and account.startswith(f"v1:{kid}:")
            clear = keys.unseal(id_no, "id_no")
            assert clear in ids() and keys.unseal(account, "account_no") in accounts()
            # keyed: not a plain hash of the ID, and equal IDs give equal indexes
            assert index == id_index(keys, clear) != hashlib.sha256(clear.encode()).hexdigest()[:32]
        assert len({r[0] for r in rows}) == PEOPLE  # random nonces
    # read through the ledger: clear values; the bank file carries the clear accounts
    items = own_ledger.items(batch)
    assert sorted(it.account_no for it in items) == accounts()
    assert sorted(it.id_no for it in items) == sorted(ids())
    assert sorted(line[0] for line in bank_lines(tmp_path / "bank.csv")) == accounts()


def test_a_sealed_column_cannot_be_compared_with_a_value() -> None:
    with pytest.raises(TypeError, match="sealed: compare its blind index"):
        _ = BatchItem.id_no == "330106194501011233"


def test_tampered_or_moved_values_do_not_open(own_ledger: Ledger, tmp_path: Path) -> None:
    paid_month(own_ledger, tmp_path)
    keys = own_ledger.db.keys
    [(item_id, id_no, account)] = raw(
        own_ledger, "SELECT id, id_no, account_no FROM batch_items ORDER BY id LIMIT 1"
    )
    with pytest.raises(SealBroken, match="does not authenticate"):
        keys.unseal(id_no, "account_no")  # an ID copied into an account column
    flipped = account[:-3] + ("A" if account[-3] != "A" else "B") + account[-2:]
    with own_ledger.db.transaction() as s:
        s.execute(text("UPDATE batch_items SET account_no = :a WHERE id = :i"),
                  {"a": flipped, "i": item_id})  # fmt: skip
    with pytest.raises(SealBroken, match="account_no value sealed with data key"):
        own_ledger.items(1)


def test_person_lookup_goes_through_the_blind_index(own_ledger: Ledger, tmp_path: Path) -> None:
    paid_month(own_ledger, tmp_path)
    keys = own_ledger.db.keys
    wanted = person_id(3)
    with own_ledger.db.snapshot() as s:
        found = s.query(BatchItem).filter(BatchItem.id_index == id_index(keys, wanted)).all()
    assert [it.id_no for it in found] == [wanted]
    assert [it.account_no for it in found] == [accounts()[3]]


def test_a_missing_data_key_is_a_clear_error(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = KeyRing.generate()
    del ring.keys["data"], ring.currents["data"]
    path = tmp_path / "no-data.json"
    ring.write(path)
    monkeypatch.setenv(ENV_FILE, str(path))
    with Ledger(db_url) as led:
        led.init(by="admin")
        with pytest.raises(MissingKey, match="no data key: set BENEFITS_KEY_FILE"):
            led.import_run(write_sweep(tmp_path / "s", "2025-01", town(2)), by=ALICE)


def test_migration_0006_seals_existing_rows_and_downgrade_opens_them(
    own_ledger: Ledger, tmp_path: Path
) -> None:
    batch = paid_month(own_ledger, tmp_path)
    before = sorted((it.id, it.id_no, it.account_no) for it in own_ledger.items(batch))
    own_ledger.db.downgrade("0005_audit_keys")  # rows written back in clear, as before 0006
    clear = raw(own_ledger, "SELECT id_no, account_no FROM batch_items")
    assert sorted(a for _, a in clear) == accounts()
    assert sorted(i for i, _ in clear) == sorted(ids())
    own_ledger.db.migrate()
    for id_no, account, index in raw(
        own_ledger, "SELECT id_no, account_no, id_index FROM batch_items"
    ) + raw(own_ledger, "SELECT id_no, account_no, id_index FROM run_entitlements"):
        assert id_no.startswith("v1:dk-") and account.startswith("v1:dk-") and len(index) == 32
    assert sorted((it.id, it.id_no, it.account_no) for it in own_ledger.items(batch)) == before
    # a second month still finds the first month's payments by person (arrears, not doubles)
    rerun = own_ledger.import_run(
        write_sweep(tmp_path / "fix", "2025-01", town(PEOPLE, amount="70.00")), by=ALICE
    )
    arrears = own_ledger.create_batch(rerun.run_id, by=ALICE)
    assert arrears.item_count == PEOPLE


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benefits.cli", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


def _rotate_cli(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _cli("keys", "rotate", "--purpose", "data", "--db", db_url, *args, **env)


def test_rotation_interrupted_then_resumed(
    own_ledger: Ledger, key_file: Path, db_url: str, tmp_path: Path
) -> None:
    batch = paid_month(own_ledger, tmp_path)
    before = sorted((it.id, it.id_no, it.account_no) for it in own_ledger.items(batch))
    old, _ = own_ledger.db.keys.current("data")
    rows = 2 * PEOPLE  # run_entitlements + batch_items

    # a new current data key (the old one stays in the file)
    added = _cli("keys", "add", "--purpose", "data")
    assert added.returncode == 0, added.stderr
    written = json.loads(key_file.read_text())["data"]
    new = written["current"]
    assert new != old and set(written["keys"]) == {old, new}
    assert f"data key {new} added to {key_file}" in added.stdout
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # stopped after 5 rows: the rest still under the old key, everything readable
    part = _rotate_cli(db_url, "--batch-size", "2", "--limit", "5")
    assert part.returncode == 1, part.stderr
    assert f"re-sealed 5 rows under {new}" in part.stdout
    assert f"rows left under older keys: {rows - 5}" in part.stdout
    own_ledger.db._keys = None  # re-read the key file
    assert key_ids_in_use(own_ledger.db) == {new: 5 * 2, old: rows * 2 - 5 * 2}
    assert sorted((it.id, it.id_no, it.account_no) for it in own_ledger.items(batch)) == before

    # killed (SIGKILL) after its second committed batch of 3
    crashed = _rotate_cli(
        db_url, "--batch-size", "3", BENEFITS_LEDGER_CRASHPOINT="rotate:batch:2"
    )
    assert crashed.returncode == -9
    assert key_ids_in_use(own_ledger.db) == {new: 11 * 2, old: (rows - 11) * 2}

    # run again: it finishes, and the old key can go
    done = _rotate_cli(db_url, "--batch-size", "4")
    assert done.returncode == 0, done.stderr
    assert "rows left under older keys: 0" in done.stdout
    assert key_ids_in_use(own_ledger.db) == {new: rows * 2}
    ring = KeyRing.load(key_file)
    del ring.keys["data"][old]
    ring.replace_file(key_file)
    own_ledger.db._keys = None
    assert sorted((it.id, it.id_no, it.account_no) for it in own_ledger.items(batch)) == before
    assert rotate_data(own_ledger.db).resealed == 0


def test_rotation_without_the_old_key_names_it(
    own_ledger: Ledger, key_file: Path, tmp_path: Path
) -> None:
    paid_month(own_ledger, tmp_path)
    old, _ = own_ledger.db.keys.current("data")
    ring = KeyRing.load(key_file)
    ring.add("data")
    del ring.keys["data"][old]
    ring.replace_file(key_file)
    own_ledger.db._keys = None
    with pytest.raises(MissingKey, match=f"no data key with id {old}"):
        rotate_data(own_ledger.db)


def test_rotate_refuses_other_purposes_and_add_the_blind_index(
    db_url: str, key_file: Path
) -> None:
    other = _cli("keys", "rotate", "--purpose", "audit_hmac", "--db", db_url)
    assert other.returncode == 2
    assert "only the data key is rotated" in other.stderr
    before = key_file.read_bytes()
    index = _cli("keys", "add", "--purpose", "blind_index")
    assert index.returncode == 2 and "cannot be changed in place" in index.stderr
    assert key_file.read_bytes() == before
    for result in (other, index):
        assert "Traceback" not in result.stderr


def test_an_older_development_key_file_gets_a_data_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_FILE, raising=False)
    db = tmp_path / "ledger.sqlite"
    dev = tmp_path / "ledger.sqlite.keys.json"
    old = KeyRing.generate()
    del old.keys["data"], old.currents["data"]
    old.write(dev)
    with Ledger(f"sqlite:///{db}") as led:
        led.init(by="admin")
        led.import_run(write_sweep(tmp_path / "s", "2025-01", town(2)), by=ALICE)
    ring = KeyRing.load(dev)
    assert ring.has("data")
    assert ring.keys["audit_hmac"] == old.keys["audit_hmac"]  # nothing else changed
    assert ring.keys["blind_index"] == old.keys["blind_index"]
    assert stat.S_IMODE(dev.stat().st_mode) == 0o600
