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

A task writes what a worker of the partitioned engine writes. In local mode it writes the
files straight into the driver's folders; on a cluster it returns them as bytes, kept on the
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
    trace_dir: str | None  # where the columnar trace parts go (None: no columnar traces)
    keep: bool  # the decision records for traces.jsonl
    root: str  # the driver's staging folder
    direct: bool  # the tasks write into the driver's folders (local mode)
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


def _task_dir(spec: TaskSpec) -> str | None:
    """Where a task keeps its temporary files: in local mode beside the driver's staging
    folder, removed with it even when a worker was killed before cleaning up; on a cluster the
    worker's temporary folder (the executor's, removed with its container)."""
    if not spec.direct:
        return None
    folder = Path(spec.root).parent / "tasks"
    folder.mkdir(exist_ok=True, mode=0o700)
    return str(folder)


def _parquet_bytes(frame: Any, compression: str = "zstd") -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression=compression)
    return buf.getvalue()


def _output_rows(spec: TaskSpec, index: int, tables: dict, quarantine: Any) -> pa.Table:
    """Sweep one partition and write what the partitioned engine's worker writes: its outputs
    (:meth:`benefits.partition.PartOutputs.write`; traces for traces.jsonl only if asked) and
    its columnar trace part (:func:`benefits.traces.write_trace_part`).

    With ``spec.direct`` (local mode: the tasks see the driver's folders) the files go straight
    into the staging folder and the trace folder, each renamed into place whole, and only the
    counts come back; otherwise every file comes back as a row (part, "out/<file>" or
    "trace-part/<file>", bytes). The row "meta" holds the counts (JSON)."""
    import tempfile
    import uuid

    import pyarrow as pa

    from benefits import traces as tracing
    from benefits.partition import sweep_partition

    _maybe_die(spec, index)
    want = spec.trace_dir is not None or spec.keep
    part = sweep_partition(spec.pack, spec.month, tables, quarantine, index=index, traces=want)
    blobs: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="benefits-part-out-", dir=_task_dir(spec)) as tmp:
        folder = Path(tmp) / "out"
        trace_file = None
        if spec.trace_dir is not None and part.traces is not None:
            trace_file = tracing.write_trace_part(part.traces, Path(tmp) / "traces", index)
        if not spec.keep:
            part.traces = None
        part.write(folder)
        if spec.direct:
            final = Path(spec.root) / f"out-{index:05d}"
            attempt = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
            shutil.move(str(folder), attempt)
            if final.exists():  # another attempt of this task finished first: same bytes
                shutil.rmtree(attempt)
            else:
                os.replace(attempt, final)
            if trace_file is not None and spec.trace_dir is not None:
                trace_dir = Path(spec.trace_dir)
                trace_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                moved = attempt.with_suffix(".trace")
                shutil.move(str(trace_file), moved)
                os.replace(moved, trace_dir / trace_file.name)
        else:
            for path in sorted(folder.iterdir()):
                blobs[f"out/{path.name}"] = path.read_bytes()
            if trace_file is not None:
                blobs[f"trace-part/{trace_file.name}"] = trace_file.read_bytes()
    meta = {
        "persons": part.persons,
        "trace_records": part.trace_records,
        "stage_seconds": part.stage_seconds,
    }
    blobs["meta"] = json.dumps(meta).encode()
    schema = pa.schema([("part", pa.int32()), ("name", pa.string()), ("content", pa.binary())])
    rows = {"part": [index] * len(blobs), "name": list(blobs), "content": list(blobs.values())}
    return pa.table(rows, schema=schema)


def _shuffle_task(spec: TaskSpec, root_files: Any) -> Callable[[tuple, pa.Table], pa.Table]:
    """applyInArrow's function: one partition's staged bucket files in, its outputs out.

    The files are laid out again in a private temporary staging folder (with the staging's
    own top-level files, broadcast) so that :meth:`benefits.staging.Staged.read_part` reads
    the partition exactly as the other engines do."""

    def sweep_group(key: tuple, files: pa.Table) -> pa.Table:
        import tempfile

        from benefits.staging import PART_DIR, Staged

        index = int(key[0].as_py())
        with tempfile.TemporaryDirectory(prefix="benefits-part-", dir=_task_dir(spec)) as tmp:
            root = Path(tmp)
            for name, content in root_files.value.items():
                (root / name).write_bytes(content)
            for table, path, content in zip(
                files.column("table").to_pylist(),
                files.column("path").to_pylist(),
                files.column("content").to_pylist(),
                strict=True,
            ):
                if table == QUARANTINE_DIR:
                    target = root / "quarantine.parquet"
                else:
                    target = root / PART_DIR.format(index) / table / path.rsplit("/", 1)[-1]
                    target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            tables, quarantine = Staged.load(root).read_part(index)
            return _output_rows(spec, index, tables, quarantine)

    return sweep_group


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
    """Each partition's routed quarantine rows as a bucket of its own (method "shuffle": a
    task sees only its partition's files, and a partition holding nothing but quarantine
    rows — whose identity alerts it raises — must still be swept)."""
    for (index,), rows in staged.quarantine.partition_by("__part", as_dict=True).items():
        folder = staged.part_dir(int(index)) / QUARANTINE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        rows.write_parquet(folder / "00000.parquet")


def _root_files(staged: Staged) -> dict[str, bytes]:
    """The staging's top-level files for every task (metadata, rows dropped as duplicates),
    the quarantine empty: each task gets its own rows as a bucket."""
    files = {
        p.name: p.read_bytes()
        for p in sorted(staged.root.iterdir())
        if p.is_file() and p.name != "quarantine.parquet"
    }
    buf = io.BytesIO()
    staged.quarantine.head(0).write_parquet(buf)
    files["quarantine.parquet"] = buf.getvalue()
    return files


# ---------------------------------------------------------------------------------------------
# the driver


def sweep_partitions(
    spark: SparkSession,
    pack: RulePack,
    month: str,
    staged: Staged,
    trace_dir: Path | None,
    keep: bool,
    method: str = "shuffle",
    staging: str | None = None,
    direct: bool | None = None,
) -> list[tuple[int, int, int, dict[str, float]]]:
    """Sweep every partition of `staged` in Spark tasks; write each partition's outputs into
    ``<staging>/out-NNNNN`` (as :meth:`benefits.partition.PartOutputs.write` does, traces for
    traces.jsonl only if `keep`) and its columnar trace part into `trace_dir` (if given), as
    the partitioned engine's workers do; return (index, persons, trace records, stage
    seconds) per partition, in partition order.

    `staging` (method "shuffle"): a folder URI the executors read, where the staged buckets
    are copied first (None: they read the driver's staging folder — local mode). `direct`
    (default: in local mode): the tasks write their files into the driver's folders
    themselves instead of sending them back through Spark."""
    if method not in METHODS:
        raise BenefitsError(f"unknown Spark method {method!r}: choose one of {METHODS}")
    if direct is None:
        direct = is_local(spark.sparkContext.master)
    from pyspark.sql import functions as F

    kill, _, every = os.environ.get(KILL_PARTITION_ENV, "").partition(":")
    spec = TaskSpec(
        pack,
        month,
        None if trace_dir is None else str(trace_dir),
        keep,
        str(staged.root),
        direct,
        int(kill) if kill else None,
        every == "every",
    )
    shared = None
    if method == "shuffle":
        _write_part_quarantine(staged)
        root = staged.root.as_uri()
        if staging is not None:
            root = f"{staging.rstrip('/')}/{staged.root.parent.name}"
            _upload(spark, staged, root)
        files = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.parquet")
            .load(root)
            .select(
                F.regexp_extract("path", _BUCKET_RE, 1).alias("p"),
                F.regexp_extract("path", _BUCKET_RE, 2).alias("table"),
                "path",
                "content",
            )
            .where(F.col("p") != "")
            .select(F.col("p").cast("int").alias("part"), "table", "path", "content")
        )
        shared = spark.sparkContext.broadcast(_root_files(staged))
        results = files.groupBy("part").applyInArrow(_shuffle_task(spec, shared), OUTPUT_SCHEMA)
    else:
        numbers = spark.sparkContext.parallelize(
            [(i,) for i in range(staged.partitions)], staged.partitions
        )
        results = spark.createDataFrame(numbers, "part int").mapInArrow(
            _files_task(spec), OUTPUT_SCHEMA
        )
    metas: dict[int, dict] = {}
    try:
        if direct:  # the tasks wrote their files where the driver reads them
            for row in results.where(F.col("name") == "meta").collect():
                metas[int(row["part"])] = json.loads(bytes(row["content"]))
        else:
            _fetch_outputs(results, staged, trace_dir, metas)
    finally:
        if shared is not None:
            shared.unpersist()
        if method == "shuffle" and staging is not None:
            _Hadoop(spark, root).fs.delete(_Hadoop(spark, root).path, True)
    return [
        (i, metas[i]["persons"], metas[i]["trace_records"], metas[i]["stage_seconds"])
        for i in sorted(metas)
    ]


def _fetch_outputs(
    results: Any, staged: Staged, trace_dir: Path | None, metas: dict[int, dict]
) -> None:
    """Sweep every partition in parallel first (outputs persisted on the executors' disks),
    then fetch them one Spark partition at a time (bounded driver memory) into the staging
    folder and the trace folder."""
    from pyspark.storagelevel import StorageLevel

    results = results.persist(StorageLevel.DISK_ONLY)
    try:
        results.count()
        for row in results.toLocalIterator(prefetchPartitions=True):
            index, name, content = int(row["part"]), row["name"], bytes(row["content"])
            kind, _, file = name.partition("/")
            if kind == "meta":
                metas[index] = json.loads(content)
            elif kind == "trace-part" and trace_dir is not None:
                trace_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                (trace_dir / file).write_bytes(content)
            elif kind == "out":
                folder = staged.root / f"out-{index:05d}"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / file).write_bytes(content)
    finally:
        results.unpersist()


def _upload(spark: SparkSession, staged: Staged, root: str) -> None:
    """Copy the staged partition buckets to the folder `root` (private, replaced if there)."""
    dst = _Hadoop(spark, root)
    dst.fs.delete(dst.path, True)
    dst.fs.mkdirs(dst.path)
    dst.private(dst.path)
    for entry in sorted(staged.root.glob("part-*")):
        dst.fs.copyFromLocalFile(False, True, dst.local(entry), dst.path)


def run_spark(
    data: Path | str,
    month: str,
    out: Path | str | None = None,
    rules: Path | None = None,
    write_traces: bool = True,
    progress: Progress = no_progress,
    pack: RulePack | None = None,
    partitions: int | None = None,
    master: str | None = None,
    method: str | None = None,
    spark: SparkSession | None = None,
    work_dir: Path | None = None,
    chunk_rows: int | None = None,
    staging: str | None = None,
    traces: str | None = None,
) -> SweepResult:
    """Run the sweep on Spark (same outputs as :func:`benefits.sweep.run_sweep`).

    `master` is a Spark master URL (None: spark-submit's, else local[*]); `spark` an existing
    session to use instead (it is left running; a session this function starts is stopped).
    `data` and `out` are local folders or URIs of any filesystem Spark reads (hdfs://…,
    s3a://…, file:///…). `staging` is a folder URI the executors can read, for the staged
    partitions (default: the driver's scratch folder in local mode; on a cluster the Spark
    setting ``spark.benefits.staging``, else ``.benefits-staging`` in the user's home folder
    of Spark's default filesystem). `method` is how tasks get their partitions (see the module
    doc; default: the Spark setting ``spark.benefits.method``, else ``shuffle``).
    """
    from benefits.engines import default_partitions
    from benefits.rulebook import load_pack

    pack = pack or load_pack(rules)
    if spark is None:
        progress(f"starting Spark ({master or 'spark-submit'})")
        session, own = spark_session(master)
    else:
        session, own = spark, False
    try:
        workers = int(session.sparkContext.defaultParallelism)
        local_data = None if as_uri(data) else Path(data)
        parts = partitions or default_partitions(local_data or Path("."), workers)
        session.conf.set("spark.sql.shuffle.partitions", str(parts))
        # one group per task: coalescing would sweep several partitions in one task
        session.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
        engine = {
            "name": "spark",
            "partitions": parts,
            "workers": workers,
            "master": session.sparkContext.master,
        }
        method = method or session.conf.get("spark.benefits.method", None) or "shuffle"
        if method not in METHODS:
            raise BenefitsError(f"spark.benefits.method must be one of {METHODS}, not {method!r}")
        if staging is None and not is_local(engine["master"]):
            staging = session.conf.get("spark.benefits.staging", None) or _home_staging(session)

        def sweep_all(pack, month, staged, _partitions, _workers, trace_dir, keep):
            progress(f"sweeping {parts} partitions in Spark tasks ({engine['master']})")
            return sweep_partitions(session, pack, month, staged, trace_dir, keep, method, staging)

        def run(data: Path, out: Path | None) -> SweepResult:
            from benefits.engines.partitioned import run_partitioned
            from benefits.staging import SHIPPED_BUCKETS

            return run_partitioned(
                data, month, out=out, pack=pack, write_traces=write_traces, traces=traces,
                progress=progress,
                partitions=parts, workers=workers, work_dir=work_dir, chunk_rows=chunk_rows,
                sweep_all=sweep_all, engine=engine, buckets=SHIPPED_BUCKETS,
            )  # fmt: skip

        try:
            if not as_uri(data) and (out is None or not as_uri(out)):
                return run(Path(data), None if out is None else Path(out))
            return _run_on_uris(session, run, data, out, work_dir, progress)
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
    """The first meaningful line of a Spark or Hadoop error (never the JVM stack)."""
    for line in str(exc).splitlines():
        line = line.strip().lstrip(": ").strip()
        if line and not line.startswith(
            ("at ", "Traceback", "File ", "An error occurred while calling")
        ):
            return line[:300]
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------
# folders on any filesystem Spark reads (through Hadoop's FileSystem API in the driver's JVM)

_URI_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):/+")


def as_uri(location: Path | str | None) -> str | None:
    """The URI a --data/--out location names (hdfs://namenode/x, s3a://bucket/x, file:///x),
    or None for a plain local path. A Path folds the "//" after the scheme; it is restored."""
    if location is None:
        return None
    text = str(location)
    found = _URI_RE.match(text)
    if not found:
        return None
    scheme, rest = found.group(1).lower(), text[found.end() :]
    return f"file:///{rest}" if scheme == "file" else f"{scheme}://{rest}"


class _Hadoop:
    """Hadoop FileSystem calls for one URI, through the session's JVM."""

    def __init__(self, spark: SparkSession, uri: str) -> None:
        self.jvm = spark._jvm
        self.conf = spark._jsc.hadoopConfiguration()
        self.path = self.jvm.org.apache.hadoop.fs.Path(uri)
        self.fs = self.path.getFileSystem(self.conf)

    def sibling(self, name: str):
        return self.jvm.org.apache.hadoop.fs.Path(self.path.getParent(), name)

    def local(self, folder: Path):
        return self.jvm.org.apache.hadoop.fs.Path(folder.absolute().as_uri())

    def names(self, path=None) -> list[str]:
        return [st.getPath().getName() for st in self.fs.listStatus(path or self.path)]

    def private(self, path) -> None:
        perm = self.jvm.org.apache.hadoop.fs.permission.FsPermission("700")
        self.fs.setPermission(path, perm)


def fetch_folder(spark: SparkSession, uri: str, local: Path) -> Path:
    """Copy the files of the folder `uri` (not its subfolders) into the local folder."""
    src = _Hadoop(spark, uri)
    if not src.fs.exists(src.path) or not src.fs.getFileStatus(src.path).isDirectory():
        raise BenefitsError(f"{uri}: no such folder")
    local.mkdir(parents=True, exist_ok=True)
    for st in src.fs.listStatus(src.path):
        if st.isFile():
            target = src.local(local / st.getPath().getName())
            src.fs.copyToLocalFile(False, st.getPath(), target, True)
    return local


def publish_folder(spark: SparkSession, local: Path, uri: str) -> None:
    """Put the finished local folder at `uri` atomically: copied into a hidden sibling work
    folder, then renamed into place (an earlier finished folder is moved aside, then
    deleted); a folder holding files a sweep does not write is refused, as locally."""
    from benefits.atomic import OLD_PREFIX, SWEEP_FILES, WORK_PREFIX, OutputFolderError

    dst = _Hadoop(spark, uri)
    name = dst.path.getName()
    if dst.fs.exists(dst.path):
        if not dst.fs.getFileStatus(dst.path).isDirectory():
            raise OutputFolderError(f"{uri} exists and is not a folder")
        foreign = sorted(n for n in dst.names() if n not in SWEEP_FILES)
        if foreign:
            raise OutputFolderError(
                f"{uri} holds files a sweep does not write ({foreign[0]} …): "
                "choose a new or empty output folder"
            )
    parent = dst.path.getParent()
    dst.fs.mkdirs(parent)
    prefixes = (WORK_PREFIX.format(name=name), OLD_PREFIX.format(name=name))
    for stale in dst.names(parent):  # a killed run's work folder: a rerun starts clean
        if stale.startswith(prefixes):
            dst.fs.delete(dst.sibling(stale), True)
    work = dst.sibling(f"{WORK_PREFIX.format(name=name)}{os.getpid()}")
    old = dst.sibling(f"{OLD_PREFIX.format(name=name)}{os.getpid()}")
    try:
        dst.fs.mkdirs(work)
        dst.private(work)
        for entry in sorted(local.iterdir()):
            dst.fs.copyFromLocalFile(False, True, dst.local(entry), work)
        if dst.fs.exists(dst.path) and not dst.fs.rename(dst.path, old):
            raise OutputFolderError(f"{uri}: the earlier outputs cannot be moved aside")
        if not dst.fs.rename(work, dst.path):
            raise OutputFolderError(f"{uri}: the outputs cannot be renamed into place")
    except BaseException:
        dst.fs.delete(work, True)
        raise
    dst.fs.delete(old, True)


def _home_staging(spark: SparkSession) -> str:
    """``.benefits-staging`` in the user's home folder of Spark's default filesystem."""
    jvm = spark._jvm
    fs = jvm.org.apache.hadoop.fs.FileSystem.get(spark._jsc.hadoopConfiguration())
    return str(jvm.org.apache.hadoop.fs.Path(fs.getHomeDirectory(), ".benefits-staging"))


def _run_on_uris(
    spark: SparkSession,
    run: Callable[[Path, Path | None], SweepResult],
    data: Path | str,
    out: Path | str | None,
    work_dir: Path | None,
    progress: Progress,
) -> SweepResult:
    """A sweep whose input or output folder is a URI: the input files are copied to the
    driver, the outputs written there and then published (atomically) at `out`; the
    summary names the URIs."""
    import tempfile

    from benefits.atomic import atomic_folder
    from benefits.sweep import write_summary

    data_uri, out_uri = as_uri(data), as_uri(out)
    scratch = Path(tempfile.mkdtemp(prefix="benefits-spark-", dir=work_dir))
    try:
        local_data = Path(data)
        if data_uri:
            progress(f"copying the delivery from {data_uri}")
            local_data = fetch_folder(spark, data_uri, scratch / "data")
        local_out = None if out is None else scratch / "out"
        result = run(local_data, local_out)
        result.summary["data"] = data_uri or str(Path(data).resolve())
        if out is None or local_out is None:
            return result
        result.summary["out"] = out_uri or str(Path(out).resolve())
        write_summary(result.summary, local_out)
        if out_uri:
            progress(f"publishing the outputs at {out_uri}")
            publish_folder(spark, local_out, out_uri)
        else:
            with atomic_folder(Path(out)) as work:
                for entry in local_out.iterdir():
                    shutil.move(str(entry), work / entry.name)
        if result.traces_path is not None:
            result.traces_path = None if out_uri else Path(out) / result.traces_path.name
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the entry point spark-submit runs


def main(argv: list[str] | None = None) -> None:
    """``benefits sweep --engine spark`` with the given options: the program spark-submit
    runs (``python -m benefits.engines.spark --data … --month … --out …``, or
    deploy/spark/sweep.py). Without ``--master`` the master is spark-submit's."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--engine" or a.startswith("--engine=") for a in args):
        sys.stderr.write("error: the Spark entry point always runs --engine spark\n")
        raise SystemExit(2)
    sys.argv = ["benefits", "sweep", *args]  # the CLI imports only what a sweep needs
    from benefits.cli import app

    app(["sweep", "--engine", "spark", *args], prog_name="benefits")


if __name__ == "__main__":  # pragma: no cover
    main()
