"""The what-if page: an officer of policy staff prices a proposed pack or parameter values on
one month's delivery; every run is written to the audit chain (``whatif.run``).

Proposed packs are folders under ``<work>/proposals/`` (each with its ``pack.yaml``), so the
page never reads an arbitrary server path; parameter values are added to the current pack
from an effective date.

Example:
    >>> view = run_whatif_form(ctx, who, "2025-01", "", "dibao_std=1400", "")  # doctest: +SKIP
    >>> view["summary"]["totals"]["difference_month"]                        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from benefits.errors import BenefitsError
from benefits.ledger import audit
from benefits.ledger.errors import InvalidInput
from benefits.period import BenefitMonth
from benefits.rulebook import RulePack, load_pack
from benefits.web.auth import Principal
from benefits.web.context import WebContext
from benefits.web.services import runs as run_service
from benefits.whatif import WhatIf, check_proposal_month, parse_settings, run_whatif, with_values
from benefits.whatifreport import report_charts

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def proposals_folder(ctx: WebContext) -> Path:
    return Path(ctx.settings.work) / "proposals"


def proposals(ctx: WebContext) -> list[str]:
    """The proposed pack folders the page offers (sub-folders of <work>/proposals)."""
    root = proposals_folder(ctx)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "pack.yaml").is_file())


def form_view(ctx: WebContext) -> dict[str, Any]:
    """What the empty form needs: months, proposals, the current pack's parameters."""
    pack = ctx.pack
    return {
        "suggested": run_service.suggested_month(ctx),
        "span": run_service.sweep_months(ctx),
        "proposals": proposals(ctx),
        "proposals_folder": str(proposals_folder(ctx)),
        "parameters": [
            {
                "name": n,
                "label": p.label.text(),
                "unit": p.unit,
                "current": str(p.values[max(p.values)]),
            }
            for n, p in pack.parameters.items()
        ],
        "version": pack.version,
        "hash": pack.digest,
    }


def _proposed(ctx: WebContext, month: str, proposal: str, settings: str,
              start: str) -> RulePack:  # fmt: skip
    base = ctx.pack
    if proposal and settings.strip():
        raise InvalidInput("choose a proposed pack or parameter values, not both")
    if proposal:
        if not NAME.match(proposal) or proposal not in proposals(ctx):
            raise InvalidInput(f"no proposed pack called {proposal!r}")
        return load_pack(proposals_folder(ctx) / proposal)
    items = [line for line in re.split(r"[\n,;]+", settings) if line.strip()]
    if not items:
        raise InvalidInput("give a proposed pack or at least one parameter value NAME=VALUE")
    day = dt.date(int(month[:4]), int(month[5:7]), 1)
    if start.strip():
        try:
            day = dt.date.fromisoformat(start.strip())
        except ValueError:
            raise InvalidInput(f"effective date must look like 2026-01-01, got {start!r}") from None
    check_proposal_month(day, BenefitMonth.parse(month))
    return with_values(base, parse_settings(items), day)


def run_whatif_form(ctx: WebContext, who: Principal, month: str, proposal: str, settings: str,
                    start: str) -> WhatIf:  # fmt: skip
    """Run the what-if a form asks for and write ``whatif.run`` to the audit chain."""
    month = run_service.check_month(ctx, month)
    try:
        proposed = _proposed(ctx, month, proposal, settings, start)
        result = run_whatif(ctx.settings.delivery_for(month), month, ctx.pack, proposed)
    except BenefitsError as exc:
        raise InvalidInput(" ".join(str(exc).split())) from exc
    except OSError as exc:
        raise InvalidInput(f"the delivery for {month} cannot be read: {exc.strerror}") from exc
    with ctx.db.transaction() as s:
        audit.append(
            s, at=ctx.db.now(), actor=who.username, action="whatif.run",
            object_type="whatif", object_id=month,
            after={"month": month, "base": result.base["hash"],
                   "proposed": result.proposed["hash"],
                   "proposal": proposal or None, "parameters": result.parameters,
                   "difference_month": result.totals()["difference_month"],
                   "persons_changed": result.counts()["persons_changed"]},
        )  # fmt: skip
    return result


def result_view(result: WhatIf) -> dict[str, Any]:
    """The report's data and charts for the page (masked names and IDs only)."""
    return {"summary": result.summary(), "charts": report_charts(result)}
