"""Printable reports from the `reports/` templates (shipped in the package too): HTML, PDF.

- ``batch_approval_sheet.html`` — a batch's totals per policy, community, kind and state,
  its four-eyes record and the signatures block;
- ``explanation_letter.html`` — the letter to a person explaining the month's decisions;
- ``access_report.html`` — who saw a person's data (a data-subject request).

WeasyPrint needs Pango (Debian: ``libpango-1.0-0 libpangoft2-1.0-0``) and, for Chinese, a
CJK font (``fonts-noto-cjk``).

Example:
    >>> html = batch_sheet_html(ctx, 1, who)                 # doctest: +SKIP
    >>> pdf = benefits.web.pdf.to_pdf(html)                   # doctest: +SKIP
    >>> pdf[:5]                                               # doctest: +SKIP
    b'%PDF-'
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from benefits.resources import reports_folder
from benefits.web import format as fmt
from benefits.web.auth import Principal
from benefits.web.context import WebContext
from benefits.web.services import batches as batch_service
from benefits.web.services import exports, persons
from benefits.web.services import runs as run_service
from benefits.web.tracking import PURPOSES

REPORTS_DIR = reports_folder()  # the clone's reports/, else the copy shipped in the package
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def environment(tz: dt.tzinfo | None = None) -> Environment:
    """The Jinja2 environment of the report templates (times shown in `tz`)."""
    env = Environment(
        loader=FileSystemLoader(str(REPORTS_DIR)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=fmt.money, number=fmt.number,
                       when=lambda value: fmt.when(value, tz),
                       split_label=fmt.split_label)  # fmt: skip
    env.globals.update(BATCH_STATUS=fmt.BATCH_STATUS, ITEM_KIND=fmt.ITEM_KIND,
                       ITEM_STATUS=fmt.ITEM_STATUS, DECISION=fmt.DECISION, MODE=fmt.MODE,
                       label=fmt.label)  # fmt: skip
    return env


def _css() -> str:
    return (REPORTS_DIR / "report.css").read_text(encoding="utf-8")


def batch_sheet_html(ctx: WebContext, batch_id: int, who: Principal) -> str:
    """The batch approval sheet as a standalone HTML document."""
    detail = batch_service.detail_view(ctx.ledger.batch(batch_id),
                                       batch_service.policy_numbers(ctx))
    run = run_service.get_run(ctx, detail["run_id"])
    held_items, held_amount = batch_service.held_total(detail)
    names = {p.id: (p.name.zh, p.name.en, p.number) for p in ctx.pack.policies}
    tz = ctx.settings.zone
    return environment(tz).get_template("batch_approval_sheet.html").render(
        b=detail,
        run=run_service.run_row(run, []),
        held_items=held_items,
        held_amount=held_amount,
        names=names,
        district=ctx.pack.info.district_name,
        printed_by=who.display_name or who.username,
        printed_at=fmt.when(ctx.db.now(), tz),
        zone=ctx.settings.display_zone,
        css=_css(),
    )


def letter_html(ctx: WebContext, id_no: str, month: str | None, reveal: bool) -> str:
    """The explanation letter for a person and month as a standalone HTML document."""
    view = persons.explanation(ctx, id_no, month, reveal=reveal)
    tz = ctx.settings.zone
    return environment(tz).get_template("explanation_letter.html").render(
        view=view,
        district=ctx.pack.info.district_name,
        printed_at=fmt.when(ctx.db.now(), tz),
        reference=f"XH-{view['month'] or ''}-{view['ref'][:8].upper()}",
        css=_css(),
    )


def access_report_html(ctx: WebContext, view: dict[str, Any], who: Principal) -> str:
    """The per-person access report (who saw the person's data) as a standalone document."""
    tz = ctx.settings.zone
    return environment(tz).get_template("access_report.html").render(
        view=view,
        district=ctx.pack.info.district_name,
        printed_by=who.display_name or who.username,
        printed_at=fmt.when(ctx.db.now(), tz),
        zone=ctx.settings.display_zone,
        css=_css(),
    )


def access_report_response(ctx: WebContext, view: dict[str, Any], who: Principal) -> Any:
    """HTTP response with the access report as PDF (through the export rules)."""
    data = exports.pdf_file(ctx, who, access_report_html(ctx, view, who),
                            what="access report (PDF)", purpose=PURPOSES["report"],
                            persons=[view["person"]])  # fmt: skip
    return _pdf(data, f"access-{view['ref'][:8]}.pdf")


def _html(html: str) -> Response:
    # self-contained document: its stylesheet is inline, so allow inline styles here only
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})


def _pdf(data: bytes, filename: str) -> Response:
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})  # fmt: skip


def batch_sheet_response(ctx: WebContext, batch_id: int, who: Principal, *, pdf: bool) -> Any:
    """HTTP response with the approval sheet (HTML, or PDF through the export rules)."""
    html = batch_sheet_html(ctx, batch_id, who)
    if not pdf:
        return _html(html)
    data = exports.pdf_file(ctx, who, html, what=f"batch {batch_id} approval sheet (PDF)",
                            purpose=PURPOSES["batch"], persons=[])  # fmt: skip
    return _pdf(data, f"batch-{batch_id}.pdf")


def start_sheet_job(ctx: WebContext, batch_id: int, who: Principal) -> int:
    """Build the approval sheet's PDF of a batch as a background job (one per batch at a
    time); the PDF goes through the same export rules as the direct download and is kept,
    owner-only, for the officer who asked. Returns the job's id."""
    from benefits.private import FILE_MODE, private_dir
    from benefits.web.jobs import JobResult, Report

    ctx.ledger.batch(batch_id)  # NotFound now, not in the job

    def work(report: Report) -> JobResult:
        report("reading the batch and its totals", 0, 3)
        html = batch_sheet_html(ctx, batch_id, who)
        report("rendering the PDF", 1, 3)
        data = exports.pdf_file(ctx, who, html, what=f"batch {batch_id} approval sheet (PDF)",
                                purpose=PURPOSES["batch"], persons=[])  # fmt: skip
        report("saving the file", 2, 3)
        folder = private_dir(ctx.jobs.folder)
        path = folder / f"{report.job_id}-batch-{batch_id}.pdf"
        path.write_bytes(data)
        path.chmod(FILE_MODE)
        report(None, 3, 3)
        message = (f"批次 {batch_id} 审批单 PDF 已生成 / the approval sheet of batch {batch_id} "
                   f"is ready ({len(data):,} bytes)")  # fmt: skip
        return JobResult(message, file=str(path), filename=f"batch-{batch_id}.pdf",
                         media_type="application/pdf")  # fmt: skip

    job = ctx.jobs.start("sheet", f"sheet:{batch_id}:{who.username}",
                         f"approval sheet PDF of batch {batch_id}", who.username, work)  # fmt: skip
    return job.id


def letter_response(ctx: WebContext, id_no: str, month: str | None, reveal: bool, *,
                    pdf: bool, who: Principal) -> Any:  # fmt: skip
    """HTTP response with the explanation letter (HTML, or PDF through the export rules)."""
    html = letter_html(ctx, id_no, month, reveal)
    if not pdf:
        return _html(html)
    data = exports.pdf_file(ctx, who, html, what="explanation letter (PDF)",
                            purpose=PURPOSES["letter"], persons=[id_no], sensitive=reveal)
    return _pdf(data, "explanation.pdf")
