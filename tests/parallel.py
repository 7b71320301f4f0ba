"""How the suite is shared between pytest-xdist workers (``pytest -n 2``, as CI runs it).

Each test file goes to one worker whole, so module fixtures (a generated district, a live
server, a browser) are built once. Files that share an expensive session fixture go to the
same worker together: the reliability suite (its 100,000-person month) and the Spark tests
(one JVM). The longest units start first, so that no worker is left with a long file at the
end while the other is idle. Used by ``pytest_xdist_make_scheduler`` in tests/conftest.py;
xdist is imported only when it runs.
"""

from __future__ import annotations

from typing import Any

# Files sharing a session fixture that is expensive to build: one unit, one worker.
TOGETHER = {
    "tests/reliability/": "tests/reliability/",
    "tests/test_spark.py": "spark",
    "tests/test_engines.py": "spark",
}

# The longest units, longest first (pytest --durations; a unit not named here is shorter).
FIRST = [
    "tests/events/test_differential.py",
    "tests/reliability/",
    "spark",
    "tests/test_rule_cases.py",
    "tests/test_wheel.py",
    "tests/ledger/test_ledger_packs.py",
    "tests/web/test_web_flows.py",
    "tests/ledger/test_ledger_crash.py",
    "tests/events/test_differential_periods.py",
    "tests/cycle/test_cycle_concurrency.py",
    "tests/events/test_event_types.py",
    "tests/events/test_dbstore.py",
]


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its group, or else its file."""
    path = nodeid.split("::", 1)[0]
    for prefix, unit in TOGETHER.items():
        if path.startswith(prefix):
            return unit
    return path


def rank(unit: str) -> int:
    """Order of a unit's start: the longest first, the others after them."""
    return FIRST.index(unit) if unit in FIRST else len(FIRST)


def make_scheduler(config: Any, log: Any) -> Any:
    """An xdist scheduler that hands out whole units (see the module doc), longest first."""
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            first = min(self.workqueue, key=rank)  # the first of the lowest rank
            self.workqueue.move_to_end(first, last=False)
            super()._assign_work_unit(node)

    return UnitScheduling(config, log)
