"""A batch's totals kept with it: items and amount per policy × community × kind × status.

A city's batch has a million items; counting them for every page view costs seconds. Every
ledger operation that adds items or changes their status therefore rewrites the batch's rows
of ``batch_totals`` in the same transaction — :func:`rebuild` after a bulk change (creation,
export, reconciliation: one ``GROUP BY`` over the batch), :func:`tracking` around a change
of a few items (a release, a hold) — and readers sum those rows (a few hundred, whatever
the batch's size). A batch created before ``0010_city_scale`` has no rows: readers then
count its items as before (:func:`kept`).

Example:
    >>> with db.transaction() as s:                                     # doctest: +SKIP
    ...     with tracking(s, batch_id, [item_id]):
    ...         s.execute(update(BatchItem).where(...).values(status="pending"))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from benefits.ledger.models import BatchItem, BatchTotal
from benefits.ledger.money import ZERO

KEY = ("policy_id", "community", "kind", "status")
Key = tuple[str, str, str, str]


def rebuild(session: Session, batch_id: int) -> None:
    """Recount the batch's totals from its items (one set-based statement)."""
    i = BatchItem.__table__.c
    session.execute(delete(BatchTotal).where(BatchTotal.batch_id == batch_id))
    groups = select(
        i.batch_id, i.policy_id, i.community, i.kind, i.status, func.count(), func.sum(i.amount)
    ).where(i.batch_id == batch_id).group_by(i.batch_id, i.policy_id, i.community, i.kind,
                                             i.status)  # fmt: skip
    session.execute(
        insert(BatchTotal.__table__).from_select(["batch_id", *KEY, "items", "amount"], groups)
    )


def kept(session: Session, batch_id: int) -> bool:
    """True when the batch's totals are kept in ``batch_totals``."""
    found = session.execute(
        select(BatchTotal.batch_id).where(BatchTotal.batch_id == batch_id).limit(1)
    ).first()
    return found is not None


def _groups(session: Session, item_ids: Sequence[int]) -> dict[Key, tuple[int, Decimal]]:
    i = BatchItem
    out: dict[Key, tuple[int, Decimal]] = {}
    for start in range(0, len(item_ids), 1000):
        rows = session.execute(
            select(i.policy_id, i.community, i.kind, i.status, func.count(), func.sum(i.amount))
            .where(i.id.in_(item_ids[start : start + 1000]))
            .group_by(i.policy_id, i.community, i.kind, i.status)
        ).all()
        for *key, n, amount in rows:
            k: Key = tuple(key)  # type: ignore[assignment]
            old = out.get(k, (0, ZERO))
            out[k] = (old[0] + int(n), old[1] + (amount or ZERO))
    return out


@contextmanager
def tracking(session: Session, batch_id: int, item_ids: Sequence[int]) -> Iterator[None]:
    """Move the batch's totals along with a change of the items `item_ids` made inside."""
    ids = list(item_ids)
    if not ids or not kept(session, batch_id):
        yield
        return
    before = _groups(session, ids)
    yield
    session.flush()
    after = _groups(session, ids)
    delta: dict[Key, list[Any]] = {}
    for k, (n, a) in before.items():
        delta.setdefault(k, [0, ZERO])
        delta[k][0] -= n
        delta[k][1] -= a
    for k, (n, a) in after.items():
        delta.setdefault(k, [0, ZERO])
        delta[k][0] += n
        delta[k][1] += a
    for k, (n, a) in delta.items():
        if n == 0 and a == ZERO:
            continue
        where = dict(zip(("batch_id", *KEY), (batch_id, *k), strict=True))
        row = session.get(BatchTotal, tuple(where.values()))
        if row is None:
            session.add(BatchTotal(**where, items=n, amount=a))
        elif row.items + n == 0:
            session.delete(row)
        else:
            row.items += n
            row.amount += a
    session.flush()
