"""The pages' templates: the Jinja2 environment with its display filters, and `render`.

Kept apart from the app factory so that route modules can render without importing the app
(which imports the routes).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from benefits import __version__
from benefits.web import format as fmt
from benefits.web.context import WebContext
from benefits.web.deps import FLASH_COOKIE, read_flash, session_principal
from benefits.web.permissions import ROLE_LABELS
from benefits.web.services.alert_identity import kind_labels
from benefits.web.services.releases import missing_now
from benefits.web.tracking import unusual_notices

TEMPLATES = Path(__file__).resolve().parent / "templates"


def query_url(path: str, params: dict[str, Any] | None = None, **changes: Any) -> str:
    """`path` with the non-empty query parameters of `params` updated by `changes`.

    >>> query_url("/batches/1", {"policy": "x", "page": 3}, page=1)
    '/batches/1?policy=x&page=1'
    """
    merged = {**(params or {}), **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "", False)}
    return path + ("?" + urlencode(kept) if kept else "")


def make_templates(tz: dt.tzinfo | None = None) -> Jinja2Templates:
    """The Jinja2 environment of the pages, with the display filters (times shown in `tz`)."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters.update(
        money=fmt.money,
        signed_money=fmt.signed_money,
        number=fmt.number,
        when=lambda value: fmt.when(value, tz),
        split_label=fmt.split_label,
        json_text=fmt.json_text,
    )
    env.globals.update(
        BATCH_STATUS=fmt.BATCH_STATUS,
        ITEM_STATUS=fmt.ITEM_STATUS,
        ITEM_KIND=fmt.ITEM_KIND,
        MODE=fmt.MODE,
        DECISION=fmt.DECISION,
        ALERT_STATUS=fmt.ALERT_STATUS,
        GROUPS=fmt.GROUPS,
        ROLE_LABELS=ROLE_LABELS,
        label=fmt.label,
        qs=query_url,
        version=__version__,
    )
    return templates


def render(request: Request, name: str, context: dict[str, Any], status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """Render a page with the signed-in user, CSRF token, flash and labels in its context."""
    ctx: WebContext = request.app.state.ctx
    me = session_principal(request)
    pack = ctx.pack
    data = {
        "me": me,
        "csrf": me.csrf_token if me else "",
        "flash": read_flash(request),
        "display_zone": ctx.settings.display_zone,
        "policy_names": {p.id: (p.name.zh, p.name.en, p.number) for p in pack.policies},
        "alert_kinds": kind_labels(pack),
        # unusual access (issue 14): admins see the last day's alerts on every page
        "access_notices": unusual_notices(ctx.db) if me and me.can("users.manage") else [],
        # the parameter calendar (issue 15): admins see a yearly parameter still missing
        "rules_notices": missing_now(ctx) if me and me.can("users.manage") else [],
        **context,
    }
    response = request.app.state.templates.TemplateResponse(
        request, name, data, status_code=status, headers=headers
    )
    if data["flash"]:
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=ctx.settings.secure_cookies or request.url.scheme == "https")
    return response
