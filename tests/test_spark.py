"""The Spark engine beyond the differential test (tests/test_engines.py): a Python worker killed
mid-sweep is retried with identical outputs, a sweep whose task keeps dying leaves no output
folder that passes for a finished one, the command line runs it, and a machine without Java
gets one line saying so.

Spark runs in the session's shared local session (fixture `spark`: local[2,3], i.e. up to 3
attempts per task), started once for all Spark tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from benefits.engines import spark as spark_engine
from benefits.engines.spark import KILL_PARTITION_ENV, SparkSweepFailed, run_spark
from benefits.rulebook import load_pack
from benefits.sweep import run_sweep
from benefits.synth import generate

MONTH = "2025-01"
PARTITIONS = 4
CONTRACT_FILES = [
    f"{name}.{ext}"
    for name in ("entitlements", "alerts", "quarantine")
    for ext in ("csv", "parquet")
]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pack():
    return load_pack()


@pytest.fixture(scope="module")
def district(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("district")
    generate(800, seed=5, out=folder, month=MONTH, dirty=0.03)
    return folder


@pytest.fixture(scope="module")
def single(district, pack, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    run_sweep(district, MONTH, out=out, pack=pack, traces="parquet")
    return out


def _same_outputs(out: Path, reference: Path) -> None:
    """The contract files byte for byte; the columnar traces: the same rule records file and
    the same decision records (one part per partition instead of one)."""
    for name in [*CONTRACT_FILES, "traces/rules.parquet"]:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    mine, theirs = (
        pl.scan_parquet(folder / "traces" / "part-*.parquet").collect().sort("id_no", "record")
        for folder in (out, reference)
    )
    assert mine.height and mine.equals(theirs)


def _failed_tasks(spark, group: str) -> int:
    tracker = spark.sparkContext.statusTracker()
    failed = 0
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in info.stageIds if info else ():
            stage_info = tracker.getStageInfo(stage)
            failed += stage_info.numFailedTasks if stage_info else 0
    return failed


@pytest.mark.parametrize("method", ["shuffle", "files"])
def test_killed_worker_is_retried_with_identical_outputs(
    method, spark, district, single, pack, tmp_path, monkeypatch
):
    """The Python worker sweeping partition 2 dies (os._exit) on its first attempt; Spark
    retries the task and the outputs are byte for byte the single engine's; the killed task's
    temporary files go with the sweep's staging."""
    leftovers = set(Path(tempfile.gettempdir()).glob("benefits-part-*"))
    monkeypatch.setenv(KILL_PARTITION_ENV, "2")
    group = f"killed-worker-{method}"
    spark.sparkContext.setJobGroup(group, "a worker killed on purpose")
    try:
        out = tmp_path / "out"
        result = run_spark(
            district, MONTH, out, pack=pack, partitions=PARTITIONS, spark=spark, method=method
        )
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert _failed_tasks(spark, group) >= 1  # the worker really died and was retried
    _same_outputs(out, single)
    assert set(Path(tempfile.gettempdir()).glob("benefits-part-*")) == leftovers
    engine = result.summary["engine"]
    assert engine["partition_seconds"]["total"] > 0
    assert {k: engine[k] for k in ("name", "partitions", "workers", "master")} == {
        "name": "spark",
        "partitions": PARTITIONS,
        "workers": 2,
        "master": "local[2,3]",
    }


def test_failed_spark_sweep_leaves_no_finished_folder(
    spark, district, single, pack, tmp_path, monkeypatch
):
    """A task that dies on every attempt fails the sweep with one line and leaves no output
    folder (nor a work folder); a rerun starts clean and finishes. (That a failed sweep leaves
    an earlier finished folder as it was is the same atomic_folder: tests/test_engines.py.)"""
    out = tmp_path / "out"
    monkeypatch.setenv(KILL_PARTITION_ENV, "1:every")
    with pytest.raises(SparkSweepFailed) as failed:
        run_spark(district, MONTH, out, pack=pack, partitions=PARTITIONS, spark=spark)
    message = str(failed.value)
    assert "\n" not in message and message.startswith("the Spark sweep failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.delenv(KILL_PARTITION_ENV)
    run_spark(district, MONTH, out, pack=pack, partitions=PARTITIONS, spark=spark)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    _same_outputs(out, single)


def test_sweep_command_with_the_spark_engine(spark, district, single, tmp_path):
    """`benefits sweep --engine spark --master local[2,3]` end to end (in this process, so it
    runs in the shared session)."""
    from benefits.cli import app

    out = tmp_path / "out"
    args = ["sweep", "--data", str(district), "--month", MONTH, "--out", str(out), "--quiet",
            "--engine", "spark", "--master", "local[2,3]", "--partitions", "3"]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    _same_outputs(out, single)
    engine = json.loads((out / "summary.json").read_text(encoding="utf-8"))["engine"]
    assert list(engine) == ["name", "partitions", "workers", "master", "partition_seconds"]
    assert engine["master"] == "local[2,3]" and engine["partitions"] == 3


def test_without_java_one_line_error(district, tmp_path):
    """No Java on the machine: exit code 2 and one line naming what is missing."""
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)  # the venv's tools, no java
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "benefits.cli", "sweep", "--data", str(district), "--month",
         MONTH, "--out", str(tmp_path / "out"), "--engine", "spark", "--quiet"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == ["error: the spark engine needs Java 17 or later: install it or set JAVA_HOME"]
    assert not (tmp_path / "out").exists()


def test_folders_given_as_uris(spark, district, single, pack, tmp_path, monkeypatch):
    """The way of a cluster: input, output and staging folders named by URI go through
    Hadoop's FileSystem API (as hdfs:// or s3a:// folders would), and the tasks send their
    outputs back through Spark instead of writing the driver's folders. Same outputs, the
    summary names the URIs, nothing is left in the staging folder or beside the output."""
    monkeypatch.setattr(spark_engine, "is_local", lambda master: False)  # as on a cluster
    out = tmp_path / "published" / "2025-01"
    staging = tmp_path / "staging"
    result = run_spark(
        district.as_uri(),
        MONTH,
        out.as_uri(),
        pack=pack,
        partitions=PARTITIONS,
        spark=spark,
        staging=staging.as_uri(),
    )
    _same_outputs(out, single)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["data"] == district.as_uri() == result.summary["data"]
    assert summary["out"] == out.as_uri()
    assert sorted(p.name for p in out.parent.iterdir()) == ["2025-01"]
    assert list(staging.iterdir()) == []
    reference = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    assert summary["tables"] == reference["tables"]
    assert summary["totals"] == reference["totals"]


def test_spark_submit_entry_point(tmp_path):
    """The program spark-submit runs takes `benefits sweep`'s options, always with Spark."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, str(ROOT / "deploy" / "spark" / "sweep.py")]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, env=env,
                           timeout=120, check=False)  # fmt: skip
    assert shown.returncode == 0 and "--master" in shown.stdout
    refused = subprocess.run(
        [*run, "--engine", "single", "--data", str(tmp_path), "--month", MONTH, "--out",
         str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: the Spark entry point always runs --engine spark"
