"""The alert inbox sealed at rest, like the payment tables (issue 14).

``web_alerts`` gets ``id_index`` (the keyed blind index of the resident ID, which finds a
person's alerts instead of ``id_no``); ``id_no`` and ``message`` (which quotes faulty values:
an ID with full-width digits, a birth date) are sealed with the ``data`` key; ``party`` — the
person's ID or the household an alert is about, part of its identity across months — is
replaced by its keyed blind index (the ``blind_index`` key, the value as given; an inbox
filled before rule ids stored a household as ``household_no:H9``: the prefix is dropped
first, as the import always read it). Existing rows are rewritten here, in chunks; a ledger
with alerts needs its ``data`` and ``blind_index`` keys to upgrade.

Going down opens ``id_no`` and ``message`` again; ``party`` cannot be recovered from its
index and is set to the alert's ``id_no`` (exact for every per-person alert; a household
alert is then matched as a new one by an older version).

Self-contained: the columns are declared here, as this revision leaves them.

Revision ID: 0008_sealed_alerts
Revises: 0007_exports
Create Date: 2026-12-06
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0008_sealed_alerts"
down_revision = "0007_exports"
branch_labels = None
depends_on = None

CHUNK = 2000
INDEX_LENGTH = 32
GROUP_PARTY = re.compile(r"^[a-z_]+:")
TABLE = sa.table(
    "web_alerts", sa.column("id", sa.Integer), sa.column("id_no", sa.String),
    sa.column("id_index", sa.String), sa.column("party", sa.String),
    sa.column("message", sa.Text),
)  # fmt: skip


def _keys():  # type: ignore[no-untyped-def]
    from benefits.ledger.sealed import keys_of

    return keys_of(op.get_bind().dialect)


def _rewrite(seal: bool) -> None:
    """Seal (or, going down, open) every alert's ID and message, and index its party."""
    conn = op.get_bind()
    t = TABLE
    keys = None
    last = 0
    while True:
        rows = conn.execute(
            sa.select(t.c.id, t.c.id_no, t.c.party, t.c.message)
            .where(t.c.id > last).order_by(t.c.id).limit(CHUNK)
        ).all()  # fmt: skip
        if not rows:
            return
        keys = keys or _keys()
        updates = []
        for row in rows:
            if seal:
                id_no = row.id_no or ""
                party = GROUP_PARTY.sub("", row.party or "")
                updates.append({
                    "row_id": row.id,
                    "b_id_no": keys.seal(id_no, "id_no") if id_no else id_no,
                    "b_id_index": keys.blind_index(id_no.strip().upper(), INDEX_LENGTH)[1],
                    "b_party": keys.blind_index(party, INDEX_LENGTH)[1],
                    "b_message": keys.seal(row.message, "message") if row.message
                    else row.message,
                })  # fmt: skip
            else:
                id_no = keys.unseal(row.id_no, "id_no") if row.id_no else row.id_no
                updates.append({
                    "row_id": row.id, "b_id_no": id_no, "b_party": id_no,
                    "b_message": keys.unseal(row.message, "message") if row.message
                    else row.message,
                })  # fmt: skip
        names = [k[2:] for k in updates[0] if k.startswith("b_")]
        conn.execute(
            t.update().where(t.c.id == sa.bindparam("row_id"))
            .values({n: sa.bindparam(f"b_{n}") for n in names}),
            updates,
        )  # fmt: skip
        last = rows[-1].id


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "web_alerts",
        sa.Column("id_index", sa.String(32), nullable=False, server_default=sa.text("''")),
    )
    if postgres:  # SQLite keeps VARCHAR(n): it does not enforce lengths
        op.alter_column("web_alerts", "id_no", type_=sa.Text(), existing_type=sa.String(32))
        op.alter_column("web_alerts", "id_index", server_default=None)
    op.drop_index("ix_web_alerts_id_no", table_name="web_alerts")
    _rewrite(seal=True)
    op.create_index("ix_web_alerts_id_index", "web_alerts", ["id_index"])


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_web_alerts_id_index", table_name="web_alerts")
    _rewrite(seal=False)
    op.create_index("ix_web_alerts_id_no", "web_alerts", ["id_no"])
    op.drop_column("web_alerts", "id_index")  # plain ALTER TABLE (SQLite ≥ 3.35)
    if postgres:
        op.alter_column("web_alerts", "id_no", type_=sa.String(32), existing_type=sa.Text())
