"""The partitioned engine: stage the delivery into household partitions, sweep them in a pool of
worker processes, combine the outputs — peak memory follows the partition size, not the
population.

Example:
    >>> result = run_partitioned(Path("datasets/sample"), "2025-01", out=None,
    ...                          partitions=7, workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl

from benefits.atomic import atomic_folder
from benefits.months import check_sweep_month
from benefits.partition import PartOutputs, combine, jsonl_lines, rule_records, sweep_partition
from benefits.progress import Progress, no_progress
from benefits.rulebook import RulePack, load_pack
from benefits.staging import Staged, stage
from benefits.sweep import SweepResult, write_outputs, write_summary

from . import default_partitions, default_workers

# (pack, month, staged, partitions, workers, traces) -> (index, persons, records, seconds) each
SweepAll = Callable[
    [RulePack, str, Staged, int, int, bool], list[tuple[int, int, int, dict[str, float]]]
]

# a hook for the tests of atomic outputs: the partition whose worker fails on purpose
FAIL_PARTITION_ENV = "BENEFITS_TEST_FAIL_PARTITION"


def _sweep_one(
    pack: RulePack, month: str, root: Path, index: int, traces: bool
) -> tuple[int, int, int, dict[str, float]]:
    """Sweep partition `index` of the staging in `root` (in a worker process) and write its
    outputs beside it; returns (index, persons, trace records, stage seconds)."""
    if os.environ.get(FAIL_PARTITION_ENV) == str(index):
        raise RuntimeError(f"partition {index} failed on purpose ({FAIL_PARTITION_ENV})")
    staged = Staged.load(root)
    tables, quarantine = staged.read_part(index)
    part = sweep_partition(pack, month, tables, quarantine, index=index, traces=traces)
    part.write(root / f"out-{index:05d}")
    return index, part.persons, part.trace_records, part.stage_seconds


def run_partitioned(
    data: Path,
    month: str,
    out: Path | None = None,
    rules: Path | None = None,
    write_traces: bool = True,
    progress: Progress = no_progress,
    pack: RulePack | None = None,
    partitions: int | None = None,
    workers: int | None = None,
    work_dir: Path | None = None,
    chunk_rows: int | None = None,
    sweep_all: SweepAll | None = None,
    engine: dict | None = None,
) -> SweepResult:
    """Run the sweep with the partitioned engine (same outputs as :func:`run_sweep`).

    `sweep_all` replaces the process pool (the Spark engine sweeps the partitions in Spark
    tasks) and `engine` the summary's engine block."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    pack = pack or load_pack(rules)
    bm = check_sweep_month(month, pack, None)
    workers = workers or default_workers()
    partitions = partitions or default_partitions(Path(data), workers)
    scratch = Path(tempfile.mkdtemp(prefix="benefits-stage-", dir=work_dir))
    try:
        progress(f"staging into {partitions} partitions")
        t = time.perf_counter()
        staged = stage(Path(data), pack, partitions, scratch / "stage", chunk_rows=chunk_rows)
        timings["ingest"] = time.perf_counter() - t
        progress(f"sweeping {partitions} partitions with {workers} workers")
        t = time.perf_counter()
        counts = (sweep_all or _sweep_all)(
            pack, bm.label, staged, partitions, workers, write_traces
        )
        timings["partitions"] = time.perf_counter() - t
        t = time.perf_counter()
        parts = [
            PartOutputs.read(staged.root / f"out-{i:05d}", i, persons, records)
            for i, persons, records, _ in counts
        ]
        result = combine(pack, bm.label, staged.delivery, staged.quarantine.drop("__part"),
                         parts, out)  # fmt: skip
        del parts
        timings["combine"] = time.perf_counter() - t
        summary = result.summary
        summary["engine"] = engine or {
            "name": "partitioned",
            "partitions": partitions,
            "workers": workers,
        }
        rules_text = rule_records(pack, bm.label) if write_traces else []
        if write_traces:
            summary["trace_records"] = len(rules_text) + sum(c[2] for c in counts)
        if out is not None:
            out = Path(out)
            with atomic_folder(out) as work:
                progress("writing outputs")
                t = time.perf_counter()
                write_outputs(result, work)
                timings["write"] = time.perf_counter() - t
                if write_traces:
                    progress("traces")
                    t = time.perf_counter()
                    files = [staged.root / f"out-{i:05d}" / "traces.parquet" for i, *_ in counts]
                    lines = jsonl_lines(rules_text, [pl.read_parquet(f) for f in files])
                    lines.sink_csv(work / "traces.jsonl", include_header=False,
                                   quote_style="never")  # fmt: skip
                    timings["traces"] = time.perf_counter() - t
                    result.traces_path = out / "traces.jsonl"
                _finish(summary, timings, t0)
                write_summary(summary, work)
        else:
            if write_traces:
                files = [staged.root / f"out-{i:05d}" / "traces.parquet" for i, *_ in counts]
                frames = [pl.read_parquet(f) for f in files]
                result.trace_lines = jsonl_lines(rules_text, frames).collect()["line"]
            _finish(summary, timings, t0)
        result.timings = timings
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _finish(summary: dict, timings: dict[str, float], t0: float) -> None:
    summary["run_seconds"] = round(time.perf_counter() - t0, 3)
    summary["stage_seconds"] = {k: round(v, 3) for k, v in timings.items()}


def _sweep_all(
    pack: RulePack, month: str, staged: Staged, partitions: int, workers: int, traces: bool
) -> list[tuple[int, int, int, dict[str, float]]]:
    """Sweep every partition (in a process pool when workers > 1), in partition order."""
    args = [(pack, month, staged.root, i, traces) for i in range(partitions)]
    if workers <= 1:
        return [_sweep_one(*a) for a in args]
    # spawn: Polars' thread pool does not survive fork; each worker imports benefits once
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_sweep_one, *a) for a in args]
        return [f.result() for f in futures]
