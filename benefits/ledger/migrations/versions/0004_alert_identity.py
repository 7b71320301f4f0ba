"""Alerts keep one identity across months: rule, party, subject, facts fingerprint, months open.

The inbox's key was the sweep's (id_no, kind, policy_id, due_date), so an alert whose due date
is the month's start came back as a new open alert every month. It becomes (kind, policy_id,
rule, party, subject) — see ``benefits.web.services.alert_identity``. Existing rows keep their
old identity (rule empty, party = id_no, subject = due date, no fingerprint); the next import
adopts them (``benefits.web.services.alerts.import_alerts``).

Revision ID: 0004_alert_identity
Revises: 0003_cycle
Create Date: 2025-03-01
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0004_alert_identity"
down_revision = "0003_cycle"
branch_labels = None
depends_on = None

OLD_UNIQUE = "uq_web_alerts_id_no_kind_policy_id_due_date"
NEW_UNIQUE = "uq_web_alerts_kind_policy_id_rule_party_subject"
NEW_COLUMNS = (
    ("rule", sa.String(128), ""),
    ("label_zh", sa.String(128), ""),
    ("label_en", sa.String(128), ""),
    ("party", sa.String(96), ""),
    ("subject", sa.String(64), ""),
    ("fingerprint", sa.String(64), ""),
    ("months_open", sa.Integer(), "1"),
)


@contextmanager
def _events_set_aside() -> Iterator[None]:
    """On SQLite, hold the alert events aside while web_alerts is rebuilt.

    SQLite changes a unique constraint by rebuilding the table (copy, drop, rename); with
    foreign keys on (the ledger's connections), dropping web_alerts while events refer to it
    fails, and foreign keys cannot be turned off inside the migration's transaction. The
    events are copied to a temporary table and put back, ids and all, once it is rebuilt.
    """
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    op.execute("CREATE TEMP TABLE web_alert_events_0004 AS SELECT * FROM web_alert_events")
    op.execute("DELETE FROM web_alert_events")
    yield
    op.execute("INSERT INTO web_alert_events SELECT * FROM web_alert_events_0004")
    op.execute("DROP TABLE web_alert_events_0004")


def upgrade() -> None:
    for name, type_, default in NEW_COLUMNS:  # ALTER TABLE … ADD COLUMN on both backends
        op.add_column(
            "web_alerts",
            sa.Column(name, type_, nullable=False, server_default=sa.text(repr(default))),
        )
    alerts = sa.table(
        "web_alerts",
        sa.column("id_no", sa.String),
        sa.column("due_date", sa.String),
        sa.column("party", sa.String),
        sa.column("subject", sa.String),
    )
    op.execute(alerts.update().values(party=alerts.c.id_no, subject=alerts.c.due_date))
    with _events_set_aside(), op.batch_alter_table("web_alerts") as batch:
        for name, _, _ in NEW_COLUMNS:
            batch.alter_column(name, server_default=None)
        batch.drop_constraint(OLD_UNIQUE, type_="unique")
        batch.create_unique_constraint(
            NEW_UNIQUE, ["kind", "policy_id", "rule", "party", "subject"]
        )
    op.create_index("ix_web_alerts_id_no", "web_alerts", ["id_no"])


def downgrade() -> None:
    op.drop_index("ix_web_alerts_id_no", table_name="web_alerts")
    with _events_set_aside(), op.batch_alter_table("web_alerts") as batch:
        batch.drop_constraint(NEW_UNIQUE, type_="unique")
        for name, _, _ in reversed(NEW_COLUMNS):
            batch.drop_column(name)
        batch.create_unique_constraint(OLD_UNIQUE, ["id_no", "kind", "policy_id", "due_date"])
