"""The ledger's service API: one object the CLI, the web app and the scheduler call.

Each method is one transaction (export and reconciliation included) and writes its audit
entry in that same transaction, so an action and its record commit or vanish together.

Example:
    >>> ledger = Ledger("sqlite:///benefits.sqlite")        # doctest: +SKIP
    >>> ledger.init(by="admin")                              # doctest: +SKIP
    >>> run = ledger.import_run(Path("out/2025-01"), by="alice")          # doctest: +SKIP
    >>> batch = ledger.create_batch(run.run_id, by="alice")               # doctest: +SKIP
    >>> ledger.submit(batch.id, by="alice"); ledger.approve(batch.id, by="bob")  # doctest: +SKIP
    >>> ledger.export(batch.id, Path("bank/2025-01.csv"), by="carol")     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from benefits.ledger import (
    audit,
    bankfile,
    batches,
    batchviews,
    checkpoints,
    drafts,
    packs,
    releases,
    runs,
    settings,
)
from benefits.ledger.clock import Clock
from benefits.ledger.db import SCHEMA_REVISION, Database, display_url
from benefits.ledger.errors import FourEyesViolation
from benefits.ledger.faults import crashpoint
from benefits.ledger.models import AuditEntry, Batch, BatchItem, PackRelease, SweepRun


class Ledger:
    """The ledger on one database (SQLite file by default, PostgreSQL by URL).

    Args:
        url: SQLAlchemy URL; default ``$BENEFITS_DATABASE_URL`` or ``sqlite:///benefits.sqlite``.
        clock: callable returning the current time (inject a fixed one in tests).
        engine: an existing engine to use instead of `url`.
    """

    def __init__(
        self, url: str | None = None, *, clock: Clock | None = None, engine: Engine | None = None
    ) -> None:
        self.db = Database(url, clock=clock, engine=engine)

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return display_url(self.db.url)

    def close(self) -> None:
        """Release pooled connections."""
        self.db.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------------
    def init(self, by: str = "system") -> str:
        """Create or upgrade the ledger tables (idempotent); audited when something changed.

        >>> Ledger("sqlite:///x.sqlite").init()        # doctest: +SKIP
        '0001_ledger'
        """
        self.db.ensure_keys()  # no audit key: stop before touching the schema
        before = self.db.current_revision()
        after = self.db.migrate()
        assert after is not None
        if before != after:
            with self.db.transaction() as s:
                audit.append(
                    s, at=self.db.now(), actor=by, action="ledger.init", object_type="schema",
                    object_id=after, before={"revision": before}, after={"revision": after},
                )  # fmt: skip
        return after

    def revision(self) -> tuple[str | None, str]:
        """(the database's schema revision, the revision this code needs)."""
        return self.db.current_revision(), SCHEMA_REVISION

    # -- runs -----------------------------------------------------------------------------
    def import_run(self, out: Path, by: str) -> runs.ImportResult:
        """Record a sweep output folder (idempotent). See :func:`runs.import_run`."""
        result = runs.import_run(self.db, Path(out), by)
        crashpoint("import:committed")
        self.db.analyze("run_entitlements")
        return result

    def runs(self, month: str | None = None) -> list[SweepRun]:
        """Recorded runs, newest first."""
        return runs.list_runs(self.db, month)

    # -- batches --------------------------------------------------------------------------
    def create_batch(self, run_id: int, by: str) -> Batch:
        """Draft batch from a run. See :func:`drafts.create_batch`."""
        batch = drafts.create_batch(self.db, run_id, by)
        crashpoint("create:committed")
        self.db.analyze("batch_items", "batch_totals")
        return batch

    def submit(self, batch_id: int, by: str) -> Batch:
        """draft → submitted."""
        return batches.submit(self.db, batch_id, by)

    def approve(self, batch_id: int, by: str) -> Batch:
        """submitted → approved, by an officer who neither created nor submitted it.

        A refusal under the four-eyes rule is itself written to the audit chain
        (``security.approval_refused``) before the error is raised.
        """
        try:
            return batches.approve(self.db, batch_id, by)
        except FourEyesViolation as exc:
            with self.db.transaction() as s:
                audit.append(
                    s, at=self.db.now(), actor=by, action="security.approval_refused",
                    object_type="batch", object_id=batch_id, after={"reason": str(exc)},
                )  # fmt: skip
            raise

    def reject(self, batch_id: int, by: str, reason: str) -> Batch:
        """draft/submitted/approved → rejected, with a reason; items voided."""
        return batches.reject(self.db, batch_id, by, reason)

    def release(self, item_id: int, by: str, reason: str, account: str | None = None) -> BatchItem:
        """Release a held item with a reason. See :func:`releases.release`."""
        return releases.release(self.db, item_id, by, reason, account)

    def export(self, batch_id: int, to: Path, by: str) -> bankfile.ExportResult:
        """approved → exported, writing the bank file (re-runnable)."""
        result = bankfile.export_batch(self.db, batch_id, Path(to), by)
        crashpoint("export:committed")
        return result

    def reconcile(self, batch_id: int, file: Path, by: str) -> bankfile.ReconcileResult:
        """Apply a bank return file; exported → reconciled once nothing awaits the bank."""
        result = bankfile.reconcile(self.db, batch_id, Path(file), by)
        crashpoint("reconcile:committed")
        return result

    def batch(self, batch_id: int) -> batchviews.BatchDetail:
        """A batch with its totals."""
        return batchviews.batch_detail(self.db, batch_id)

    def batches(self, month: str | None = None, status: str | None = None) -> list[Batch]:
        """Batches, newest first."""
        return batchviews.list_batches(self.db, month, status)

    def items(
        self,
        batch_id: int,
        *,
        status: str | None = None,
        kind: str | None = None,
        limit: int | None = 100,
    ) -> list[BatchItem]:
        """Items of a batch."""
        return batchviews.list_items(self.db, batch_id, status=status, kind=kind, limit=limit)

    # -- rule pack releases ---------------------------------------------------------------
    def submit_pack(
        self, folder: Path, by: str, note: str = "", reports: list[packs.Report] | None = None
    ) -> PackRelease:
        """Store a pack folder as a release awaiting approval. See :func:`packs.submit`."""
        return packs.submit(self.db, Path(folder), by, note, reports)

    def approve_pack(self, release_id: int, by: str) -> PackRelease:
        """submitted → approved (in force), by someone other than its submitter; a refusal
        under the four-eyes rule is written to the audit chain before the error is raised."""
        try:
            return packs.approve(self.db, release_id, by)
        except FourEyesViolation as exc:
            with self.db.transaction() as s:
                audit.append(
                    s, at=self.db.now(), actor=by, action="security.approval_refused",
                    object_type="release", object_id=release_id, after={"reason": str(exc)},
                )  # fmt: skip
            raise

    def reject_pack(self, release_id: int, by: str, reason: str) -> PackRelease:
        """submitted → rejected, with a reason."""
        return packs.reject(self.db, release_id, by, reason)

    def rollback_pack(self, by: str, reason: str) -> packs.Rollback:
        """Emergency: the previous approved release is in force again (audited)."""
        return packs.rollback(self.db, by, reason)

    def pack_releases(self) -> list[PackRelease]:
        """Every rule pack release, newest first."""
        return packs.list_releases(self.db)

    def pack_release(self, release_id: int) -> PackRelease:
        """One release, or NotFound."""
        with self.db.snapshot() as s:
            return packs.get_release(s, release_id)

    def release_in_force(self) -> PackRelease | None:
        """The approved release sweeps must use (None: no release approved yet)."""
        with self.db.snapshot() as s:
            return packs.current_release(s)

    # -- settings and audit ---------------------------------------------------------------
    def set_setting(self, key: str, value: str, by: str) -> None:
        """Create or change a setting (audited)."""
        settings.set_setting(self.db, key, value, by)

    def settings(self) -> dict[str, str]:
        """Every setting."""
        return settings.list_settings(self.db)

    def verify_audit(self) -> audit.VerifyResult:
        """Recompute the audit chain; the result names the first broken entry."""
        with self.db.snapshot() as s:
            return audit.verify(s)

    def verify_checkpoints(self, path: Path) -> list[str]:
        """Problems of the signed checkpoint file against the chain (empty when all hold)."""
        with self.db.snapshot() as s:
            return checkpoints.verify_checkpoints(s, Path(path), self.db.keys)

    def checkpoint(self, to: Path) -> checkpoints.Checkpoint:
        """Append a signed checkpoint of the chain's head to the file `to`."""
        return checkpoints.write_checkpoint(self.db, Path(to))

    def audit_entries(self, last: int = 20) -> list[AuditEntry]:
        """The newest `last` audit entries, oldest first."""
        with self.db.snapshot() as s:
            rows = s.execute(
                select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(last)
            ).scalars()
            return list(reversed(list(rows)))
