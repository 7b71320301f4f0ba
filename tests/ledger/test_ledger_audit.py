"""The audit chain: complete, append-only, and any edit or deletion found by verify."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from freezegun import freeze_time
from ledger_helpers import ALICE, BOB, town, write_sweep
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from benefits.ledger import Ledger
from benefits.ledger.audit import GENESIS, canonical, chain_hash, keyed_hash


@contextmanager
def triggers_off(ledger: Ledger) -> Iterator[None]:
    """Let a test tamper with audit_log as an attacker with database access would."""
    sqlite = ledger.db.dialect == "sqlite"
    with ledger.db.engine.begin() as conn:
        if sqlite:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
    yield


def busy_ledger(ledger: Ledger, sweeps: Path) -> int:
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(3)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    ledger.set_setting("bank.payer_name", "西湖区民政局", by="admin")
    ledger.set_setting("bank.payer_name", "西湖区民政局社会救助科", by="admin")
    return b.id


def test_every_action_is_chained(ledger: Ledger, sweeps: Path) -> None:
    busy_ledger(ledger, sweeps)
    entries = ledger.audit_entries(100)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    prev = GENESIS
    for e in entries:
        assert e.key_id is not None
        key = ledger.db.keys.get("audit_hmac", e.key_id)
        assert e.prev_hash == prev and e.hash == keyed_hash(key, prev, e.content)
        assert canonical(json.loads(e.content)) == e.content
        prev = e.hash
    setting = json.loads(entries[-1].content)
    assert setting["action"] == "setting.change" and setting["actor"] == "admin"
    assert setting["before"] == {"value": "西湖区民政局"}
    assert setting["after"] == {"value": "西湖区民政局社会救助科"}
    approve = json.loads(next(e.content for e in entries if e.action == "batch.approve"))
    assert approve["before"]["status"] == "submitted" and approve["after"]["status"] == "approved"
    result = ledger.verify_audit()
    assert result.ok and result.entries == len(entries) and result.head_hash == prev


def test_timestamps_come_from_the_injected_clock(db_url: str, sweeps: Path) -> None:
    with freeze_time("2025-02-03 08:15:00"):
        led = Ledger(db_url)  # default clock, frozen by freezegun
        led.init(by="admin")
        run = led.import_run(write_sweep(sweeps / "m", "2025-01", town(1)), by=ALICE)
        b = led.create_batch(run.run_id, by=ALICE)
    stamps = {json.loads(e.content)["at"] for e in led.audit_entries()}
    assert stamps == {"2025-02-03T08:15:00+00:00"}
    assert b.created_at.replace(tzinfo=dt.UTC) == dt.datetime(2025, 2, 3, 8, 15, tzinfo=dt.UTC)
    led.close()


def test_audit_table_refuses_update_and_delete(ledger: Ledger, sweeps: Path) -> None:
    busy_ledger(ledger, sweeps)
    for sql in ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
                "DELETE FROM audit_log WHERE seq = 2"):  # fmt: skip
        with pytest.raises(DatabaseError, match="append-only"), ledger.db.engine.begin() as c:
            c.exec_driver_sql(sql)
    if ledger.db.dialect == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), ledger.db.engine.begin() as c:
            c.exec_driver_sql("TRUNCATE audit_log")
    assert ledger.verify_audit().ok


@pytest.mark.parametrize(
    ("tamper", "seq", "why"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4", 4, "column actor"),
        ("UPDATE audit_log SET content = replace(content, 'bob', 'eve') WHERE seq = 5", 5,
         "content does not match its hash"),
        ("UPDATE audit_log SET at = :later WHERE seq = 3", 3, "column at"),
        ("DELETE FROM audit_log WHERE seq = 3", 3, "missing"),
        ("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)", 7, "missing"),
    ],
)  # fmt: skip
def test_verify_finds_the_first_edited_or_deleted_entry(
    ledger: Ledger, sweeps: Path, tamper: str, seq: int, why: str
) -> None:
    busy_ledger(ledger, sweeps)
    assert ledger.verify_audit().entries == 7
    with triggers_off(ledger), ledger.db.engine.begin() as conn:
        params = {"later": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)} if ":later" in tamper else {}
        assert conn.execute(text(tamper), params).rowcount == 1
    result = ledger.verify_audit()
    assert not result.ok
    assert result.broken_seq == seq, result
    assert why in (result.problem or "")
    assert str(result).startswith(f"audit chain BROKEN at entry #{seq}")


def test_a_rewritten_chain_tail_is_still_caught(ledger: Ledger, sweeps: Path) -> None:
    """An attacker who edits an entry and re-hashes the rest without the key is caught there."""
    busy_ledger(ledger, sweeps)
    entries = ledger.audit_entries(100)
    with triggers_off(ledger), ledger.db.engine.begin() as conn:
        prev = entries[2].hash
        for e in entries[3:]:
            content = json.loads(e.content)
            content["actor"] = "mallory" if e.seq == 4 else content["actor"]
            body = canonical(content)
            new = chain_hash(prev, body)
            conn.execute(
                text("UPDATE audit_log SET content = :c, prev_hash = :p, hash = :h, "
                     "actor = :a WHERE seq = :s"),
                {"c": body, "p": prev, "h": new, "a": content["actor"], "s": e.seq},
            )  # fmt: skip
            prev = new
    result = ledger.verify_audit()
    assert not result.ok and result.broken_seq == 4, result
    assert "does not match its hash (HMAC key" in (result.problem or "")


def test_an_entry_forged_behind_the_ledgers_back_is_caught(ledger: Ledger, sweeps: Path) -> None:
    """A well-chained entry inserted by hand, without moving the head, does not pass."""
    busy_ledger(ledger, sweeps)
    last = ledger.audit_entries(1)[0]
    body = canonical({"seq": last.seq + 1, "at": "2025-02-03T10:00:00+00:00", "actor": "mallory",
                      "action": "batch.approve", "object": {"type": "batch", "id": "1"},
                      "before": None, "after": None})  # fmt: skip
    with ledger.db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO audit_log (seq, at, actor, action, object_type, object_id, "
                 "content, prev_hash, hash) VALUES (:s, :at, 'mallory', 'batch.approve', "
                 "'batch', '1', :c, :p, :h)"),
            {"s": last.seq + 1, "at": dt.datetime(2025, 2, 3, 10, tzinfo=dt.UTC), "c": body,
             "p": last.hash, "h": chain_hash(last.hash, body)},
        )  # fmt: skip
    result = ledger.verify_audit()
    assert not result.ok and result.broken_seq == last.seq + 1
    assert "beyond the chain head" in (result.problem or "")
