"""The audit chain is keyed: each entry records the ID of the HMAC key its hash was made with.

Entries written before this revision keep ``key_id`` NULL and their plain SHA-256 chain hash;
``benefits audit verify`` still checks them, and accepts them only before the first keyed
entry (see ``benefits.ledger.audit``).

Revision ID: 0005_audit_keys
Revises: 0004_alert_identity
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_keys"
down_revision = "0004_alert_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("key_id", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_log", "key_id")  # plain ALTER TABLE (SQLite ≥ 3.35): triggers stay
