"""Shared test helpers: write small extracts the way departments deliver them."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import pytest

from benefits.idcard import make_id

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment: the CLIs'
# rich consoles, made at import, would keep that width for good and ignore the COLUMNS a test
# gives its command (tests/cycle/test_cycle_yearly.py::test_cli_calendar failed under -n 2).
# A command's width is the test's to give, as in a plain run.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

PERSON_DEFAULTS = {
    "sex": "F",
    "relation": "head",
    "hukou_district": "330106",
    "hukou_community": "330106001",
    "hukou_status": "normal",
    "moved_out_date": "",
    "father_id_no": "",
    "mother_id_no": "",
}


def pid(birth: str, seq: int = 2) -> str:
    """A valid ID for a birth date (odd seq = male)."""
    return make_id("330106", dt.date.fromisoformat(birth), seq)


def person(
    birth: str, seq: int = 2, household: str = "H1", name: str = "张三明", **kw: str
) -> dict:
    """A valid persons row."""
    row = {
        "id_no": pid(birth, seq),
        "name": name,
        "birth_date": birth,
        "household_no": household,
        **PERSON_DEFAULTS,
        "sex": "M" if seq % 2 else "F",
    }
    row.update(kw)
    return row


def bank(row: dict) -> dict:
    return {
        "id_no": row["id_no"],
        "account_no": ("6222" + row["id_no"][-8:]).replace("X", "0"),
        "account_name": row["name"],
        "financial_active": "true",
        "status": "open",
    }


def write_table(folder: Path, table: str, rows: list[dict], encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.csv"
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


def write_delivery(folder: Path, tables: dict[str, list[dict]], with_bank: bool = True) -> Path:
    """Write tables; by default every person gets a bank account in order."""
    tables = dict(tables)
    if with_bank and "bank_accounts" not in tables:
        tables["bank_accounts"] = [bank(p) for p in tables.get("persons", [])]
    for name, rows in tables.items():
        if rows:
            write_table(folder, name, rows)
    return folder


@pytest.fixture
def delivery(tmp_path: Path):
    """Factory: delivery({'persons': [...], ...}) -> folder."""
    counter = {"n": 0}

    def make(tables: dict[str, list[dict]], with_bank: bool = True) -> Path:
        counter["n"] += 1
        return write_delivery(tmp_path / f"d{counter['n']}", tables, with_bank)

    return make


@pytest.fixture(scope="session")
def pg_base_url() -> str | None:
    """The PostgreSQL URL tests use, or None when PostgreSQL is not available."""
    from tests.postgres import base_url

    return base_url()


@pytest.fixture(scope="session")
def pg_admin(pg_base_url: str | None):
    """An engine for creating and dropping per-test schemas (None without PostgreSQL)."""
    if pg_base_url is None:
        yield None
        return
    from sqlalchemy import create_engine

    engine = create_engine(pg_base_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def ledger_key_file(tmp_path_factory: pytest.TempPathFactory):
    """A key file for every ledger the tests open (a PostgreSQL ledger has no default keys).

    Set as ``$BENEFITS_KEY_FILE`` for the session unless the caller already set one; tests of
    the SQLite development default remove the variable with monkeypatch.
    """
    from benefits.keys import ENV_FILE, KeyRing

    if os.environ.get(ENV_FILE):
        yield Path(os.environ[ENV_FILE])
        return
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    KeyRing.generate().write(path)
    os.environ[ENV_FILE] = str(path)
    yield path
    os.environ.pop(ENV_FILE, None)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test of the run (2 cores, 3 attempts per task,
    so a killed task is retried): the JVM starts once. Without Java or pyspark the Spark tests
    are skipped — unless $BENEFITS_REQUIRE_SPARK is set (CI), where that is a failure."""
    from benefits.engines.spark import SparkUnavailable, spark_session

    try:
        session, _ = spark_session("local[2,3]", "benefits tests")
    except SparkUnavailable as exc:
        if os.environ.get("BENEFITS_REQUIRE_SPARK"):
            raise
        pytest.skip(str(exc))
    yield session
    session.stop()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what the collection loaded (modules, rule packs, strategies): a full garbage
    collection — the event service makes one per service started — then walks only the
    objects of the tests themselves."""
    import gc

    gc.collect()
    gc.freeze()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """With ``-n`` (pytest-xdist): whole files per worker, shared fixtures kept together, the
    longest first (tests/parallel.py)."""
    from tests.parallel import make_scheduler

    return make_scheduler(config, log)
