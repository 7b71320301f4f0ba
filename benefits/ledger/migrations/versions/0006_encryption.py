"""Sensitive columns sealed at rest; persons found through a keyed blind index.

``run_entitlements`` and ``batch_items`` get ``id_index`` (HMAC-SHA256 of the resident ID under
the ``blind_index`` key), and their ``id_no``, ``account_no`` (and ``release_account``) values
are sealed with the ``data`` key (AES-256-GCM, ``v1:<key id>:<base64>``; see
``benefits.ledger.sealed``). Indexes that found a person by ``id_no`` now use ``id_index``.
Existing rows are sealed here, in chunks; a ledger with rows needs its ``data`` and
``blind_index`` keys to upgrade (and to downgrade, which writes the clear values back).

Revision ID: 0006_encryption
Revises: 0005_audit_keys
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_encryption"
down_revision = "0005_audit_keys"
branch_labels = None
depends_on = None

CHUNK = 2000
LIVE_PAYMENT = sa.text("kind = 'payment' AND NOT voided")
# table → {column: context of its sealed values}
SEALED = {
    "run_entitlements": {"id_no": "id_no", "account_no": "account_no"},
    "batch_items": {"id_no": "id_no", "account_no": "account_no", "release_account": "account_no"},
}
LENGTHS = {"id_no": 32, "account_no": 64, "release_account": 64}
OLD_INDEXES = [
    ("ix_batch_items_month_policy_id_id_no", "batch_items", ["month", "policy_id", "id_no"]),
    ("ix_web_batch_items_id_no", "batch_items", ["id_no"]),
]
NEW_INDEXES = [
    ("ix_batch_items_month_policy_id_id_index", "batch_items", ["month", "policy_id", "id_index"]),
    ("ix_web_batch_items_id_index", "batch_items", ["id_index"]),
]
RUN_UNIQUE = "uq_run_entitlements_run_id_id_index_policy_id_month"


def _keys():  # type: ignore[no-untyped-def]
    from benefits.ledger.sealed import keys_of

    return keys_of(op.get_bind().dialect)


def _rewrite(table: str, seal: bool) -> None:
    """Seal (or, going down, open) every value of the table's sealed columns, in chunks."""
    from benefits.ledger.sealed import id_index

    conn = op.get_bind()
    columns = SEALED[table]
    t = sa.table(
        table, sa.column("id", sa.Integer), sa.column("id_index", sa.String),
        *(sa.column(c, sa.String) for c in columns),
    )  # fmt: skip
    keys = None
    last = 0
    while True:
        rows = conn.execute(
            sa.select(t.c.id, *(t.c[c] for c in columns))
            .where(t.c.id > last)
            .order_by(t.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        keys = keys or _keys()
        updates = []
        for row in rows:
            values: dict[str, object] = {"row_id": row.id}
            for col, context in columns.items():
                value = getattr(row, col)
                if value:
                    values[col] = keys.seal(value, context) if seal else keys.unseal(value, context)
                else:
                    values[col] = value
            if seal:
                values["id_index"] = id_index(keys, row.id_no)
            updates.append(values)
        targets = {c: sa.bindparam(c) for c in columns}
        if seal:
            targets["id_index"] = sa.bindparam("id_index")
        conn.execute(t.update().where(t.c.id == sa.bindparam("row_id")).values(targets), updates)
        last = rows[-1].id


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, columns in SEALED.items():
        op.add_column(
            table,
            sa.Column("id_index", sa.String(32), nullable=False, server_default=sa.text("''")),
        )
        if postgres:  # SQLite keeps VARCHAR(n): it does not enforce lengths
            for col in columns:
                op.alter_column(table, col, type_=sa.Text(), existing_type=sa.String(LENGTHS[col]))
            op.alter_column(table, "id_index", server_default=None)
    for name, table, _ in OLD_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_index("uq_batch_items_payment_once", table_name="batch_items")
    for table in SEALED:
        _rewrite(table, seal=True)
    _payment_once_index("id_index")
    for name, table, cols in NEW_INDEXES:
        op.create_index(name, table, cols)
    op.create_index(
        RUN_UNIQUE, "run_entitlements", ["run_id", "id_index", "policy_id", "month"], unique=True
    )


def _payment_once_index(person: str) -> None:
    """One live payment per person × policy × month, the person by `person` (column)."""
    op.create_index(
        "uq_batch_items_payment_once",
        "batch_items",
        [person, "policy_id", "month"],
        unique=True,
        sqlite_where=LIVE_PAYMENT,
        postgresql_where=LIVE_PAYMENT,
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index(RUN_UNIQUE, table_name="run_entitlements")
    for name, table, _ in NEW_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_index("uq_batch_items_payment_once", table_name="batch_items")
    for table in SEALED:
        _rewrite(table, seal=False)
    _payment_once_index("id_no")
    for name, table, cols in OLD_INDEXES:
        op.create_index(name, table, cols)
    for table, columns in SEALED.items():
        op.drop_column(table, "id_index")  # plain ALTER TABLE (SQLite ≥ 3.35)
        if postgres:
            for col in columns:
                op.alter_column(table, col, type_=sa.String(LENGTHS[col]), existing_type=sa.Text())
