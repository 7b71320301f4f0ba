"""City scale (issue 16): set-based batch creation, totals kept with each batch, keyset pages,
background jobs of the web app.

- ``run_entitlements.account_problem``: why the row's bank account cannot be paid (none, or
  not valid), computed at import while the clear account number is in hand, so that a batch
  is created with one ``INSERT … SELECT`` without opening sealed values;
  ``sweep_runs.accounts_checked`` says a run's rows carry it (runs imported before this
  revision do not: their batches are built row by row, as before).
- ``batch_totals``: each batch's items and amount per policy × community × kind × status,
  rewritten by every ledger operation that changes items, so pages never count a batch.
- ``ix_batch_items_batch_id_id``: keyset pages of a batch (``WHERE batch_id = ? AND id > ?``),
  replacing ``ix_batch_items_batch_id_status``: with no index on ``status`` and the table's
  fillfactor at 60 on PostgreSQL, marking a million items sent or paid updates them in place
  (HOT) instead of writing every index for every row — 3-4× faster; the held filter uses
  ``ix_batch_items_held`` (items with a hold reason, which those updates leave unchanged)
  and the community filter ``ix_batch_items_batch_id_community_id``;
  ``ix_web_alerts_due_date_kind_id``: the alerts inbox's order, read from either end.
- ``web_jobs``: long work started from the web app (a sweep, a large PDF, a bank file) with
  its progress, result or error; ``uq_web_jobs_running`` refuses a second start of the same
  job while one runs.

Self-contained: the tables and columns are declared here, as this revision creates them.

Revision ID: 0010_city_scale
Revises: 0009_pack_releases
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_city_scale"
down_revision = "0009_pack_releases"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 2).with_variant(sa.BigInteger(), "sqlite")
TS = sa.DateTime(timezone=True)
RUNNING = sa.text("status = 'running'")
HELD = sa.text("hold_reason IS NOT NULL")


def upgrade() -> None:
    op.add_column("run_entitlements", sa.Column("account_problem", sa.Text, nullable=True))
    op.add_column(
        "sweep_runs",
        sa.Column("accounts_checked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "batch_totals",
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("community", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.PrimaryKeyConstraint(
            "batch_id", "policy_id", "community", "kind", "status", name="pk_batch_totals"
        ),
    )
    op.create_index("ix_batch_items_batch_id_id", "batch_items", ["batch_id", "id"])
    op.drop_index("ix_batch_items_batch_id_status", table_name="batch_items")
    op.create_index("ix_batch_items_held", "batch_items", ["batch_id", "id"],
                    sqlite_where=HELD, postgresql_where=HELD)  # fmt: skip
    op.create_index(
        "ix_batch_items_batch_id_community_id", "batch_items", ["batch_id", "community", "id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE batch_items SET (fillfactor = 60)")
    op.create_index("ix_web_alerts_due_date_kind_id", "web_alerts", ["due_date", "kind", "id"])
    op.create_table(
        "web_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=True),
        sa.Column("stage", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint("status IN ('running', 'done', 'failed')", name="ck_web_jobs_status"),
    )
    op.create_index(
        "uq_web_jobs_running", "web_jobs", ["key"], unique=True,
        sqlite_where=RUNNING, postgresql_where=RUNNING,
    )  # fmt: skip
    op.create_index("ix_web_jobs_started_by", "web_jobs", ["started_by"])


def downgrade() -> None:
    op.drop_index("ix_web_jobs_started_by", table_name="web_jobs")
    op.drop_index("uq_web_jobs_running", table_name="web_jobs")
    op.drop_table("web_jobs")
    op.drop_index("ix_web_alerts_due_date_kind_id", table_name="web_alerts")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE batch_items RESET (fillfactor)")
    op.drop_index("ix_batch_items_batch_id_community_id", table_name="batch_items")
    op.drop_index("ix_batch_items_held", table_name="batch_items")
    op.create_index("ix_batch_items_batch_id_status", "batch_items", ["batch_id", "status"])
    op.drop_index("ix_batch_items_batch_id_id", table_name="batch_items")
    op.drop_table("batch_totals")
    op.drop_column("sweep_runs", "accounts_checked")  # plain ALTER TABLE (SQLite ≥ 3.35)
    op.drop_column("run_entitlements", "account_problem")
