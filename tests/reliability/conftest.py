"""Fixtures for the reliability suite: one synthetic month per session, a ledger database on
SQLite and on PostgreSQL, and the `benefits` command run as a real process.

The month is made once per session with ``benefits synth`` + ``benefits sweep``:
``$BENEFITS_RELIABILITY_PERSONS`` people (default 100,000; a smaller figure for a quick run).
Every test that takes ``db_url`` runs on a SQLite file and on a fresh PostgreSQL schema (see
tests/postgres.py). With ``$BENEFITS_RELIABILITY_REPORT`` set to a file, each test appends one
JSON line of figures (runs, kills, duplicates found) — benchmarks/reliability.py reads them.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# The ledger tests' helpers (sweep folders, bank and return files, item states) are reused here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))

from reliability_helpers import MONTH, PERSONS, REPORT, SEED, Figures, Month, benefits

from tests.postgres import BACKENDS, database_url


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """Figures of this test, appended to $BENEFITS_RELIABILITY_REPORT after it."""
    callspec = getattr(request.node, "callspec", None)
    backend = callspec.params.get("db_url", "-") if callspec else "-"
    fig = Figures(request.node.originalname, backend)
    t0 = time.perf_counter()
    yield fig
    fig.seconds = round(time.perf_counter() - t0, 2)
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fig.__dict__, ensure_ascii=False) + "\n")


@pytest.fixture(scope="session")
def month(tmp_path_factory: pytest.TempPathFactory) -> Month:
    """`benefits synth` + `benefits sweep` of PERSONS people, once per session."""
    import polars as pl

    base = tmp_path_factory.mktemp("month")
    data, out = base / "extracts", base / "out"
    for args in (
        ["synth", "--persons", str(PERSONS), "--seed", str(SEED), "--out", str(data),
         "--month", MONTH],
        ["sweep", "--data", str(data), "--month", MONTH, "--out", str(out), "--quiet",
         "--no-traces"],
    ):  # fmt: skip
        proc = benefits(*args)
        assert proc.returncode == 0, proc.output
    ents = pl.read_csv(out / "entitlements.csv", infer_schema=False)
    return Month(data, out, ents.filter(pl.col("mode").is_in(["pay", "credit"])).height)


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None, pg_admin: object
) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    yield from database_url(request, tmp_path, pg_base_url, pg_admin, "rel_t")
