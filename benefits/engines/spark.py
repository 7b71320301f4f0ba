"""The Spark engine: the partitioned sweep with the partition work inside Apache Spark tasks.

The driver stages the delivery into household partitions (:mod:`benefits.staging`, bounded
memory), Spark sweeps the partitions — each task runs :func:`benefits.partition.sweep_partition`
with Polars on one partition — and the driver combines the partitions' outputs into the same
files, bytes and summary as the other engines (:mod:`benefits.engines.partitioned`).

Two ways to hand partitions to the tasks (``method``):

- ``shuffle`` (default): Spark reads the staged Parquet buckets itself (``binaryFile``, any
  filesystem Spark reads), groups them by partition and runs the sweep in
  ``groupBy("part").applyInArrow``; the outputs come back to the driver through Spark;
- ``files``: one task per partition (``mapInArrow`` over the partition numbers) reads its
  buckets from the staging folder with :meth:`benefits.staging.Staged.read_part`, so driver
  and executors must share that folder (local mode, or a shared mount on a cluster).

Either way a task returns its partition's outputs as Parquet bytes; they are kept on the
executors' disks until every partition is done, then fetched by the driver one at a time.

Spark needs Java 17 or later and ``pip install 'benefits[spark]'``; without them the sweep
stops with a one-line error. ``python -m benefits.engines.spark`` is the entry point
``spark-submit`` runs on a cluster (see docs/spark.md).

Example:
    >>> result = run_spark(Path("datasets/sample"), "2025-01", out=None,
    ...                    master="local[2]", partitions=4)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benefits.errors import BenefitsError
from benefits.progress import Progress, no_progress

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from benefits.rulebook import RulePack
    from benefits.staging import Staged
    from benefits.sweep import SweepResult

METHODS = ("shuffle", "files")
DEFAULT_MASTER = "local[*]"
# a hook for the fault-tolerance tests: "N" kills (os._exit) the Python worker sweeping
# partition N on the task's first attempt, so Spark must retry it; "N:every" on every attempt,
# so the sweep fails
KILL_PARTITION_ENV = "BENEFITS_TEST_KILL_SPARK_PARTITION"
LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
OUTPUT_SCHEMA = "part int, name string, content binary"
OUTPUT_NAMES = ("entitlements", "alerts", "traces")
_BUCKET_RE = r"/part-(\d+)/([^/]+)/[^/]+\.parquet$"


class SparkUnavailable(BenefitsError):
    """Spark cannot run here: Java or pyspark is missing (the message says which)."""


# ---------------------------------------------------------------------------------------------
# the session


def java_major(java: str) -> int:
    """The major version of the `java` executable (17 for "17.0.15"); 0 if unknown."""
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return 0
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return 0
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def check_runtime() -> None:
    """Raise :class:`SparkUnavailable` with a one-line reason when pyspark or Java is missing."""
    try:
        import pyarrow  # noqa: F401
        import pyspark
    except ImportError as exc:
        raise SparkUnavailable(
            f"the spark engine needs pyspark 4 ({exc.name} is not installed): "
            "pip install 'benefits[spark]'"
        ) from None
    if not pyspark.__version__.startswith("4."):
        raise SparkUnavailable(
            f"the spark engine needs pyspark 4, found {pyspark.__version__}: "
            "pip install 'benefits[spark]'"
        )
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkUnavailable(
            "the spark engine needs Java 17 or later: install it or set JAVA_HOME"
        )
    major = java_major(java)
    if major < 17:
        raise SparkUnavailable(
            f"the spark engine needs Java 17 or later, {java} is Java {major or 'unknown'}: "
            "install Java 17 or set JAVA_HOME"
        )


def is_local(master: str) -> bool:
    """True for Spark's local masters (local, local[2], local[2,3], local[*])."""
    return master == "local" or master.startswith("local[")


def spark_session(
    master: str | None, app_name: str = "benefits sweep"
) -> tuple[SparkSession, bool]:
    """A SparkSession for `master` (None: the one spark-submit configured, else local[*]),
    quiet (warnings and errors only, no progress bar) and with Python workers running this
    interpreter in local mode; and whether it was started here (False: it was running)."""
    check_runtime()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if master not in (None, running):
            raise BenefitsError(
                f"a Spark session for {running} is already running in this process: "
                f"cannot start one for {master}"
            )
        return active, False
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = DEFAULT_MASTER  # not under spark-submit: run on this machine
    if master is not None and is_local(master):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    log = f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
    settings = {
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": log,
        "spark.executor.extraJavaOptions": log,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.python.worker.faulthandler.enabled": "true",
    }
    if master is not None and is_local(master):
        settings["spark.ui.enabled"] = "false"
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: say why on one line
        raise SparkUnavailable(f"Spark did not start ({master or 'spark-submit'}): {exc}") from None
    spark.sparkContext.setLogLevel("WARN")
    return spark, True


# ---------------------------------------------------------------------------------------------
# the work of one partition inside a Spark task


@dataclass(frozen=True)
class TaskSpec:
    """What every task needs, shipped with the task (the rule pack travels pickled)."""

    pack: RulePack
    month: str
    traces: bool
    root: str  # the staging folder (method "files": tasks read and write it)
    kill_partition: int | None  # the fault-tolerance hook (KILL_PARTITION_ENV)
    kill_every_attempt: bool = False


def _maybe_die(spec: TaskSpec, index: int) -> None:
    """The fault hook: the chosen partition's task kills its worker (first attempt only, or
    every attempt)."""
    if spec.kill_partition != index:
        return
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if spec.kill_every_attempt or (ctx is not None and ctx.attemptNumber() == 0):
        os._exit(17)


def _parquet_bytes(frame: Any, compression: str = "zstd") -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression=compression)
    return buf.getvalue()


def _output_rows(spec: TaskSpec, index: int, tables: dict, quarantine: Any) -> pa.Table:
    """Sweep one partition; its outputs as rows (part, name, Parquet or JSON bytes)."""
    import pyarrow as pa

    from benefits.partition import sweep_partition

    _maybe_die(spec, index)
    part = sweep_partition(
        spec.pack, spec.month, tables, quarantine, index=index, traces=spec.traces
    )
    blobs = {
        "entitlements": _parquet_bytes(part.entitlements),
        "alerts": _parquet_bytes(part.alerts),
    }
    if part.traces is not None:
        blobs["traces"] = _parquet_bytes(part.traces, "lz4")
    meta = {
        "persons": part.persons,
        "trace_records": part.trace_records,
        "stage_seconds": part.stage_seconds,
    }
    blobs["meta"] = json.dumps(meta).encode()
    schema = pa.schema([("part", pa.int32()), ("name", pa.string()), ("content", pa.binary())])
    rows = {"part": [index] * len(blobs), "name": list(blobs), "content": list(blobs.values())}
    return pa.table(rows, schema=schema)


def _shuffle_task(spec: TaskSpec) -> Callable[[tuple, pa.Table], pa.Table]:
    """applyInArrow's function: one partition's staged bucket files in, its outputs out."""

    def sweep_group(key: tuple, files: pa.Table) -> pa.Table:
        import polars as pl

        from benefits.ingest import QUARANTINE_SCHEMA

        index = int(key[0].as_py())
        frames: dict[str, list[tuple[str, Any]]] = {}
        for table, path, content in zip(
            files.column("table").to_pylist(),
            files.column("path").to_pylist(),
            files.column("content").to_pylist(),
            strict=True,
        ):
            frames.setdefault(table, []).append((path, pl.read_parquet(io.BytesIO(content))))
        chunks = frames.pop(QUARANTINE_DIR, [])
        quarantine = _concat(chunks) if chunks else pl.DataFrame(schema=QUARANTINE_SCHEMA)
        tables = {name: _concat(chunks).sort("_row") for name, chunks in frames.items()}
        return _output_rows(spec, index, tables, quarantine)

    return sweep_group


def _concat(chunks: list[tuple[str, Any]]) -> Any:
    import polars as pl

    return pl.concat([frame for _, frame in sorted(chunks, key=lambda c: c[0])])


def _files_task(spec: TaskSpec) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow's function: sweep the partitions numbered in the input, reading and writing
    the staging folder."""

    def sweep_parts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from benefits.staging import Staged

        staged = Staged.load(Path(spec.root))
        for batch in batches:
            for index in batch.column(0).to_pylist():
                tables, quarantine = staged.read_part(int(index))
                yield from _output_rows(spec, int(index), tables, quarantine).to_batches()

    return sweep_parts


QUARANTINE_DIR = "routed-quarantine"  # no leading "_" or ".": Spark skips those


def _write_part_quarantine(staged: Staged) -> None:
    """Each partition's routed quarantine rows as a bucket of its own (method "shuffle": the
    tasks see only their partition's files)."""
    for (index,), rows in staged.quarantine.partition_by("__part", as_dict=True).items():
        folder = staged.part_dir(int(index)) / QUARANTINE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        rows.drop("__part").write_parquet(folder / "00000.parquet")


# ---------------------------------------------------------------------------------------------
# the driver


def sweep_partitions(
    spark: SparkSession,
    pack: RulePack,
    month: str,
    staged: Staged,
    traces: bool,
    method: str = "shuffle",
) -> list[tuple[int, int, int, dict[str, float]]]:
    """Sweep every partition of `staged` in Spark tasks; write each partition's outputs into
    ``<staging>/out-NNNNN`` (as :meth:`benefits.partition.PartOutputs.write` does) and return
    (index, persons, trace records, stage seconds) per partition, in partition order."""
    if method not in METHODS:
        raise BenefitsError(f"unknown Spark method {method!r}: choose one of {METHODS}")
    from pyspark.sql import functions as F
    from pyspark.storagelevel import StorageLevel

    kill, _, every = os.environ.get(KILL_PARTITION_ENV, "").partition(":")
    spec = TaskSpec(
        pack, month, traces, str(staged.root), int(kill) if kill else None, every == "every"
    )
    if method == "shuffle":
        _write_part_quarantine(staged)
        files = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.parquet")
            .load(staged.root.as_uri())
            .select(
                F.regexp_extract("path", _BUCKET_RE, 1).alias("p"),
                F.regexp_extract("path", _BUCKET_RE, 2).alias("table"),
                "path",
                "content",
            )
            .where(F.col("p") != "")
            .select(F.col("p").cast("int").alias("part"), "table", "path", "content")
        )
        results = files.groupBy("part").applyInArrow(_shuffle_task(spec), OUTPUT_SCHEMA)
    else:
        numbers = spark.sparkContext.parallelize(
            [(i,) for i in range(staged.partitions)], staged.partitions
        )
        results = spark.createDataFrame(numbers, "part int").mapInArrow(
            _files_task(spec), OUTPUT_SCHEMA
        )
    # every partition is swept in parallel first (persisted on the executors' disks), then the
    # driver fetches the outputs one Spark partition at a time: bounded driver memory
    results = results.persist(StorageLevel.DISK_ONLY)
    try:
        results.count()
        counts: dict[int, tuple[int, int, int, dict[str, float]]] = {}
        for row in results.toLocalIterator():
            index, name, content = int(row["part"]), row["name"], bytes(row["content"])
            folder = staged.root / f"out-{index:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            if name == "meta":
                meta = json.loads(content)
                counts[index] = (
                    index,
                    meta["persons"],
                    meta["trace_records"],
                    meta["stage_seconds"],
                )
            else:
                (folder / f"{name}.parquet").write_bytes(content)
    finally:
        results.unpersist()
    return [counts[i] for i in sorted(counts)]


def run_spark(
    data: Path,
    month: str,
    out: Path | None = None,
    rules: Path | None = None,
    write_traces: bool = True,
    progress: Progress = no_progress,
    pack: RulePack | None = None,
    partitions: int | None = None,
    master: str | None = None,
    method: str = "shuffle",
    spark: SparkSession | None = None,
    work_dir: Path | None = None,
    chunk_rows: int | None = None,
) -> SweepResult:
    """Run the sweep on Spark (same outputs as :func:`benefits.sweep.run_sweep`).

    `master` is a Spark master URL (None: spark-submit's, else local[*]); `spark` an existing
    session to use instead (it is left running; a session this function starts is stopped).
    """
    from benefits.engines import default_partitions
    from benefits.engines.partitioned import run_partitioned
    from benefits.rulebook import load_pack

    pack = pack or load_pack(rules)
    if spark is None:
        progress(f"starting Spark ({master or 'spark-submit'})")
        session, own = spark_session(master)
    else:
        session, own = spark, False
    try:
        workers = int(session.sparkContext.defaultParallelism)
        parts = partitions or default_partitions(Path(data), workers)
        session.conf.set("spark.sql.shuffle.partitions", str(parts))
        # one group per task: coalescing would sweep several partitions in one task
        session.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
        engine = {
            "name": "spark",
            "partitions": parts,
            "workers": workers,
            "master": session.sparkContext.master,
        }

        def sweep_all(pack, month, staged, _partitions, _workers, traces):
            progress(f"sweeping {parts} partitions in Spark tasks ({engine['master']})")
            return sweep_partitions(session, pack, month, staged, traces, method)

        try:
            return run_partitioned(
                data, month, out=out, pack=pack, write_traces=write_traces, progress=progress,
                partitions=parts, workers=workers, work_dir=work_dir, chunk_rows=chunk_rows,
                sweep_all=sweep_all, engine=engine,
            )  # fmt: skip
        except BenefitsError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("pyspark", "py4j")):
                raise SparkSweepFailed(f"the Spark sweep failed: {_first_line(exc)}") from exc
            raise
    finally:
        if own:
            session.stop()


class SparkSweepFailed(BenefitsError):
    """A Spark job of the sweep failed (after Spark's retries); no output was written."""


def _first_line(exc: BaseException) -> str:
    """The first meaningful line of a Spark error (never the JVM stack)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "Traceback", "File ")):
            return line[:300]
    return type(exc).__name__
