"""Publishing a month's alerts: the outbox folder, then the publish hooks.

When a month's draft batch exists the cycle copies the sweep's ``alerts.csv`` into
``STORE/outbox/M/alerts.csv`` and writes ``publication.json`` beside it (month, run, batch,
counts by kind, the file's SHA-256). Both are written to temporary names and renamed, so a
reader never sees half a file, and publishing again writes the same bytes. Then
``publish_command`` / ``publish_hook`` are called (at least once: a crash between the files
and the hook calls them again on resume). The web app's alerts inbox reads the same
``alerts.csv`` (or the ledger run) — the outbox is the hand-over point for other systems.

Example:
    >>> pub = publish_alerts(Path("var/cycle"), "2025-01", Path("out/alerts.csv"),
    ...                      run_id=1, batch_id=1)                       # doctest: +SKIP
    >>> pub["alerts"], pub["by_kind"]                                    # doctest: +SKIP
    (57, {'cert_expiring': 12, ...})
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

from benefits.private import FILE_MODE, private_dir
from benefits.sealedfiles import read_output


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.chmod(tmp, FILE_MODE)  # a leftover temporary file keeps its old mode otherwise
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def publish_alerts(
    store_dir: Path,
    month: str,
    alerts_csv: Path,
    *,
    run_id: int,
    batch_id: int | None,
) -> dict[str, Any]:
    """Copy the sweep's alerts into the month's outbox; return the publication record."""
    data = Path(alerts_csv).read_bytes()  # as stored: a sealed file stays sealed
    clear = read_output(Path(alerts_csv))
    folder = Path(store_dir) / "outbox" / month
    private_dir(folder)
    target = folder / "alerts.csv"
    by_kind: dict[str, int] = {}
    rows = 0
    for row in csv.DictReader(io.StringIO(clear.decode("utf-8-sig"), newline="")):
        rows += 1
        by_kind[row.get("kind") or ""] = by_kind.get(row.get("kind") or "", 0) + 1
    publication = {
        "month": month,
        "run_id": run_id,
        "batch_id": batch_id,
        "alerts": rows,
        "by_kind": dict(sorted(by_kind.items())),
        "alerts_file": str(target),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    _write_atomic(target, data)
    text = json.dumps(publication, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    _write_atomic(folder / "publication.json", text.encode("utf-8"))
    return publication
