"""The person directory: who a resident ID is (name, household, community) and URL references.

Read from the ``persons`` extract of each delivery the app knows (the data folder and the
deliveries recorded in the runs' summaries) plus every ID in the runs' traces (columnar or
traces.jsonl), once per file version, with Polars. It resolves the opaque person references
used in URLs (:func:`benefits.web.privacy.person_ref`) back to IDs, so no URL carries a
resident ID.

Example:
    >>> d = Directory(secret="k")                                 # doctest: +SKIP
    >>> d.add_delivery(Path("datasets/sample"))                   # doctest: +SKIP
    >>> d.resolve(d.ref("330106194501011233"))                    # doctest: +SKIP
    '330106194501011233'
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from benefits.errors import BenefitsError
from benefits.idcard import mask_id, mask_name
from benefits.ingest import find_file, read_csv_text
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


def read_persons(folder: Path) -> pl.DataFrame:
    """The persons extract of a delivery as text columns (first row per ID), or empty."""
    try:
        path = find_file(Path(folder), "persons")
    except BenefitsError:
        return pl.DataFrame(schema=dict.fromkeys(PERSON_COLUMNS, pl.String))
    if path is None:
        return pl.DataFrame(schema=dict.fromkeys(PERSON_COLUMNS, pl.String))
    if path.suffix == ".csv":
        frame, _ = read_csv_text(path.read_bytes(), path)
    else:
        frame = pl.read_parquet(path)
        frame = frame.select([pl.col(c).cast(pl.String) for c in frame.columns])
    cols = [
        (pl.col(c).str.strip_chars() if c in frame.columns else pl.lit(None, pl.String)).alias(c)
        for c in PERSON_COLUMNS
    ]
    return (
        frame.select(cols)
        .with_columns(pl.col("id_no").str.to_uppercase())
        .filter(pl.col("id_no").is_not_null())
        .unique("id_no", keep="first", maintain_order=True)
    )


class Directory:
    """People known to the app, by ID and by URL reference. Thread-safe; grows as runs come."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._lock = threading.Lock()
        self._seen: set[tuple[str, int, int]] = set()
        self._refs: dict[str, str] = {}
        self._people: dict[str, dict[str, Any]] = {}

    def ref(self, id_no: str) -> str:
        """The URL reference of an ID (also remembered for resolving it later)."""
        r = person_ref(self.secret, id_no)
        self._refs.setdefault(r, id_no)
        return r

    def resolve(self, ref: str) -> str | None:
        """The ID behind a reference, or None when unknown."""
        return self._refs.get(ref)

    def known_ids(self) -> list[str]:
        """Every ID the directory can resolve."""
        with self._lock:
            return list(self._refs.values())

    def add_ids(self, ids: Iterable[str]) -> None:
        """Make these IDs resolvable."""
        secret = self.secret
        new = {person_ref(secret, i): i for i in ids if i}
        with self._lock:
            self._refs.update(new)

    def add_delivery(self, folder: Path) -> None:
        """Read a delivery's persons extract (once per file version)."""
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
        frame = read_persons(folder)
        people = {row["id_no"]: row for row in frame.iter_rows(named=True)}
        self.add_ids(people)
        with self._lock:
            self._people.update(people)
            self._seen.add(key)

    def person(self, id_no: str) -> dict[str, Any] | None:
        """The persons row of an ID (text values), or None."""
        return self._people.get(id_no)

    def masked_name(self, id_no: str) -> str:
        """The masked name of an ID, or '' when unknown."""
        p = self._people.get(id_no)
        return mask_name(p["name"]) if p and p.get("name") else ""

    def community(self, id_no: str) -> str:
        """The hukou community code of an ID, or ''."""
        p = self._people.get(id_no)
        return (p or {}).get("hukou_community") or ""

    def display(self, id_no: str, reveal: bool) -> dict[str, str]:
        """Name and ID as the viewer may see them."""
        p = self._people.get(id_no) or {}
        name = p.get("name") or ""
        return {
            "name": name if reveal else mask_name(name),
            "id_no": id_no if reveal else mask_id(id_no),
        }
