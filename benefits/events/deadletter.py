"""The dead-letter file: every event that was not applied, with the reason, never lost.

One JSON object per line: the event as received (parsed JSON when it was JSON, else the raw
text), its id and type when known, why it was refused, and where it came from (file and
line). Each line is flushed and fsynced before :meth:`DeadLetter.add` returns, so a refused
event survives a crash of the service right after.

Example:
    >>> dl = DeadLetter(Path("events.dead.jsonl"))                    # doctest: +SKIP
    >>> dl.add('{"type": "x"}', "unknown event type 'x'", source="in.jsonl:3")  # doctest: +SKIP
    >>> [r["error"] for r in dl.read()]                               # doctest: +SKIP
    ["unknown event type 'x'"]
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


class DeadLetter:
    """Append-only JSONL file of refused events."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.count = 0

    def add(
        self,
        raw: Any,
        error: str,
        *,
        status: str = "rejected",
        source: str | None = None,
    ) -> dict[str, Any]:
        """Record one refused event (raw text, bytes or dict) and why; return the record."""
        event: Any = raw
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        if isinstance(raw, str):
            try:
                event = json.loads(raw)
            except ValueError:
                event = raw
        elif hasattr(raw, "model_dump"):
            event = raw.model_dump(mode="json")
        record = {
            "status": status,
            "error": error,
            "event_id": event.get("event_id") if isinstance(event, dict) else None,
            "type": event.get("type") if isinstance(event, dict) else None,
            "source": source,
            "event": event,
        }
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self.count += 1
        return record

    def read(self) -> list[dict[str, Any]]:
        """Every record in the file (empty when there is no file)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
