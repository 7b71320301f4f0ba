"""The audit chain cannot be rewritten with the application's own database rights.

The app role holds INSERT on audit_log and UPDATE on audit_head (docs/ledger.md). Before the
chain was keyed, such a role could append an entry with a correct plain SHA-256 chain, move
the head, and `benefits audit verify` accepted it. Now the chain is an HMAC under a key the
database never sees, and signed checkpoints outside the database catch a truncated or
rewritten tail even by someone who holds that key.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text
from typer.testing import CliRunner

from benefits.cli import app
from benefits.ledger import Ledger
from benefits.ledger.audit import GENESIS, canonical, chain_hash, keyed_hash

runner = CliRunner()
AT = dt.datetime(2026, 12, 6, 10, tzinfo=dt.UTC)


def busy(ledger: Ledger, n: int = 5) -> None:
    for i in range(n):
        ledger.set_setting("bank.payer_name", f"西湖区民政局 {i}", by="admin")


@contextmanager
def app_role(ledger: Ledger) -> Iterator[Connection]:
    """A connection with only the app role's audit rights: SELECT, INSERT on audit_log;
    SELECT, UPDATE on audit_head. On PostgreSQL a real role (SET ROLE); on SQLite the
    append-only triggers stand in for the missing UPDATE and DELETE rights."""
    with ledger.db.engine.connect() as conn:
        if ledger.db.dialect != "postgresql":
            with conn.begin():
                yield conn
            return
        role = f"app_{uuid.uuid4().hex[:10]}"
        with conn.begin():
            schema = conn.execute(text("select current_schema()")).scalar_one()
            conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
            conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
            conn.execute(text(f'GRANT SELECT, INSERT ON audit_log TO "{role}"'))
            conn.execute(text(f'GRANT SELECT, UPDATE ON audit_head TO "{role}"'))
        try:
            with conn.begin():
                conn.execute(text(f'SET LOCAL ROLE "{role}"'))
                yield conn
        finally:
            with conn.begin():
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE "{role}"'))


def forge(conn: Connection, seq: int, prev: str, *, key_id: str | None) -> str:
    """Append a forged batch approval with a plain SHA-256 chain hash and move the head."""
    body = canonical({"seq": seq, "at": AT.isoformat(), "actor": "mallory",
                      "action": "batch.approve", "object": {"type": "batch", "id": "1"},
                      "before": None, "after": None})  # fmt: skip
    forged = chain_hash(prev, body)
    conn.execute(
        text("INSERT INTO audit_log (seq, at, actor, action, object_type, object_id, content, "
             "prev_hash, hash, key_id) VALUES (:s, :at, 'mallory', 'batch.approve', 'batch', "
             "'1', :c, :p, :h, :k)"),
        {"s": seq, "at": AT, "c": body, "p": prev, "h": forged, "k": key_id},
    )  # fmt: skip
    conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
                 {"s": seq, "h": forged})  # fmt: skip
    return forged


@pytest.mark.parametrize("key_id", [None, "current"])
def test_a_forged_entry_with_the_app_roles_rights_is_detected(
    ledger: Ledger, key_id: str | None
) -> None:
    busy(ledger)
    last = ledger.audit_entries(1)[0]
    kid = ledger.db.keys.current("audit_hmac")[0] if key_id else None
    with app_role(ledger) as conn:
        if ledger.db.dialect == "postgresql":  # the role really cannot rewrite history
            with pytest.raises(Exception, match=r"permission denied|append-only"), \
                    conn.begin_nested():
                conn.execute(text("DELETE FROM audit_log WHERE seq = 1"))
        forge(conn, last.seq + 1, last.hash, key_id=kid)
    result = ledger.verify_audit()
    assert not result.ok and result.broken_seq == last.seq + 1, result
    assert "mallory" in (result.problem or "")
    assert ("plain SHA-256 entry after keyed" if key_id is None else "does not match its hash") \
        in (result.problem or "")  # fmt: skip


def test_legacy_plain_entries_still_verify_before_the_keyed_ones(db_url: str) -> None:
    """A ledger created before 0005_audit_keys keeps its plain SHA-256 entries valid."""
    with Ledger(db_url) as ledger:
        ledger.db.migrate("0004_alert_identity")
        prev = GENESIS
        with ledger.db.engine.begin() as conn:
            for seq in (1, 2):
                body = canonical({"seq": seq, "at": AT.isoformat(), "actor": "admin",
                                  "action": "setting.change",
                                  "object": {"type": "setting", "id": "x"},
                                  "before": None, "after": {"value": str(seq)}})  # fmt: skip
                new = chain_hash(prev, body)
                conn.execute(
                    text("INSERT INTO audit_log (seq, at, actor, action, object_type, "
                         "object_id, content, prev_hash, hash) VALUES (:s, :at, 'admin', "
                         "'setting.change', 'setting', 'x', :c, :p, :h)"),
                    {"s": seq, "at": AT, "c": body, "p": prev, "h": new},
                )  # fmt: skip
                conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"),
                             {"s": seq, "h": new})  # fmt: skip
                prev = new
        ledger.init(by="admin")  # upgrade to 0005: the init entry is the first keyed one
        busy(ledger, 2)
        result = ledger.verify_audit()
        assert result.ok and result.entries == 5 and result.unkeyed == 2, result
        assert "2 early entries with a plain SHA-256 chain" in str(result)
        entries = ledger.audit_entries(10)
        assert [e.key_id is None for e in entries] == [True, True, False, False, False]


def test_a_truncated_tail_is_detected_against_a_checkpoint(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Deleting the newest entries and moving the head back leaves a valid HMAC chain —
    only the checkpoint outside the database shows what was lost."""
    busy(ledger)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    point = ledger.checkpoint(checkpoints)
    assert point.seq == 6 and ledger.verify_checkpoints(checkpoints) == []
    keep = ledger.audit_entries(10)[3]
    with ledger.db.engine.begin() as conn:  # the database owner, triggers off
        if ledger.db.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.execute(text("DELETE FROM audit_log WHERE seq > :s"), {"s": keep.seq})
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"),
                     {"s": keep.seq, "h": keep.hash})  # fmt: skip
    assert ledger.verify_audit().ok  # the chain alone cannot tell
    problems = ledger.verify_checkpoints(checkpoints)
    assert len(problems) == 1 and "entry #6, which is no longer in the chain" in problems[0]
    result = runner.invoke(app, ["audit", "verify", "--db", ledger.db.url,
                                 "--checkpoints", str(checkpoints)])  # fmt: skip
    assert result.exit_code == 1 and "no longer in the chain" in result.output


def test_a_tail_rewritten_with_the_key_is_detected_against_a_checkpoint(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Even whoever holds the HMAC key cannot rewrite entries a checkpoint already covers."""
    busy(ledger)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    ledger.checkpoint(checkpoints)
    busy(ledger, 1)
    ledger.checkpoint(checkpoints)
    _, key = ledger.db.keys.current("audit_hmac")
    entries = ledger.audit_entries(10)
    with ledger.db.engine.begin() as conn:
        if ledger.db.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        prev = entries[3].hash
        for e in entries[4:]:
            content = json.loads(e.content)
            content["actor"] = "mallory"
            body = canonical(content)
            new = keyed_hash(key, prev, body)
            conn.execute(
                text("UPDATE audit_log SET content = :c, actor = 'mallory', prev_hash = :p, "
                     "hash = :h WHERE seq = :s"),
                {"c": body, "p": prev, "h": new, "s": e.seq},
            )  # fmt: skip
            prev = new
        conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert ledger.verify_audit().ok  # a perfect forgery for the chain alone
    problems = ledger.verify_checkpoints(checkpoints)
    assert len(problems) == 2 and all("the chain was rewritten" in p for p in problems)


def test_a_tampered_checkpoint_file_is_detected(ledger: Ledger, tmp_path: Path) -> None:
    busy(ledger, 2)
    path = tmp_path / "audit-checkpoints.jsonl"
    ledger.checkpoint(path)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "key" and len(lines) == 2
    point = json.loads(lines[1])
    point["seq"] -= 1  # claim an earlier head
    path.write_text(lines[0] + "\n" + canonical(point) + "\n")
    assert "signature of checkpoint #2 is not valid" in ledger.verify_checkpoints(path)[0]
    # A forger's own key pair in the header does not match the key file's public key.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from benefits.keys import public_key_b64

    header = json.loads(lines[0])
    header["public_key"] = public_key_b64(Ed25519PrivateKey.generate())
    path.write_text(canonical(header) + "\n" + lines[1] + "\n")
    problems = ledger.verify_checkpoints(path)
    assert "is not the key file's" in problems[0]
    assert ledger.verify_checkpoints(tmp_path / "none.jsonl") == [
        f"the checkpoint file {tmp_path / 'none.jsonl'} is missing or empty"
    ]


def test_checkpoint_and_verify_on_the_command_line(ledger: Ledger, tmp_path: Path) -> None:
    busy(ledger, 1)
    path = tmp_path / "cp" / "audit-checkpoints.jsonl"
    url = ledger.db.url
    made = runner.invoke(app, ["audit", "checkpoint", "--to", str(path), "--db", url])
    assert made.exit_code == 0 and "checkpoint appended" in made.output, made.output
    runner.invoke(app, ["audit", "checkpoint", "--to", str(path), "--db", url])
    assert [json.loads(x)["type"] for x in path.read_text().splitlines()] == [
        "key", "checkpoint", "checkpoint"
    ]
    checked = runner.invoke(app, ["audit", "verify", "--db", url, "--checkpoints", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "audit chain intact" in checked.output and "checkpoints in" in checked.output


def test_pg_engine_helper_is_not_leaking_roles(pg_base_url: str | None) -> None:
    """The roles made by app_role are dropped again."""
    if pg_base_url is None:
        pytest.skip("no PostgreSQL")
    engine = create_engine(pg_base_url)
    with engine.connect() as conn:
        left = conn.execute(text("select count(*) from pg_roles where rolname like 'app\\_%' "
                                 "and rolname ~ '^app_[0-9a-f]{10}$'")).scalar_one()  # fmt: skip
    engine.dispose()
    assert left == 0
