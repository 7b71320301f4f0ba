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
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from benefits import traces as tracing
from benefits.atomic import STAGING_PREFIX, atomic_folder
from benefits.errors import BenefitsError
from benefits.months import check_sweep_month
from benefits.partition import PartOutputs, combine, jsonl_lines, rule_records, sweep_partition
from benefits.progress import Progress, no_progress
from benefits.rulebook import RulePack, load_pack
from benefits.staging import LOCAL_BUCKETS, Staged, stage
from benefits.sweep import SweepResult, write_outputs, write_summary

from . import default_partitions, default_workers

# (pack, month, staged, partitions, workers, trace_dir, keep) -> per partition, in order:
# (index, persons, trace records, stage seconds); see _sweep_all
SweepAll = Callable[
    [RulePack, str, Staged, int, int, Path | None, bool],
    list[tuple[int, int, int, dict[str, float]]],
]

# Polars' allocator (jemalloc) in the worker processes: freed pages are kept for a minute
# (Polars' default hands them back to the kernel after half a second), so the next partition
# reuses them rather than faulting fresh zeroed pages in: about 10 % of a worker's CPU at
# 10 million people, for some 40 MiB more resident per worker. Appended to the allocator
# setting the workers inherit; BENEFITS_WORKER_MALLOC_CONF replaces it ("" keeps the default).
ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"
WORKER_ALLOCATOR_ENV = "BENEFITS_WORKER_MALLOC_CONF"
WORKER_ALLOCATOR = "dirty_decay_ms:60000,muzzy_decay_ms:60000"

# a hook for the tests of atomic outputs: "N" makes partition N fail, "kill:N" kills its worker
FAIL_PARTITION_ENV = "BENEFITS_TEST_FAIL_PARTITION"


def _sweep_one(
    pack: RulePack, month: str, root: Path, index: int, trace_dir: Path | None, keep: bool
) -> tuple[int, int, int, dict[str, float]]:
    """Sweep partition `index` of the staging in `root` (in a worker process): its columnar
    traces go to `trace_dir`, its other outputs (and, if `keep`, its records for
    traces.jsonl) beside the staging; returns (index, persons, trace records, stage seconds)."""
    fail = os.environ.get(FAIL_PARTITION_ENV)
    if fail == str(index):
        raise RuntimeError(f"partition {index} failed on purpose ({FAIL_PARTITION_ENV})")
    if fail == f"kill:{index}":
        os._exit(9)  # a worker that dies, as the kernel's OOM killer would end it
    staged = Staged.load(root, quarantine=False)
    tables, quarantine = staged.read_part(index)
    want = trace_dir is not None or keep
    part = sweep_partition(
        pack, month, tables, quarantine, index=index, traces=want, jsonl_order=keep
    )
    if trace_dir is not None and part.traces is not None:
        tracing.write_trace_part(part.traces, trace_dir, index)
    if not keep:
        part.traces = None
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
    traces: str | None = None,
    sweep_all: SweepAll | None = None,
    engine: dict | None = None,
    buckets: str = LOCAL_BUCKETS,
) -> SweepResult:
    """Run the sweep with the partitioned engine: the same outputs as
    :func:`benefits.sweep.run_sweep` (columnar traces: one part per partition).

    The staging goes to a hidden folder beside `out` (or under `work_dir`, or the system's
    temporary folder), removed at the end; outputs appear in `out` atomically. `sweep_all`
    replaces the process pool (the Spark engine sweeps the partitions in Spark tasks),
    `engine` the summary's engine block and `buckets` the staged buckets' compression.
    """
    fmt = traces or ("parquet" if write_traces else "none")
    if fmt not in tracing.TRACE_FORMATS:
        raise ValueError(f"traces must be one of {', '.join(tracing.TRACE_FORMATS)}, got {fmt!r}")
    t0 = time.perf_counter()
    pack = pack or load_pack(rules)
    bm = check_sweep_month(month, pack, None)
    workers = workers or default_workers()
    partitions = partitions or default_partitions(Path(data), workers)
    if out is None:
        scratch = Path(tempfile.mkdtemp(prefix="benefits-stage-", dir=work_dir))
        try:
            return _run(pack, bm.label, Path(data), None, None, scratch, partitions, workers,
                        chunk_rows, fmt, progress, t0, sweep_all, engine, buckets)  # fmt: skip
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    out = Path(out)
    with atomic_folder(out) as work:
        prefix = STAGING_PREFIX.format(name=out.absolute().name)
        scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=work_dir or out.absolute().parent))
        try:
            return _run(pack, bm.label, Path(data), out, work, scratch, partitions, workers,
                        chunk_rows, fmt, progress, t0, sweep_all, engine, buckets)  # fmt: skip
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _run(
    pack: RulePack,
    month: str,
    data: Path,
    out: Path | None,
    work: Path | None,
    scratch: Path,
    partitions: int,
    workers: int,
    chunk_rows: int | None,
    fmt: str,
    progress: Progress,
    t0: float,
    sweep_all: SweepAll | None = None,
    engine: dict | None = None,
    buckets: str = LOCAL_BUCKETS,
) -> SweepResult:
    timings: dict[str, float] = {}
    progress(f"staging into {partitions} partitions")
    t = time.perf_counter()
    staged = stage_apart(
        data, pack, partitions, scratch / "stage", chunk_rows, workers, compression=buckets
    )
    timings["ingest"] = time.perf_counter() - t
    progress(f"sweeping {partitions} partitions with {workers} workers")
    t = time.perf_counter()
    columnar = work is not None and fmt in ("parquet", "both")
    keep = fmt != "none" and (work is None or fmt in ("jsonl", "both"))
    trace_dir = work / tracing.TRACES_DIR if columnar and work is not None else None
    counts = (sweep_all or _sweep_all)(pack, month, staged, partitions, workers, trace_dir, keep)
    timings["partitions"] = time.perf_counter() - t
    t = time.perf_counter()
    parts = [
        PartOutputs.read(staged.root / f"out-{i:05d}", i, persons, records)
        for i, persons, records, _ in counts
    ]
    q = staged.quarantine.drop("__part")
    result = combine(pack, month, staged.delivery, q, parts, out)
    del parts
    timings["combine"] = time.perf_counter() - t
    summary = result.summary
    each = sorted(c[3].get("partition", 0.0) for c in counts)
    summary["engine"] = {
        **(engine or {"name": "partitioned", "partitions": partitions, "workers": workers}),
        # seconds one partition took in its worker (staging and merging excluded)
        "partition_seconds": {
            "median": round(each[len(each) // 2], 3) if each else 0.0,
            "max": round(each[-1], 3) if each else 0.0,
            "total": round(sum(each), 3),
        },
    }
    rules_text = rule_records(pack, month) if fmt != "none" else []
    if fmt != "none":
        summary["trace_records"] = len(rules_text) + sum(c[2] for c in counts)
    records = [staged.root / f"out-{i:05d}" / "traces.parquet" for i, *_ in counts]
    if work is None or out is None:
        if keep:
            frames = [pl.read_parquet(f) for f in records]
            result.trace_lines = jsonl_lines(rules_text, frames).collect()["line"]
        _finish(summary, timings, t0)
        result.timings = timings
        return result
    progress("writing outputs")
    t = time.perf_counter()
    write_outputs(result, work)
    timings["write"] = time.perf_counter() - t
    if fmt != "none":
        progress("traces")
        t = time.perf_counter()
        if columnar:
            tracing.write_trace_rules(rules_text, work / tracing.TRACES_DIR)
        if keep:
            lines = jsonl_lines(rules_text, [pl.scan_parquet(f) for f in records])
            lines.sink_csv(work / tracing.JSONL_NAME, include_header=False, quote_style="never")
        timings["traces"] = time.perf_counter() - t
        result.traces_path = out
    _finish(summary, timings, t0)
    write_summary(summary, work)
    result.timings = timings
    return result


def stage_apart(
    data: Path,
    pack: RulePack,
    partitions: int,
    root: Path,
    chunk_rows: int | None,
    workers: int,
    strays: bool = False,
    compression: str = LOCAL_BUCKETS,
) -> Staged:
    """Stage the delivery — in a process of its own when the engine uses processes, so the
    memory the staging used is given back before the workers start (`strays`, `compression`:
    see :func:`benefits.staging.stage`)."""
    if workers <= 1:
        return stage(data, pack, partitions, root, chunk_rows, strays, compression)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        try:
            args = (data, pack, partitions, root, chunk_rows, strays, compression)
            return pool.submit(stage, *args).result()
        except BrokenProcessPool as exc:
            raise BenefitsError(
                "the staging process of the partitioned engine died (out of memory?)"
            ) from exc


def _finish(summary: dict, timings: dict[str, float], t0: float) -> None:
    summary["run_seconds"] = round(time.perf_counter() - t0, 3)
    summary["stage_seconds"] = {k: round(v, 3) for k, v in timings.items()}


def _sweep_all(
    pack: RulePack,
    month: str,
    staged: Staged,
    partitions: int,
    workers: int,
    trace_dir: Path | None,
    keep: bool,
) -> list[tuple[int, int, int, dict[str, float]]]:
    """Sweep every partition (in a process pool when workers > 1), in partition order."""
    args = [(pack, month, staged.root, i, trace_dir, keep) for i in range(partitions)]
    if workers <= 1:
        return [_sweep_one(*a) for a in args]
    # spawn: Polars' thread pool does not survive fork; each worker imports benefits once
    ctx = multiprocessing.get_context("spawn")
    with _allocator(WORKER_ALLOCATOR), ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(_sweep_one, *a) for a in args]
        try:
            return [f.result() for f in futures]
        except BrokenProcessPool as exc:
            raise BenefitsError(
                "a worker process of the partitioned engine died (out of memory?): "
                "sweep with more --partitions or fewer --workers"
            ) from exc


@contextmanager
def _allocator(conf: str) -> Iterator[None]:
    """Start the processes created inside with `conf` added to Polars' allocator setting (see
    WORKER_ALLOCATOR; later options win); this process's environment is left as it was."""
    conf = os.environ.get(WORKER_ALLOCATOR_ENV, conf)
    before = os.environ.get(ALLOCATOR_ENV)
    if conf:
        os.environ[ALLOCATOR_ENV] = f"{before},{conf}" if before else conf
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ALLOCATOR_ENV, None)
        else:
            os.environ[ALLOCATOR_ENV] = before
