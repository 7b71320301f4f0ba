"""Export requests, pages and API (issue 14, output limits): request, approve or refuse,
download once. The rules live in :mod:`benefits.web.services.exports`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from benefits.ledger.errors import LedgerError
from benefits.web.auth import Principal
from benefits.web.deps import FLASH_COOKIE, Ctx, Id, api_require, check_csrf, flash_cookie
from benefits.web.deps import require as page_require
from benefits.web.routes.api import BODY_ERRORS, ERRORS, LIST_ERRORS, ok
from benefits.web.services import exports as service
from benefits.web.templating import render

Requester = Annotated[Principal, Depends(page_require("exports.request"))]
Approver = Annotated[Principal, Depends(page_require("exports.approve"))]
ApiRequester = Annotated[Principal, Depends(api_require("exports.request"))]
ApiApprover = Annotated[Principal, Depends(api_require("exports.approve"))]

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["v1"])
CSRF = [Depends(check_csrf)]
Short = Annotated[str, Form(max_length=128)]


def _redirect(request: Request, kind: str, message: str) -> Response:
    response = RedirectResponse("/exports", status_code=303)
    response.set_cookie(FLASH_COOKIE, flash_cookie(request, kind, message), max_age=120,
                        httponly=True, samesite="lax", path="/",
                        secure=bool(request.app.state.ctx.settings.secure_cookies)
                        or request.url.scheme == "https")  # fmt: skip
    return response


def _file(name: str, media: str, data: bytes) -> Response:
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ------------------------------------------------------------------------------------ pages


@pages.get("/exports")
def exports_page(request: Request, ctx: Ctx, who: Requester,
                 batch: int | None = None) -> Response:  # fmt: skip
    """The user's export requests, the others' awaiting a decision, and the request form."""
    return render(request, "exports.html", {"nav": "exports",
                                            "v": service.list_requests(ctx, who),
                                            "batch_id": batch, "query": {}})  # fmt: skip


@pages.post("/exports", dependencies=CSRF)
def exports_request(request: Request, ctx: Ctx, who: Requester,
                    batch_id: Short = "", kind: Short = "batch_items", fmt: Short = "csv",
                    reveal: Short = "", purpose: Annotated[str, Form(max_length=500)] = "",
                    policy: Short = "", community: Short = "") -> Response:  # fmt: skip
    """Request an export (approved at once unless bulk)."""
    try:
        req = service.request_export(
            ctx, who, kind, {"batch_id": batch_id, "policy": policy, "community": community},
            fmt, reveal=reveal == "true", purpose=purpose,
        )  # fmt: skip
    except LedgerError as exc:
        return _redirect(request, "error", str(exc))
    done = ("已提交，等待另一人审批 / requested: another user must approve it" if req.bulk
            else "可以下载 / ready to download")  # fmt: skip
    return _redirect(request, "ok", f"导出 #{req.id}: {done}")


@pages.post("/exports/{request_id}/approve", dependencies=CSRF)
def exports_approve(request: Request, ctx: Ctx, request_id: Id, who: Approver) -> Response:
    """Approve another user's bulk export."""
    try:
        service.decide(ctx, who, request_id, approve=True)
    except LedgerError as exc:
        return _redirect(request, "error", str(exc))
    return _redirect(request, "ok", f"导出 #{request_id} 已批准 / approved")


@pages.post("/exports/{request_id}/refuse", dependencies=CSRF)
def exports_refuse(request: Request, ctx: Ctx, request_id: Id, who: Approver,
                   note: Annotated[str, Form(max_length=500)] = "") -> Response:  # fmt: skip
    """Refuse another user's bulk export, with a reason."""
    try:
        service.decide(ctx, who, request_id, approve=False, note=note)
    except LedgerError as exc:
        return _redirect(request, "error", str(exc))
    return _redirect(request, "ok", f"导出 #{request_id} 已拒绝 / refused")


@pages.get("/exports/{request_id}/download")
def exports_download(ctx: Ctx, request_id: Id, who: Requester) -> Response:
    """The file of an approved export, once, for its requester."""
    return _file(*service.download(ctx, who, request_id))


# -------------------------------------------------------------------------------------- API


class ExportIn(BaseModel):
    """An export request: which batch's items, filtered, in which format, why."""

    model_config = ConfigDict(strict=True, extra="forbid")
    kind: Literal["batch_items"] = "batch_items"
    batch_id: int = Field(ge=1, le=2**31 - 1)
    format: Literal["csv", "parquet"] = "csv"
    reveal: bool = False
    purpose: str = Field(default="", max_length=500)
    policy: str = Field(default="", max_length=64)
    community: str = Field(default="", max_length=128)
    held: Literal["", "yes", "no"] = ""

    @field_validator("batch_id", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        """JSON Schema counts 3.0 as an integer; a string or a boolean stays refused."""
        return int(value) if isinstance(value, float) and value.is_integer() else value


class DecisionIn(BaseModel):
    """Why an export is refused."""

    model_config = ConfigDict(strict=True, extra="forbid")
    note: str = Field(min_length=1, max_length=500, pattern=r"\S")


@api.get("/exports", responses=ERRORS, summary="My export requests and those awaiting my decision")
def api_list(ctx: Ctx, who: ApiRequester) -> JSONResponse:
    return ok(service.list_requests(ctx, who))


@api.post("/exports", status_code=201, responses={**BODY_ERRORS, **LIST_ERRORS},
          summary="Request a file export (bulk: a purpose and another user's approval)")
def api_request(ctx: Ctx, body: ExportIn, who: ApiRequester) -> JSONResponse:
    params = {"batch_id": body.batch_id, "policy": body.policy, "community": body.community,
              "held": body.held}  # fmt: skip
    req = service.request_export(ctx, who, body.kind, params, body.format, reveal=body.reveal,
                                 purpose=body.purpose)  # fmt: skip
    return ok(service.request_view(ctx, req, who), 201)


@api.post("/exports/{request_id}/approve", responses=ERRORS,
          summary="Approve another user's bulk export")
def api_approve(ctx: Ctx, request_id: Id, who: ApiApprover) -> JSONResponse:
    return ok(service.request_view(ctx, service.decide(ctx, who, request_id, approve=True), who))


@api.post("/exports/{request_id}/refuse", responses=BODY_ERRORS,
          summary="Refuse another user's bulk export")
def api_refuse(ctx: Ctx, request_id: Id, body: DecisionIn, who: ApiApprover) -> JSONResponse:
    req = service.decide(ctx, who, request_id, approve=False, note=body.note)
    return ok(service.request_view(ctx, req, who))


FILE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "the file: CSV (watermark on its first line) or Parquet (watermark "
                         "in its metadata)",
          "content": {"text/csv": {"schema": {"type": "string"}},
                      "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                                    "format": "binary"}}}},
}  # fmt: skip


@api.get("/exports/{request_id}/download", responses={**FILE_RESPONSE, **LIST_ERRORS},
         response_class=Response, summary="The approved file, once, for its requester")
def api_download(ctx: Ctx, request_id: Id, who: ApiRequester) -> Response:
    return _file(*service.download(ctx, who, request_id))
