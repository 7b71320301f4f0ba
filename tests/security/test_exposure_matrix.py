"""Issue 14, acceptance: every route (pages, API, PDF, CSV/Parquet exports) × every role ×
every class of identifying value — a user without the ``pii`` grant never receives a full
resident ID (sensitive), bank account number (sensitive) or name (personal) of a person.

Each GET route of the app (read from the app itself, so a new route joins the walk) is called
by each role on the seeded ledger, with its path filled with real records; PDF routes are
scanned through the HTML they are rendered from (WeasyPrint embeds glyphs, not text); export
files are requested and downloaded by each role that may. Every response body — normalised
NFKC, so full-width digits count too — is scanned for the seeded persons' IDs, accounts and
names. The holder of the grant gets the same masked answers until they ask to reveal.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from fastapi.testclient import TestClient

from benefits.web.permissions import allowed
from benefits.web.services import exports as export_service
from tests.security.test_ledger_dump import secrets_of_sample
from tests.web.conftest import Seeded

SECRETS = secrets_of_sample()  # {"resident ID": …, "account number": …, "name": …}
# the demo users and their roles: all but the officer are without the pii grant
USERS = {"officer": ["officer"], "approver": ["approver"], "auditor": ["auditor"],
         "admin": ["admin"], "chief": ["officer", "approver"]}
NO_GRANT = ["approver", "auditor", "admin", "chief"]


# GET routes that serve no person's data or only files tested below
SKIP = ("/static", "/login", "/healthz", "/api/v1/openapi.json", "/exports/{request_id}/download",
        "/api/v1/exports/{request_id}/download")


def _expect(permission: str, user: str) -> bool:
    return allowed(USERS[user], permission)


def _get_routes(seeded: Seeded) -> list[str]:
    """The path templates of every GET route of the app."""
    out, todo = [], list(seeded.app.routes)
    while todo:
        r = todo.pop()
        inner = getattr(r, "original_router", None)
        if inner is not None:
            todo.extend(inner.routes)
            continue
        path = getattr(r, "path", "")
        if "GET" in (getattr(r, "methods", None) or ()) and not path.startswith(SKIP):
            out.append(path)
    return sorted(out)


def _fill(seeded: Seeded, template: str) -> str:
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    item = ctx.ledger.items(batch.id, limit=1)[0]
    ctx.know_all()
    values = {"batch_id": batch.id, "run_id": ctx.ledger.runs()[0].id, "item_id": item.id,
              "ref": ctx.directory.ref(item.id_no), "alert_id": 1, "action": "acknowledge",
              "username": "officer", "token_id": 1, "request_id": 1, "release_id": 1,
              "report_id": 1}  # fmt: skip
    return template.format(**values)


def _query(template: str, seeded: Seeded) -> str:
    if template == "/audit/access.pdf":
        return "?person=" + _fill(seeded, "{ref}")
    if template.startswith("/persons/") or template.startswith("/api/v1/persons/"):
        return "?month=2025-01"
    return ""


def leaks(body: str) -> dict[str, list[str]]:
    """The seeded persons' IDs, accounts and names found in `body`, by class of value."""
    text = unicodedata.normalize("NFKC", body)
    found = {}
    for kind, values in SECRETS.items():
        hits = sorted(v for v in values if v in text)
        if hits:
            found[kind] = hits[:3]
    return found


@pytest.fixture
def pdf_html(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTML of every PDF the app renders (the text that goes into the PDF)."""
    seen: list[str] = []

    def fake(html: str) -> bytes:
        seen.append(html)
        return b"%PDF-1.7 scanned as HTML"

    monkeypatch.setattr(export_service, "to_pdf", fake)
    return seen


def _walk(seeded: Seeded, client: TestClient, role: str,
          pdf_html: list[str]) -> tuple[dict[str, Any], int]:  # fmt: skip
    problems: dict[str, Any] = {}
    served = 0
    for template in _get_routes(seeded):
        url = _fill(seeded, template) + _query(template, seeded)
        pdf_html.clear()
        r = client.get(url, follow_redirects=False)
        assert r.status_code < 500, (role, url, r.status_code)
        if r.status_code != 200:
            continue
        served += 1
        body = "\n".join(pdf_html) if url.split("?")[0].endswith(".pdf") else r.text
        if hits := leaks(body):
            problems[url] = hits
    return problems, served


@pytest.mark.parametrize("role", NO_GRANT)
def test_no_route_gives_a_user_without_the_grant_an_id_account_or_name(
    seeded: Seeded, role: str, pdf_html: list[str]
) -> None:
    page = seeded.client(role)
    api = seeded.client()
    api.headers["Authorization"] = f"Bearer {seeded.token(role)}"
    page_problems, page_served = _walk(seeded, page, role, pdf_html)
    api_problems, api_served = _walk(seeded, api, role, pdf_html)
    assert page_served + api_served >= 5, "the walk reached the routes"
    assert page_problems == {} and api_problems == {}
    # asking to reveal is refused, and refused answers carry nothing either
    ref = _fill(seeded, "{ref}")
    for url in (f"/persons/{ref}?reveal=true", f"/api/v1/persons/{ref}/explanation?reveal=true",
                f"/persons/{ref}/letter.pdf?reveal=true"):
        r = (api if url.startswith("/api/") else page).get(url)
        if _expect("persons.view", role):
            assert r.status_code == 403, url
        assert leaks(r.text) == {}, url


@pytest.mark.parametrize("role", [*NO_GRANT, "officer"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_export_without_reveal_carries_no_id_account_or_name(
    seeded: Seeded, role: str, fmt: str, tmp_path: Any
) -> None:
    api = seeded.client()
    api.headers["Authorization"] = f"Bearer {seeded.token(role)}"
    batch = seeded.ctx.ledger.batches()[0]
    r = api.post("/api/v1/exports", json={"batch_id": batch.id, "format": fmt,
                                          "purpose": "matrix"})  # fmt: skip
    if not _expect("exports.request", role):
        assert r.status_code == 403
        return
    assert r.status_code == 201, r.text
    req = r.json()
    if req["status"] != "approved":  # bulk: a second person approves
        other = "approver" if role != "approver" else "chief"
        ok = seeded.client()
        ok.headers["Authorization"] = f"Bearer {seeded.token(other)}"
        assert ok.post(f"/api/v1/exports/{req['id']}/approve").status_code == 200
    got = api.get(f"/api/v1/exports/{req['id']}/download")
    assert got.status_code == 200
    if fmt == "csv":
        body = got.content.decode("utf-8")
    else:
        import polars as pl

        path = tmp_path / "x.parquet"
        path.write_bytes(got.content)
        body = pl.read_parquet(path).write_csv()
    assert leaks(body) == {}


def test_the_grant_holder_sees_clear_values_only_when_revealing(
    seeded: Seeded, pdf_html: list[str]
) -> None:
    officer = seeded.client("officer")  # holds the pii grant
    problems, served = _walk(seeded, officer, "officer", pdf_html)
    assert served >= 5 and problems == {}
    ref = _fill(seeded, "{ref}")
    revealed = officer.get(f"/persons/{ref}?month=2025-01&reveal=true&reason=matrix")
    assert revealed.status_code == 200 and leaks(revealed.text).get("resident ID")
