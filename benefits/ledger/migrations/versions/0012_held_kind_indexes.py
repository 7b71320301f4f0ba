"""The held filter and the one-kind alerts inbox read only what they show (issue 16).

- ``ix_batch_items_held`` becomes ``(batch_id DESC, id) WHERE hold_reason IS NOT NULL``. On
  ``(batch_id, id)`` the held filter's ``WHERE batch_id = ? … ORDER BY id LIMIT 50`` was
  also answered by the primary key (and ``ix_batch_items_batch_id_id``) in id order, and
  with a seventh of a batch held PostgreSQL's planner took that walk, filtering as it went
  on the assumption that held items are spread evenly through the ids. The real city's are
  not: a page read a million items to find 50 (0.5-0.8 s). The page now asks for
  ``batch_id BETWEEN ? AND ? ORDER BY batch_id DESC, id`` (:mod:`benefits.web.services
  .batches`), an order only this index gives, so it reads held items only.
- ``ix_web_alerts_kind_due_date_id``: the inbox filtered to one kind, in its order
  (``due_date, kind, id``, where a single kind leaves ``due_date, id``). Through
  ``ix_web_alerts_due_date_kind_id`` a kind whose alerts fall late in the month was found by
  stepping over every other kind's entries before them.

Revision ID: 0012_held_kind_indexes
Revises: 0011_keyed_fingerprints
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_held_kind_indexes"
down_revision = "0011_keyed_fingerprints"
branch_labels = None
depends_on = None

HELD = sa.text("hold_reason IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_batch_items_held", table_name="batch_items")
    op.create_index("ix_batch_items_held", "batch_items", [sa.text("batch_id DESC"), "id"],
                    sqlite_where=HELD, postgresql_where=HELD)  # fmt: skip
    op.create_index("ix_web_alerts_kind_due_date_id", "web_alerts", ["kind", "due_date", "id"])


def downgrade() -> None:
    op.drop_index("ix_web_alerts_kind_due_date_id", table_name="web_alerts")
    op.drop_index("ix_batch_items_held", table_name="batch_items")
    op.create_index("ix_batch_items_held", "batch_items", ["batch_id", "id"],
                    sqlite_where=HELD, postgresql_where=HELD)  # fmt: skip
