"""The what-if report: ``reports/whatif_report.html`` with server-drawn SVG charts, as HTML or
PDF (WeasyPrint). Names and IDs appear masked; the report carries no wall-clock time, so the
same what-if gives the same file.

Example:
    >>> write_report(run_whatif(...), Path("whatif.pdf"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from benefits.resources import reports_folder
from benefits.web import charts
from benefits.web.format import money, number, signed_money
from benefits.whatif import WhatIf

TEMPLATE = "whatif_report.html"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(reports_folder())),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, number=number, signed=signed_money)
    return env


def report_charts(w: WhatIf) -> dict[str, str]:
    """SVG charts: cost per policy (proposed, base as ghost), the distribution of changes,
    and the net change per community."""
    cost = [
        (f"{r['policy_number']} {r['policy_id']}", float(r["proposed"]), float(r["base"]))
        for r in w.summary()["cost_by_policy"]
        if r["mode"] in ("pay", "credit")
    ]
    dist = [(r["change_yuan"], float(r["people"])) for r in w.distribution.to_dicts()]
    communities = [
        (str(r["hukou_community"]), float(r["net_change"]))
        for r in w.summary()["changes_by_community"]
    ]
    return {
        "cost": charts.bar_chart(cost, title="每月发放（测算 vs 现行）/ monthly pay + credit, "
                                 "proposed (base as ghost)", max_label=40, label_width=260),
        "distribution": charts.column_chart(dist, title="人数按每月变化额 / people by monthly "
                                            "change (yuan)", width=700),
        "communities": charts.bar_chart(
            [(c, abs(v), None) for c, v in communities][:60],
            title="各社区每月净变化（绝对值）/ net monthly change per community (absolute)",
        ),
    }  # fmt: skip


def report_html(w: WhatIf, css: str | None = None) -> str:
    """The report as one self-contained HTML page."""
    context: dict[str, Any] = {
        "w": w,
        "s": w.summary(),
        "charts": report_charts(w),
        "css": css if css is not None else (reports_folder() / "report.css").read_text("utf-8"),
    }
    return _environment().get_template(TEMPLATE).render(**context)


def report_pdf(w: WhatIf) -> bytes:
    """The report as PDF (WeasyPrint)."""
    from benefits.web.pdf import to_pdf

    return to_pdf(report_html(w))


def write_report(w: WhatIf, path: Path) -> None:
    """Write FILE.html or FILE.pdf."""
    path = Path(path)
    if path.suffix.lower() == ".pdf":
        path.write_bytes(report_pdf(w))
    else:
        path.write_text(report_html(w), encoding="utf-8")
