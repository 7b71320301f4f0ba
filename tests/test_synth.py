"""The synthetic district generator (`benefits synth`): deterministic, realistic, complete, and
dirty in every way the data contract names (and only when asked)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from benefits.idcard import ID_BIRTH_DATE, ID_CHECK_DIGIT, is_valid, problem
from benefits.schema import TABLE_ORDER, TABLES
from benefits.synth import generate

MONTH = "2025-03"
M_START = dt.date(2025, 3, 1)
FULL_WIDTH = re.compile("[０-９]")


def read_all(folder: Path) -> dict[str, pl.DataFrame]:
    """Every CSV table of a delivery, as text exactly as written (no trimming)."""
    return {t: pl.read_csv(folder / f"{t}.csv", infer_schema=False) for t in TABLE_ORDER}


def non_empty(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(~pl.all_horizontal(pl.all().is_null()))


@pytest.fixture(scope="module")
def clean(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, int], dict[str, pl.DataFrame]]:
    out = tmp_path_factory.mktemp("clean")
    counts = generate(5000, seed=11, out=out, month=MONTH, dirty=0)
    return counts, read_all(out)


@pytest.fixture(scope="module")
def dirty(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, int], dict[str, pl.DataFrame]]:
    out = tmp_path_factory.mktemp("dirty")
    counts = generate(3000, seed=5, out=out, month=MONTH, dirty=0.02)
    return counts, read_all(out)


# ---------------------------------------------------------------------------- determinism


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet"):
        a, b, c = tmp_path / f"a{fmt}", tmp_path / f"b{fmt}", tmp_path / f"c{fmt}"
        generate(2000, seed=3, out=a, dirty=0.02, fmt=fmt)
        generate(2000, seed=3, out=b, dirty=0.02, fmt=fmt)
        generate(2000, seed=4, out=c, dirty=0.02, fmt=fmt)
        names = sorted(p.name for p in a.iterdir())
        assert names == sorted(p.name for p in b.iterdir())
        for name in names:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        assert (a / f"persons.{fmt}").read_bytes() != (c / f"persons.{fmt}").read_bytes()


# ------------------------------------------------------------------------------ contents


def test_every_table_is_written_with_the_counted_rows(clean) -> None:
    counts, tables = clean
    assert list(counts) == list(TABLE_ORDER)
    assert counts["persons"] == 5000
    for name, df in tables.items():
        assert df.height == counts[name] > 0, name
        assert set(df.columns) == set(TABLES[name].names), name


def test_column_order_is_shuffled_for_some_tables(clean) -> None:
    _, tables = clean
    shuffled = [n for n, df in tables.items() if tuple(df.columns) != TABLES[n].names]
    assert shuffled


def test_proportions_look_like_a_town(clean) -> None:
    _, t = clean
    persons = t["persons"].with_columns(birth=pl.col("birth_date").str.to_date())
    n = persons.height
    ref = M_START - dt.timedelta(days=1)
    before = (
        pl.col("birth").dt.month() * 100 + pl.col("birth").dt.day()
    ) > ref.month * 100 + ref.day
    age = ref.year - pl.col("birth").dt.year() - before.cast(pl.Int32)
    ages = persons.select(age.alias("age"))["age"]

    def share(values: pl.Series | int) -> float:
        return (values if isinstance(values, int) else values.sum()) / n

    assert 0.03 <= share(ages >= 80) <= 0.07
    assert (ages >= 90).sum() > 0 and (ages >= 100).sum() > 0
    assert 0.10 <= share(ages < 18) <= 0.28
    assert 2.2 <= n / persons["household_no"].n_unique() <= 2.8
    away = persons.filter(
        (pl.col("hukou_district") != "330106") | (pl.col("hukou_status") != "normal")
    )
    assert 0.02 <= share(away.height) <= 0.10
    status = t["assistance"].group_by("assistance_type").agg(pl.col("id_no").n_unique())
    by_type = dict(zip(status["assistance_type"], status["id_no"], strict=True))
    assert 0.01 <= by_type["dibao"] / n <= 0.04
    assert 0.004 <= by_type["dibian"] / n <= 0.025
    assert 0.0005 <= by_type["tekun"] / n <= 0.012
    assert 0.035 <= t["disability_certificates"]["id_no"].n_unique() / n <= 0.09
    assert 0.6 <= t["bank_accounts"]["id_no"].n_unique() / n <= 0.97
    assert set(persons["relation"]) == set(TABLES["persons"].by_name["relation"].values)
    assert persons["name"].str.contains(r"^[\u4e00-\u9fff]{2,4}$").all()
    assert persons["hukou_community"].str.starts_with("330106").mean() > 0.9


def test_facts_sit_on_the_edges_of_the_month(clean) -> None:
    """Dates around M that the handbook's edge cases need are all present."""
    _, t = clean
    start, prev = M_START.isoformat(), "2025-02"
    soon = (M_START + dt.timedelta(days=30)).isoformat()
    certs = t["disability_certificates"]
    assert (certs["expiry_date"] == start).any() and (certs["issue_date"] == start).any()
    assert certs["expiry_date"].is_between(start, "2025-05-30").sum() > 2
    assert (certs["status"] == "cancelled").any() and (certs["expiry_date"] < start).any()
    assert certs["id_no"].is_duplicated().any()
    assert set(certs["grade"]) == {"1", "2", "3", "4"}
    deaths = t["deaths"]
    assert (
        deaths["death_date"].str.starts_with(prev).any() and (deaths["death_date"] == start).any()
    )
    assert deaths["id_no"].is_duplicated().any()
    assert (~deaths["id_no"].is_in(t["persons"]["id_no"].implode())).any()
    assert len(set(deaths["source"])) == 3
    assist = t["assistance"]
    assert (assist["approved_date"] >= start).any() and (
        assist["approved_date"] < start
    ).mean() > 0.8
    assert (assist["next_review_date"] < start).any() and assist["next_review_date"].is_between(
        start, soon
    ).any()
    finance = t["household_finance"]
    assert (finance["assessed_on"] >= start).any() and finance["household_no"].is_duplicated().any()
    assert (finance["per_capita_income"] == "1301.00").any()
    moved = t["persons"].filter(pl.col("hukou_status") == "moved_out")["moved_out_date"]
    assert moved.str.starts_with(prev).any() and moved.is_null().any()
    assert (t["care_assessments"]["assessed_on"] < "2023-03-01").any()
    assert t["care_assessments"]["id_no"].is_duplicated().any()
    assert (t["parent_situations"]["end_date"].is_null()).any()
    assert (t["pensions"]["contribution_years"].str.contains(r"\.")).any()
    months = set(t["medical_expenses"]["month"])
    assert {"2024-02", "2025-03"} <= months and "2024-01" not in months
    persons = t["persons"]
    assert persons["birth_date"].str.ends_with("-02-29").any()
    assert persons["birth_date"].str.ends_with("-03-01").any()
    assert (persons["father_id_no"].is_null() & persons["mother_id_no"].is_not_null()).any()
    assert (~persons["father_id_no"].drop_nulls().is_in(persons["id_no"].implode())).any()


# --------------------------------------------------------------------------- clean data


def test_clean_delivery_has_no_bad_value(clean) -> None:
    _, t = clean
    for name, df in t.items():
        table = TABLES[name]
        assert df.height == non_empty(df).height, f"{name}: empty record"
        for col in table.columns:
            s = df[col.name]
            if col.required:
                assert s.null_count() == 0, (name, col.name)
            v = s.drop_nulls()
            assert (v == v.str.strip_chars()).all(), (name, col.name)
            assert not v.str.contains(FULL_WIDTH.pattern).any(), (name, col.name)
            if col.kind == "id":
                assert all(is_valid(x) and x == x.upper() for x in v), (name, col.name)
            if col.kind == "date":
                assert v.str.to_date("%Y-%m-%d", strict=False).null_count() == 0, (name, col.name)
            if col.kind == "enum":
                assert v.is_in(list(col.values)).all(), (name, col.name)
            if col.kind == "money":
                assert v.str.contains(r"^\d+(\.\d{1,2})?$").all(), (name, col.name)
            if col.kind == "grade":
                assert v.is_in(["1", "2", "3", "4"]).all()
            if col.kind == "bool":
                assert v.is_in(["true", "false"]).all()
        for key in [table.key] if table.key else []:
            assert not df.select(pl.struct(key).is_duplicated().any()).item(), name
    persons = t["persons"]
    assert (
        persons["birth_date"].str.replace_all("-", "") == persons["id_no"].str.slice(6, 8)
    ).all()
    odd = persons["id_no"].str.slice(16, 1).cast(pl.Int32) % 2 == 1
    assert ((persons["sex"] == "M") == odd).all()


# --------------------------------------------------------------------------- dirty data


def bad_kinds(tables: dict[str, pl.DataFrame]) -> set[str]:
    """Which kinds of bad value (and valid oddity) a delivery shows."""
    found: set[str] = set()
    for name, df in tables.items():
        table = TABLES[name]
        if set(df.columns) - set(table.names):
            found.add("extra_column")
        rows = non_empty(df)
        if rows.height < df.height:
            found.add("empty_record")
        for col in table.columns:
            v = rows[col.name]
            text = v.drop_nulls()
            if col.required and v.null_count():
                found.add("empty_required")
            if (text != text.str.strip_chars()).any():
                found.add("spaces")
            if text.str.contains(FULL_WIDTH.pattern).any():
                found.add("full_width")
            if col.kind == "id":
                ids = [x for x in text.str.strip_chars() if not FULL_WIDTH.search(x)]
                if any(len(x) != 18 for x in ids):
                    found.add("id_length")
                if any(problem(x) == ID_CHECK_DIGIT for x in ids):
                    found.add("id_check_digit")
                if any(problem(x) == ID_BIRTH_DATE for x in ids):
                    found.add("id_birth_date")
                if any(x.endswith("x") and is_valid(x) for x in ids):
                    found.add("lower_x")
            if col.kind == "date":
                d = text.str.strip_chars()
                if (
                    d.str.contains(r"^\d{4}-\d{2}-\d{2}$") & d.str.to_date(strict=False).is_null()
                ).any():
                    found.add("impossible_date")
                if d.str.contains("/").any() or d.str.contains(r"^\d{8}$").any():
                    found.add("date_format")
            if col.kind == "enum":
                e = text.str.strip_chars()
                allowed = list(col.values)
                if (~e.is_in(allowed) & e.str.to_lowercase().is_in(allowed)).any() or (
                    ~e.is_in(allowed) & e.str.to_uppercase().is_in(allowed)
                ).any():
                    found.add("enum_case")
                if (~e.str.to_lowercase().is_in([a.lower() for a in allowed])).any():
                    found.add("enum_unknown")
            if col.kind in ("money", "number") and text.str.starts_with("-").any():
                found.add("negative")
            if col.kind == "money" and text.str.contains(r"\.\d{3,}$").any():
                found.add("three_decimals")
            if col.kind == "grade" and text.is_in(["0", "5"]).any():
                found.add("grade_out_of_range")
            if col.kind == "bool":
                b = text.str.strip_chars()
                if b.is_in(["1", "0", "TRUE", "FALSE", "True", "False"]).any():
                    found.add("bool_forms")
                if (~b.str.to_lowercase().is_in(["true", "false", "1", "0"])).any():
                    found.add("bool_unknown")
        if table.key:
            key = rows.select(table.key).with_columns(pl.all().str.strip_chars())
            if key.drop_nulls().is_duplicated().any():
                found.add(f"duplicate_{name}")
    if "persons" not in tables:
        return found
    persons = non_empty(tables["persons"]).with_columns(pl.all().str.strip_chars())
    ok = persons.filter(
        pl.col("id_no").map_elements(is_valid, return_dtype=pl.Boolean)
        & pl.col("birth_date").str.to_date(strict=False).is_not_null()
        & pl.col("sex").is_in(["M", "F"])
    )
    if (ok["birth_date"].str.replace_all("-", "") != ok["id_no"].str.slice(6, 8)).any():
        found.add("birth_date_disagrees")
    odd = ok["id_no"].str.slice(16, 1).cast(pl.Int32) % 2 == 1
    if ((ok["sex"] == "M") != odd).any():
        found.add("sex_disagrees")
    return found


EVERY_KIND = {
    "id_length",
    "id_check_digit",
    "id_birth_date",
    "lower_x",
    "full_width",
    "birth_date_disagrees",
    "sex_disagrees",
    "empty_required",
    "impossible_date",
    "date_format",
    "enum_unknown",
    "enum_case",
    "negative",
    "three_decimals",
    "grade_out_of_range",
    "bool_unknown",
    "duplicate_persons",
    "duplicate_disability_certificates",
    "duplicate_assistance",
    "duplicate_medical_expenses",
    "empty_record",
    "extra_column",
    "spaces",
    "bool_forms",
}


def test_dirty_delivery_shows_every_kind_of_bad_value(dirty) -> None:
    counts, tables = dirty
    assert counts["persons"] > 3000  # duplicated rows and empty records come on top
    assert bad_kinds(tables) >= EVERY_KIND


def test_clean_delivery_shows_none(clean) -> None:
    _, tables = clean
    assert bad_kinds(tables) == set()


def test_dirt_is_spread_over_every_table(dirty) -> None:
    _, tables = dirty
    valid_oddities = {"empty_record", "extra_column", "spaces", "lower_x", "bool_forms"}
    for name, df in tables.items():
        kinds = bad_kinds({name: df})
        assert "empty_record" in kinds, name
        assert kinds - valid_oddities, name


# ------------------------------------------------------------------- formats and encodings


def test_gbk_and_bom_encodings(tmp_path: Path) -> None:
    generate(1500, seed=2, out=tmp_path / "gbk", encoding="gbk", dirty=0.02)
    raw = (tmp_path / "gbk" / "persons.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    df = pl.read_csv(text.encode("utf-8"), infer_schema=False)
    assert df["name"].drop_nulls().str.contains(r"[\u4e00-\u9fff]").all()
    generate(300, seed=2, out=tmp_path / "bom", encoding="utf-8-sig", dirty=0)
    assert (tmp_path / "bom" / "persons.csv").read_bytes().startswith(b"\xef\xbb\xbfid_no,")


def test_parquet_is_readable_and_replaces_csv(tmp_path: Path) -> None:
    generate(300, seed=2, out=tmp_path, dirty=0)
    counts = generate(1500, seed=2, out=tmp_path, fmt="parquet", dirty=0.02)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.parquet" for t in TABLE_ORDER)
    for name in TABLE_ORDER:
        df = pl.read_parquet(tmp_path / f"{name}.parquet")
        assert df.height == counts[name]
        assert set(TABLES[name].names) <= set(df.columns)
        assert all(dtype == pl.String for dtype in df.dtypes)


def test_tiny_district_and_bad_arguments(tmp_path: Path) -> None:
    counts = generate(10, seed=1, out=tmp_path, dirty=0)
    assert counts["persons"] == 10
    with pytest.raises(ValueError):
        generate(10, seed=1, out=tmp_path, fmt="xlsx")
    with pytest.raises(ValueError):
        generate(10, seed=1, out=tmp_path, encoding="latin-1")
