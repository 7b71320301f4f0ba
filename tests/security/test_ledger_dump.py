"""A dump of the ledger holds no resident ID, account number or name of the seeded persons
in clear: the SQLite file's ``iterdump()``, and every row of every table read as text on
PostgreSQL (what ``pg_dump`` writes). The ledger is seeded as the demo is: a sweep of the
sample delivery imported with its alerts, a batch created and submitted, a month exported.

The web inbox (``web_alerts``) is sealed too (migration 0008) and scanned with the rest.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benefits.web.demo import seed_demo
from benefits.web.settings import WebSettings
from tests.postgres import fresh_schema
from tests.web.conftest import PASSWORDS, SAMPLE


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def secrets_of_sample() -> dict[str, set[str]]:
    """The seeded persons' IDs, account numbers and full names (staff names excluded)."""
    persons = _rows(SAMPLE / "persons.csv")
    staff = {"王芳", "李强", "赵敏", "陈杰", "系统管理员"}
    return {
        "resident ID": {r["id_no"].strip() for r in persons if len(r["id_no"].strip()) >= 15},
        "account number": {
            r["account_no"].strip()
            for r in _rows(SAMPLE / "bank_accounts.csv")
            if len(r["account_no"].strip()) >= 8
        },
        "name": {r["name"] for r in persons if len(r["name"]) >= 2} - staff,
    }


def dump_by_table(url: str) -> dict[str, str]:
    """The text of every table's rows, by table: iterdump on SQLite, row::text on PostgreSQL."""
    out: dict[str, list[str]] = {}
    if url.startswith("sqlite"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            for line in con.iterdump():
                if line.startswith('INSERT INTO "'):
                    out.setdefault(line.split('"')[1], []).append(line)
        finally:
            con.close()
    else:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                tables = conn.execute(text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                )).scalars().all()  # fmt: skip
                for table in tables:
                    out[table] = list(
                        conn.execute(text(f'SELECT CAST(t AS text) FROM "{table}" t')).scalars()
                    )
        finally:
            engine.dispose()
    return {table: "\n".join(lines) for table, lines in out.items()}


def found(dump: str) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for kind, values in secrets_of_sample().items():
        seen = sorted(v for v in values if v in dump)
        if seen:
            hits[kind] = seen[:3] + ([f"… {len(seen)} in all"] if len(seen) > 3 else [])
    return hits


@pytest.fixture
def seeded_url(db_url: str, tmp_path: Path) -> str:
    settings = WebSettings(db=db_url, data=SAMPLE, work=tmp_path / "work", secret_key="k" * 32)
    seed_demo(settings, passwords=PASSWORDS, months=("2024-12", "2025-01"))
    return db_url


def test_the_ledger_dump_reveals_no_id_account_or_name(seeded_url: str) -> None:
    tables = dump_by_table(seeded_url)
    assert {"run_entitlements", "batch_items", "audit_log"} <= set(tables)
    assert "v1:dk-" in tables["batch_items"] and "v1:dk-" in tables["run_entitlements"]
    leaks = {t: hits for t, d in tables.items() if (hits := found(d))}
    assert leaks == {}


def test_the_alert_inbox_reveals_no_id(seeded_url: str) -> None:
    tables = dump_by_table(seeded_url)
    assert "v1:dk-" in tables["web_alerts"] and len(tables["web_alerts"]) > 1000
    assert found(tables["web_alerts"]) == {}


@pytest.fixture
def seeded_schema(pg_base_url: str | None, pg_admin: object, tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL schema seeded as the demo is (sweep imports, batches, a month exported)."""
    for url in fresh_schema(pg_base_url, pg_admin, "sec_dump"):
        settings = WebSettings(db=url, data=SAMPLE, work=tmp_path / "work", secret_key="k" * 32)
        seed_demo(settings, passwords=PASSWORDS, months=("2024-12", "2025-01"))
        yield url


@pytest.mark.postgres
def test_a_real_pg_dump_reveals_no_id_account_or_name(seeded_schema: str) -> None:
    tool = shutil.which("pg_dump")
    if tool is None:
        pytest.skip("pg_dump is not installed (Debian: postgresql-client)")
    url = make_url(seeded_schema)
    schema = url.query["options"].removeprefix("-csearch_path=")
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    done = subprocess.run(
        [tool, "--host", url.host or "127.0.0.1", "--port", str(url.port or 5432),
         "--username", url.username or "postgres", "--no-password", "--schema", schema,
         "--no-owner", url.database or "postgres"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    dump = done.stdout
    # the dump holds the data: sealed values, blind indexes, masked names, the audit chain
    for table in ("run_entitlements", "batch_items", "web_alerts", "audit_log"):
        assert f"COPY {schema}.{table} " in dump, table
    assert dump.count("v1:dk-") > 1000
    assert "王芳" in dump  # a staff member's display name: the rows are in the dump as text
    assert found(dump) == {}
