"""The application's shared state: settings, the ledger, accounts, the person directory.

One :class:`WebContext` per app; handlers receive it and do the work, routes stay thin.

Example:
    >>> ctx = WebContext(WebSettings(db="sqlite:///benefits.sqlite"))   # doctest: +SKIP
    >>> ctx.ledger.batches()                                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from benefits.ledger import Ledger
from benefits.ledger.audit import VerifyResult
from benefits.ledger.models import SweepRun
from benefits.rulebook import RulePack, load_pack
from benefits.traces import JSONL_NAME, has_columnar
from benefits.web.auth import Accounts
from benefits.web.directory import Directory
from benefits.web.jobs import Jobs
from benefits.web.settings import WebSettings
from benefits.web.traceindex import ColumnarTraces, PersonTraces, TraceIndex

VERIFY_TTL = 60.0


class WebContext:
    """Everything a handler needs, created once by the app factory."""

    def __init__(self, settings: WebSettings, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self.ledger = ledger or Ledger(settings.db)
        self.db = self.ledger.db
        self.accounts = Accounts(self.db, settings)
        self.directory = Directory(settings.secret_key)
        self.jobs = Jobs(self.db, Path(settings.work) / "jobs")
        self._known_sources: set[str] = set()
        self._lock = threading.Lock()
        self._verify: tuple[int, float, VerifyResult] | None = None
        self._packs: dict[str, RulePack] = {}
        self._release_folders: dict[int, Path] = {}

    def rules_folder(self) -> Path | None:
        """The rule pack the app sweeps with and shows: the approved release in force (its
        files under the cache folder), else settings.rules (None: the bundled pack)."""
        from benefits.ledger.packs import current_release, materialize

        with self.db.snapshot() as s:
            cur = current_release(s)
        if cur is None:
            return self.settings.rules
        with self._lock:
            known = self._release_folders.get(cur.id)
        if known is not None and (known / "pack.yaml").is_file():
            return known  # checked against its digest when written
        folder = materialize(self.db, cur.id, Path(self.settings.cache_dir) / "packs")
        with self._lock:
            self._release_folders[cur.id] = folder
        return folder

    @property
    def pack(self) -> RulePack:
        """The loaded pack of :meth:`rules_folder` (loaded once per pack)."""
        folder = self.rules_folder()
        key = str(folder)
        with self._lock:
            found = self._packs.get(key)
        if found is None:
            found = load_pack(folder)
            with self._lock:
                self._packs[key] = found
        return found

    # -- sweep outputs ----------------------------------------------------------------------
    @staticmethod
    def run_folder(run: SweepRun) -> Path:
        """The sweep output folder a run was imported from."""
        return Path(run.source)

    @staticmethod
    def run_summary(run: SweepRun) -> dict[str, Any]:
        """The run's summary.json, or {} when the folder is gone."""
        path = Path(run.source) / "summary.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def trace_index(self, run: SweepRun) -> PersonTraces | None:
        """The traces of a run: its columnar ``traces/`` folder, else the index of its
        traces.jsonl (older runs), else None when the run kept no traces."""
        folder = Path(run.source)
        if has_columnar(folder):
            return ColumnarTraces.open(folder)
        path = folder / JSONL_NAME
        if not path.is_file():
            return None
        return TraceIndex.open(path, self.settings.cache_dir)

    def know_run(self, run: SweepRun) -> None:
        """Make the people of a run resolvable: its delivery's persons and its traces' IDs."""
        key = f"{run.id}:{run.source}"
        with self._lock:
            if key in self._known_sources:
                return
        data = self.run_summary(run).get("data")
        if data:
            self.directory.add_delivery(Path(data))
        def traced() -> list[str]:  # read only if a reference must be looked for
            index = self.trace_index(run)
            return index.id_list().to_list() if index is not None else []

        self.directory.add_ids(traced)
        with self._lock:
            self._known_sources.add(key)

    def know_all(self) -> None:
        """Load the directory for the configured data folder and every recorded run."""
        self.directory.add_delivery(Path(self.settings.data))
        for run in self.ledger.runs():
            self.know_run(run)

    # -- audit verification, cached by chain head -----------------------------------------------
    def verify_audit(self, head_seq: int, *, force: bool = False) -> VerifyResult:
        """Verify the chain; a result under a minute old for the same head is reused."""
        cached = self._verify
        now = time.monotonic()
        if not force and cached and cached[0] == head_seq and now - cached[1] < VERIFY_TTL:
            return cached[2]
        result = self.ledger.verify_audit()
        self._verify = (head_seq, now, result)
        return result
