"""The batch page in a real browser at common office widths: nothing is clipped.

Playwright drives Debian's Chromium (as in ``test_web_browser.py``) against uvicorn serving
a copy of the seeded ledger (a submitted batch of the sample's 2025-01). At 1280 and 1440 px
the items table fits its card (no horizontal scrolling hidden at the bottom of a long table)
and the page itself never scrolls sideways. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import serve, settings_for
from playwright.sync_api import Browser, sync_playwright
from test_web_browser import ARGS, CHROMIUM, SHOTS

from benefits.web.app import create_app

PASSWORD = "officer-pass-1"


@pytest.fixture(scope="module")
def seeded_server(seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn on a private copy of the seeded ledger; yields its base URL."""
    folder = tmp_path_factory.mktemp("web-layout")
    shutil.copy(seeded_template / "ledger.sqlite", folder / "ledger.sqlite")
    app = create_app(settings_for(folder, folder / "ledger.sqlite"))
    with serve(app) as url:
        yield url
    app.state.ctx.ledger.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


OVERFLOW = """() => {
  const wrap = document.querySelector('#items-table').closest('.table-wrap');
  const card = document.querySelector('#items');
  return {wrapScroll: wrap.scrollWidth, wrapClient: wrap.clientWidth,
          cardRight: card.getBoundingClientRect().right,
          docScroll: document.documentElement.scrollWidth, viewport: window.innerWidth};
}"""


@pytest.mark.parametrize("width", [1280, 1366, 1440])
@pytest.mark.parametrize("query", ["", "?held=yes"])
def test_batch_items_are_not_clipped(
    browser: Browser, seeded_server: str, width: int, query: str
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{seeded_server}/login")
    page.fill("#username", "officer")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard")
    page.goto(f"{seeded_server}/batches")
    page.click("table a[href^='/batches/']")
    page.wait_for_url("**/batches/*")
    if query:
        page.goto(page.url + query)
    m = page.evaluate(OVERFLOW)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"batch-{width}{'-held' if query else ''}.png"),
                    full_page=True)  # fmt: skip
    assert m["wrapScroll"] <= m["wrapClient"], m  # the table fits its card: nothing hidden
    assert m["docScroll"] <= m["viewport"] and m["cardRight"] <= m["viewport"], m
    context.close()
