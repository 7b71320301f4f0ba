"""Resident ID numbers (公民身份号码, GB 11643-1999): check digit, birth date, sex, masking.

Scalar helpers for single values and vectorised Polars expressions for whole columns.

Example:
    >>> check_character("11010519491231002")
    'X'
    >>> is_valid("11010519491231002x")
    True
    >>> mask_id("330106194501011234")
    '330106********1234'
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from benefits.period import date_pattern

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)
ID_PATTERN = r"^[0-9]{17}[0-9X]$"  # an ID's form (upper-case X), check character aside

# Reason codes of an ID problem, in the order they are checked.
ID_LENGTH = "id_length"
ID_FORMAT = "id_format"
ID_BIRTH_DATE = "id_birth_date"
ID_CHECK_DIGIT = "id_check_digit"
ID_REASONS = {
    ID_LENGTH: "resident ID must have 18 characters",
    ID_FORMAT: "resident ID must be 17 ASCII digits and a check character 0-9 or X",
    ID_BIRTH_DATE: "resident ID embeds a birth date that is not a real date",
    ID_CHECK_DIGIT: "resident ID check character does not match (GB 11643-1999)",
}


def check_character(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits.

    >>> check_character("33010619450101123")
    '3'
    """
    total = sum(int(ch) * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def make_id(region: str, birth: dt.date, sequence: int) -> str:
    """Build a valid ID from a 6-digit region, a birth date and a 3-digit sequence (odd = male).

    >>> make_id("330106", dt.date(1945, 1, 1), 123)
    '330106194501011233'
    """
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + check_character(body)


def problem(id_no: str | None) -> str | None:
    """The reason code of what is wrong with an ID, or None when it is valid.

    >>> problem("33010619450101123X") is None
    False
    """
    if id_no is None:
        return ID_LENGTH
    s = id_no.strip().upper()
    if len(s) != 18:
        return ID_LENGTH
    if not (s[:17].isascii() and s[:17].isdigit() and (s[17] == "X" or s[17] in "0123456789")):
        return ID_FORMAT
    try:
        dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return ID_BIRTH_DATE
    if check_character(s[:17]) != s[17]:
        return ID_CHECK_DIGIT
    return None


def is_valid(id_no: str | None) -> bool:
    """True when the ID passes every GB 11643 check (lower-case x accepted)."""
    return problem(id_no) is None


def mask_id(id_no: str | None) -> str:
    """Show only the first 6 and last 4 characters (handbook §6)."""
    if not id_no:
        return ""
    if len(id_no) <= 10:
        return id_no[:2] + "*" * max(0, len(id_no) - 2)
    return id_no[:6] + "*" * (len(id_no) - 10) + id_no[-4:]


def mask_name(name: str | None) -> str:
    """Mask a name: 张三明 → 张*明, 张三 → 张*, longer names keep first and last.

    >>> mask_name("张三明"), mask_name("张三"), mask_name("欧阳小明")
    ('张*明', '张*', '欧**明')
    """
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# ---------------------------------------------------------------- vectorised (Polars) versions


def _check_value_expr(s: pl.Expr) -> pl.Expr:
    """The check character an ID's 17-digit body calls for, as a number (X = 10).

    One parse of the body **in base 13**: the weights are 2^(17-i) mod 11 and 13 ≡ 2 (mod 11),
    so the body read in base 13, times 2, is the weighted sum mod 11 (< 13^17 < 2^63: no
    overflow) — one parse instead of 17 divisions. Null unless the body is digits.
    """
    base13 = s.str.slice(0, 17).str.to_integer(base=13, strict=False)
    return (12 - (base13 % 11) * 2 % 11) % 11


def given_check_expr(s: pl.Expr) -> pl.Expr:
    """An ID's last character as a number (X or x = 10; null when not a digit)."""
    last = s.str.slice(17, 1)
    return (
        pl.when(last.is_in(["X", "x"]))
        .then(pl.lit(10, pl.Int64))
        .otherwise(last.cast(pl.Int64, strict=False))
    )


def problem_expr(col: pl.Expr) -> pl.Expr:
    """Reason code per row (or null when valid) for a trimmed, non-null string column."""
    s = col.str.to_uppercase()
    fmt_ok = s.str.contains(ID_PATTERN)
    birth = birth_date_expr(s)
    return (
        pl.when(s.str.len_chars() != 18)
        .then(pl.lit(ID_LENGTH))
        .when(~fmt_ok)
        .then(pl.lit(ID_FORMAT))
        .when(birth.is_null())
        .then(pl.lit(ID_BIRTH_DATE))
        .when(_check_value_expr(s) != given_check_expr(s))
        .then(pl.lit(ID_CHECK_DIGIT))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


_VALID = f"^[0-9]{{6}}{date_pattern('')}[0-9]{{3}}[0-9Xx]$"  # the birth date a real date


def valid_expr(col: pl.Expr) -> pl.Expr:
    """True where :func:`problem_expr` finds nothing (the cheap test of the common case: one
    regex for the format and the birth date, no upper-casing, no chain of reasons); null for
    a null cell."""
    return col.str.contains(_VALID) & (_check_value_expr(col) == given_check_expr(col))


def id_key(col: pl.Expr) -> pl.Expr:
    """An integer key for a validated ID: its 17-digit body (the check character follows from
    it). Joins, groups and duplicate checks on Int64 are 2-3x faster than on 18-character
    strings."""
    return col.str.slice(0, 17).cast(pl.Int64, strict=False)


def birth_date_expr(col: pl.Expr) -> pl.Expr:
    """The birth date embedded in a (valid) ID."""
    return col.str.slice(6, 8).str.to_date("%Y%m%d", strict=False)


def sex_expr(col: pl.Expr) -> pl.Expr:
    """'M' when the sequence number is odd, else 'F'."""
    return (
        pl.when(col.str.slice(16, 1).cast(pl.Int32, strict=False) % 2 == 1)
        .then(pl.lit("M"))
        .otherwise(pl.lit("F"))
    )


def mask_id_expr(col: pl.Expr) -> pl.Expr:
    """Vectorised :func:`mask_id` for 18-character IDs."""
    return pl.concat_str([col.str.slice(0, 6), pl.lit("********"), col.str.slice(-4, 4)])


def mask_name_expr(col: pl.Expr) -> pl.Expr:
    """Vectorised :func:`mask_name`."""
    n = col.str.len_chars()
    return (
        pl.when(n <= 1)
        .then(pl.lit("*"))
        .when(n == 2)
        .then(pl.concat_str([col.str.slice(0, 1), pl.lit("*")]))
        .otherwise(
            pl.concat_str(
                [
                    col.str.slice(0, 1),
                    pl.lit("*").repeat_by(n - 2).list.join(""),
                    col.str.slice(-1, 1),
                ]
            )
        )
    )
