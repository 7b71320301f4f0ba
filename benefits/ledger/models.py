"""The ledger's tables (SQLAlchemy 2 declarative models).

The rules that keep money right live here as constraints, so they hold whatever code, retry
or crash writes to the database:

- ``uq_batch_items_payment_once``: one live *payment* per person × policy × month;
- ``uq_batches_open_month``: at most one open (draft, submitted, approved) batch per month,
  which serialises batch creation and therefore adjustment computation for a month;
- ``uq_batch_items_reissue_once``: a released item is reissued at most once;
- ``ck_batches_four_eyes``: the approver is neither the creator nor the submitter;
- ``uq_sweep_runs_fingerprint``: a sweep is imported once;
- ``ck_pack_releases_four_eyes``: a rule pack release is approved by someone other than its
  submitter; ``uq_pack_releases_generation``: one approval generation per release.

Example:
    >>> sorted(Base.metadata.tables)[:3]
    ['audit_head', 'audit_log', 'bank_files']
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from benefits.ledger.money import Money
from benefits.ledger.sealed import Sealed

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Batch lifecycle: draft → submitted → approved → exported → reconciled, or rejected.
DRAFT, SUBMITTED, APPROVED, EXPORTED, RECONCILED, REJECTED = (
    "draft",
    "submitted",
    "approved",
    "exported",
    "reconciled",
    "rejected",
)
BATCH_STATUSES = (DRAFT, SUBMITTED, APPROVED, EXPORTED, RECONCILED, REJECTED)
OPEN_STATUSES = (DRAFT, SUBMITTED, APPROVED)

# Item kinds: a regular payment for the batch month, or a correction of an earlier month.
PAYMENT, ARREARS, RECOVERY, REISSUE = "payment", "arrears", "recovery", "reissue"
ITEM_KINDS = (PAYMENT, ARREARS, RECOVERY, REISSUE)

# Item states. pending: goes out with the bank file; held: never leaves; sent: in a bank
# file; paid: the bank confirmed; released: released after export, reissued in a later
# batch; recover: an overpayment to collect (never in a bank file).
PENDING, HELD, SENT, PAID, RELEASED, RECOVER = (
    "pending",
    "held",
    "sent",
    "paid",
    "released",
    "recover",
)
ITEM_STATUSES = (PENDING, HELD, SENT, PAID, RELEASED, RECOVER)
MODES = ("pay", "credit")

# Rule pack releases: submitted → approved (→ rolled back), or rejected.
ROLLED_BACK = "rolled_back"
RELEASE_STATUSES = (SUBMITTED, APPROVED, REJECTED, ROLLED_BACK)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy's documented hook
        Decimal: Money(),
        dt.datetime: DateTime(timezone=True),
    }


class SweepRun(Base):
    """One imported sweep: month, rule pack, input hashes, counts, who started it."""

    __tablename__ = "sweep_runs"
    __table_args__ = (UniqueConstraint("fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    rule_pack_version: Mapped[str] = mapped_column(String(64))
    rule_pack_hash: Mapped[str] = mapped_column(String(128))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    entitlements_sha256: Mapped[str] = mapped_column(String(64))
    entitlement_rows: Mapped[int] = mapped_column(Integer)
    payable_rows: Mapped[int] = mapped_column(Integer)
    payable_total: Mapped[Decimal]
    source: Mapped[str] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(String(64))
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime]
    release_id: Mapped[int | None] = mapped_column(ForeignKey("pack_releases.id"))
    # True when its rows carry `account_problem` (imported since 0010_city_scale).
    accounts_checked: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )


class RunEntitlement(Base):
    """A `pay` or `credit` row of a run's entitlements.csv (lead/notice rows are not money)."""

    __tablename__ = "run_entitlements"
    __table_args__ = (
        # id_no is sealed (random nonce), so this constraint no longer binds; the one that
        # does is on the blind index (SQLite cannot drop a table constraint in place).
        UniqueConstraint("run_id", "id_no", "policy_id", "month"),
        Index(
            "uq_run_entitlements_run_id_id_index_policy_id_month",
            *("run_id", "id_index", "policy_id", "month"),
            unique=True,
        ),
        CheckConstraint(_in("mode", MODES), name="mode"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sweep_runs.id"))
    id_no: Mapped[str] = mapped_column(Sealed("id_no", 32))
    id_index: Mapped[str] = mapped_column(String(32))
    household_no: Mapped[str] = mapped_column(String(64))
    policy_id: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7))
    mode: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal]
    held: Mapped[bool] = mapped_column(Boolean)
    hold_reason: Mapped[str | None] = mapped_column(Text)
    community: Mapped[str] = mapped_column(String(128))
    masked_name: Mapped[str] = mapped_column(String(64))
    account_no: Mapped[str] = mapped_column(Sealed("account_no", 64))
    # Why the account cannot be paid (none, or not valid); NULL when it can, or when the run
    # was imported before the ledger checked it at import (see SweepRun.accounts_checked).
    account_problem: Mapped[str | None] = mapped_column(Text)


class Batch(Base):
    """A payout batch for one month and its lifecycle, with who did what and when."""

    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
        CheckConstraint(
            "approved_by IS NULL OR (approved_by <> submitted_by AND approved_by <> created_by)",
            name="four_eyes",
        ),
        CheckConstraint(
            "status NOT IN ('approved', 'exported', 'reconciled') OR approved_by IS NOT NULL",
            name="approved_has_approver",
        ),
        CheckConstraint(
            "status NOT IN ('submitted', 'approved', 'exported', 'reconciled') "
            "OR submitted_by IS NOT NULL",
            name="submitted_has_submitter",
        ),
        CheckConstraint(
            "status <> 'rejected' OR (reject_reason IS NOT NULL AND reject_reason <> '')",
            name="rejected_has_reason",
        ),
        Index(
            "uq_batches_open_month",
            "month",
            unique=True,
            sqlite_where=text("status IN ('draft', 'submitted', 'approved')"),
            postgresql_where=text("status IN ('draft', 'submitted', 'approved')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sweep_runs.id"))
    status: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    submitted_by: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[dt.datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime | None]
    rejected_by: Mapped[str | None] = mapped_column(String(64))
    rejected_at: Mapped[dt.datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    exported_by: Mapped[str | None] = mapped_column(String(64))
    exported_at: Mapped[dt.datetime | None]
    reconciled_by: Mapped[str | None] = mapped_column(String(64))
    reconciled_at: Mapped[dt.datetime | None]


class BatchItem(Base):
    """One line of a batch: a payment for the batch month or an adjustment of an earlier one."""

    __tablename__ = "batch_items"
    __table_args__ = (
        CheckConstraint(_in("kind", ITEM_KINDS), name="kind"),
        CheckConstraint(_in("status", ITEM_STATUSES), name="status"),
        CheckConstraint(_in("mode", MODES), name="mode"),
        CheckConstraint(
            "(kind = 'recovery' AND amount < 0) OR (kind <> 'recovery' AND amount > 0)",
            name="amount_sign",
        ),
        CheckConstraint("(kind = 'recovery') = (status = 'recover')", name="recover_status"),
        CheckConstraint("kind = 'payment' OR reason IS NOT NULL", name="adjustment_reason"),
        CheckConstraint(
            "kind NOT IN ('recovery', 'reissue') OR corrects_item_id IS NOT NULL",
            name="correction_linked",
        ),
        CheckConstraint("status <> 'held' OR hold_reason IS NOT NULL", name="held_reason"),
        CheckConstraint(
            "status NOT IN ('sent', 'paid') OR bank_file_id IS NOT NULL", name="sent_in_file"
        ),
        Index(
            "uq_batch_items_payment_once",
            "id_index",
            "policy_id",
            "month",
            unique=True,
            sqlite_where=text("kind = 'payment' AND NOT voided"),
            postgresql_where=text("kind = 'payment' AND NOT voided"),
        ),
        Index(
            "uq_batch_items_reissue_once",
            "corrects_item_id",
            unique=True,
            sqlite_where=text("kind = 'reissue' AND NOT voided"),
            postgresql_where=text("kind = 'reissue' AND NOT voided"),
        ),
        # Keyset pages and every per-batch scan. No index holds `status` (nor its predicate):
        # export and reconciliation change the status of a million items, and PostgreSQL
        # then updates them in place (HOT, the table has fillfactor 60) instead of touching
        # every index for every row (0010_city_scale).
        Index("ix_batch_items_batch_id_id", "batch_id", "id"),
        # The community filter of a million-item batch (the held filter's index is declared
        # after the class: its first column is descending).
        Index("ix_batch_items_batch_id_community_id", "batch_id", "community", "id"),
        Index("ix_batch_items_month_policy_id_id_index", "month", "policy_id", "id_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    kind: Mapped[str] = mapped_column(String(16))
    id_no: Mapped[str] = mapped_column(Sealed("id_no", 32))
    id_index: Mapped[str] = mapped_column(String(32))
    household_no: Mapped[str] = mapped_column(String(64))
    policy_id: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7))
    mode: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(16))
    hold_reason: Mapped[str | None] = mapped_column(Text)
    community: Mapped[str] = mapped_column(String(128))
    masked_name: Mapped[str] = mapped_column(String(64))
    account_no: Mapped[str] = mapped_column(Sealed("account_no", 64))
    reason: Mapped[str | None] = mapped_column(Text)
    entitlement_id: Mapped[int | None] = mapped_column(ForeignKey("run_entitlements.id"))
    corrects_item_id: Mapped[int | None] = mapped_column(ForeignKey("batch_items.id"))
    voided: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    bank_file_id: Mapped[int | None] = mapped_column(ForeignKey("bank_files.id"))
    bank_status: Mapped[str | None] = mapped_column(String(16))
    bank_reason: Mapped[str | None] = mapped_column(Text)
    released_by: Mapped[str | None] = mapped_column(String(64))
    released_at: Mapped[dt.datetime | None]
    release_reason: Mapped[str | None] = mapped_column(Text)
    release_account: Mapped[str | None] = mapped_column(Sealed("account_no", 64))


# The held filter of a million-item batch. A held item has a hold_reason (ck held_reason),
# which export and reconciliation leave as it is. The held filter orders by (batch_id DESC,
# id), which only this index gives: ordered by id, the planner may walk the whole batch by its
# primary key, filtering (0012_held_kind_indexes).
Index(
    "ix_batch_items_held",
    BatchItem.batch_id.desc(),
    BatchItem.id,
    sqlite_where=text("hold_reason IS NOT NULL"),
    postgresql_where=text("hold_reason IS NOT NULL"),
)


class BatchTotal(Base):
    """A batch's items and amount for one policy × community × kind × status, kept with the
    batch by every operation that changes its items (pages and totals read these, never
    count the items)."""

    __tablename__ = "batch_totals"

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    community: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    items: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal]


class BankFile(Base):
    """The bank payment file written for a batch (one per batch) and its SHA-256."""

    __tablename__ = "bank_files"
    __table_args__ = (UniqueConstraint("batch_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    item_count: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]


class BankReturn(Base):
    """A bank return file imported for a batch (importing the same file twice is a no-op)."""

    __tablename__ = "bank_returns"
    __table_args__ = (UniqueConstraint("batch_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    paid: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime]


class Setting(Base):
    """A ledger setting (key → value); every change is audited."""

    __tablename__ = "ledger_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime]


class AuditEntry(Base):
    """One append-only audit entry; `hash` = HMAC-SHA256 under key `key_id` of prev_hash +
    content (entries written before 0005_audit_keys: key_id NULL, plain SHA-256)."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("hash"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)


class AuditHead(Base):
    """The chain's head (one row). Serialises appends and reveals deleted trailing entries."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class PackRelease(Base):
    """A rule pack submitted for use, and its four-eyes lifecycle (:mod:`benefits.ledger.packs`).

    ``generation`` numbers approvals (1, 2, …): the release in force is the approved one with
    the highest generation; a rollback marks it ``rolled_back`` and the one before is in force.
    """

    __tablename__ = "pack_releases"
    __table_args__ = (
        UniqueConstraint("generation"),
        CheckConstraint(_in("status", RELEASE_STATUSES), name="status"),
        CheckConstraint("approved_by IS NULL OR approved_by <> submitted_by", name="four_eyes"),
        CheckConstraint(
            "status NOT IN ('approved', 'rolled_back') OR "
            "(approved_by IS NOT NULL AND generation IS NOT NULL)",
            name="approved_has_approver",
        ),
        CheckConstraint(
            "status <> 'rejected' OR (reject_reason IS NOT NULL AND reject_reason <> '')",
            name="rejected_has_reason",
        ),
        CheckConstraint(
            "status <> 'rolled_back' OR (rollback_reason IS NOT NULL AND rollback_reason <> '')",
            name="rolled_back_has_reason",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    file_count: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    base_release_id: Mapped[int | None] = mapped_column(ForeignKey("pack_releases.id"))
    generation: Mapped[int | None] = mapped_column(Integer)
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[dt.datetime]
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime | None]
    rejected_by: Mapped[str | None] = mapped_column(String(64))
    rejected_at: Mapped[dt.datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    rolled_back_by: Mapped[str | None] = mapped_column(String(64))
    rolled_back_at: Mapped[dt.datetime | None]
    rollback_reason: Mapped[str | None] = mapped_column(Text)


class PackReleaseFile(Base):
    """One file of a release's rule pack, byte for byte (its path inside the pack)."""

    __tablename__ = "pack_release_files"

    release_id: Mapped[int] = mapped_column(ForeignKey("pack_releases.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class PackReleaseReport(Base):
    """A report attached to a release for its reviewers: the rules diff or the what-if."""

    __tablename__ = "pack_release_reports"
    __table_args__ = (
        UniqueConstraint("release_id", "name"),
        CheckConstraint("kind IN ('diff', 'whatif')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("pack_releases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime]
