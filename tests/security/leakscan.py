"""A scan of everything the web app gives out or writes down while the web tests run.

The web and browser tests' fixtures (tests/web/conftest.py) serve the app through
:func:`recording` and install :func:`install_log_capture`, so every answer — page, API
response, PDF (as text), CSV or Parquet download, error response — and every log line of the
app and of uvicorn (with its exception text and traceback) passes through :data:`RECORDER`,
as does, when a test's ledger is closed, every entry of its audit chain
(:meth:`Recorder.audit_log`),
which looks in it for a resident ID, account number or full name of the seeded persons
(the bundled sample). At the end of the session :meth:`Recorder.assert_clean` fails with
every finding.

A clear value is allowed only where the server showed it on purpose: an answer to a request
that asked to reveal (``reveal=true``: the app refuses it, 403, to a user without the ``pii``
grant — tests/security/test_exposure_matrix.py) and an export file whose watermark says it
is of class ``sensitive`` (a revealed export, approved under the export rules). Log lines
and exception texts are never allowed one.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
import traceback
import unicodedata
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from benefits.web.demo import DEMO_USERS

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "sample"
# staff, not residents: the demo users' display names, and the user test_web_flows creates
STAFF = {user[1] for user in DEMO_USERS} | {"孙丽"}
DIGITS = re.compile(r"[0-9X]{8,}")
HAN = re.compile(r"[\u4e00-\u9fff]{2,}")
# the root logger, and the loggers uvicorn configures not to propagate to it
LOGGERS = ("", "uvicorn", "uvicorn.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=1)
def secrets() -> dict[str, frozenset[str]]:
    """The seeded persons' resident IDs, account numbers and full names."""
    persons = _rows(SAMPLE / "persons.csv")
    return {
        "resident ID": frozenset(
            r["id_no"].strip().upper() for r in persons if len(r["id_no"].strip()) >= 15
        ),
        "account number": frozenset(
            r["account_no"].strip()
            for r in _rows(SAMPLE / "bank_accounts.csv")
            if len(r["account_no"].strip()) >= 8
        ),
        "name": frozenset(n for r in persons if len(n := r["name"].strip()) >= 2) - STAFF,
    }


@lru_cache(maxsize=1)
def _lengths() -> tuple[frozenset[int], frozenset[int]]:
    s = secrets()
    return (
        frozenset(len(v) for v in s["resident ID"] | s["account number"]),
        frozenset(len(v) for v in s["name"]),
    )


def find(text: str) -> dict[str, list[str]]:
    """The seeded persons' IDs, accounts and names in `text` (NFKC: full-width digits count),
    by kind — found through every run of digits and of Chinese characters, so the scan stays
    fast on large answers."""
    s = secrets()
    text = unicodedata.normalize("NFKC", text).upper()
    number_lengths, name_lengths = _lengths()
    hits: dict[str, set[str]] = {}
    for run in set(DIGITS.findall(text)):
        for n in number_lengths:
            for i in range(0, len(run) - n + 1):
                piece = run[i : i + n]
                for kind in ("resident ID", "account number"):
                    if piece in s[kind]:
                        hits.setdefault(kind, set()).add(piece)
    for run in set(HAN.findall(text)):
        for n in name_lengths:
            for i in range(0, len(run) - n + 1):
                if run[i : i + n] in s["name"]:
                    hits.setdefault("name", set()).add(run[i : i + n])
    return {k: sorted(v)[:3] for k, v in hits.items()}


def pdf_text(data: bytes) -> str:
    """The text of a PDF (every page), as a reader's copy-and-paste gives it."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError):  # not a whole PDF (a test's stand-in): its bytes as text
        return data.decode("utf-8", errors="replace")


def _revealed_file(content_type: str, body: bytes) -> bool:
    """Whether an export file's watermark says it is a revealed (class sensitive) export."""
    if body[:4] == b"PAR1":
        import pyarrow.parquet as pq

        meta = pq.read_metadata(io.BytesIO(body)).metadata or {}
        return meta.get(b"benefits.export.class") == b"sensitive"
    first = body.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return first.startswith("# benefits export") and first.rstrip().endswith("class sensitive")


def body_text(content_type: str, body: bytes) -> str:
    """What a reader gets out of an answer: PDF text, Parquet values, else the decoded text."""
    if body[:5] == b"%PDF-":
        return pdf_text(body)
    if body[:4] == b"PAR1":
        import polars as pl

        return pl.read_parquet(io.BytesIO(body)).write_csv()
    return body.decode("utf-8", errors="replace")


@dataclass
class Finding:
    """One clear value where it must not be."""

    where: str
    found: dict[str, list[str]]

    def __str__(self) -> str:
        return f"{self.where}: " + "; ".join(f"{k} {', '.join(v)}" for k, v in self.found.items())


@dataclass
class Recorder:
    """Counts what was scanned and keeps every finding."""

    responses: int = 0
    pdfs: int = 0
    log_lines: int = 0
    exceptions: int = 0
    audit_entries: int = 0
    findings: list[Finding] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def response(self, method: str, path: str, query: str, status: int, content_type: str,
                 body: bytes) -> None:  # fmt: skip
        """Scan one answer of the app."""
        text = body_text(content_type, body)
        args = {k.lower(): v for k, v in parse_qs(query).items()}
        asked = any(v.lower() in ("true", "1", "yes", "on") for v in args.get("reveal", []))
        allowed = (asked and status == 200) or _revealed_file(content_type, body)
        with self.lock:
            self.responses += 1
            self.pdfs += body[:5] == b"%PDF-"
        found = {} if allowed else find(text)
        if found:
            self._add(f"{method} {path}{'?' + query if query else ''} → {status}", found)

    def log(self, logger: str, text: str) -> None:
        """Scan one log line (with its exception text and traceback)."""
        with self.lock:
            self.log_lines += 1
        found = find(text)
        if found:
            self._add(f"log line of {logger or 'root'}: {text[:160]!r}", found)

    def exception(self, where: str, exc: BaseException) -> None:
        """Scan the text and traceback of an exception that left the app."""
        with self.lock:
            self.exceptions += 1
        text = "".join(traceback.format_exception(exc))
        found = find(text)
        if found:
            self._add(f"exception {type(exc).__name__} from {where}", found)

    def audit_log(self, engine: Any, where: str) -> None:
        """Scan every entry of a ledger's audit chain (who, action, object and content)."""
        from sqlalchemy import text

        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT seq, actor, action, object_type, object_id, content FROM audit_log"
            )).all()  # fmt: skip
        with self.lock:
            self.audit_entries += len(rows)
        for row in rows:
            found = find(" ".join(str(v) for v in row[1:]))
            if found:
                self._add(f"audit entry #{row.seq} ({row.action}) of {where}", found)

    def _add(self, where: str, found: dict[str, list[str]]) -> None:
        with self.lock:
            self.findings.append(Finding(where, found))

    def reset(self) -> None:
        with self.lock:
            self.responses = self.pdfs = self.log_lines = self.exceptions = 0
            self.audit_entries = 0
            self.findings.clear()

    def assert_clean(self) -> None:
        """Fail with every finding (the answer, log line or exception and what it held)."""
        if self.findings:
            lines = "\n".join(f"  {f}" for f in self.findings[:40])
            raise AssertionError(
                f"{len(self.findings)} answers, log lines or exceptions carry a seeded "
                f"person's ID, account number or name in clear:\n{lines}"
            )


RECORDER = Recorder()


def recording(app: ASGIApp, recorder: Recorder = RECORDER) -> ASGIApp:
    """`app` with every HTTP answer, and every exception leaving it, passed to `recorder`."""

    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        status = 0
        content_type = ""
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for key, value in message.get("headers", []):
                    if key.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    recorder.response(
                        scope["method"], scope["path"],
                        scope.get("query_string", b"").decode("latin-1"),
                        status, content_type, b"".join(chunks),
                    )  # fmt: skip
            await send(message)

        try:
            await app(scope, receive, capture)
        except Exception as exc:
            recorder.exception(f"{scope['method']} {scope['path']}", exc)
            raise

    wrapped.__wrapped__ = app  # type: ignore[attr-defined]
    return wrapped


class _Capture(logging.Handler):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.DEBUG)
        self.recorder = recorder
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        mark = f"_leakscan_{id(self)}"
        if getattr(record, mark, False):  # seen through another of the loggers
            return
        setattr(record, mark, True)
        try:
            text = self.format(record)
        except Exception:  # a broken record must not stop the test
            text = f"{record.msg} {record.args}"
        self.recorder.log(record.name, text)


_installed: dict[int, _Capture] = {}


def install_log_capture(recorder: Recorder = RECORDER) -> None:
    """Pass every log record of the app (``benefits.*``), of uvicorn and of the root logger
    to `recorder` (once; ``benefits`` logs from INFO up)."""
    if id(recorder) in _installed:
        return
    handler = _installed[id(recorder)] = _Capture(recorder)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
    benefits = logging.getLogger("benefits")
    if benefits.level == logging.NOTSET or benefits.level > logging.INFO:
        benefits.setLevel(logging.INFO)


def remove_log_capture(recorder: Recorder = RECORDER) -> None:
    """Undo :func:`install_log_capture`."""
    handler = _installed.pop(id(recorder), None)
    if handler is not None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)
