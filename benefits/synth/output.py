"""From the generator's intermediate tables to the data contract's text columns, and files.

Example:
    >>> pl.select(money_text(pl.lit(123405)), decimal_text(pl.lit(1250)).alias("y")).row(0)
    ('1234.05', '12.5')
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from benefits.schema import TABLES
from benefits.synth.health import CATEGORY_CODES
from benefits.synth.rand import Rng

SHUFFLED_COLUMNS = ("pensions", "care_assessments")  # column order is free: show it
ENCODINGS = ("utf-8", "utf-8-sig", "gbk")


def money_text(fen: pl.Expr) -> pl.Expr:
    """Integer fen → ``"1234.05"``."""
    return pl.concat_str(
        [(fen // 100).cast(pl.String), pl.lit("."), (fen % 100).cast(pl.String).str.zfill(2)]
    )


def decimal_text(hundredths: pl.Expr) -> pl.Expr:
    """Integer hundredths → ``"12"``, ``"12.5"`` or ``"12.25"``."""
    whole = (hundredths // 100).cast(pl.String)
    frac = hundredths % 100
    return (
        pl.when(frac == 0)
        .then(whole)
        .when(frac % 10 == 0)
        .then(pl.concat_str([whole, pl.lit("."), (frac // 10).cast(pl.String)]))
        .otherwise(pl.concat_str([whole, pl.lit("."), frac.cast(pl.String).str.zfill(2)]))
    )


def _text(col: str, kind: str) -> pl.Expr:
    c = pl.col(col)
    if kind == "money":
        return money_text(c)
    if kind == "number":
        return decimal_text(c)
    if kind == "bool":
        return pl.when(c).then(pl.lit("true")).otherwise(pl.lit("false")).alias(col)
    return c.cast(pl.String)


def contract_tables(
    people: pl.DataFrame, facts: dict[str, pl.DataFrame]
) -> dict[str, pl.DataFrame]:
    """Every table as text columns in contract order, plus ``_planted``, sorted as delivered
    (persons by household, the others by ID and then oldest row first).

    ``people`` is in ``_pk`` order with ``_pk`` equal to the row number, so references are
    resolved by position rather than by joins.
    """
    id_no, id_key, name = people["id_no"], people["id_key"], people["name"]
    homes = (
        people.filter(pl.col("_hh").is_not_null())
        .group_by("_hh")
        .agg(pl.col("household_no").first(), pl.col("hh_key").first())
        .sort("_hh")
    )

    def at(series: pl.Series, ref: str) -> pl.Expr:
        return pl.when(pl.col(ref).is_not_null()).then(
            pl.lit(series).gather(pl.col(ref).fill_null(0))
        )

    persons = (
        people.filter(~pl.col("external"))
        .with_columns(father_id_no=at(id_no, "father_pk"), mother_id_no=at(id_no, "mother_pk"))
        .rename({"birth": "birth_date"})
        .sort("hh_key", "_slot")
    )
    out = {"persons": _as_text("persons", persons)}
    for table, df in facts.items():
        if "_pk" in df.columns:
            df = df.with_columns(id_no=at(id_no, "_pk"), _key=at(id_key, "_pk"))
            if table == "bank_accounts":
                df = df.with_columns(account_name=pl.coalesce("account_name", at(name, "_pk")))
            if "_hh" in df.columns:
                df = df.with_columns(household_no=at(homes["household_no"], "_hh"))
        else:
            df = df.with_columns(
                household_no=at(homes["household_no"], "_hh"), _key=at(homes["hh_key"], "_hh")
            )
        df = df.sort("_key", "_seq")
        if table == "disability_certificates":
            codes = {k: str(v) for k, v in CATEGORY_CODES.items()}
            code = pl.col("category").replace_strict(codes, return_dtype=pl.String)
            df = df.with_columns(
                cert_no=pl.concat_str([pl.col("id_no"), code, pl.col("grade").cast(pl.String)])
            )
        out[table] = _as_text(table, df)
    return out


def _as_text(name: str, df: pl.DataFrame) -> pl.DataFrame:
    table = TABLES[name]
    return df.select([_text(c.name, c.kind).alias(c.name) for c in table.columns] + ["_planted"])


def shuffle_columns(name: str, df: pl.DataFrame, rng: Rng) -> pl.DataFrame:
    """A seeded column order for the tables in :data:`SHUFFLED_COLUMNS`."""
    if name not in SHUFFLED_COLUMNS:
        return df
    cols = [c for c in df.columns if c != "_planted"]
    rng.python(f"columns:{name}").shuffle(cols)
    return df.select(*cols, "_planted")


def write_table(df: pl.DataFrame, out: Path, name: str, fmt: str, encoding: str) -> Path:
    """Write one extract as ``name.csv`` (in ``encoding``) or ``name.parquet`` (text columns)."""
    if fmt == "parquet":
        path = out / f"{name}.parquet"
        df.write_parquet(path, compression="zstd", statistics=False)
        return path
    path = out / f"{name}.csv"
    if encoding == "gbk":
        path.write_bytes(df.write_csv().encode("gbk"))
    else:
        df.write_csv(path, include_bom=encoding == "utf-8-sig")
    return path
