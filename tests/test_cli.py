"""End-to-end: the `benefits` command on the bundled sample and on small deliveries."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from benefits.cli import app
from benefits.traces import read_all_records
from tests.conftest import person

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "sample"
runner = CliRunner()

CONTRACT = {
    "entitlements": ["id_no", "household_no", "policy_id", "month", "mode", "amount", "held"],
    "alerts": ["id_no", "kind", "policy_id", "due_date", "message"],
    "quarantine": ["table", "row", "id_no", "field", "reason"],
}


def _sweep(data: Path, out: Path, month: str = "2025-01", *extra: str):
    return runner.invoke(
        app, ["sweep", "--data", str(data), "--month", month, "--out", str(out), *extra]
    )


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "out"
    result = _sweep(SAMPLE, out)
    assert result.exit_code == 0, result.output
    return out


def test_sample_sweep_writes_every_contract_output(sample_out: Path) -> None:
    for name, columns in CONTRACT.items():
        csv = pl.read_csv(sample_out / f"{name}.csv", infer_schema=False)
        parquet = pl.read_parquet(sample_out / f"{name}.parquet")
        assert csv.columns[: len(columns)] == columns
        assert parquet.height == csv.height
    assert (sample_out / "traces" / "part-00000.parquet").stat().st_size > 0  # the default
    assert not (sample_out / "traces.jsonl").exists()
    summary = json.loads((sample_out / "summary.json").read_text(encoding="utf-8"))
    assert summary["month"] == "2025-01"
    assert len(summary["rule_pack"]["hash"]) == 64
    for table, info in summary["tables"].items():
        assert info["read"] == info["accepted"] + info["quarantined"], table
    ent = pl.read_csv(sample_out / "entitlements.csv", infer_schema=False)
    # the sample district exercises every policy
    assert set(ent["policy_id"]) == set(summary["policies"])
    assert ent["amount"].str.contains(r"^\d+\.\d{2}$").all()
    alerts = pl.read_csv(sample_out / "alerts.csv", infer_schema=False)
    assert alerts.select("id_no", "kind", "policy_id", "due_date").is_duplicated().sum() == 0


def test_trace_lines_explain_each_decision(sample_out: Path) -> None:
    lines = read_all_records(sample_out).to_list()  # the columnar traces' records
    records = [json.loads(line) for line in lines]
    rules = {r["policy_id"]: r for r in records if r["record"] == "rule"}
    assert len(rules) == 12
    for rule in rules.values():
        assert rule["basis"] and rule["rule_version"] and rule["parameters"]
        for c in rule["conditions"]:
            assert " / " in c["label"] and c["test"]
    ent = pl.read_csv(sample_out / "entitlements.csv", infer_schema=False)
    paid = {(r["id_no"], r["policy_id"]): r for r in ent.iter_rows(named=True)}
    seen = 0
    for t in records:
        if t["record"] != "decision":
            continue
        rule = rules[t["policy_id"]]
        assert list(t["conditions"]) == [c["id"] for c in rule["conditions"]]
        holds = [c["holds"] for c in t["conditions"].values()]
        key = (t["id_no"], t["policy_id"])
        if t["decision"] in ("paid", "held", "credited", "lead", "notice"):
            seen += 1
            assert t["amount"] == paid[key]["amount"]
            assert (t["decision"] == "held") == (paid[key]["held"] == "true")
            assert all(holds)
        elif t["decision"] == "not_eligible":
            assert not all(holds) and key not in paid
        else:
            assert t["exclusions"] and key not in paid, t
        for c in t["conditions"].values():
            assert "values" in c and "sources" in c
        assert set(t["parameters"]) <= set(rule["parameters"])
    assert seen == ent.height


def test_same_inputs_give_byte_identical_outputs(sample_out: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert _sweep(SAMPLE, again, "2025-01", "--quiet").exit_code == 0
    for name in CONTRACT:
        for ext in ("csv", "parquet"):
            assert (again / f"{name}.{ext}").read_bytes() == (
                sample_out / f"{name}.{ext}"
            ).read_bytes(), f"{name}.{ext}"


def test_bad_month_and_missing_persons_give_clear_errors(tmp_path: Path) -> None:
    bad = runner.invoke(
        app, ["sweep", "--data", str(SAMPLE), "--month", "2025-13", "--out", str(tmp_path / "o")]
    )
    assert bad.exit_code != 0
    assert "2025-01" in bad.output
    (tmp_path / "empty").mkdir()
    missing = _sweep(tmp_path / "empty", tmp_path / "o2")
    assert missing.exit_code == 2
    assert "persons.csv or persons.parquet is required" in missing.output


def test_persons_missing_required_column_stops(tmp_path: Path) -> None:
    row = person("1950-01-01", 3)
    del row["relation"]
    data = tmp_path / "d"
    data.mkdir()
    pl.DataFrame([row]).write_csv(data / "persons.csv")
    result = _sweep(data, tmp_path / "o")
    assert result.exit_code == 2
    assert "persons.csv" in result.output and "relation" in result.output


def test_help_is_readable() -> None:
    result = runner.invoke(app, ["sweep", "--help"])
    assert result.exit_code == 0
    for option in ("--data", "--month", "--out", "--quiet"):
        assert option in result.output


def test_a_quiet_sweep_imports_neither_rich_nor_the_rule_tools(tmp_path: Path) -> None:
    """`benefits sweep --quiet` starts without rich and the rule tools (what the start of every
    sweep would pay for); `whatif` and `rules check` are still there for their own commands."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "import benefits.cli as cli\n"
        "try:\n"
        "    cli.app()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'"
        " or m == 'benefits.rulescli'))\n"
    )
    args = ["sweep", "--data", str(SAMPLE), "--month", "2025-01", "--out", str(tmp_path / "o"),
            "--quiet"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]"
    for command in (["whatif", "--help"], ["rules", "check", "--help"]):
        shown = subprocess.run(
            [sys.executable, "-m", "benefits.cli", *command], capture_output=True, text=True,
            cwd=ROOT,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
