"""Ledger settings: a small key → value store whose every change is audited.

Example:
    >>> set_setting(db, "bank.payer_name", "西湖区民政局", by="admin")   # doctest: +SKIP
    >>> get_setting(db, "bank.payer_name")                              # doctest: +SKIP
    '西湖区民政局'
"""

from __future__ import annotations

import re

from sqlalchemy import select

from benefits.ledger import audit
from benefits.ledger.db import Database
from benefits.ledger.errors import InvalidInput
from benefits.ledger.models import Setting

KEY_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def set_setting(db: Database, key: str, value: str, by: str) -> Setting:
    """Create or change a setting; the audit entry keeps the old and the new value."""
    if not KEY_RE.match(key):
        raise InvalidInput(f"setting key {key!r} must be lower-case letters, digits, . _ -")
    with db.transaction() as s:
        row = s.get(Setting, key, with_for_update=True)
        before = None if row is None else {"value": row.value}
        now = db.now()
        if row is None:
            row = Setting(key=key, value=value, updated_by=by, updated_at=now)
            s.add(row)
        else:
            row.value, row.updated_by, row.updated_at = value, by, now
        s.flush()
        audit.append(
            s, at=now, actor=by, action="setting.change", object_type="setting",
            object_id=key, before=before, after={"value": value},
        )  # fmt: skip
        return row


def get_setting(db: Database, key: str, default: str | None = None) -> str | None:
    """The value of a setting, or `default`."""
    with db.snapshot() as s:
        row = s.get(Setting, key)
        return default if row is None else row.value


def list_settings(db: Database) -> dict[str, str]:
    """Every setting, by key."""
    with db.snapshot() as s:
        return {r.key: r.value for r in s.execute(select(Setting).order_by(Setting.key)).scalars()}
