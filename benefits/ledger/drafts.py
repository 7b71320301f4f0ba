"""Creating a draft batch from a recorded sweep run: payments or adjustments, and reissues.

Example:
    >>> b = create_batch(db, run_id=1, by="alice")      # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, exists, false, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from benefits.ledger import audit, totals
from benefits.ledger.adjustments import compute_adjustments, settled_for_month
from benefits.ledger.batchstate import audit_snapshot, describe_state
from benefits.ledger.bulk import BULK_CHUNK, bulk_insert
from benefits.ledger.db import Database
from benefits.ledger.errors import Conflict, IllegalTransition, NothingToBatch
from benefits.ledger.faults import crashpoint
from benefits.ledger.items import SWEEP_HELD, Due, item_row
from benefits.ledger.models import (
    DRAFT,
    HELD,
    ITEM_KINDS,
    OPEN_STATUSES,
    PAYMENT,
    PENDING,
    REISSUE,
    REJECTED,
    RELEASED,
    Batch,
    BatchItem,
    BatchTotal,
    RunEntitlement,
)
from benefits.ledger.money import ZERO
from benefits.ledger.runs import get_run


def _dues(session: Session, run_id: int) -> list[Due]:
    e = RunEntitlement
    rows = session.connection().execute(
        select(
            e.id, e.id_no, e.household_no, e.policy_id, e.month, e.mode, e.amount, e.held,
            e.hold_reason, e.community, e.masked_name, e.account_no,
        ).where(e.run_id == run_id).order_by(e.id)
    ).all()  # fmt: skip
    return [Due(*r) for r in rows]


def _insert_payments(session: Session, run_id: int, batch_id: int) -> None:
    """Every pay/credit row of the run as a payment item of the batch, with ``INSERT …
    SELECT`` in id ranges of :data:`BULK_CHUNK` (a ``bulk:rows`` crash point after each).

    The sealed ``id_no`` and ``account_no`` are copied as they are (same key, same kind of
    column); whether an item is held comes from the sweep's flag and the ``account_problem``
    the import recorded — exactly :func:`benefits.ledger.items.hold_state`.
    """
    e = RunEntitlement.__table__.c
    status = case((e.held, HELD), (e.account_problem.is_not(None), HELD), else_=PENDING)
    reason = case((e.held, func.coalesce(e.hold_reason, SWEEP_HELD)), else_=e.account_problem)
    names = ["batch_id", "kind", "id_no", "id_index", "household_no", "policy_id", "month",
             "mode", "amount", "status", "hold_reason", "community", "masked_name",
             "account_no", "entitlement_id", "voided"]  # fmt: skip
    lo, hi = session.execute(select(func.min(e.id), func.max(e.id)).where(e.run_id == run_id)).one()
    if lo is None:
        return
    items = BatchItem.__table__
    for start in range(lo - 1, hi, BULK_CHUNK):
        rows = (
            select(
                literal(batch_id), literal(PAYMENT), e.id_no, e.id_index, e.household_no,
                e.policy_id, e.month, e.mode, e.amount, status, reason, e.community,
                e.masked_name, e.account_no, e.id, false(),
            )
            .where(e.run_id == run_id, e.id > start, e.id <= start + BULK_CHUNK)
            .order_by(e.id)
        )  # fmt: skip
        session.execute(insert(items).from_select(names, rows))
        crashpoint("bulk:rows")


def _reissues(session: Session) -> list[dict[str, Any]]:
    """Rows re-sending items released after their batch was exported (not yet reissued)."""
    other = aliased(BatchItem)
    already = exists().where(
        other.corrects_item_id == BatchItem.id, other.kind == REISSUE, other.voided.is_(False)
    )
    released = session.execute(
        select(BatchItem)
        .where(BatchItem.status == RELEASED, BatchItem.voided.is_(False), ~already)
        .order_by(BatchItem.id)
    ).scalars()
    rows = []
    for it in released:
        due = Due(
            it.entitlement_id, it.id_no, it.household_no, it.policy_id, it.month, it.mode,
            it.amount, False, None, it.community, it.masked_name,
            it.release_account or it.account_no,
        )  # fmt: skip
        reason = (
            f"reissue of item {it.id} ({it.policy_id} {it.month}, batch {it.batch_id}), "
            f"released by {it.released_by}: {it.release_reason}"
        )
        rows.append(item_row(due, kind=REISSUE, reason=reason, corrects_item_id=it.id))
    return rows


def create_batch(db: Database, run_id: int, by: str) -> Batch:
    """Create a draft batch from a recorded run.

    If the run's month has not been paid, every pay/credit entitlement becomes a payment
    item. If it has (a batch of that month was exported), the run gives adjustments only:
    arrears and recoveries against what was paid. Items released after an earlier export
    are reissued in it too. Raises NothingToBatch when there is nothing to put in it.

    Example:
        >>> batch = create_batch(db, run_id=1, by="alice")     # doctest: +SKIP
        >>> batch.status, batch.item_count                       # doctest: +SKIP
        ('draft', 23358)
    """
    try:
        with db.transaction() as s:
            run = get_run(s, run_id)
            obj = f"a batch from run {run.id}"
            rejected = (
                s.execute(select(Batch).where(Batch.run_id == run.id, Batch.status == REJECTED))
                .scalars()
                .first()
            )
            if rejected is not None:
                raise IllegalTransition(
                    "create", by, obj, f"the run of rejected batch {rejected.id}",
                    f"{rejected.rejected_by} rejected it ({rejected.reject_reason}); "
                    f"import a new sweep for {run.month} and create the batch from that",
                )  # fmt: skip
            open_batch = (
                s.execute(
                    select(Batch).where(Batch.month == run.month, Batch.status.in_(OPEN_STATUSES))
                )
                .scalars()
                .first()
            )
            if open_batch is not None:
                raise IllegalTransition(
                    "create", by, obj,
                    f"for {run.month}, which has batch {open_batch.id} "
                    f"{describe_state(open_batch)}",
                    f"a month has one open batch at a time: finish or reject batch "
                    f"{open_batch.id} first",
                )  # fmt: skip
            now = db.now()
            batch = Batch(
                month=run.month, run_id=run.id, status=DRAFT, item_count=0, total=ZERO,
                created_by=by, created_at=now,
            )  # fmt: skip
            s.add(batch)
            s.flush()  # claims the month: uq_batches_open_month refuses a second open batch
            crashpoint("create:batch_claimed")

            settled = settled_for_month(s, run.month)
            corrections = bool(settled)
            if not settled and run.accounts_checked:
                _insert_payments(s, run.id, batch.id)  # set-based: no sealed value opened
                rows = []
            else:
                dues = _dues(s, run.id)
                if settled:
                    rows = compute_adjustments(settled, {d.key: d for d in dues}, run.id)
                else:
                    rows = [item_row(d, kind=PAYMENT) for d in dues]
                del dues
            rows += _reissues(s)
            for r in rows:
                r["batch_id"] = batch.id
            bulk_insert(s, BatchItem.__table__, rows)
            del rows
            totals.rebuild(s, batch.id)
            kinds: dict[str, int] = {}
            held, count, total = 0, 0, ZERO
            for t in s.execute(select(BatchTotal).where(BatchTotal.batch_id == batch.id)).scalars():
                kinds[t.kind] = kinds.get(t.kind, 0) + t.items
                held += t.items if t.status == HELD else 0
                count += t.items
                total += t.amount
            if not count:
                raise NothingToBatch(
                    f"run {run.id} gives nothing new for {run.month}: every entitlement is "
                    "already in the ledger at the same amount, and no released item waits"
                )
            batch.item_count = count
            batch.total = total
            kinds = dict(sorted(kinds.items(), key=lambda kv: ITEM_KINDS.index(kv[0])))
            s.flush()
            audit.append(
                s, at=now, actor=by, action="batch.create", object_type="batch",
                object_id=batch.id,
                after={**audit_snapshot(batch), "kinds": kinds, "held": held,
                       "corrections": corrections},
            )  # fmt: skip
            crashpoint("create:db_mid")
            return batch
    except IntegrityError as exc:
        raise Conflict(
            f"the database refused batch creation from run {run_id} ({_constraint(exc)}): "
            "another officer created a batch for the same month or reissued the same items at "
            "the same moment; nothing was written — look at the batches again and retry"
        ) from exc


def _constraint(exc: IntegrityError) -> str:
    text = str(exc.orig)
    for name in ("uq_batches_open_month", "uq_batch_items_payment_once",
                 "uq_batch_items_reissue_once"):  # fmt: skip
        if name in text:
            return name
    return text.splitlines()[0] if text else "integrity error"
