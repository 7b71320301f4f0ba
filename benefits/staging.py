"""Staging: a delivery read in bounded chunks, validated, and split into household partitions.

Every table is read in chunks of rows (Parquet row groups, CSV batches); each chunk runs the
row-local checks of :func:`benefits.ingest.validate` with the file's own 1-based row numbers.
The checks across rows — duplicate keys and the persons ``duplicate_id`` identity issue — run
over the whole table, but on the key columns only. Accepted rows go to per-partition Parquet
buckets ``part-NNNNN/<table>/<chunk>.parquet``:

- persons and household tables: partition = stable hash(household_no) mod P, so every member
  of a household, and its household rows, are in one partition;
- tables hanging off a person's ID: the row goes to its person's partition AND to the partition
  of every child naming that ID as father or mother (any person-ID column a fact selection
  joins on) — parents who live in another household or are not in the registry at all decide
  policies 11 and 12;
- the quarantine is kept whole (row numbers the file's own, for the summary and
  quarantine.csv) and its rows are also routed, by ID, to one partition each, where the
  alerts derived from them (identity conflicts) are raised exactly once.

Example:
    >>> staged = stage(Path("datasets/sample"), load_pack(), 7, Path(tmp))  # doctest: +SKIP
    >>> tables, quarantine = staged.read_part(3)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benefits.chunks import FileInfo, WholeFile, csv_chunks, parquet_chunks
from benefits.errors import IngestError
from benefits.idcard import check_character, id_key
from benefits.ingest import (
    QUARANTINE_SCHEMA,
    LoadedTable,
    _typed,
    empty_frame,
    find_file,
    load_table,
    quarantine_rows,
    reason_text,
    row_checks,
    trimmed,
)
from benefits.rulebook import RulePack
from benefits.schema import Table
from benefits.sweep import DeliveryInfo

PART_DIR = "part-{:05d}"
HASH_SEED = 1_302
DEFAULT_CHUNK_ROWS = 500_000
WHOLE_FILE_ROWS = 100_000  # a file of fewer rows (estimated from its size) is read whole
# a file larger than chunk_rows rows of about these bytes is read in chunks, a smaller one whole
CSV_ROW_BYTES = 100
PARQUET_ROW_BYTES = 40  # any fixed seed: the partition of a household never changes a result
# the buckets' Parquet compression: none when they are read from the local disk they were
# written to (compressing cost more CPU, writing here and reading in the workers, than the bytes
# saved); lz4 when they travel (the Spark engine ships them to its executors)
LOCAL_BUCKETS = "uncompressed"
SHIPPED_BUCKETS = "lz4"


def part_of(col: pl.Expr, partitions: int) -> pl.Expr:
    """The partition of a household number (stable for a Polars version; a different
    assignment only moves households between partitions, never changes an output)."""
    return (col.hash(seed=HASH_SEED) % partitions).cast(pl.UInt32)


@dataclass
class Staged:
    """A staged delivery: partition buckets on disk, the global quarantine and counts."""

    root: Path
    partitions: int
    delivery: DeliveryInfo
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA + `__part`, in the single engine's order
    table_names: tuple[str, ...]
    # rows staged but dropped as duplicate keys (found only when the whole table was read)
    dropped: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"_row": pl.Int64, "table": pl.String})
    )

    def part_dir(self, index: int) -> Path:
        return self.root / PART_DIR.format(index)

    def read_part(self, index: int) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
        """One partition's tables (absent = no rows) and the quarantine rows routed to it."""
        folder = self.part_dir(index)
        tables = {}
        for name in self.table_names:
            files = sorted((folder / name).glob("*.parquet"))
            if files:  # chunks in file order; rows sorted by their row number
                frame = pl.read_parquet(files).sort("_row")  # the files read in parallel
                drop = self.dropped.filter(pl.col("table") == name)["_row"]
                if drop.len():
                    frame = frame.filter(~pl.col("_row").is_in(drop.implode()))
                tables[name] = frame
        own = folder / "quarantine.parquet"  # written by save(): no need for the whole
        if own.exists():
            return tables, pl.read_parquet(own)
        q = self.quarantine.filter(pl.col("__part") == index).drop("__part")
        return tables, q

    def save(self) -> None:
        """Write the staging's metadata beside the buckets (for engines reading it back)."""
        self.quarantine.write_parquet(self.root / "quarantine.parquet")
        for (part,), rows in self.quarantine.partition_by("__part", as_dict=True).items():
            folder = self.part_dir(int(part))
            folder.mkdir(parents=True, exist_ok=True)
            rows.drop("__part").write_parquet(folder / "quarantine.parquet")
        self.dropped.write_parquet(self.root / "dropped.parquet")
        meta = {
            "partitions": self.partitions,
            "tables": list(self.table_names),
            "delivery": {
                "folder": str(self.delivery.folder),
                "tables": self.delivery.tables,
                "inputs": self.delivery.inputs,
                "quarantined": self.delivery.quarantined,
            },
        }
        (self.root / "staged.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, root: Path, quarantine: bool = True) -> Staged:
        """A staging written by :meth:`save` (e.g. by the driver, read in a worker; a worker
        reading partitions needs no whole quarantine: `quarantine=False`)."""
        meta = json.loads((root / "staged.json").read_text(encoding="utf-8"))
        d = meta["delivery"]
        delivery = DeliveryInfo(Path(d["folder"]), d["tables"], d["inputs"], d["quarantined"])
        return cls(
            root,
            meta["partitions"],
            delivery,
            pl.read_parquet(root / "quarantine.parquet")
            if quarantine
            else pl.DataFrame(schema={**QUARANTINE_SCHEMA, "__part": pl.UInt32}),
            tuple(meta["tables"]),
            pl.read_parquet(root / "dropped.parquet"),
        )


def person_refs(pack: RulePack) -> dict[str, tuple[str, ...]]:
    """Per ID-indexed table: the persons columns its rows are joined on (id_no, father_id_no…)."""
    cat = pack.catalogue
    persons = cat.tables["persons"]
    refs: dict[str, list[str]] = {}
    for name, sel in cat.selections.items():
        if name == cat.person:
            continue
        table = cat.tables[sel.table]
        if table.by_name[str(table.index)].kind != "id":
            continue
        if sel.of not in persons.by_name or persons.by_name[sel.of].kind not in ("id", "ref_id"):
            raise ValueError(
                f"facts.yaml: selection '{name}' joins {sel.table} on '{sel.of}', which is not "
                "an ID column of persons: the partitioned engines cannot route its rows"
            )
        refs.setdefault(sel.table, [])
        if sel.of not in refs[sel.table]:
            refs[sel.table].append(sel.of)
    return {t: tuple(cols) for t, cols in refs.items()}


class Router:
    """ID key → partitions (one or several), by binary search in a sorted column: a chunk's
    lookup costs about its own size (its keys sorted first), not a hash join over the whole
    population — so staging stays linear in the population."""

    def __init__(self, pairs: pl.DataFrame) -> None:
        k, p = pl.col("__k"), pl.col("__part")
        pairs = pairs.sort("__k", "__part").filter(
            k.shift().is_null() | (k != k.shift()) | (p != p.shift())
        )
        self.keys = pairs["__k"]
        self.parts = pairs["__part"]

    def route(self, frame: pl.DataFrame, key: pl.Expr) -> pl.DataFrame:
        """`frame`'s rows with `__part`, a row once per partition of its key (none if none);
        the rows come out ordered by key (buckets are sorted by row number when read)."""
        frame = frame.with_columns(key.fill_null(-1).alias("__k")).sort("__k")
        k = frame["__k"]
        lo = self.keys.search_sorted(k, side="left")
        hi = self.keys.search_sorted(k, side="right")
        positions = (
            pl.DataFrame({"__row": pl.int_range(frame.height, eager=True), "lo": lo, "hi": hi})
            .filter(pl.col("hi") > pl.col("lo"))
            .select("__row", pl.int_ranges("lo", "hi").alias("__pos"))
            .explode("__pos")
        )
        return (
            frame[positions["__row"]]
            .with_columns(self.parts.gather(positions["__pos"]).alias("__part"))
            .drop("__k")
        )


def route_table(
    frame: pl.DataFrame,
    table: Table,
    routes: dict[str, list[Router]],
    partitions: int,
    strays: bool = False,
) -> pl.DataFrame:
    """The table's rows with their partition `__part` (a row may go to several). A row of an
    ID no person has (as own or parent's ID) decides nothing and goes nowhere — with
    `strays`, to the extra partition `partitions` (the event store keeps every row)."""
    index = str(table.index) if table.index else "household_no"
    if table.name == "persons" or table.by_name[index].kind != "id":
        return frame.with_columns(part_of(pl.col(index), partitions).alias("__part"))
    routers = routes.get(table.name)
    if not routers:  # no fact reads the table: its rows only need to exist somewhere
        return frame.with_columns(pl.lit(0, pl.UInt32).alias("__part"))
    routed = [r.route(frame, id_key(pl.col(index))) for r in routers]
    if strays:
        rest = frame.join(pl.concat(routed).select("_row"), on="_row", how="anti")
        routed.append(rest.with_columns(pl.lit(partitions, pl.UInt32).alias("__part")))
    if len(routed) == 1:
        return routed[0]
    # a parent living with the child reaches the same partition twice: once is enough
    return pl.concat(routed).unique(subset=["_row", "__part"], maintain_order=True)


def route_quarantine(quarantine: pl.DataFrame, partitions: int) -> pl.DataFrame:
    """Each quarantine row's partition, by its ID as given (all rows of one ID together)."""
    return quarantine.with_columns(
        part_of(pl.col("id_no").fill_null(""), partitions).alias("__part")
    )


def write_buckets(
    root: Path,
    name: str,
    frame: pl.DataFrame,
    partitions: int,
    chunk: int | None = None,
    compression: str = LOCAL_BUCKETS,
) -> None:
    """Write a routed frame's rows into their partitions' buckets (one file per chunk)."""
    for (part,), rows in frame.partition_by("__part", as_dict=True).items():
        folder = root / PART_DIR.format(int(part)) / name
        folder.mkdir(parents=True, exist_ok=True)
        rows.drop("__part").write_parquet(
            folder / f"{chunk or 0:05d}.parquet", statistics=False, compression=compression
        )


@dataclass
class _TableStage:
    """One staged table: its summary entry, quarantine, rows dropped as duplicates and (for
    persons) the ID key → partition pairs of every persons ID column."""

    summary: dict
    quarantine: pl.DataFrame
    dropped: pl.Series
    id_parts: dict[str, list[pl.DataFrame]]


class _Stager:
    """Stages the tables of one delivery (see module doc)."""

    def __init__(self, folder: Path, pack: RulePack, partitions: int, root: Path,
                 chunk_rows: int, strays: bool = False,
                 compression: str = LOCAL_BUCKETS) -> None:  # fmt: skip
        self.folder = folder
        self.strays = strays
        self.compression = compression
        self.schema = pack.catalogue.tables
        self.partitions = partitions
        self.root = root
        self.chunk_rows = chunk_rows
        self.refs = person_refs(pack)
        self.ref_columns = tuple(dict.fromkeys(c for cols in self.refs.values() for c in cols))
        self.routes: dict[str, list[Router]] = {}

    def set_routes(self, id_parts: dict[str, list[pl.DataFrame]]) -> None:
        """The routers of the ID-indexed tables: one per persons ID column (a person's own
        ID, the father's, the mother's), built once from the persons' partitions."""
        empty = pl.DataFrame(schema={"__k": pl.Int64, "__part": pl.UInt32})
        by_column = {
            c: Router(pl.concat(id_parts[c]) if id_parts.get(c) else empty)
            for c in self.ref_columns
        }
        for name, columns in self.refs.items():
            self.routes[name] = [by_column[c] for c in columns]

    def _id_parts(self, persons: pl.DataFrame) -> dict[str, pl.DataFrame]:
        part = part_of(pl.col("household_no"), self.partitions).alias("__part")
        return {
            c: persons.select(id_key(pl.col(c)).alias("__k"), part).drop_nulls("__k")
            for c in self.ref_columns
        }

    def _write(self, name: str, accepted: pl.DataFrame, chunk: int) -> dict[str, pl.DataFrame]:
        table = self.schema[name]
        routed = route_table(accepted, table, self.routes, self.partitions, self.strays)
        write_buckets(self.root, name, routed, self.partitions, chunk, self.compression)
        return self._id_parts(accepted) if name == "persons" else {}

    def table(self, name: str) -> _TableStage:
        table = self.schema[name]
        path = find_file(self.folder, name)
        if path is None:
            loaded, q = load_table(self.folder, table)  # absent: empty (persons: an error)
            return _TableStage(loaded.summary(), q, pl.Series("_row", [], pl.Int64), {})
        try:
            info = FileInfo.of(path)
            per_row = CSV_ROW_BYTES if path.suffix == ".csv" else PARQUET_ROW_BYTES
            if info.size > min(self.chunk_rows, WHOLE_FILE_ROWS) * per_row:
                return self._chunked(table, path, info)
        except WholeFile:
            for part in self.root.glob(f"part-*/{name}"):  # chunks staged before: start over
                shutil.rmtree(part, ignore_errors=True)
        loaded, q = load_table(self.folder, table)
        parts = self._write(name, loaded.frame, 0) if loaded.frame.height else {}
        return _TableStage(
            loaded.summary(), q, pl.Series("_row", [], pl.Int64),
            {c: [f] for c, f in parts.items()},
        )  # fmt: skip

    def _chunked(self, table: Table, path: Path, info: FileInfo) -> _TableStage:
        name = table.name
        loaded = LoadedTable(
            name, empty_frame(table), file=path.name, format=path.suffix.lstrip("."),
            encoding=info.encoding, sha256=info.sha256,
        )  # fmt: skip
        if path.suffix == ".csv":
            chunks = csv_chunks(path, info, self.chunk_rows * CSV_ROW_BYTES)
        else:
            chunks = parquet_chunks(path, table, self.chunk_rows)
        offset = read = 0
        columns: list[str] | None = None
        rejected: list[pl.DataFrame] = []
        keys: list[pl.DataFrame] = []
        lower_x: list[pl.DataFrame] = []
        valid_ids: list[pl.Series] = []
        id_parts: dict[str, list[pl.DataFrame]] = {}
        given = ["id_no"] if "id_no" in table.by_name else []
        # the ID as given, for the quarantine of duplicates: kept beside the key unless the
        # key holds it (then rebuilt from the key for the few duplicates)
        echo = given if "id_no" not in table.key else []

        def checked(i: int, raw: pl.DataFrame, offset: int) -> _Chunk:
            """One chunk's row checks, accepted rows written to their buckets."""
            frame = row_checks(trimmed(raw, offset), table, list(raw.columns)).collect()
            bad = pl.col("__field").is_not_null()
            ok = frame.filter(~bad)
            out = _Chunk(frame.height, frame.filter(bad))
            if table.key:
                out.keys = ok.select("_row", _compact_key(table), *echo)
                if given and not echo:  # the rare IDs given with a lower-case x
                    out.lower_x = ok.filter(pl.col("id_no").str.ends_with("x")).select(
                        "_row", "id_no")  # fmt: skip
            if name == "persons":
                out.valid_ids = frame.filter(pl.col("__id_ok")).select(
                    id_key(pl.col("id_no")))["id_no"]  # fmt: skip
            accepted = ok.lazy().select(["_row"] + [_typed(c) for c in table.columns]).collect()
            del frame, ok
            out.id_parts = self._write(name, accepted, i)
            return out

        def collect(done: _Chunk) -> None:
            nonlocal read
            read += done.read
            rejected.append(done.rejected)
            if done.keys is not None:
                keys.append(done.keys)
            if done.lower_x is not None:
                lower_x.append(done.lower_x)
            if done.valid_ids is not None:
                valid_ids.append(done.valid_ids)
            for c, f in done.id_parts.items():
                id_parts.setdefault(c, []).append(f)

        # two chunks at a time (Polars releases the GIL), results taken in file order
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="chunk") as pool:
            pending: deque[Future[_Chunk]] = deque()
            for i, raw in enumerate(chunks):
                present = list(raw.columns)
                if columns is None:
                    columns = present
                    if any(c not in present for c in table.required):
                        raise WholeFile  # the whole table is rejected: as by load_table
                    loaded.extra_columns = sorted(c for c in present if c not in table.by_name)
                elif present != columns:  # pragma: no cover - every chunk has the header
                    raise WholeFile
                pending.append(pool.submit(checked, i, raw, offset))
                offset += raw.height
                del raw
                while len(pending) >= 2:
                    collect(pending.popleft().result())
            while pending:
                collect(pending.popleft().result())
        if columns is None or offset == 0:
            raise WholeFile  # no data rows: the whole-file path says what is wrong
        rej = pl.concat(rejected)
        if name == "persons":
            ids = pl.concat(valid_ids)
            repeated = ids.filter(ids.is_duplicated()).unique()
            rej = rej.with_columns(
                pl.coalesce(
                    pl.col("__identity"),
                    pl.when(
                        pl.col("__id_ok") & id_key(pl.col("id_no")).is_in(repeated.implode())
                    ).then(pl.lit("duplicate_id")),
                ).alias("__identity")
            )
        quarantine = [quarantine_rows(rej, table)]
        dropped = pl.Series("_row", [], pl.Int64)
        if keys:
            k = pl.concat(keys)
            dup = k.filter(~pl.col("__key").is_first_distinct())
            del k
            dropped = dup["_row"]
            if given and not echo:  # the ID as given: rebuilt from the key, or as written
                dup = _given_ids(dup, table, pl.concat(lower_x))
            reason = reason_text(table, {"__field": table.key[0], "__code": "duplicate_key"})
            quarantine.append(
                dup.select(
                    pl.lit(name).alias("table"),
                    pl.col("_row").alias("row"),
                    (pl.col("id_no") if given else pl.lit(None, pl.String)).alias("id_no"),
                    pl.lit(table.key[0]).alias("field"),
                    pl.lit(reason).alias("reason"),
                    pl.lit("duplicate_key").alias("code"),
                    pl.lit("duplicate_id" if name == "persons" else None, pl.String).alias(
                        "identity_issue"
                    ),
                ).cast(QUARANTINE_SCHEMA)
            )
        q = pl.concat(quarantine).sort("row")
        loaded.read = read
        loaded.quarantined = q.height
        loaded.skipped_empty = offset - read
        summary = loaded.summary()
        summary["accepted"] = read - q.height
        return _TableStage(summary, q, dropped, id_parts)


@dataclass
class _Chunk:
    """What one chunk's checks leave for the checks over the whole table."""

    read: int
    rejected: pl.DataFrame
    keys: pl.DataFrame | None = None
    lower_x: pl.DataFrame | None = None
    valid_ids: pl.Series | None = None
    id_parts: dict[str, pl.DataFrame] = field(default_factory=dict)


def _compact_key(table: Table) -> pl.Expr:
    """A row's key (`__key`) as compared for duplicates, compactly: an ID (valid here) by its
    integer key, other columns as text; one column as itself, several as a struct."""
    cols = [
        id_key(pl.col(k)) if table.by_name[k].kind == "id" else pl.col(k).alias(k)
        for k in table.key
    ]
    return (cols[0] if len(cols) == 1 else pl.struct(cols)).alias("__key")


def _given_ids(dup: pl.DataFrame, table: Table, lower_x: pl.DataFrame) -> pl.DataFrame:
    """Duplicate rows with `id_no` as given in the file (the few rows are rebuilt in Python)."""
    written = dict(lower_x.iter_rows())
    key_ids = "id_no" in table.key
    ids = []
    for row, key in dup.select("_row", "__key").iter_rows():
        if row in written:
            ids.append(written[row])
            continue
        body = key if key_ids and len(table.key) == 1 else (key or {}).get("id_no")
        body = f"{body:017d}" if body is not None else None
        ids.append(body + check_character(body) if body else None)
    return dup.with_columns(pl.Series("id_no", ids, pl.String))


def stage(
    data: Path,
    pack: RulePack,
    partitions: int,
    root: Path,
    chunk_rows: int | None = None,
    strays: bool = False,
    compression: str = LOCAL_BUCKETS,
) -> Staged:
    """Stage the delivery in `data` into `partitions` partitions under `root`, reading files
    `chunk_rows` rows at a time (two at once; files of fewer than WHOLE_FILE_ROWS rows whole);
    `strays`: rows that decide nothing go to the extra partition `partitions` (see
    :func:`route_table`); `compression`: the buckets' (LOCAL_BUCKETS or SHIPPED_BUCKETS)."""
    folder = Path(data)
    if not folder.is_dir():
        raise IngestError(f"data folder {folder} does not exist")
    root.mkdir(parents=True, exist_ok=True)
    stager = _Stager(
        folder, pack, partitions, root, chunk_rows or DEFAULT_CHUNK_ROWS, strays, compression
    )
    for name in stager.schema:  # a table delivered twice is refused before anything is read
        find_file(folder, name)
    staged: dict[str, _TableStage] = {"persons": stager.table("persons")}
    stager.set_routes(staged["persons"].id_parts)
    staged["persons"].id_parts.clear()
    rest = [n for n in stager.schema if n != "persons"]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage") as pool:
        for name, result in zip(rest, pool.map(stager.table, rest), strict=True):
            staged[name] = result
    order = list(stager.schema)
    tables = {n: staged[n].summary for n in order}
    inputs = {n: {"file": t["file"], "sha256": t["sha256"]} for n, t in tables.items() if t["file"]}
    quarantine = pl.concat([staged[n].quarantine for n in order])
    delivery = DeliveryInfo(folder, tables, inputs, quarantine.height)
    dropped = pl.concat(
        [staged[n].dropped.to_frame().with_columns(pl.lit(n).alias("table")) for n in order]
    )
    q = route_quarantine(quarantine, partitions).cast({**QUARANTINE_SCHEMA, "__part": pl.UInt32})
    result = Staged(root, partitions, delivery, q, tuple(order), dropped)
    result.save()
    return result
