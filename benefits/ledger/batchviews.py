"""Reading batches: an approver's totals per policy, community, kind and status; listings."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from benefits.ledger.batchstate import get_batch
from benefits.ledger.db import Database
from benefits.ledger.models import HELD, BankFile, Batch, BatchItem, BatchTotal
from benefits.ledger.money import ZERO


@dataclass(frozen=True)
class Total:
    """One line of a batch's totals: items, amount, and how much of it is held."""

    key: str
    items: int
    amount: Decimal
    held_items: int
    held_amount: Decimal


@dataclass(frozen=True)
class BatchDetail:
    """A batch with its totals per policy, per community, per kind and per item status."""

    batch: Batch
    by_policy: list[Total]
    by_community: list[Total]
    by_kind: list[Total]
    by_status: list[Total]
    bank_file_sha256: str | None
    # The kept totals (policy, community, kind, status, items, amount) they were added up
    # from; None for a batch counted from its items (created before totals were kept).
    groups: tuple[Group, ...] | None = None


Group = tuple[str, str, str, str, int, Decimal]
DIMENSIONS = ("policy_id", "community", "kind", "status")


def kept_groups(session: Session, batch_id: int) -> tuple[Group, ...] | None:
    """The batch's kept totals in one query (a few hundred rows whatever its size), or None
    when it has none kept."""
    t = BatchTotal
    rows = session.execute(
        select(t.policy_id, t.community, t.kind, t.status, t.items, t.amount)
        .where(t.batch_id == batch_id)
    ).all()  # fmt: skip
    return tuple((r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in rows) or None


def add_up(groups: tuple[Group, ...], name: str) -> list[Total]:
    """Totals by one dimension (policy_id, community, kind or status) of kept groups."""
    at = DIMENSIONS.index(name)
    out: dict[str, list[Any]] = {}
    for g in groups:
        held = g[3] == HELD
        line = out.setdefault(g[at], [0, ZERO, 0, ZERO])
        line[0] += g[4]
        line[1] += g[5]
        line[2] += g[4] if held else 0
        line[3] += g[5] if held else ZERO
    return [Total(k or "—", *v) for k, v in sorted(out.items())]


def totals_by(session: Session, batch_id: int, name: str) -> list[Total]:
    """The batch's totals by `name` (policy_id, community, kind or status): from the totals
    kept with the batch, else (a batch created before they were kept) counted."""
    groups = kept_groups(session, batch_id)
    if groups is not None:
        return add_up(groups, name)
    return _totals(session, batch_id, getattr(BatchItem, name))


def _totals(session: Session, batch_id: int, column: Any) -> list[Total]:
    held = BatchItem.status == HELD
    rows = session.execute(
        select(
            column,
            func.count(),
            func.sum(BatchItem.amount),
            func.sum(case((held, 1), else_=0)),
            func.sum(case((held, BatchItem.amount), else_=ZERO)),
        )
        .where(BatchItem.batch_id == batch_id)
        .group_by(column)
        .order_by(column)
    ).all()
    return [Total(r[0] or "—", r[1], r[2] or ZERO, int(r[3] or 0), r[4] or ZERO) for r in rows]


def batch_detail(db: Database, batch_id: int) -> BatchDetail:
    """Everything an approver looks at: totals per policy and community, held amounts."""
    with db.snapshot() as s:
        batch = get_batch(s, batch_id)
        sha = s.execute(
            select(BankFile.sha256).where(BankFile.batch_id == batch_id)
        ).scalar_one_or_none()
        groups = kept_groups(s, batch_id)
        if groups is not None:
            return BatchDetail(batch, *(add_up(groups, d) for d in DIMENSIONS), sha, groups)
        return BatchDetail(
            batch,
            _totals(s, batch_id, BatchItem.policy_id),
            _totals(s, batch_id, BatchItem.community),
            _totals(s, batch_id, BatchItem.kind),
            _totals(s, batch_id, BatchItem.status),
            sha,
        )


def list_batches(db: Database, month: str | None = None, status: str | None = None) -> list[Batch]:
    """Batches, newest first, optionally filtered by month and status."""
    with db.snapshot() as s:
        q = select(Batch).order_by(Batch.id.desc())
        if month:
            q = q.where(Batch.month == month)
        if status:
            q = q.where(Batch.status == status)
        return list(s.execute(q).scalars())


def list_items(
    db: Database,
    batch_id: int,
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int | None = 100,
) -> list[BatchItem]:
    """Items of a batch in id order, optionally by status or kind."""
    with db.snapshot() as s:
        get_batch(s, batch_id)
        conds = [BatchItem.batch_id == batch_id]
        if status:
            conds.append(BatchItem.status == status)
        if kind:
            conds.append(BatchItem.kind == kind)
        q = select(BatchItem).where(and_(*conds)).order_by(BatchItem.id)
        if limit:
            q = q.limit(limit)
        return list(s.execute(q).scalars())
