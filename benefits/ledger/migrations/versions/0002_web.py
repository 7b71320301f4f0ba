"""The web application: users and roles, sessions, API tokens, login attempts, alerts inbox.

Revision ID: 0002_web
Revises: 0001_ledger
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_web"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("roles", sa.String(128), nullable=False),
        sa.Column("pii", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("username", name="uq_web_users_username"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("web_users.id", name="fk_web_sessions_user_id_web_users"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "web_api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("web_users.id", name="fk_web_api_tokens_user_id_web_users"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("last_used_at", TS),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_web_api_tokens_token_hash"),
    )
    op.create_index("ix_web_api_tokens_user_id", "web_api_tokens", ["user_id"])
    op.create_table(
        "web_login_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
    )
    op.create_index("ix_web_login_attempts_username_at", "web_login_attempts", ["username", "at"])
    op.create_index("ix_web_login_attempts_ip_at", "web_login_attempts", ["ip", "at"])
    op.create_table(
        "web_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("id_no", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("due_date", sa.String(10), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("community", sa.String(128), nullable=False),
        sa.Column("masked_name", sa.String(64), nullable=False),
        sa.Column("first_month", sa.String(7), nullable=False),
        sa.Column("last_month", sa.String(7), nullable=False),
        sa.Column("last_run_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64)),
        sa.Column("updated_by", sa.String(64)),
        sa.Column("updated_at", TS),
        sa.UniqueConstraint(
            "id_no",
            "kind",
            "policy_id",
            "due_date",
            name="uq_web_alerts_id_no_kind_policy_id_due_date",
        ),
    )
    op.create_index("ix_web_alerts_last_month_kind", "web_alerts", ["last_month", "kind"])
    op.create_table(
        "web_alert_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "alert_id",
            sa.Integer,
            sa.ForeignKey("web_alerts.id", name="fk_web_alert_events_alert_id_web_alerts"),
            nullable=False,
        ),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("assignee", sa.String(64)),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_web_alert_events_alert_id", "web_alert_events", ["alert_id"])
    op.create_table(
        "web_alert_imports",
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("sweep_runs.id", name="fk_web_alert_imports_run_id_sweep_runs"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("alerts", sa.Integer, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_web_batch_items_id_no", "batch_items", ["id_no"])


def downgrade() -> None:
    for index, table in (
        ("ix_web_batch_items_id_no", "batch_items"),
        ("ix_web_alert_events_alert_id", "web_alert_events"),
        ("ix_web_alerts_last_month_kind", "web_alerts"),
        ("ix_web_login_attempts_ip_at", "web_login_attempts"),
        ("ix_web_login_attempts_username_at", "web_login_attempts"),
        ("ix_web_api_tokens_user_id", "web_api_tokens"),
        ("ix_web_sessions_user_id", "web_sessions"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "web_alert_imports",
        "web_alert_events",
        "web_alerts",
        "web_login_attempts",
        "web_api_tokens",
        "web_sessions",
        "web_users",
    ):
        op.drop_table(table)
