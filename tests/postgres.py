"""PostgreSQL for the tests: which server, and a fresh schema per test, dropped afterwards.

PostgreSQL is used when ``BENEFITS_TEST_POSTGRES_URL`` is set (it must then be reachable: the
tests fail otherwise) or when the local server ``postgresql+psycopg://postgres@127.0.0.1:5432/
test`` answers; set the variable to ``skip`` to run on SQLite only. The fixtures
``pg_base_url`` and ``pg_admin`` live in tests/conftest.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benefits.ledger.db import resolve_url

PG_ENV = "BENEFITS_TEST_POSTGRES_URL"
PG_LOCAL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_reachable(url: str) -> bool:
    """True when a connection to `url` answers within 3 s."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def base_url() -> str | None:
    """The PostgreSQL URL the tests use, or None (see the module doc)."""
    explicit = os.environ.get(PG_ENV, "").strip()
    if explicit.lower() in ("skip", "off", "0", "no"):
        return None
    url = resolve_url(explicit or PG_LOCAL)
    if pg_reachable(url):
        return url
    if explicit:
        pytest.fail(f"{PG_ENV}={explicit} is set but the server cannot be reached")
    return None


def with_schema(base: str, schema: str) -> str:
    """`base` with its search_path set to `schema`."""
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def fresh_schema(pg_base_url: str | None, pg_admin: object, prefix: str) -> Iterator[str]:
    """Yield the URL of a new, empty schema ``<prefix>_<pid>_<random>``; drop it afterwards."""
    if pg_base_url is None:
        pytest.skip(f"no PostgreSQL for the tests (set {PG_ENV} to a reachable server URL)")
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_schema(pg_base_url, schema)
    finally:
        with pg_admin.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


# The two backends every database test runs on (PostgreSQL skipped when none answers).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None, pg_admin: object,
    prefix: str,
) -> Iterator[str]:
    """An empty database for the backend ``request.param`` (one of BACKENDS): a SQLite file in
    `tmp_path`, or a fresh PostgreSQL schema ``<prefix>_…`` dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    yield from fresh_schema(pg_base_url, pg_admin, prefix)
