"""The what-if page (issue 15): policy staff price a proposed pack or parameter values on one
month's records. GET shows the form; POST runs it (audited) and shows the result on the page
or as the PDF report (through the export rules)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from benefits.ledger.errors import InvalidInput
from benefits.web import tracking
from benefits.web.auth import Principal
from benefits.web.deps import Ctx, check_csrf, require
from benefits.web.services import exports
from benefits.web.services import whatif as service
from benefits.web.templating import render

Pricer = Annotated[Principal, Depends(require("whatif.run"))]
Field = Annotated[str, Form(max_length=2000)]

router = APIRouter(include_in_schema=False)


@router.get("/whatif")
def whatif_form(request: Request, ctx: Ctx, who: Pricer) -> Response:
    """The form: month, and a proposed pack or parameter values with their effective date."""
    return render(request, "whatif.html", {"form": service.form_view(ctx), "nav": "whatif",
                                           "result": None, "asked": {}})  # fmt: skip


@router.post("/whatif", dependencies=[Depends(check_csrf)])
def whatif_run(request: Request, ctx: Ctx, who: Pricer,
               month: Annotated[str, Form(max_length=7)] = "",
               proposal: Annotated[str, Form(max_length=64)] = "",
               values: Field = "", start: Annotated[str, Form(max_length=10)] = "",
               output: Annotated[str, Form(max_length=8)] = "page") -> Response:  # fmt: skip
    """Run the what-if (audited as ``whatif.run``) and show it, or return the PDF report."""
    asked = {"month": month, "proposal": proposal, "values": values, "start": start}
    try:
        result = service.run_whatif_form(ctx, who, month, proposal, values, start)
    except InvalidInput as exc:
        return render(request, "whatif.html", {"form": service.form_view(ctx), "nav": "whatif",
                                               "result": None, "asked": asked,
                                               "error": str(exc)}, status=400)  # fmt: skip
    tracking.track(
        ctx,
        who,
        result.largest_ids,
        "whatif",
        f"what-if {result.month.label}: largest changes",
        month=result.month.label,
    )
    if output == "pdf":
        from benefits.whatifreport import report_html

        data = exports.pdf_file(ctx, who, report_html(result),
                                what=f"what-if {result.month.label} report (PDF)",
                                purpose=tracking.PURPOSES["whatif"],
                                persons=result.largest_ids)  # fmt: skip
        return Response(
            data,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="whatif-{result.month.label}.pdf"'},
        )
    return render(request, "whatif.html", {"form": service.form_view(ctx), "nav": "whatif",
                                           "result": service.result_view(result),
                                           "asked": asked})  # fmt: skip
