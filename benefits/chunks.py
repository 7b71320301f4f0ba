"""Read a departmental file in bounded chunks of all-text rows (for the partitioned engines).

The chunks are exactly the rows :func:`benefits.ingest.load_table` would read from the whole
file, in order: CSV is cut at record boundaries (a newline outside quotes — GBK and UTF-8
never put a newline or a quote inside a multi-byte character) and decoded block by block in
the encoding detected for the whole file; Parquet is read a slice of rows at a time. Anything
unusual — UTF-16, binary data, a file that is not what its name says, an undecodable byte —
raises :class:`WholeFile`: the caller then reads the file whole, which reports the problem in
the same words as the single engine.

Example:
    >>> info = FileInfo.of(Path("datasets/sample/persons.csv"))  # doctest: +SKIP
    >>> sum(c.height for c in csv_chunks(path, info, 1 << 20))  # doctest: +SKIP
    3000
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from benefits.ingest import CONTROL_BYTES, _looks_utf16, parquet_as_text
from benefits.schema import Table

READ_BLOCK = 1 << 22  # bytes per read while hashing and detecting the encoding
_CONTROL = re.compile(CONTROL_BYTES.encode())


class WholeFile(Exception):
    """This file must be read whole (see module doc)."""


@dataclass(frozen=True)
class FileInfo:
    """A file's size, SHA-256 and (CSV) encoding, found in one streaming pass."""

    size: int
    sha256: str
    encoding: str | None  # utf-8, utf-8-sig or gbk; None for Parquet

    @classmethod
    def of(cls, path: Path) -> FileInfo:
        digest = hashlib.sha256()
        size = 0
        utf8 = codecs.getincrementaldecoder("utf-8")()
        valid = True
        head = b""
        with path.open("rb") as f:
            while block := f.read(READ_BLOCK):
                if not head:
                    head = block[:4096]
                digest.update(block)
                size += len(block)
                if valid and path.suffix == ".csv":
                    try:
                        utf8.decode(block)
                    except UnicodeDecodeError:
                        valid = False
        if valid and path.suffix == ".csv":
            try:
                utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                valid = False
        encoding = None
        if path.suffix == ".csv":
            if _looks_utf16(head):
                raise WholeFile
            if head.startswith(b"\xef\xbb\xbf"):
                encoding = "utf-8-sig"
            else:
                encoding = "utf-8" if valid else "gbk"
        return cls(size, digest.hexdigest(), encoding)


def _record_end(block: bytes, quotes_before: int) -> int:
    """The index just after the last newline of `block` that ends a record (an even number
    of quotes before it), or -1."""
    end = block.rfind(b"\n")
    while end >= 0:
        if (quotes_before + block.count(b'"', 0, end)) % 2 == 0:
            return end + 1
        end = block.rfind(b"\n", 0, end)
    return -1


def csv_chunks(path: Path, info: FileInfo, chunk_bytes: int) -> Iterator[pl.DataFrame]:
    """The file's rows as all-text frames of about `chunk_bytes` of CSV each."""
    with path.open("rb") as f:
        if info.encoding == "utf-8-sig":
            f.read(3)
        first = f.read(chunk_bytes)
        while b"\n" not in first and (more := f.read(chunk_bytes)):
            first += more  # a header longer than a chunk
        end = first.find(b"\n")
        if end < 0 or not first.strip():
            raise WholeFile  # a header alone or an empty file: the whole-file path reports it
        header, rest = first[: end + 1], first[end + 1 :]
        if header.count(b'"') % 2:
            raise WholeFile
        header_text = _decode(header, info.encoding)
        pending = rest
        at_eof = False
        while not at_eof or pending:
            if not at_eof:
                more = f.read(chunk_bytes)
                at_eof = not more
                pending += more
            if at_eof:
                block, pending = pending, b""
            else:
                cut = _record_end(pending, 0)
                if cut < 0:
                    continue  # one record longer than a chunk: read on
                block, pending = pending[:cut], pending[cut:]
            if not block:
                continue
            yield _parse(header_text + _decode(block, info.encoding), path)


def _decode(data: bytes, encoding: str | None) -> bytes:
    """UTF-8 bytes of a block (GBK transcoded), refusing control bytes."""
    if encoding == "gbk":
        try:
            data = data.decode("gb18030").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise WholeFile from exc
    if _CONTROL.search(data):
        raise WholeFile
    return data


def _parse(data: bytes, path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_csv(
            io.BytesIO(data), infer_schema=False, truncate_ragged_lines=True, raise_if_empty=False
        )
    except pl.exceptions.PolarsError as exc:
        raise WholeFile from exc
    frame.columns = [c.strip().lstrip("\ufeff") for c in frame.columns]
    return frame


def parquet_chunks(path: Path, table: Table, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """The file's rows, `chunk_rows` at a time, rendered as text like a CSV's."""
    with path.open("rb") as f:
        if f.read(4) != b"PAR1":
            raise WholeFile
    try:
        scan = pl.scan_parquet(path)
        rows = int(scan.select(pl.len()).collect().item())
    except pl.exceptions.PolarsError as exc:
        raise WholeFile from exc
    if rows == 0:
        raise WholeFile
    for offset in range(0, rows, chunk_rows):
        try:
            frame = scan.slice(offset, chunk_rows).collect()
        except pl.exceptions.PolarsError as exc:
            raise WholeFile from exc
        yield parquet_as_text(frame, path, table)
