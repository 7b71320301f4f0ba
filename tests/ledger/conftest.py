"""Fixtures for the ledger tests: a fresh ledger on SQLite and on PostgreSQL, sweep folders.

Every test that takes `ledger` or `db_url` runs twice: on a SQLite file in its tmp_path and on
PostgreSQL in a schema of its own (``ledger_t_<pid>_<random>``, dropped afterwards), so runs
never collide. PostgreSQL is used when ``BENEFITS_TEST_POSTGRES_URL`` is set (it must then be
reachable: the tests fail otherwise) or when the local server
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` answers; set the variable to ``skip`` to
run on SQLite only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_helpers import TickClock
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benefits.ledger import Ledger
from benefits.ledger.db import resolve_url

PG_ENV = "BENEFITS_TEST_POSTGRES_URL"
PG_LOCAL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# ------------------------------------------------------------------------ database fixtures


def _pg_reachable(url: str) -> bool:
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_base_url() -> str | None:
    """The PostgreSQL URL tests use, or None when PostgreSQL is not available."""
    explicit = os.environ.get(PG_ENV, "").strip()
    if explicit.lower() in ("skip", "off", "0", "no"):
        return None
    url = resolve_url(explicit or PG_LOCAL)
    if _pg_reachable(url):
        return url
    if explicit:
        pytest.fail(f"{PG_ENV}={explicit} is set but the server cannot be reached")
    return None


@pytest.fixture(scope="session")
def pg_admin(pg_base_url: str | None) -> Iterator[object]:
    """An engine for creating and dropping per-test schemas (None without PostgreSQL)."""
    if pg_base_url is None:
        yield None
        return
    engine = create_engine(pg_base_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _with_schema(base: str, schema: str) -> str:
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None,
           pg_admin: object) -> Iterator[str]:  # fmt: skip
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    if pg_base_url is None:
        pytest.skip(f"no PostgreSQL for the tests (set {PG_ENV} to a reachable server URL)")
    schema = f"ledger_t_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_schema(pg_base_url, schema)
    finally:
        with pg_admin.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def clock() -> TickClock:
    """The clock given to the `ledger` fixture."""
    return TickClock()


@pytest.fixture
def ledger(db_url: str, clock: TickClock) -> Iterator[Ledger]:
    """An initialised ledger on each backend."""
    led = Ledger(db_url, clock=clock)
    led.init(by="admin")
    yield led
    led.close()


@pytest.fixture
def sweeps(tmp_path: Path) -> Path:
    """A folder to write sweep outputs into."""
    path = tmp_path / "sweeps"
    path.mkdir()
    return path
