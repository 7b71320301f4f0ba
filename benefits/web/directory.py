"""The person directory: who a resident ID is (name, household, community) and URL references.

Read from the ``persons`` extract of each delivery the app knows (the data folder and the
deliveries recorded in the runs' summaries) plus every ID in the runs' traces (columnar or
traces.jsonl). It resolves the opaque person references used in URLs
(:func:`benefits.web.privacy.person_ref`) back to IDs, so no URL carries a resident ID.

Sized for a city: nothing is read whole into Python objects. A delivery's persons are found
through a compact index built once per file version (a 64-bit hash of each ID → its row,
~12 bytes a person) and read one row at a time (an unsealed Parquet extract: one row group;
a CSV or sealed extract is held as a Polars frame); many at once with one filtered scan
(:meth:`Directory.people`). A reference is resolved from the references the app handed out;
one it did not (a bookmark after a restart) is looked for once among every known ID.

Example:
    >>> d = Directory(secret="k")                                 # doctest: +SKIP
    >>> d.add_delivery(Path("datasets/sample"))                   # doctest: +SKIP
    >>> d.resolve(d.ref("330106194501011233"))                    # doctest: +SKIP
    '330106194501011233'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from benefits.errors import BenefitsError
from benefits.idcard import mask_id, mask_name
from benefits.ingest import find_file, read_csv_text
from benefits.sealedfiles import is_sealed, read_output, read_parquet
from benefits.web.privacy import person_ref

PERSON_COLUMNS = (
    "id_no",
    "name",
    "sex",
    "birth_date",
    "household_no",
    "relation",
    "hukou_community",
    "hukou_status",
)


def _text_columns(frame: pl.DataFrame | pl.LazyFrame) -> list[pl.Expr]:
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    return [
        (pl.col(c).cast(pl.String).str.strip_chars() if c in names
         else pl.lit(None, pl.String)).alias(c)
        for c in PERSON_COLUMNS
    ]  # fmt: skip


def _normalised(frame: Any) -> Any:
    """The persons columns as stripped text, IDs upper-case, first row per ID (frame or lazy)."""
    return (
        frame.select(_text_columns(frame))
        .with_columns(pl.col("id_no").str.to_uppercase())
        .filter(pl.col("id_no").is_not_null())
        .unique("id_no", keep="first", maintain_order=True)
    )


def read_persons(folder: Path) -> pl.DataFrame:
    """The persons extract of a delivery as text columns (first row per ID), or empty."""
    try:
        path = find_file(Path(folder), "persons")
    except BenefitsError:
        return pl.DataFrame(schema=dict.fromkeys(PERSON_COLUMNS, pl.String))
    if path is None:
        return pl.DataFrame(schema=dict.fromkeys(PERSON_COLUMNS, pl.String))
    return _normalised(_read_whole(path))


def _read_whole(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":
        frame, _ = read_csv_text(read_output(path), path)
        return frame
    return read_parquet(path)


def _hashes(ids: pl.Series) -> pl.Series:
    """The 64-bit hash of each ID the index is keyed by (a fixed seed: the same in a process)."""
    return ids.hash(seed=0)


class PersonsFile:
    """One delivery's persons extract, looked up by ID without reading it into Python.

    An unsealed Parquet extract is read per row group; a CSV or sealed one (a town's) is
    held as one Polars frame. The index (hash of ID → rows) is built on the first lookup.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lazy = path.suffix != ".csv" and not is_sealed(path)
        self._frame: pl.DataFrame | None = None
        self._index: pl.DataFrame | None = None
        self._lock = threading.Lock()

    def _whole(self) -> pl.DataFrame:
        if self._frame is None:
            self._frame = _normalised(_read_whole(self.path))
        return self._frame

    def _scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path)

    def index(self) -> pl.DataFrame:
        """(hash of the ID, row) of every row with an ID, sorted by hash then row: the rows
        of an ID (and of the rare other ID of the same hash) are together, first row first."""
        with self._lock:
            if self._index is None:
                if self.lazy:
                    ids = (self._scan().select(pl.col("id_no").cast(pl.String)
                                               .str.strip_chars().str.to_uppercase())
                           .with_row_index("row").filter(pl.col("id_no").is_not_null())
                           .collect())  # fmt: skip
                else:
                    ids = self._whole().select("id_no").with_row_index("row")
                self._index = pl.DataFrame(
                    {"hash": _hashes(ids["id_no"]), "row": ids["row"]}
                ).sort("hash", "row")
            return self._index

    def ids(self) -> pl.Series:
        """Every ID of the extract."""
        if self.lazy:
            return (self._scan().select(pl.col("id_no").cast(pl.String).str.strip_chars()
                                        .str.to_uppercase()).drop_nulls().unique()
                    .collect()["id_no"])  # fmt: skip
        return self._whole()["id_no"]

    def get(self, id_no: str) -> dict[str, Any] | None:
        """The row of an ID (text values), or None."""
        index = self.index()
        h = _hashes(pl.Series([id_no]))[0]
        hashes = index["hash"]
        lo = int(hashes.search_sorted(h, side="left"))
        hi = int(hashes.search_sorted(h, side="right"))
        for row in index["row"][lo:hi]:
            if self.lazy:
                found = self._scan().slice(int(row), 1).collect()
                found = found.select(_text_columns(found)).with_columns(
                    pl.col("id_no").str.to_uppercase())
            else:
                found = self._whole().slice(int(row), 1)
            person = found.row(0, named=True)
            if person["id_no"] == id_no:
                return person
        return None

    def many(self, ids: list[str]) -> pl.DataFrame:
        """The rows of these IDs, found with one filtered scan."""
        wanted = pl.Series("id_no", ids, pl.String).implode()
        if not self.lazy:
            return self._whole().filter(pl.col("id_no").is_in(wanted))
        upper = pl.col("id_no").cast(pl.String).str.strip_chars().str.to_uppercase()
        return _normalised(self._scan().filter(upper.is_in(wanted))).collect()


class Directory:
    """People known to the app, by ID and by URL reference. Thread-safe; grows as runs come."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._lock = threading.Lock()
        self._seen: set[tuple[str, int, int]] = set()
        self._refs: dict[str, str] = {}
        self._files: list[PersonsFile] = []
        self._id_sources: list[Callable[[], Iterable[str]]] = []
        self._misses: set[str] = set()

    def ref(self, id_no: str) -> str:
        """The URL reference of an ID (also remembered for resolving it later)."""
        r = person_ref(self.secret, id_no)
        self._refs.setdefault(r, id_no)
        return r

    def resolve(self, ref: str) -> str | None:
        """The ID behind a reference, or None when unknown.

        A reference the app did not hand out is looked for once among every known ID (a
        pass over them: seconds at a city's size); an unknown one is remembered as such
        until more people become known.
        """
        found = self._refs.get(ref)
        if found is not None or ref in self._misses:
            return found
        secret = self.secret
        for id_no in self._all_ids():
            if person_ref(secret, id_no) == ref:
                self._refs.setdefault(ref, id_no)
                return id_no
        with self._lock:
            self._misses.add(ref)
        return None

    def _all_ids(self) -> Iterator[str]:
        with self._lock:
            sources = [f.ids for f in self._files] + list(self._id_sources)
        yield from list(self._refs.values())
        for source in sources:
            yield from source()

    def known_ids(self) -> list[str]:
        """Every ID the directory can resolve."""
        return list(dict.fromkeys(self._all_ids()))

    def add_ids(self, ids: Iterable[str] | Callable[[], Iterable[str]]) -> None:
        """Make these IDs resolvable: a list, or a function giving them when needed."""
        source = ids if callable(ids) else (lambda kept=[i for i in ids if i]: kept)
        with self._lock:
            self._id_sources.append(source)
            self._misses.clear()

    def add_delivery(self, folder: Path) -> None:
        """Know a delivery's persons extract (once per file version; read when asked)."""
        try:
            path = find_file(Path(folder), "persons")
        except BenefitsError:
            return
        if path is None:
            return
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
            self._files.insert(0, PersonsFile(path))  # the newest delivery answers first
            self._misses.clear()

    def person(self, id_no: str) -> dict[str, Any] | None:
        """The persons row of an ID (text values), or None."""
        with self._lock:
            files = list(self._files)
        for f in files:
            found = f.get(id_no)
            if found is not None:
                return found
        return None

    def people(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The persons rows of many IDs at once (one scan per extract), by ID."""
        wanted = list(dict.fromkeys(i for i in ids if i))
        with self._lock:
            files = list(self._files)
        out: dict[str, dict[str, Any]] = {}
        for f in files:
            if not wanted:
                break
            for row in f.many(wanted).iter_rows(named=True):
                out.setdefault(row["id_no"], row)
            wanted = [i for i in wanted if i not in out]
        return out

    def masked_name(self, id_no: str) -> str:
        """The masked name of an ID, or '' when unknown."""
        return masked_name_of(self.person(id_no))

    def community(self, id_no: str) -> str:
        """The hukou community code of an ID, or ''."""
        return community_of(self.person(id_no))

    def display(self, id_no: str, reveal: bool) -> dict[str, str]:
        """Name and ID as the viewer may see them."""
        p = self.person(id_no) or {}
        name = p.get("name") or ""
        return {
            "name": name if reveal else mask_name(name),
            "id_no": id_no if reveal else mask_id(id_no),
        }


def masked_name_of(person: dict[str, Any] | None) -> str:
    """The masked name of a persons row, or '' when none."""
    return mask_name(person["name"]) if person and person.get("name") else ""


def community_of(person: dict[str, Any] | None) -> str:
    """The hukou community code of a persons row, or ''."""
    return (person or {}).get("hukou_community") or ""
