"""The month in a real browser: Playwright driving Debian's Chromium against uvicorn.

Officer sweeps the sample and submits the batch; approver approves it; auditor opens a
person's explanation and sees masked data; an officer cannot approve, and a section chief
who holds both roles is stopped by the ledger's four-eyes rule on the batch they prepared.
Screenshots of the dashboard, the batch and the explanation are saved in
``artifacts/screenshots/`` (or ``$BENEFITS_SCREENSHOTS``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PASSWORDS, LiveServer

CHROMIUM = Path(os.environ.get("BENEFITS_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("BENEFITS_SCREENSHOTS",
                            Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"))
MASKED_ID = re.compile(r"^[0-9]{6}\*{8}[0-9X]{4}$")

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def sign_in(browser: Browser, server: LiveServer, username: str) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("dialog", lambda d: d.accept())  # the confirm() of data-confirm forms
    page.goto(f"{server.url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard$"))
    return page


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def flash(page: Page) -> str:
    return page.locator("[data-flash]").inner_text()


def test_a_month_in_the_browser(browser: Browser, live_server: LiveServer) -> None:
    server = live_server
    # -- officer: sweep, batch, submit ------------------------------------------------------
    officer = sign_in(browser, server, "officer")
    officer.click("a[href='/runs']")
    officer.fill("#month", "2025-01")
    officer.click("#run-sweep")
    officer.wait_for_url(re.compile(r".*/runs/\d+$"))
    assert "run" in flash(officer)
    officer.click("#create-batch")
    officer.wait_for_url(re.compile(r".*/batches/\d+$"))
    batch_url = officer.url
    batch_id = int(batch_url.rsplit("/", 1)[1])
    expect(officer.locator("h1 .badge")).to_have_text("草稿")
    officer.click("#submit-batch")
    officer.wait_for_load_state()
    expect(officer.locator("h1 .badge")).to_have_text("待审核")
    expect(officer.locator("#approve-batch")).to_have_count(0)  # no approve button for officers

    # an officer is refused approval of their own batch, on the server
    csrf = officer.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = officer.request.post(f"{batch_url}/approve", form={"csrf_token": csrf or ""},
                                   max_redirects=0)
    assert refused.status == 403
    officer.goto(f"{server.url}/dashboard")
    expect(officer.locator("[data-stat=amount]")).not_to_have_text("0.00")
    shot(officer, "dashboard")

    # -- approver: approves ----------------------------------------------------------------
    approver = sign_in(browser, server, "approver")
    approver.goto(batch_url)
    expect(approver.locator("#approve-batch")).to_be_enabled()
    approver.click("#approve-batch")
    approver.wait_for_load_state()
    expect(approver.locator("h1 .badge")).to_have_text("已审核")
    expect(approver.locator("[data-approver]")).to_contain_text("approver")
    approver.goto(f"{batch_url}?held=yes")
    expect(approver.locator("#items-table tbody tr").first).to_be_visible()
    approver.goto(batch_url)
    shot(approver, "batch-detail")

    # -- auditor: explanation, masked --------------------------------------------------------
    auditor = sign_in(browser, server, "auditor")
    auditor.goto(f"{batch_url}?policy=dibao_allowance")
    person = auditor.locator("#items-table a[data-person]").first
    masked_in_list = person.inner_text()
    assert "*" in masked_in_list
    person.click()
    auditor.wait_for_url(re.compile(r".*/persons/[0-9a-f]{24}\?month=2025-01$"))
    assert not re.search(r"[0-9]{17}[0-9X]", auditor.url)  # no resident ID in the URL
    expect(auditor.locator("[data-masked]")).to_be_visible()
    assert "*" in auditor.locator("[data-name]").inner_text()
    assert MASKED_ID.match(auditor.locator("[data-id]").inner_text().strip())
    expect(auditor.locator("#reveal")).to_have_count(0)  # no pii grant, nothing to reveal
    expect(auditor.locator("#decisions")).to_contain_text("最低生活保障金")
    expect(auditor.locator("article.policy").first).to_contain_text("dibao_std")
    expect(auditor.locator("#payments")).to_contain_text(f"#{batch_id}")
    shot(auditor, "person-explanation")
    denied = auditor.request.get(f"{auditor.url}&reveal=true", max_redirects=0)
    assert denied.status == 403

    # -- four eyes: a chief with both roles cannot approve the batch they prepared -----------
    chief = sign_in(browser, server, "chief")
    chief.goto(f"{server.url}/runs")
    chief.fill("#month", "2024-12")
    chief.click("#run-sweep")
    chief.wait_for_url(re.compile(r".*/runs/\d+$"))
    chief.click("#create-batch")
    chief.wait_for_url(re.compile(r".*/batches/\d+$"))
    chief.click("#submit-batch")
    chief.wait_for_load_state()
    expect(chief.locator("[data-four-eyes]")).to_be_visible()
    expect(chief.locator("#approve-batch")).to_be_disabled()
    chief.eval_on_selector("#approve-batch", "b => b.removeAttribute('disabled')")
    chief.click("#approve-batch")
    chief.wait_for_load_state()
    assert "four eyes" in flash(chief)
    expect(chief.locator("h1 .badge")).to_have_text("待审核")
    for page in (officer, approver, auditor, chief):
        page.context.close()
