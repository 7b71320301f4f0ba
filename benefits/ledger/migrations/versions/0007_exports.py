"""Output limits: export requests (four eyes for bulk exports) and each user's rows a day.

Self-contained: the tables are declared here, as they were created (no model imports).

Revision ID: 0007_exports
Revises: 0006_encryption
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_exports"
down_revision = "0006_encryption"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_export_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("fmt", sa.String(16), nullable=False),
        sa.Column("reveal", sa.Boolean, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.Column("bulk", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decision_note", sa.Text, nullable=True),
        sa.Column("downloaded_at", TS, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
    )
    op.create_index("ix_web_export_requests_status", "web_export_requests", ["status"])
    op.create_index(
        "ix_web_export_requests_requested_by", "web_export_requests", ["requested_by"]
    )
    op.create_table(
        "web_export_usage",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("rows", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_export_usage")
    op.drop_index("ix_web_export_requests_requested_by", table_name="web_export_requests")
    op.drop_index("ix_web_export_requests_status", table_name="web_export_requests")
    op.drop_table("web_export_requests")
