"""Batches for the web: list, one page of a batch's items with filters, and the four-eyes view.

The actions themselves (create, submit, approve, reject, release) are the ledger's: the
handlers here only call :class:`benefits.ledger.Ledger`, which enforces the lifecycle and the
four-eyes rule (and the database enforces it again).

A page reads its counts and sums from the totals kept with the batch and its items by keyset
on the ``(batch_id, id)`` index (the next / previous page after / before an item id; a page
jumped to by number is counted from the nearer end), so a 1.2-million-item batch pages as
fast as a town's (``benchmarks/web.py``, ``benchmarks/city.py``).

Example:
    >>> page = batch_page(ctx, 1, ItemFilter(held="yes"), page=1)      # doctest: +SKIP
    >>> page["count"], len(page["items"])                               # doctest: +SKIP
    (45, 45)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text

from benefits.idcard import mask_id
from benefits.ledger.batchstate import get_batch
from benefits.ledger.batchviews import BatchDetail, Group, Total, kept_groups
from benefits.ledger.models import (
    APPROVED,
    DRAFT,
    EXPORTED,
    HELD,
    RECONCILED,
    SUBMITTED,
    Batch,
    BatchItem,
)
from benefits.ledger.money import ZERO
from benefits.ledger.sealed import id_index
from benefits.web.auth import Principal
from benefits.web.context import WebContext
from benefits.web.privacy import mask_account

ADJUSTMENT_KINDS = ("arrears", "recovery", "reissue")


@dataclass
class ItemFilter:
    """Filters of the items table; empty means any. `kind` is a kind or 'adjustment'."""

    policy: str = ""
    community: str = ""
    held: str = ""  # "", "yes", "no"
    kind: str = ""  # "", "payment", "adjustment", or one kind

    def conditions(self) -> list[Any]:
        """SQL conditions for these filters."""
        conds: list[Any] = []
        if self.policy:
            conds.append(BatchItem.policy_id == self.policy)
        if self.community:
            conds.append(BatchItem.community == self.community)
        if self.held == "yes":  # a held item has a reason: ix_batch_items_held finds it
            conds += [BatchItem.status == HELD, BatchItem.hold_reason.is_not(None)]
        elif self.held == "no":
            conds.append(BatchItem.status != HELD)
        if self.kind == "adjustment":
            conds.append(BatchItem.kind.in_(ADJUSTMENT_KINDS))
        elif self.kind:
            conds.append(BatchItem.kind == self.kind)
        return conds

    def query(self) -> dict[str, str]:
        """The non-empty filters, for links that keep them."""
        return {k: v for k, v in asdict(self).items() if v}


def batch_rows(ctx: WebContext, month: str | None = None, status: str | None = None) -> list[Batch]:
    """Batches, newest first."""
    return ctx.ledger.batches(month or None, status or None)


def four_eyes(batch: Batch, who: Principal) -> dict[str, Any]:
    """What the viewer may do with the batch, and why not (shown beside the buttons)."""
    preparers = {batch.created_by, batch.submitted_by} - {None}
    prepared_by_me = who.username in preparers
    can_prepare = who.can("batches.prepare")
    can_decide = who.can("batches.decide")
    approve_block = None
    if batch.status == SUBMITTED and can_decide and prepared_by_me:
        approve_block = (
            "您参与准备了此批次，不能审核（四眼原则）/ you prepared this batch, so another "
            "approver must approve it (four eyes, handbook §6)"
        )
    return {
        "preparers": sorted(preparers),
        "prepared_by_me": prepared_by_me,
        "can_submit": can_prepare and batch.status == DRAFT,
        "can_approve": can_decide and batch.status == SUBMITTED,
        "approve_block": approve_block,
        "can_reject": can_decide and batch.status in (DRAFT, SUBMITTED, APPROVED),
        "can_release": can_prepare and batch.status in (DRAFT, SUBMITTED, EXPORTED, RECONCILED),
    }


def _total_view(t: Total) -> dict[str, Any]:
    return {
        "key": t.key,
        "count": t.items,
        "amount": t.amount,
        "held_items": t.held_items,
        "held_amount": t.held_amount,
    }


def policy_numbers(ctx: WebContext) -> dict[str, int]:
    """The handbook's number (1-12) of each policy of the rule pack, by policy id."""
    return {p.id: p.number for p in ctx.pack.policies}


def by_policy_number(keys: Iterable[str], numbers: Mapping[str, int]) -> list[str]:
    """Policy ids in the handbook's order (1, 2, … 10, not as text); unknown ones last.

    >>> by_policy_number(["p10", "p2", "old"], {"p2": 2, "p10": 10})
    ['p2', 'p10', 'old']
    """
    return sorted(keys, key=lambda k: (numbers.get(k, 10**6), k))


def detail_view(detail: BatchDetail, numbers: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A batch with its totals as plain data; totals per policy in the handbook's order
    when `numbers` (see :func:`policy_numbers`) is given."""
    b = detail.batch
    order = {k: i for i, k in enumerate(by_policy_number((t.key for t in detail.by_policy),
                                                          numbers or {}))}  # fmt: skip
    return {
        "id": b.id,
        "month": b.month,
        "run_id": b.run_id,
        "status": b.status,
        "item_count": b.item_count,
        "total": b.total,
        "created_by": b.created_by,
        "created_at": b.created_at,
        "submitted_by": b.submitted_by,
        "submitted_at": b.submitted_at,
        "approved_by": b.approved_by,
        "approved_at": b.approved_at,
        "rejected_by": b.rejected_by,
        "rejected_at": b.rejected_at,
        "reject_reason": b.reject_reason,
        "exported_by": b.exported_by,
        "exported_at": b.exported_at,
        "reconciled_by": b.reconciled_by,
        "reconciled_at": b.reconciled_at,
        "bank_file_sha256": detail.bank_file_sha256,
        "by_policy": [_total_view(t) for t in sorted(detail.by_policy,
                                                      key=lambda t: order[t.key])],
        "by_community": [_total_view(t) for t in detail.by_community],
        "by_kind": [_total_view(t) for t in detail.by_kind],
        "by_status": [_total_view(t) for t in detail.by_status],
    }


def item_view(item: Any, ref: str) -> dict[str, Any]:
    """One item as lists show it: masked name, masked ID, masked account."""
    return {
        "id": item.id,
        "ref": ref,
        "masked_name": item.masked_name or "—",
        "id_no": mask_id(item.id_no),
        "household_no": item.household_no,
        "policy_id": item.policy_id,
        "month": item.month,
        "kind": item.kind,
        "mode": item.mode,
        "amount": item.amount,
        "status": item.status,
        "hold_reason": item.hold_reason,
        "community": item.community,
        "account": mask_account(item.account_no),
        "reason": item.reason,
        "voided": item.voided,
        "bank_status": item.bank_status,
        "released_by": item.released_by,
        "release_reason": item.release_reason,
    }


ITEM_COLUMNS = (
    BatchItem.id, BatchItem.masked_name, BatchItem.id_no, BatchItem.household_no,
    BatchItem.policy_id, BatchItem.month, BatchItem.kind, BatchItem.mode, BatchItem.amount,
    BatchItem.status, BatchItem.hold_reason, BatchItem.community, BatchItem.account_no,
    BatchItem.reason, BatchItem.voided, BatchItem.bank_status, BatchItem.released_by,
    BatchItem.release_reason,
)  # fmt: skip


def _filtered_totals(
    s: Any, batch_id: int, flt: ItemFilter, groups: tuple[Group, ...] | None
) -> tuple[int, Decimal] | None:
    """(items, amount) matching the filters, added up from the totals kept with the batch (a
    few hundred rows whatever its size); None when the batch has none kept (counted)."""
    if groups is None:
        groups = kept_groups(s, batch_id)
    if groups is None:
        return None
    count, amount = 0, ZERO
    for policy, community, kind, status, items, value in groups:
        if flt.policy and policy != flt.policy:
            continue
        if flt.community and community != flt.community:
            continue
        if (flt.held == "yes" and status != HELD) or (flt.held == "no" and status == HELD):
            continue
        if flt.kind == "adjustment" and kind not in ADJUSTMENT_KINDS:
            continue
        if flt.kind and flt.kind != "adjustment" and kind != flt.kind:
            continue
        count += items
        amount += value
    return count, amount


def _held_only(batch_id: int, flt: ItemFilter) -> tuple[list[Any], tuple[Any, ...]] | None:
    """(conditions, leading sort key) of the held filter alone, else None.

    ``batch_id BETWEEN b AND b ORDER BY batch_id DESC, id`` is the same rows in the same id
    order as ``batch_id = b ORDER BY id``, but an order only ``ix_batch_items_held`` gives:
    with ``ORDER BY id`` the planner may walk the primary key through the whole batch, taking
    the held items to be spread evenly — the real city's 163,639 were not (0.5-0.8 s a page).
    """
    if flt.query() != {"held": "yes"}:
        return None
    return ([BatchItem.batch_id.between(batch_id, batch_id), *flt.conditions()],
            (BatchItem.batch_id.desc(),))  # fmt: skip


@contextmanager
def _index_order(s: Any) -> Iterator[None]:
    """On PostgreSQL, no sort for the queries inside: the held items come in the order of
    ``ix_batch_items_held``. ANALYZE samples 30,000 rows; where the held items bunch together
    (the real city), a sample with few of them makes the planner expect a handful and sort
    them all instead (0.5 s a page at 1.2 million items, its estimate varying with each sample)."""
    postgres = s.get_bind().dialect.name == "postgresql"
    if postgres:
        s.execute(text("SET LOCAL enable_sort = off"))
    try:
        yield
    finally:
        if postgres:
            s.execute(text("SET LOCAL enable_sort = on"))


def _page_rows(
    s: Any, conds: list[Any], count: int, per_page: int, page: int,
    after: int | None, before: int | None, lead: tuple[Any, ...] = (),
) -> list[Any]:
    """One page of items in id order: after/before a cursor (an item id: the next or the
    previous page, an index range scan); else page `page` of a whole batch whose ids have no
    gap starts at its first id + the items before it; else it is counted from the nearer end
    (the last page reads the newest ids backwards, not past a million others). `lead` are
    sort keys before the id (one value in every row: they only choose the index)."""
    q = select(*ITEM_COLUMNS).where(*conds)
    back = tuple(k.element.asc() for k in lead)  # the lead keys are descending
    forward, backward = (*lead, BatchItem.id), (*back, BatchItem.id.desc())
    if after is not None:
        return list(s.execute(q.where(BatchItem.id > after).order_by(*forward)
                              .limit(per_page)).all())  # fmt: skip
    if before is not None:
        rows = s.execute(q.where(BatchItem.id < before).order_by(*backward)
                         .limit(per_page)).all()  # fmt: skip
        return list(reversed(rows))
    first = (page - 1) * per_page
    upto = min(page * per_page, count)
    if len(conds) == 1:  # the whole batch: created in one go, its ids are usually contiguous
        lo, hi = s.execute(select(func.min(BatchItem.id), func.max(BatchItem.id))
                           .where(*conds)).one()  # fmt: skip
        if lo is not None and hi - lo + 1 == count:  # no gap: item k has id lo + k
            return list(s.execute(q.where(BatchItem.id >= lo + first).order_by(BatchItem.id)
                                  .limit(per_page)).all())  # fmt: skip
    if first <= count - upto:
        return list(s.execute(q.order_by(*forward).limit(per_page).offset(first)).all())
    rows = s.execute(
        q.order_by(*backward).limit(max(upto - first, 0)).offset(count - upto)
    ).all()
    return list(reversed(rows))


def batch_page(
    ctx: WebContext,
    batch_id: int,
    flt: ItemFilter,
    page: int = 1,
    per_page: int | None = None,
    *,
    totals: bool = True,
    after: int | None = None,
    before: int | None = None,
) -> dict[str, Any]:
    """The batch, its totals (unless `totals` is False), and one page of its items.

    Counts and sums come from the totals kept with the batch (:mod:`benefits.ledger.totals`);
    `after` / `before` (an item id, with `page` the number shown) give the next / previous
    page by keyset, so paging through a million items never scans what came before.
    """
    per_page = per_page or ctx.settings.page_size
    if totals:
        detail = ctx.ledger.batch(batch_id)
    else:
        with ctx.db.snapshot() as s:
            detail = BatchDetail(get_batch(s, batch_id), [], [], [], [], None)
    conds = [BatchItem.batch_id == batch_id, *flt.conditions()]
    with ctx.db.snapshot() as s:
        kept = _filtered_totals(s, batch_id, flt, detail.groups)
        if kept is None:
            count, amount = s.execute(
                select(func.count(), func.sum(BatchItem.amount)).where(*conds)
            ).one()
        else:
            count, amount = kept
        count = int(count or 0)
        pages = max(1, (count + per_page - 1) // per_page)
        page = min(max(1, page), pages)
        held = _held_only(batch_id, flt)
        if held is None:
            rows = _page_rows(s, conds, count, per_page, page, after, before)
        else:
            with _index_order(s):
                rows = _page_rows(s, held[0], count, per_page, page, after, before, held[1])
    ref = ctx.directory.ref
    numbers = policy_numbers(ctx)
    return {
        "batch": detail_view(detail, numbers),
        "batch_row": detail.batch,
        "items": [item_view(r, ref(r.id_no)) for r in rows],
        "count": count,
        "amount": amount if amount is not None else ZERO,
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "next_after": rows[-1].id if rows and page < pages else None,
        "prev_before": rows[0].id if rows and page > 1 else None,
        "filters": flt,
        "policies": by_policy_number((t.key for t in detail.by_policy), numbers),
        "communities": [t.key for t in detail.by_community],
        "kinds": [t.key for t in detail.by_kind],
    }


def held_total(detail: dict[str, Any]) -> tuple[int, Decimal]:
    """(held items, held amount) of a batch view."""
    items = sum(t["held_items"] for t in detail["by_status"])
    amount = sum((t["held_amount"] for t in detail["by_status"]), ZERO)
    return items, amount


def person_items(ctx: WebContext, id_no: str) -> list[dict[str, Any]]:
    """The ledger history of one person: every item of every batch, newest month first."""
    with ctx.db.snapshot() as s:
        rows = s.execute(
            select(*ITEM_COLUMNS, BatchItem.batch_id, Batch.status.label("batch_status"))
            .join(Batch, Batch.id == BatchItem.batch_id)
            .where(BatchItem.id_index == id_index(ctx.db.keys, id_no))  # id_no is sealed
            .order_by(BatchItem.month.desc(), BatchItem.id.desc())
        ).all()
    out = []
    for r in rows:
        view = item_view(r, "")
        view["batch_id"] = r.batch_id
        view["batch_status"] = r.batch_status
        out.append(view)
    return out

