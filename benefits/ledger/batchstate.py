"""A batch's state: finding it, describing who put it there, saying why an action is refused.

Shared by the lifecycle (:mod:`benefits.ledger.batches`), creation (:mod:`benefits.ledger.drafts`),
releases (:mod:`benefits.ledger.releases`), reading (:mod:`benefits.ledger.batchviews`) and the
bank file.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from benefits.ledger.errors import NotFound
from benefits.ledger.models import (
    APPROVED,
    DRAFT,
    EXPORTED,
    RECONCILED,
    REJECTED,
    SUBMITTED,
    Batch,
)
from benefits.ledger.money import format_amount


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "?"


def describe_state(batch: Batch) -> str:
    """The batch's state with who put it there, e.g. 'submitted (by alice, 2025-01-04 09:00)'."""
    who_when = {
        DRAFT: (batch.created_by, batch.created_at),
        SUBMITTED: (batch.submitted_by, batch.submitted_at),
        APPROVED: (batch.approved_by, batch.approved_at),
        EXPORTED: (batch.exported_by, batch.exported_at),
        RECONCILED: (batch.reconciled_by, batch.reconciled_at),
        REJECTED: (batch.rejected_by, batch.rejected_at),
    }[batch.status]
    return f"{batch.status} (by {who_when[0]}, {_when(who_when[1])})"


def why_not(action: str, batch: Batch) -> str:
    """Why `action` is not possible in the batch's current state."""
    st = batch.status
    if st == REJECTED:
        return (
            f"it was rejected: {batch.reject_reason}; a rejected batch is final — import a new "
            f"sweep for {batch.month} and create a new batch from it"
        )
    if action == "submit":
        return "only a draft can be submitted" + (
            f"; {batch.submitted_by} already submitted it" if batch.submitted_by else ""
        )
    if action == "approve":
        if st == DRAFT:
            return (
                "it has not been submitted; its preparer submits it, then another officer approves"
            )
        return f"it was already approved by {batch.approved_by} at {_when(batch.approved_at)}"
    if action == "reject":
        return (
            "its bank file has gone out; corrections now come from a new sweep of the month, "
            "as adjustments in the next batch"
        )
    if action == "export":
        return "only an approved batch can be exported (a second officer approves it first)"
    if action == "reconcile":
        return "only an exported batch has a bank file to reconcile"
    return f"{action} is not possible in this state"


def get_batch(session: Session, batch_id: int, *, lock: bool = False) -> Batch:
    """The batch with this id (row-locked when `lock`), or NotFound."""
    q = select(Batch).where(Batch.id == batch_id)
    if lock:
        q = q.with_for_update()
    batch = session.execute(q).scalar_one_or_none()
    if batch is None:
        raise NotFound(f"there is no batch {batch_id} in the ledger")
    return batch


def audit_snapshot(batch: Batch) -> dict[str, Any]:
    """What the audit chain records of a batch before and after a change."""
    return {
        "status": batch.status,
        "month": batch.month,
        "run": batch.run_id,
        "items": batch.item_count,
        "total": format_amount(batch.total),
    }
