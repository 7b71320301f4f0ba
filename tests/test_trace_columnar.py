"""Columnar traces (``traces/``): the same records as traces.jsonl, sorted by resident ID,
found per person; ``--traces parquet|jsonl|both|none`` writes exactly the forms asked for."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from benefits import traces as tracing
from benefits.cli import app
from benefits.rulebook import load_pack
from benefits.sweep import finish_entitlements, run_sweep

SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "sample"
PACK = load_pack()


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample swept with both forms of traces."""
    out = tmp_path_factory.mktemp("both") / "out"
    run_sweep(SAMPLE, "2025-01", out=out, pack=PACK, traces="both")
    return out


def _jsonl(out: Path) -> list[str]:
    return (out / "traces.jsonl").read_text(encoding="utf-8").splitlines()


def test_columnar_records_are_the_jsonl_records(both: Path) -> None:
    lines = _jsonl(both)
    rules = pl.read_parquet(both / "traces" / "rules.parquet")
    parts = tracing.trace_parts(both)
    assert [p.name for p in parts] == ["part-00000.parquet"]
    decisions = pl.read_parquet(parts[0])
    assert decisions.columns == ["id_no", "household_no", "policy_id", "record"]
    # the rule records first, exactly as the file's first lines, one per policy in pack order
    assert rules["record"].to_list() == lines[: rules.height]
    assert rules["policy_id"].to_list() == [
        json.loads(x)["policy_id"] for x in lines[: rules.height]
    ]
    # every decision line once, with its keys in the columns
    assert sorted(decisions["record"].to_list()) == sorted(lines[rules.height :])
    assert decisions["id_no"].is_sorted()
    parsed = [json.loads(r) for r in decisions["record"]]
    assert decisions["id_no"].to_list() == [r["id_no"] for r in parsed]
    assert decisions["household_no"].to_list() == [r["household_no"] for r in parsed]
    assert decisions["policy_id"].to_list() == [r["policy_id"] for r in parsed]
    summary = json.loads((both / "summary.json").read_text(encoding="utf-8"))
    assert summary["trace_records"] == len(lines) == rules.height + decisions.height


def test_a_persons_records_read_from_either_form_agree(both: Path, tmp_path: Path) -> None:
    lines = _jsonl(both)
    decisions = [json.loads(x) for x in lines if '"record":"decision"' in x]
    ids = sorted({d["id_no"] for d in decisions})[::41]
    only_jsonl = tmp_path / "old"  # an older run: traces.jsonl only
    only_jsonl.mkdir()
    (only_jsonl / "traces.jsonl").write_bytes((both / "traces.jsonl").read_bytes())
    for id_no in ids:
        expected = [
            x
            for x, d in zip(lines[len(lines) - len(decisions) :], decisions, strict=True)
            if d["id_no"] == id_no
        ]
        assert len(expected) >= 1
        assert tracing.read_person_records(both, id_no) == expected  # policy order kept
        assert tracing.read_person_records(only_jsonl, id_no) == expected
    assert tracing.read_person_records(both, "000000000000000000") == []
    assert tracing.read_rule_records(both) == tracing.read_rule_records(only_jsonl)
    assert set(tracing.read_rule_records(both)) >= {"old_age_allowance", "dibao_allowance"}
    assert tracing.read_person_records(tmp_path / "nothing", ids[0]) == []


def test_trace_table_keeps_only_the_persons_asked_for() -> None:
    result = run_sweep(SAMPLE, "2025-01", pack=PACK, traces="none")
    ev = result.evaluation
    assert ev is not None
    _, held = finish_entitlements(ev)
    full = tracing.trace_table(PACK, ev, held)
    households = full["household_no"].unique().sort()[::3]
    part = tracing.trace_table(
        PACK, ev, held, keep=pl.col("household_no").is_in(households.implode())
    )
    assert part["id_no"].is_sorted() and part.height < full.height
    assert part.equals(full.filter(pl.col("household_no").is_in(households.implode())))
    assert len(tracing.rule_records(PACK, ev)) == len(ev.policies)


def test_the_cli_writes_the_forms_asked_for_and_removes_the_others(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    base = ["sweep", "--data", str(SAMPLE), "--month", "2025-01", "--out", str(out), "--quiet"]

    def run(*extra: str) -> set[str]:
        r = runner.invoke(app, [*base, *extra])
        assert r.exit_code == 0, r.output
        return {p.name for p in out.iterdir() if p.name.startswith("traces")}

    assert run() == {"traces"}  # parquet by default
    assert tracing.has_columnar(out) and len(tracing.trace_parts(out)) == 1
    assert run("--traces", "jsonl") == {"traces.jsonl"}
    jsonl = (out / "traces.jsonl").read_bytes()
    assert run("--traces", "both") == {"traces", "traces.jsonl"}
    assert (out / "traces.jsonl").read_bytes() == jsonl  # the same file either way
    assert run("--traces", "none") == set()
    assert run("--traces", "parquet") == {"traces"}
    assert run("--no-traces") == set()
    bad = runner.invoke(app, [*base, "--traces", "xml"])
    assert bad.exit_code == 2 and "parquet, jsonl, both, none" in bad.output
    assert "Traceback" not in bad.output


def test_traces_property_reads_back_the_columnar_traces(tmp_path: Path) -> None:
    result = run_sweep(SAMPLE, "2025-01", out=tmp_path / "o", pack=PACK)
    in_memory = run_sweep(SAMPLE, "2025-01", pack=PACK)
    assert sorted(result.traces.to_list()) == sorted(in_memory.traces.to_list())
    assert result.traces.len() == result.summary["trace_records"]


def test_traces_in_several_parts_read_as_one(both: Path, tmp_path: Path) -> None:
    """The partitioned engines write one part per partition: the reader and the web app's
    person traces see the same records as from the single engine's one part."""
    from benefits.web.traceindex import ColumnarTraces

    single = pl.read_parquet(tracing.trace_parts(both)[0])
    out = tmp_path / "parted"
    folder = out / tracing.TRACES_DIR
    tracing.write_trace_rules(_rules(both), folder)
    parts = single.with_columns(p=pl.col("household_no").hash() % 5).partition_by("p")
    for i, part in enumerate(parts):
        tracing.write_trace_part(tracing.sort_records(part.drop("p")), folder, i)
    assert len(tracing.trace_parts(out)) == 5
    traces = ColumnarTraces(out)
    assert traces.rules == tracing.read_rule_records(both)
    assert sorted(traces.id_list()) == sorted(single["id_no"].unique())
    for id_no in single["id_no"].unique().sort()[::37]:
        expected = tracing.read_person_records(both, id_no)
        assert tracing.read_person_records(out, id_no) == expected
        assert traces.lines(id_no) == expected
    assert sorted(tracing.read_all_records(out)) == sorted(tracing.read_all_records(both))


def _rules(out: Path) -> list[str]:
    return pl.read_parquet(out / tracing.TRACES_DIR / tracing.RULES_FILE)["record"].to_list()


@pytest.mark.parametrize("odd", [None, "not an ID", "33010619450101123", "+3010619450101123X"])
def test_records_sort_by_id_as_text_whatever_the_ids(odd: str | None) -> None:
    """Valid IDs sort by number (check character X after 9), anything else as text; both
    give the text order, each person's records in their policy order."""
    ids = ["330106194501011233", "33010619450101123X", "110105194912310021", "330106194501011233",
           "11010519491231002X", "330106194501011225", "110105194912310021"]  # fmt: skip
    frame = pl.DataFrame({"id_no": ids, "record": [str(i) for i in range(len(ids))]})
    expected = frame.sort("id_no", maintain_order=True, nulls_last=True)
    assert tracing.sort_records(frame).equals(expected)
    assert expected["record"].to_list() == ["2", "6", "4", "5", "0", "3", "1"]
    mixed = pl.concat([frame, pl.DataFrame({"id_no": [odd], "record": ["x"]})])
    assert tracing.sort_records(mixed).equals(
        mixed.sort("id_no", maintain_order=True, nulls_last=True)
    )
