"""Bad deliveries to `benefits sweep`: each either stops the sweep with exit code 2 and exactly
one line on stderr naming the file, or quarantines rows whose counts reconcile
(read = accepted + quarantined) — never a traceback.

Each case starts from a clean synthetic delivery (one per session) and breaks one file.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from reliability_helpers import MONTH, Figures, benefits

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="session")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small clean delivery (no dirty rows), made once."""
    folder = tmp_path_factory.mktemp("clean") / "extracts"
    proc = benefits("synth", "--persons", "400", "--seed", "5", "--out", str(folder),
                    "--dirty", "0")  # fmt: skip
    assert proc.returncode == 0, proc.output
    return folder


def _csv(folder: Path, table: str) -> bytes:
    return (folder / f"{table}.csv").read_bytes()


def _replace(folder: Path, table: str, name: str, data: bytes) -> None:
    (folder / f"{table}.csv").unlink(missing_ok=True)
    (folder / name).write_bytes(data)


def _parquet(folder: Path, table: str, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    frame = change(pl.read_csv(folder / f"{table}.csv", infer_schema=False))
    (folder / f"{table}.csv").unlink()
    frame.write_parquet(folder / f"{table}.parquet")


def _cut_inside_quote(f: Path) -> None:
    data = _csv(f, "persons")
    _replace(f, "persons", "persons.csv", data[: data.index(b"\n", 4000) + 1] + b'"3301061950')


def _utf16(f: Path) -> None:
    _replace(f, "persons", "persons.csv", _csv(f, "persons").decode().encode("utf-16"))


def _utf16_without_bom(f: Path) -> None:
    _replace(f, "bank_accounts", "bank_accounts.csv",
             _csv(f, "bank_accounts").decode().encode("utf-16-le"))  # fmt: skip


REFUSED: dict[str, tuple[str, Callable[[Path], None], str]] = {
    # case: (file named in the message, how the delivery is broken, words of the message)
    "truncated inside a quoted field": ("persons.csv", _cut_inside_quote, "not a readable CSV"),
    "binary garbage": (
        "persons.csv",
        lambda f: _replace(f, "persons", "persons.csv", random.Random(1).randbytes(20000)),
        "",
    ),
    "binary with NUL bytes": (
        "deaths.csv",
        lambda f: _replace(f, "deaths", "deaths.csv", b"\x00\x01\x02\x03" * 5000),
        "binary data",
    ),
    "UTF-16 with a byte order mark": (
        "persons.csv",
        lambda f: _utf16(f),
        "UTF-16",
    ),
    "UTF-16 without a byte order mark": ("bank_accounts.csv", _utf16_without_bom, "UTF-16"),
    "a Parquet file that is really CSV": (
        "persons.parquet",
        lambda f: _replace(f, "persons", "persons.parquet", _csv(f, "persons")),
        "not a Parquet file",
    ),
    "an empty persons file": (
        "persons.csv", lambda f: _replace(f, "persons", "persons.csv", b""), "empty",
    ),
    "an empty persons Parquet file": (
        "persons.parquet", lambda f: _replace(f, "persons", "persons.parquet", b""), "empty",
    ),
    "persons with a header only": (
        "persons.csv",
        lambda f: _replace(f, "persons", "persons.csv", _csv(f, "persons").split(b"\n")[0] + b"\n"),
        "no data rows",
    ),
    "a Parquet list column": (
        "persons.parquet",
        lambda f: _parquet(f, "persons", lambda d: d.with_columns(pl.concat_list("household_no"))),
        "column 'household_no'",
    ),
    "a Parquet struct column": (
        "persons.parquet",
        lambda f: _parquet(f, "persons", lambda d: d.with_columns(pl.struct("name").alias("name"))),
        "column 'name'",
    ),
    "a Parquet duration column": (
        "deaths.parquet",
        lambda f: _parquet(
            f, "deaths", lambda d: d.with_columns(pl.duration(days=pl.lit(3)).alias("death_date"))
        ),
        "column 'death_date'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_unusable_delivery_exits_2_with_one_line(
    clean: Path, tmp_path: Path, case: str, figures: Figures
) -> None:
    file, breaks, words = REFUSED[case]
    folder = tmp_path / "extracts"
    shutil.copytree(clean, folder)
    breaks(folder)
    proc = figures.run(benefits("sweep", "--data", str(folder), "--month", MONTH, "--out",
                                str(tmp_path / "out"), "--quiet"))  # fmt: skip
    assert "Traceback" not in proc.output, proc.output
    assert proc.returncode == 2, proc.output
    figures.refused += 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {file}: "), lines[0]
    assert words in lines[0]
    assert not (tmp_path / "out" / "summary.json").exists()


def _sweep_ok(folder: Path, out: Path, figures: Figures) -> tuple[dict, pl.DataFrame]:
    proc = figures.run(benefits("sweep", "--data", str(folder), "--month", MONTH, "--out", str(out),
                    "--quiet", "--no-traces"))  # fmt: skip
    assert "Traceback" not in proc.output, proc.output
    assert proc.returncode == 0, proc.output
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    quarantine = pl.read_csv(out / "quarantine.csv", infer_schema=False)
    for name, t in summary["tables"].items():  # every table reconciles with the quarantine
        assert t["read"] == t["accepted"] + t["quarantined"], name
        assert quarantine.filter(pl.col("table") == name).height == t["quarantined"], name
    return summary, quarantine


def test_file_cut_mid_row_quarantines_the_broken_row(
    clean: Path, tmp_path: Path, figures: Figures
) -> None:
    folder = tmp_path / "extracts"
    shutil.copytree(clean, folder)
    data = _csv(folder, "persons")
    rows = data.count(b"\n") - 1
    cut = data[: data.rindex(b"\n", 0, len(data) - 1) + 1 + 25]  # 25 bytes of the last row
    (folder / "persons.csv").write_bytes(cut)
    summary, q = _sweep_ok(folder, tmp_path / "out", figures)
    assert summary["tables"]["persons"]["read"] == rows
    last = q.filter((pl.col("table") == "persons") & (pl.col("row") == str(rows)))
    assert last.height == 1 and last["code"][0] in ("required", "id_format", "id_length")


def test_ten_megabyte_cells_quarantine_their_rows(
    clean: Path, tmp_path: Path, figures: Figures
) -> None:
    folder = tmp_path / "extracts"
    shutil.copytree(clean, folder)
    with open(folder / "persons.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    rows[3][header.index("name")] = "张" * TEN_MB  # row 3: a 10 MB name
    rows[5][header.index("id_no")] = "3" * TEN_MB  # row 5: a 10 MB ID
    with open(folder / "persons.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    out = tmp_path / "out"
    _, q = _sweep_ok(folder, out, figures)
    big = q.filter(pl.col("code") == "cell_too_long")
    assert big.select("table", "row", "field").rows() == [
        ("persons", "3", "name"), ("persons", "5", "id_no"),
    ]  # fmt: skip
    assert "10,485,760 characters" in big["reason"][0]
    # Neither the quarantine nor any output carries the 10 MB values along.
    for f in out.iterdir():
        assert f.stat().st_size < 2 * 1024 * 1024, f.name


def test_wrong_scalar_types_in_parquet_are_quarantined(
    clean: Path, tmp_path: Path, figures: Figures
) -> None:
    """A date delivered as an integer (20240101) is a bad date in every row, not a crash; an
    extra column of a list type is ignored like any extra column."""
    folder = tmp_path / "extracts"
    shutil.copytree(clean, folder)
    deaths = pl.read_csv(folder / "deaths.csv", infer_schema=False)
    _parquet(folder, "deaths", lambda d: d.with_columns(
        pl.col("death_date").str.replace_all("-", "").cast(pl.Int64),
        pl.concat_list("source").alias("tags")))  # fmt: skip
    summary, q = _sweep_ok(folder, tmp_path / "out", figures)
    t = summary["tables"]["deaths"]
    assert (t["read"], t["quarantined"]) == (deaths.height, deaths.height)
    assert t["extra_columns"] == ["tags"]
    assert set(q.filter(pl.col("table") == "deaths")["code"]) == {"bad_date"}


@pytest.mark.parametrize("content", ["header only", "empty"])
def test_other_table_empty_or_header_only_is_an_empty_table(
    clean: Path, tmp_path: Path, content: str, figures: Figures
) -> None:
    folder = tmp_path / "extracts"
    shutil.copytree(clean, folder)
    data = _csv(folder, "deaths").split(b"\n")[0] + b"\n" if content == "header only" else b""
    (folder / "deaths.csv").write_bytes(data)
    summary, _ = _sweep_ok(folder, tmp_path / "out", figures)
    t = summary["tables"]["deaths"]
    assert (t["read"], t["accepted"], t["quarantined"]) == (0, 0, 0)
    if content == "empty":
        assert "empty" in t["note"]


def test_output_folder_that_is_a_file_exits_2_with_one_line(
    clean: Path, tmp_path: Path, figures: Figures
) -> None:
    out = tmp_path / "out"
    out.write_text("not a folder", "utf-8")
    proc = figures.run(benefits("sweep", "--data", str(clean), "--month", MONTH, "--out",
                                str(out), "--quiet"))  # fmt: skip
    assert "Traceback" not in proc.output, proc.output
    assert proc.returncode == 2
    figures.refused += 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: cannot write the outputs to ") and "out" in line

