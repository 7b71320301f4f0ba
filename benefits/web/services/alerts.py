"""The alerts inbox: alerts of each run, assigned, acknowledged and resolved with notes.

A sweep identifies an alert within its month (handbook §5); the inbox keeps one alert per
situation across months — (kind, policy_id, rule, person or household, subject), see
:mod:`benefits.web.services.alert_identity` — so an alert raised again next month (an account
problem, an overdue review) updates the alert already there and keeps its assignee, status
and history; a resolved one stays resolved until its facts change. Every action appends an
event and an entry in the ledger's audit chain.

Example:
    >>> import_alerts(ctx, run)                                    # doctest: +SKIP
    218
    >>> act(ctx, alert_id=3, action="resolve", by="wang", note="certificate renewed")
    ...                                                            # doctest: +SKIP
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from benefits.idcard import mask_id
from benefits.ledger import audit
from benefits.ledger.bulk import bulk_insert
from benefits.ledger.errors import Conflict, InvalidInput, NotFound
from benefits.ledger.models import SweepRun
from benefits.ledger.sealed import fingerprint_index, id_index, party_index
from benefits.sealedfiles import read_csv
from benefits.web.context import WebContext
from benefits.web.directory import community_of, masked_name_of
from benefits.web.format import mask_dates_in_text, mask_id_like, mask_ids_in_text
from benefits.web.models import (
    ALERT_ACKNOWLEDGED,
    ALERT_OPEN,
    ALERT_RESOLVED,
    ALERT_STATUSES,
    WebAlert,
    WebAlertEvent,
    WebAlertImport,
)
from benefits.web.permissions import roles_with
from benefits.web.services.alert_identity import KIND_NAMES, RuleMatcher

ACTIONS = ("assign", "acknowledge", "resolve", "reopen")
MAX_NOTE = 2000


SYSTEM = "system"  # the actor of a reopening by an import


@dataclass
class _Stored:
    """The columns of a stored alert the import compares against."""

    id: int
    id_no: str
    kind: str
    policy_id: str
    rule: str
    due_date: str
    fingerprint: str
    first_month: str
    last_month: str
    months_open: int
    status: str
    assignee: str | None


def _read_alerts(run: SweepRun) -> pl.DataFrame:
    path = Path(run.source) / "alerts.csv"
    if path.is_file():
        return read_csv(path, infer_schema=False).fill_null("")
    return pl.DataFrame(
        schema=dict.fromkeys(["id_no", "kind", "policy_id", "due_date", "message"], pl.String)
    )


def import_alerts(ctx: WebContext, run: SweepRun) -> int:
    """Read a run's alerts.csv into the inbox once; returns how many alerts it holds.

    Each row is traced to its identity across months (:mod:`.alert_identity`: the sweep's
    ``rule_id``, ``party``, ``subject`` and ``fingerprint`` columns). A row whose
    identity is in the inbox updates that alert — message, due date, facts, last month, and
    one more month open when the month is new — instead of adding one. A resolved alert stays
    resolved while its facts are the same; it reopens (event and audit entry by ``system``)
    when its facts changed, or when a month imported since it was last raised did not raise
    it (the situation ended and came back). A run of an older month than the alert's last
    only moves its first month back.
    """
    with ctx.db.snapshot() as s:
        done = s.get(WebAlertImport, run.id)
        if done is not None:
            return done.alerts
    frame = _read_alerts(run)
    ctx.know_run(run)
    people = ctx.directory.people(frame.get_column("id_no").to_list())  # one scan, not per row
    matcher = RuleMatcher(ctx.pack)
    keys = ctx.db.keys
    month_start = f"{run.month}-01"
    now = ctx.db.now()
    try:
        with ctx.db.transaction() as s:
            if s.get(WebAlertImport, run.id) is not None:
                return frame.height
            imported = set(s.execute(select(WebAlertImport.month)).scalars())
            t = WebAlert.__table__
            by_key: dict[tuple[str, ...], _Stored] = {}
            legacy: dict[tuple[str, str, str], list[tuple[str, _Stored]]] = {}
            for r in s.execute(
                select(t.c.id, t.c.id_no, t.c.kind, t.c.policy_id, t.c.rule, t.c.due_date,
                       t.c.fingerprint, t.c.first_month, t.c.last_month, t.c.months_open,
                       t.c.status, t.c.assignee, t.c.party, t.c.subject)
            ).all():  # fmt: skip
                stored = _Stored(*r[:12])
                # party is stored as its keyed blind index (sealed inbox, issue 14)
                by_key[matcher.stored_key(r.kind, r.policy_id, r.rule, r.party, r.subject)] = stored
                if not r.rule:  # stored before alerts had an identity across months
                    legacy.setdefault((r.kind, r.policy_id, r.id_no), []).append(
                        (r.subject, stored)
                    )
            new_rows: list[dict[str, Any]] = []
            seen_again: list[dict[str, Any]] = []
            older: list[dict[str, Any]] = []
            reopened: list[tuple[_Stored, str]] = []
            keys_done: set[tuple[str, ...]] = set()
            for row in frame.iter_rows(named=True):
                ident = matcher.identify(row, month_start)
                party = party_index(keys, ident.party)
                facts = fingerprint_index(keys, ident.fingerprint)
                key = (row["kind"], row["policy_id"], ident.rule, party, ident.subject)
                if key in keys_done:
                    continue
                keys_done.add(key)
                found = by_key.get(key)
                if found is None:
                    found = _adopt(legacy, row, ident.subject)
                values = {
                    "id_no": row["id_no"],
                    "id_index": id_index(keys, row["id_no"]),
                    "rule": ident.rule,
                    "label_zh": ident.label_zh,
                    "label_en": ident.label_en,
                    "party": party,
                    "subject": ident.subject,
                    "fingerprint": facts,
                    "due_date": row["due_date"],
                    "message": row["message"],
                    "community": community_of(people.get(row["id_no"])),
                    "masked_name": masked_name_of(people.get(row["id_no"])),
                    "last_month": run.month,
                    "last_run_id": run.id,
                }
                if found is None:
                    new_rows.append(
                        {**values, "kind": row["kind"], "policy_id": row["policy_id"],
                         "first_month": run.month, "months_open": 1, "status": ALERT_OPEN,
                         "assignee": None, "updated_by": None, "updated_at": None}
                    )  # fmt: skip
                    continue
                if run.month < found.last_month:
                    if run.month < found.first_month:
                        older.append({"b_id": found.id, "b_first": run.month})
                    continue
                status, months_open = found.status, found.months_open
                closed = status == ALERT_RESOLVED
                changed = bool(found.fingerprint) and found.fingerprint != facts
                gap = any(found.last_month < m < run.month for m in imported)
                if closed and (changed or gap):
                    status, months_open = ALERT_OPEN, 1
                    why = (
                        "再次出现且情况有变 / raised again with changed facts"
                        if changed
                        else "中断后再次出现 / raised again after a month without it"
                    )
                    note = f"{run.month} {why}: {mask_alert_message(row['kind'], row['message'])}"
                    reopened.append((found, note))
                elif not closed and run.month > found.last_month:
                    months_open += 1
                seen_again.append(
                    {f"b_{k}": v for k, v in values.items()}
                    | {"b_id": found.id, "b_status": status, "b_months_open": months_open,
                       "b_first": min(found.first_month, run.month)}
                )  # fmt: skip
            if new_rows:
                bulk_insert(s, t, new_rows)
            if seen_again:
                names = [k[2:] for k in seen_again[0] if k not in ("b_id", "b_first")]
                s.connection().execute(
                    update(t)
                    .where(t.c.id == bindparam("b_id"))
                    .values(first_month=bindparam("b_first"),
                            **{n: bindparam(f"b_{n}") for n in names}),
                    seen_again,
                )  # fmt: skip
            if older:
                s.connection().execute(
                    update(t).where(t.c.id == bindparam("b_id"))
                    .values(first_month=bindparam("b_first")),
                    older,
                )  # fmt: skip
            for found, note in reopened:
                s.add(WebAlertEvent(alert_id=found.id, at=now, actor=SYSTEM, action="reopen",
                                    assignee=found.assignee, note=note[:MAX_NOTE]))  # fmt: skip
            s.add(WebAlertImport(run_id=run.id, month=run.month, alerts=frame.height, at=now))
            s.flush()
            for found, note in reopened:
                audit.append(
                    s, at=now, actor=SYSTEM, action="alert.reopen", object_type="alert",
                    object_id=found.id,
                    before={"status": found.status, "assignee": found.assignee},
                    after={"status": ALERT_OPEN, "assignee": found.assignee, "kind": found.kind,
                           "person": mask_id(found.id_no), "note": note,
                           "run_id": run.id},
                )  # fmt: skip
    except IntegrityError:  # another request imported the same run at the same moment
        return frame.height
    ctx.db.analyze("web_alerts")
    return frame.height


def _adopt(
    legacy: dict[tuple[str, str, str], list[tuple[str, _Stored]]],
    row: dict[str, Any],
    subject: str,
) -> _Stored | None:
    """The newest alert stored before identities for this row, if any (then taken once)."""
    candidates = legacy.get((row["kind"], row["policy_id"], row["id_no"]), [])
    fits = [c for c in candidates if not subject or c[0] == subject]
    if not fits:
        return None
    best = max(fits, key=lambda c: c[1].last_month)
    candidates.remove(best)
    return best[1]


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
            conds.extend(raised_in(self.month))
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


QUOTED = re.compile(r"'([^']*)'")
DATE_ONLY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def mask_alert_id(id_no: str | None) -> str:
    """The alert's person ID as a user without the grant sees it (any length, full-width too).

    >>> mask_alert_id("330106500308021"), mask_alert_id("330106195003080215")
    ('330106********1', '330106********0215')
    """
    value = id_no or ""
    return mask_id_like(value) if len(value) >= 14 else mask_id(value)


def mask_alert_message(kind: str, message: str | None) -> str:
    """An alert message as a user without the ``pii`` grant sees it.

    Every ID-like value is masked; an ``identity_conflict`` message quotes the faulty value of
    an ID or birth date, so there every quoted value with digits is masked whatever its length,
    and dates show their year only (the hidden digits of a masked ID are a birth date).

    >>> mask_alert_message("identity_conflict",
    ...     "persons 第 3 行身份证号问题（id_length）：'３３0106195003080214１': resident ID ...")
    "persons 第 3 行身份证号问题（id_length）：'３３0106*********214１': resident ID ..."
    >>> mask_alert_message("identity_conflict", "birth_date '1950-03-09' disagrees")
    "birth_date '1950-**-**' disagrees"
    """
    text = mask_ids_in_text(message)
    if kind != "identity_conflict":
        return text

    def quoted(m: re.Match[str]) -> str:
        value = m.group(1)
        if "*" in value or sum(ch.isdigit() for ch in value) < 6 or DATE_ONLY.match(value):
            return m.group(0)
        return "'" + value[:2] + "*" * (len(value) - 2) + "'"

    return mask_dates_in_text(QUOTED.sub(quoted, text))


def alert_view(a: WebAlert, ref: str, *, reveal: bool = False) -> dict[str, Any]:
    """An alert as the viewer may see it (IDs masked, also inside the message)."""
    return {
        "id": a.id,
        "ref": ref,
        "id_no": a.id_no if reveal else mask_alert_id(a.id_no),
        "masked_name": a.masked_name or "—",
        "kind": a.kind,
        "label_zh": a.label_zh or KIND_NAMES.get(a.kind, (a.kind, a.kind))[0],
        "label_en": a.label_en or KIND_NAMES.get(a.kind, (a.kind, a.kind))[1],
        "policy_id": a.policy_id or None,
        "due_date": a.due_date,
        "message": a.message if reveal else mask_alert_message(a.kind, a.message),
        "community": a.community or "—",
        "first_month": a.first_month,
        "last_month": a.last_month,
        "months_open": a.months_open,
        "status": a.status,
        "assignee": a.assignee,
        "updated_by": a.updated_by,
        "updated_at": a.updated_at,
    }


# The inbox's counts (total, by kind, by status, communities) for a filter, kept per process
# and keyed by the inbox's version: every change of an alert appends an event, every import
# a row of web_alert_imports, so (newest event, imports) changes whenever a count may have.
# 550,000 alerts are counted once per change, not per page view; any process checks the
# version (two index lookups) before trusting what it kept.
_counts: dict[tuple[Any, ...], Any] = {}
_counts_lock = threading.Lock()
MAX_KEPT = 256


def _version(s: Any) -> tuple[int, int]:
    newest = s.execute(select(func.max(WebAlertEvent.id))).scalar() or 0
    imports = s.execute(select(func.count()).select_from(WebAlertImport)).scalar() or 0
    return int(newest), int(imports)


def _kept(ctx: WebContext, s: Any, key: tuple[Any, ...], count: Any) -> Any:
    """`count(s)` for `key` at the inbox's current version, counted once per version."""
    full = (str(ctx.db.engine.url), _version(s), *key)
    with _counts_lock:
        if full in _counts:
            return _counts[full]
    value = count(s)
    with _counts_lock:
        if len(_counts) >= MAX_KEPT:
            _counts.clear()
        _counts[full] = value
    return value


def list_alerts(
    ctx: WebContext, flt: AlertFilter, page: int = 1, per_page: int = 50
) -> dict[str, Any]:
    """One page of the inbox with its total, plus counts by kind and status for the filters.

    The counts are kept per inbox version (see :data:`_counts`); a page past the middle is
    read from the end backwards, so the last of 11,000 pages skips no more rows than page 1.
    """
    conds = flt.conditions()
    page = max(1, page)
    month_conds = raised_in(flt.month) if flt.month else []
    order = (WebAlert.due_date, WebAlert.kind, WebAlert.id)
    with ctx.db.snapshot() as s:
        total = _kept(ctx, s, ("total", tuple(sorted(flt.__dict__.items()))), lambda s: int(
            s.execute(select(func.count()).select_from(WebAlert).where(*conds)).scalar()))
        pages = max(1, (total + per_page - 1) // per_page)
        page = min(page, pages)
        first, upto = (page - 1) * per_page, min(page * per_page, total)
        q = select(WebAlert).where(*conds)
        if first <= total - upto:
            rows = list(s.execute(q.order_by(*order).limit(per_page).offset(first)).scalars())
        else:
            rows = list(reversed(s.execute(
                q.order_by(*(c.desc() for c in order)).limit(max(upto - first, 0))
                .offset(total - upto)).scalars().all()))
        kinds = _kept(ctx, s, ("kinds", flt.month), lambda s: dict(
            s.execute(
                select(WebAlert.kind, func.count())
                .where(*month_conds)
                .group_by(WebAlert.kind)
                .order_by(WebAlert.kind)
            ).all()
        ))
        statuses = _kept(ctx, s, ("statuses", flt.month), lambda s: dict(
            s.execute(
                select(WebAlert.status, func.count()).where(*month_conds).group_by(WebAlert.status)
            ).all()
        ))
        communities = _kept(ctx, s, ("communities", flt.month), lambda s: list(
            s.execute(
                select(WebAlert.community)
                .where(*month_conds)
                .distinct()
                .order_by(WebAlert.community)
            ).scalars()
        ))
    return {
        "items": [alert_view(a, ctx.directory.ref(a.id_no)) for a in rows],
        "total": total,
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "kinds": kinds,
        "statuses": statuses,
        "communities": [c for c in communities if c],
    }  # fmt: skip


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
        if assignee not in ctx.accounts.user_names("alerts.work"):
            workers = ", ".join(sorted(roles_with("alerts.work")))
            raise Conflict(f"{assignee} cannot work alerts: only a user with the role "
                               f"{workers} can be assigned one")  # fmt: skip
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
                select(WebAlert)
                .where(WebAlert.id_index == id_index(ctx.db.keys, id_no))  # id_no is sealed
                .order_by(WebAlert.due_date.desc())
            ).scalars()
        )


def raised_in(month: str) -> list[Any]:
    """SQL conditions for the alerts raised in `month`: first seen on or before it, last seen
    on or after it (an alert carried over from January to March was raised in February)."""
    return [WebAlert.first_month <= month, WebAlert.last_month >= month]


def counts_by_rule(ctx: WebContext, month: str) -> list[dict[str, Any]]:
    """For the alerts raised in `month`, per kind and rule: its labels and {status: count}.

    Several rules raise the same kind (three `review_due` reviews, two `income_over_threshold`
    tests, …); each is counted under its own label.
    """
    with ctx.db.snapshot() as s:
        rows = _kept(ctx, s, ("by_rule", month), lambda s: s.execute(
            select(WebAlert.kind, WebAlert.rule, WebAlert.label_zh, WebAlert.label_en,
                   WebAlert.status, func.count())
            .where(*raised_in(month))
            .group_by(WebAlert.kind, WebAlert.rule, WebAlert.label_zh, WebAlert.label_en,
                      WebAlert.status)
        ).all())  # fmt: skip
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, rule, zh, en, status, n in rows:
        fallback = KIND_NAMES.get(kind, (kind, kind))
        entry = out.setdefault(
            (kind, rule),
            {"kind": kind, "rule": rule, "label_zh": zh or fallback[0],
             "label_en": en or fallback[1], "statuses": {}},
        )  # fmt: skip
        entry["statuses"][status] = entry["statuses"].get(status, 0) + int(n)
    return list(out.values())
