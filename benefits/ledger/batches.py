"""Payout batches' approval lifecycle: submit, approve (four eyes), reject.

``draft → submitted → approved → exported → reconciled``, or ``rejected`` (with a reason)
from draft, submitted or approved. A rejected batch's items are voided, which frees their
person × policy × month for the batch of a *new* sweep. The officer who created or
submitted a batch cannot approve it (four eyes, handbook §6): refused here, and by the
``ck_batches_four_eyes`` constraint in the database.

Every transition locks the batch row (``SELECT … FOR UPDATE``; SQLite takes its write lock
at ``BEGIN IMMEDIATE``) and then changes it with a conditional ``UPDATE … WHERE status = …``,
so of two officers approving at the same moment exactly one succeeds.

A batch is created by :mod:`benefits.ledger.drafts`; held items are released by
:mod:`benefits.ledger.releases`; totals and listings are in :mod:`benefits.ledger.batchviews`.

Example:
    >>> submit(db, b.id, by="alice"); approve(db, b.id, by="bob")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from benefits.ledger import audit
from benefits.ledger.batchstate import audit_snapshot, describe_state, get_batch, why_not
from benefits.ledger.db import Database
from benefits.ledger.errors import Conflict, FourEyesViolation, IllegalTransition, InvalidInput
from benefits.ledger.models import (
    APPROVED,
    DRAFT,
    OPEN_STATUSES,
    REJECTED,
    SUBMITTED,
    Batch,
    BatchItem,
)


def _transition(
    db: Database,
    batch_id: int,
    by: str,
    action: str,
    allowed: Sequence[str],
    new_status: str,
    values: dict[str, Any],
    *,
    guard: Any = None,
    extra_where: Sequence[Any] = (),
    audit_extra: dict[str, Any] | None = None,
    on_success: Any = None,
) -> Batch:
    """Lock, check, conditionally update, audit — all in one transaction."""
    with db.transaction() as s:
        batch = get_batch(s, batch_id, lock=True)
        if batch.status not in allowed:
            raise IllegalTransition(
                action, by, f"batch {batch.id}", describe_state(batch), why_not(action, batch)
            )
        if guard is not None:
            guard(batch)
        before = audit_snapshot(batch)
        result = s.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status.in_(allowed), *extra_where)
            .values(status=new_status, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # pragma: no cover - the row lock makes this unreachable
            raise Conflict(f"batch {batch_id} changed while {by} tried to {action} it; retry")
        if on_success is not None:
            on_success(s)
        s.refresh(batch)
        audit.append(
            s, at=values.get(f"{new_status}_at") or db.now(), actor=by,
            action=f"batch.{action}", object_type="batch", object_id=batch.id,
            before=before, after={**audit_snapshot(batch), **(audit_extra or {})},
        )  # fmt: skip
        return batch


def submit(db: Database, batch_id: int, by: str) -> Batch:
    """Submit a draft for approval (draft → submitted).

    Example:
        >>> submit(db, 3, by="alice").status      # doctest: +SKIP
        'submitted'
    """
    now = db.now()
    return _transition(
        db, batch_id, by, "submit", (DRAFT,), SUBMITTED,
        {"submitted_by": by, "submitted_at": now},
    )  # fmt: skip


def approve(db: Database, batch_id: int, by: str) -> Batch:
    """Approve a submitted batch (submitted → approved) as a second officer.

    Raises FourEyesViolation when `by` created or submitted the batch.

    Example:
        >>> approve(db, 3, by="bob").approved_by      # doctest: +SKIP
        'bob'
    """

    def four_eyes(batch: Batch) -> None:
        role = (
            "submitted" if by == batch.submitted_by else "created" if by == batch.created_by
            else None
        )  # fmt: skip
        if role:
            raise FourEyesViolation(
                "approve", by, f"batch {batch.id}", describe_state(batch),
                f"{by} {role} it, and the officer who prepares a batch may not approve it "
                "(four eyes, handbook §6); another officer must approve",
            )  # fmt: skip

    now = db.now()
    return _transition(
        db, batch_id, by, "approve", (SUBMITTED,), APPROVED,
        {"approved_by": by, "approved_at": now},
        guard=four_eyes,
        extra_where=(Batch.submitted_by != by, Batch.created_by != by),
    )  # fmt: skip


def reject(db: Database, batch_id: int, by: str, reason: str) -> Batch:
    """Reject a batch before export, with a reason; its items are voided.

    Example:
        >>> reject(db, 3, by="bob", reason="wrong standard in the rule pack").status
        ...                                                   # doctest: +SKIP
        'rejected'
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"{by} must give a reason to reject batch {batch_id}")
    now = db.now()

    def void_items(s: Session) -> None:
        s.execute(
            update(BatchItem)
            .where(BatchItem.batch_id == batch_id)
            .values(voided=True)
            .execution_options(synchronize_session=False)
        )

    return _transition(
        db, batch_id, by, "reject", OPEN_STATUSES, REJECTED,
        {"rejected_by": by, "rejected_at": now, "reject_reason": reason},
        audit_extra={"reason": reason}, on_success=void_items,
    )  # fmt: skip
