"""Rule cases: the handbook's policies and alerts as readable YAML cases (``tests/cases/``).

Each case writes its extracts as CSV files into a temporary folder, runs one sweep for its
month through the public API (``benefits.sweep.run_sweep``) and demands exactly the
entitlements, alerts and quarantined rows the case lists — nothing missing, nothing extra.
The case format is described in :mod:`casekit`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.casekit import Case, build, compare, describe, load_cases, write_extracts

CASES: list[Case] = load_cases()


@pytest.fixture(scope="session")
def run_sweep() -> Callable[..., Any]:
    """The engine under test, imported only when a case runs (the case files load without it)."""
    from benefits.sweep import run_sweep as engine

    return engine


@pytest.fixture(scope="session")
def pack() -> Any:
    """The bundled rule pack, loaded once for every case (loading it is most of a small sweep;
    run_sweep loads this same pack when given none — tests/test_rulebook.py tests the loading)."""
    from benefits.rulebook import load_pack

    return load_pack()


def test_case_files_are_well_formed() -> None:
    """Every case builds (handles, columns, expectations) and names are unique per file."""
    assert CASES, "no rule cases found"
    for case in CASES:
        build(case)
    counts = Counter(case.id for case in CASES)
    assert not [cid for cid, n in counts.items() if n > 1], "duplicate case names"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rule_case(case: Case, tmp_path: Path, run_sweep: Callable[..., Any], pack: Any) -> None:
    built = build(case)
    write_extracts(built, tmp_path)
    options: dict[str, Any] = {"pack": pack}
    if built.parameters:  # a what-if case: the same rules with some parameters replaced
        options["pack"] = pack.with_parameters(built.parameters)
    if built.error is not None:
        with pytest.raises(Exception) as raised:  # any engine error type
            run_sweep(tmp_path, case.month, out=None, **options)
        missing = [text for text in built.error if text not in str(raised.value)]
        assert not missing, f"{describe(built)}\nerror {raised.value!r} does not mention {missing}"
        return
    result = run_sweep(tmp_path, case.month, out=None, **options)
    problems = compare(built, result)
    if problems:
        pytest.fail(f"{describe(built)}\n" + "\n".join(problems), pytrace=False)
