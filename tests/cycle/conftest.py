"""Fixtures for the cycle's tests: databases (SQLite and PostgreSQL), deliveries, settings.

Tests taking `db_url` run on a SQLite file in their tmp_path and on PostgreSQL in a schema of
their own (``cycle_t_<pid>_<random>``, dropped afterwards), like the ledger's tests: set
``BENEFITS_TEST_POSTGRES_URL`` to a server, or to ``skip``; without it the local server
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` is used when it answers.

Deliveries are generated once per session (``benefits.synth``, 700 persons, clean rows) for
2024-12 and 2025-01 and copied into each test's landing folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cycle_helpers import MutableClock, make_settings

from benefits.cycle.settings import CycleSettings
from benefits.ledger import Ledger
from tests.postgres import BACKENDS, database_url, fresh_schema

PERSONS = 700
SEED = 11


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None, pg_admin: object
) -> Iterator[str]:
    """An empty database on each backend."""
    yield from database_url(request, tmp_path, pg_base_url, pg_admin, "cycle_t")


@pytest.fixture
def pg_url(pg_base_url: str | None, pg_admin: object) -> Iterator[str]:
    """An empty PostgreSQL schema (tests that need PostgreSQL only)."""
    yield from fresh_schema(pg_base_url, pg_admin, "cycle_t")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite database (tests that need one backend only)."""
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture(scope="session")
def deliveries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated clean deliveries: ``<root>/2024-12/*.csv`` and ``<root>/2025-01/*.csv``."""
    from benefits.synth import generate

    root = tmp_path_factory.mktemp("deliveries")
    for month in ("2024-12", "2025-01"):
        generate(persons=PERSONS, seed=SEED, out=root / month, month=month, dirty=0)
    return root


@pytest.fixture
def clock() -> MutableClock:
    """A clock at 2025-01-03 10:00 in Hangzhou (before the default deadline, day 4 12:00)."""
    return MutableClock.local(2025, 1, 3, 10, 0)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> CycleSettings:
    """Settings on the test's database with its own landing and store folders."""
    return make_settings(tmp_path, db_url)


@pytest.fixture
def ledger(settings: CycleSettings, clock: MutableClock) -> Iterator[Ledger]:
    """The initialised ledger the cycle writes to (opened with the test clock)."""
    led = Ledger(settings.database_url, clock=clock)
    led.init(by="admin")
    yield led
    led.close()
