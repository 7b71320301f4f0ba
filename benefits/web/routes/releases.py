"""Pages of rule pack releases: list and submit, one release with approve / reject (four
eyes), its reports, emergency rollback. The rules live in :mod:`benefits.ledger.packs`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import Response

from benefits.ledger import packs
from benefits.ledger.errors import LedgerError
from benefits.web.auth import Principal
from benefits.web.deps import Ctx, Forbidden, Id, check_csrf, require
from benefits.web.routes.pages import _do, _redirect
from benefits.web.services import releases as service
from benefits.web.templating import render

RulesViewer = Annotated[Principal, Depends(require("rules.view"))]
Submitter = Annotated[Principal, Depends(require("rules.submit"))]
Decider = Annotated[Principal, Depends(require("rules.decide"))]
RollbackRight = Annotated[Principal, Depends(require("rules.rollback"))]
Text = Annotated[str, Form(max_length=2000)]
CSRF = [Depends(check_csrf)]

router = APIRouter(include_in_schema=False)


@router.get("/releases")
def releases_page(request: Request, ctx: Ctx, who: RulesViewer) -> Response:
    """Every release; the submit form and the rollback button for those who may."""
    return render(request, "releases.html", {"view": service.releases_view(ctx), "nav": "releases"})


@router.get("/releases/{release_id}")
def release_page(request: Request, ctx: Ctx, release_id: Id, who: RulesViewer) -> Response:
    """One release: state, what changes, the reports, approve / reject."""
    return render(
        request,
        "release.html",
        {"view": service.release_view(ctx, release_id, who), "nav": "releases"},
    )


@router.get("/releases/{release_id}/reports/{report_id}")
def release_report(
    ctx: Ctx, release_id: Id, report_id: Annotated[int, Path(ge=1)], who: RulesViewer
) -> Response:
    """An attached report, downloaded (never rendered in the app's origin)."""
    rep = packs.get_report(ctx.db, release_id, report_id)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in rep.name)
    return Response(
        rep.content,
        media_type=rep.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{safe}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/releases", dependencies=CSRF)
async def submit_release(
    request: Request,
    ctx: Ctx,
    who: Submitter,
    pack: Annotated[UploadFile, File()],
    note: Text = "",
    diff_report: Annotated[UploadFile | None, File()] = None,
    whatif_report: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Submit a zipped pack folder, with the diff and what-if reports for the approver."""
    reports = []
    for kind, up in (("diff", diff_report), ("whatif", whatif_report)):
        if up is not None and up.filename:
            data = await up.read(packs.MAX_REPORT_BYTES + 1)
            reports.append(
                packs.Report(
                    kind,
                    up.filename.rsplit("/", 1)[-1],
                    data,
                    f"file {up.filename} uploaded by {who.username}",
                )
            )
    data = await pack.read(service.MAX_ZIP_BYTES + 1)
    try:
        r = service.submit_zip(ctx, data, who.username, note, reports)
    except LedgerError as exc:
        return _redirect(request, "/releases", "error", str(exc))
    return _redirect(
        request,
        f"/releases/{r.id}",
        "ok",
        f"已提交 release {r.id}，待另一人审核 / submitted: another person approves it",
    )


@router.post("/releases/{release_id}/approve", dependencies=CSRF)
def approve_release(request: Request, ctx: Ctx, release_id: Id, who: Decider) -> Response:
    """submitted → approved, in force (never by its submitter: the ledger refuses)."""
    return _do(
        request,
        f"/releases/{release_id}",
        lambda: ctx.ledger.approve_pack(release_id, who.username),
        "已审核通过，现行生效 / approved: in force now",
    )


@router.post("/releases/{release_id}/reject", dependencies=CSRF)
def reject_release(
    request: Request, ctx: Ctx, release_id: Id, who: RulesViewer, reason: Text = ""
) -> Response:
    """Reject (an approver) or withdraw (its submitter) a submitted release, with a reason."""
    release = ctx.ledger.pack_release(release_id)
    if not (who.can("rules.decide") or who.username == release.submitted_by):
        raise Forbidden(
            "只有审核人或提交人可以退回 / only an approver or its submitter may reject it"
        )
    return _do(
        request,
        f"/releases/{release_id}",
        lambda: ctx.ledger.reject_pack(release_id, who.username, reason),
        "已退回 / rejected",
    )


@router.post("/releases/rollback", dependencies=CSRF)
def rollback_release(request: Request, ctx: Ctx, who: RollbackRight, reason: Text = "") -> Response:
    """Emergency: the previous approved release is in force again."""
    return _do(
        request,
        "/releases",
        lambda: ctx.ledger.rollback_pack(who.username, reason),
        "已回退到上一版本 / rolled back to the previous release",
    )
