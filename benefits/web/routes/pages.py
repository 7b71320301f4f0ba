"""Server-rendered pages. Each route: check permission (dependency), call a service, render.

Changes are POST forms with the session's CSRF token, answered with a redirect and a flash
message (post/redirect/get).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from benefits.ledger.errors import InvalidInput, LedgerError, NotFound
from benefits.web import charts, reports, tracking
from benefits.web.auth import AuthError, Principal, Throttled
from benefits.web.deps import (
    FLASH_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    AlertQuery,
    Community,
    Ctx,
    Cursor,
    Id,
    Month,
    PageNo,
    check_csrf,
    client_ip,
    flash_cookie,
    login_serializer,
    page_user,
    require,
    session_principal,
)
from benefits.web.jobs import JobRunning, result_of
from benefits.web.models import JOB_DONE
from benefits.web.permissions import ROLE_LABELS
from benefits.web.services import access, auditlog, dashboard, persons, rules
from benefits.web.services import alerts as alert_service
from benefits.web.services import batches as batch_service
from benefits.web.services import exports as export_service
from benefits.web.services import runs as run_service
from benefits.web.templating import render

# Who may call a route: the signed-in user holding the permission (403 otherwise).
DashboardViewer = Annotated[Principal, Depends(require("dashboard.view"))]
RunsViewer = Annotated[Principal, Depends(require("runs.view"))]
SweepRunner = Annotated[Principal, Depends(require("sweeps.run"))]
Preparer = Annotated[Principal, Depends(require("batches.prepare"))]
BatchViewer = Annotated[Principal, Depends(require("batches.view"))]
Decider = Annotated[Principal, Depends(require("batches.decide"))]
PersonViewer = Annotated[Principal, Depends(require("persons.view"))]
AlertViewer = Annotated[Principal, Depends(require("alerts.view"))]
AlertWorker = Annotated[Principal, Depends(require("alerts.work"))]
AuditViewer = Annotated[Principal, Depends(require("audit.view"))]
AccessAuditor = Annotated[Principal, Depends(require("access.report"))]
RulesViewer = Annotated[Principal, Depends(require("rules.view"))]
Admin = Annotated[Principal, Depends(require("users.manage"))]

router = APIRouter(include_in_schema=False)

Ref = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")]
Text = Annotated[str, Form(max_length=2000)]
CSRF = [Depends(check_csrf)]
# Besides its starter, who may follow a job of each kind (a PDF stays its starter's).
JOB_PERMISSIONS = {"sweep": "sweeps.run"}


def _secure(request: Request) -> bool:
    """Whether cookies get ``Secure``: when configured, and whenever served over HTTPS."""
    return bool(request.app.state.ctx.settings.secure_cookies) or request.url.scheme == "https"


def _redirect(request: Request, url: str, kind: str | None = None, message: str = "") -> Response:
    response = RedirectResponse(url, status_code=303)
    if kind:
        response.set_cookie(FLASH_COOKIE, flash_cookie(request, kind, message), max_age=120,
                            httponly=True, samesite="lax", path="/",
                            secure=_secure(request))  # fmt: skip
    return response


def _do(request: Request, back: str, action: Callable[[], Any], done: str,
        then: Callable[[Any], str] | None = None) -> Response:
    """Run a ledger action; redirect back with its outcome (refusals shown, not raised)."""
    try:
        result = action()
    except LedgerError as exc:
        return _redirect(request, back, "error", str(exc))
    return _redirect(request, then(result) if then else back, "ok", done)


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/dashboard"
    parsed = urlparse(target)
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


# ------------------------------------------------------------------------ sign-in / out


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness probe (no sign-in)."""
    return {"status": "ok"}


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form with a signed CSRF token bound to a cookie."""
    if session_principal(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    nonce = secrets.token_urlsafe(16)
    response = render(request, "login.html", {"next": _safe_next(next),
                                              "token": login_serializer(request).dumps(nonce)})
    response.set_cookie(LOGIN_CSRF_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
                        secure=_secure(request))  # fmt: skip
    return response


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    token: Annotated[str, Form(max_length=300)] = "",
    next: Annotated[str, Form(max_length=500)] = "/dashboard",
) -> Response:
    """Check the password (throttled) and start a session."""
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    try:
        expected = login_serializer(request).loads(token, max_age=3600)
    except Exception:
        expected = None
    if not nonce or expected != nonce:
        return _redirect(request, "/login", "error",
                         "登录表单已过期，请重试 / the sign-in form expired: try again")
    try:
        cookie, _who = ctx.accounts.login(username, password, client_ip(request))
    except Throttled as exc:
        response = _redirect(request, "/login", "error", str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AuthError as exc:
        return _redirect(request, "/login", "error", str(exc))
    response = _redirect(request, _safe_next(next))
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax",
                        secure=_secure(request),
                        max_age=int(ctx.settings.session_hours * 3600), path="/")  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout", dependencies=CSRF)
def logout(request: Request, ctx: Ctx, who: Annotated[Principal, Depends(page_user)]) -> Response:
    """End the session."""
    if who.session_id:
        ctx.accounts.logout(who.session_id, who.username)
    response = _redirect(request, "/login", "ok", "已安全退出 / signed out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(who: Annotated[Principal, Depends(page_user)]) -> Response:
    """The start page for the user's role."""
    target = "/dashboard" if who.can("dashboard.view") else "/rules"
    return RedirectResponse(target, status_code=303)


# -------------------------------------------------------------------------------- dashboard


@router.get("/dashboard")
def dashboard_page(
    request: Request,
    ctx: Ctx,
    who: DashboardViewer,
    month: Month = None,
) -> Response:
    """Totals per policy and community, holds, alerts, change against last month."""
    view = dashboard.dashboard(ctx, month)
    chart_svgs: dict[str, str] = {}
    if view["month"]:
        chart_svgs["policies"] = charts.bar_chart(
            [(f"{p['number']}. {p['name_zh']}", float(p["amount"]),
              float(p["prev_amount"]) if p["prev_amount"] is not None else None)
             for p in view["policies"] if p["mode"] in ("pay", "credit")],
            title="各政策发放金额（元）/ amount per policy (yuan)", label_width=200,
        )  # fmt: skip
        chart_svgs["communities"] = charts.column_chart(
            [(c["community"][-3:], float(c["amount"])) for c in view["communities"]],
            title="各社区发放金额（元）/ amount per community (yuan)",
        )
        chart_svgs["alerts"] = charts.bar_chart(
            [(a["label_zh"], float(a["total"]), None) for a in view["alerts"]],
            title="预警数量 / alerts by kind", color=charts.ACCENT, label_width=140,
            max_label=10,
        )  # fmt: skip
    return render(request, "dashboard.html", {"view": view, "charts": chart_svgs,
                                              "nav": "dashboard"})  # fmt: skip


# ---------------------------------------------------------------------------------- batches


@router.get("/batches")
def batches_page(
    request: Request,
    ctx: Ctx,
    who: BatchViewer,
    month: Month = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Every batch with its state."""
    return render(request, "batches.html", {
        "batches": batch_service.batch_rows(ctx, month, status), "month": month,
        "status": status, "months": run_service.months(ctx), "nav": "batches"})  # fmt: skip


@router.get("/batches/{batch_id}")
def batch_page(
    request: Request,
    ctx: Ctx,
    batch_id: Id,
    who: BatchViewer,
    policy: Annotated[str, Query(max_length=64)] = "",
    community: Community = "",
    held: Annotated[str, Query(pattern=r"^(|yes|no)$")] = "",
    kind: Annotated[str, Query(pattern=r"^(|payment|adjustment|arrears|recovery|reissue)$")] = "",
    page: PageNo = 1,
    after: Cursor = None,
    before: Cursor = None,
) -> Response:
    """A batch: totals, four-eyes panel, actions, filtered and paged items."""
    flt = batch_service.ItemFilter(policy, community, held, kind)
    view = batch_service.batch_page(ctx, batch_id, flt, page, after=after, before=before)
    export_service.take_rows(ctx, who, len(view["items"]))  # the daily rows (output limits)
    held_items, held_amount = batch_service.held_total(view["batch"])
    tracking.track_listed(
        ctx,
        who,
        view["items"],
        "batch",
        "batch items (page)",
        reference=f"batch {batch_id} page {view['page']}",
    )
    return render(request, "batch.html", {
        "view": view, "b": view["batch"],
        "rights": batch_service.four_eyes(view["batch_row"], who),
        "held_items": held_items, "held_amount": held_amount, "nav": "batches",
        "query": flt.query()})  # fmt: skip


@router.post("/runs/{run_id}/batch", dependencies=CSRF)
def create_batch(request: Request, ctx: Ctx, run_id: Id,
                 who: Preparer) -> Response:
    """Create a draft batch from a run."""
    return _do(request, f"/runs/{run_id}", lambda: ctx.ledger.create_batch(run_id, who.username),
               "已生成批次草稿 / draft batch created", then=lambda b: f"/batches/{b.id}")


@router.post("/batches/{batch_id}/submit", dependencies=CSRF)
def submit_batch(request: Request, ctx: Ctx, batch_id: Id,
                 who: Preparer) -> Response:
    """draft → submitted."""
    return _do(request, f"/batches/{batch_id}", lambda: ctx.ledger.submit(batch_id, who.username),
               "已提交审核 / submitted for approval")


@router.post("/batches/{batch_id}/approve", dependencies=CSRF)
def approve_batch(request: Request, ctx: Ctx, batch_id: Id,
                  who: Decider) -> Response:
    """submitted → approved (never by its preparer: the ledger refuses)."""
    return _do(request, f"/batches/{batch_id}",
               lambda: ctx.ledger.approve(batch_id, who.username), "已审核通过 / approved")


@router.post("/batches/{batch_id}/reject", dependencies=CSRF)
def reject_batch(request: Request, ctx: Ctx, batch_id: Id,
                 who: Decider,
                 reason: Text = "") -> Response:
    """Reject with a reason; the items are voided."""
    return _do(request, f"/batches/{batch_id}",
               lambda: ctx.ledger.reject(batch_id, who.username, reason),
               "已退回 / rejected")


@router.post("/items/{item_id}/release", dependencies=CSRF)
def release_item(request: Request, ctx: Ctx, item_id: Id,
                 who: Preparer,
                 reason: Text = "", account: Annotated[str, Form(max_length=64)] = "",
                 back: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Release a held item with a reason (and a corrected account)."""
    return _do(request, _safe_next(back or "/batches"),
               lambda: ctx.ledger.release(item_id, who.username, reason, account or None),
               f"已解除暂缓 / item {item_id} released")


@router.get("/batches/{batch_id}/sheet")
def batch_sheet(request: Request, ctx: Ctx, batch_id: Id,
                who: BatchViewer) -> Response:
    """The printable batch approval sheet (HTML)."""
    return reports.batch_sheet_response(ctx, batch_id, who, pdf=False)


@router.get("/batches/{batch_id}/sheet.pdf")
def batch_sheet_pdf(request: Request, ctx: Ctx, batch_id: Id,
                    who: BatchViewer) -> Response:
    """The batch approval sheet as PDF."""
    return reports.batch_sheet_response(ctx, batch_id, who, pdf=True)


# ---------------------------------------------------------------------------------- persons


@router.get("/persons")
def persons_page(request: Request,
                 who: PersonViewer) -> Response:
    """Find a person by resident ID."""
    return render(request, "persons.html", {"nav": "persons"})


@router.post("/persons/search", dependencies=CSRF)
def person_search(request: Request, ctx: Ctx,
                  who: PersonViewer,
                  id_no: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Look up an ID (sent in the body, never in a URL) and go to the person's page."""
    ctx.know_all()
    value = id_no.strip().upper()
    ref = ctx.directory.ref(value) if value else ""
    if not value or ctx.directory.resolve(ref) is None or (
        ctx.directory.person(value) is None and not batch_service.person_items(ctx, value)
        and not _in_traces(ctx, value)
    ):
        return _redirect(request, "/persons", "error",
                         "未找到该身份证号 / no person with this ID in the sweeps or the ledger")
    return _redirect(request, f"/persons/{ref}")


def _in_traces(ctx: Any, id_no: str) -> bool:
    for month in run_service.months(ctx)[:1]:
        run = run_service.latest_run(ctx, month)
        index = ctx.trace_index(run) if run else None
        if index is not None and index.lines(id_no):
            return True
    return False


def _person_id(ctx: Any, ref: str) -> str:
    id_no = ctx.directory.resolve(ref)
    if id_no is None:
        ctx.know_all()
        id_no = ctx.directory.resolve(ref)
    if id_no is None:
        raise NotFound("no person with this reference")
    return id_no


def _reveal(who: Principal, reveal: bool) -> bool:
    """Whether to reveal: asked for, and allowed (403 without the pii grant)."""
    if reveal and not who.pii:
        from benefits.web.deps import Forbidden

        raise Forbidden(f"{who.username} has no pii grant: personal data stays masked")
    return reveal


Reason = Annotated[str, Query(max_length=200, description="why the data is revealed")]


@router.get("/persons/{ref}")
def person_page(request: Request, ctx: Ctx, ref: Ref,
                who: PersonViewer,
                month: Month = None, reveal: bool = False, reason: Reason = "") -> Response:
    """Why a person was (not) paid: every policy considered, and their payments."""
    id_no = _person_id(ctx, ref)
    shown = _reveal(who, reveal)
    view = persons.explanation(ctx, id_no, month, reveal=shown)
    export_service.take_rows(ctx, who, 1)  # one person: one of the daily rows
    tracking.track(
        ctx,
        who,
        [id_no],
        "person",
        "explanation page",
        shown=shown,
        reason=reason,
        month=month,
    )
    return render(request, "person.html", {"view": view, "nav": "persons"})


@router.get("/persons/{ref}/letter")
def person_letter(request: Request, ctx: Ctx, ref: Ref,
                  who: PersonViewer,
                  month: Month = None, reveal: bool = False, reason: Reason = "") -> Response:
    """The printable explanation letter (HTML)."""
    id_no = _person_id(ctx, ref)
    shown = _reveal(who, reveal)
    response = reports.letter_response(ctx, id_no, month, shown, pdf=False, who=who)
    export_service.take_rows(ctx, who, 1)  # one person: one of the daily rows
    tracking.track(
        ctx,
        who,
        [id_no],
        "letter",
        "explanation letter",
        shown=shown,
        reason=reason,
        month=month,
    )
    return response


@router.get("/persons/{ref}/letter.pdf")
def person_letter_pdf(request: Request, ctx: Ctx, ref: Ref,
                      who: PersonViewer,
                      month: Month = None, reveal: bool = False, reason: Reason = "") -> Response:
    """The explanation letter as PDF."""
    id_no = _person_id(ctx, ref)
    shown = _reveal(who, reveal)
    response = reports.letter_response(ctx, id_no, month, shown, pdf=True, who=who)
    tracking.track(
        ctx,
        who,
        [id_no],
        "letter",
        "explanation letter (PDF)",
        shown=shown,
        reason=reason,
        month=month,
    )
    return response


# ----------------------------------------------------------------------------------- alerts


@router.get("/alerts")
def alerts_page(
    request: Request, ctx: Ctx, who: AlertViewer, flt: AlertQuery, page: PageNo = 1
) -> Response:
    """The alerts inbox with filters (the newest month when none is chosen)."""
    months = run_service.months(ctx)
    if not flt.month and months:
        flt = replace(flt, month=months[0])
    if flt.month:
        run_service.run_for_month(ctx, flt.month)
    view = alert_service.list_alerts(ctx, flt, page)
    export_service.take_rows(ctx, who, len(view["items"]))  # the daily rows (output limits)
    tracking.track_listed(
        ctx,
        who,
        view["items"],
        "alerts",
        "alerts inbox (page)",
        reference=f"alerts {flt.month or ''} page {page}",
        month=flt.month,
    )
    return render(request, "alerts.html", {
        "view": view, "flt": flt, "months": months, "query": {k: v for k, v in vars(flt).items()},
        "users": ctx.accounts.user_names(), "nav": "alerts"})  # fmt: skip


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, ctx: Ctx, alert_id: Id,
               who: AlertViewer) -> Response:
    """One alert with its history and the actions."""
    alert, events = alert_service.get_alert(ctx, alert_id)
    view = alert_service.alert_view(alert, ctx.directory.ref(alert.id_no))
    export_service.take_rows(ctx, who, 1)  # one person: one of the daily rows
    workers = ctx.accounts.user_names("alerts.work")  # only they can be given an alert
    tracking.track(ctx, who, [alert.id_no], "alert", f"alert {alert_id}")
    return render(request, "alert.html", {"a": view, "events": events, "nav": "alerts",
                                          "users": workers})  # fmt: skip


@router.post("/alerts/{alert_id}/{action}", dependencies=CSRF)
def alert_action(
    request: Request,
    ctx: Ctx,
    alert_id: Id,
    action: Annotated[str, Path(pattern=r"^(assign|acknowledge|resolve|reopen)$")],
    who: AlertWorker,
    note: Text = "",
    assignee: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Assign, acknowledge, resolve (with a note) or reopen an alert."""
    return _do(request, f"/alerts/{alert_id}",
               lambda: alert_service.act(ctx, alert_id, action, who.username, note=note,
                                         assignee=assignee),
               "已更新 / alert updated")  # fmt: skip


# ------------------------------------------------------------------------------ runs, audit


@router.get("/runs")
def runs_page(request: Request, ctx: Ctx,
              who: RunsViewer) -> Response:
    """Sweep history with counts and hashes, and the form to run a sweep."""
    return render(request, "runs.html", {
        "runs": run_service.run_rows(ctx), "suggested": run_service.suggested_month(ctx),
        "span": run_service.sweep_months(ctx),
        "data": str(ctx.settings.data), "nav": "runs"})  # fmt: skip


@router.post("/sweeps", dependencies=CSRF)
def run_sweep(request: Request, ctx: Ctx,
              who: SweepRunner,
              month: Annotated[str, Form(max_length=7)] = "") -> Response:
    """Sweep a month on the data folder and record it — as a background job, whose page
    shows its progress and then goes on to the run (unchanged data: the run is reused at
    once, nothing is swept)."""
    try:
        reused, job_id = run_service.start_sweep_job(ctx, month, who.username)
    except JobRunning as exc:
        return _redirect(request, f"/jobs?id={exc.job_id}", "error", str(exc))
    except LedgerError as exc:
        return _redirect(request, "/runs", "error", str(exc))
    if reused is not None:
        return _redirect(request, f"/runs/{reused.run_id}", "ok",
                         run_service.sweep_message(reused))  # fmt: skip
    return _redirect(request, f"/jobs?id={job_id}&follow=1", "ok",
                     f"测算已在后台开始 / the sweep of {month} runs in the background (job "
                     f"{job_id}); this page follows it")  # fmt: skip


@router.get("/jobs")
def job_page(request: Request, ctx: Ctx, who: Annotated[Principal, Depends(page_user)],
             id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
             follow: Annotated[int, Query(ge=0, le=1)] = 0) -> Response:
    """A background job's progress, then its result or error (``?id=N``); without an id,
    the jobs the officer started. With ``follow=1`` a finished job goes on to its result."""
    if id is None:
        return render(request, "jobs.html", {"jobs": ctx.jobs.recent(who.username),
                                             "nav": "jobs"})  # fmt: skip
    job = _visible_job(ctx, who, id)
    result = result_of(job)
    if follow and job.status == JOB_DONE and result.get("url"):
        return _redirect(request, result["url"], "ok", result.get("message", ""))
    return render(request, "job.html", {"job": job, "result": result, "refresh": 2,
                                        "mine": job.started_by == who.username,
                                        "nav": "jobs"})  # fmt: skip


@router.get("/jobs/download")
def job_download(ctx: Ctx, who: Annotated[Principal, Depends(page_user)],
                 id: Annotated[int, Query(ge=1, le=2**62)]) -> Response:
    """The file a finished job made (a large PDF), for the officer who started it."""
    job = _visible_job(ctx, who, id)
    result = result_of(job)
    path = FilePath(result.get("file") or "")
    if job.started_by != who.username or job.status != JOB_DONE or not path.is_file():
        raise NotFound(f"job {id} has no file for {who.username}")
    return Response(path.read_bytes(), media_type=result.get("media_type") or "application/pdf",
                    headers={"Content-Disposition":
                             f'attachment; filename="{result.get("filename") or path.name}"'})


def _visible_job(ctx: Any, who: Principal, job_id: int) -> Any:
    """The job, if `who` started it or may run its kind of work (else: not found)."""
    job = ctx.jobs.get(job_id)
    shared = JOB_PERMISSIONS.get(job.kind)
    if job.started_by != who.username and not (shared and who.can(shared)):
        raise NotFound(f"there is no job {job_id}")
    return job


@router.post("/batches/{batch_id}/sheet-job", dependencies=CSRF)
def batch_sheet_job(request: Request, ctx: Ctx, batch_id: Id, who: BatchViewer) -> Response:
    """Build the approval sheet's PDF of a (large) batch in the background."""
    try:
        job_id = reports.start_sheet_job(ctx, batch_id, who)
    except JobRunning as exc:
        return _redirect(request, f"/jobs?id={exc.job_id}", "error", str(exc))
    except LedgerError as exc:
        return _redirect(request, f"/batches/{batch_id}", "error", str(exc))
    return _redirect(request, f"/jobs?id={job_id}", "ok",
                     f"PDF 正在后台生成 / the PDF of batch {batch_id} is being built (job "
                     f"{job_id})")  # fmt: skip


@router.get("/runs/{run_id}")
def run_page(request: Request, ctx: Ctx, run_id: Id,
             who: RunsViewer) -> Response:
    """One run: inputs and their hashes, rows read/accepted/quarantined, totals."""
    return render(request, "run.html", {"view": run_service.run_detail(ctx, run_id),
                                        "nav": "runs"})  # fmt: skip


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: Ctx,
    who: AuditViewer,
    page: PageNo = 1,
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=64)] = "",
    reverify: bool = False,
) -> Response:
    """The audit chain's status and entries."""
    view = auditlog.audit_page(ctx, page, 50, action, actor, reverify=reverify)
    return render(request, "audit.html", {"view": view, "nav": "audit",
                                          "query": {"action": action, "actor": actor}})


PersonRef = Annotated[str, Query(pattern=r"^(|[0-9a-f]{24})$", description="person reference")]
UserName = Annotated[str, Query(max_length=64)]


@router.get("/audit/access")
def access_page(request: Request, ctx: Ctx, who: AccessAuditor, person: PersonRef = "",
                user: UserName = "") -> Response:  # fmt: skip
    """Who saw one person's data (``?person=<ref>``), or whose data one user saw (``?user=``)."""
    person_view = user_view = None
    if person:
        id_no = access.find_person(ctx, person)
        person_view = access.person_access(ctx, id_no)
        export_service.take_rows(ctx, who, 1)  # one person: one of the daily rows
        tracking.track(ctx, who, [id_no], "report", "access report (page)")
    elif user:
        user_view = access.user_access(ctx, user)
        export_service.take_rows(ctx, who, len(user_view["persons"]))  # persons listed
    return render(request, "access.html", {"person": person_view, "user": user_view,
                                           "users": ctx.accounts.user_names(), "nav": "audit"})


@router.post("/audit/access", dependencies=CSRF)
def access_search(request: Request, ctx: Ctx, who: AccessAuditor,
                  person: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Find a person by resident ID or reference (sent in the body, never in a URL)."""
    try:
        id_no = access.find_person(ctx, person)
    except NotFound as exc:
        return _redirect(request, "/audit/access", "error", str(exc))
    return _redirect(request, f"/audit/access?person={ctx.directory.ref(id_no)}")


@router.get("/audit/access.pdf")
def access_pdf(request: Request, ctx: Ctx, who: AccessAuditor,
               person: Annotated[str, Query(pattern=r"^[0-9a-f]{24}$")]) -> Response:
    """The per-person access report as PDF (for a data-subject request)."""
    id_no = access.find_person(ctx, person)
    response = reports.access_report_response(ctx, access.person_access(ctx, id_no), who)
    tracking.track(ctx, who, [id_no], "report", "access report (PDF)")
    return response


@router.get("/rules")
def rules_page(request: Request, ctx: Ctx,
               who: RulesViewer) -> Response:
    """Every policy with its conditions, amounts and parameter history."""
    return render(request, "rules.html", {"view": rules.rules_view(ctx), "nav": "rules"})


# ------------------------------------------------------------------------------------ admin


@router.get("/admin/users")
def users_page(request: Request, ctx: Ctx,
               who: Admin) -> Response:
    """Users, roles, grants and API tokens."""
    return render(request, "users.html", {"users": ctx.accounts.users(),
                                          "tokens": ctx.accounts.tokens(), "nav": "users",
                                          "roles": list(ROLE_LABELS), "new_token": None})


@router.post("/admin/users", dependencies=CSRF)
def create_user(
    request: Request,
    ctx: Ctx,
    who: Admin,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    pii: Annotated[bool, Form()] = False,
) -> Response:
    """Create a user."""
    return _do(request, "/admin/users",
               lambda: ctx.accounts.create_user(username, password, roles or [],
                                                display_name=display_name, pii=pii,
                                                by=who.username),
               f"已创建用户 / user {username} created")  # fmt: skip


@router.post("/admin/users/{username}", dependencies=CSRF)
def update_user(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Path(max_length=64)],
    who: Admin,
    roles: Annotated[list[str] | None, Form()] = None,
    pii: Annotated[bool, Form()] = False,
    active: Annotated[bool, Form()] = False,
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Change a user's roles, pii grant, active flag or password."""
    return _do(request, "/admin/users",
               lambda: ctx.accounts.update_user(username, by=who.username, roles=roles or [],
                                                pii=pii, active=active,
                                                password=password or None),
               f"已更新用户 / user {username} updated")  # fmt: skip


@router.post("/admin/tokens", dependencies=CSRF)
def create_token(
    request: Request,
    ctx: Ctx,
    who: Admin,
    username: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=128)] = "",
    days: Annotated[int, Form(ge=1, le=3650)] = 365,
) -> Response:
    """Create an API token and show it once."""
    try:
        token, _row = ctx.accounts.create_token(username, name, by=who.username, days=days)
    except (InvalidInput, NotFound) as exc:
        return _redirect(request, "/admin/users", "error", str(exc))
    return render(request, "users.html", {"users": ctx.accounts.users(),
                                          "tokens": ctx.accounts.tokens(), "nav": "users",
                                          "roles": list(ROLE_LABELS), "new_token": token})


@router.post("/admin/tokens/{token_id}/revoke", dependencies=CSRF)
def revoke_token(request: Request, ctx: Ctx, token_id: Id,
                 who: Admin) -> Response:
    """Revoke an API token."""
    return _do(request, "/admin/users", lambda: ctx.accounts.revoke_token(token_id,
                                                                         by=who.username),
               "已吊销令牌 / token revoked")  # fmt: skip


@router.get("/admin/signin-locks")
def locks_page(request: Request, ctx: Ctx,
               who: Admin) -> Response:
    """Accounts and addresses whose sign-in is backing off, each with a lift button."""
    return render(request, "signin_locks.html", {"locks": ctx.accounts.locks(), "nav": "users",
                                                 "settings": ctx.settings})  # fmt: skip


@router.post("/admin/signin-locks/lift", dependencies=CSRF)
def lift_lock(
    request: Request,
    ctx: Ctx,
    who: Admin,
    kind: Annotated[str, Form(pattern=r"^(account|address)$")] = "account",
    key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Lift one back-off (audited)."""
    def go() -> bool:
        if not ctx.accounts.lift(kind, key, by=who.username):
            raise NotFound(f"no sign-in back-off of {kind} {key!r} to lift")
        return True

    return _do(request, "/admin/signin-locks", go, f"已解除 / sign-in of {kind} {key} unlocked")
