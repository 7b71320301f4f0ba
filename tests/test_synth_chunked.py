"""Big districts are generated in chunks by worker processes (`benefits synth --workers`):
the files do not depend on the number of workers, resident IDs and household numbers stay
unique across chunks, and the CSV and Parquet forms hold the same rows. Chunks are made small
here so that a few thousand persons cross several of them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from benefits.idcard import is_valid
from benefits.schema import TABLE_ORDER
from benefits.synth import chunked, generate


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("benefits.synth.CHUNKED_ABOVE", 2_000)
    monkeypatch.setattr(chunked, "CHUNK_PERSONS", 1_500)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_chunks_cover_the_district() -> None:
    assert chunked.chunks(1_000_001) == [500_000, 500_000, 1]
    assert sum(chunked.chunks(10_000_000)) == 10_000_000


def test_files_do_not_depend_on_the_number_of_workers(small_chunks: None, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    counts = generate(4_000, seed=3, out=one, dirty=0.02, fmt="parquet", workers=1)
    assert generate(4_000, seed=3, out=two, dirty=0.02, fmt="parquet", workers=2) == counts
    assert _digests(one) == _digests(two)
    assert sorted(_digests(one)) == sorted(f"{t}.parquet" for t in TABLE_ORDER)
    for table, n in counts.items():
        assert pl.read_parquet(one / f"{table}.parquet").height == n


def test_ids_and_households_stay_unique_across_chunks(small_chunks: None, tmp_path: Path) -> None:
    generate(5_000, seed=11, out=tmp_path, dirty=0, fmt="parquet", workers=1)
    persons = pl.read_parquet(tmp_path / "persons.parquet")
    assert persons.height >= 5_000  # planted households in the first chunk come on top
    assert persons["id_no"].n_unique() == persons.height
    assert all(is_valid(i) for i in persons["id_no"])
    # one household number per household of each chunk: heads are one per number
    heads = persons.filter(pl.col("relation") == "head")
    assert heads["household_no"].n_unique() == heads.height
    # facts point at the chunk's own people: every fact's person is registered or a parent
    known = set(persons["id_no"]) | set(persons["father_id_no"].drop_nulls())
    known |= set(persons["mother_id_no"].drop_nulls())
    for table in ("pensions", "bank_accounts", "disability_certificates"):
        ids = set(pl.read_parquet(tmp_path / f"{table}.parquet")["id_no"].drop_nulls())
        assert ids <= known, table


def test_csv_in_gbk_holds_the_parquet_rows(small_chunks: None, tmp_path: Path) -> None:
    generate(4_000, seed=5, out=tmp_path / "p", dirty=0.02, fmt="parquet", workers=1)
    generate(4_000, seed=5, out=tmp_path / "c", dirty=0.02, fmt="csv", encoding="gbk", workers=1)
    for table in TABLE_ORDER:
        text = (tmp_path / "c" / f"{table}.csv").read_bytes().decode("gbk")
        csv = pl.read_csv(text.encode("utf-8"), infer_schema=False)
        parquet = pl.read_parquet(tmp_path / "p" / f"{table}.parquet")
        assert csv.columns == parquet.columns, table
        assert csv.equals(parquet), table
