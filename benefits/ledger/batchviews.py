"""Reading batches: an approver's totals per policy, community, kind and status; listings."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from benefits.ledger import totals
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


def _kept_totals(session: Session, batch_id: int, name: str) -> list[Total]:
    """Totals by one dimension from the batch's kept totals (a few hundred rows)."""
    t = BatchTotal
    column = getattr(t, name)
    held = t.status == HELD
    rows = session.execute(
        select(
            column,
            func.sum(t.items),
            func.sum(t.amount),
            func.sum(case((held, t.items), else_=0)),
            func.sum(case((held, t.amount), else_=ZERO)),
        )
        .where(t.batch_id == batch_id)
        .group_by(column)
        .order_by(column)
    ).all()
    return [Total(r[0] or "—", int(r[1]), r[2] or ZERO, int(r[3] or 0), r[4] or ZERO)
            for r in rows]  # fmt: skip


def totals_by(session: Session, batch_id: int, name: str) -> list[Total]:
    """The batch's totals by `name` (policy_id, community, kind or status): from the totals
    kept with the batch, else (a batch created before they were kept) counted."""
    if totals.kept(session, batch_id):
        return _kept_totals(session, batch_id, name)
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
        return BatchDetail(
            batch,
            totals_by(s, batch_id, "policy_id"),
            totals_by(s, batch_id, "community"),
            totals_by(s, batch_id, "kind"),
            totals_by(s, batch_id, "status"),
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
