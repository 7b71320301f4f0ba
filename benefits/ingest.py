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
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benefits import idcard
from benefits.accountno import ACCOUNT_NO_PATTERN, ACCOUNT_NO_RULE
from benefits.errors import IngestError
from benefits.period import date_pattern
from benefits.schema import TABLES, Column, Table
from benefits.sealedfiles import read_output

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
# A zero written with a minus sign (`-0`, `-0.0`, `-0.00`) is zero, not negative: legacy
# exports write it for an empty balance (data contract, "Money").
MINUS_ZERO = r"^-(0+(\.0*)?)$"
MAX_MONEY_DIGITS = 13  # integer part; keeps fen within Int64 with room for arithmetic
MAX_CELL_CHARS = 1000  # no value of the contract comes near; a longer cell is a broken row
MAX_ID_ECHO = 40  # an over-long id_no is cut to this many characters in the quarantine
CONTROL_BYTES = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"  # never in CSV text (tab, CR, LF excepted)
_CONTROL = re.compile(CONTROL_BYTES.encode())
_NOT_CONTROL = bytes(b for b in range(256) if not _CONTROL.match(bytes([b])))


def find_control_byte(data: bytes) -> re.Match[bytes] | None:
    """The first control byte of `data` (see :data:`CONTROL_BYTES`), or None. Deleting every
    other byte (`bytes.translate`) tells at C speed whether there is one; only then does the
    regex look for where (it alone takes ten times as long over a clean file)."""
    if not data.translate(None, _NOT_CONTROL):
        return None
    return _CONTROL.search(data)


def is_blank(data: bytes) -> bool:
    """True when `data` is empty or only ASCII whitespace (``not data.strip()``, no copy)."""
    return not data or data.isspace()


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors run to pages)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


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
    schema: dict[str, Table] = field(default_factory=lambda: TABLES)  # the declarations read

    def frame(self, name: str) -> pl.DataFrame:
        return self.tables[name].frame

    def with_persons(self, persons: pl.DataFrame) -> Extracts:
        """The delivery restricted to some persons (whole households) and their parents.

        Used to re-evaluate a few households, e.g. the previous month for `death_stop`: every
        table keyed by person keeps only the rows of these persons (and of their parents,
        whose deaths and situations count), and household tables only these households.
        """
        ids = pl.concat(
            [persons["id_no"], persons["father_id_no"], persons["mother_id_no"]]
        ).drop_nulls()
        households = persons["household_no"].unique()
        tables: dict[str, LoadedTable] = {}
        for name, t in self.tables.items():
            frame = t.frame
            if name == "persons":
                frame = persons
            elif "id_no" in frame.columns:
                frame = frame.filter(pl.col("id_no").is_in(ids.implode()))
            elif "household_no" in frame.columns:
                frame = frame.filter(pl.col("household_no").is_in(households.implode()))
            tables[name] = LoadedTable(name, frame, t.file, t.format)
        return Extracts(self.folder, tables, self.quarantine, self.schema)


def empty_frame(table: Table) -> pl.DataFrame:
    """An empty typed frame for a table."""
    return pl.DataFrame(schema=table.polars_schema)


def load_extracts(folder: Path, tables: dict[str, Table] | None = None) -> Extracts:
    """Read and validate every table of the data contract found in `folder`.

    `tables` are the declarations to read (a rule pack's ``tables.yaml``; default: the
    bundled pack's, :data:`benefits.schema.TABLES`).

    Raises :class:`IngestError` when the folder or the persons table is unusable, or when a
    table is delivered both as CSV and Parquet.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(f"data folder {folder} does not exist")
    schema = TABLES if tables is None else tables
    loaded_tables: dict[str, LoadedTable] = {}
    quarantines: list[pl.DataFrame] = []
    # Tables are independent: load them side by side (Polars releases the GIL), the biggest
    # first so that no big one is left to run alone at the end, and take the results (and the
    # first error) in the schema's order so that everything downstream stays deterministic.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="ingest") as pool:
        started = {
            name: pool.submit(load_table, folder, schema[name])
            for name in sorted(schema, key=lambda name: -_work_estimate(folder, name))
        }
        loads = [started[name].result() for name in schema]
    for name, (loaded, quarantine) in zip(schema, loads, strict=True):
        loaded_tables[name] = loaded
        quarantines.append(quarantine)
    q = pl.concat(quarantines, how="vertical") if quarantines else pl.DataFrame()
    return Extracts(folder, loaded_tables, q, schema)


PARQUET_TEXT_RATIO = 4  # a Parquet byte of an extract holds about this many bytes of CSV text


def _work_estimate(folder: Path, name: str) -> int:
    """About how much text a table's file holds (0 when absent): the order to load in."""
    sizes = [0]
    for suffix, ratio in (("csv", 1), ("parquet", PARQUET_TEXT_RATIO)):
        try:
            sizes.append((folder / f"{name}.{suffix}").stat().st_size * ratio)
        except OSError:  # absent (or unreadable: load_table says so)
            continue
    return max(sizes)


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
    try:
        data = read_output(path)
    except OSError as exc:
        raise IngestError(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    loaded = LoadedTable(
        table.name,
        empty_frame(table),
        file=path.name,
        format=path.suffix.lstrip("."),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    if is_blank(data):
        if table.name == "persons":
            raise IngestError(
                f"{path.name}: the file is empty — the sweep cannot run without the persons table"
            )
        loaded.error = f"{path.name}: the file is empty; the table is treated as empty"
        return loaded, _empty_quarantine()
    try:
        if path.suffix == ".csv":
            raw, loaded.encoding = read_csv_text(data, path)
        else:
            raw = read_parquet_text(data, path, table)
        if table.name == "persons" and raw.height == 0 and raw.width > 0:
            raise IngestError(
                f"{path.name}: a header but no data rows — the sweep cannot run without persons"
            )
        return validate(raw, table, loaded, path)
    except IngestError:
        raise
    except (pl.exceptions.PolarsError, ValueError, OverflowError) as exc:
        # A delivery broken in a way no check above foresaw: still one line naming the file.
        raise IngestError(f"{path.name}: cannot be read: {first_line(exc)}") from exc


def _looks_utf16(data: bytes) -> bool:
    """A UTF-16 byte order mark, or text whose every other byte is NUL (ASCII in UTF-16) and
    whose other bytes are text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    head = data[:4096]
    even, odd = head[0::2], head[1::2]
    half = len(head) // 2
    nuls = sorted((even.count(0), odd.count(0)))
    if not (half >= 8 and nuls[1] > 0.3 * half and nuls[0] <= 0.01 * half):
        return False
    codec = "utf-16-be" if even.count(0) > odd.count(0) else "utf-16-le"
    # the NULs are the high bytes of ASCII characters; decoded, the whole must read as text
    return not re.search(CONTROL_BYTES, head[: 2 * half].decode(codec, errors="replace"))


def read_csv_text(data: bytes, path: Path) -> tuple[pl.DataFrame, str]:
    """Decode a CSV file (UTF-8 with/without BOM, else GBK) into an all-text frame.

    UTF-16 and binary data (NUL or other control bytes) are refused with an error naming the
    file: decoded as GBK they would become plausible-looking nonsense.
    """
    if _looks_utf16(data):
        raise IngestError(
            f"{path.name}: UTF-16 text; the data contract accepts UTF-8 (with or without BOM) "
            "or GBK — save the file as UTF-8"
        )
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
    control = find_control_byte(data)
    if control:
        raise IngestError(
            f"{path.name}: binary data, not CSV text (control byte "
            f"0x{control.group()[0]:02x} at byte {control.start()})"
        )
    if is_blank(data):
        return pl.DataFrame(), encoding
    try:
        frame = pl.read_csv(
            io.BytesIO(data),
            infer_schema=False,
            truncate_ragged_lines=True,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise IngestError(f"{path.name}: not a readable CSV file: {first_line(exc)}") from exc
    frame.columns = [c.strip().lstrip("\ufeff") for c in frame.columns]
    return frame, encoding


def read_parquet_text(data: bytes, path: Path, table: Table) -> pl.DataFrame:
    """Read a Parquet file and render every column as the text a CSV would hold."""
    if not data.startswith(b"PAR1"):
        hint = ""
        if not re.search(CONTROL_BYTES.encode(), data[:4096]):
            hint = f" — it looks like text: a CSV file is delivered as {path.stem}.csv"
        raise IngestError(f"{path.name}: not a Parquet file (no PAR1 signature){hint}")
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except pl.exceptions.PolarsError as exc:
        raise IngestError(f"{path.name}: not a readable Parquet file: {first_line(exc)}") from exc
    return parquet_as_text(frame, path, table)


def parquet_as_text(frame: pl.DataFrame, path: Path, table: Table) -> pl.DataFrame:
    """Render every column of a Parquet frame as the text a CSV would hold."""
    columns: list[pl.Series] = []
    for name, dtype in frame.schema.items():
        expr = _parquet_text(pl.col(name), dtype, name.strip(), table)
        why = ""
        if expr is not None:
            try:
                columns.append(frame.select(expr).to_series())
                continue
            except pl.exceptions.PolarsError as exc:
                why = f" ({first_line(exc)})"
        if name.strip() not in table.by_name:  # an ignored extra column: keep only its name
            columns.append(pl.Series(name.strip(), [None] * frame.height, pl.String))
            continue
        raise IngestError(
            f"{path.name}: column '{name.strip()}' has Parquet type {dtype}, which cannot "
            f"hold {table.by_name[name.strip()].kind} values — deliver it as text, a date, "
            f"a boolean or a number{why}"
        )
    return pl.DataFrame(columns) if columns else frame


def _parquet_text(col: pl.Expr, dtype: pl.DataType, name: str, table: Table) -> pl.Expr | None:
    """The expression rendering one Parquet column as CSV text, or None for a type that
    cannot hold a scalar value of the contract (lists, structs, durations, …)."""
    kind = table.by_name[name].kind if name in table.by_name else "text"
    if dtype.is_nested() or isinstance(dtype, pl.Duration | pl.Object):
        return None
    if dtype == pl.String:
        e = col
    elif dtype == pl.Date or isinstance(dtype, pl.Datetime):
        fmt = "%Y-%m" if kind == "month" else "%Y-%m-%d"
        e = (col.dt.date() if isinstance(dtype, pl.Datetime) else col).dt.strftime(fmt)
    elif dtype == pl.Boolean:
        e = pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    elif dtype.is_float():
        e = col.cast(pl.String)
        if kind in ("grade", "id", "ref_id", "code", "district", "community", "account"):
            e = e.str.replace(r"\.0$", "")
    else:
        e = col.cast(pl.String)
    return e.alias(name)


def _empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


# ------------------------------------------------------------------------------ validation

# Reason texts, filled in only for the (few) quarantined rows. {field}, {value} and {allowed}.
REASONS: dict[str, str] = {
    "required": "{field} is required but empty",
    "cell_too_long": "{field} is {length:,} characters long (at most "
    + f"{MAX_CELL_CHARS:,}): a broken row",
    "full_width_digit": "{field} has full-width digits: '{value}'",
    **{code: "'{value}': " + text for code, text in idcard.ID_REASONS.items()},
    "bad_date": "{field} '{value}' is not a real date YYYY-MM-DD",
    "bad_month": "{field} '{value}' is not a month YYYY-MM",
    "negative_money": "{field} '{value}' is negative",
    "money_precision": "{field} '{value}' has more than 2 decimals",
    "bad_money": "{field} '{value}' is not an amount in yuan (digits, at most 2 decimals)",
    "money_too_large": "{field} '{value}' is implausibly large",
    "bad_enum": "{field} '{value}' is not one of: {allowed}",
    "bad_bool": "{field} '{value}' is not a boolean (true/false/1/0)",
    "bad_grade": "{field} '{value}' is not a grade 1-4",
    "bad_number": "{field} '{value}' is not a number >= 0",
    "bad_district": "{field} '{value}' is not a 6-digit district code",
    "bad_community": "{field} '{value}' is not a 9-digit community code",
    "bad_account": "{field} is not a bank account number (" + ACCOUNT_NO_RULE + ")",
    "birth_date_mismatch": "birth_date '{value}' disagrees with the ID's birth date {id_birth}",
    "sex_mismatch": "sex '{value}' disagrees with the ID, whose sequence digit says {id_sex}",
    "duplicate_key": "duplicate key ({key}): an earlier row with the same key is kept",
}


def _cell(column: Column) -> pl.Expr:
    """The column's text as checked and typed: money loses the sign of a minus zero."""
    s = pl.col(column.name)
    return s.str.replace(MINUS_ZERO, "$1") if column.kind == "money" else s


# the forms the row checks accept, shared by the full checks and the cheap test
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
NUMBER_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
DISTRICT_PATTERN = r"^[0-9]{6}$"
COMMUNITY_PATTERN = r"^[0-9]{9}$"
BOOL_TEXTS = ("true", "false", "1", "0")  # any case
GRADES = ("1", "2", "3", "4")


# The cheap test of the common case, per kind: a cell matching it passes every check of
# `_problem` (each pattern allows only ASCII, so no full-width digit and no over-long cell).
# A row failing the test of any column gets the full checks, which say what is wrong.
_VALID_PATTERN = {
    "date": f"^{date_pattern('-')}$",
    "month": MONTH_PATTERN,
    "money": r"^[0-9]{1," + str(MAX_MONEY_DIGITS) + r"}(\.[0-9]{1,2})?$",
    "number": NUMBER_PATTERN,
    "district": DISTRICT_PATTERN,
    "community": COMMUNITY_PATTERN,
    "account": ACCOUNT_NO_PATTERN,
}
# the bool texts the cheap test clears (the full check accepts any case of BOOL_TEXTS)
_BOOL_VALUES = list(dict.fromkeys(v for t in BOOL_TEXTS for v in (t, t.capitalize(), t.upper())))


def _problem(column: Column) -> pl.Expr:
    """The reason code of the first failing check of a column, or null when acceptable."""
    s = _cell(column)
    checks: list[tuple[pl.Expr, str | pl.Expr]] = [
        (s.str.len_chars() > MAX_CELL_CHARS, "cell_too_long")
    ]
    kind = column.kind
    if kind == "id":
        checks.append((pl.lit(True), idcard.problem_expr(s)))  # full-width → id_format
    else:
        checks.append((s.str.contains(FULL_WIDTH_DIGIT), "full_width_digit"))
    if kind == "date":
        ok = (
            s.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
            & s.str.to_date("%Y-%m-%d", strict=False).is_not_null()
        )
        checks.append((~ok, "bad_date"))
    elif kind == "month":
        checks.append((~s.str.contains(MONTH_PATTERN), "bad_month"))
    elif kind == "money":
        checks += [
            (s.str.starts_with("-"), "negative_money"),
            (s.str.contains(r"^[0-9]+\.[0-9]{3,}$"), "money_precision"),
            (~s.str.contains(r"^[0-9]+(\.[0-9]{1,2})?$"), "bad_money"),
            (s.str.split(".").list.first().str.len_chars() > MAX_MONEY_DIGITS, "money_too_large"),
        ]
    elif kind == "enum":
        checks.append((~s.is_in(list(column.values)), "bad_enum"))
    elif kind == "bool":
        checks.append((~s.str.to_lowercase().is_in(list(BOOL_TEXTS)), "bad_bool"))
    elif kind == "grade":
        checks.append((~s.is_in(list(GRADES)), "bad_grade"))
    elif kind == "number":
        checks.append((~s.str.contains(NUMBER_PATTERN), "bad_number"))
    elif kind == "district":
        checks.append((~s.str.contains(DISTRICT_PATTERN), "bad_district"))
    elif kind == "community":
        checks.append((~s.str.contains(COMMUNITY_PATTERN), "bad_community"))
    elif kind == "account":
        checks.append((~s.str.contains(ACCOUNT_NO_PATTERN), "bad_account"))
    chain: pl.Expr = pl.lit(None, pl.String)
    for failing, code in reversed(checks):
        value = code if isinstance(code, pl.Expr) else pl.lit(code)
        chain = pl.when(failing).then(value).otherwise(chain)
    if column.required:
        return pl.when(s.is_null()).then(pl.lit("required")).otherwise(chain)
    return pl.when(s.is_not_null()).then(chain)


def _surely_valid(column: Column) -> pl.Expr:
    """True where the column's cell surely passes :func:`_problem` (False or null: maybe not)."""
    s = pl.col(column.name)
    kind = column.kind
    if kind == "id":
        ok = idcard.valid_expr(s)
    elif kind in _VALID_PATTERN:
        ok = s.str.contains(_VALID_PATTERN[kind])
        if kind == "number":
            ok = ok & (s.str.len_bytes() <= MAX_CELL_CHARS)
    elif kind in ("enum", "bool", "grade"):
        values = {"enum": list(column.values), "bool": _BOOL_VALUES,
                  "grade": list(GRADES)}[kind]  # fmt: skip
        plain = [
            v for v in values if len(v) <= MAX_CELL_CHARS and not re.search(FULL_WIDTH_DIGIT, v)
        ]
        ok = s.is_in(plain)
    else:  # text, code, ref_id: only the length and the full-width digits are checked
        ok = (s.str.len_bytes() <= MAX_CELL_CHARS) & ~s.str.contains(FULL_WIDTH_DIGIT)
    return (s.is_not_null() & ok) if column.required else (s.is_null() | ok)


def _typed(column: Column) -> pl.Expr:
    """The typed value of a column whose checks passed."""
    s = _cell(column)
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


def _cross_checks(table: Table) -> list[tuple[str, str, pl.Expr]]:
    """Checks across columns of a row: (field, code, failing?). persons: the ID's birth/sex."""
    if table.name != "persons":
        return []
    id_no = pl.col("id_no").str.to_uppercase()
    birth = pl.col("birth_date").str.to_date("%Y-%m-%d", strict=False)
    return [
        ("birth_date", "birth_date_mismatch", birth != idcard.birth_date_expr(id_no)),
        ("sex", "sex_mismatch", pl.col("sex") != idcard.sex_expr(id_no)),
    ]


def reason_text(table: Table, row: dict) -> str:
    """The readable reason of one quarantined row (see :data:`REASONS`)."""
    fld, code = row["__field"], row["__code"]
    column = table.by_name.get(fld)
    id_no = (row.get("id_no") or "").upper()
    return REASONS.get(code, code).format(
        field=fld,
        value=row.get(fld) or "",
        allowed=", ".join(column.values) if column else "",
        key=", ".join(table.key),
        id_birth=f"{id_no[6:10]}-{id_no[10:12]}-{id_no[12:14]}" if len(id_no) == 18 else "?",
        id_sex=("M" if id_no[16:17].isdigit() and int(id_no[16]) % 2 else "F"),
        length=len(row.get(fld) or ""),
    )


def trimmed(raw: pl.DataFrame, offset: int = 0) -> pl.LazyFrame:
    """Cells trimmed, an empty cell null, all-empty records skipped; `_row` is the record's
    1-based number in the file (`offset` records precede this frame)."""
    present = list(raw.columns)
    frame = (
        raw.lazy()
        .with_row_index("_row", offset=offset + 1)
        .with_columns(
            pl.col("_row").cast(pl.Int64),
            *[pl.col(c).str.strip_chars().replace("", None).alias(c) for c in present],
        )
        .collect()
    )
    if present:  # filtered only when there is an empty record (copying every column costs)
        kept = frame.select(~pl.all_horizontal([pl.col(c).is_null() for c in present]))
        if not kept.to_series().all():
            frame = frame.filter(kept.to_series())
    return frame.lazy()


def _id_compared() -> pl.Expr:
    """A persons row's ID as compared across rows (null unless the ID itself is valid): its
    17-digit body as an integer, which tells valid IDs apart as their upper-cased text does
    (the check character follows from the body) at a fraction of the cost."""
    return pl.when(pl.col("__id_ok")).then(idcard.id_key(pl.col("id_no")))


def key_struct(table: Table) -> pl.Expr:
    """A row's key as compared for duplicates among rows whose every check passed (a valid
    ID as its integer body, see :func:`_id_compared`)."""
    return pl.struct(
        [
            idcard.id_key(pl.col(k)).alias(k) if table.by_name[k].kind == "id" else pl.col(k)
            for k in table.key
        ]
    )


def row_checks(lazy: pl.LazyFrame, table: Table, present: list[str]) -> pl.LazyFrame:
    """The checks of one row on its own: `__field`/`__code` of the first failing check,
    `__identity` (the ID's own problem or a birth/sex mismatch) and, for persons, `__id_ok`.
    The checks across rows (duplicate keys, `duplicate_id`) come after.

    Most rows are clean: a cheap test per column (:func:`_surely_valid`) clears them, and only
    the rows it does not clear get the full checks (:func:`_full_checks`), whose results are
    spread back to their places — the same columns as checking every row in full."""
    frame = (
        lazy.select(
            ["_row"]
            + [
                pl.col(c.name) if c.name in present else pl.lit(None, pl.String).alias(c.name)
                for c in table.columns
            ]
        )
        .with_columns(_clean(table).alias("__clean"))
        .collect()
    )
    clean = frame["__clean"]
    frame = frame.drop("__clean")
    doubtful = clean.not_().arg_true()
    checked = _full_checks(frame[doubtful].lazy(), table).collect()
    outputs = ["__field", "__code", "__identity", *(["__id_ok"] if table.name == "persons" else [])]
    spread = []
    for name in outputs:  # a clean row: no field, code nor identity issue; its ID is valid
        values = checked[name]
        default = True if name == "__id_ok" else None
        column = pl.repeat(default, frame.height, dtype=values.dtype, eager=True)
        spread.append(column.scatter(doubtful, values).alias(name))
    return frame.with_columns(spread).lazy()


def _clean(table: Table) -> pl.Expr:
    """True for a row that surely passes every check of :func:`_full_checks`."""
    tests = [_surely_valid(c) for c in table.columns]
    if table.name == "persons":  # the ID agrees with the birth date and the sex, as text
        id_no = pl.col("id_no")
        id_birth = pl.concat_str(
            [id_no.str.slice(6, 4), id_no.str.slice(10, 2), id_no.str.slice(12, 2)], separator="-"
        )
        tests += [pl.col("birth_date") == id_birth, pl.col("sex") == idcard.sex_expr(id_no)]
    return pl.all_horizontal(tests).fill_null(False)


def _full_checks(frame: pl.LazyFrame, table: Table) -> pl.LazyFrame:
    """Every check of every cell of `frame` (`_row` and the table's columns): see
    :func:`row_checks`."""
    # one lazy query per table, so common sub-expressions (the ID's 17-digit body) run once
    codes = {c.name: f"__code_{c.name}" for c in table.columns}
    frame = frame.with_columns([_problem(c).alias(codes[c.name]) for c in table.columns])
    field_expr = pl.coalesce(
        [pl.when(pl.col(codes[c.name]).is_not_null()).then(pl.lit(c.name)) for c in table.columns]
    )
    code_expr = pl.coalesce([pl.col(codes[c.name]) for c in table.columns])
    identity: list[pl.Expr] = []
    if "id_no" in table.by_name:
        id_code = pl.col(codes["id_no"])
        identity.append(pl.when(id_code.is_in(list(idcard.ID_REASONS))).then(id_code))
    for fld, code, failing in _cross_checks(table):
        fails = pl.col(codes["id_no"]).is_null() & pl.col(codes[fld]).is_null() & failing
        fails = fails.fill_null(False)
        field_expr = pl.coalesce([field_expr, pl.when(fails).then(pl.lit(fld))])
        code_expr = pl.coalesce([code_expr, pl.when(fails).then(pl.lit(code))])
        identity.append(pl.when(fails).then(pl.lit(code)))
    extra = []
    if table.name == "persons":
        extra.append(pl.col(codes["id_no"]).is_null().alias("__id_ok"))
    frame = frame.with_columns(
        field_expr.alias("__field"),
        code_expr.alias("__code"),
        (pl.coalesce(identity) if identity else pl.lit(None, pl.String)).alias("__identity"),
        *extra,
    )
    return frame.select(["_row", *table.names, "__field", "__code", "__identity",
                         *(["__id_ok"] if extra else [])])  # fmt: skip


def split_checked(frame: pl.DataFrame, table: Table) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted typed rows with `_row`, quarantine rows) of a checked frame."""
    bad = pl.col("__field").is_not_null()
    rejected = frame.filter(bad)
    accepted = frame.lazy().filter(~bad).select(["_row"] + [_typed(c) for c in table.columns])
    return accepted.collect(), quarantine_rows(rejected, table)


def quarantine_rows(rejected: pl.DataFrame, table: Table) -> pl.DataFrame:
    """The quarantine rows of rejected rows (`_row`, the table's columns as text, `__field`,
    `__code`, `__identity`): the ID as given (an over-long one cut short) and the reason."""
    reasons = [reason_text(table, r) for r in rejected.iter_rows(named=True)]
    id_given = pl.lit(None, pl.String)
    if "id_no" in table.by_name:  # as given, but an over-long one cut short
        given = pl.col("id_no")
        id_given = (
            pl.when(given.str.len_chars() > MAX_ID_ECHO)
            .then(given.str.slice(0, MAX_ID_ECHO) + pl.lit("…"))
            .otherwise(given)
        )
    return rejected.select(
        pl.lit(table.name).alias("table"),
        pl.col("_row").alias("row"),
        id_given.alias("id_no"),
        pl.col("__field").alias("field"),
        pl.Series("reason", reasons, dtype=pl.String),
        pl.col("__code").alias("code"),
        pl.col("__identity").alias("identity_issue"),
    ).cast(QUARANTINE_SCHEMA)


def validate(
    raw: pl.DataFrame, table: Table, loaded: LoadedTable, path: Path
) -> tuple[LoadedTable, pl.DataFrame]:
    """Validate an all-text frame against the table's schema (see module doc)."""
    n = raw.height
    present = list(raw.columns)
    loaded.extra_columns = sorted(c for c in present if c not in table.by_name)
    lazy = trimmed(raw)  # trim cells; an empty cell is null; all-empty records are skipped

    missing = [c for c in table.required if c not in present]
    if missing:
        raw = lazy.collect()
        loaded.skipped_empty = n - raw.height
        loaded.read = raw.height
        message = f"{path.name}: required column '{missing[0]}' is missing"
        if table.name == "persons":
            raise IngestError(message + " — the sweep cannot run without the persons table")
        loaded.error = message + "; the whole table is rejected"
        q = raw.select(
            pl.lit(table.name).alias("table"),
            pl.col("_row").alias("row"),
            (pl.col("id_no") if "id_no" in present else pl.lit(None, pl.String)).alias("id_no"),
            pl.lit(missing[0]).alias("field"),
            pl.lit(f"table rejected: required column '{missing[0]}' missing in {path.name}").alias(
                "reason"
            ),
            pl.lit("table_rejected").alias("code"),
            pl.lit(None, pl.String).alias("identity_issue"),
        )
        loaded.quarantined = q.height
        return loaded, q.cast(QUARANTINE_SCHEMA)

    frame = row_checks(lazy, table, present)
    if table.name == "persons":
        frame = frame.with_columns(
            pl.coalesce(
                pl.col("__identity"),
                pl.when(pl.col("__id_ok") & (pl.len().over(_id_compared()) > 1)).then(
                    pl.lit("duplicate_id")
                ),
            ).alias("__identity")
        )
    if table.key:
        # duplicate keys among otherwise valid rows: the first is kept
        ok = pl.col("__field").is_null()
        dup = ok & ~pl.when(ok).then(key_struct(table)).is_first_distinct()
        frame = frame.with_columns(
            pl.when(dup).then(pl.lit(table.key[0])).otherwise(pl.col("__field")).alias("__field"),
            pl.when(dup).then(pl.lit("duplicate_key")).otherwise(pl.col("__code")).alias("__code"),
        )
    frame = frame.select(["_row", *table.names, "__field", "__code", "__identity"]).collect()
    loaded.read = frame.height
    loaded.skipped_empty = n - frame.height
    accepted, quarantine = split_checked(frame, table)
    loaded.frame = accepted
    loaded.quarantined = quarantine.height
    return loaded, quarantine.cast(QUARANTINE_SCHEMA)
