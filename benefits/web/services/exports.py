"""Export requests of the web app: every file of personal data goes through here (issue 14).

A user asks for a file (a batch's items as CSV or Parquet, masked or — with the ``pii``
grant — revealed) with a purpose. The request counts its rows and persons at once:

- more rows than ``max_rows`` → refused (422); rows the user may no longer take today → 429;
- a *bulk* export (more than ``bulk_persons`` persons) needs a purpose, and another user
  holding ``exports.approve`` must approve it (never the requester: four eyes; a revealed
  export only by a holder of the ``pii`` grant); a smaller one is approved on request;
- the requester downloads an approved export **once**, within ``approval_hours``; the file is
  built then, watermarked (:mod:`benefits.exports`), its SHA-256 written to the audit chain
  (``export.file``) and the persons to the data tracking (``data.view``/``pii.view``).

PDF reports (:func:`pdf_file`) and API lists (:func:`take_rows`) count against the same daily
rows. Every step is an audit entry: ``export.request``, ``export.approve``,
``export.refuse``, ``export.file``; a refusal under four eyes is also
``security.approval_refused``.

Example:
    >>> req = request_export(ctx, who, "batch_items", {"batch_id": 1}, "csv",
    ...                      reveal=False, purpose="核对 / check")        # doctest: +SKIP
    >>> name, media, data = download(ctx, who, req.id)                   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from benefits import classes, exports
from benefits.exports import Watermark
from benefits.ledger import audit
from benefits.ledger.errors import Conflict, FourEyesViolation, InvalidInput, NotFound
from benefits.ledger.models import BatchItem
from benefits.web import tracking
from benefits.web.auth import Principal
from benefits.web.context import WebContext
from benefits.web.deps import Forbidden
from benefits.web.models import ExportRequest, ExportUsage
from benefits.web.pdf import to_pdf
from benefits.web.services import batches as batch_service

REQUESTED, APPROVED, REFUSED, DOWNLOADED = "requested", "approved", "refused", "downloaded"
STATUS_LABELS = {
    REQUESTED: "待审批 / awaiting approval",
    APPROVED: "可下载 / ready to download",
    REFUSED: "已拒绝 / refused",
    DOWNLOADED: "已下载 / downloaded",
}
SELF_APPROVED = "(below the bulk limit)"


@dataclass(frozen=True)
class Column:
    """A column of an export: its header, the ledger column it shows, and its mask."""

    header: str
    table: str
    column: str
    mask: str | None = None

    @property
    def data_class(self) -> str:
        """The column's class (benefits.classes)."""
        return classes.ledger_class(self.table, self.column)


ITEM_EXPORT_COLUMNS = (
    Column("item", "batch_items", "id"), Column("batch", "batch_items", "batch_id"),
    Column("month", "batch_items", "month"), Column("policy_id", "batch_items", "policy_id"),
    Column("kind", "batch_items", "kind"), Column("mode", "batch_items", "mode"),
    Column("household_no", "batch_items", "household_no"),
    Column("masked_name", "batch_items", "masked_name"),
    Column("id_no", "batch_items", "id_no", "id"),
    Column("account_no", "batch_items", "account_no", "account"),
    Column("amount", "batch_items", "amount"), Column("status", "batch_items", "status"),
    Column("community", "batch_items", "community"),
    Column("hold_reason", "batch_items", "hold_reason"),
)  # fmt: skip


@dataclass(frozen=True)
class Kind:
    """What can be exported: the permission it needs, its purpose, its columns, and how its
    rows (in clear, with each row's resident ID) and counts are read."""

    label: str
    permission: str
    purpose: str
    columns: tuple[Column, ...]
    counts: Callable[[WebContext, dict[str, Any]], tuple[int, int]]
    rows: Callable[[WebContext, dict[str, Any]], list[tuple[str, list[Any]]]]


def _item_conditions(params: dict[str, Any]) -> list[Any]:
    flt = batch_service.ItemFilter(params.get("policy", ""), params.get("community", ""),
                                   params.get("held", ""), params.get("kind", ""))  # fmt: skip
    return [BatchItem.batch_id == int(params["batch_id"]), *flt.conditions()]


def _item_counts(ctx: WebContext, params: dict[str, Any]) -> tuple[int, int]:
    conds = _item_conditions(params)
    with ctx.db.snapshot() as s:
        batch_service.get_batch(s, int(params["batch_id"]))  # NotFound for a missing batch
        rows, persons = s.execute(
            select(func.count(), func.count(func.distinct(BatchItem.id_index))).where(*conds)
        ).one()
    return int(rows or 0), int(persons or 0)


def _item_rows(ctx: WebContext, params: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    cols = [getattr(BatchItem, c.column) for c in ITEM_EXPORT_COLUMNS]
    with ctx.db.snapshot() as s:
        found = s.execute(select(*cols).where(*_item_conditions(params)).order_by(BatchItem.id))
        return [(r.id_no, list(r)) for r in found]


KINDS: dict[str, Kind] = {
    "batch_items": Kind("批次明细 / batch items", "batches.view",
                        "发放审核 / check a payout batch (four eyes)", ITEM_EXPORT_COLUMNS,
                        _item_counts, _item_rows),
}  # fmt: skip


def limits(ctx: WebContext) -> exports.ExportLimits:
    """The export limits of this app (settings)."""
    return ctx.settings.exports


def today(now: dt.datetime) -> str:
    """The UTC day of `now` (the daily limit's day)."""
    return now.date().isoformat()


def used_today(ctx: WebContext, username: str) -> int:
    """Rows `username` took today (UTC)."""
    with ctx.db.snapshot() as s:
        found = s.execute(
            select(ExportUsage.rows).where(ExportUsage.username == username,
                                           ExportUsage.day == today(ctx.db.now()))
        ).scalar_one_or_none()  # fmt: skip
    return int(found or 0)


def _take(s: Any, ctx: WebContext, username: str, rows: int, now: dt.datetime) -> None:
    """Add `rows` to today's rows of `username` in session `s`, refusing past the limit."""
    day = today(now)
    current = s.execute(
        select(ExportUsage).where(ExportUsage.username == username, ExportUsage.day == day)
        .with_for_update()
    ).scalar_one_or_none()  # fmt: skip
    used = current.rows if current is not None else 0
    limits(ctx).check_day(used, rows)
    if current is None:
        s.add(ExportUsage(username=username, day=day, rows=rows))
        s.flush()
    else:
        current.rows = used + rows


def take_rows(ctx: WebContext, who: Principal, rows: int) -> None:
    """Count `rows` of an API list against the caller's daily rows (429 past the limit)."""
    if rows <= 0:
        return
    for attempt in (1, 2):  # two first takes of a day may race on the insert: retry once
        try:
            with ctx.db.transaction() as s:
                _take(s, ctx, who.username, rows, ctx.db.now())
            return
        except IntegrityError:
            if attempt == 2:
                raise


def kind_of(name: str) -> Kind:
    """The export kind `name` (InvalidInput naming the kinds otherwise)."""
    if name not in KINDS:
        raise InvalidInput(f"unknown export kind {name!r}; kinds are {', '.join(KINDS)}")
    return KINDS[name]


def _params(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters, checked: a batch and its item filters."""
    try:
        batch_id = int(raw.get("batch_id", ""))
    except (TypeError, ValueError):
        raise InvalidInput("batch_id: a batch number is required") from None
    if batch_id < 1:
        raise InvalidInput("batch_id: a batch number is required")
    out: dict[str, Any] = {"batch_id": batch_id}
    for key in ("policy", "community", "held", "kind"):
        value = str(raw.get(key) or "").strip()
        if len(value) > 128:
            raise InvalidInput(f"{key}: at most 128 characters")
        if value:
            out[key] = value
    if out.get("held", "") not in ("", "yes", "no"):
        raise InvalidInput("held: yes, no or empty")
    return out


def _refuse(ctx: WebContext, who: Principal, request_id: int, why: str) -> None:
    with ctx.db.transaction() as s:
        audit.append(
            s, at=ctx.db.now(), actor=who.username, action="security.approval_refused",
            object_type="export", object_id=request_id, after={"reason": why},
        )  # fmt: skip


def request_export(ctx: WebContext, who: Principal, kind: str, raw: dict[str, Any], fmt: str,
                   *, reveal: bool, purpose: str) -> ExportRequest:  # fmt: skip
    """Record an export request after checking every rule; approved at once unless bulk."""
    spec = kind_of(kind)
    if not who.can(spec.permission):
        raise Forbidden(f"{who.username} may not export {kind} (needs {spec.permission})")
    if fmt not in exports.FORMATS:
        raise InvalidInput(f"format: one of {', '.join(exports.FORMATS)}, not {fmt!r}")
    if reveal and not who.pii:
        raise Forbidden(f"{who.username} has no pii grant: an export stays masked")
    params = _params(kind, raw)
    purpose = exports.one_line(purpose)
    if len(purpose) > 500:
        raise InvalidInput("purpose: at most 500 characters")
    rows, persons = spec.counts(ctx, params)
    if rows == 0:
        raise exports.ExportRefused("nothing to export: no rows match")
    lim = limits(ctx)
    lim.check_rows(rows)
    bulk = lim.is_bulk(persons)
    if bulk and not purpose:
        raise exports.ExportRefused(
            f"a bulk export ({persons} persons, more than {lim.bulk_persons}) needs a stated "
            "purpose, and another user's approval"
        )
    lim.check_day(used_today(ctx, who.username), rows)
    now = ctx.db.now()
    req = ExportRequest(
        kind=kind, params=json.dumps(params, sort_keys=True), fmt=fmt, reveal=reveal,
        purpose=purpose or spec.purpose, rows=rows, persons=persons, bulk=bulk,
        status=REQUESTED if bulk else APPROVED, requested_by=who.username, requested_at=now,
        decided_by=None if bulk else SELF_APPROVED, decided_at=None if bulk else now,
    )  # fmt: skip
    with ctx.db.transaction() as s:
        s.add(req)
        s.flush()
        audit.append(
            s, at=now, actor=who.username, action="export.request", object_type="export",
            object_id=req.id,
            after={"kind": kind, "params": params, "format": fmt, "reveal": reveal,
                   "purpose": req.purpose, "rows": rows, "persons": persons, "bulk": bulk,
                   "status": req.status},
        )  # fmt: skip
        s.expunge(req)
    return req


def get_request(ctx: WebContext, request_id: int) -> ExportRequest:
    """One export request (NotFound otherwise)."""
    with ctx.db.snapshot() as s:
        found = s.get(ExportRequest, request_id)
        if found is None:
            raise NotFound(f"no export request {request_id}")
        s.expunge(found)
    return found


def decide(ctx: WebContext, who: Principal, request_id: int, *, approve: bool,
           note: str = "") -> ExportRequest:  # fmt: skip
    """Approve or refuse a bulk export request: another user than the requester (four eyes),
    holding the ``pii`` grant when the export reveals; a refusal needs a note."""
    if not who.can("exports.approve"):
        raise Forbidden(f"{who.username} may not approve exports (needs exports.approve)")
    req = get_request(ctx, request_id)
    note = exports.one_line(note)
    if req.status != REQUESTED:
        raise Conflict(f"export request {request_id} is {req.status}, not awaiting approval")
    if req.requested_by == who.username:
        why = ("you requested this export, so another user must approve it (four eyes)")
        _refuse(ctx, who, request_id, why)
        raise FourEyesViolation("approve", who.username, f"export request {request_id}",
                                f"requested by {req.requested_by}", why)  # fmt: skip
    if approve and req.reveal and not who.pii:
        raise Forbidden(f"{who.username} has no pii grant: cannot approve a revealed export")
    if not approve and not note:
        raise InvalidInput("note: say why the export is refused")
    now = ctx.db.now()
    status = APPROVED if approve else REFUSED
    with ctx.db.transaction() as s:
        done = s.execute(
            update(ExportRequest)
            .where(ExportRequest.id == request_id, ExportRequest.status == REQUESTED)
            .values(status=status, decided_by=who.username, decided_at=now,
                    decision_note=note or None)
            .execution_options(synchronize_session=False)
        ).rowcount  # fmt: skip
        if done != 1:
            raise Conflict(f"export request {request_id} was decided meanwhile")
        audit.append(
            s, at=now, actor=who.username, action="export.approve" if approve else "export.refuse",
            object_type="export", object_id=request_id,
            before={"status": REQUESTED}, after={"status": status, "note": note or None},
        )  # fmt: skip
    return get_request(ctx, request_id)


def expires_at(ctx: WebContext, req: ExportRequest) -> dt.datetime | None:
    """When an approved request can no longer be downloaded."""
    if req.decided_at is None:
        return None
    return req.decided_at + dt.timedelta(hours=limits(ctx).approval_hours)


def _naive(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=None) if value.tzinfo else value


def download(ctx: WebContext, who: Principal, request_id: int) -> tuple[str, str, bytes]:
    """The file of an approved request, built now, for its requester, once: (file name,
    media type, bytes). Its watermark names who, when, purpose; its SHA-256 is audited."""
    req = get_request(ctx, request_id)
    if req.requested_by != who.username:
        raise Forbidden(f"export request {request_id} is {req.requested_by}'s: only the "
                        "requester downloads it")  # fmt: skip
    if req.reveal and not who.pii:
        raise Forbidden(f"{who.username} has no pii grant any more: the export stays closed")
    if req.status == DOWNLOADED:
        raise Conflict(f"export request {request_id} was downloaded already: a file is "
                       "downloaded once; request a new export")  # fmt: skip
    if req.status != APPROVED:
        raise Conflict(f"export request {request_id} is {req.status}: only an approved export "
                       "is downloaded")  # fmt: skip
    now = ctx.db.now()
    end = expires_at(ctx, req)
    if end is not None and _naive(now) > _naive(end):
        raise Conflict(f"export request {request_id} expired at {end.isoformat()} "
                       f"({limits(ctx).approval_hours} hours after approval): request it again")
    spec = kind_of(req.kind)
    params = json.loads(req.params)
    found = spec.rows(ctx, params)
    lim = limits(ctx)
    lim.check_rows(len(found))
    ids = [id_no for id_no, _ in found]
    persons = len(set(ids))
    if lim.is_bulk(persons) and not req.bulk:
        raise Conflict(f"export request {request_id} now covers {persons} persons, more than "
                       f"{lim.bulk_persons}: request it again, for a second person's approval")
    data_class = classes.SENSITIVE if req.reveal else classes.PERSONAL
    mark = Watermark(who.username, now, req.purpose, req.id, data_class)
    header = [c.header for c in spec.columns]
    table = [[exports.shown(c.data_class, v, c.mask, reveal=req.reveal)
              for c, v in zip(spec.columns, row, strict=True)] for _, row in found]  # fmt: skip
    write = exports.to_csv if req.fmt == "csv" else exports.to_parquet
    data = write(header, table, mark)
    with ctx.db.transaction() as s:
        done = s.execute(
            update(ExportRequest)
            .where(ExportRequest.id == request_id, ExportRequest.status == APPROVED)
            .values(status=DOWNLOADED, downloaded_at=now, sha256=exports.sha256_hex(data))
            .execution_options(synchronize_session=False)
        ).rowcount  # fmt: skip
        if done != 1:
            raise Conflict(f"export request {request_id} was downloaded already")
        _take(s, ctx, who.username, len(table), now)
        exports.record_file(
            s, mark=mark, what=spec.label, fmt=req.fmt, data=data, rows=len(table),
            persons=persons, object_type="export", object_id=request_id,
            extra={"reveal": req.reveal, "approved_by": req.decided_by},
        )  # fmt: skip
    tracking.record_access(
        ctx.db, actor=who.username, what=f"export {request_id} ({req.fmt})",
        purpose=req.purpose, id_nos=ids, data_class=data_class, reveal=req.reveal,
        reference=f"export {request_id}",
    )  # fmt: skip
    return f"export-{request_id}.{req.fmt}", exports.MEDIA_TYPES[req.fmt], data


def pdf_file(ctx: WebContext, who: Principal, html: str, *, what: str, purpose: str,
             persons: Sequence[str], sensitive: bool = False) -> bytes:  # fmt: skip
    """A report as PDF through the export rules: counted against the daily rows (one row a
    person, at least one), watermarked, its SHA-256 audited (``export.file``)."""
    now = ctx.db.now()
    data_class = classes.SENSITIVE if sensitive else (classes.PERSONAL if persons
                                                      else classes.INTERNAL)  # fmt: skip
    mark = Watermark(who.username, now, purpose, None, data_class)
    data = to_pdf(exports.watermark_html(html, mark))
    rows = max(1, len(set(persons)))
    with ctx.db.transaction() as s:
        _take(s, ctx, who.username, rows, now)
        exports.record_file(s, mark=mark, what=what, fmt="pdf", data=data, rows=rows,
                            persons=len(set(persons)), object_type="report",
                            object_id=what[:64])  # fmt: skip
    return data


def request_view(ctx: WebContext, req: ExportRequest, who: Principal) -> dict[str, Any]:
    """A request as the page and the API show it, with what `who` may do with it."""
    end = expires_at(ctx, req) if req.status == APPROVED else None
    return {
        "id": req.id, "kind": req.kind, "label": kind_of(req.kind).label,
        "params": json.loads(req.params), "format": req.fmt, "reveal": req.reveal,
        "purpose": req.purpose, "rows": req.rows, "persons": req.persons, "bulk": req.bulk,
        "status": req.status, "status_label": STATUS_LABELS.get(req.status, req.status),
        "requested_by": req.requested_by, "requested_at": req.requested_at,
        "decided_by": req.decided_by, "decided_at": req.decided_at,
        "decision_note": req.decision_note, "downloaded_at": req.downloaded_at,
        "sha256": req.sha256, "expires_at": end,
        "can_decide": (req.status == REQUESTED and who.can("exports.approve")
                       and req.requested_by != who.username
                       and (who.pii or not req.reveal)),
        "can_download": req.status == APPROVED and req.requested_by == who.username,
    }  # fmt: skip


def list_requests(ctx: WebContext, who: Principal, limit: int = 200) -> dict[str, Any]:
    """The user's own requests, and the others' awaiting a decision the user may take."""
    with ctx.db.snapshot() as s:
        mine = list(s.execute(
            select(ExportRequest).where(ExportRequest.requested_by == who.username)
            .order_by(ExportRequest.id.desc()).limit(limit)
        ).scalars())  # fmt: skip
        waiting = []
        if who.can("exports.approve"):
            waiting = list(s.execute(
                select(ExportRequest).where(ExportRequest.status == REQUESTED,
                                            ExportRequest.requested_by != who.username)
                .order_by(ExportRequest.id).limit(limit)
            ).scalars())  # fmt: skip
        for r in (*mine, *waiting):
            s.expunge(r)
    lim = limits(ctx)
    return {
        "mine": [request_view(ctx, r, who) for r in mine],
        "to_decide": [request_view(ctx, r, who) for r in waiting],
        "used_today": used_today(ctx, who.username),
        "limits": {"bulk_persons": lim.bulk_persons, "max_rows": lim.max_rows,
                   "max_rows_per_day": lim.max_rows_per_day,
                   "approval_hours": lim.approval_hours},
    }  # fmt: skip
