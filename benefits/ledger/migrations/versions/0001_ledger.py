"""The ledger: sweep runs, batches and items, bank files and returns, settings, audit chain.

Revision ID: 0001_ledger
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64
# Money as this revision stored it: NUMERIC(14,2), integer fen on SQLite (frozen here, apart
# from benefits.ledger.money, which may change with later revisions).
MONEY = sa.Numeric(14, 2).with_variant(sa.BigInteger(), "sqlite")
TS = sa.DateTime(timezone=True)
OPEN = sa.text("status IN ('draft', 'submitted', 'approved')")
LIVE_PAYMENT = sa.text("kind = 'payment' AND NOT voided")
LIVE_REISSUE = sa.text("kind = 'reissue' AND NOT voided")


def upgrade() -> None:
    op.create_table(
        "sweep_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule_pack_version", sa.String(64), nullable=False),
        sa.Column("rule_pack_hash", sa.String(128), nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("entitlements_sha256", sa.String(64), nullable=False),
        sa.Column("entitlement_rows", sa.Integer, nullable=False),
        sa.Column("payable_rows", sa.Integer, nullable=False),
        sa.Column("payable_total", MONEY, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.Column("imported_at", TS, nullable=False),
        sa.UniqueConstraint("fingerprint", name="uq_sweep_runs_fingerprint"),
    )
    op.create_index("ix_sweep_runs_month", "sweep_runs", ["month"])

    op.create_table(
        "run_entitlements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("sweep_runs.id", name="fk_run_entitlements_run_id_sweep_runs"),
            nullable=False,
        ),
        sa.Column("id_no", sa.String(32), nullable=False),
        sa.Column("household_no", sa.String(64), nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("held", sa.Boolean, nullable=False),
        sa.Column("hold_reason", sa.Text),
        sa.Column("community", sa.String(128), nullable=False),
        sa.Column("masked_name", sa.String(64), nullable=False),
        sa.Column("account_no", sa.String(64), nullable=False),
        sa.UniqueConstraint(
            "run_id",
            "id_no",
            "policy_id",
            "month",
            name="uq_run_entitlements_run_id_id_no_policy_id_month",
        ),
        sa.CheckConstraint("mode IN ('pay', 'credit')", name="ck_run_entitlements_mode"),
        sa.CheckConstraint("amount > 0", name="ck_run_entitlements_amount_positive"),
    )

    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("sweep_runs.id", name="fk_batches_run_id_sweep_runs"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("submitted_by", sa.String(64)),
        sa.Column("submitted_at", TS),
        sa.Column("approved_by", sa.String(64)),
        sa.Column("approved_at", TS),
        sa.Column("rejected_by", sa.String(64)),
        sa.Column("rejected_at", TS),
        sa.Column("reject_reason", sa.Text),
        sa.Column("exported_by", sa.String(64)),
        sa.Column("exported_at", TS),
        sa.Column("reconciled_by", sa.String(64)),
        sa.Column("reconciled_at", TS),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'approved', 'exported', 'reconciled', 'rejected')",
            name="ck_batches_status",
        ),
        sa.CheckConstraint(
            "approved_by IS NULL OR (approved_by <> submitted_by AND approved_by <> created_by)",
            name="ck_batches_four_eyes",
        ),
        sa.CheckConstraint(
            "status NOT IN ('approved', 'exported', 'reconciled') OR approved_by IS NOT NULL",
            name="ck_batches_approved_has_approver",
        ),
        sa.CheckConstraint(
            "status NOT IN ('submitted', 'approved', 'exported', 'reconciled') "
            "OR submitted_by IS NOT NULL",
            name="ck_batches_submitted_has_submitter",
        ),
        sa.CheckConstraint(
            "status <> 'rejected' OR (reject_reason IS NOT NULL AND reject_reason <> '')",
            name="ck_batches_rejected_has_reason",
        ),
    )
    op.create_index("ix_batches_month", "batches", ["month"])
    op.create_index(
        "uq_batches_open_month",
        "batches",
        ["month"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )

    op.create_table(
        "bank_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey("batches.id", name="fk_bank_files_batch_id_batches"),
            nullable=False,
        ),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("batch_id", name="uq_bank_files_batch_id"),
    )

    op.create_table(
        "batch_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey("batches.id", name="fk_batch_items_batch_id_batches"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("id_no", sa.String(32), nullable=False),
        sa.Column("household_no", sa.String(64), nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_reason", sa.Text),
        sa.Column("community", sa.String(128), nullable=False),
        sa.Column("masked_name", sa.String(64), nullable=False),
        sa.Column("account_no", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column(
            "entitlement_id",
            sa.Integer,
            sa.ForeignKey(
                "run_entitlements.id", name="fk_batch_items_entitlement_id_run_entitlements"
            ),
        ),
        sa.Column(
            "corrects_item_id",
            sa.Integer,
            sa.ForeignKey("batch_items.id", name="fk_batch_items_corrects_item_id_batch_items"),
        ),
        sa.Column("voided", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column(
            "bank_file_id",
            sa.Integer,
            sa.ForeignKey("bank_files.id", name="fk_batch_items_bank_file_id_bank_files"),
        ),
        sa.Column("bank_status", sa.String(16)),
        sa.Column("bank_reason", sa.Text),
        sa.Column("released_by", sa.String(64)),
        sa.Column("released_at", TS),
        sa.Column("release_reason", sa.Text),
        sa.Column("release_account", sa.String(64)),
        sa.CheckConstraint(
            "kind IN ('payment', 'arrears', 'recovery', 'reissue')", name="ck_batch_items_kind"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'held', 'sent', 'paid', 'released', 'recover')",
            name="ck_batch_items_status",
        ),
        sa.CheckConstraint("mode IN ('pay', 'credit')", name="ck_batch_items_mode"),
        sa.CheckConstraint(
            "(kind = 'recovery' AND amount < 0) OR (kind <> 'recovery' AND amount > 0)",
            name="ck_batch_items_amount_sign",
        ),
        sa.CheckConstraint(
            "(kind = 'recovery') = (status = 'recover')", name="ck_batch_items_recover_status"
        ),
        sa.CheckConstraint(
            "kind = 'payment' OR reason IS NOT NULL", name="ck_batch_items_adjustment_reason"
        ),
        sa.CheckConstraint(
            "kind NOT IN ('recovery', 'reissue') OR corrects_item_id IS NOT NULL",
            name="ck_batch_items_correction_linked",
        ),
        sa.CheckConstraint(
            "status <> 'held' OR hold_reason IS NOT NULL", name="ck_batch_items_held_reason"
        ),
        sa.CheckConstraint(
            "status NOT IN ('sent', 'paid') OR bank_file_id IS NOT NULL",
            name="ck_batch_items_sent_in_file",
        ),
    )
    op.create_index(
        "uq_batch_items_payment_once",
        "batch_items",
        ["id_no", "policy_id", "month"],
        unique=True,
        sqlite_where=LIVE_PAYMENT,
        postgresql_where=LIVE_PAYMENT,
    )
    op.create_index(
        "uq_batch_items_reissue_once",
        "batch_items",
        ["corrects_item_id"],
        unique=True,
        sqlite_where=LIVE_REISSUE,
        postgresql_where=LIVE_REISSUE,
    )
    op.create_index("ix_batch_items_batch_id_status", "batch_items", ["batch_id", "status"])
    op.create_index(
        "ix_batch_items_month_policy_id_id_no", "batch_items", ["month", "policy_id", "id_no"]
    )

    op.create_table(
        "bank_returns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey("batches.id", name="fk_bank_returns_batch_id_batches"),
            nullable=False,
        ),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("paid", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.Column("imported_at", TS, nullable=False),
        sa.UniqueConstraint("batch_id", "sha256", name="uq_bank_returns_batch_id_sha256"),
    )

    op.create_table(
        "ledger_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("hash", name="uq_audit_log_hash"),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"])

    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])
    _append_only_triggers()


def _append_only_triggers() -> None:
    """Make audit_log refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ledger_audit_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION ledger_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {verb} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS ledger_audit_append_only()")
    for table in (
        "audit_head",
        "audit_log",
        "ledger_settings",
        "bank_returns",
        "batch_items",
        "bank_files",
        "batches",
        "run_entitlements",
        "sweep_runs",
    ):
        op.drop_table(table)
