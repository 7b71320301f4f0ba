"""The suite's split between xdist workers (tests/parallel.py) names files that exist."""

from __future__ import annotations

from pathlib import Path

from tests.parallel import FIRST, TOGETHER, rank, unit_of

ROOT = Path(__file__).resolve().parents[1]


def test_every_named_file_or_folder_exists() -> None:
    named = [*TOGETHER, *(u for u in FIRST if u.startswith("tests/"))]
    assert [p for p in named if not (ROOT / p).exists()] == []
    assert set(FIRST) - {*TOGETHER.values(), *named} == set()


def test_units_group_shared_fixtures_and_the_longest_start_first() -> None:
    assert unit_of("tests/reliability/test_races.py::test_x[sqlite]") == "tests/reliability/"
    assert unit_of("tests/test_engines.py::test_y[spark]") == unit_of("tests/test_spark.py::z")
    assert unit_of("tests/web/test_web_flows.py::test_w") == "tests/web/test_web_flows.py"
    assert rank("tests/events/test_differential.py") == 0
    assert rank("tests/test_months.py") == len(FIRST)
