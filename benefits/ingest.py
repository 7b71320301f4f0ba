"""Ingest: departmental extract files → typed, validated tables plus a quarantine.

One file per table in the delivery folder, CSV (UTF-8 with or without BOM, or GBK, detected)
or Parquet. Every cell is trimmed; an empty cell is null; a record whose cells are all empty
is skipped. Every other rejected row lands in the quarantine with its table, 1-based row
number, field and reason — all checks are vectorised Polars expressions derived from
:mod:`benefits.schema`.

Example:
    >>> from pathlib import Path
    >>> extracts = load_extracts(Path("datasets/sample"))  # doctest: +SKIP
    >>> extracts.tables["persons"].frame.height  # doctest: +SKIP
    3000
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benefits import idcard
from benefits.errors import IngestError
from benefits.schema import TABLE_ORDER, TABLES, Column, Table

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "table": pl.String(),
    "row": pl.Int64(),
    "id_no": pl.String(),
    "field": pl.String(),
    "reason": pl.String(),
    "code": pl.String(),
    "identity_issue": pl.String(),
}

FULL_WIDTH_DIGIT = "[０-９]"
MAX_MONEY_DIGITS = 13  # integer part; keeps fen within Int64 with room for arithmetic


@dataclass
class LoadedTable:
    """One table after ingest: accepted typed rows and counts for the run summary."""

    name: str
    frame: pl.DataFrame
    file: str | None = None
    format: str | None = None
    encoding: str | None = None
    sha256: str | None = None
    read: int = 0
    quarantined: int = 0
    skipped_empty: int = 0
    extra_columns: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def accepted(self) -> int:
        return self.frame.height

    def summary(self) -> dict:
        """The table's entry in summary.json (read = accepted + quarantined)."""
        note = ""
        if self.file is None:
            note = "absent: treated as empty"
        elif self.error:
            note = self.error
        elif self.extra_columns:
            note = "extra columns ignored: " + ", ".join(self.extra_columns)
        return {
            "file": self.file,
            "format": self.format,
            "encoding": self.encoding,
            "sha256": self.sha256,
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "skipped_empty_records": self.skipped_empty,
            "extra_columns": self.extra_columns,
            "error": self.error,
            "note": note,
        }


@dataclass
class Extracts:
    """All tables of one delivery, plus the quarantine of every rejected row."""

    folder: Path
    tables: dict[str, LoadedTable]
    quarantine: pl.DataFrame

    def frame(self, name: str) -> pl.DataFrame:
        return self.tables[name].frame

    def with_persons(self, persons: pl.DataFrame) -> Extracts:
        """The same delivery with another persons frame (used to re-evaluate a subset)."""
        tables = dict(self.tables)
        old = tables["persons"]
        tables["persons"] = LoadedTable("persons", persons, old.file, old.format)
        return Extracts(self.folder, tables, self.quarantine)


def empty_frame(table: Table) -> pl.DataFrame:
    """An empty typed frame for a table."""
    return pl.DataFrame(schema=table.polars_schema)


def load_extracts(folder: Path) -> Extracts:
    """Read and validate every table of the data contract found in `folder`.

    Raises :class:`IngestError` when the folder or the persons table is unusable, or when a
    table is delivered both as CSV and Parquet.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(f"data folder {folder} does not exist")
    tables: dict[str, LoadedTable] = {}
    quarantines: list[pl.DataFrame] = []
    for name in TABLE_ORDER:
        loaded, quarantine = load_table(folder, TABLES[name])
        tables[name] = loaded
        quarantines.append(quarantine)
    q = pl.concat(quarantines, how="vertical") if quarantines else pl.DataFrame()
    return Extracts(folder, tables, q)


def find_file(folder: Path, name: str) -> Path | None:
    """The table's file, CSV or Parquet; both at once is an error naming the two files."""
    csv, parquet = folder / f"{name}.csv", folder / f"{name}.parquet"
    if csv.exists() and parquet.exists():
        raise IngestError(
            f"table {name} is delivered twice: {csv.name} and {parquet.name}; keep one of them"
        )
    if csv.exists():
        return csv
    if parquet.exists():
        return parquet
    return None


def load_table(folder: Path, table: Table) -> tuple[LoadedTable, pl.DataFrame]:
    """Load one table: (accepted rows with their source row number `_row`, quarantine rows)."""
    path = find_file(folder, table.name)
    if path is None:
        if table.name == "persons":
            raise IngestError(f"persons.csv or persons.parquet is required in {folder}")
        return LoadedTable(table.name, empty_frame(table)), _empty_quarantine()
    data = path.read_bytes()
    loaded = LoadedTable(
        table.name,
        empty_frame(table),
        file=path.name,
        format=path.suffix.lstrip("."),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    if path.suffix == ".csv":
        raw, loaded.encoding = read_csv_text(data, path)
    else:
        raw = read_parquet_text(data, path, table)
    return validate(raw, table, loaded, path)


def read_csv_text(data: bytes, path: Path) -> tuple[pl.DataFrame, str]:
    """Decode a CSV file (UTF-8 with/without BOM, else GBK) into an all-text frame."""
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8-sig"
    else:
        try:
            data.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            try:
                data = data.decode("gb18030").encode("utf-8")
            except UnicodeDecodeError as exc:
                raise IngestError(
                    f"{path.name}: neither UTF-8 nor GBK text ({exc.reason} at byte {exc.start})"
                ) from exc
            encoding = "gbk"
    if not data.strip():
        return pl.DataFrame(), encoding
    try:
        frame = pl.read_csv(
            io.BytesIO(data),
            infer_schema=False,
            truncate_ragged_lines=True,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise IngestError(f"{path.name}: not a readable CSV file: {exc}") from exc
    frame.columns = [c.strip().lstrip("\ufeff") for c in frame.columns]
    return frame, encoding


def read_parquet_text(data: bytes, path: Path, table: Table) -> pl.DataFrame:
    """Read a Parquet file and render every column as the text a CSV would hold."""
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except pl.exceptions.PolarsError as exc:
        raise IngestError(f"{path.name}: not a readable Parquet file: {exc}") from exc
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        kind = table.by_name[name.strip()].kind if name.strip() in table.by_name else "text"
        if dtype == pl.String:
            e = col
        elif dtype == pl.Date:
            e = col.dt.strftime("%Y-%m-%d")
        elif isinstance(dtype, pl.Datetime):
            e = col.dt.date().dt.strftime("%Y-%m-%d")
        elif dtype == pl.Boolean:
            e = pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
        elif dtype.is_float():
            e = col.cast(pl.String)
            if kind in ("grade", "id", "ref_id", "code", "district"):
                e = e.str.replace(r"\.0$", "")
        else:
            e = col.cast(pl.String)
        exprs.append(e.alias(name.strip()))
    return frame.select(exprs) if exprs else frame


def _empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


# ------------------------------------------------------------------------------ validation


def _problem(column: Column) -> tuple[pl.Expr, pl.Expr]:
    """(code, reason) expressions for one column: null when the value is acceptable."""
    s = pl.col(column.name)
    checks: list[tuple[pl.Expr, str, pl.Expr]] = []  # (failing?, code, reason)

    def add(failing: pl.Expr, code: str, reason: str | pl.Expr) -> None:
        text = reason if isinstance(reason, pl.Expr) else pl.lit(reason)
        checks.append((failing, code, text))

    quoted = pl.format("'{}'", s)
    if column.required:
        add(s.is_null(), "required", f"{column.name} is required but empty")
    add(
        s.str.contains(FULL_WIDTH_DIGIT),
        "full_width_digit",
        pl.format("{} has full-width digits: {}", pl.lit(column.name), quoted),
    )
    kind = column.kind
    if kind == "id":
        code = idcard.problem_expr(s)
        for c, text in idcard.ID_REASONS.items():
            add(code == c, c, pl.format("{}: {}", quoted, pl.lit(text)))
    elif kind == "date":
        ok = s.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$") & s.str.to_date(
            "%Y-%m-%d", strict=False
        ).is_not_null()
        add(~ok, "bad_date", pl.format("{} is not a real date YYYY-MM-DD", quoted))
    elif kind == "month":
        add(
            ~s.str.contains(r"^[0-9]{4}-(0[1-9]|1[0-2])$"),
            "bad_month",
            pl.format("{} is not a month YYYY-MM", quoted),
        )
    elif kind == "money":
        add(s.str.starts_with("-"), "negative_money", pl.format("{} is negative", quoted))
        add(
            s.str.contains(r"^[0-9]+\.[0-9]{3,}$"),
            "money_precision",
            pl.format("{} has more than 2 decimals", quoted),
        )
        add(
            ~s.str.contains(r"^[0-9]+(\.[0-9]{1,2})?$"),
            "bad_money",
            pl.format("{} is not an amount in yuan (digits, at most 2 decimals)", quoted),
        )
        add(
            s.str.split(".").list.first().str.len_chars() > MAX_MONEY_DIGITS,
            "money_too_large",
            pl.format("{} is implausibly large", quoted),
        )
    elif kind == "enum":
        allowed = ", ".join(column.values)
        add(
            ~s.is_in(list(column.values)),
            "bad_enum",
            pl.format("{} is not one of: {}", quoted, pl.lit(allowed)),
        )
    elif kind == "bool":
        add(
            ~s.str.to_lowercase().is_in(["true", "false", "1", "0"]),
            "bad_bool",
            pl.format("{} is not a boolean (true/false/1/0)", quoted),
        )
    elif kind == "grade":
        add(~s.is_in(["1", "2", "3", "4"]), "bad_grade", pl.format("{} is not a grade 1-4", quoted))
    elif kind == "number":
        add(
            ~s.str.contains(r"^[0-9]+(\.[0-9]+)?$"),
            "bad_number",
            pl.format("{} is not a number >= 0", quoted),
        )
    elif kind == "district":
        add(
            ~s.str.contains(r"^[0-9]{6}$"),
            "bad_district",
            pl.format("{} is not a 6-digit district code", quoted),
        )
    code_chain = pl.when(checks[0][0]).then(pl.lit(checks[0][1]))
    reason_chain = pl.when(checks[0][0]).then(checks[0][2])
    for failing, code_text, reason in checks[1:]:
        code_chain = code_chain.when(failing).then(pl.lit(code_text))
        reason_chain = reason_chain.when(failing).then(reason)
    # A null cell of an optional column is fine; a null never fails the other checks.
    not_null = s.is_not_null() | pl.lit(column.required)
    code_expr = pl.when(not_null).then(code_chain.otherwise(pl.lit(None, pl.String)))
    reason_expr = pl.when(not_null).then(reason_chain.otherwise(pl.lit(None, pl.String)))
    return code_expr, reason_expr


def _typed(column: Column) -> pl.Expr:
    """The typed value of a column whose checks passed."""
    s = pl.col(column.name)
    kind = column.kind
    if kind in ("id", "ref_id"):
        e = s.str.to_uppercase()
    elif kind == "date":
        e = s.str.to_date("%Y-%m-%d", strict=False)
    elif kind == "money":
        parts = s.str.split_exact(".", 1)
        whole = parts.struct.field("field_0").cast(pl.Int64, strict=False)
        frac = parts.struct.field("field_1").str.pad_end(2, "0").cast(pl.Int64, strict=False)
        e = whole * 100 + frac.fill_null(0)
    elif kind == "bool":
        e = s.str.to_lowercase().is_in(["true", "1"])
        e = pl.when(s.is_null()).then(None).otherwise(e)
    elif kind == "grade":
        e = s.cast(pl.Int8, strict=False)
    elif kind == "number":
        e = s.cast(pl.Float64, strict=False)
    else:
        e = s
    return e.cast(column.dtype).alias(column.name)


def _cross_checks(table: Table) -> list[tuple[str, str, pl.Expr, pl.Expr]]:
    """Row checks across columns: (field, code, failing?, reason). persons: ID vs birth/sex."""
    if table.name != "persons":
        return []
    id_no = pl.col("id_no").str.to_uppercase()
    birth = pl.col("birth_date").str.to_date("%Y-%m-%d", strict=False)
    return [
        (
            "birth_date",
            "birth_date_mismatch",
            birth != idcard.birth_date_expr(id_no),
            pl.format(
                "birth_date {} disagrees with the birth date in the ID {}",
                pl.col("birth_date"),
                idcard.birth_date_expr(id_no).dt.strftime("%Y-%m-%d"),
            ),
        ),
        (
            "sex",
            "sex_mismatch",
            pl.col("sex") != idcard.sex_expr(id_no),
            pl.format(
                "sex {} disagrees with the ID (sequence digit says {})",
                pl.col("sex"),
                idcard.sex_expr(id_no),
            ),
        ),
    ]


def validate(
    raw: pl.DataFrame, table: Table, loaded: LoadedTable, path: Path
) -> tuple[LoadedTable, pl.DataFrame]:
    """Validate an all-text frame against the table's schema (see module doc)."""
    n = raw.height
    raw = raw.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64))
    present = [c for c in raw.columns if c != "_row"]
    loaded.extra_columns = sorted(c for c in present if c not in table.by_name)
    # trim cells; an empty cell is null
    raw = raw.with_columns(
        [pl.col(c).str.strip_chars().replace("", None).alias(c) for c in present]
    )
    if present:
        empty = pl.all_horizontal([pl.col(c).is_null() for c in present])
        nonempty = raw.filter(~empty)
    else:
        nonempty = raw
    loaded.skipped_empty = n - nonempty.height
    loaded.read = nonempty.height

    missing = [c for c in table.required if c not in present]
    if missing:
        message = f"{path.name}: required column '{missing[0]}' is missing"
        if table.name == "persons":
            raise IngestError(message + " — the sweep cannot run without the persons table")
        loaded.error = message + "; the whole table is rejected"
        q = nonempty.select(
            pl.lit(table.name).alias("table"),
            pl.col("_row"),
            (pl.col("id_no") if "id_no" in present else pl.lit(None, pl.String)).alias("id_no"),
            pl.lit(missing[0]).alias("field"),
            pl.lit(f"table rejected: required column '{missing[0]}' missing in {path.name}").alias(
                "reason"
            ),
            pl.lit("table_rejected").alias("code"),
            pl.lit(None, pl.String).alias("identity_issue"),
        ).rename({"_row": "row"})
        loaded.quarantined = q.height
        return loaded, q.cast(QUARANTINE_SCHEMA)

    frame = nonempty.select(
        ["_row"]
        + [
            pl.col(c.name) if c.name in present else pl.lit(None, pl.String).alias(c.name)
            for c in table.columns
        ]
    )
    # first failing column (schema order) gives field/code/reason; cross-checks after that
    exprs: list[tuple[str, pl.Expr, pl.Expr]] = []
    for column in table.columns:
        code, reason = _problem(column)
        exprs.append((column.name, code, reason))
    frame = frame.with_columns(
        [code.alias(f"__code_{name}") for name, code, _ in exprs]
        + [reason.alias(f"__reason_{name}") for name, _, reason in exprs]
    )
    field_chain = pl.lit(None, pl.String)
    code_chain = pl.lit(None, pl.String)
    reason_chain = pl.lit(None, pl.String)
    for name, _, _ in reversed(exprs):
        failing = pl.col(f"__code_{name}").is_not_null()
        field_chain = pl.when(failing).then(pl.lit(name)).otherwise(field_chain)
        code_chain = pl.when(failing).then(pl.col(f"__code_{name}")).otherwise(code_chain)
        reason_chain = pl.when(failing).then(pl.col(f"__reason_{name}")).otherwise(reason_chain)
    frame = frame.with_columns(
        field_chain.alias("__field"), code_chain.alias("__code"), reason_chain.alias("__reason")
    )
    identity_parts: list[pl.Expr] = []
    if "id_no" in table.by_name:
        identity_parts.append(
            pl.when(pl.col("__code_id_no").is_in(list(idcard.ID_REASONS))).then(
                pl.col("__code_id_no")
            )
        )
    for fld, code, failing, reason in _cross_checks(table):
        ok_so_far = pl.col("__field").is_null() & pl.col(f"__code_{fld}").is_null()
        frame = frame.with_columns(
            pl.when(ok_so_far & failing).then(pl.lit(fld)).otherwise(pl.col("__field")).alias(
                "__field"
            ),
            pl.when(ok_so_far & failing).then(pl.lit(code)).otherwise(pl.col("__code")).alias(
                "__code"
            ),
            pl.when(ok_so_far & failing).then(reason).otherwise(pl.col("__reason")).alias(
                "__reason"
            ),
        )
        # an identity conflict whenever the ID is valid, the value well-formed and different
        well_formed = pl.col("__code_id_no").is_null() & pl.col(f"__code_{fld}").is_null()
        identity_parts.append(pl.when(well_formed & failing.fill_null(False)).then(pl.lit(code)))
    if table.name == "persons":
        valid_id = pl.col("__code_id_no").is_null() & pl.col("id_no").is_not_null()
        norm = pl.col("id_no").str.to_uppercase()
        dup_count = pl.when(valid_id).then(pl.len().over(pl.when(valid_id).then(norm)))
        identity_parts.append(pl.when(dup_count > 1).then(pl.lit("duplicate_id")))
    frame = frame.with_columns(
        (pl.coalesce(identity_parts) if identity_parts else pl.lit(None, pl.String)).alias(
            "__identity"
        )
    )
    # duplicate keys among otherwise valid rows: the first is kept
    if table.key:
        key_exprs = [
            pl.col(k).str.to_uppercase() if table.by_name[k].kind == "id" else pl.col(k)
            for k in table.key
        ]
        ok = pl.col("__field").is_null()
        frame = frame.with_columns(
            pl.when(ok).then(pl.struct(key_exprs)).alias("__key")
        ).with_columns(first_ok=pl.col("__key").is_first_distinct() | ~ok)
        dup = ok & ~pl.col("first_ok")
        keytext = ", ".join(table.key)
        frame = frame.with_columns(
            pl.when(dup).then(pl.lit(table.key[0])).otherwise(pl.col("__field")).alias("__field"),
            pl.when(dup).then(pl.lit("duplicate_key")).otherwise(pl.col("__code")).alias("__code"),
            pl.when(dup)
            .then(pl.lit(f"duplicate key ({keytext}): an earlier row with the same key is kept"))
            .otherwise(pl.col("__reason"))
            .alias("__reason"),
        )
    bad = pl.col("__field").is_not_null()
    id_given = pl.col("id_no") if "id_no" in table.by_name else pl.lit(None, pl.String)
    quarantine = frame.filter(bad).select(
        pl.lit(table.name).alias("table"),
        pl.col("_row").alias("row"),
        id_given.alias("id_no"),
        pl.col("__field").alias("field"),
        pl.col("__reason").alias("reason"),
        pl.col("__code").alias("code"),
        pl.col("__identity").alias("identity_issue"),
    )
    accepted = frame.filter(~bad).select(["_row"] + [_typed(c) for c in table.columns])
    loaded.frame = accepted
    loaded.quarantined = quarantine.height
    return loaded, quarantine.cast(QUARANTINE_SCHEMA)
