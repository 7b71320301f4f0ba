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
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from benefits.ingest import QUARANTINE_SCHEMA, Extracts, load_extracts
from benefits.merge import id_key
from benefits.rulebook import RulePack
from benefits.schema import Table
from benefits.sweep import DeliveryInfo

PART_DIR = "part-{:05d}"
HASH_SEED = 1_302  # any fixed seed: the partition of a household never changes a result


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

    def part_dir(self, index: int) -> Path:
        return self.root / PART_DIR.format(index)

    def read_part(self, index: int) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
        """One partition's tables (absent = no rows) and the quarantine rows routed to it."""
        folder = self.part_dir(index)
        tables = {}
        for name in self.table_names:
            files = sorted((folder / name).glob("*.parquet"))
            if files:  # chunks in file order; rows sorted by their row number
                tables[name] = pl.concat([pl.read_parquet(f) for f in files]).sort("_row")
        q = self.quarantine.filter(pl.col("__part") == index).drop("__part")
        return tables, q

    def save(self) -> None:
        """Write the staging's metadata beside the buckets (for engines reading it back)."""
        self.quarantine.write_parquet(self.root / "quarantine.parquet")
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


def routing(persons: pl.DataFrame, columns: tuple[str, ...], partitions: int) -> pl.DataFrame:
    """ID key → partition, for every persons ID column named (unique pairs)."""
    part = part_of(pl.col("household_no"), partitions).alias("__part")
    frames = [
        persons.select(id_key(pl.col(c)).alias("__k"), part).drop_nulls("__k") for c in columns
    ]
    return pl.concat(frames).unique(maintain_order=False)


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


def stage(
    data: Path, pack: RulePack, partitions: int, root: Path, chunk_rows: int | None = None
) -> Staged:
    """Stage the delivery in `data` into `partitions` partitions under `root`."""
    extracts: Extracts = load_extracts(Path(data), pack.catalogue.tables)
    delivery = DeliveryInfo.of(extracts)
    root.mkdir(parents=True, exist_ok=True)
    refs = person_refs(pack)
    persons = extracts.frame("persons")
    routes = {t: routing(persons, cols, partitions) for t, cols in refs.items()}
    for name, table in extracts.schema.items():
        frame = extracts.frame(name)
        if frame.height == 0:
            continue
        write_buckets(root, name, route_table(frame, table, routes, partitions), partitions)
    q = route_quarantine(extracts.quarantine, partitions).cast(
        {**QUARANTINE_SCHEMA, "__part": pl.UInt32}
    )
    staged = Staged(root, partitions, delivery, q, tuple(extracts.schema))
    staged.save()
    return staged
