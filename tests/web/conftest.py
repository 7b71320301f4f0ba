"""Fixtures for the web application's tests.

- ``seeded_template``: once per session, a ledger seeded like ``benefits serve --demo`` but
  with one month (a sweep of the sample for 2025-01, a submitted batch) and known passwords;
- ``seeded``: a private copy of it per test (the SQLite file is copied; sweep outputs are
  shared read-only), with an app and helpers to sign in as each role;
- ``live_server``: the app served by uvicorn on 127.0.0.1 and a random free port, on a fresh
  ledger with users only (the browser test drives the whole month from there);
- ``leak_scan`` (every test): every answer of the clients and the server above, and every log
  line, scanned for clear IDs, accounts and names (tests/security/leakscan.py).
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from benefits.web.app import create_app
from benefits.web.context import WebContext
from benefits.web.demo import create_users, seed_demo
from benefits.web.settings import WebSettings
from tests.security.leakscan import RECORDER, install_log_capture, recording

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "sample"
PASSWORDS = {
    "officer": "officer-pass-1",
    "approver": "approver-pass-1",
    "auditor": "auditor-pass-1",
    "admin": "admin-pass-123",
    "chief": "chief-pass-123",
}
ROLE_USERS = {"officer": "officer", "approver": "approver", "auditor": "auditor",
              "admin": "admin"}


def settings_for(folder: Path, db_file: Path | None = None) -> WebSettings:
    """Settings for a test ledger in `folder`."""
    return WebSettings(
        db=f"sqlite:///{db_file or folder / 'ledger.sqlite'}",
        data=SAMPLE,
        work=folder / "work",
        secret_key="test-secret-key",
    )


def login(client: TestClient, username: str, password: str | None = None) -> TestClient:
    """Sign a TestClient in through the real form (signed CSRF token and cookie)."""
    page = client.get("/login")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    r = client.post(
        "/login",
        data={"username": username, "password": password or PASSWORDS[username],
              "token": token.group(1), "next": "/dashboard"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/dashboard", r.text[:300]
    return client


def csrf_of(client: TestClient) -> str:
    """The CSRF token of the client's session (read from a page's forms)."""
    page = client.get("/rules")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


@dataclass
class Seeded:
    """A seeded ledger with its app."""

    folder: Path
    settings: WebSettings
    app: FastAPI

    @property
    def ctx(self) -> WebContext:
        return self.app.state.ctx

    def client(self, username: str | None = None) -> TestClient:
        c = TestClient(recording(self.app), base_url="http://testserver")
        return login(c, username) if username else c

    def token(self, username: str) -> str:
        token, _ = self.ctx.accounts.create_token(username, "tests", by="admin")
        return token


@pytest.fixture(scope="session", autouse=True)
def leak_scan() -> Iterator[None]:
    """Every answer and log line of the app during these tests is scanned for a seeded
    person's ID, account number or name where the user may not see it
    (tests/security/leakscan.py); the session fails at its end with each finding."""
    install_log_capture()
    yield
    RECORDER.assert_clean()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seeded ledger for the session (copied by `seeded`)."""
    folder = tmp_path_factory.mktemp("web-seed")
    settings = settings_for(folder)
    seed_demo(settings, passwords=PASSWORDS, months=("2025-01",))
    return folder


@pytest.fixture
def seeded(seeded_template: Path, tmp_path: Path) -> Iterator[Seeded]:
    """A private copy of the seeded ledger and an app on it."""
    db_file = tmp_path / "ledger.sqlite"
    shutil.copy(seeded_template / "ledger.sqlite", db_file)
    settings = settings_for(tmp_path, db_file)
    app = create_app(settings)
    yield Seeded(tmp_path, settings, app)
    RECORDER.audit_log(app.state.ctx.db.engine, "the seeded ledger")
    app.state.ctx.ledger.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """The app served by uvicorn in a thread."""

    url: str
    app: FastAPI
    folder: Path


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn in a thread on 127.0.0.1:<free port>; yields its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            recording(app), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:  # pragma: no cover
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """uvicorn on 127.0.0.1:<free port>, a fresh ledger with the demo users only."""
    folder = tmp_path_factory.mktemp("web-live")
    app = create_app(settings_for(folder))
    create_users(app.state.ctx, PASSWORDS)
    with serve(app) as url:
        yield LiveServer(url, app, folder)
    RECORDER.audit_log(app.state.ctx.db.engine, "the live server's ledger")
    app.state.ctx.ledger.close()
