"""Differential test: every engine writes the same files as the single-process sweep.

Districts of several seeds from `benefits synth` (dirty rows included; UTF-8 and GBK CSV,
Parquet) get extra rows that plant
every situation crossing households (issue 13, item 1): duplicate keys and identity conflicts
far apart in a file, a parent living in another household, parents absent from `persons` whose
deaths and situations decide policy 11, the earliest of several death reports, `death_stop`
for M−1. The partitioned engine runs with 7 partitions and chunks of 100 rows, so households,
parents and duplicates really land in different partitions and chunks. Spark runs in the test
session's shared local session (fixture `spark`, tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from benefits import engines
from benefits.atomic import OutputFolderError
from benefits.chunks import FileInfo, csv_chunks
from benefits.cli import app
from benefits.engines import choose_engine, partitioned, run_engine
from benefits.engines.partitioned import FAIL_PARTITION_ENV, run_partitioned
from benefits.errors import BenefitsError
from benefits.idcard import make_id
from benefits.rulebook import load_pack
from benefits.staging import LOCAL_BUCKETS, SHIPPED_BUCKETS, part_of, stage
from benefits.synth import generate
from benefits.traces import read_person_records

MONTH = "2025-01"
PARTITIONS = 7
CHUNK_ROWS = 100
# the engines compared with `single`
ENGINES: list[str] = ["partitioned", "spark"]
# (seed, format, encoding): UTF-8 CSV, GBK CSV, Parquet
DELIVERIES = [(3, "csv", "utf-8"), (11, "csv", "gbk"), (5, "parquet", "utf-8")]
CONTRACT_FILES = [
    f"{name}.{ext}"
    for name in ("entitlements", "alerts", "quarantine")
    for ext in ("csv", "parquet")
]
# summary entries that may differ between engines
ENGINE_SPECIFIC = {"engine", "run_seconds", "stage_seconds", "out"}


def _read(folder: Path, table: str) -> pl.DataFrame:
    if (folder / f"{table}.parquet").exists():
        return pl.read_parquet(folder / f"{table}.parquet")
    data = (folder / f"{table}.csv").read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = data.decode("gb18030").encode("utf-8")
    return pl.read_csv(data, infer_schema=False)


def _write(folder: Path, table: str, frame: pl.DataFrame) -> None:
    """Write the table back in the delivery's format and encoding."""
    if (folder / f"{table}.parquet").exists():
        frame.write_parquet(folder / f"{table}.parquet")
        return
    text = frame.write_csv()
    try:
        (folder / f"{table}.csv").read_bytes().decode("utf-8")
        (folder / f"{table}.csv").write_text(text, encoding="utf-8")
    except UnicodeDecodeError:
        (folder / f"{table}.csv").write_bytes(text.encode("gb18030"))


def _append(folder: Path, table: str, rows: list[dict], at_start: bool = False) -> None:
    old = _read(folder, table)
    new = pl.DataFrame(rows, schema=dict.fromkeys(old.columns, pl.String))
    _write(folder, table, pl.concat([new, old] if at_start else [old, new]))


def plant(folder: Path) -> dict[str, str]:
    """Add the cross-household situations to a synthetic delivery; returns the planted IDs."""
    persons = _read(folder, "persons")
    born = dt.date(2015, 3, 4)
    child = make_id("330106", born, 901)
    father = make_id("330106", dt.date(1980, 5, 6), 903)  # lives in another household
    mother = make_id("330106", dt.date(1982, 7, 8), 904)  # not in persons at all
    elder = make_id("330106", dt.date(1935, 2, 3), 905)  # died in M-1, paid in M-1
    # an ID ending in X, delivered twice: the second time with a lower-case x
    x_id = next(i for s in range(906, 999) if (i := make_id("330106", dt.date(1990, 1, 2), s))
                .endswith("X"))  # fmt: skip
    x_sex = "M" if int(x_id[16]) % 2 else "F"
    base = {c: None for c in persons.columns}
    common = {"hukou_district": "330106", "hukou_community": "330106001", "hukou_status": "normal"}
    # households chosen so that child and father fall into different partitions
    households = [f"3301069990{i:04d}" for i in range(40)]
    parts = pl.Series(households).to_frame("h").select(part_of(pl.col("h"), PARTITIONS))
    hh_child = households[0]
    hh_father = next(
        h for h, p in zip(households, parts.to_series(), strict=True) if p != parts.item(0, 0)
    )
    first = persons.row(0, named=True)
    rows = [
        {**base, **common, "id_no": child, "name": "赵小明", "sex": "M", "birth_date": str(born),
         "household_no": hh_child, "relation": "head", "father_id_no": father,
         "mother_id_no": mother.lower()},  # a lower-case x would be upper-cased: a ref_id
        {**base, **common, "id_no": father, "name": "赵大", "sex": "M", "birth_date": "1980-05-06",
         "household_no": hh_father, "relation": "head"},
        {**base, **common, "id_no": elder, "name": "钱老", "sex": "M", "birth_date": "1935-02-03",
         "household_no": households[2], "relation": "head"},
        # the first person again, in another household: duplicate key (identity conflict)
        {**first, "household_no": households[3]},
        # and once more with a birth date the ID contradicts: rejected, identity issue too
        {**first, "birth_date": "1901-01-01"},
        {**base, **common, "id_no": x_id, "name": "孙一", "sex": x_sex, "birth_date": "1990-01-02",
         "household_no": households[4], "relation": "head"},
        {**base, **common, "id_no": x_id.lower(), "name": "孙一", "sex": x_sex,
         "birth_date": "1990-01-02", "household_no": households[5], "relation": "head"},
    ]  # fmt: skip
    _append(folder, "persons", rows)
    prev_month = "2024-12"
    # the father's death: a later police report first in the file, the earliest (health) last
    _append(folder, "deaths", [{"id_no": father, "death_date": "2024-06-20", "source": "police"}],
            at_start=True)  # fmt: skip
    _append(
        folder,
        "deaths",
        [
            {"id_no": father, "death_date": "2024-06-02", "source": "health"},
            {"id_no": elder, "death_date": f"{prev_month}-28", "source": "funeral"},
            {"id_no": elder, "death_date": f"{prev_month}-10", "source": "hospital"},  # bad enum
        ],
    )
    _append(
        folder,
        "parent_situations",
        [{"id_no": mother, "situation": "imprisoned", "start_date": "2023-01-01",
          "end_date": None}],
    )  # fmt: skip
    # a duplicate key far from its first occurrence (other chunk), in an ID-keyed table
    pensions = _read(folder, "pensions")
    _append(folder, "pensions", [pensions.row(0, named=True)])
    return {"child": child, "father": father, "mother": mother, "elder": elder,
            "duplicate": first["id_no"], "x_id": x_id}  # fmt: skip


@pytest.fixture(scope="module")
def pack():
    return load_pack()


@pytest.fixture(scope="module", params=DELIVERIES, ids=lambda d: f"{d[0]}-{d[1]}-{d[2]}")
def district(request, tmp_path_factory) -> tuple[Path, dict[str, str], tuple[int, str, str]]:
    seed, fmt, encoding = request.param
    folder = tmp_path_factory.mktemp(f"district-{seed}")
    generate(1500, seed=seed, out=folder, month=MONTH, dirty=0.03, fmt=fmt, encoding=encoding)
    return folder, plant(folder), request.param


@pytest.fixture(scope="module")
def single(district, pack, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    run_engine("single", district[0], MONTH, out, pack=pack, traces="both")
    return out


def test_planted_situations_matter(district, single, pack):
    """The planted rows decide something in the reference run (else the test proves little)."""
    folder, ids, _ = district
    ent = pl.read_csv(single / "entitlements.csv", infer_schema=False)
    alerts = pl.read_csv(single / "alerts.csv", infer_schema=False)
    q = pl.read_csv(single / "quarantine.csv", infer_schema=False)
    paid = ent.filter(pl.col("id_no") == ids["child"])["policy_id"].to_list()
    assert "unsupported_child_allowance" in paid
    stop = alerts.filter((pl.col("id_no") == ids["elder"]) & (pl.col("kind") == "death_stop"))
    assert stop.height
    dups = q.filter((pl.col("code") == "duplicate_key") & (pl.col("table") == "persons"))
    assert ids["x_id"].lower() in dups["id_no"].to_list()  # echoed as given
    assert alerts.filter(pl.col("kind") == "identity_conflict").height
    assert alerts.filter(pl.col("kind") == "discovery_lead").height
    # the child and its father are in different partitions; the mother is not in persons
    persons = _read(folder, "persons")
    pair = persons.filter(pl.col("id_no").is_in([ids["child"], ids["father"]])).select(
        part_of(pl.col("household_no"), PARTITIONS)
    )
    assert pair.n_unique() == 2
    assert ids["mother"] not in persons["id_no"].to_list()


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_matches_single(engine, district, single, pack, tmp_path, request):
    if engine == "spark":
        request.getfixturevalue("spark")  # the shared session: run_engine uses it
    out = tmp_path / "out"
    workers = 2 if district[2][1] == "parquet" else 1  # a pool once; in-process is faster here
    result = run_engine(
        engine, district[0], MONTH, out, pack=pack, partitions=PARTITIONS, workers=workers,
        chunk_rows=CHUNK_ROWS, traces="both",
    )  # fmt: skip
    assert result.summary["engine"]["name"] == engine
    for name in [*CONTRACT_FILES, "traces.jsonl", "traces/rules.parquet"]:
        assert (out / name).read_bytes() == (single / name).read_bytes(), name
    # the columnar traces: one part per partition, each sorted by ID; the same records
    parts = sorted(p.name for p in (out / "traces").glob("part-*.parquet"))
    assert parts == [f"part-{i:05d}.parquet" for i in range(PARTITIONS)]
    for part in parts:
        ids = pl.read_parquet(out / "traces" / part)["id_no"]
        assert ids.is_sorted()
    mine, theirs = (
        pl.scan_parquet(folder / "traces" / "part-*.parquet").collect().sort("id_no", "record")
        for folder in (out, single)
    )
    assert mine.equals(theirs)
    for id_no in mine["id_no"].unique().sort().head(20):
        assert read_person_records(out, id_no) == read_person_records(single, id_no)
    a = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    b = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert list(a) == list(b)
    for key in a:
        if key not in ENGINE_SPECIFIC:
            assert a[key] == b[key], key
    assert b["engine"]["partitions"] == PARTITIONS


SAMPLE = Path(__file__).resolve().parent.parent / "datasets" / "sample"


def test_failed_sweep_leaves_no_finished_folder(pack, tmp_path, monkeypatch):
    """A partition that fails: no output folder, no leftovers; an earlier finished folder
    stays as it was; a rerun starts clean and finishes."""
    out = tmp_path / "runs" / "out"
    out.parent.mkdir()
    monkeypatch.setenv(FAIL_PARTITION_ENV, "3")
    with pytest.raises(RuntimeError, match="failed on purpose"):
        run_partitioned(SAMPLE, MONTH, out, pack=pack, partitions=PARTITIONS, workers=1,
                        chunk_rows=CHUNK_ROWS)  # fmt: skip
    assert not out.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == []
    monkeypatch.delenv(FAIL_PARTITION_ENV)
    run_partitioned(SAMPLE, MONTH, out, pack=pack, partitions=3, workers=1)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setenv(FAIL_PARTITION_ENV, "1")
    with pytest.raises(RuntimeError):
        run_partitioned(SAMPLE, MONTH, out, pack=pack, partitions=3, workers=1)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]
    # a work folder left by a killed run is removed by the next run, which finishes
    (out.parent / ".out.partial-99999").mkdir()
    (out.parent / ".out.partial-99999" / "entitlements.csv").write_text("half")
    monkeypatch.delenv(FAIL_PARTITION_ENV)
    single = tmp_path / "single"
    run_engine("single", SAMPLE, MONTH, single, pack=pack)
    run_partitioned(SAMPLE, MONTH, out, pack=pack, partitions=2, workers=1)
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]
    for name in CONTRACT_FILES:
        assert (out / name).read_bytes() == (single / name).read_bytes()


def test_a_dead_worker_gives_one_clear_error(pack, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv(FAIL_PARTITION_ENV, "kill:1")
    with pytest.raises(BenefitsError, match="worker process of the partitioned engine died"):
        run_partitioned(SAMPLE, MONTH, out, pack=pack, partitions=3, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _child_allocator() -> str:
    """The allocator options a worker's Polars runs with (after its own defaults)."""
    import polars  # noqa: F401 - Polars puts its defaults first when imported

    return os.environ[partitioned.ALLOCATOR_ENV]


def test_workers_keep_freed_memory_unless_told_otherwise(monkeypatch):
    """Worker processes run Polars' allocator keeping freed pages (fewer page faults), after
    whatever the environment sets; BENEFITS_WORKER_MALLOC_CONF replaces that ("" keeps Polars'
    defaults); this process's environment is left as it was."""
    ctx = multiprocessing.get_context("spawn")
    here = os.environ[partitioned.ALLOCATOR_ENV]  # set by Polars when imported
    cases = [(None, partitioned.WORKER_ALLOCATOR), ("", ""), ("thp:never", "thp:never")]
    for mine, tail in cases:
        if mine is not None:
            monkeypatch.setenv(partitioned.WORKER_ALLOCATOR_ENV, mine)
        allocator = partitioned._allocator(partitioned.WORKER_ALLOCATOR)
        with allocator, ProcessPoolExecutor(1, mp_context=ctx) as pool:
            seen = pool.submit(_child_allocator).result()
        assert seen.startswith(here)
        assert seen.endswith(f"{here},{tail}" if tail else here)
        assert os.environ[partitioned.ALLOCATOR_ENV] == here


def test_buckets_are_compressed_only_when_they_travel(pack, tmp_path):
    """The local engine's buckets are plain Parquet (read back from the same disk); the Spark
    engine's, shipped to executors, lz4 — and both read back the same rows."""
    frames = {}
    for compression, codec in ((LOCAL_BUCKETS, "UNCOMPRESSED"), (SHIPPED_BUCKETS, "LZ4")):
        staged = stage(SAMPLE, pack, 3, tmp_path / compression, compression=compression)
        bucket = next(staged.part_dir(0).glob("persons/*.parquet"))
        meta = pq.ParquetFile(bucket).metadata.row_group(0).column(0)
        assert meta.compression == codec
        frames[compression] = [staged.read_part(i)[0]["persons"] for i in range(3)]
    for a, b in zip(frames[LOCAL_BUCKETS], frames[SHIPPED_BUCKETS], strict=True):
        assert a.equals(b)


def test_output_folder_with_other_files_is_refused(pack, tmp_path):
    """Replacing a folder that holds files a sweep did not write would lose them."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="choose a new or empty output folder"):
        run_engine("single", SAMPLE, MONTH, out, pack=pack)
    assert (out / "notes.txt").read_text() == "mine"


def test_auto_engine_follows_the_persons_file(monkeypatch, tmp_path):
    assert choose_engine("auto", SAMPLE) == "single"
    assert choose_engine("spark", SAMPLE) == "spark"  # only when asked for
    monkeypatch.setattr(engines, "AUTO_PARTITIONED_PERSONS", 1_000)
    assert choose_engine("auto", SAMPLE) == "partitioned"
    with pytest.raises(BenefitsError, match="unknown engine 'fast'"):
        choose_engine("fast", SAMPLE)


def test_cli_runs_the_partitioned_engine(tmp_path):
    out = tmp_path / "out"
    args = ["sweep", "--data", str(SAMPLE), "--month", MONTH, "--out", str(out), "-q",
            "--engine", "partitioned", "--partitions", "3", "--workers", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    engine = summary["engine"]
    assert (engine["name"], engine["partitions"], engine["workers"]) == ("partitioned", 3, 1)
    assert engine["partition_seconds"]["total"] > 0
    assert sorted(p.name for p in (out / "traces").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet", "rules.parquet"
    ]  # fmt: skip
    single = tmp_path / "single"
    run_engine("single", SAMPLE, MONTH, single, pack=load_pack())  # columnar traces only
    mine, theirs = (
        pl.scan_parquet(folder / "traces" / "part-*.parquet").collect().sort("id_no", "record")
        for folder in (out, single)
    )
    assert mine.equals(theirs)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    refused = CliRunner().invoke(app, [*args[:6], str(tmp_path / "mine"), *args[7:]])
    assert refused.exit_code == 2
    assert "choose a new or empty output folder" in refused.output
    bad = CliRunner().invoke(app, [*args[:-4], "--engine", "fast"])
    assert bad.exit_code == 2 and "unknown engine 'fast'" in bad.output


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_chunks_are_the_whole_files_rows(tmp_path, encoding):
    """Cut anywhere, the chunks hold the rows of the whole file: a quoted cell with a newline
    or a comma, CRLF line ends, an empty record, GBK names."""
    rows = ['"张,三",1', '"李\n四",2', "", "王五,3", '"赵""六",4'] * 40
    text = "name,n\r\n" + "\r\n".join(rows) + "\r\n"
    data = text.encode("gb18030" if encoding == "gbk" else "utf-8")
    if encoding == "utf-8-sig":
        data = b"\xef\xbb\xbf" + data
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    info = FileInfo.of(path)
    assert info.encoding == encoding
    whole = pl.read_csv(text.encode(), infer_schema=False)
    for size in (7, 16, 64, 1000):
        chunks = list(csv_chunks(path, info, size))
        assert pl.concat(chunks).equals(whole), size
