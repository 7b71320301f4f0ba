"""The alerts inbox: alerts of each run, assigned, acknowledged and resolved with notes.

An alert is identified as in handbook §5 — (id_no, kind, policy_id, due_date) — so an alert
raised again next month (an overdue review) keeps its assignee, status and history. Every
action appends an event and an entry in the ledger's audit chain.

Example:
    >>> import_alerts(ctx, run)                                    # doctest: +SKIP
    218
    >>> act(ctx, alert_id=3, action="resolve", by="wang", note="certificate renewed")
    ...                                                            # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from benefits.idcard import mask_id
from benefits.ledger import audit
from benefits.ledger.bulk import bulk_insert
from benefits.ledger.errors import Conflict, InvalidInput, NotFound
from benefits.ledger.models import SweepRun
from benefits.web.context import WebContext
from benefits.web.format import mask_ids_in_text
from benefits.web.models import (
    ALERT_ACKNOWLEDGED,
    ALERT_OPEN,
    ALERT_RESOLVED,
    ALERT_STATUSES,
    WebAlert,
    WebAlertEvent,
    WebAlertImport,
)

ACTIONS = ("assign", "acknowledge", "resolve", "reopen")
MAX_NOTE = 2000


def import_alerts(ctx: WebContext, run: SweepRun) -> int:
    """Read a run's alerts.csv into the inbox once; returns how many alerts it holds."""
    with ctx.db.snapshot() as s:
        done = s.get(WebAlertImport, run.id)
        if done is not None:
            return done.alerts
    path = Path(run.source) / "alerts.csv"
    if path.is_file():
        frame = pl.read_csv(path, infer_schema=False).fill_null("")
    else:
        frame = pl.DataFrame(
            schema=dict.fromkeys(["id_no", "kind", "policy_id", "due_date", "message"], pl.String)
        )
    ctx.know_run(run)
    directory = ctx.directory
    now = ctx.db.now()
    try:
        with ctx.db.transaction() as s:
            if s.get(WebAlertImport, run.id) is not None:
                return frame.height
            existing = {
                (a.id_no, a.kind, a.policy_id, a.due_date): (a.id, a.last_month)
                for a in s.execute(select(WebAlert)).scalars()
            }
            new_rows: list[dict[str, Any]] = []
            seen_again: list[dict[str, Any]] = []
            for row in frame.iter_rows(named=True):
                key = (row["id_no"], row["kind"], row["policy_id"], row["due_date"])
                found = existing.get(key)
                if found is None:
                    new_rows.append(
                        {
                            "id_no": row["id_no"],
                            "kind": row["kind"],
                            "policy_id": row["policy_id"],
                            "due_date": row["due_date"],
                            "message": row["message"],
                            "community": directory.community(row["id_no"]),
                            "masked_name": directory.masked_name(row["id_no"]),
                            "first_month": run.month,
                            "last_month": run.month,
                            "last_run_id": run.id,
                            "status": ALERT_OPEN,
                            "assignee": None,
                            "updated_by": None,
                            "updated_at": None,
                        }
                    )
                    existing[key] = (-1, run.month)
                elif found[0] > 0 and found[1] <= run.month:
                    seen_again.append(
                        {"b_id": found[0], "b_month": run.month, "b_run": run.id,
                         "b_message": row["message"]}
                    )  # fmt: skip
            if new_rows:
                bulk_insert(s, WebAlert.__table__, new_rows)
            if seen_again:
                from sqlalchemy import bindparam

                s.connection().execute(
                    update(WebAlert.__table__)
                    .where(WebAlert.__table__.c.id == bindparam("b_id"))
                    .values(
                        last_month=bindparam("b_month"),
                        last_run_id=bindparam("b_run"),
                        message=bindparam("b_message"),
                    ),
                    seen_again,
                )
            s.add(WebAlertImport(run_id=run.id, month=run.month, alerts=frame.height, at=now))
            s.flush()
    except IntegrityError:  # another request imported the same run at the same moment
        return frame.height
    return frame.height


@dataclass
class AlertFilter:
    """Inbox filters; empty strings mean 'any'."""

    month: str = ""
    kind: str = ""
    community: str = ""
    status: str = "active"
    assignee: str = ""
    due_from: str = ""
    due_to: str = ""

    def conditions(self) -> list[Any]:
        """SQL conditions for these filters."""
        conds: list[Any] = []
        if self.month:
            conds.append(WebAlert.last_month == self.month)
        if self.kind:
            conds.append(WebAlert.kind == self.kind)
        if self.community:
            conds.append(WebAlert.community == self.community)
        if self.status == "active":
            conds.append(WebAlert.status.in_((ALERT_OPEN, ALERT_ACKNOWLEDGED)))
        elif self.status in ALERT_STATUSES:
            conds.append(WebAlert.status == self.status)
        if self.assignee == "-":
            conds.append(WebAlert.assignee.is_(None))
        elif self.assignee:
            conds.append(WebAlert.assignee == self.assignee)
        if self.due_from:
            conds.append(WebAlert.due_date >= self.due_from)
        if self.due_to:
            conds.append(WebAlert.due_date <= self.due_to)
        return conds


def alert_view(a: WebAlert, ref: str, *, reveal: bool = False) -> dict[str, Any]:
    """An alert as the viewer may see it (IDs masked, also inside the message)."""
    return {
        "id": a.id,
        "ref": ref,
        "id_no": a.id_no if reveal else mask_id(a.id_no),
        "masked_name": a.masked_name or "—",
        "kind": a.kind,
        "policy_id": a.policy_id or None,
        "due_date": a.due_date,
        "message": a.message if reveal else mask_ids_in_text(a.message),
        "community": a.community or "—",
        "first_month": a.first_month,
        "last_month": a.last_month,
        "status": a.status,
        "assignee": a.assignee,
        "updated_by": a.updated_by,
        "updated_at": a.updated_at,
    }


def list_alerts(
    ctx: WebContext, flt: AlertFilter, page: int = 1, per_page: int = 50
) -> dict[str, Any]:
    """One page of the inbox with its total, plus counts by kind and status for the filters."""
    conds = flt.conditions()
    page = max(1, page)
    with ctx.db.snapshot() as s:
        total = int(s.execute(select(func.count()).select_from(WebAlert).where(*conds)).scalar())
        rows = list(
            s.execute(
                select(WebAlert)
                .where(*conds)
                .order_by(WebAlert.due_date, WebAlert.kind, WebAlert.id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).scalars()
        )
        month_conds = [WebAlert.last_month == flt.month] if flt.month else []
        kinds = dict(
            s.execute(
                select(WebAlert.kind, func.count())
                .where(*month_conds)
                .group_by(WebAlert.kind)
                .order_by(WebAlert.kind)
            ).all()
        )
        statuses = dict(
            s.execute(
                select(WebAlert.status, func.count()).where(*month_conds).group_by(WebAlert.status)
            ).all()
        )
        communities = list(
            s.execute(
                select(WebAlert.community).where(*month_conds).distinct().order_by(
                    WebAlert.community
                )
            ).scalars()
        )
    return {
        "items": [alert_view(a, ctx.directory.ref(a.id_no)) for a in rows],
        "total": total,
        "page": page,
        "pages": max(1, (total + per_page - 1) // per_page),
        "per_page": per_page,
        "kinds": kinds,
        "statuses": statuses,
        "communities": [c for c in communities if c],
    }


def get_alert(ctx: WebContext, alert_id: int) -> tuple[WebAlert, list[WebAlertEvent]]:
    """An alert and its history, or NotFound."""
    with ctx.db.snapshot() as s:
        alert = s.get(WebAlert, alert_id)
        if alert is None:
            raise NotFound(f"there is no alert {alert_id}")
        events = list(
            s.execute(
                select(WebAlertEvent)
                .where(WebAlertEvent.alert_id == alert_id)
                .order_by(WebAlertEvent.id)
            ).scalars()
        )
    return alert, events


def act(
    ctx: WebContext,
    alert_id: int,
    action: str,
    by: str,
    *,
    note: str | None = None,
    assignee: str | None = None,
) -> WebAlert:
    """Assign, acknowledge, resolve (a note is required) or reopen an alert. Audited.

    Example:
        >>> act(ctx, 3, "assign", by="wang", assignee="li")       # doctest: +SKIP
    """
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    note = (note or "").strip()[:MAX_NOTE] or None
    if action == "resolve" and not note:
        raise InvalidInput("resolving an alert needs a note saying what was done")
    if action == "assign":
        assignee = (assignee or "").strip().lower() or None
        if assignee is None:
            raise InvalidInput("choose who the alert is assigned to")
        if assignee not in ctx.accounts.user_names():
            raise Conflict(f"there is no active user {assignee!r}")
    now = ctx.db.now()
    with ctx.db.transaction() as s:
        alert = s.get(WebAlert, alert_id)
        if alert is None:
            raise NotFound(f"there is no alert {alert_id}")
        before = {"status": alert.status, "assignee": alert.assignee}
        if action == "assign":
            alert.assignee = assignee
        elif action == "acknowledge":
            if alert.status != ALERT_OPEN:
                raise Conflict(f"alert {alert_id} is {alert.status}: only an open alert "
                                   "can be acknowledged")  # fmt: skip
            alert.status = ALERT_ACKNOWLEDGED
            alert.assignee = alert.assignee or by
        elif action == "resolve":
            if alert.status == ALERT_RESOLVED:
                raise Conflict(f"alert {alert_id} is already resolved")
            alert.status = ALERT_RESOLVED
        elif action == "reopen":
            if alert.status != ALERT_RESOLVED:
                raise Conflict(f"alert {alert_id} is not resolved")
            alert.status = ALERT_OPEN
        alert.updated_by, alert.updated_at = by, now
        s.add(WebAlertEvent(alert_id=alert.id, at=now, actor=by, action=action,
                            assignee=alert.assignee, note=note))  # fmt: skip
        s.flush()
        audit.append(
            s, at=now, actor=by, action=f"alert.{action}", object_type="alert",
            object_id=alert.id,
            before=before,
            after={"status": alert.status, "assignee": alert.assignee, "kind": alert.kind,
                   "person": mask_id(alert.id_no), "note": note},
        )  # fmt: skip
        return alert


def person_alerts(ctx: WebContext, id_no: str) -> list[WebAlert]:
    """Every alert about one person, newest due date first."""
    with ctx.db.snapshot() as s:
        return list(
            s.execute(
                select(WebAlert).where(WebAlert.id_no == id_no).order_by(WebAlert.due_date.desc())
            ).scalars()
        )


def counts_by_kind(ctx: WebContext, month: str) -> dict[str, dict[str, int]]:
    """{kind: {status: count}} for the alerts raised in `month`."""
    with ctx.db.snapshot() as s:
        rows = s.execute(
            select(WebAlert.kind, WebAlert.status, func.count())
            .where(WebAlert.last_month == month)
            .group_by(WebAlert.kind, WebAlert.status)
        ).all()
    out: dict[str, dict[str, int]] = {}
    for kind, status, n in rows:
        out.setdefault(kind, {})[status] = int(n)
    return out
