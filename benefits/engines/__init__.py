"""Sweep engines: the same rule pack, the same outputs, three ways to run it.

- ``single``: one process over the whole delivery (:func:`benefits.sweep.run_sweep`);
- ``partitioned``: the delivery staged into household partitions swept by a process pool, in
  memory bounded by the partition size (:mod:`benefits.engines.partitioned`);
- ``spark``: the partitions swept inside Apache Spark tasks (:mod:`benefits.engines.spark`).

``auto`` picks ``partitioned`` when the persons file holds more than
:data:`AUTO_PARTITIONED_PERSONS` people (a Parquet file's row count; a CSV file's size over
about 95 bytes a row), else ``single``; Spark runs only when asked for.

Example:
    >>> choose_engine("auto", Path("datasets/sample"))
    'single'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from benefits.errors import BenefitsError
from benefits.progress import Progress, no_progress

if TYPE_CHECKING:
    from benefits.rulebook import RulePack
    from benefits.sweep import SweepResult

ENGINES = ("auto", "single", "partitioned", "spark")
# below ~500,000 people the single engine is faster (no staging pass) and its memory (about
# 1 GiB per 300,000 people with traces) fits any server
AUTO_PARTITIONED_PERSONS = 500_000
# people per partition the partitioned engine aims at: a worker's peak is ~0.3 GiB, and many
# partitions keep both cores busy to the end (each partition's buckets are one file per chunk)
PERSONS_PER_PARTITION = 150_000
CSV_PERSON_BYTES = 95  # persons.csv bytes per person, roughly


def persons_file(data: Path) -> Path | None:
    """The delivery's persons file (CSV or Parquet), if any."""
    for suffix in ("csv", "parquet"):
        path = Path(data) / f"persons.{suffix}"
        if path.is_file():
            return path
    return None


def estimated_persons(data: Path) -> int:
    """People in the delivery, estimated from the persons file's size (0 without one)."""
    path = persons_file(data)
    if path is None:
        return 0
    if path.suffix == ".parquet":
        import polars as pl

        try:  # the row count is in the file's metadata
            return int(pl.scan_parquet(path).select(pl.len()).collect().item())
        except (pl.exceptions.PolarsError, OSError):  # a broken file is reported by ingest
            return 0
    return path.stat().st_size // CSV_PERSON_BYTES


def choose_engine(engine: str, data: Path) -> str:
    """The engine `auto` stands for on this delivery (others are returned as given)."""
    if engine not in ENGINES:
        raise BenefitsError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    return "partitioned" if estimated_persons(data) > AUTO_PARTITIONED_PERSONS else "single"


def default_partitions(data: Path, workers: int) -> int:
    """Partitions for a delivery: about PERSONS_PER_PARTITION people each, at least 2 per
    worker so that a slow partition does not leave a core idle."""
    n = -(-estimated_persons(data) // PERSONS_PER_PARTITION)
    return max(n, 2 * workers, 1)


def default_workers() -> int:
    """Worker processes of the partitioned engine: the machine's cores (as this process may
    use them)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_engine(
    engine: str,
    data: Path,
    month: str,
    out: Path | None,
    *,
    pack: RulePack,
    traces: str = "parquet",
    progress: Progress = no_progress,
    partitions: int | None = None,
    workers: int | None = None,
    master: str | None = None,
    chunk_rows: int | None = None,
) -> SweepResult:
    """Run the sweep with `engine` (``auto`` resolved by :func:`choose_engine`)."""
    name = choose_engine(engine, data)
    if name == "single":
        from benefits.sweep import run_sweep

        return run_sweep(data, month, out=out, pack=pack, traces=traces, progress=progress)
    if name == "partitioned":
        from benefits.engines.partitioned import run_partitioned

        return run_partitioned(
            data, month, out=out, pack=pack, traces=traces, progress=progress,
            partitions=partitions, workers=workers, chunk_rows=chunk_rows,
        )  # fmt: skip
    try:
        from benefits.engines.spark import run_spark
    except ImportError as exc:
        raise BenefitsError(
            "the spark engine needs pyspark: pip install 'benefits[spark]'"
        ) from exc
    return run_spark(
        data, month, out=out, pack=pack, traces=traces, progress=progress,
        partitions=partitions, master=master, chunk_rows=chunk_rows,
    )  # fmt: skip
