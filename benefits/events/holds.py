"""Holding ledger items at once when an event stops (or holds) a payment.

When an event stops a person's ``pay``/``credit`` entitlement for the month — a death, a
move out of the district, a status ended — and the ledger has that person × policy × month
as a *pending* item in a batch that has not gone to the bank (draft, submitted or approved),
the item is held right away with the event as the reason, so it is not in the bank file.
Likewise when the event makes the payment held (the bank account was closed). Which of the
two holds is declared by the reactions that fired (``holds: [stop, held]`` in
rules/events.yaml). It stays held
until an officer releases it (``benefits batch release``), exactly like an item the sweep
held. Each hold is one audit entry (``item.hold``) written in the same transaction as the
change, through the ledger's own audit chain. An item already held, sent or paid is left
alone, so applying an event twice holds nothing the second time.

Example:
    >>> held = hold_items(ledger, [stop_change], event, "events", {"stop"})  # doctest: +SKIP
    >>> held[0]["item"], held[0]["batch"]                             # doctest: +SKIP
    (17, 3)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select, update

from benefits.events.changes import Change
from benefits.events.schema import EventBase
from benefits.ledger import Ledger, totals
from benefits.ledger.audit import append
from benefits.ledger.models import HELD, OPEN_STATUSES, PENDING, RECOVERY, Batch, BatchItem
from benefits.ledger.sealed import id_index

HOLD_MODES = ("pay", "credit")


def needs_hold(change: Change, kinds: Collection[str]) -> bool:
    """A pay/credit entitlement that stops (kind ``stop``) or becomes held (``held``)."""
    if change.mode not in HOLD_MODES:
        return False
    if change.kind == "stop":
        return "stop" in kinds
    held = change.kind == "hold_change" and bool(change.after and change.after.get("held"))
    return held and "held" in kinds


def reason_for(change: Change, event: EventBase) -> str:
    """The hold reason written on the item: the event and what it did."""
    what = "stops" if change.kind == "stop" else "is held"
    why = ""
    if change.kind == "hold_change" and change.after:
        why = f": {change.after.get('hold_reason')}"
    return (
        f"event {event.event_id} ({event.type}, {event.department}, effective "
        f"{event.effective_date.isoformat()}): {change.policy_id} {what} for {change.month}{why}"
    )


def hold_items(
    ledger: Ledger, changes: Sequence[Change], event: EventBase, by: str, kinds: Collection[str]
) -> list[dict[str, Any]]:
    """Hold the pending items of unexported batches these changes stop or hold (`kinds`);
    audited, one transaction.

    Returns one record per item held: item, batch, batch status, id_no, policy, month, reason.
    """
    wanted = [c for c in changes if needs_hold(c, kinds)]
    if not wanted:
        return []
    db = ledger.db
    held: list[dict[str, Any]] = []
    with db.transaction() as s:
        found = []
        keys = db.keys
        for c in wanted:
            rows = s.execute(
                select(BatchItem.id, BatchItem.batch_id)
                .join(Batch, Batch.id == BatchItem.batch_id)
                .where(
                    BatchItem.id_index == id_index(keys, c.id_no),  # id_no is sealed
                    BatchItem.policy_id == c.policy_id,
                    BatchItem.month == c.month,
                    BatchItem.status == PENDING,
                    BatchItem.kind != RECOVERY,
                    BatchItem.voided.is_(False),
                    Batch.status.in_(OPEN_STATUSES),
                )
                .order_by(BatchItem.id)
            ).all()
            found += [(c, item_id, batch_id) for item_id, batch_id in rows]
        if not found:
            return []
        # lock batches first, then items, as every ledger transition does
        batch_ids = sorted({b for _, _, b in found})
        batches = {
            b.id: b
            for b in s.execute(
                select(Batch).where(Batch.id.in_(batch_ids)).order_by(Batch.id).with_for_update()
            ).scalars()
        }
        now = db.now()
        entries = []
        for change, item_id, batch_id in found:
            batch = batches[batch_id]
            if batch.status not in OPEN_STATUSES:
                continue  # exported meanwhile: a later sweep's recovery deals with it
            reason = reason_for(change, event)
            with totals.tracking(s, batch_id, [item_id]):
                result = s.execute(
                    update(BatchItem)
                    .where(BatchItem.id == item_id, BatchItem.status == PENDING)
                    .values(status=HELD, hold_reason=reason)
                    .execution_options(synchronize_session=False)
                )
            if result.rowcount != 1:
                continue
            record = {
                "item": item_id,
                "batch": batch_id,
                "batch_status": batch.status,
                "id_no": change.id_no,
                "policy_id": change.policy_id,
                "month": change.month,
                "reason": reason,
            }
            held.append(record)
            entries.append(record)
        for record in entries:  # audit entries last: they lock the chain head
            append(
                s, at=now, actor=by, action="item.hold", object_type="item",
                object_id=record["item"],
                before={"status": PENDING},
                after={"status": HELD, "hold_reason": record["reason"],
                       "batch": record["batch"], "event": event.model_dump(mode="json")},
            )  # fmt: skip
    return held
