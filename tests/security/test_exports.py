"""Issue 14, point 3: output limits — every file of personal data goes through one export
service that masks by class, asks a purpose and a second person for bulk exports, limits rows
per export and per day, watermarks each file and chains its SHA-256.

Each rule and each refusal is exercised through the real app (TestClient): pages and API.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import subprocess
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from benefits.ledger.models import AuditEntry
from benefits.web.models import ExportRequest
from tests.web.conftest import Seeded, csrf_of


def _limits(seeded: Seeded, **changes: Any) -> None:
    settings = seeded.ctx.settings
    settings.exports = dataclasses.replace(settings.exports, **changes)


def _api(seeded: Seeded, username: str) -> TestClient:
    client = seeded.client()
    client.headers["Authorization"] = f"Bearer {seeded.token(username)}"
    return client


def _batch(seeded: Seeded) -> tuple[int, list[Any]]:
    batch = seeded.ctx.ledger.batches()[0]
    return batch.id, seeded.ctx.ledger.items(batch.id, limit=100_000)


def _entries(seeded: Seeded, action: str) -> list[AuditEntry]:
    return [e for e in seeded.ctx.ledger.audit_entries(100_000) if e.action == action]


def _after(entry: AuditEntry) -> dict[str, Any]:
    return json.loads(entry.content)["after"]


def _request(client: TestClient, batch_id: int, **body: Any) -> Any:
    return client.post("/api/v1/exports", json={"batch_id": batch_id, **body})


def _csv_rows(data: bytes) -> tuple[str, list[dict[str, str]]]:
    text = data.decode("utf-8")
    first, rest = text.split("\n", 1)
    return first, list(csv.DictReader(io.StringIO(rest)))


def test_a_small_export_is_masked_watermarked_audited_and_downloaded_once(
    seeded: Seeded,
) -> None:
    batch_id, items = _batch(seeded)
    _limits(seeded, bulk_persons=100_000)
    approver = _api(seeded, "approver")  # no pii grant
    r = _request(approver, batch_id, purpose="核对批次 / check the batch")
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["status"] == "approved" and not req["bulk"] and req["rows"] == len(items)
    got = approver.get(f"/api/v1/exports/{req['id']}/download")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    mark, rows = _csv_rows(got.content)
    assert mark.startswith("# benefits export · by approver · at ")
    assert "purpose: 核对批次 / check the batch" in mark and f"request {req['id']}" in mark
    assert "class personal" in mark
    assert len(rows) == len(items)
    for item, row in zip(items, rows, strict=True):
        assert row["item"] == str(item.id)
        assert row["id_no"] != item.id_no and row["id_no"].endswith(item.id_no[-4:])
        assert "********" in row["id_no"]
        if item.account_no:
            assert row["account_no"] != item.account_no
            assert row["account_no"].endswith(item.account_no[-4:])
    text = got.content.decode("utf-8")
    assert not [i.id_no for i in items if i.id_no in text]
    assert not [i.account_no for i in items if i.account_no and i.account_no in text]
    # the file's SHA-256 is in the chain, with the watermark; the persons in the tracking
    sha = hashlib.sha256(got.content).hexdigest()
    files = _entries(seeded, "export.file")
    assert _after(files[-1])["sha256"] == sha and files[-1].actor == "approver"
    assert _after(files[-1])["watermark"]["purpose"] == "核对批次 / check the batch"
    views = [e for e in _entries(seeded, "data.view") if e.object_id == f"export {req['id']}"]
    assert len(views) == 1 and _after(views[0])["count"] == len({i.id_no for i in items})
    assert approver.get("/api/v1/exports").json()["mine"][0]["sha256"] == sha
    # once only
    again = approver.get(f"/api/v1/exports/{req['id']}/download")
    assert again.status_code == 409 and "downloaded once" in again.json()["detail"]


def test_revealing_needs_the_pii_grant(seeded: Seeded) -> None:
    batch_id, items = _batch(seeded)
    _limits(seeded, bulk_persons=100_000)
    r = _request(_api(seeded, "approver"), batch_id, reveal=True)
    assert r.status_code == 403 and "pii" in r.json()["detail"]
    officer = _api(seeded, "officer")  # holds the pii grant
    req = _request(officer, batch_id, reveal=True, format="csv").json()
    got = officer.get(f"/api/v1/exports/{req['id']}/download")
    assert got.status_code == 200
    mark, rows = _csv_rows(got.content)
    assert "class sensitive" in mark
    assert [r["id_no"] for r in rows] == [i.id_no for i in items]
    assert [r["account_no"] for r in rows] == [i.account_no or "" for i in items]
    assert [e for e in _entries(seeded, "pii.view") if e.object_id == f"export {req['id']}"]


def test_a_bulk_export_needs_a_purpose_and_a_second_person(seeded: Seeded) -> None:
    batch_id, items = _batch(seeded)
    _limits(seeded, bulk_persons=1)
    officer = _api(seeded, "officer")
    refused = _request(officer, batch_id)
    assert refused.status_code == 409 and "needs a stated purpose" in refused.json()["detail"]
    req = _request(officer, batch_id, purpose="银行核对 / reconcile with the bank").json()
    assert req["status"] == "requested" and req["bulk"] and req["persons"] > 1
    waiting = officer.get(f"/api/v1/exports/{req['id']}/download")
    assert waiting.status_code == 409 and "only an approved export" in waiting.json()["detail"]
    own = officer.post(f"/api/v1/exports/{req['id']}/approve")
    assert own.status_code == 403 and "four eyes" in own.json()["detail"]
    refusals = _entries(seeded, "security.approval_refused")
    assert refusals[-1].object_type == "export" and refusals[-1].object_id == str(req["id"])
    auditor = _api(seeded, "auditor")
    assert auditor.post(f"/api/v1/exports/{req['id']}/approve").status_code == 403
    approver = _api(seeded, "approver")
    listed = approver.get("/api/v1/exports").json()["to_decide"]
    assert [r["id"] for r in listed] == [req["id"]] and listed[0]["can_decide"]
    ok = approver.post(f"/api/v1/exports/{req['id']}/approve")
    assert ok.status_code == 200 and ok.json()["decided_by"] == "approver"
    assert approver.post(f"/api/v1/exports/{req['id']}/approve").status_code == 409
    # only the requester downloads, once
    assert approver.get(f"/api/v1/exports/{req['id']}/download").status_code == 403
    got = officer.get(f"/api/v1/exports/{req['id']}/download")
    assert got.status_code == 200 and len(_csv_rows(got.content)[1]) == len(items)
    assert _after(_entries(seeded, "export.file")[-1])["approved_by"] == "approver"
    assert officer.get(f"/api/v1/exports/{req['id']}/download").status_code == 409


def test_a_revealed_bulk_export_is_approved_only_with_the_pii_grant(seeded: Seeded) -> None:
    batch_id, _ = _batch(seeded)
    _limits(seeded, bulk_persons=1)
    req = _request(_api(seeded, "officer"), batch_id, reveal=True, purpose="bank").json()
    chief = _api(seeded, "chief")  # officer and approver, without the pii grant
    r = chief.post(f"/api/v1/exports/{req['id']}/approve")
    assert r.status_code == 403 and "pii" in r.json()["detail"]


def test_a_refusal_needs_a_reason_and_closes_the_request(seeded: Seeded) -> None:
    batch_id, _ = _batch(seeded)
    _limits(seeded, bulk_persons=1)
    officer = _api(seeded, "officer")
    req = _request(officer, batch_id, purpose="curiosity").json()
    approver = _api(seeded, "approver")
    r = approver.post(f"/api/v1/exports/{req['id']}/refuse", json={})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "note"]
    page = seeded.client("approver")  # the page form says why
    r = page.post(f"/exports/{req['id']}/refuse", data={"csrf_token": csrf_of(page)},
                  follow_redirects=True)  # fmt: skip
    assert "say why the export is refused" in r.text
    r = approver.post(f"/api/v1/exports/{req['id']}/refuse", json={"note": "no need"})
    assert r.status_code == 200 and r.json()["status"] == "refused"
    assert _entries(seeded, "export.refuse")[-1].actor == "approver"
    got = officer.get(f"/api/v1/exports/{req['id']}/download")
    assert got.status_code == 409 and "refused" in got.json()["detail"]


def test_an_approval_expires(seeded: Seeded) -> None:
    batch_id, _ = _batch(seeded)
    _limits(seeded, bulk_persons=100_000, approval_hours=2)
    officer = _api(seeded, "officer")
    req = _request(officer, batch_id).json()
    with seeded.ctx.db.transaction() as s:
        s.execute(update(ExportRequest).where(ExportRequest.id == req["id"])
                  .values(decided_at=seeded.ctx.db.now() - dt.timedelta(hours=3)))  # fmt: skip
    r = officer.get(f"/api/v1/exports/{req['id']}/download")
    assert r.status_code == 409 and "expired" in r.json()["detail"]


def test_rows_per_export_and_per_day_are_limited(seeded: Seeded) -> None:
    batch_id, items = _batch(seeded)
    assert len(items) > 6
    _limits(seeded, bulk_persons=100_000, max_rows=5)
    officer = _api(seeded, "officer")
    r = _request(officer, batch_id)
    assert r.status_code == 409 and "limit of 5 rows per export" in r.json()["detail"]
    _limits(seeded, max_rows=100_000, max_rows_per_day=len(items) + 3)
    req = _request(officer, batch_id).json()
    assert officer.get(f"/api/v1/exports/{req['id']}/download").status_code == 200
    # API lists count against the same rows: 3 left
    page = officer.get(f"/api/v1/batches/{batch_id}/items?per_page=3")
    assert page.status_code == 200
    over = officer.get(f"/api/v1/batches/{batch_id}/items?per_page=1")
    assert over.status_code == 429 and "daily limit reached" in over.json()["detail"]
    assert officer.get("/api/v1/alerts").status_code == 429
    assert _request(officer, batch_id).status_code == 429
    # another user's rows are their own
    assert _api(seeded, "approver").get(f"/api/v1/batches/{batch_id}/items").status_code == 200


def test_a_parquet_export_carries_its_watermark_in_the_metadata(
    seeded: Seeded, tmp_path: Any
) -> None:
    batch_id, items = _batch(seeded)
    _limits(seeded, bulk_persons=100_000)
    auditor = _api(seeded, "auditor")
    req = _request(auditor, batch_id, format="parquet", purpose="年度审计 / yearly audit").json()
    got = auditor.get(f"/api/v1/exports/{req['id']}/download")
    assert got.status_code == 200 and got.content[:4] == b"PAR1"
    path = tmp_path / "x.parquet"
    path.write_bytes(got.content)
    meta = pl.read_parquet_metadata(path)
    assert meta["benefits.export.by"] == "auditor"
    assert meta["benefits.export.purpose"] == "年度审计 / yearly audit"
    assert meta["benefits.watermark"].startswith("benefits export · by auditor")
    frame = pl.read_parquet(path)
    assert frame.height == len(items)
    assert not set(frame["id_no"].to_list()) & {i.id_no for i in items}
    assert _after(_entries(seeded, "export.file")[-1])["sha256"] == hashlib.sha256(
        got.content).hexdigest()  # fmt: skip


def _pdf_text(pdf: bytes) -> str | None:
    tool = shutil.which("pdftotext")
    if tool is None:
        return None
    return subprocess.run([tool, "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode("utf-8")  # fmt: skip


def test_the_pdf_is_printed_from_html_carrying_the_watermark(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benefits.web.services import exports as export_service

    printed: list[str] = []
    monkeypatch.setattr(export_service, "to_pdf", lambda html: printed.append(html) or b"%PDF-1.7")
    _, items = _batch(seeded)
    ref = seeded.ctx.directory.ref(items[0].id_no)
    officer = seeded.client("officer")
    got = officer.get(f"/persons/{ref}/letter.pdf?month=2025-01")
    assert got.status_code == 200 and len(printed) == 1
    mark = re.search(r'<p class="export-watermark"[^>]*>([^<]*)</p>\s*</body>', printed[0])
    assert mark, printed[0][-500:]
    assert mark.group(1).startswith("benefits export · by officer · at ")
    assert "purpose: 出具告知书 / issue the notice of decisions" in mark.group(1)
    assert mark.group(1).endswith("class personal")


def test_pdf_reports_are_watermarked_audited_and_counted(seeded: Seeded) -> None:
    batch_id, items = _batch(seeded)
    ref = seeded.ctx.directory.ref(items[0].id_no)
    officer = seeded.client("officer")
    for url in (f"/persons/{ref}/letter.pdf?month=2025-01", f"/batches/{batch_id}/sheet.pdf"):
        got = officer.get(url)
        assert got.status_code == 200 and got.content[:5] == b"%PDF-", url
        entry = _entries(seeded, "export.file")[-1]
        assert _after(entry)["sha256"] == hashlib.sha256(got.content).hexdigest(), url
        assert _after(entry)["format"] == "pdf" and entry.actor == "officer"
        text = _pdf_text(got.content)
        if text is not None:
            assert "benefits export · by officer" in text.replace("\n", " "), url
    _limits(seeded, max_rows_per_day=1)  # two PDFs taken already today
    refused = officer.get(f"/persons/{ref}/letter.pdf?month=2025-01")
    assert refused.status_code == 429 and "daily limit reached" in refused.text


def test_the_exports_page_requests_approves_and_downloads(seeded: Seeded) -> None:
    batch_id, items = _batch(seeded)
    _limits(seeded, bulk_persons=1)
    officer = seeded.client("officer")
    assert f'href="/exports?batch={batch_id}"' in officer.get(f"/batches/{batch_id}").text
    page = officer.get(f"/exports?batch={batch_id}")
    assert page.status_code == 200 and 'id="export-form"' in page.text
    token = csrf_of(officer)
    r = officer.post("/exports", data={"csrf_token": token, "batch_id": str(batch_id),
                                       "fmt": "csv", "purpose": ""}, follow_redirects=True)
    assert "needs a stated purpose" in r.text
    r = officer.post("/exports", data={"csrf_token": token, "batch_id": str(batch_id),
                                       "fmt": "csv", "purpose": "check"}, follow_redirects=True)
    assert "another user must approve" in r.text
    with seeded.ctx.db.snapshot() as s:
        req_id = s.query(ExportRequest.id).order_by(ExportRequest.id.desc()).first()[0]
    r = officer.post(f"/exports/{req_id}/approve", data={"csrf_token": token},
                     follow_redirects=True)  # fmt: skip
    assert "four eyes" in r.text
    approver = seeded.client("approver")
    page = approver.get("/exports")
    assert f'action="/exports/{req_id}/approve"' in page.text
    r = approver.post(f"/exports/{req_id}/approve", data={"csrf_token": csrf_of(approver)},
                      follow_redirects=True)  # fmt: skip
    assert "approved" in r.text
    page = officer.get("/exports")
    assert f'href="/exports/{req_id}/download"' in page.text
    got = officer.get(f"/exports/{req_id}/download")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    assert len(_csv_rows(got.content)[1]) == len(items)
    assert officer.get(f"/exports/{req_id}/download").status_code == 409
    assert seeded.client("admin").get("/exports").status_code == 403


def test_the_bank_file_from_the_cli_has_its_watermark_and_sha256_in_the_chain(
    seeded: Seeded, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from benefits.cli import app
    from benefits.exports import BANK_PURPOSE

    ledger = seeded.ctx.ledger
    batch = ledger.batches()[0]
    ledger.approve(batch.id, "approver")
    bank = tmp_path / "bank.csv"
    args = ["batch", "export", str(batch.id), "--to", str(bank), "--by", "carol"]
    env = {"BENEFITS_DATABASE_URL": str(seeded.settings.db)}
    for action in ("batch.export", "batch.export.rewrite"):  # the export, and again
        done = CliRunner().invoke(app, args, env=env)
        assert done.exit_code == 0, done.output
        after = _after(_entries(seeded, action)[-1])
        assert after["sha256"] == hashlib.sha256(bank.read_bytes()).hexdigest()
        assert after["watermark"]["by"] == "carol" and after["watermark"]["at"].endswith("Z")
        assert after["purpose"] == BANK_PURPOSE and after["class"] == "sensitive"
        assert after["approved_by"] == "approver"


def test_pages_that_list_persons_count_toward_the_daily_rows(seeded: Seeded) -> None:
    """Every way data leaves counts: HTML lists by rows shown, one-person pages one row."""
    from benefits.web.services.exports import used_today

    batch_id, items = _batch(seeded)
    officer = seeded.client("officer")
    assert used_today(seeded.ctx, "officer") == 0
    assert officer.get(f"/batches/{batch_id}").status_code == 200
    shown = min(len(items), 50)
    assert used_today(seeded.ctx, "officer") == shown
    ref = seeded.ctx.directory.ref(items[0].id_no)
    assert officer.get(f"/persons/{ref}?month=2025-01").status_code == 200
    assert officer.get(f"/persons/{ref}/letter?month=2025-01").status_code == 200
    assert used_today(seeded.ctx, "officer") == shown + 2
    inbox = officer.get("/alerts?month=2025-01")
    listed = inbox.text.count('href="/alerts/')
    assert inbox.status_code == 200 and listed > 0
    used = used_today(seeded.ctx, "officer")
    assert used > shown + 2
    _limits(seeded, max_rows_per_day=used)  # nothing left today
    for url in (f"/batches/{batch_id}", f"/persons/{ref}?month=2025-01", "/alerts?month=2025-01",
                f"/api/v1/persons/{ref}/explanation?month=2025-01"):
        refused = officer.get(url)
        assert refused.status_code == 429 and "daily limit reached" in refused.text, url
    # the auditor's access report of a user lists persons: counted too
    auditor = seeded.client("auditor")
    assert auditor.get("/audit/access?user=officer").status_code == 200
    assert used_today(seeded.ctx, "auditor") > 0
