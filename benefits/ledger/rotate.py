"""Re-seal the ledger's sensitive columns under the current ``data`` key, in batches.

After a new ``data`` key is made current in the key file, values sealed with older keys stay
readable (the key file keeps those keys) and :func:`rotate_data` re-seals them: it walks the
sealed columns in row order, ``batch_size`` rows per transaction, and rewrites each value that
names another key. Each batch commits on its own, so an interrupted rotation keeps what it did
and a second run finishes the rest; a value changed by someone else meanwhile is left alone
(the update only applies while the row still holds the value that was read), and it is
already under the current key. Rotation is done when :func:`key_ids_in_use` names only the
current key; the old key may then be removed from the key file.

Example:
    >>> report = rotate_data(db, batch_size=1000)          # doctest: +SKIP
    >>> report.resealed, report.remaining                   # doctest: +SKIP
    (30000, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from benefits.ledger.db import Database
from benefits.ledger.faults import crashpoint
from benefits.ledger.models import Base
from benefits.ledger.sealed import Sealed


def sealed_columns() -> dict[str, dict[str, str]]:
    """table → {column: context} of every sealed column of the ledger (the web app's tables
    too: the alert inbox is sealed)."""
    import benefits.web.models  # noqa: F401  (registers the web tables on the metadata)

    out: dict[str, dict[str, str]] = {}
    for table in Base.metadata.sorted_tables:
        for col in table.columns:
            if isinstance(col.type, Sealed):
                out.setdefault(table.name, {})[col.name] = col.type.context
    return out


def _raw(table: str, columns: dict[str, str]) -> sa.TableClause:
    """The table with plain text columns: the sealed form, untouched by the Sealed type."""
    return sa.table(table, sa.column("id", sa.Integer), *(sa.column(c, sa.Text) for c in columns))


def _stale(t: sa.TableClause, columns: dict[str, str], current: str) -> sa.ColumnElement[bool]:
    """Rows with at least one value sealed with a key other than `current`."""
    prefix = f"v1:{current}:%"
    return sa.or_(*(sa.and_(t.c[c] != "", ~t.c[c].like(prefix)) for c in columns))


def key_ids_in_use(db: Database) -> dict[str, int]:
    """How many sealed values each ``data`` key ID protects (values that are not sealed
    count as ``clear``)."""
    from benefits.keys import KeyRing

    counts: dict[str, int] = {}
    with db.snapshot() as s:
        for table, columns in sealed_columns().items():
            t = _raw(table, columns)
            for col in columns:
                heads = s.execute(
                    sa.select(sa.func.substr(t.c[col], 1, 48)).where(
                        t.c[col].is_not(None), t.c[col] != ""
                    )
                ).scalars()
                for head in heads:
                    kid = KeyRing.sealed_key_id(head) or "clear"
                    counts[kid] = counts.get(kid, 0) + 1
    return dict(sorted(counts.items()))


@dataclass
class RotationReport:
    """What one run of the rotation did, and how many rows still name an older key."""

    key_id: str
    resealed: int = 0
    batches: int = 0
    remaining: int = 0
    by_table: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.remaining == 0


def rotate_data(
    db: Database, *, batch_size: int = 1000, limit: int | None = None
) -> RotationReport:
    """Re-seal every value not under the current ``data`` key; at most `limit` rows this run.

    Raises MissingKey when the current key, or the key a stored value names, is not in the
    key ring.
    """
    keys = db.keys
    current, _ = keys.current("data")
    report = RotationReport(current)
    budget = limit
    for table, columns in sealed_columns().items():
        t = _raw(table, columns)
        last = 0
        while budget is None or budget > 0:
            size = batch_size if budget is None else min(batch_size, budget)
            with db.transaction() as s:
                rows = s.execute(
                    sa.select(t.c.id, *(t.c[c] for c in columns))
                    .where(t.c.id > last, _stale(t, columns, current))
                    .order_by(t.c.id)
                    .limit(size)
                ).all()
                if not rows:
                    break
                for row in rows:
                    old = {c: getattr(row, c) for c in columns}
                    new = {
                        c: keys.seal(keys.unseal(v, ctx), ctx) if v else v
                        for c, ctx in columns.items()
                        for v in [old[c]]
                    }
                    s.execute(
                        t.update()
                        .where(t.c.id == row.id, *(_same(t, c, v) for c, v in old.items()))
                        .values(new)
                    )
                last = rows[-1].id
            report.resealed += len(rows)
            report.batches += 1
            report.by_table[table] = report.by_table.get(table, 0) + len(rows)
            if budget is not None:
                budget -= len(rows)
            crashpoint("rotate:batch")
    with db.snapshot() as s:
        for table, columns in sealed_columns().items():
            t = _raw(table, columns)
            report.remaining += int(
                s.execute(
                    sa.select(sa.func.count()).select_from(t).where(_stale(t, columns, current))
                ).scalar_one()
            )
    return report


def _same(t: sa.TableClause, col: str, value: str | None) -> sa.ColumnElement[bool]:
    return t.c[col].is_(None) if value is None else t.c[col] == value
