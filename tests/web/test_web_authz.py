"""Every route × every role: allowed or refused, on the server, for pages and API alike.

The table below names the permission each route needs; the test fails if the app gains a
route the table does not list, so a new route cannot ship without a decision.
"""

from __future__ import annotations

import pytest
from conftest import ROLE_USERS, Seeded, csrf_of
from fastapi.routing import APIRoute
from starlette.routing import Mount

from benefits.web.permissions import allowed

PUBLIC = "public"
SIGNED_IN = "signed-in"

# (method, path template) → permission (or PUBLIC / SIGNED_IN)
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/"): SIGNED_IN,
    ("GET", "/dashboard"): "dashboard.view",
    ("GET", "/batches"): "batches.view",
    ("GET", "/batches/{batch_id}"): "batches.view",
    ("POST", "/runs/{run_id}/batch"): "batches.prepare",
    ("POST", "/batches/{batch_id}/submit"): "batches.prepare",
    ("POST", "/batches/{batch_id}/approve"): "batches.decide",
    ("POST", "/batches/{batch_id}/reject"): "batches.decide",
    ("POST", "/items/{item_id}/release"): "batches.prepare",
    ("GET", "/batches/{batch_id}/sheet"): "batches.view",
    ("GET", "/batches/{batch_id}/sheet.pdf"): "batches.view",
    ("POST", "/batches/{batch_id}/sheet-job"): "batches.view",
    ("GET", "/jobs"): SIGNED_IN,
    ("GET", "/jobs/download"): SIGNED_IN,
    ("GET", "/persons"): "persons.view",
    ("POST", "/persons/search"): "persons.view",
    ("GET", "/persons/{ref}"): "persons.view",
    ("GET", "/persons/{ref}/letter"): "persons.view",
    ("GET", "/persons/{ref}/letter.pdf"): "persons.view",
    ("GET", "/alerts"): "alerts.view",
    ("GET", "/alerts/{alert_id}"): "alerts.view",
    ("POST", "/alerts/{alert_id}/{action}"): "alerts.work",
    ("GET", "/runs"): "runs.view",
    ("POST", "/sweeps"): "sweeps.run",
    ("GET", "/runs/{run_id}"): "runs.view",
    ("GET", "/audit"): "audit.view",
    ("GET", "/audit/access"): "access.report",
    ("POST", "/audit/access"): "access.report",
    ("GET", "/audit/access.pdf"): "access.report",
    ("GET", "/rules"): "rules.view",
    ("GET", "/whatif"): "whatif.run",
    ("POST", "/whatif"): "whatif.run",
    ("GET", "/releases"): "rules.view",
    ("POST", "/releases"): "rules.submit",
    ("GET", "/releases/{release_id}"): "rules.view",
    ("GET", "/releases/{release_id}/reports/{report_id}"): "rules.view",
    ("POST", "/releases/{release_id}/approve"): "rules.decide",
    ("POST", "/releases/{release_id}/reject"): "rules.view",  # approver, or its submitter
    ("POST", "/releases/rollback"): "rules.rollback",
    ("GET", "/admin/users"): "users.manage",
    ("POST", "/admin/users"): "users.manage",
    ("POST", "/admin/users/{username}"): "users.manage",
    ("POST", "/admin/tokens"): "users.manage",
    ("POST", "/admin/tokens/{token_id}/revoke"): "users.manage",
    ("GET", "/admin/signin-locks"): "users.manage",
    ("POST", "/admin/signin-locks/lift"): "users.manage",
    ("GET", "/exports"): "exports.request",
    ("POST", "/exports"): "exports.request",
    ("POST", "/exports/{request_id}/approve"): "exports.approve",
    ("POST", "/exports/{request_id}/refuse"): "exports.approve",
    ("GET", "/exports/{request_id}/download"): "exports.request",
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1"): PUBLIC,
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("GET", "/api/v1/dashboard"): "dashboard.view",
    ("GET", "/api/v1/runs"): "runs.view",
    ("GET", "/api/v1/runs/{run_id}"): "runs.view",
    ("POST", "/api/v1/sweeps"): "sweeps.run",
    ("POST", "/api/v1/runs/{run_id}/batches"): "batches.prepare",
    ("GET", "/api/v1/batches"): "batches.view",
    ("GET", "/api/v1/batches/{batch_id}"): "batches.view",
    ("GET", "/api/v1/batches/{batch_id}/items"): "batches.view",
    ("POST", "/api/v1/batches/{batch_id}/submit"): "batches.prepare",
    ("POST", "/api/v1/batches/{batch_id}/approve"): "batches.decide",
    ("POST", "/api/v1/batches/{batch_id}/reject"): "batches.decide",
    ("POST", "/api/v1/items/{item_id}/release"): "batches.prepare",
    ("POST", "/api/v1/persons/lookup"): "persons.view",
    ("GET", "/api/v1/persons/{ref}/explanation"): "persons.view",
    ("GET", "/api/v1/alerts"): "alerts.view",
    ("GET", "/api/v1/alerts/{alert_id}"): "alerts.view",
    ("POST", "/api/v1/alerts/{alert_id}/actions"): "alerts.work",
    ("GET", "/api/v1/audit"): "audit.view",
    ("GET", "/api/v1/audit/verify"): "audit.view",
    ("GET", "/api/v1/audit/access/persons/{ref}"): "access.report",
    ("GET", "/api/v1/audit/access/users/{username}"): "access.report",
    ("GET", "/api/v1/rules"): "rules.view",
    ("GET", "/api/v1/users"): "users.manage",
    ("POST", "/api/v1/users"): "users.manage",
    ("POST", "/api/v1/users/{username}"): "users.manage",
    ("POST", "/api/v1/users/{username}/tokens"): "users.manage",
    ("GET", "/api/v1/signin-locks"): "users.manage",
    ("POST", "/api/v1/signin-locks/lift"): "users.manage",
    ("GET", "/api/v1/exports"): "exports.request",
    ("POST", "/api/v1/exports"): "exports.request",
    ("POST", "/api/v1/exports/{request_id}/approve"): "exports.approve",
    ("POST", "/api/v1/exports/{request_id}/refuse"): "exports.approve",
    ("GET", "/api/v1/exports/{request_id}/download"): "exports.request",
}

# Sent with form posts and API bodies: valid enough to reach the permission check and
# harmless (refusals by the ledger are fine: only 401/403 mean "denied").
FORM = {"reason": "authorisation test", "note": "authorisation test", "month": "2025-01",
        "assignee": "officer", "username": "someone", "name": "t", "password": "x" * 12,
        "id_no": "330106194501011233"}
JSON = {
    "/api/v1/sweeps": {"month": "1999-01"},
    "/api/v1/batches/{batch_id}/reject": {"reason": "authorisation test"},
    "/api/v1/items/{item_id}/release": {"reason": "authorisation test"},
    "/api/v1/persons/lookup": {"id_no": "330106194501011233"},
    "/api/v1/alerts/{alert_id}/actions": {"action": "acknowledge"},
    "/api/v1/users": {"username": "zz-authz", "password": "y" * 12, "roles": []},
    "/api/v1/users/{username}": {},
    "/api/v1/users/{username}/tokens": {"name": "authz"},
    "/api/v1/signin-locks/lift": {"kind": "account", "key": "auditor"},
    "/api/v1/exports": {"batch_id": 1, "purpose": "authorisation test"},
    "/api/v1/exports/{request_id}/refuse": {"note": "authorisation test"},
}


def _routes(routes: list) -> list:
    out = []
    for r in routes:
        if isinstance(r, Mount):
            continue
        inner = getattr(r, "original_router", None)  # FastAPI ≥ 0.16x wraps included routers
        out += _routes(inner.routes) if inner is not None else [r]
    return out


def _app_routes(seeded: Seeded) -> set[tuple[str, str]]:
    found = set()
    for r in _routes(seeded.app.routes):
        methods = getattr(r, "methods", None) or {"GET"}
        for m in methods - {"HEAD"}:
            found.add((m, r.path))
    return found


def _fill(seeded: Seeded, path: str, token_id: int) -> str:
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    item = ctx.ledger.items(batch.id, status="held", limit=1)[0]
    run = ctx.ledger.runs()[0]
    ref = ctx.directory.ref(item.id_no)
    values = {"batch_id": batch.id, "run_id": run.id, "item_id": item.id, "ref": ref,
              "alert_id": 1, "action": "acknowledge", "username": "auditor", "token_id": token_id,
              "request_id": 1, "release_id": 1, "report_id": 1}
    return path.format(**values)


def test_table_lists_every_route(seeded: Seeded) -> None:
    assert _app_routes(seeded) == set(ROUTES), "update ROUTES with the new route's permission"
    api = [r for r in _routes(seeded.app.routes)
           if isinstance(r, APIRoute) and r.path.startswith("/api")]
    assert api, "the API routes are registered"


def _expect(permission: str, role: str | None) -> bool:
    if permission == PUBLIC:
        return True
    if role is None:
        return False
    return permission == SIGNED_IN or allowed([role], permission)


@pytest.mark.parametrize("role", [None, *ROLE_USERS])
def test_every_route_for_every_role(seeded: Seeded, role: str | None) -> None:
    page = seeded.client(ROLE_USERS[role] if role else None)
    csrf = csrf_of(page) if role else ""
    api_headers = {"Authorization": f"Bearer {seeded.token(ROLE_USERS[role])}"} if role else {}
    _, spare = seeded.ctx.accounts.create_token("auditor", "revoked by the walk", by="admin")
    problems = []
    for (method, template), permission in sorted(ROUTES.items()):
        if template == "/logout":
            continue  # would end the session the rest of the walk uses; see test below
        path = _fill(seeded, template, spare.id)
        if template.startswith("/api/"):
            kwargs: dict = {"headers": api_headers}
            if method == "POST":
                kwargs["json"] = JSON.get(template, {})
            r = page.request(method, path, follow_redirects=False, **kwargs)
            denied = r.status_code in (401, 403) and "four eyes" not in r.text
        else:
            kwargs = {"data": {**FORM, "csrf_token": csrf}} if method == "POST" else {}
            r = page.request(method, path, follow_redirects=False, **kwargs)
            to_login = r.status_code == 303 and r.headers["location"].startswith("/login")
            denied = r.status_code in (401, 403) or (to_login and template not in (
                "/login", "/logout"))
        if r.status_code >= 500:
            problems.append(f"{method} {template}: server error {r.status_code}")
        expected = _expect(permission, role)
        if expected == denied:
            problems.append(f"{role or 'anonymous'} {method} {template}: got {r.status_code}, "
                            f"expected {'allowed' if expected else 'denied'}")
    assert problems == []


def test_logout_needs_a_session_and_csrf(seeded: Seeded) -> None:
    anon = seeded.client()
    assert anon.post("/logout", follow_redirects=False).headers["location"] == "/login"
    officer = seeded.client("officer")
    assert officer.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    csrf = csrf_of(officer)
    r = officer.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    r = officer.get("/dashboard", follow_redirects=False)
    assert r.headers["location"].startswith("/login")


def test_forms_without_csrf_are_refused(seeded: Seeded) -> None:
    approver = seeded.client("approver")
    batch = seeded.ctx.ledger.batches()[0]
    r = approver.post(f"/batches/{batch.id}/approve", data={})
    assert r.status_code == 403
    assert seeded.ctx.ledger.batch(batch.id).batch.status == "submitted"


def test_api_changes_with_a_session_need_the_csrf_header(seeded: Seeded) -> None:
    approver = seeded.client("approver")
    batch = seeded.ctx.ledger.batches()[0]
    r = approver.post(f"/api/v1/batches/{batch.id}/approve")
    assert r.status_code == 403 and "CSRF" in r.text
    r = approver.post(f"/api/v1/batches/{batch.id}/approve",
                      headers={"X-CSRF-Token": csrf_of(approver)})
    assert r.status_code == 200 and r.json()["status"] == "approved"
