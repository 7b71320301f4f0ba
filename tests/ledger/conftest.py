"""Fixtures for the ledger tests: a fresh ledger on SQLite and on PostgreSQL, sweep folders.

Every test that takes `ledger` or `db_url` runs twice: on a SQLite file in its tmp_path and on
PostgreSQL in a schema of its own (``ledger_t_<pid>_<random>``, dropped afterwards), so runs
never collide. PostgreSQL is used when ``BENEFITS_TEST_POSTGRES_URL`` is set (it must then be
reachable: the tests fail otherwise) or when the local server
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` answers; set the variable to ``skip`` to
run on SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_helpers import TickClock

from benefits.ledger import Ledger
from tests.postgres import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None, pg_admin: object
) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    yield from database_url(request, tmp_path, pg_base_url, pg_admin, "ledger_t")


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
