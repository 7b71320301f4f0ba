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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benefits.chunks import FileInfo, WholeFile, csv_chunks, parquet_chunks
from benefits.errors import IngestError
from benefits.ingest import (
    QUARANTINE_SCHEMA,
    LoadedTable,
    _typed,
    empty_frame,
    find_file,
    key_struct,
    load_table,
    quarantine_rows,
    reason_text,
    row_checks,
    trimmed,
)
from benefits.merge import id_key
from benefits.rulebook import RulePack
from benefits.schema import Table
from benefits.sweep import DeliveryInfo

PART_DIR = "part-{:05d}"
HASH_SEED = 1_302
DEFAULT_CHUNK_ROWS = 500_000
# a file larger than chunk_rows rows of about these bytes is read in chunks, a smaller one whole
CSV_ROW_BYTES = 100
PARQUET_ROW_BYTES = 40  # any fixed seed: the partition of a household never changes a result


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
                frame = pl.concat([pl.read_parquet(f) for f in files]).sort("_row")
                drop = self.dropped.filter(pl.col("table") == name)["_row"]
                if drop.len():
                    frame = frame.filter(~pl.col("_row").is_in(drop.implode()))
                tables[name] = frame
        q = self.quarantine.filter(pl.col("__part") == index).drop("__part")
        return tables, q

    def save(self) -> None:
        """Write the staging's metadata beside the buckets (for engines reading it back)."""
        self.quarantine.write_parquet(self.root / "quarantine.parquet")
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
    def load(cls, root: Path) -> Staged:
        """A staging written by :meth:`save` (e.g. by the driver, read in a worker)."""
        meta = json.loads((root / "staged.json").read_text(encoding="utf-8"))
        d = meta["delivery"]
        delivery = DeliveryInfo(Path(d["folder"]), d["tables"], d["inputs"], d["quarantined"])
        return cls(
            root,
            meta["partitions"],
            delivery,
            pl.read_parquet(root / "quarantine.parquet"),
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


def route_table(
    frame: pl.DataFrame,
    table: Table,
    routes: dict[str, pl.DataFrame],
    partitions: int,
) -> pl.DataFrame:
    """The table's rows with their partition `__part` (a row may go to several)."""
    index = str(table.index) if table.index else "household_no"
    if table.name == "persons" or table.by_name[index].kind != "id":
        return frame.with_columns(part_of(pl.col(index), partitions).alias("__part"))
    route = routes.get(table.name)
    if route is None:  # no fact reads the table: its rows only need to exist somewhere
        return frame.with_columns(pl.lit(0, pl.UInt32).alias("__part"))
    return (
        frame.with_columns(id_key(pl.col(index)).alias("__k"))
        .join(route, on="__k", how="inner")
        .drop("__k")
    )


def route_quarantine(quarantine: pl.DataFrame, partitions: int) -> pl.DataFrame:
    """Each quarantine row's partition, by its ID as given (all rows of one ID together)."""
    return quarantine.with_columns(
        part_of(pl.col("id_no").fill_null(""), partitions).alias("__part")
    )


def write_buckets(
    root: Path, name: str, frame: pl.DataFrame, partitions: int, chunk: int | None = None
) -> None:
    """Write a routed frame's rows into their partitions' buckets (one file per chunk)."""
    for (part,), rows in frame.partition_by("__part", as_dict=True).items():
        folder = root / PART_DIR.format(int(part)) / name
        folder.mkdir(parents=True, exist_ok=True)
        rows.drop("__part").write_parquet(folder / f"{chunk or 0:05d}.parquet", statistics=False)


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
                 chunk_rows: int) -> None:  # fmt: skip
        self.folder = folder
        self.schema = pack.catalogue.tables
        self.partitions = partitions
        self.root = root
        self.chunk_rows = chunk_rows
        self.refs = person_refs(pack)
        self.ref_columns = tuple(dict.fromkeys(c for cols in self.refs.values() for c in cols))
        self.routes: dict[str, pl.DataFrame] = {}

    def set_routes(self, id_parts: dict[str, list[pl.DataFrame]]) -> None:
        """The persons' ID key → partition pairs, per ID-indexed table."""
        for name, columns in self.refs.items():
            frames = [f for c in columns for f in id_parts.get(c, [])]
            self.routes[name] = (
                pl.concat(frames).unique() if frames else pl.DataFrame(
                    schema={"__k": pl.Int64, "__part": pl.UInt32})
            )  # fmt: skip

    def _id_parts(self, persons: pl.DataFrame) -> dict[str, pl.DataFrame]:
        part = part_of(pl.col("household_no"), self.partitions).alias("__part")
        return {
            c: persons.select(id_key(pl.col(c)).alias("__k"), part).drop_nulls("__k").unique()
            for c in self.ref_columns
        }

    def _write(self, name: str, accepted: pl.DataFrame, chunk: int) -> dict[str, pl.DataFrame]:
        table = self.schema[name]
        routed = route_table(accepted, table, self.routes, self.partitions)
        write_buckets(self.root, name, routed, self.partitions, chunk)
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
            if info.size > self.chunk_rows * per_row:
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
        valid_ids: list[pl.Series] = []
        id_parts: dict[str, list[pl.DataFrame]] = {}
        given = ["id_no"] if "id_no" in table.by_name else []
        for i, raw in enumerate(chunks):
            present = list(raw.columns)
            if columns is None:
                columns = present
                if any(c not in present for c in table.required):
                    raise WholeFile  # the whole table is rejected: reported as by load_table
                loaded.extra_columns = sorted(c for c in present if c not in table.by_name)
            elif present != columns:  # pragma: no cover - every chunk has the file's header
                raise WholeFile
            frame = row_checks(trimmed(raw, offset), table, present).collect()
            offset += raw.height
            read += frame.height
            bad = pl.col("__field").is_not_null()
            rejected.append(frame.filter(bad))
            ok = frame.filter(~bad)
            if table.key:
                keys.append(ok.select("_row", key_struct(table).alias("__key"), *given))
            if name == "persons":
                valid_ids.append(frame.filter(pl.col("__id_ok"))["id_no"].str.to_uppercase())
            accepted = ok.lazy().select(["_row"] + [_typed(c) for c in table.columns]).collect()
            del frame, ok
            for c, f in self._write(name, accepted, i).items():
                id_parts.setdefault(c, []).append(f)
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
                        pl.col("__id_ok")
                        & pl.col("id_no").str.to_uppercase().is_in(repeated.implode())
                    ).then(pl.lit("duplicate_id")),
                ).alias("__identity")
            )
        quarantine = [quarantine_rows(rej, table)]
        dropped = pl.Series("_row", [], pl.Int64)
        if keys:
            k = pl.concat(keys)
            dup = k.filter(~pl.col("__key").is_first_distinct())
            dropped = dup["_row"]
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


def stage(
    data: Path, pack: RulePack, partitions: int, root: Path, chunk_rows: int | None = None
) -> Staged:
    """Stage the delivery in `data` into `partitions` partitions under `root`, reading files
    `chunk_rows` rows at a time (smaller files are read whole)."""
    folder = Path(data)
    if not folder.is_dir():
        raise IngestError(f"data folder {folder} does not exist")
    root.mkdir(parents=True, exist_ok=True)
    stager = _Stager(folder, pack, partitions, root, chunk_rows or DEFAULT_CHUNK_ROWS)
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
