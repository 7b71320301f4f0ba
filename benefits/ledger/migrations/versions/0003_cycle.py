"""The scheduled monthly cycle: month states, attempts (run history), lease locks, job store.

Revision ID: 0003_cycle
Revises: 0002_web
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_cycle"
down_revision = "0002_web"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cycle_months",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16)),
        sa.Column("snapshot", sa.String(64)),
        sa.Column("sweep_out", sa.Text),
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("sweep_runs.id", name="fk_cycle_months_run_id_sweep_runs"),
        ),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey("batches.id", name="fk_cycle_months_batch_id_batches"),
        ),
        sa.Column("late_tables", sa.JSON),
        sa.Column("metrics", sa.JSON),
        sa.Column("stop_snapshot", sa.String(64)),
        sa.Column("stop_transient", sa.Boolean),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_attempt_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_table(
        "cycle_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("instance", sa.String(160), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16)),
        sa.Column("reason", sa.Text),
        sa.Column("snapshot", sa.String(64)),
        sa.Column("run_id", sa.Integer),
        sa.Column("batch_id", sa.Integer),
        sa.Column("transient", sa.Boolean),
        sa.Column("details", sa.JSON),
        sa.UniqueConstraint("month", "number", name="uq_cycle_attempts_month_number"),
    )
    op.create_index("ix_cycle_attempts_started_at", "cycle_attempts", ["started_at"])
    op.create_table(
        "cycle_locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "cycle_scheduler_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25)),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_cycle_scheduler_jobs_next_run_time", "cycle_scheduler_jobs", ["next_run_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_cycle_scheduler_jobs_next_run_time", table_name="cycle_scheduler_jobs")
    op.drop_table("cycle_scheduler_jobs")
    op.drop_table("cycle_locks")
    op.drop_index("ix_cycle_attempts_started_at", table_name="cycle_attempts")
    op.drop_table("cycle_attempts")
    op.drop_table("cycle_months")
