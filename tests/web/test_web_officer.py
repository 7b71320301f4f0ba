"""What an officer notices in the web app (issue 11, points 3 and 11): account numbers, labels,
times, actions, ordering, PDFs, alerts assignment, filters and cookies."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import Seeded, csrf_of, login
from fastapi.testclient import TestClient

from benefits.web import format as fmt
from benefits.web.app import create_app
from tests.security.leakscan import recording


def _flash(r) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'data-flash="(\w+)">([^<]*)<', r.text)
    return f"{found.group(1)}: {found.group(2)}" if found else ""


# ----------------------------------------------------------------- point 3: account numbers


def test_page_release_refuses_an_invalid_account(seeded: Seeded) -> None:
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    held = ctx.ledger.items(batch.id, status="held", limit=1)[0]
    officer = seeded.client("officer")
    csrf = csrf_of(officer)
    for bad in ("not-a-number", "1234", "6222 0000 1111 2222"):
        r = officer.post(f"/items/{held.id}/release",
                         data={"csrf_token": csrf, "reason": "account fixed", "account": bad,
                               "back": f"/batches/{batch.id}"})  # fmt: skip
        assert r.status_code == 200
        flash = _flash(r)
        assert flash.startswith("error") and "account number" in flash, flash
        assert "--" not in flash
    (still,) = [i for i in ctx.ledger.items(batch.id, status="held", limit=None)
                if i.id == held.id]  # fmt: skip
    assert still.released_by is None and still.account_no == held.account_no


def test_page_release_without_account_speaks_no_cli_options(seeded: Seeded) -> None:
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    held = [i for i in ctx.ledger.items(batch.id, status="held", limit=None) if not i.account_no]
    officer = seeded.client("officer")
    r = officer.post(f"/items/{held[0].id}/release",
                     data={"csrf_token": csrf_of(officer), "reason": "fixed",
                           "back": f"/batches/{batch.id}"})  # fmt: skip
    flash = _flash(r)
    assert flash.startswith("error") and "no account number" in flash
    assert "--account" not in flash and "corrected account number" in flash


def test_api_release_gives_the_ledgers_refusal(seeded: Seeded) -> None:
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    held = ctx.ledger.items(batch.id, status="held", limit=1)[0]
    client = seeded.client()
    headers = {"Authorization": f"Bearer {seeded.token('officer')}"}
    r = client.post(f"/api/v1/items/{held.id}/release", headers=headers,
                    json={"reason": "fixed", "account": "6222-0000-1111"})  # fmt: skip
    assert r.status_code == 422
    assert "an account number has only digits 0-9" in r.json()["detail"]


# ---------------------------------------------------------------- point 11: cookies and times


def test_flash_cookie_is_secure_over_https(seeded: Seeded) -> None:
    client = TestClient(recording(seeded.app), base_url="https://testserver")
    page = client.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": "officer", "password": "wrong", "token": token},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    flash = [c for c in r.headers.get_list("set-cookie") if c.startswith("bnf_flash=")]
    assert flash and all("secure" in c.lower() for c in flash), flash
    plain = seeded.client()
    page = plain.get("/login")
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = plain.post("/login", data={"username": "officer", "password": "wrong", "token": token},
                   follow_redirects=False)  # fmt: skip
    assert not any("secure" in c.lower() for c in r.headers.get_list("set-cookie"))


def test_times_are_shown_in_the_display_zone_everywhere(seeded: Seeded) -> None:
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    approver = seeded.client("approver")
    csrf = csrf_of(approver)
    r = approver.post(f"/batches/{batch.id}/approve", data={"csrf_token": csrf})
    assert _flash(r).startswith("ok")
    approved_at = ctx.ledger.batch(batch.id).batch.approved_at
    local = fmt.when(approved_at, fmt.zone("Asia/Shanghai"))
    assert local in r.text  # the batch page, in Beijing time
    r = approver.post(f"/batches/{batch.id}/approve", data={"csrf_token": csrf})
    flash = _flash(r)
    assert flash.startswith("error") and "already approved" in flash
    assert "UTC" not in flash and f"{local} CST" in flash, flash
    assert "Asia/Shanghai" in r.text  # the footer names the zone


def test_the_display_zone_is_configurable_and_checked(seeded: Seeded) -> None:
    settings = replace(seeded.settings, display_zone="UTC")
    app = create_app(settings)
    try:
        batch = app.state.ctx.ledger.batches()[0]
        client = login(TestClient(recording(app), base_url="http://testserver"), "auditor")
        page = client.get(f"/batches/{batch.id}").text
        assert fmt.when(batch.created_at, fmt.zone("UTC")) in page
        assert fmt.when(batch.created_at, fmt.zone("Asia/Shanghai")) not in page
    finally:
        app.state.ctx.ledger.close()
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        replace(seeded.settings, display_zone="Mars/Olympus")


# ------------------------------------------------------------- point 11: states as the ledger knows


def test_a_payment_is_not_called_paid_before_the_ledger_says_so(
    seeded: Seeded, tmp_path: Path
) -> None:
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]  # submitted
    item = next(i for i in ctx.ledger.items(batch.id, status="pending", limit=None)
                if i.policy_id == "old_age_allowance")  # fmt: skip
    ref = ctx.directory.ref(item.id_no)
    auditor = seeded.client("auditor")

    def decision_cell() -> str:
        html = auditor.get(f"/persons/{ref}?month=2025-01").text
        table = html.split('id="decisions"', 1)[1].split("</table>", 1)[0]
        row = next(r for r in table.split("<tr>") if "p-old_age_allowance" in r)
        return row

    row = decision_cell()
    assert "已发放" not in row and "待审批" in row and "awaiting approval" in row
    letter = auditor.get(f"/persons/{ref}/letter?month=2025-01").text
    assert "已发放" not in letter and "待审批" in letter
    ctx.ledger.approve(batch.id, by="approver")
    assert "已审批，待出盘" in decision_cell()
    ctx.ledger.export(batch.id, tmp_path / "bank.csv", by="approver")
    assert "已报银行" in decision_cell() and "sent to bank" in decision_cell()


# ------------------------------------------------------------- point 11: actions the state allows


def test_run_pages_offer_a_batch_only_when_the_ledger_would_make_one(seeded: Seeded) -> None:
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    officer = seeded.client("officer")
    page = officer.get(f"/runs/{batch.run_id}").text
    assert 'id="create-batch"' not in page and "was created from this run" in page
    listing = officer.get("/runs").text
    assert f'action="/runs/{batch.run_id}/batch"' not in listing
    ctx.ledger.reject(batch.id, by="approver", reason="wrong extract")
    page = officer.get(f"/runs/{batch.run_id}").text
    assert 'id="create-batch"' not in page and "was rejected: run a new sweep" in page
    r = officer.post(f"/runs/{batch.run_id}/batch", data={"csrf_token": csrf_of(officer)})
    assert _flash(r).startswith("error")  # the ledger refuses it too


def test_a_run_of_a_month_with_an_open_batch_offers_no_batch() -> None:
    from benefits.web.services.runs import batch_block

    assert batch_block([], None) is None
    why = batch_block([], {"id": 4, "status": "submitted"})
    assert why is not None and "open batch 4 (submitted)" in why


# ------------------------------------------------------------ point 11: policies by their number


def test_policy_tables_follow_the_handbooks_numbers(seeded: Seeded) -> None:
    ctx = seeded.ctx
    numbers = {p.id: p.number for p in ctx.pack.policies}
    batch = ctx.ledger.batches()[0]
    auditor = seeded.client("auditor")
    page = auditor.get(f"/batches/{batch.id}").text
    totals = page.split("<tbody>", 2)
    linked = re.findall(r'href="[^"]*\?policy=([a-z_]+)"', page)
    in_totals = list(dict.fromkeys(linked))
    assert len(in_totals) >= 5 and totals
    assert [numbers[p] for p in in_totals] == sorted(numbers[p] for p in in_totals)
    select = page.split('id="f-policy"', 1)[1].split("</select>", 1)[0]
    options = re.findall(r'<option value="([a-z_]+)"', select)
    assert [numbers[p] for p in options] == sorted(numbers[p] for p in options)
    api = auditor.get(f"/api/v1/batches/{batch.id}").json()
    keys = [t["key"] for t in api["by_policy"]]
    assert [numbers[k] for k in keys] == sorted(numbers[k] for k in keys)
    sheet = auditor.get(f"/batches/{batch.id}/sheet").text
    first_table = sheet.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    printed = [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", first_table)]
    assert len(printed) >= 5 and printed == sorted(printed)
    run_page = auditor.get(f"/runs/{batch.run_id}").text
    per_policy = run_page.split("Per policy", 1)[1]
    listed = [int(n) for n in re.findall(r"<tr><td>(\d+)\. ", per_policy)]
    assert len(listed) >= 5 and listed == sorted(listed)


# ------------------------------------------------------- point 11: alerts go to those who work them


def test_alerts_are_assigned_only_to_users_who_can_work_them(seeded: Seeded) -> None:
    officer = seeded.client("officer")
    inbox = officer.get("/api/v1/alerts?month=2025-01").json()
    alert_id = inbox["items"][0]["id"]
    csrf = csrf_of(officer)
    for name in ("auditor", "approver", "admin"):
        r = officer.post(f"/alerts/{alert_id}/assign", data={"csrf_token": csrf, "assignee": name})
        flash = _flash(r)
        assert flash.startswith("error") and f"{name} cannot work alerts" in flash, flash
    headers = {"Authorization": f"Bearer {seeded.token('officer')}"}
    r = seeded.client().post(f"/api/v1/alerts/{alert_id}/actions", headers=headers,
                             json={"action": "assign", "assignee": "auditor"})  # fmt: skip
    assert r.status_code == 409 and "cannot work alerts" in r.json()["detail"]  # their roles
    assert officer.get(f"/api/v1/alerts/{alert_id}").json()["assignee"] in (None, "")
    page = officer.get(f"/alerts/{alert_id}").text
    choices = re.findall(r'<option value="([a-z.]+)"',
                         page.split('id="assignee"', 1)[1].split("</select>", 1)[0])
    assert choices == ["chief", "officer"]
    r = officer.post(f"/alerts/{alert_id}/assign", data={"csrf_token": csrf, "assignee": "chief"})
    assert _flash(r).startswith("ok")


# ----------------------------------------------------------------- point 11: no near-empty page


def _last_page_fill(html: str) -> tuple[int, float]:
    """(pages, how much of the last page's height its text fills, 0-1) as WeasyPrint lays
    the report out."""
    from weasyprint import HTML

    from benefits.web.reports import REPORTS_DIR

    doc = HTML(string=html, base_url=str(REPORTS_DIR)).render()
    page = doc.pages[-1]

    def text_bottom(box) -> float:  # type: ignore[no-untyped-def]
        bottom = 0.0
        if getattr(box, "text", None):
            bottom = box.position_y + box.height
        for child in getattr(box, "children", []) or []:
            bottom = max(bottom, text_bottom(child))
        return bottom

    body = page._page_box.children[0]  # the html box (margin boxes come after it)
    top = body.position_y
    return len(doc.pages), (text_bottom(body) - top) / (page.height - 2 * top)


def test_pdf_reports_end_without_a_near_empty_page(seeded: Seeded) -> None:
    from benefits.web import reports

    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]

    class Printer:  # the sheet reads only these of the signed-in user
        username = "officer"
        display_name = "王芳"

    sheet = reports.batch_sheet_html(ctx, batch.id, Printer())  # type: ignore[arg-type]
    pages, fill = _last_page_fill(sheet)
    assert pages == 1 or fill > 0.2, ("approval sheet", pages, fill)
    item = ctx.ledger.items(batch.id, limit=1)[0]
    pages, fill = _last_page_fill(reports.letter_html(ctx, item.id_no, "2025-01", False))
    assert pages == 1 or fill > 0.2, ("letter", pages, fill)
    pdf = seeded.client("auditor").get(f"/batches/{batch.id}/sheet.pdf")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"


# ------------------------------------------------------------ point 11: community codes checked


def test_community_filters_take_only_a_community_code(seeded: Seeded) -> None:
    batch = seeded.ctx.ledger.batches()[0]
    client = seeded.client("auditor")
    good = client.get(f"/api/v1/batches/{batch.id}/items").json()["items"][0]["community"]
    assert re.fullmatch(r"[0-9]{9}", good)
    assert client.get(f"/api/v1/batches/{batch.id}/items?community={good}").json()["count"] > 0
    for bad in ("c1", "翠苑一区", "33010600", "330106001%20OR%201=1"):
        r = client.get(f"/batches/{batch.id}?community={bad}")
        assert r.status_code == 422 and "community" in r.text
        r = client.get(f"/api/v1/batches/{batch.id}/items?community={bad}")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "community"
        assert client.get(f"/alerts?community={bad}").status_code == 422
        assert client.get(f"/api/v1/alerts?community={bad}").status_code == 422


def test_serve_refuses_an_unknown_time_zone_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from benefits.cli import app

    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 'x.sqlite'}",
                                      "--timezone", "Mars/Olympus"])  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "unknown time zone 'Mars/Olympus'" in result.output
