"""Alert fingerprints keyed in the inbox (issue 14).

An alert's ``fingerprint`` is the SHA-256 of the facts its message reports (an amount, a
date, a status: :mod:`benefits.alertid`). Unkeyed, it is found again by hashing the likely
values, so ``web_alerts.fingerprint`` now holds
``HMAC-SHA256(blind_index key, "fingerprint:" + fingerprint)`` (64 hex digits;
:func:`benefits.ledger.sealed.fingerprint_index`), which the import compares as it compared
the plain one. Existing rows are rewritten here, in chunks; a ledger with alerts needs its
``blind_index`` key to upgrade. An empty fingerprint (an alert stored before fingerprints)
stays empty.

Going down cannot recover a fingerprint from its HMAC: it is emptied, which an older version
reads as "facts unknown" (a resolved alert is then not reopened for changed facts until the
next import records a fingerprint again).

Revision ID: 0011_keyed_fingerprints
Revises: 0010_city_scale
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_keyed_fingerprints"
down_revision = "0010_city_scale"
branch_labels = None
depends_on = None

CHUNK = 2000
LENGTH = 64
TABLE = sa.table(
    "web_alerts", sa.column("id", sa.Integer), sa.column("fingerprint", sa.String),
)  # fmt: skip


def _keys():  # type: ignore[no-untyped-def]
    from benefits.ledger.sealed import keys_of

    return keys_of(op.get_bind().dialect)


def upgrade() -> None:
    conn = op.get_bind()
    t = TABLE
    keys = None
    last = 0
    while True:
        rows = conn.execute(
            sa.select(t.c.id, t.c.fingerprint)
            .where(t.c.id > last).order_by(t.c.id).limit(CHUNK)
        ).all()  # fmt: skip
        if not rows:
            return
        keys = keys or _keys()
        updates = [
            {"row_id": r.id,
             "b_fp": keys.blind_index("fingerprint:" + r.fingerprint, LENGTH)[1]}
            for r in rows if r.fingerprint
        ]  # fmt: skip
        if updates:
            conn.execute(
                t.update().where(t.c.id == sa.bindparam("row_id"))
                .values(fingerprint=sa.bindparam("b_fp")),
                updates,
            )  # fmt: skip
        last = rows[-1].id


def downgrade() -> None:
    op.execute(sa.text("UPDATE web_alerts SET fingerprint = ''"))
