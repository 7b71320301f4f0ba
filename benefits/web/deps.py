"""Request plumbing: who is asking, may they, CSRF, flash messages, JSON encoding.

Pages sign in with a session cookie; the API accepts a bearer token (``Authorization: Bearer
bnf_…``) or the session cookie plus the ``X-CSRF-Token`` header on changes. Every route
declares the permission it needs with :func:`require`/:func:`api_require`; nothing is
checked in templates only.

Example:
    >>> jsonable({"amount": Decimal("1.50")})
    {'amount': '1.50'}
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer

from benefits.web.audit_events import record_token_use
from benefits.web.auth import Principal
from benefits.web.context import WebContext
from benefits.web.format import local_times
from benefits.web.services.alerts import AlertFilter

SESSION_COOKIE = "bnf_session"
FLASH_COOKIE = "bnf_flash"
LOGIN_CSRF_COOKIE = "bnf_login"
bearer = HTTPBearer(auto_error=False, description="API token (bnf_…) created by an admin")


class LoginRequired(Exception):
    """No valid session or token."""


class Forbidden(Exception):
    """Signed in, but not allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    """A form or API change without the right CSRF token."""


def jsonable(value: Any) -> Any:
    """Plain JSON data: Decimal as text (money stays exact), datetimes as ISO 8601."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return value


def get_ctx(request: Request) -> WebContext:
    """The app's context."""
    return request.app.state.ctx


Ctx = Annotated[WebContext, Depends(get_ctx)]


def client_ip(request: Request) -> str:
    """The client's address: the direct peer, unless that peer is a configured trusted proxy
    (``WebSettings.trusted_proxies``); then ``X-Forwarded-For`` is read from the right,
    skipping trusted proxies, and the first other address is the client. A forged header
    from anyone else is ignored."""
    peer = request.client.host if request.client else "?"
    proxies = get_ctx(request).settings.trusted_proxies
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), proxies)


def _is_trusted(address: str, proxies: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in proxies)


def forwarded_client(peer: str, forwarded: list[str], proxies: tuple[str, ...]) -> str:
    """The client address given the direct peer, the X-Forwarded-For headers and the trusted
    proxies.

    >>> forwarded_client("10.0.0.5", ["198.51.100.7, 10.0.0.9"], ("10.0.0.0/8",))
    '198.51.100.7'
    >>> forwarded_client("203.0.113.1", ["198.51.100.7"], ("10.0.0.0/8",))
    '203.0.113.1'
    >>> forwarded_client("10.0.0.5", ["not-an-ip"], ("10.0.0.5",))
    '10.0.0.5'
    """
    if not proxies or not _is_trusted(peer, proxies):
        return peer
    hops = [h.strip() for line in forwarded for h in line.split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage: keep the last address a trusted proxy vouched for
        client = hop
        if not _is_trusted(hop, proxies):
            break
    return client


def session_principal(request: Request) -> Principal | None:
    """The principal of the session cookie, cached on the request."""
    if "principal" in request.state._state:
        return request.state.principal
    token = request.cookies.get(SESSION_COOKIE, "")
    principal = get_ctx(request).accounts.session_principal(token) if token else None
    request.state.principal = principal
    return principal


def page_user(request: Request) -> Principal:
    """The signed-in user of a page, or LoginRequired (→ redirect to the sign-in page)."""
    principal = session_principal(request)
    if principal is None:
        raise LoginRequired()
    return principal


def require(permission: str) -> Callable[..., Principal]:
    """A dependency: the page user, who must hold `permission` (else 403)."""

    def dependency(request: Request) -> Principal:
        who = page_user(request)
        if not who.can(permission):
            raise Forbidden(f"{who.username} may not do this ({permission})")
        return who

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


def check_csrf(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> None:
    """Every form post carries the session's CSRF token."""
    principal = session_principal(request)
    if principal is None:
        raise LoginRequired()
    if not csrf_token or not hmac.compare_digest(csrf_token, principal.csrf_token):
        raise CsrfFailed()


def api_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The API caller: a bearer token, else the session cookie (with CSRF on changes)."""
    ctx = get_ctx(request)
    if credentials is not None:
        principal = ctx.accounts.token_principal(credentials.credentials)
        if principal is None:
            raise LoginRequired()
        request.state.api_caller = principal  # named by security.forbidden if refused
        record_token_use(ctx.db, actor=principal.username, token=credentials.credentials)
        return principal
    principal = session_principal(request)
    if principal is None:
        raise LoginRequired()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        header = request.headers.get("x-csrf-token", "")
        if not header or not hmac.compare_digest(header, principal.csrf_token):
            raise CsrfFailed()
    return principal


def api_require(permission: str) -> Callable[..., Principal]:
    """A dependency: the API caller, who must hold `permission` (else 403)."""

    def dependency(who: Annotated[Principal, Depends(api_principal)]) -> Principal:
        if not who.can(permission):
            raise Forbidden(f"{who.username} may not do this ({permission})")
        return who

    dependency.__name__ = f"api_require_{permission.replace('.', '_')}"
    return dependency


# -- flash messages (a signed, short-lived cookie read once) ----------------------------------


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_ctx(request).settings.secret_key, salt="flash")


def flash_cookie(request: Request, kind: str, message: str) -> str:
    """The signed value of a flash cookie ('ok' or 'error' and a message); times the ledger
    writes in UTC are shown in the display zone."""
    message = local_times(message, get_ctx(request).settings.zone)
    return _serializer(request).dumps([kind, message[:600]])


def read_flash(request: Request) -> tuple[str, str] | None:
    """The pending flash message, if any (valid for two minutes)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        kind, message = _serializer(request).loads(raw, max_age=120)
    except (BadSignature, ValueError):
        return None
    return str(kind), str(message)


def login_serializer(request: Request) -> URLSafeTimedSerializer:
    """Signs the sign-in form's CSRF token (there is no session yet)."""
    return URLSafeTimedSerializer(get_ctx(request).settings.secret_key, salt="login")


def login_redirect(request: Request) -> str:
    """The sign-in URL that comes back to the current page."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="")


# Parameter types shared by the pages and the JSON API.
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
Month = Annotated[str | None, Query(pattern=MONTH)]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
# A keyset cursor: the id of the last (after) or first (before) item of the page seen.
Cursor = Annotated[int | None, Query(ge=0, le=2**62, description="an item id (keyset page)")]
DAY = r"^(|\d{4}-\d{2}-\d{2})$"
COMMUNITY = r"^([0-9]{9})?$"  # persons.hukou_community: a 9-digit community code (or none)
Community = Annotated[str, Query(pattern=COMMUNITY, description="a 9-digit community code")]


def alert_filter(
    month: Month = None,
    kind: Annotated[str, Query(max_length=32)] = "",
    community: Community = "",
    status: Annotated[str, Query(pattern=r"^(|active|open|acknowledged|resolved|all)$")] = "active",
    assignee: Annotated[str, Query(max_length=64)] = "",
    due_from: Annotated[str, Query(pattern=DAY)] = "",
    due_to: Annotated[str, Query(pattern=DAY)] = "",
) -> AlertFilter:
    """The alerts inbox's filters from the query string (empty month: none chosen).

    >>> alert_filter(kind="cert_expiring").kind
    'cert_expiring'
    """
    return AlertFilter(month or "", kind, community, status, assignee, due_from, due_to)


AlertQuery = Annotated[AlertFilter, Depends(alert_filter)]
