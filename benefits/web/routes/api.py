"""The JSON API under ``/api/v1``: the same operations as the pages, for jobs and systems.

Money is a decimal string ("1301.00"), never a float. Personal data is masked unless the
caller holds the ``pii`` grant and asks with ``reveal=true`` (which is audited).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from benefits import __version__
from benefits.accountno import ACCOUNT_NO_PATTERN
from benefits.ledger.errors import NotFound
from benefits.months import DEFAULT_HORIZON, ENV_HORIZON
from benefits.web import tracking
from benefits.web.auth import Principal
from benefits.web.context import WebContext
from benefits.web.deps import (
    MONTH,
    AlertQuery,
    Community,
    Ctx,
    Cursor,
    Forbidden,
    Id,
    Month,
    PageNo,
    api_principal,
    api_require,
    jsonable,
)
from benefits.web.services import access, auditlog, dashboard, persons, rules
from benefits.web.services import alerts as alert_service
from benefits.web.services import batches as batch_service
from benefits.web.services import exports as export_service
from benefits.web.services import runs as run_service

# Who may call a route: the signed-in user holding the permission (403 otherwise).
DashboardViewer = Annotated[Principal, Depends(api_require("dashboard.view"))]
RunsViewer = Annotated[Principal, Depends(api_require("runs.view"))]
SweepRunner = Annotated[Principal, Depends(api_require("sweeps.run"))]
Preparer = Annotated[Principal, Depends(api_require("batches.prepare"))]
BatchViewer = Annotated[Principal, Depends(api_require("batches.view"))]
Decider = Annotated[Principal, Depends(api_require("batches.decide"))]
PersonViewer = Annotated[Principal, Depends(api_require("persons.view"))]
AlertViewer = Annotated[Principal, Depends(api_require("alerts.view"))]
AlertWorker = Annotated[Principal, Depends(api_require("alerts.work"))]
AuditViewer = Annotated[Principal, Depends(api_require("audit.view"))]
AccessAuditor = Annotated[Principal, Depends(api_require("access.report"))]
RulesViewer = Annotated[Principal, Depends(api_require("rules.view"))]
Admin = Annotated[Principal, Depends(api_require("users.manage"))]

router = APIRouter(prefix="/api/v1", tags=["v1"])

Ref = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="person reference")]
USERNAME = r"^[a-z0-9._-]+$"
TEXT = r"\S"  # at least one character that is not white space


class ErrorItem(BaseModel):
    """One problem with a request: where (``["body", "month"]``) and what."""

    loc: list[str]
    msg: str


class ErrorOut(BaseModel):
    """The body of every error answer: a message, or a list of problems (invalid input)."""

    detail: str | list[ErrorItem]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "model": ErrorOut}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("not signed in / no valid token"),
    403: _error("not allowed (role, pii grant, four eyes, CSRF)"),
    404: _error("not found"),
    409: _error("not possible in the current state (a conflict with what exists)"),
    422: _error("invalid input: the body, path or query does not match this schema"),
}
# Lists and files count against the user's daily rows (output limits, benefits.exports).
LIST_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 429: _error("the user's rows for the day are used up (output limits)"),
}
# Operations with a JSON body: a body that cannot be read as JSON text is a bad request.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 400: _error("the body cannot be read (not UTF-8 JSON text)"),
}


class Strict(BaseModel):
    """Request bodies: exact JSON types (no 0 for false, no "1" for 1) and no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class SweepIn(Strict):
    month: str = Field(pattern=MONTH, examples=["2025-01"],
                       description="a month this rule pack can sweep (see the pattern)")


class SweepOut(BaseModel):
    run_id: int
    month: str
    already: bool
    payable_rows: int
    payable_total: str


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000, pattern=TEXT)


class ReleaseIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)
    # The ledger checks it (one rule and one message on every path); the schema states the rule.
    account: str | None = Field(default=None, max_length=64,
                                json_schema_extra={"pattern": ACCOUNT_NO_PATTERN})


Note = Annotated[str | None, Field(max_length=2000)]


class AssignIn(Strict):
    """Assign the alert to an active user (a non-empty user name)."""

    action: Literal["assign"]
    assignee: str = Field(min_length=2, max_length=64, pattern=USERNAME)
    note: Note = None


class AcknowledgeIn(Strict):
    action: Literal["acknowledge"]
    note: Note = None


class ResolveIn(Strict):
    """Resolving needs a note saying what was done."""

    action: Literal["resolve"]
    note: str = Field(min_length=1, max_length=2000, pattern=TEXT)


class ReopenIn(Strict):
    action: Literal["reopen"]
    note: Note = None


AlertActionIn = Annotated[
    AssignIn | AcknowledgeIn | ResolveIn | ReopenIn, Body(discriminator="action")
]


class LookupIn(Strict):
    id_no: str = Field(min_length=18, max_length=18, pattern=r"^[0-9]{17}[0-9Xx]$")


Role = Literal["officer", "approver", "auditor", "admin", "policy"]


class UserIn(Strict):
    username: str = Field(min_length=2, max_length=64, pattern=USERNAME)
    password: str = Field(min_length=10, max_length=256)
    roles: list[Role] = Field(default_factory=list, max_length=4)
    display_name: str = Field(default="", max_length=128)
    pii: bool = False


class UserUpdateIn(Strict):
    roles: list[Role] | None = Field(default=None, max_length=4)
    pii: bool | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=256)


class LiftIn(Strict):
    """Lift the back-off of an account (a user name) or a client address."""

    kind: Literal["account", "address"]
    key: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z._:\-]+$")


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=128, pattern=TEXT)
    days: int = Field(default=365, ge=1, le=3650)

    @field_validator("days", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        """JSON Schema counts 30.0 as an integer; a string or a boolean stays refused."""
        return int(value) if isinstance(value, float) and value.is_integer() else value


def ok(data: Any, status: int = 200) -> JSONResponse:
    """A JSON response with exact money."""
    return JSONResponse(jsonable(data), status_code=status)


def _batch(batch: Any) -> dict[str, Any]:
    return {
        "id": batch.id, "month": batch.month, "run_id": batch.run_id, "status": batch.status,
        "item_count": batch.item_count, "total": batch.total,
        "created_by": batch.created_by, "created_at": batch.created_at,
        "submitted_by": batch.submitted_by, "submitted_at": batch.submitted_at,
        "approved_by": batch.approved_by, "approved_at": batch.approved_at,
        "rejected_by": batch.rejected_by, "reject_reason": batch.reject_reason,
    }  # fmt: skip


def _user(u: Any) -> dict[str, Any]:
    return {"username": u.username, "display_name": u.display_name, "roles": u.role_list,
            "pii": u.pii, "active": u.active, "created_at": u.created_at}  # fmt: skip


def _recorded(ctx: WebContext, month: str | None) -> None:
    """A month asked for must have a recorded run: never answer with another month's data."""
    if month is not None and run_service.latest_run(ctx, month) is None:
        recorded = ", ".join(run_service.months(ctx)[:12]) or "none"
        raise NotFound(f"no sweep of {month} is recorded (months recorded: {recorded})")


SCHEMA_URL = "/api/v1/openapi.json"


def install_openapi(app: FastAPI) -> None:
    """Serve the OpenAPI schema with the sweep body's month pattern narrowed to the months the
    rule pack can sweep now (regenerated when that range moves with the calendar)."""
    generate = app.openapi
    cache: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        span = run_service.sweep_months(app.state.ctx)
        if span.text not in cache:
            app.openapi_schema = None
            schema = copy.deepcopy(generate())
            month = schema["components"]["schemas"]["SweepIn"]["properties"]["month"]
            month["pattern"] = span.pattern()
            month["description"] = (f"a month this rule pack can sweep: {span.text} (its first "
                                    f"month to the current month + {ENV_HORIZON}, default "
                                    f"{DEFAULT_HORIZON})")  # fmt: skip
            cache.clear()
            cache[span.text] = schema
        app.openapi_schema = cache[span.text]
        return cache[span.text]

    app.openapi = openapi  # type: ignore[method-assign]


# ----------------------------------------------------------------------------------- root


class RootOut(BaseModel):
    name: str
    version: str
    openapi: str
    authentication: str
    errors: str


@router.get("", response_model=RootOut, summary="Where the schema is; how to authenticate")
def root() -> JSONResponse:
    return ok({"name": "benefits JSON API v1", "version": __version__, "openapi": SCHEMA_URL,
               "authentication": "Authorization: Bearer bnf_… (an API token made by an admin)",
               "errors": 'every error answers {"detail": "message"} or, for invalid input, '
                         '{"detail": [{"loc": [...], "msg": "..."}]}'})  # fmt: skip


# ------------------------------------------------------------------------------------- me


@router.get("/me", responses=ERRORS, summary="Who am I: user, roles, pii grant")
def me(who: Annotated[Principal, Depends(api_principal)]) -> JSONResponse:
    return ok({"username": who.username, "display_name": who.display_name,
               "roles": list(who.roles), "pii": who.pii, "via": who.via})  # fmt: skip


@router.get("/dashboard", responses=ERRORS, summary="Monthly totals, holds, alerts, changes")
def get_dashboard(ctx: Ctx, who: DashboardViewer,
                  month: Month = None) -> JSONResponse:
    _recorded(ctx, month)
    view = dashboard.dashboard(ctx, month)
    view.pop("batches", None)
    live = view.pop("live_batch", None)
    view["live_batch"] = _batch(live) if live is not None else None
    return ok(view)


# ------------------------------------------------------------------------------------ runs


@router.get("/runs", responses=ERRORS, summary="Sweep runs, newest first")
def list_runs(ctx: Ctx,
              who: RunsViewer) -> JSONResponse:
    return ok({"runs": run_service.run_rows(ctx)})


@router.get("/runs/{run_id}", responses=ERRORS, summary="One run: inputs, hashes, counts")
def get_run(ctx: Ctx, run_id: Id,
            who: RunsViewer) -> JSONResponse:
    return ok(run_service.run_detail(ctx, run_id))


@router.post("/sweeps", status_code=201, response_model=SweepOut,
             responses={**BODY_ERRORS,
                        200: {"model": SweepOut, "description": "this data was already swept "
                              "and recorded as `run_id` (`already` is true): nothing new"},
                        201: {"description": "swept and recorded as a new run"},
                        422: _error("invalid input, or a month outside the months this rule "
                                    "pack can sweep (the pack's first month to the horizon)")},
             summary="Sweep a month on the data folder and record the run")
def post_sweep(ctx: Ctx, body: SweepIn,
               who: SweepRunner) -> JSONResponse:
    result = run_service.start_sweep(ctx, body.month, who.username)
    return ok({"run_id": result.run_id, "month": result.month, "already": result.already,
               "reused": result.reused,  # an identical run was reused: nothing swept again
               "payable_rows": result.payable_rows, "payable_total": result.payable_total},
              status=200 if result.already else 201)  # fmt: skip


@router.post("/runs/{run_id}/batches", responses=ERRORS, status_code=201,
             summary="Create a draft batch from a run")
def post_batch(ctx: Ctx, run_id: Id,
               who: Preparer) -> JSONResponse:
    return ok(_batch(ctx.ledger.create_batch(run_id, who.username)), status=201)


# --------------------------------------------------------------------------------- batches


@router.get("/batches", responses=ERRORS, summary="Batches, newest first")
def list_batches(
    ctx: Ctx,
    who: BatchViewer,
    month: Month = None,
    status: Annotated[
        str | None, Query(pattern=r"^(draft|submitted|approved|exported|reconciled|rejected)$")
    ] = None,
) -> JSONResponse:
    return ok({"batches": [_batch(b) for b in batch_service.batch_rows(ctx, month, status)]})


@router.get("/batches/{batch_id}", responses=ERRORS, summary="A batch with its totals")
def get_batch(ctx: Ctx, batch_id: Id,
              who: BatchViewer) -> JSONResponse:
    detail = ctx.ledger.batch(batch_id)
    return ok({**batch_service.detail_view(detail, batch_service.policy_numbers(ctx)),
               "rights": batch_service.four_eyes(detail.batch, who)})


@router.get("/batches/{batch_id}/items", responses=LIST_ERRORS,
            summary="One page of a batch's items (masked), with filters")
def get_items(
    ctx: Ctx,
    batch_id: Id,
    who: BatchViewer,
    policy: Annotated[str, Query(max_length=64)] = "",
    community: Community = "",
    held: Annotated[str, Query(pattern=r"^(|yes|no)$")] = "",
    kind: Annotated[str, Query(pattern=r"^(|payment|adjustment|arrears|recovery|reissue)$")] = "",
    page: PageNo = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Cursor = None,
    before: Cursor = None,
) -> JSONResponse:
    flt = batch_service.ItemFilter(policy, community, held, kind)
    view = batch_service.batch_page(ctx, batch_id, flt, page, per_page, totals=False,
                                    after=after, before=before)  # fmt: skip
    export_service.take_rows(ctx, who, len(view["items"]))  # the daily rows (output limits)
    tracking.track_listed(
        ctx,
        who,
        view["items"],
        "batch",
        "batch items (API)",
        reference=f"batch {batch_id} page {view['page']}",
    )
    return ok({"batch_id": batch_id, "count": view["count"], "amount": view["amount"],
               "page": view["page"], "pages": view["pages"], "per_page": per_page,
               "next_after": view["next_after"], "prev_before": view["prev_before"],
               "items": view["items"]})  # fmt: skip


@router.post("/batches/{batch_id}/submit", responses=ERRORS, summary="draft → submitted")
def submit(ctx: Ctx, batch_id: Id,
           who: Preparer) -> JSONResponse:
    return ok(_batch(ctx.ledger.submit(batch_id, who.username)))


@router.post("/batches/{batch_id}/approve", responses=ERRORS,
             summary="submitted → approved, by someone who did not prepare it (four eyes)")
def approve(ctx: Ctx, batch_id: Id,
            who: Decider) -> JSONResponse:
    return ok(_batch(ctx.ledger.approve(batch_id, who.username)))


@router.post("/batches/{batch_id}/reject", responses=BODY_ERRORS, summary="Reject with a reason")
def reject(ctx: Ctx, batch_id: Id, body: ReasonIn,
           who: Decider) -> JSONResponse:
    return ok(_batch(ctx.ledger.reject(batch_id, who.username, body.reason)))


@router.post("/items/{item_id}/release", responses=BODY_ERRORS,
             summary="Release a held item with a reason (and a corrected account)")
def release(ctx: Ctx, item_id: Id, body: ReleaseIn,
            who: Preparer) -> JSONResponse:
    item = ctx.ledger.release(item_id, who.username, body.reason, body.account)
    return ok(batch_service.item_view(item, ctx.directory.ref(item.id_no)))


# --------------------------------------------------------------------------------- persons


@router.post("/persons/lookup", responses=BODY_ERRORS,
             summary="The reference of a resident ID (IDs never travel in URLs)")
def lookup(ctx: Ctx, body: LookupIn,
           who: PersonViewer) -> JSONResponse:
    ctx.know_all()
    return ok({"ref": ctx.directory.ref(body.id_no.upper())})


@router.get("/persons/{ref}/explanation", responses=ERRORS,
            summary="Every policy considered for the person and month, and their payments")
def explanation(ctx: Ctx, ref: Ref,
                who: PersonViewer,
                month: Month = None, reveal: bool = False,
                reason: Annotated[str, Query(max_length=200,
                                             description="why the data is revealed")] = "",
                ) -> JSONResponse:
    _recorded(ctx, month)
    id_no = ctx.directory.resolve(ref)
    if id_no is None:
        ctx.know_all()
        id_no = ctx.directory.resolve(ref)
    if id_no is None:
        raise NotFound("no person with this reference")
    if reveal and not who.pii:
        raise Forbidden(f"{who.username} has no pii grant: personal data stays masked")
    view = persons.explanation(ctx, id_no, month, reveal=reveal)
    export_service.take_rows(ctx, who, 1)  # one person: one of the daily rows
    tracking.track(
        ctx,
        who,
        [id_no],
        "person",
        "explanation (API)",
        shown=reveal,
        reason=reason,
        month=month,
    )
    return ok(view)


# ---------------------------------------------------------------------------------- alerts


@router.get("/alerts", responses=LIST_ERRORS, summary="The alerts inbox, filtered and paged")
def list_alerts(ctx: Ctx, who: AlertViewer, flt: AlertQuery, page: PageNo = 1) -> JSONResponse:
    if flt.month:
        run_service.run_for_month(ctx, flt.month)
    view = alert_service.list_alerts(ctx, flt, page)
    export_service.take_rows(ctx, who, len(view["items"]))  # the daily rows (output limits)
    tracking.track_listed(
        ctx,
        who,
        view["items"],
        "alerts",
        "alerts inbox (API)",
        reference=f"alerts {flt.month or ''} page {page}",
        month=flt.month,
    )
    return ok(view)


@router.get("/alerts/{alert_id}", responses=ERRORS, summary="One alert with its history")
def get_alert(ctx: Ctx, alert_id: Id,
              who: AlertViewer) -> JSONResponse:
    alert, events = alert_service.get_alert(ctx, alert_id)
    export_service.take_rows(ctx, who, 1)  # one person: one of the daily rows
    tracking.track(ctx, who, [alert.id_no], "alert", f"alert {alert_id} (API)")
    return ok({**alert_service.alert_view(alert, ctx.directory.ref(alert.id_no)),
               "events": [{"at": e.at, "actor": e.actor, "action": e.action,
                           "assignee": e.assignee, "note": e.note} for e in events]})  # fmt: skip


@router.post("/alerts/{alert_id}/actions", responses=BODY_ERRORS,
             summary="Assign, acknowledge, resolve (note required) or reopen")
def alert_action(ctx: Ctx, alert_id: Id, body: AlertActionIn,
                 who: AlertWorker) -> JSONResponse:
    assignee = body.assignee if isinstance(body, AssignIn) else None
    alert = alert_service.act(ctx, alert_id, body.action, who.username, note=body.note,
                              assignee=assignee)  # fmt: skip
    return ok(alert_service.alert_view(alert, ctx.directory.ref(alert.id_no)))


# ------------------------------------------------------------------------------ audit, rules


@router.get("/audit", responses=ERRORS, summary="Audit entries (newest first) and chain status")
def get_audit(
    ctx: Ctx,
    who: AuditViewer,
    page: PageNo = 1,
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=64)] = "",
) -> JSONResponse:
    view = auditlog.audit_page(ctx, page, 50, action, actor)
    result = view.pop("verify")
    view["verify"] = {"ok": result.ok, "entries": result.entries, "head_hash": result.head_hash,
                      "broken_seq": result.broken_seq, "problem": result.problem}  # fmt: skip
    return ok(view)


@router.get("/audit/verify", responses=ERRORS, summary="Recompute the audit chain now")
def verify(ctx: Ctx,
           who: AuditViewer) -> JSONResponse:
    result = ctx.ledger.verify_audit()
    return ok({"ok": result.ok, "entries": result.entries, "head_hash": result.head_hash,
               "broken_seq": result.broken_seq, "problem": result.problem})  # fmt: skip


ACCESS_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 403: _error("not an auditor or admin"),
}


@router.get("/audit/access/persons/{ref}",
            responses={**ACCESS_ERRORS, 404: _error("no person with this reference")},
            summary="Who saw one person's data (auditor, admin; the reference from "
                    "POST /persons/lookup)")
def get_person_access(ctx: Ctx, ref: Ref, who: AccessAuditor) -> JSONResponse:
    id_no = access.find_person(ctx, ref)
    view = access.person_access(ctx, id_no)
    export_service.take_rows(ctx, who, 1)  # one person: one of the daily rows
    tracking.track(ctx, who, [id_no], "report", "access report (API)")
    return ok(view)


@router.get("/audit/access/users/{username}",
            responses={**ACCESS_ERRORS, 404: _error("no such user")},
            summary="Whose data one user saw (auditor, admin)")
def get_user_access(ctx: Ctx, username: Annotated[str, Path(max_length=64)],
                    who: AccessAuditor) -> JSONResponse:
    view = access.user_access(ctx, username)
    export_service.take_rows(ctx, who, len(view["persons"]))  # the persons listed
    return ok(view)


@router.get("/rules", responses=ERRORS, summary="The rule pack: policies, parameters, alerts")
def get_rules(ctx: Ctx,
              who: RulesViewer) -> JSONResponse:
    return ok(rules.rules_view(ctx))


# ----------------------------------------------------------------------------------- users


@router.get("/users", responses=ERRORS, summary="Users with roles and grants (admin)")
def list_users(ctx: Ctx,
               who: Admin) -> JSONResponse:
    return ok({"users": [_user(u) for u in ctx.accounts.users()]})


@router.post("/users", responses=BODY_ERRORS, status_code=201, summary="Create a user (admin)")
def create_user(ctx: Ctx, body: UserIn,
                who: Admin) -> JSONResponse:
    user = ctx.accounts.create_user(body.username, body.password, body.roles,
                                    display_name=body.display_name, pii=body.pii,
                                    by=who.username)  # fmt: skip
    return ok(_user(user), status=201)


@router.post("/users/{username}", responses=BODY_ERRORS,
             summary="Change roles, grant, state (admin)")
def update_user(ctx: Ctx, username: Annotated[str, Path(max_length=64)], body: UserUpdateIn,
                who: Admin) -> JSONResponse:
    user = ctx.accounts.update_user(username, by=who.username, roles=body.roles, pii=body.pii,
                                    active=body.active, password=body.password)  # fmt: skip
    return ok(_user(user))


@router.post("/users/{username}/tokens", responses=BODY_ERRORS, status_code=201,
             summary="Create an API token for a user; the token is shown once (admin)")
def create_token(ctx: Ctx, username: Annotated[str, Path(max_length=64)], body: TokenIn,
                 who: Admin) -> JSONResponse:
    token, row = ctx.accounts.create_token(username, body.name, by=who.username,
                                           days=body.days)  # fmt: skip
    return ok({"token": token, "name": row.name, "expires_at": row.expires_at}, status=201)


# ------------------------------------------------------------------------- sign-in back-offs


def _lock(b: Any) -> dict[str, Any]:
    return {"kind": b.kind, "key": b.key, "failures": b.failures, "until": b.until,
            "wait_seconds": b.wait_seconds}  # fmt: skip


@router.get("/signin-locks", responses=ERRORS,
            summary="Accounts and addresses whose sign-in is backing off (admin)")
def list_locks(ctx: Ctx,
               who: Admin) -> JSONResponse:
    return ok({"locks": [_lock(b) for b in ctx.accounts.locks()]})


@router.post("/signin-locks/lift", responses=BODY_ERRORS,
             summary="Lift the sign-in back-off of an account or address (admin, audited)")
def lift_lock(ctx: Ctx, body: LiftIn,
              who: Admin) -> JSONResponse:
    if not ctx.accounts.lift(body.kind, body.key, by=who.username):
        raise NotFound(f"no sign-in back-off of {body.kind} {body.key!r} to lift")
    return ok({"lifted": True, "kind": body.kind, "key": body.key})
