"""Output limits: the rules every file or list that leaves the system goes through (issue 14).

- **Limits** (:class:`ExportLimits`, ``$BENEFITS_EXPORT_*``): a *bulk* export — personal data
  of more than ``bulk_persons`` persons — needs a stated purpose and a second person's
  approval; one export holds at most ``max_rows`` rows; one user takes at most
  ``max_rows_per_day`` rows a UTC day, files and API lists together; an approved export is
  downloaded once, within ``approval_hours``.
- **Masking by class** (:func:`shown`): a column of class ``personal`` or ``sensitive``
  (:mod:`benefits.classes`) is masked unless the user holds the ``pii`` grant and asked to
  reveal.
- **Watermark** (:class:`Watermark`): who, when, purpose, request and class — the first line of
  a CSV (``# …``), key-value metadata of a Parquet file, a line of text on a PDF.
- **Audit** (:func:`record_file`): each file's SHA-256 goes into the keyed audit chain
  (``export.file``), with its watermark.

The web app's export requests (four eyes, download once) are
:mod:`benefits.web.services.exports`. The bank file (:mod:`benefits.ledger.bankfile`) keeps the
bank's fixed format, so its watermark (:data:`BANK_PURPOSE`) and SHA-256 are in its
``batch.export`` audit entry; its second person is the batch's approver.

Example:
    >>> mark = Watermark("li", dt.datetime(2025, 1, 31, 8, 0), "audit", 7, "public")
    >>> print(to_csv(["id", "amount"], [["1", "459.00"]], mark).decode())
    # benefits export · by li · at 2025-01-31T08:00:00Z · purpose: audit · request 7 · class public
    id,amount
    1,459.00
    <BLANKLINE>
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import html
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from benefits import classes
from benefits.idcard import mask_id
from benefits.ledger import audit
from benefits.ledger.errors import Conflict, LedgerError

FILE = "export.file"
FORMATS = ("csv", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "pdf": "application/pdf",
}
RESTRICTED = "（受限 / restricted）"
BANK_PURPOSE = "发放 / payment through the bank (an approved batch)"
_SPACE = re.compile(r"\s+")


class QuotaExceeded(LedgerError):
    """A user's rows for the day are used up (HTTP 429)."""


class ExportRefused(Conflict):
    """An export the output rules refuse as asked: too many rows, a bulk export without a
    purpose, nothing to export (HTTP 409: the request is well formed, the rules say no)."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"${name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"${name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class ExportLimits:
    """How much data may leave the system, and when a second person must agree.

    Example:
        >>> ExportLimits().is_bulk(101), ExportLimits().is_bulk(100)
        (True, False)
    """

    bulk_persons: int = 100
    max_rows: int = 10_000
    max_rows_per_day: int = 50_000
    approval_hours: int = 24

    @classmethod
    def from_env(cls) -> ExportLimits:
        """The limits from ``$BENEFITS_EXPORT_BULK_PERSONS``, ``…_MAX_ROWS``,
        ``…_MAX_ROWS_PER_DAY`` and ``…_APPROVAL_HOURS`` (defaults otherwise)."""
        d = cls()
        return cls(
            bulk_persons=_env_int("BENEFITS_EXPORT_BULK_PERSONS", d.bulk_persons),
            max_rows=_env_int("BENEFITS_EXPORT_MAX_ROWS", d.max_rows),
            max_rows_per_day=_env_int("BENEFITS_EXPORT_MAX_ROWS_PER_DAY", d.max_rows_per_day),
            approval_hours=_env_int("BENEFITS_EXPORT_APPROVAL_HOURS", d.approval_hours),
        )

    def is_bulk(self, persons: int) -> bool:
        """True when personal data of `persons` persons is a bulk export."""
        return persons > self.bulk_persons

    def check_rows(self, rows: int) -> None:
        """Refuse (ExportRefused, 409) an export of more rows than one request may hold."""
        if rows > self.max_rows:
            raise ExportRefused(
                f"{rows} rows exceed the limit of {self.max_rows} rows per export "
                "(BENEFITS_EXPORT_MAX_ROWS): narrow the export with its filters"
            )

    def check_day(self, used: int, rows: int) -> None:
        """Refuse (QuotaExceeded, 429) `rows` more when `used` rows were taken today."""
        if used + rows > self.max_rows_per_day:
            left = max(0, self.max_rows_per_day - used)
            raise QuotaExceeded(
                f"daily limit reached: {used} of {self.max_rows_per_day} rows taken today "
                f"(UTC), {left} left, this needs {rows} (BENEFITS_EXPORT_MAX_ROWS_PER_DAY); "
                "try again tomorrow or ask an administrator"
            )


def one_line(text: str) -> str:
    """Text on one line: every run of white space (new lines too) as one space."""
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class Watermark:
    """Who exported a file, when (UTC), why, under which request, of which class."""

    who: str
    at: dt.datetime
    purpose: str
    request: int | None
    data_class: str

    def fields(self) -> dict[str, str]:
        """The watermark as text fields (Parquet metadata, the audit entry)."""
        at = self.at.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
        return {"by": self.who, "at": at, "purpose": one_line(self.purpose),
                "request": "" if self.request is None else str(self.request),
                "class": self.data_class}  # fmt: skip

    def text(self) -> str:
        """One line naming who, when, purpose, request and class."""
        f = self.fields()
        parts = [f"benefits export · by {f['by']} · at {f['at']} · purpose: {f['purpose']}"]
        if f["request"]:
            parts.append(f"request {f['request']}")
        parts.append(f"class {f['class']}")
        return " · ".join(parts)


def shown(column_class: str, value: Any, mask: str | None, *, reveal: bool) -> Any:
    """A value as a user may see it: in clear when `reveal` (the grant was checked), else
    masked by `mask` when its class is personal or sensitive.

    >>> shown("sensitive", "330106194501011233", "id", reveal=False)
    '330106********1233'
    >>> shown("sensitive", "x", "restricted", reveal=False)
    '（受限 / restricted）'
    >>> shown("internal", 3, None, reveal=False)
    3
    """
    if reveal or column_class not in (classes.PERSONAL, classes.SENSITIVE) or value in (None, ""):
        return value
    if mask == "id":
        return mask_id(str(value))
    if mask == "account":
        return "*" * max(0, len(str(value)) - 4) + str(value)[-4:]
    if mask == "restricted":
        return RESTRICTED
    return value


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]], mark: Watermark) -> bytes:
    """A CSV file (UTF-8) whose first line is the watermark as a ``#`` comment."""
    buf = io.StringIO(newline="")
    buf.write("# " + mark.text() + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else str(v) for v in row])
    return buf.getvalue().encode("utf-8")


def to_parquet(header: Sequence[str], rows: Sequence[Sequence[Any]], mark: Watermark) -> bytes:
    """A Parquet file (every column text) with the watermark in its key-value metadata
    (``benefits.watermark`` and one ``benefits.export.<field>`` per field)."""
    import polars as pl

    data = {name: [None if r[i] is None else str(r[i]) for r in rows]
            for i, name in enumerate(header)}  # fmt: skip
    frame = pl.DataFrame(data, schema={name: pl.String for name in header})
    meta = {"benefits.watermark": mark.text(),
            **{f"benefits.export.{k}": v for k, v in mark.fields().items()}}  # fmt: skip
    buf = io.BytesIO()
    frame.write_parquet(buf, metadata=meta)
    return buf.getvalue()


def watermark_html(document: str, mark: Watermark) -> str:
    """An HTML report with the watermark as a line of text at its end (printed in the PDF)."""
    line = ('<p class="export-watermark" style="font-size:8pt;color:#555;margin-top:12pt">'
            f"{html.escape(mark.text())}</p>")  # fmt: skip
    at = document.rfind("</body>")
    return document + line if at < 0 else document[:at] + line + document[at:]


def sha256_hex(data: bytes) -> str:
    """SHA-256 of bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def record_file(
    s: Session,
    *,
    mark: Watermark,
    what: str,
    fmt: str,
    data: bytes,
    rows: int,
    persons: int,
    object_type: str = "export",
    object_id: str | int = "",
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Append ``export.file`` (the file's SHA-256, size, rows, persons and its watermark) to
    the audit chain in session `s`; the SHA-256 (hex)."""
    sha = sha256_hex(data)
    audit.append(
        s, at=mark.at, actor=mark.who, action=FILE, object_type=object_type,
        object_id=object_id if object_id != "" else (mark.request or ""),
        after={"what": what, "format": fmt, "sha256": sha, "bytes": len(data), "rows": rows,
               "persons": persons, "watermark": mark.fields(), **(extra or {})},
    )  # fmt: skip
    return sha
