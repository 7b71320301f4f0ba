"""Releasing a held item, with a reason: it is paid with its batch before approval, or
reissued in the next batch after export."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from benefits.accountno import account_no_problem
from benefits.ledger import audit, totals
from benefits.ledger.batchstate import describe_state, get_batch
from benefits.ledger.db import Database
from benefits.ledger.errors import IllegalTransition, InvalidInput, NotFound
from benefits.ledger.models import (
    APPROVED,
    DRAFT,
    HELD,
    PENDING,
    RELEASED,
    SUBMITTED,
    BatchItem,
)


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
        with totals.tracking(s, batch.id, [item.id]):
            s.execute(
                update(BatchItem)
                .where(BatchItem.id == item.id, BatchItem.status == HELD)
                .values(
                    status=new_status, released_by=by, released_at=now,
                    release_reason=reason, **values,
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
