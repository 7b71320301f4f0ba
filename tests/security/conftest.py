"""Fixtures for the security tests: a ledger on SQLite and on PostgreSQL, and the seeded web app.

The `seeded` fixtures are the web tests' own (tests/web/conftest.py), imported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benefits.ledger import Ledger
from tests.postgres import BACKENDS, database_url
from tests.web.conftest import leak_scan, seeded, seeded_template  # noqa: F401  (fixtures)


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None, pg_admin: object
) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    yield from database_url(request, tmp_path, pg_base_url, pg_admin, "sec_t")


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    """An initialised ledger on each backend (keys from the session's key file)."""
    led = Ledger(db_url)
    led.init(by="admin")
    yield led
    led.close()
