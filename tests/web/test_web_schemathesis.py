"""schemathesis against the published OpenAPI schema: the API does exactly what it documents.

As an integrator would run it (issue 18): ``st run <url>/api/v1/openapi.json --checks all``
against the app served by uvicorn on 127.0.0.1, with the API token of a user holding every
role and the pii grant, on a ledger seeded with a run, a submitted batch and its items, alerts
and users (so generated requests reach real records), a fixed seed and a bounded number of
examples per operation — every operation, every phase (examples, coverage, fuzzing, stateful).
Zero failures are allowed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import PASSWORDS, Seeded, serve

SEED = 20251
MAX_EXAMPLES = 10
BUDGET_SECONDS = 120


@pytest.fixture
def served(seeded: Seeded) -> Iterator[str]:
    """The seeded app on 127.0.0.1:<free port> (uvicorn in a thread); yields the base URL."""
    with serve(seeded.app) as url:
        yield url


def _records_config(seeded: Seeded) -> str:
    """A schemathesis config whose dictionaries hold the seeded records' identifiers, so that
    half of the generated path parameters name a real run, batch, item, alert, user or person."""
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    items = ctx.ledger.items(batch.id, limit=5)
    held = ctx.ledger.items(batch.id, status="held", limit=3)
    ctx.know_all()
    values = {
        "run_id": [r.id for r in ctx.ledger.runs()],
        "batch_id": [b.id for b in ctx.ledger.batches()],
        "item_id": sorted({i.id for i in items + held}),
        "alert_id": [1, 2, 3],
        "username": ["officer", "approver", "auditor"],
        "ref": [ctx.directory.ref(i.id_no) for i in items[:3]],
    }
    lines = []
    for name, found in values.items():
        assert found, f"the seeded ledger has no {name}"
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(found)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in values]
    return "\n".join(lines) + "\n"


def _slowest(report: Path, count: int = 5) -> list[str]:
    """The slowest operations of the JUnit report (to see where the time budget goes)."""
    import xml.etree.ElementTree as ET

    cases = [(float(case.get("time") or 0), case.get("name") or "?")
             for xml in report.glob("*.xml") for case in ET.parse(xml).iter("testcase")]
    return [f"{name} {seconds:.1f}s" for seconds, name in sorted(cases, reverse=True)[:count]]


def test_api_keeps_its_published_contract(seeded: Seeded, served: str, tmp_path: Path) -> None:
    ctx = seeded.ctx
    ctx.accounts.create_user("fuzzer", PASSWORDS["admin"],
                             ["officer", "approver", "auditor", "admin"], pii=True, by="admin")
    token = seeded.token("fuzzer")
    schema = httpx.get(f"{served}/api/v1/openapi.json").json()
    operations = [(m, p) for p, item in schema["paths"].items() for m in item]
    assert len(operations) >= 26

    config = tmp_path / "schemathesis.toml"
    config.write_text(_records_config(seeded), encoding="utf-8")
    st = Path(sys.executable).with_name("st")
    command = [
        str(st) if st.exists() else "st", "--config-file", str(config),
        "run", f"{served}/api/v1/openapi.json",
        "--checks", "all", "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
        "--workers", "1", "--header", f"Authorization: Bearer {token}",
        "--suppress-health-check", "all", "--request-timeout", "30",
        "--report", "junit", "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"},
                            cwd=tmp_path)  # fmt: skip
    took = time.perf_counter() - started
    print(result.stdout[-3000:])
    print(f"schemathesis: {took:.0f} s; slowest:", ", ".join(_slowest(tmp_path / "report")))
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
    n = len(operations)
    assert f"Selected: {n}/{n}" in result.stdout and f"Tested: {n}" in result.stdout
    assert took < BUDGET_SECONDS, f"schemathesis took {took:.0f} s"
