"""The app factory: FastAPI with server-rendered pages, static assets and the JSON API.

Example:
    >>> app = create_app(WebSettings(db="sqlite:///benefits.sqlite"))    # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, port=8000)                      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from benefits import __version__
from benefits.exports import QuotaExceeded
from benefits.ledger import Ledger
from benefits.ledger.errors import (
    Conflict,
    FourEyesViolation,
    IllegalTransition,
    InvalidInput,
    LedgerError,
    NotFound,
    NothingToBatch,
    NotInitialised,
)
from benefits.months import horizon_months
from benefits.web import format as fmt
from benefits.web.audit_events import record_forbidden
from benefits.web.auth import AuthError
from benefits.web.context import WebContext
from benefits.web.deps import CsrfFailed, Forbidden, LoginRequired, login_redirect
from benefits.web.settings import WebSettings
from benefits.web.templating import make_templates, render

HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


LEDGER_STATUS: list[tuple[type[LedgerError], int]] = [
    (NotFound, 404),
    (FourEyesViolation, 403),
    (IllegalTransition, 409),
    (Conflict, 409),
    (NothingToBatch, 409),
    (InvalidInput, 422),
    (QuotaExceeded, 429),
    (NotInitialised, 503),
]


def ledger_status(exc: LedgerError) -> int:
    """The HTTP status of a ledger error."""
    for cls, status in LEDGER_STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a path: the methods of every route it matches (405 answers).

    Starlette names only the first route that matched the path, so ``OPTIONS /api/v1/users``
    would say ``Allow: GET`` and leave out POST.
    """
    path = request.scope.get("path", request.url.path)
    methods: set[str] = set()
    routes = list(request.app.router.routes)
    while routes:
        route = routes.pop()
        inner = getattr(route, "original_router", None)  # FastAPI ≥ 0.16x wraps included routers
        if inner is not None:
            routes.extend(inner.routes)
            continue
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return ", ".join(sorted(methods, key=lambda m: order.index(m) if m in order else len(order)))


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"detail": "sign in or send an API token (Authorization: Bearer …)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if request.method != "GET":
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(login_redirect(request), status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=403)
        return render(request, "error.html", {"status": 403, "title": "无权访问 / Not allowed",
                                              "message": exc.message}, status=403)  # fmt: skip

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        message = "表单已过期，请刷新后重试 / the form expired or was not sent by this app: reload"
        if _is_api(request):
            return JSONResponse({"detail": "missing or wrong X-CSRF-Token"}, status_code=403)
        return render(request, "error.html", {"status": 403, "title": "CSRF",
                                              "message": message}, status=403)  # fmt: skip

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> Response:
        status = ledger_status(exc)
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        message = fmt.local_times(str(exc), request.app.state.ctx.settings.zone)
        return render(request, "error.html", {"status": status, "title": "无法完成 / Not done",
                                              "message": message}, status=status)  # fmt: skip

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=401)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        if _is_api(request) or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=headers)  # fmt: skip
        titles = {404: "页面不存在 / Not found", 405: "不支持的操作 / Not allowed"}
        return render(request, "error.html", {"status": exc.status_code,
                                              "title": titles.get(exc.status_code, "Error"),
                                              "message": str(exc.detail)},
                      status=exc.status_code, headers=headers)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        if _is_api(request):
            return JSONResponse({"detail": errors}, status_code=422)
        text = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
        return render(request, "error.html", {"status": 422, "title": "输入有误 / Invalid input",
                                              "message": text}, status=422)  # fmt: skip


def create_app(settings: WebSettings | None = None, *, ledger: Ledger | None = None) -> FastAPI:
    """Build the application on the ledger and data folder of `settings`.

    The ledger schema is created or upgraded at start (``Ledger.init``), so a fresh SQLite
    file works out of the box.
    """
    from benefits.web.routes import api, exports, pages, releases, whatif

    settings = settings or WebSettings()
    horizon_months()  # a bad $BENEFITS_SWEEP_HORIZON_MONTHS stops the start, with its message
    ctx = WebContext(settings, ledger)
    ctx.ledger.init(by="web")
    app = FastAPI(
        title="benefits — 民生直达 · 免申即享",
        version=__version__,
        description=(
            "JSON API of the proactive welfare engine: sweeps, payout batches with four-eyes "
            "approval, person explanations, alerts, audit. Authenticate with an API token "
            "(`Authorization: Bearer bnf_…`, created by an admin) or a browser session "
            "(changes then need the `X-CSRF-Token` header)."
        ),
        docs_url=None,  # Swagger UI would load its assets from a CDN: serve the schema only
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.ctx = ctx
    app.state.templates = make_templates(settings.zone)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", CSP)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.middleware("http")
    async def _forbidden_audit(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        if response.status_code == 403:  # security.forbidden in the audit chain
            await run_in_threadpool(record_forbidden, ctx.db, request)
        return response

    _install_handlers(app)
    app.include_router(pages.router)
    app.include_router(releases.router)
    app.include_router(api.router)
    app.include_router(exports.pages)
    app.include_router(exports.api)
    app.include_router(whatif.router)
    api.install_openapi(app)
    return app
