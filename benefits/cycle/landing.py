"""The landing folder: what a department has delivered for a month, and its own manifests.

Departments drop month M's extracts into ``LANDING/M/`` under the data contract's names
(``persons.csv`` or ``persons.parquet``, ``deaths.csv``, …). A department may add a manifest,
``manifest.json`` or ``<anything>.manifest.json``, listing its files with their row counts and
SHA-256::

    {"department": "民政", "files": [
        {"name": "assistance.csv", "rows": 57, "sha256": "3f9a…"},
        {"name": "household_finance.csv", "rows": 71}]}

(``"files"`` may also map each name to ``{"rows": …, "sha256": …}``). Files still being
copied — hidden files, ``*.part``, ``*.filepart``, ``*.tmp``, or a file changed within the last
``settle_seconds`` — are *arriving*, not delivered yet.

Example:
    >>> landing = scan_landing(Path("landing"), "2025-01")          # doctest: +SKIP
    >>> sorted(landing.files)[:2], landing.digest[:12]               # doctest: +SKIP
    (['assistance', 'bank_accounts'], '5f0c2d9b8a1e')
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benefits.ledger.audit import canonical
from benefits.schema import TABLE_ORDER
from benefits.sealedfiles import is_sealed, open_output, read_output, read_parquet

TABLE_SUFFIXES = (".csv", ".parquet")
IN_FLIGHT_SUFFIXES = (".part", ".filepart", ".tmp", ".partial", ".crdownload")
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open_output(path) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def delivery_digest(month: str, files: dict[str, str]) -> str:
    """The identity of a delivery: SHA-256 of the month and each file name with its SHA-256.

    The same files give the same digest wherever they lie; the snapshot folder is named by it.

    >>> delivery_digest("2025-01", {"persons.csv": "ab" * 32})[:16]
    '735ad3e6a7980b37'
    """
    return hashlib.sha256(
        canonical({"month": month, "files": dict(sorted(files.items()))}).encode("utf-8")
    ).hexdigest()


@dataclass(frozen=True)
class LandedFile:
    """One table file in the landing folder."""

    table: str
    path: Path
    size: int
    mtime: float
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class ManifestEntry:
    """What a department's manifest says about one of its files."""

    manifest: str
    department: str
    name: str
    rows: int | None
    sha256: str | None


@dataclass
class Landing:
    """What lies in ``LANDING/M`` now: usable table files and everything else worth saying."""

    month: str
    folder: Path
    exists: bool
    files: dict[str, LandedFile] = field(default_factory=dict)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    arriving: dict[str, list[str]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    manifests: list[ManifestEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """:func:`delivery_digest` of the usable table files."""
        return delivery_digest(self.month, {f.name: f.sha256 for f in self.files.values()})

    def describe(self) -> dict[str, Any]:
        """A JSON-able account for the run history."""
        return {
            "folder": str(self.folder),
            "files": {f.name: {"sha256": f.sha256, "bytes": f.size} for f in self.files.values()},
            "duplicates": self.duplicates,
            "arriving": self.arriving,
            "unexpected": self.unexpected,
            "manifests": sorted({m.manifest for m in self.manifests}),
            "problems": self.problems,
        }


def _table_of(name: str) -> str | None:
    path = Path(name)
    if path.suffix in TABLE_SUFFIXES and path.stem in TABLE_ORDER:
        return path.stem
    return None


def _read_manifest(path: Path) -> tuple[list[ManifestEntry], list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        return [], [f"{path.name}: not a readable JSON manifest ({exc})"]
    if not isinstance(data, dict):
        return [], [f"{path.name}: a manifest is a JSON object with a 'files' list"]
    department = str(data.get("department") or path.name)
    files = data.get("files")
    if isinstance(files, dict):
        files = [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in files.items()]
    if not isinstance(files, list):
        return [], [f"{path.name}: field files must list the department's files"]
    entries, problems = [], []
    for i, item in enumerate(files, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"{path.name}: files[{i}] needs a name")
            continue
        rows = item.get("rows")
        if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
            problems.append(f"{path.name}: {item['name']}: rows must be a whole number ≥ 0")
            rows = None
        digest = item.get("sha256")
        if digest is not None:
            digest = str(digest).strip().lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                problems.append(f"{path.name}: {item['name']}: sha256 must be 64 hex digits")
                digest = None
        entries.append(ManifestEntry(path.name, department, item["name"], rows, digest))
    return entries, problems


def is_manifest(name: str) -> bool:
    """Whether a landing file name is a department manifest."""
    lower = name.lower()
    return lower == "manifest.json" or lower.endswith(".manifest.json")


def scan_landing(
    landing_dir: Path,
    month: str,
    *,
    settle_seconds: float = 0,
    wall_time: float | None = None,
) -> Landing:
    """List and hash month `month`'s delivery in ``landing_dir/month``.

    A file modified less than `settle_seconds` before `wall_time` (default: now) is arriving.

    Example:
        >>> scan_landing(Path("/nonexistent"), "2025-01").exists
        False
    """
    folder = Path(landing_dir) / month
    landing = Landing(month, folder, folder.is_dir())
    if not landing.exists:
        return landing
    now = time.time() if wall_time is None else wall_time
    candidates: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        name = path.name
        if path.is_dir():
            landing.unexpected.append(name + "/")
            continue
        if is_manifest(name):
            entries, problems = _read_manifest(path)
            landing.manifests.extend(entries)
            landing.problems.extend(problems)
            continue
        table = _table_of(name)
        in_flight = name.startswith(".") or name.lower().endswith(IN_FLIGHT_SUFFIXES)
        if in_flight:
            stem = name.lstrip(".").split(".")[0]
            landing.arriving.setdefault(stem if stem in TABLE_ORDER else name, []).append(name)
            continue
        if table is None:
            landing.unexpected.append(name)
            continue
        candidates.setdefault(table, []).append(path)
    for table, paths in candidates.items():
        if len(paths) > 1:
            landing.duplicates[table] = [p.name for p in paths]
            continue
        path = paths[0]
        st = path.stat()
        if settle_seconds > 0 and now - st.st_mtime < settle_seconds:
            landing.arriving.setdefault(table, []).append(path.name)
            continue
        landing.files[table] = LandedFile(table, path, st.st_size, st.st_mtime, sha256_file(path))
    return landing


def count_rows(path: Path) -> int:
    """Data records in a CSV (header excluded, blank lines skipped) or Parquet file.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text('a,b\\n1,"x\\ny"\\n\\n2,z\\n', encoding="utf-8")
    >>> count_rows(p)
    2
    """
    if path.suffix == ".parquet":
        import polars as pl

        if is_sealed(path):
            return read_parquet(path).height
        return int(pl.scan_parquet(path).select(pl.len()).collect().item())
    data = read_output(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gbk", errors="replace")
    rows = csv.reader(io.StringIO(text, newline=""))
    count = -1  # the header
    for record in rows:
        if record and any(cell.strip() for cell in record):
            count += 1
    return max(count, 0)


def check_manifests(landing: Landing, files: dict[str, Path]) -> list[str]:
    """Problems between the manifests and the delivered files (`files`: name → stored copy).

    A listed file that is absent is not a problem here: completeness is judged by table.
    """
    problems: list[str] = []
    by_name = {f.name: f for f in landing.files.values()}
    for entry in landing.manifests:
        landed = by_name.get(entry.name)
        if landed is None:
            continue
        who = f"{entry.name} ({entry.department}, {entry.manifest})"
        if entry.sha256 and entry.sha256 != landed.sha256:
            problems.append(
                f"{who}: SHA-256 is {landed.sha256[:12]}…, the manifest says "
                f"{entry.sha256[:12]}… (still being copied, or a different file)"
            )
            continue
        if entry.rows is not None:
            found = count_rows(files.get(entry.name, landed.path))
            if found != entry.rows:
                problems.append(f"{who}: {found} rows, the manifest says {entry.rows}")
    return problems
