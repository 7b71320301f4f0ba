"""Payout batches: creation from a sweep run, the approval lifecycle and releases.

``draft → submitted → approved → exported → reconciled``, or ``rejected`` (with a reason)
from draft, submitted or approved. A rejected batch's items are voided, which frees their
person × policy × month for the batch of a *new* sweep. The officer who created or
submitted a batch cannot approve it (four eyes, handbook §6): refused here, and by the
``ck_batches_four_eyes`` constraint in the database.

Every transition locks the batch row (``SELECT … FOR UPDATE``; SQLite takes its write lock
at ``BEGIN IMMEDIATE``) and then changes it with a conditional ``UPDATE … WHERE status = …``,
so of two officers approving at the same moment exactly one succeeds.

Example:
    >>> b = create_batch(db, run_id=1, by="alice")      # doctest: +SKIP
    >>> submit(db, b.id, by="alice"); approve(db, b.id, by="bob")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from benefits.accountno import account_no_problem
from benefits.ledger import audit
from benefits.ledger.adjustments import compute_adjustments, settled_for_month
from benefits.ledger.bulk import bulk_insert
from benefits.ledger.db import Database
from benefits.ledger.errors import (
    Conflict,
    FourEyesViolation,
    IllegalTransition,
    InvalidInput,
    NotFound,
    NothingToBatch,
)
from benefits.ledger.faults import crashpoint
from benefits.ledger.items import Due, item_row
from benefits.ledger.models import (
    APPROVED,
    DRAFT,
    EXPORTED,
    HELD,
    OPEN_STATUSES,
    PAYMENT,
    PENDING,
    RECONCILED,
    REISSUE,
    REJECTED,
    RELEASED,
    SUBMITTED,
    Batch,
    BatchItem,
    RunEntitlement,
)
from benefits.ledger.money import ZERO, format_amount
from benefits.ledger.runs import get_run


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


def _snapshot(batch: Batch) -> dict[str, Any]:
    return {
        "status": batch.status,
        "month": batch.month,
        "run": batch.run_id,
        "items": batch.item_count,
        "total": format_amount(batch.total),
    }


# ------------------------------------------------------------------------------- creation


def _dues(session: Session, run_id: int) -> list[Due]:
    e = RunEntitlement
    rows = session.connection().execute(
        select(
            e.id, e.id_no, e.household_no, e.policy_id, e.month, e.mode, e.amount, e.held,
            e.hold_reason, e.community, e.masked_name, e.account_no,
        ).where(e.run_id == run_id).order_by(e.id)
    ).all()  # fmt: skip
    return [Due(*r) for r in rows]


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

            dues = _dues(s, run.id)
            settled = settled_for_month(s, run.month)
            if settled:
                rows = compute_adjustments(settled, {d.key: d for d in dues}, run.id)
            else:
                rows = [item_row(d, kind=PAYMENT) for d in dues]
            corrections = bool(settled)
            rows += _reissues(s)
            if not rows:
                raise NothingToBatch(
                    f"run {run.id} gives nothing new for {run.month}: every entitlement is "
                    "already in the ledger at the same amount, and no released item waits"
                )
            for r in rows:
                r["batch_id"] = batch.id
            bulk_insert(s, BatchItem.__table__, rows)
            batch.item_count = len(rows)
            batch.total = sum((r["amount"] for r in rows), ZERO)
            kinds: dict[str, int] = {}
            held = 0
            for r in rows:
                kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
                held += r["status"] == HELD
            s.flush()
            audit.append(
                s, at=now, actor=by, action="batch.create", object_type="batch",
                object_id=batch.id,
                after={**_snapshot(batch), "kinds": kinds, "held": held,
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


# ------------------------------------------------------------------------------ lifecycle


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
        before = _snapshot(batch)
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
            before=before, after={**_snapshot(batch), **(audit_extra or {})},
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


# -------------------------------------------------------------------------------- release


def release(
    db: Database, item_id: int, by: str, reason: str, account: str | None = None
) -> BatchItem:
    """Release one held item, recording why (and, optionally, a corrected account number).

    The account the item goes out to (the corrected one, else its own) must be a valid
    account number (:mod:`benefits.accountno`); otherwise InvalidInput and nothing changes.

    Before approval (draft, submitted) the item goes out with this batch's bank file. After
    export it is reissued in the next batch, which a second officer approves. While a batch
    is approved nothing can be released: the approver did not see that money.

    Example:
        >>> release(db, 17, by="alice", reason="account reopened", account="6222…").status
        ...                                                   # doctest: +SKIP
        'pending'
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"{by} must give a reason to release item {item_id}")
    account = (account or "").strip() or None
    if account is not None:
        problem = account_no_problem(account)
        if problem:
            raise InvalidInput(
                f"{by} cannot release item {item_id} with the corrected account number given: "
                f"{problem}; nothing was changed"
            )
    with db.transaction() as s:
        found = s.get(BatchItem, item_id)
        if found is None:
            raise NotFound(f"there is no batch item {item_id} in the ledger")
        batch = get_batch(s, found.batch_id, lock=True)  # batch first, like every transition
        item = s.execute(
            select(BatchItem).where(BatchItem.id == item_id).with_for_update()
        ).scalar_one()
        obj = f"item {item.id} of batch {batch.id}"
        if item.voided:
            raise IllegalTransition(
                "release", by, obj, "void", f"batch {batch.id} was rejected ({batch.reject_reason})"
            )
        if item.status != HELD:
            raise IllegalTransition(
                "release", by, obj, item.status, "only a held item can be released"
            )
        if batch.status == APPROVED:
            raise IllegalTransition(
                "release", by, obj, f"held in batch {batch.id}, which is "
                f"{describe_state(batch)}",
                "releasing now would pay money the approver did not see; export the batch, "
                "then release the item and it is reissued in the next batch for approval",
            )  # fmt: skip
        new_account = account or item.account_no
        if account is None:
            problem = account_no_problem(new_account)
            if problem:
                raise InvalidInput(
                    f"{by} cannot release {obj}: "
                    + ("it has no account number" if not new_account
                       else f"its account number is not valid ({problem})")
                    + "; give the corrected account number with the release"
                )  # fmt: skip
        if batch.status in (DRAFT, SUBMITTED):
            new_status = PENDING
            values: dict[str, Any] = {"account_no": new_account}
        else:  # exported or reconciled: reissued in the next batch
            new_status = RELEASED
            values = {"release_account": account}
        before = {"status": item.status, "hold_reason": item.hold_reason,
                  "account_no": item.account_no}  # fmt: skip
        now = db.now()
        s.execute(
            update(BatchItem)
            .where(BatchItem.id == item.id, BatchItem.status == HELD)
            .values(
                status=new_status, released_by=by, released_at=now, release_reason=reason,
                **values,
            )
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        s.refresh(item)
        audit.append(
            s, at=now, actor=by, action="item.release", object_type="item", object_id=item.id,
            before=before,
            after={"status": item.status, "reason": reason, "batch": batch.id,
                   "account_no": new_account},
        )  # fmt: skip
        return item


# --------------------------------------------------------------------------------- reading


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
    from benefits.ledger.models import BankFile

    with db.snapshot() as s:
        batch = get_batch(s, batch_id)
        sha = s.execute(
            select(BankFile.sha256).where(BankFile.batch_id == batch_id)
        ).scalar_one_or_none()
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
