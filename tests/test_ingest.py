"""Ingest: encodings, Parquet, every kind of bad value, row numbers, reconciliation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from benefits.errors import IngestError
from benefits.ingest import load_extracts
from tests.conftest import bank, person, pid, write_table

HEADER = (
    "id_no,name,sex,birth_date,household_no,relation,hukou_district,hukou_community,hukou_status"
)


def _persons_csv(folder: Path, lines: list[str], encoding: str = "utf-8", bom: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    data = "\n".join([HEADER, *lines]) + "\n"
    raw = data.encode(encoding)
    if bom:
        raw = b"\xef\xbb\xbf" + raw
    (folder / "persons.csv").write_bytes(raw)


def _line(birth: str = "1950-03-04", seq: int = 3, **over: str) -> str:
    row = person(birth, seq, name="王小明")
    row.update(over)
    return ",".join(row[c] for c in HEADER.split(","))


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("gbk", False)])
def test_csv_encodings_are_detected(tmp_path: Path, encoding: str, bom: bool) -> None:
    _persons_csv(tmp_path, [_line()], encoding, bom)
    ex = load_extracts(tmp_path)
    persons = ex.frame("persons")
    assert persons["name"].to_list() == ["王小明"]
    assert ex.tables["persons"].encoding == ("utf-8-sig" if bom else encoding)


def test_parquet_with_typed_columns_matches_csv(tmp_path: Path) -> None:
    row = person("1950-03-04", 3)
    frame = pl.DataFrame([row]).with_columns(pl.col("birth_date").str.to_date())
    frame.write_parquet(tmp_path / "persons.parquet")
    pl.DataFrame(
        {
            "household_no": ["H1"],
            "per_capita_income": [459.1],
            "per_capita_assets": [12],
            "assessed_on": [dt.date(2024, 1, 1)],
        },
    ).write_parquet(tmp_path / "household_finance.parquet")
    pl.DataFrame(
        {"id_no": [row["id_no"]], "month": [dt.date(2024, 5, 1)], "out_of_pocket": [1200]}
    ).write_parquet(tmp_path / "medical_expenses.parquet")
    ex = load_extracts(tmp_path)
    assert ex.frame("persons")["birth_date"].cast(pl.String).to_list() == ["1950-03-04"]
    assert ex.frame("medical_expenses")["month"].to_list() == ["2024-05"]
    assert ex.frame("medical_expenses")["out_of_pocket"].to_list() == [120000]
    fin = ex.frame("household_finance")
    assert fin["per_capita_income"].to_list() == [45910]  # fen
    assert fin["per_capita_assets"].to_list() == [1200]


def test_both_csv_and_parquet_stop_the_sweep(tmp_path: Path) -> None:
    write_table(tmp_path, "persons", [person("1950-03-04", 3)])
    pl.DataFrame([person("1950-03-04", 3)]).write_parquet(tmp_path / "persons.parquet")
    with pytest.raises(IngestError, match=r"persons\.csv and persons\.parquet"):
        load_extracts(tmp_path)


def test_missing_required_persons_column_stops_with_file_and_column(tmp_path: Path) -> None:
    row = person("1950-03-04", 3)
    del row["hukou_status"]
    write_table(tmp_path, "persons", [row])
    with pytest.raises(IngestError, match=r"persons\.csv.*'hukou_status'"):
        load_extracts(tmp_path)


def test_missing_required_column_rejects_other_table_and_reconciles(tmp_path: Path) -> None:
    p = person("1950-03-04", 3)
    write_table(tmp_path, "persons", [p])
    write_table(tmp_path, "deaths", [{"id_no": p["id_no"], "death_date": "2024-01-01"}] * 2)
    ex = load_extracts(tmp_path)
    deaths = ex.tables["deaths"]
    assert "source" in (deaths.error or "")
    assert deaths.accepted == 0
    assert deaths.read == deaths.quarantined == 2
    q = ex.quarantine.filter(pl.col("table") == "deaths")
    assert q["field"].unique().to_list() == ["source"]


def test_every_kind_of_bad_value_is_quarantined_with_row_and_field(tmp_path: Path) -> None:
    good = pid("1950-03-04", 3)
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    lines = [
        _line(),  # 1 ok
        _line(id_no=good[:-2]),  # 2 wrong length
        _line(id_no=bad_check),  # 3 check digit
        _line(id_no="330106" + "19501332" + "0031"),  # 4 impossible birth date
        _line("1960-01-01", 5, id_no=pid("1960-01-01", 5).lower()),  # 5 lower-case x ok
        _line("1961-01-01", 7, birth_date="1961-01-02"),  # 6 birth date mismatch
        _line("1962-01-01", 9, sex="F"),  # 7 sex mismatch
        _line("1963-01-01", 11, name=""),  # 8 required empty
        _line("1964-01-01", 13, relation="Head"),  # 9 enum case
        _line("1965-01-01", 15, hukou_district="33010６"),  # 10 full-width digit
        ",,,,,,,,",  # 11 all empty: skipped, still numbered
        _line("1966-01-01", 17, birth_date="1966/01/01"),  # 12 bad date format
        _line(),  # 13 duplicate of row 1
        _line("1967-01-01", 19, name="  李四  "),  # 14 trimmed, ok
    ]
    _persons_csv(tmp_path, lines)
    ex = load_extracts(tmp_path)
    q = {r["row"]: r for r in ex.quarantine.iter_rows(named=True)}
    expected = {
        2: ("id_no", "id_length"),
        3: ("id_no", "id_check_digit"),
        4: ("id_no", "id_birth_date"),
        6: ("birth_date", "birth_date_mismatch"),
        7: ("sex", "sex_mismatch"),
        8: ("name", "required"),
        9: ("relation", "bad_enum"),
        10: ("hukou_district", "full_width_digit"),
        12: ("birth_date", "bad_date"),
        13: ("id_no", "duplicate_key"),
    }
    assert {row: (q[row]["field"], q[row]["code"]) for row in q} == expected
    t = ex.tables["persons"]
    assert (t.read, t.accepted, t.quarantined, t.skipped_empty) == (13, 3, 10, 1)
    accepted = ex.frame("persons")
    assert accepted["_row"].to_list() == [1, 5, 14]
    assert accepted["id_no"][1].endswith(pid("1960-01-01", 5)[-1].upper())
    assert accepted["name"][2] == "李四"
    # identity problems are flagged for the identity_conflict alert
    identity = ex.quarantine.filter(pl.col("identity_issue").is_not_null())["row"].to_list()
    assert sorted(identity) == [2, 3, 4, 6, 7, 13]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("-1", "negative_money"),
        ("1.234", "money_precision"),
        ("1e3", "bad_money"),
        ("１00", "full_width_digit"),
        ("", "required"),
    ],
)
def test_money_checks(tmp_path: Path, value: str, code: str) -> None:
    write_table(tmp_path, "persons", [person("1950-03-04", 3)])
    write_table(
        tmp_path,
        "household_finance",
        [
            {
                "household_no": "H1",
                "per_capita_income": "800.5",
                "per_capita_assets": "0",
                "assessed_on": "2024-01-01",
            },
            {
                "household_no": "H1",
                "per_capita_income": value,
                "per_capita_assets": "0",
                "assessed_on": "2024-01-01",
            },
        ],
    )
    ex = load_extracts(tmp_path)
    assert ex.frame("household_finance")["per_capita_income"].to_list() == [80050]
    q = ex.quarantine.filter(pl.col("table") == "household_finance")
    assert q.select("row", "field", "code").rows() == [(2, "per_capita_income", code)]


@pytest.mark.parametrize(
    ("value", "fen", "code"),
    [
        ("-0", 0, None),
        ("-0.0", 0, None),
        ("-0.00", 0, None),
        (" -0.00 ", 0, None),
        ("-00", 0, None),
        ("-0.01", None, "negative_money"),
        ("-0.000", None, "money_precision"),
        ("-0.", None, "bad_money"),
        ("-", None, "negative_money"),
    ],
)
def test_minus_zero_is_zero(tmp_path: Path, value: str, fen: int | None, code: str) -> None:
    """`-0`, `-0.0`, `-0.00` are zero (data contract); a real negative is still quarantined."""
    write_table(tmp_path, "persons", [person("1950-03-04", 3)])
    row = {"household_no": "H1", "per_capita_income": value, "per_capita_assets": "-0",
           "assessed_on": "2024-01-01"}  # fmt: skip
    write_table(tmp_path, "household_finance", [row])
    ex = load_extracts(tmp_path)
    t = ex.tables["household_finance"]
    q = ex.quarantine.filter(pl.col("table") == "household_finance")
    assert t.read == t.accepted + t.quarantined == 1
    if code is None:
        assert q.height == 0
        assert ex.frame("household_finance").select("per_capita_income", "per_capita_assets").row(
            0
        ) == (fen, 0)
    else:
        assert q.select("field", "code").rows() == [("per_capita_income", code)]
        assert value.strip() in q["reason"][0]


def test_minus_zero_from_parquet_floats(tmp_path: Path) -> None:
    """A Parquet float column holding -0.0 is zero too."""
    write_table(tmp_path, "persons", [person("1950-03-04", 3)])
    pl.DataFrame(
        {"household_no": ["H1", "H2"], "per_capita_income": [-0.0, -5.0],
         "per_capita_assets": [0.0, 1.5], "assessed_on": [dt.date(2024, 1, 1)] * 2}
    ).write_parquet(tmp_path / "household_finance.parquet")  # fmt: skip
    ex = load_extracts(tmp_path)
    assert ex.frame("household_finance")["per_capita_income"].to_list() == [0]
    q = ex.quarantine.filter(pl.col("table") == "household_finance")
    assert q.select("row", "code").rows() == [(2, "negative_money")]


def test_booleans_grades_and_keys(tmp_path: Path) -> None:
    p = person("1950-03-04", 3)
    write_table(tmp_path, "persons", [p])
    write_table(
        tmp_path,
        "care_assessments",
        [
            {
                "id_no": p["id_no"],
                "care_level": "full",
                "assessed_on": "2024-01-01",
                "institution_resident": v,
            }
            for v in ("TRUE", "0", "yes")
        ],
    )
    cert = {
        "id_no": p["id_no"],
        "category": "physical",
        "issue_date": "2020-01-01",
        "expiry_date": "2030-01-01",
        "status": "valid",
    }
    write_table(
        tmp_path,
        "disability_certificates",
        [
            {**cert, "cert_no": "A", "grade": "1"},
            {**cert, "cert_no": "A", "grade": "2"},
            {**cert, "cert_no": "B", "grade": "5"},
        ],
    )
    ex = load_extracts(tmp_path)
    assert ex.frame("care_assessments")["institution_resident"].to_list() == [True, False]
    assert ex.frame("disability_certificates")["grade"].to_list() == [1]
    codes = ex.quarantine.select("table", "row", "code").rows()
    assert ("care_assessments", 3, "bad_bool") in codes
    assert ("disability_certificates", 2, "duplicate_key") in codes
    assert ("disability_certificates", 3, "bad_grade") in codes


def test_keys_compare_ids_whatever_the_case_of_x(tmp_path: Path) -> None:
    """An ID ending in x and the same ID ending in X are one person: a repeated key (also
    with a second key column) and a repeated ID, as their upper-cased text says."""
    seq = next(s for s in range(1, 999, 2) if pid("1950-03-04", s).endswith("X"))
    upper = pid("1950-03-04", seq)
    lower = upper[:-1] + "x"
    write_table(
        tmp_path,
        "persons",
        [person("1950-03-04", seq), person("1950-03-04", seq, id_no=lower),
         person("1950-03-04", 3)],
    )  # fmt: skip
    aid = {"household_no": "H1", "approved_date": "2024-01-01"}
    write_table(
        tmp_path,
        "assistance",
        [
            {**aid, "id_no": lower, "assistance_type": "dibao"},
            {**aid, "id_no": upper, "assistance_type": "dibao"},  # the same key
            {**aid, "id_no": upper, "assistance_type": "tekun"},  # another key
        ],
    )
    ex = load_extracts(tmp_path)
    codes = ex.quarantine.select("table", "row", "code", "identity_issue").rows()
    assert codes == [
        ("persons", 2, "duplicate_key", "duplicate_id"),
        ("assistance", 2, "duplicate_key", None),
    ]
    assert ex.frame("persons")["id_no"].to_list() == [upper, pid("1950-03-04", 3)]
    assert ex.frame("assistance")["assistance_type"].to_list() == ["dibao", "tekun"]


def test_extra_columns_are_reported_and_absent_tables_empty(tmp_path: Path) -> None:
    write_table(tmp_path, "persons", [{**person("1950-03-04", 3), "remark": "x"}])
    ex = load_extracts(tmp_path)
    assert ex.tables["persons"].extra_columns == ["remark"]
    summary = ex.tables["pensions"].summary()
    assert summary["file"] is None and "absent" in summary["note"]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("330106001", None),
        ("c1", "bad_community"),
        ("33010600", "bad_community"),
        ("330106 001", "bad_community"),
        ("翠苑一区", "bad_community"),
        ("330106００1", "full_width_digit"),
    ],
)
def test_hukou_community_must_be_a_community_code(tmp_path: Path, value: str, code: str) -> None:
    write_table(tmp_path, "persons", [person("1950-03-04", 3, hukou_community=value)])
    ex = load_extracts(tmp_path)
    q = ex.quarantine.select("table", "row", "field", "code").rows()
    if code is None:
        assert q == [] and ex.frame("persons")["hukou_community"].to_list() == [value]
    else:
        assert q == [("persons", 1, "hukou_community", code)]
        assert "community code" in ex.quarantine["reason"][0] or code == "full_width_digit"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("6217000000000001", None),
        ("62170000", None),
        ("6217-0000-0000-0001", "bad_account"),
        ("6217000", "bad_account"),
        ("6" * 33, "bad_account"),
        ("ACCOUNT-1", "bad_account"),
        ("６２１７000000000001", "full_width_digit"),
    ],
)
def test_bank_account_numbers_follow_the_one_rule(tmp_path: Path, value: str, code: str) -> None:
    p = person("1950-03-04", 3)
    write_table(tmp_path, "persons", [p])
    write_table(tmp_path, "bank_accounts", [{**bank(p), "account_no": value}])
    ex = load_extracts(tmp_path)
    q = ex.quarantine.select("table", "row", "field", "code").rows()
    if code is None:
        assert q == [] and ex.frame("bank_accounts")["account_no"].to_list() == [value]
    else:
        assert q == [("bank_accounts", 1, "account_no", code)]
        assert value not in ex.quarantine["reason"][0] or code == "full_width_digit"


# cells that test every check of every kind, and the edges of the cheap clean-row test
_TRICKY = [
    None, "", "0", "-0", "-0.00", "-1", "1.5", "1.23", "1.234", "1e3", "+5", "1" * 13,
    "1" * 14, "1" * 14 + ".5", "１00", "1", "4", "5", "true", "FALSE", "tRuE", "yes",
    "2025-01-31", "2025-02-30", "2025-1-1", "2025-01", "2025-00", "2025-13", "2025/01/01",
    "330106", "33010６", "330106001", "3301060011", "6217000000000001", "6217-0000", "x" * 1001,
    "é" * 600, "李四", pid("1950-03-04", 3), pid("1960-01-01", 5).lower(),
    pid("1950-03-04", 3)[:-1] + "Y", "330106" + "19501332" + "0031", "33010619500304003",
    "３30106195003040031",
]  # fmt: skip


def test_clean_rows_skip_no_check(tmp_path: Path) -> None:
    """The cheap clean-row test clears only rows the full checks accept: every table's sample
    rows with each column set, in turn, to each tricky cell (and each of its enum values) get
    the same fields, codes and identity issues as when every row is checked in full."""
    from benefits.ingest import _full_checks, read_csv_text, row_checks, trimmed
    from benefits.resources import sample_folder
    from benefits.schema import TABLES

    for table in TABLES.values():
        path = sample_folder() / f"{table.name}.csv"
        base = read_csv_text(path.read_bytes(), path)[0].head(3)
        variants = [base]
        for column in table.columns:
            for value in [*_TRICKY, *column.values]:
                variants.append(base.with_columns(pl.lit(value, pl.String).alias(column.name)))
        if table.name == "persons":  # the ID disagreeing with the birth date, the sex
            variants.append(base.with_columns(pl.lit("1901-01-01").alias("birth_date")))
            variants.append(base.with_columns(pl.lit("X").alias("sex")))
        frame = pl.concat(variants)
        lazy = trimmed(frame)
        fast = row_checks(lazy, table, list(frame.columns)).collect()
        full = _full_checks(lazy, table).collect()
        assert fast.equals(full), table.name
        assert fast["__field"].null_count() < fast.height, table.name  # some rows fail


def test_vectorised_id_checks_agree_with_the_scalar_rule() -> None:
    """problem_expr (the check character read in base 13) and valid_expr say what
    idcard.problem says, for random bodies with every check character and some broken IDs."""
    import random

    from benefits import idcard

    rng = random.Random(13)
    ids = [pid("1950-03-04", 3), "99999999999999999X", "00000000000000000X", "1" * 18]
    for _ in range(2000):
        digits = "".join(rng.choice("0123456789") for _ in range(17))
        birth = dt.date(1900, 1, 1) + dt.timedelta(days=rng.randrange(45_000))
        body = rng.choice([digits, f"{digits[:6]}{birth:%Y%m%d}{digits[14:]}"])
        ids.append(body + rng.choice("0123456789Xx"))
        ids.append(body + idcard.check_character(body))
    frame = pl.DataFrame({"id": ids}).select(
        idcard.problem_expr(pl.col("id")).alias("problem"),
        idcard.valid_expr(pl.col("id")).alias("valid"),
    )
    assert frame["problem"].to_list() == [idcard.problem(i) for i in ids]
    assert frame["valid"].to_list() == [idcard.problem(i) is None for i in ids]


def test_date_pattern_is_the_calendar() -> None:
    """period.date_pattern matches exactly the dates Polars parses (leap years included), with
    and without separators."""
    import random

    from benefits.period import date_pattern

    rng = random.Random(29)
    years = [0, 1, 4, 100, 400, 1900, 2000, 2023, 2024, 9996, 9999, *rng.sample(range(10000), 40)]
    parts = [(y, m, d) for y in years for m in range(14) for d in (0, 1, 9, 19, 28, 29, 30, 31, 32)]
    for sep, fmt in (("-", "%Y-%m-%d"), ("", "%Y%m%d")):
        cells = pl.Series([f"{y:04d}{sep}{m:02d}{sep}{d:02d}" for y, m, d in parts])
        matched = cells.str.contains(f"^{date_pattern(sep)}$")
        assert matched.to_list() == cells.str.to_date(fmt, strict=False).is_not_null().to_list()
        assert matched.sum() > len(parts) // 2


def test_tables_load_biggest_first_but_report_in_schema_order(tmp_path: Path) -> None:
    """The big bank file starts first, yet the tables, and the first error, come in the
    schema's order: deaths (before bank_accounts) is the one a broken delivery names."""
    p = person("1950-03-04", 3)
    write_table(tmp_path, "persons", [p])
    write_table(tmp_path, "bank_accounts", [bank(p)] * 2000)
    ex = load_extracts(tmp_path)
    assert list(ex.tables) == list(ex.schema)
    assert ex.tables["bank_accounts"].read == 2000
    (tmp_path / "deaths.csv").write_bytes(b"id_no,death_date,source\n\x00\x01\n")
    with (tmp_path / "bank_accounts.csv").open("ab") as fh:
        fh.write(b"\x00\n")
    with pytest.raises(IngestError, match=r"^deaths\.csv: binary data"):
        load_extracts(tmp_path)
