"""The leak scan (tests/security/leakscan.py) that watches every web and browser test.

The scanner finds each kind of value in each place it looks — an answer (HTML, JSON, PDF text,
Parquet), a log line, an exception's text — and lets through only an answer the server
revealed on purpose. The web fixtures route every client and the live server through it, and
error answers built from a seeded person's ID (bad references, bad bodies, filters, forbidden
requests) carry none.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.testclient import TestClient

from benefits.web.pdf import to_pdf
from tests.security.leakscan import (
    RECORDER,
    Recorder,
    install_log_capture,
    recording,
    remove_log_capture,
    secrets,
)
from tests.web.conftest import Seeded

ID = sorted(secrets()["resident ID"])[0]
ACCOUNT = sorted(secrets()["account number"])[0]
NAME = sorted(secrets()["name"])[0]
FULL_WIDTH_ID = ID.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})


def _toy_app() -> FastAPI:
    app = FastAPI()
    log = logging.getLogger("benefits.web.toy")

    @app.get("/page")
    def page() -> HTMLResponse:
        return HTMLResponse(f"<p>conflict: {FULL_WIDTH_ID}</p>")

    @app.get("/api")
    def api(reveal: bool = False) -> JSONResponse:
        return JSONResponse({"account": ACCOUNT})

    @app.get("/pdf")
    def pdf() -> Response:
        return Response(to_pdf(f"<p>致 {NAME} 同志</p>"), media_type="application/pdf")

    @app.get("/parquet")
    def parquet() -> Response:
        buf = io.BytesIO()
        pl.DataFrame({"id_no": [ID]}).write_parquet(buf)
        return Response(buf.getvalue(), media_type="application/vnd.apache.parquet")

    @app.get("/log")
    def logged() -> JSONResponse:
        log.warning("could not pay account %s", ACCOUNT)
        return JSONResponse({})

    @app.get("/boom")
    def boom() -> JSONResponse:
        raise ValueError(f"bad id {ID}")

    return app


def test_the_scanner_finds_each_value_in_each_place() -> None:
    recorder = Recorder()
    remove_log_capture(RECORDER)  # the planted values are this test's, not the session's
    install_log_capture(recorder)
    try:
        client = TestClient(recording(_toy_app(), recorder), raise_server_exceptions=False)
        for url in ("/page", "/api", "/pdf", "/parquet", "/log", "/boom", "/api?reveal=true"):
            client.get(url)
    finally:
        remove_log_capture(recorder)
        install_log_capture(RECORDER)
    where = {f.where.split(" → ")[0].split(":")[0]: f.found for f in recorder.findings}
    assert where["GET /page"] == {"resident ID": [ID]}  # full-width digits count
    assert where["GET /api"] == {"account number": [ACCOUNT]}
    assert where["GET /pdf"] == {"name": [NAME]}  # the PDF's text, not its bytes
    assert where["GET /parquet"] == {"resident ID": [ID]}
    assert where["log line of benefits.web.toy"] == {"account number": [ACCOUNT]}
    assert where["exception ValueError from GET /boom"] == {"resident ID": [ID]}
    assert "GET /api?reveal=true" not in where  # revealed on purpose
    assert recorder.pdfs == 1 and recorder.exceptions == 1 and recorder.log_lines >= 1
    with pytest.raises(AssertionError, match="carry a seeded person's ID"):
        recorder.assert_clean()


def test_the_web_fixtures_route_every_answer_and_log_line_through_the_scan(
    seeded: Seeded,
) -> None:
    before = (RECORDER.responses, RECORDER.log_lines)
    assert seeded.client("auditor").get("/rules").status_code == 200
    logging.getLogger("benefits.web.security").warning("scan check")
    assert RECORDER.responses > before[0] and RECORDER.log_lines > before[1]


def test_the_audit_chain_is_scanned(seeded: Seeded, tmp_path: Path) -> None:
    from benefits.ledger import Ledger, audit

    recorder = Recorder()
    recorder.audit_log(seeded.ctx.db.engine, "the seeded ledger")
    assert recorder.audit_entries > 0 and recorder.findings == []
    other = Ledger(f"sqlite:///{tmp_path / 'planted.sqlite'}")  # not the session's ledgers
    other.init(by="admin")
    try:
        with other.db.transaction() as s:  # an entry that quotes a full ID is caught
            audit.append(s, at=other.db.now(), actor="officer", action="test.leak",
                         object_type="person", object_id="x", after={"note": ID})  # fmt: skip
        recorder.audit_log(other.db.engine, "planted")
    finally:
        other.close()
    assert [f.found for f in recorder.findings] == [{"resident ID": [ID]}]


def test_error_answers_built_from_a_seeded_id_carry_none(seeded: Seeded) -> None:
    """Bad references, bodies and filters holding a real ID: the errors do not echo it."""
    found_before = len(RECORDER.findings)
    token = seeded.token("approver")
    api = TestClient(recording(seeded.app), base_url="http://testserver",
                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    page = seeded.client("auditor")
    answers = [
        api.post("/api/v1/persons/lookup", json={"id_no": ID + "1"}),
        api.post("/api/v1/persons/lookup", json={"id_no": ID, "extra": ID}),
        api.post("/api/v1/persons/lookup", content=b'{"id_no": "' + ID.encode() + b'"'),
        api.get(f"/api/v1/persons/{ID}/explanation"),
        api.get(f"/api/v1/audit/access/users/{ID}"),
        api.post("/api/v1/items/1/release", json={"reason": ID, "account": ACCOUNT + "Z"}),
        page.get(f"/persons/{ID}"),
        page.get(f"/batches/1?community={ID}"),
        page.get(f"/audit/access?person={ID}"),
    ]
    assert all(a.status_code in (401, 403, 404, 422) for a in answers), [
        a.status_code for a in answers
    ]
    assert RECORDER.findings[found_before:] == []
