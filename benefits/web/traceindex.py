"""Fast lookup of one person's trace records: columnar traces, or a (possibly 200 MB)
``traces.jsonl`` of older runs.

Columnar traces (a sweep's ``traces/`` folder, :mod:`benefits.traces`) are sorted by resident
ID in small row groups: :class:`ColumnarTraces` reads the rule records once and, per lookup,
only the row groups whose ID range holds the person (Parquet statistics) — no index to build.

For ``traces.jsonl``, the first lookup in a file builds an index with Polars — for every
decision line, the person's ID, its byte offset and length — sorted by ID and cached as
Parquet beside the app's other caches (keyed by the file's path, size and modification
time; sealed when the traces are, see :mod:`benefits.sealedfiles`). A lookup is then a
binary search and a few ``seek``/``read`` calls: no request ever scans the file.

Example:
    >>> index = TraceIndex.open(Path("out/2025-01/traces.jsonl"), Path("out/web/cache"))
    ...                                                   # doctest: +SKIP
    >>> [d["policy_id"] for d in index.decisions("330106194501011233")]   # doctest: +SKIP
    ['old_age_allowance']
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from benefits.sealedfiles import is_sealed, open_output, read_parquet, seal_file
from benefits.traces import (
    RULES_FILE,
    TRACES_DIR,
    jsonl_lines,
    read_rule_records,
    scan_trace_parts,
    trace_parts,
)

ID_PATTERN = r'"id_no":"([^"\\]*)"'
_lock = threading.Lock()
_open: dict[tuple[str, int, int], TraceIndex] = {}
_columnar: dict[tuple[str, int], ColumnarTraces] = {}


class PersonTraces(Protocol):
    """What the web app reads from a run's traces, in either form."""

    rules: dict[str, dict[str, Any]]

    def lines(self, id_no: str) -> list[str]: ...

    def decisions(self, id_no: str) -> list[dict[str, Any]]: ...

    def id_list(self) -> pl.Series: ...


class ColumnarTraces:
    """A sweep folder's columnar traces (``traces/``): rule records in memory, decisions read
    per person from the Parquet parts (row groups skipped by their ID statistics)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.parts = trace_parts(self.out)
        self.rules = read_rule_records(self.out)

    @classmethod
    def open(cls, out: Path) -> ColumnarTraces:
        """The traces of sweep folder `out`, kept in memory per version of its rules file."""
        out = Path(out).resolve()
        key = (str(out), (out / TRACES_DIR / RULES_FILE).stat().st_mtime_ns)
        with _lock:
            found = _columnar.get(key)
            if found is None:
                found = cls(out)
                for old in [k for k in _columnar if k[0] == key[0]]:
                    del _columnar[old]
                _columnar[key] = found
            return found

    def lines(self, id_no: str) -> list[str]:
        """The raw decision records of one person, in policy order."""
        if not self.parts:
            return []
        found = (
            scan_trace_parts(self.parts).filter(pl.col("id_no") == id_no).select("record").collect()
        )
        return found["record"].to_list()

    def decisions(self, id_no: str) -> list[dict[str, Any]]:
        """The person's decision records, parsed."""
        return [json.loads(line) for line in self.lines(id_no)]

    def id_list(self) -> pl.Series:
        """Every distinct person with a decision in these traces."""
        if not self.parts:
            return pl.Series("id_no", [], pl.String)
        ids = scan_trace_parts(self.parts).select("id_no").unique(maintain_order=True)
        return ids.collect()["id_no"]

    def __len__(self) -> int:
        if not self.parts:
            return 0
        return int(scan_trace_parts(self.parts).select(pl.len()).collect().item())


class TraceIndex:
    """Byte offsets of the decision records of one traces file, sorted by resident ID."""

    def __init__(self, path: Path, ids: pl.Series, offsets: pl.Series, lengths: pl.Series,
                 rules: dict[str, dict[str, Any]]) -> None:  # fmt: skip
        self.path = path
        self.ids = ids
        self.offsets = offsets
        self.lengths = lengths
        self.rules = rules

    @staticmethod
    def build(path: Path) -> tuple[pl.DataFrame, dict[str, dict[str, Any]]]:
        """Scan the file once: (index frame sorted by id_no, rule records by policy id)."""
        frame = jsonl_lines(path)
        frame = frame.with_columns(
            length=pl.col("line").str.len_bytes().cast(pl.Int64),
        ).with_columns(
            offset=(pl.col("length") + 1).cum_sum().shift(1, fill_value=0),
            id_no=pl.col("line").str.extract(ID_PATTERN, 1),
            is_rule=pl.col("line").str.starts_with('{"record":"rule"'),
        )
        rules: dict[str, dict[str, Any]] = {}
        for line in frame.filter(pl.col("is_rule"))["line"]:
            record = json.loads(line)
            rules[record["policy_id"]] = record
        index = (
            frame.filter(pl.col("id_no").is_not_null() & ~pl.col("is_rule"))
            .select("id_no", "offset", "length")
            .sort("id_no", maintain_order=True)
        )
        return index, rules

    @classmethod
    def open(cls, path: Path, cache_dir: Path) -> TraceIndex:
        """The index of `path`, from memory, from the Parquet cache, or built now."""
        path = Path(path).resolve()
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with _lock:
            found = _open.get(key)
            if found is not None:
                return found
            digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
            cache = Path(cache_dir) / f"traces-{digest}.parquet"
            rules_cache = Path(cache_dir) / f"traces-{digest}.rules.json"
            if cache.is_file() and rules_cache.is_file():
                index = read_parquet(cache)
                rules = json.loads(rules_cache.read_text(encoding="utf-8"))
            else:
                index, rules = cls.build(path)
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp")
                index.write_parquet(tmp)
                if is_sealed(path):  # the index lists IDs: sealed like the traces it indexes
                    seal_file(tmp)
                tmp.replace(cache)
                rules_cache.write_text(json.dumps(rules, ensure_ascii=False), encoding="utf-8")
            made = cls(path, index["id_no"], index["offset"], index["length"], rules)
            for old in [k for k in _open if k[0] == key[0]]:
                del _open[old]
            _open[key] = made
            return made

    def __len__(self) -> int:
        return len(self.ids)

    def lines(self, id_no: str) -> list[str]:
        """The raw decision lines of one person, in file order."""
        lo = int(self.ids.search_sorted(id_no, side="left"))
        hi = int(self.ids.search_sorted(id_no, side="right"))
        if lo >= hi:
            return []
        out: list[str] = []
        with open_output(self.path) as fh:
            for i in range(lo, hi):
                fh.seek(int(self.offsets[i]))
                out.append(fh.read(int(self.lengths[i])).decode("utf-8"))
        return out

    def decisions(self, id_no: str) -> list[dict[str, Any]]:
        """The person's decision records, parsed."""
        return [json.loads(line) for line in self.lines(id_no)]

    def id_list(self) -> pl.Series:
        """Every distinct person with a decision in this file."""
        return self.ids.unique(maintain_order=True)


def clear() -> None:
    """Forget indexes held in memory (tests)."""
    with _lock:
        _open.clear()
        _columnar.clear()
