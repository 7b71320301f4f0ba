"""Corrupt a fraction of the rows of an extract with every kind of bad value the data contract
names — and sprinkle the odd-but-valid forms it says must be accepted.

Bad (the row must be quarantined): wrong-length IDs, a wrong check character, an impossible
birth date inside the ID, full-width digits, a `persons` birth date or sex that disagrees with
the ID, an empty required field, bad dates and months, unknown or upper-case enum values,
negative money or numbers, money with three decimals, grade 0 or 5, unreadable booleans, and
duplicate keys. Odd but valid: fully empty records (skipped), an extra column, cells with
surrounding spaces, a lower-case ``x`` check character, booleans written ``1``/``0``/``TRUE``.

The corrupted rows are chosen at random among the rows that are not planted scenarios; their
kinds are dealt round-robin, rarest first, so even a small table shows the kinds specific to it.

Example:
    >>> df = pl.DataFrame({"id_no": ["11010519491231002X"] * 4, "death_date": ["2024-05-01"] * 4,
    ...                    "source": ["police"] * 4, "_planted": [False] * 4})
    >>> corrupt("deaths", df, Rng(1), 0.5).height > 4
    True
"""

from __future__ import annotations

import math

import polars as pl

from benefits.idcard import CHECK_CHARS
from benefits.schema import TABLES, Table
from benefits.synth.names import BANK_BRANCHES
from benefits.synth.population import check_character_expr
from benefits.synth.rand import Rng, cases

FULL_WIDTH = [chr(0xFF10 + d) for d in range(10)]
ASCII_DIGITS = [str(d) for d in range(10)]
# Kinds in the order they are dealt (the rarer, table-specific kinds first).
KIND_ORDER = (
    "birth_mismatch",
    "sex_mismatch",
    "bad_grade",
    "negative",
    "three_decimals",
    "bad_bool",
    "bad_month",
    "id_birth",
    "id_check",
    "id_length",
    "fullwidth",
    "bad_date",
    "bad_enum",
    "empty",
)
BAD_KINDS = frozenset(KIND_ORDER) | {"duplicate_key"}
VALID_ODDITIES = ("empty_record", "extra_column", "spaces", "lower_x", "bool_forms")
# A valid stand-in for an empty optional cell, so that it too can be corrupted.
STAND_IN = {"date": "2024-06-15", "money": "100.00", "number": "10", "month": "2024-06"}
EXTRA_COLUMN_TABLE = "bank_accounts"


def plan(table: Table) -> list[tuple[str, str]]:
    """The (kind, column) pairs of bad values that apply to a table, rarest kind first."""
    by_kind: dict[str, list[str]] = {k: [] for k in KIND_ORDER}
    digits = [c.name for c in table.columns if c.kind in ("date", "money", "month", "district")]
    for c in table.columns:
        if c.kind == "id":
            by_kind["id_birth"].append(c.name)
            by_kind["id_check"].append(c.name)
            by_kind["id_length"].append(c.name)
            by_kind["fullwidth"].append(c.name)
        kinds = {
            "date": ["bad_date"],
            "month": ["bad_month"],
            "enum": ["bad_enum"],
            "money": ["negative", "three_decimals"],
            "number": ["negative"],
            "grade": ["bad_grade"],
            "bool": ["bad_bool"],
        }.get(c.kind, [])
        for k in kinds:
            by_kind[k].append(c.name)
        if c.required:
            by_kind["empty"].append(c.name)
    if digits:
        by_kind["fullwidth"].append(digits[0])
    if table.name == "persons":
        by_kind["birth_mismatch"].append("birth_date")
        by_kind["sex_mismatch"].append("sex")
    return [(k, col) for k in KIND_ORDER for col in by_kind[k]]


def _bad_value(kind: str, col: str, table: Table, variant: pl.Expr) -> pl.Expr:
    c = table.by_name[col]
    src = pl.col(col).fill_null(pl.lit(STAND_IN.get(c.kind, "x")))
    if kind == "id_length":
        old_style = pl.concat_str([src.str.slice(0, 6), src.str.slice(8, 6), src.str.slice(14, 3)])
        return cases([(variant == 0, src.str.slice(0, 17)), (variant == 1, src + "0")], old_style)
    if kind == "id_check":
        nxt = {ch: CHECK_CHARS[(i + 1) % 11] for i, ch in enumerate(CHECK_CHARS)}
        return src.str.slice(0, 17) + src.str.slice(17, 1).str.to_uppercase().replace_strict(
            nxt, default="0"
        )
    if kind == "id_birth":
        impossible = pl.when(variant == 0).then(pl.lit("0230")).otherwise(pl.lit("1315"))
        body = pl.concat_str([src.str.slice(0, 10), impossible, src.str.slice(14, 3)])
        return body + check_character_expr(body)
    if kind == "fullwidth":
        return src.str.replace_many(ASCII_DIGITS, FULL_WIDTH)
    if kind == "bad_date":
        return cases(
            [
                (variant == 0, src.str.slice(0, 4) + "-02-30"),
                (variant == 1, src.str.replace_all("-", "/")),
            ],
            src.str.replace_all("-", ""),
        )
    if kind == "bad_month":
        return (
            pl.when(variant == 0)
            .then(src.str.slice(0, 4) + "-13")
            .otherwise(src.str.replace("-", "/"))
        )
    if kind == "bad_enum":
        flipped = (
            pl.when(src == src.str.to_uppercase())
            .then(src.str.to_lowercase())
            .otherwise(src.str.to_uppercase())
        )
        return pl.when(variant == 0).then(flipped).otherwise(pl.lit("unknown"))
    if kind == "negative":
        return "-" + src
    if kind == "three_decimals":
        return src + "5"
    if kind == "bad_grade":
        return pl.when(variant == 0).then(pl.lit("0")).otherwise(pl.lit("5"))
    if kind == "bad_bool":
        return pl.when(variant == 0).then(pl.lit("yes")).otherwise(pl.lit("2"))
    if kind == "birth_mismatch":
        return src.str.to_date("%Y-%m-%d", strict=False).dt.offset_by("1d").cast(pl.String)
    if kind == "sex_mismatch":
        return pl.when(src == "M").then(pl.lit("F")).otherwise(pl.lit("M"))
    if kind == "empty":
        return pl.lit(None, pl.String)
    raise ValueError(kind)


def corrupt(name: str, df: pl.DataFrame, rng: Rng, rate: float) -> pl.DataFrame:
    """The table with about ``rate`` of its rows made bad, plus the valid oddities.

    ``df`` holds the contract's columns as text and a boolean ``_planted`` column (rows that
    are never touched); the result keeps ``_planted``. Only the chosen rows are computed on,
    then written back in place, so a million-row table costs little.
    """
    table = TABLES[name]
    n = df.height
    if rate <= 0 or n == 0:
        return df
    k_bad = math.ceil(rate * n)
    k_odd = math.ceil(rate * n / 2)
    k_dup = math.ceil(rate * n / 5) if table.key else 0
    k_x = max(50, k_odd)
    ranked = df.with_columns(_row=pl.int_range(pl.len(), dtype=pl.Int64)).with_columns(
        _r=pl.when(~pl.col("_planted")).then(rng.u(f"dirty:{name}", "_row")).rank("ordinal")
    )
    chosen = ranked.filter(pl.col("_r") <= k_bad + 2 * k_odd + k_dup + k_x)
    edited = chosen.with_columns(_edits(table, k_bad, k_odd, k_dup))
    df = df.with_columns(
        df.get_column(c).clone().scatter(edited["_row"], edited[c]) for c in table.names
    )
    copies = chosen.filter(
        pl.col("_r").is_between(k_bad + 2 * k_odd + 1, k_bad + 2 * k_odd + k_dup)
    )
    df = pl.concat([df, _duplicates(name, copies).select(df.columns)])
    if name == EXTRA_COLUMN_TABLE:  # an extra column (before the empty records: all empty)
        cols = list(table.names)
        df = (
            df.with_columns(_row=pl.int_range(pl.len(), dtype=pl.Int64))
            .with_columns(branch=rng.pick("dirty:branch", BANK_BRANCHES, None, "_row"))
            .select(*cols[:2], "branch", *cols[2:], "_planted")
        )
    return _empty_records(name, df, rng, math.ceil(rate * n / 20))


def _edits(table: Table, k_bad: int, k_odd: int, k_dup: int) -> list[pl.Expr]:
    """New values of every column for the chosen rows, by their rank ``_r``:
    bad values (``_r`` ≤ ``k_bad``), spaces, boolean forms, then lower-case ``x``."""
    pairs = plan(table)
    r = pl.col("_r")
    variant = r % 3
    bad_kind = pl.when(r <= k_bad).then((r - 1) % len(pairs))
    bad_round = ((r - 1) // len(pairs)) % 3  # each round of the deal uses the next variant
    updates: dict[str, list[tuple[pl.Expr, pl.Expr]]] = {c: [] for c in table.names}
    for i, (kind, col) in enumerate(pairs):
        updates[col].append((bad_kind == i, _bad_value(kind, col, table, bad_round)))
    spaced = r.is_between(k_bad + 1, k_bad + k_odd)
    cols = list(table.names)
    for j, col in enumerate(cols):
        updates[col].append(
            (spaced & (r % len(cols) == j), pl.concat_str([pl.lit(" "), pl.col(col), pl.lit("  ")]))
        )
    for col in (c.name for c in table.columns if c.kind == "bool"):
        truthy = pl.col(col) == "true"
        forms = cases(
            [
                (variant == 0, pl.when(truthy).then(pl.lit("1")).otherwise(pl.lit("0"))),
                (variant == 1, pl.when(truthy).then(pl.lit("TRUE")).otherwise(pl.lit("FALSE"))),
            ],
            pl.when(truthy).then(pl.lit("True")).otherwise(pl.lit("False")),
        )
        updates[col].append((r.is_between(k_bad + k_odd + 1, k_bad + 2 * k_odd), forms))
    if "id_no" in updates:
        x_rows = (r > k_bad + 2 * k_odd + k_dup) & pl.col("id_no").str.ends_with("X")
        updates["id_no"].append((x_rows, pl.col("id_no").str.to_lowercase()))
    return [cases(p, pl.col(col)).alias(col) for col, p in updates.items() if p]


def _duplicates(name: str, copies: pl.DataFrame) -> pl.DataFrame:
    """Second rows with the key of an earlier row; a `persons` copy gets another name."""
    copies = copies.sort("_row")
    if name == "persons":
        copies = copies.with_columns(name=pl.col("name").str.slice(0, 1) + "某某")
    if name == "disability_certificates":
        copies = copies.with_columns(
            grade=((pl.col("grade").cast(pl.Int64) % 4) + 1).cast(pl.String)
        )
    if name == "medical_expenses":
        copies = copies.with_columns(out_of_pocket=pl.lit("88.00"))
    return copies


def _empty_records(name: str, df: pl.DataFrame, rng: Rng, k: int) -> pl.DataFrame:
    """``k`` records with every cell empty, inserted at random places."""
    n = df.height
    at = (
        pl.DataFrame({"_e": pl.int_range(k, eager=True, dtype=pl.Int64)})
        .select((rng.u(f"dirty:{name}:empty", "_e") * n).floor().cast(pl.Int64).alias("at"))
        .sort("at")["at"]
        .to_list()
    )
    empty = pl.DataFrame(
        {c: pl.Series([None], dtype=t) for c, t in df.schema.items()}
    ).with_columns(_planted=pl.lit(False))
    pieces, prev = [], 0
    for pos in at:
        pieces += [df.slice(prev, pos - prev), empty]
        prev = pos
    pieces.append(df.slice(prev))
    return pl.concat(pieces, rechunk=True)
