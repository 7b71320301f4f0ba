"""Big synthetic districts (a city of millions) generated in chunks, in parallel.

A district above :data:`CHUNKED_ABOVE` persons is cut into chunks of :data:`CHUNK_PERSONS`.
Each chunk is a district of its own, drawn from the random streams of ``(seed, chunk)``
(the planted households go into chunk 0 only), so chunks are generated independently — by
as many worker processes as asked — and the files do not depend on the number of workers:

1. every chunk draws its people and facts (worker processes; kept as Parquet in a scratch
   folder inside `out`);
2. resident IDs and household numbers are given once over the whole district (they must be
   unique across chunks: the ID's sequence is the rank among people of the same birthplace,
   birth date and sex; a household's serial is its rank in its community, 6 digits wide);
3. every chunk becomes the contract's tables, corrupted with dirty rows (workers);
4. the chunks' files are joined, table by table, into one file per table.

Memory stays that of one chunk per worker plus the ID step (a few columns of the district).

Example:
    >>> chunks(2_500_001)
    [500000, 500000, 500000, 500000, 500000, 1]
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl

from benefits.schema import TABLE_ORDER
from benefits.synth.dates import Month
from benefits.synth.dirty import corrupt
from benefits.synth.output import contract_tables, shuffle_columns
from benefits.synth.population import assign_ids
from benefits.synth.rand import Rng

CHUNKED_ABOVE = 1_000_000  # larger districts are generated in chunks (smaller: in one piece)
CHUNK_PERSONS = 500_000
HOUSEHOLD_SERIALS = 1_000_000  # 6-digit serial per community: a city has 100,000s per community
ID_COLUMNS = ("id_no", "id_key", "hh_key", "household_no")
SCRATCH = ".synth-chunks"


def chunks(persons: int) -> list[int]:
    """The persons of each chunk (all :data:`CHUNK_PERSONS` but the last)."""
    full, rest = divmod(persons, CHUNK_PERSONS)
    return [CHUNK_PERSONS] * full + ([rest] if rest else [])


def chunk_rng(seed: int, chunk: int) -> Rng:
    """The random streams of one chunk (chunk 0 uses the district's own)."""
    return Rng(seed) if chunk == 0 else Rng(Rng(seed).key(f"chunk:{chunk}"))


def generate_chunked(
    persons: int,
    seed: int,
    out: Path,
    month: str,
    dirty: float,
    fmt: str,
    encoding: str,
    workers: int | None = None,
) -> dict[str, int]:
    """Write a big district into `out` chunk by chunk (see module doc); rows per table."""
    sizes = chunks(persons)
    scratch = Path(out) / SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    workers = max(1, min(workers or os.cpu_count() or 1, len(sizes)))
    jobs = [(seed, month, c, n, scratch) for c, n in enumerate(sizes)]
    try:
        if workers == 1:  # in this process: the same steps, without starting workers
            for job in jobs:
                _draw_chunk(*job)
            _assign_ids(seed, scratch, len(sizes))
            for job in jobs:
                _tables_of_chunk(*job, dirty)
        else:
            context = multiprocessing.get_context("spawn")  # no fork of a threaded Polars
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                list(pool.map(_draw_chunk, *zip(*jobs, strict=True)))
                _assign_ids(seed, scratch, len(sizes))
                dirty_jobs = [(*j, dirty) for j in jobs]
                list(pool.map(_tables_of_chunk, *zip(*dirty_jobs, strict=True)))
        return _join(scratch, len(sizes), Path(out), fmt, encoding)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _draw_chunk(seed: int, month: str, chunk: int, persons: int, scratch: Path) -> None:
    """Step 1: a chunk's people and facts, before IDs, into ``scratch/NNNNN/``."""
    from benefits.synth import district_without_ids

    people, facts = district_without_ids(
        chunk_rng(seed, chunk), Month.parse(month), persons, plant=chunk == 0
    )
    folder = scratch / f"{chunk:05d}"
    folder.mkdir()
    people.write_parquet(folder / "people.parquet")
    for name, df in facts.items():
        df.write_parquet(folder / f"fact-{name}.parquet")


def _assign_ids(seed: int, scratch: Path, n_chunks: int) -> None:
    """Step 2: IDs and household numbers over the whole district, stored per chunk."""
    keys = []
    pk_base = hh_base = 0
    for c in range(n_chunks):
        people = pl.read_parquet(
            scratch / f"{c:05d}" / "people.parquet",
            columns=["_pk", "_hh", "region", "birth", "sex", "hukou_community"],
        )
        keys.append(
            people.with_columns(
                _chunk=pl.lit(c, pl.Int32), _pk=pl.col("_pk") + pk_base, _hh=pl.col("_hh") + hh_base
            )
        )
        pk_base += people.height
        hh_base += int(people["_hh"].max() or 0) + 1
    ids = assign_ids(Rng(seed), pl.concat(keys), serials=HOUSEHOLD_SERIALS)
    for c, part in ids.select("_chunk", *ID_COLUMNS).partition_by("_chunk", as_dict=True).items():
        part.drop("_chunk").write_parquet(scratch / f"{c[0]:05d}" / "ids.parquet")


def _tables_of_chunk(
    seed: int, month: str, chunk: int, persons: int, scratch: Path, dirty: float
) -> None:
    """Step 3: a chunk's contract tables, corrupted, as Parquet text columns."""
    folder = scratch / f"{chunk:05d}"
    rng = chunk_rng(seed, chunk)
    people = pl.read_parquet(folder / "people.parquet")
    ids = pl.read_parquet(folder / "ids.parquet")
    people = people.with_columns(ids)
    facts = {
        p.name.removeprefix("fact-").removesuffix(".parquet"): pl.read_parquet(p)
        for p in sorted(folder.glob("fact-*.parquet"))
    }
    tables = contract_tables(people, facts)
    del people, facts
    for name in TABLE_ORDER:
        df = shuffle_columns(name, tables.pop(name), Rng(seed))  # one column order for all
        df = corrupt(name, df, rng, dirty).drop("_planted")
        df.write_parquet(folder / f"table-{name}.parquet")


def _join(scratch: Path, n_chunks: int, out: Path, fmt: str, encoding: str) -> dict[str, int]:
    """Step 4: one file per table from the chunks' files, in chunk order."""
    counts: dict[str, int] = {}
    other = "parquet" if fmt == "csv" else "csv"
    for name in TABLE_ORDER:
        files = [scratch / f"{c:05d}" / f"table-{name}.parquet" for c in range(n_chunks)]
        frames = [pl.scan_parquet(f) for f in files]
        joined = pl.concat(frames, how="diagonal") if _schemas_differ(files) else pl.concat(frames)
        (out / f"{name}.{other}").unlink(missing_ok=True)
        if fmt == "parquet":
            joined.sink_parquet(out / f"{name}.parquet", compression="zstd", statistics=False)
        else:
            _join_csv(joined, out / f"{name}.csv", encoding)
        counts[name] = sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)
    return counts


def _schemas_differ(files: list[Path]) -> bool:
    first = pl.read_parquet_schema(files[0])
    return any(pl.read_parquet_schema(f) != first for f in files[1:])


def _join_csv(joined: pl.LazyFrame, path: Path, encoding: str) -> None:
    """A CSV file of the joined chunks in `encoding`, written one slice at a time."""
    columns = joined.collect_schema().names()
    total = int(joined.select(pl.len()).collect().item())
    with open(path, "wb") as fh:
        for start in range(0, max(total, 1), CHUNK_PERSONS):
            part = joined.slice(start, CHUNK_PERSONS).collect().select(columns)
            text = part.write_csv(include_header=start == 0)
            if encoding == "utf-8-sig" and start == 0:
                fh.write(b"\xef\xbb\xbf")
            fh.write(text.encode("gbk" if encoding == "gbk" else "utf-8"))
