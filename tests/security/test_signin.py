"""Issue 14, point 6: sign-in resists abuse without locking offices out.

Throttling by account and by address, the address from X-Forwarded-For only when the peer is a
configured trusted proxy, exponential back-off instead of a long lockout, an admin view to list
and lift back-offs, the last active admin kept, and every failure, back-off and lift in the
audit chain. Time is a controlled clock, never the wall clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from benefits.ledger import Ledger
from benefits.ledger.errors import Conflict
from benefits.ledger.models import AuditEntry
from benefits.web.app import create_app
from benefits.web.auth import AuthError, Throttled
from benefits.web.demo import create_users
from benefits.web.deps import forwarded_client
from benefits.web.settings import WebSettings
from tests.postgres import fresh_schema
from tests.security.leakscan import recording
from tests.web.conftest import PASSWORDS, settings_for

T0 = dt.datetime(2025, 2, 3, 9, 0, tzinfo=dt.UTC)
PROXY = ("10.0.0.5", 40000)


@dataclass
class App:
    """An app on a fresh ledger with the demo users and a clock the test moves."""

    client_factory: object
    now: list[dt.datetime]
    ledger: Ledger
    app: object

    @property
    def accounts(self):  # type: ignore[no-untyped-def]
        return self.app.state.ctx.accounts  # type: ignore[attr-defined]

    def tick(self, seconds: float) -> None:
        self.now[0] += dt.timedelta(seconds=seconds)

    def client(self, peer: tuple[str, int] = ("192.0.2.10", 50000)) -> TestClient:
        app = recording(self.app)
        return TestClient(app, base_url="http://testserver", client=peer)  # type: ignore

    def audit(self, action: str) -> list[AuditEntry]:
        with self.ledger.db.snapshot() as s:
            return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)
                                  .order_by(AuditEntry.seq)).scalars())  # fmt: skip


def _web(tmp_path: Path, url: str | None = None) -> App:
    now = [T0]
    settings = settings_for(tmp_path)
    if url:
        settings.db = url
    settings.trusted_proxies = ("10.0.0.0/24",)
    ledger = Ledger(settings.db, clock=lambda: now[0])
    app = create_app(settings, ledger=ledger)
    create_users(app.state.ctx, PASSWORDS)
    return App(None, now, ledger, app)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[App]:
    """The app on a SQLite ledger."""
    made = _web(tmp_path)
    yield made
    made.ledger.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_web(request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None,
            pg_admin: object) -> Iterator[App]:
    """The app on a SQLite ledger, then on a fresh PostgreSQL schema."""
    urls: Iterator[str | None] = (iter([None]) if request.param == "sqlite"
                                  else fresh_schema(pg_base_url, pg_admin, "sec_t"))  # fmt: skip
    made = _web(tmp_path, next(urls))
    yield made
    made.ledger.close()
    for _ in urls:  # drops the PostgreSQL schema
        pass


def post_login(client: TestClient, username: str, password: str,
               headers: dict[str, str] | None = None) -> tuple[int, str, str | None]:
    """(status, where it redirects, Retry-After) of one sign-in through the real form."""
    page = client.get("/login")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    r = client.post("/login", data={"username": username, "password": password,
                                    "token": token.group(1), "next": "/dashboard"},
                    headers=headers or {}, follow_redirects=False)  # fmt: skip
    return r.status_code, r.headers.get("location", ""), r.headers.get("retry-after")


def signed_in(result: tuple[int, str, str | None]) -> bool:
    return result[0] == 303 and result[1] == "/dashboard"


# ------------------------------------------------------------------------ client address


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = ("10.0.0.0/24",)
    assert forwarded_client("10.0.0.5", ["198.51.100.7"], proxies) == "198.51.100.7"
    # a chain of proxies: the rightmost address that is no trusted proxy is the client
    assert forwarded_client("10.0.0.5", ["1.1.1.1, 198.51.100.7, 10.0.0.9"],
                            proxies) == "198.51.100.7"  # fmt: skip
    # anyone else may not choose their address
    assert forwarded_client("203.0.113.9", ["198.51.100.7"], proxies) == "203.0.113.9"
    assert forwarded_client("10.0.0.5", ["198.51.100.7"], ()) == "10.0.0.5"
    assert forwarded_client("10.0.0.5", [], proxies) == "10.0.0.5"


def test_a_bad_trusted_proxy_setting_is_a_clear_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENEFITS_WEB_TRUSTED_PROXIES", "10.0.0.1, 10.2.0.0/16")
    assert WebSettings(work=tmp_path).trusted_proxies == ("10.0.0.1", "10.2.0.0/16")
    monkeypatch.setenv("BENEFITS_WEB_TRUSTED_PROXIES", "proxy.local")
    with pytest.raises(ValueError, match="BENEFITS_WEB_TRUSTED_PROXIES"):
        WebSettings(work=tmp_path)


def test_rotating_a_forged_forwarded_for_does_not_escape_the_address_limit(web: App) -> None:
    attacker = web.client(("203.0.113.9", 50000))  # not a trusted proxy
    limit = web.app.state.ctx.settings.max_failed_per_address  # type: ignore[attr-defined]
    for i in range(limit):
        post_login(attacker, f"guess{i}", "wrong-password",
                   {"X-Forwarded-For": f"198.51.100.{i}"})  # fmt: skip
    _status, where, retry = post_login(attacker, "officer", PASSWORDS["officer"],
                                      {"X-Forwarded-For": "198.51.100.250"})  # fmt: skip
    assert where == "/login" and retry is not None and int(retry) >= 1


def test_offices_behind_one_proxy_are_told_apart(web: App) -> None:
    """Behind the trusted proxy, one office guessing names does not slow another office."""
    proxy = web.client(PROXY)
    limit = web.app.state.ctx.settings.max_failed_per_address  # type: ignore[attr-defined]
    for i in range(limit + 3):
        post_login(proxy, f"made-up{i}", "wrong-password", {"X-Forwarded-For": "198.51.100.7"})
    assert post_login(proxy, "officer", PASSWORDS["officer"],
                      {"X-Forwarded-For": "198.51.100.7"})[2] is not None  # fmt: skip
    assert signed_in(post_login(web.client(PROXY), "officer", PASSWORDS["officer"],
                                {"X-Forwarded-For": "198.51.100.8"}))  # fmt: skip


# ------------------------------------------------------------------------------ back-off


def test_an_office_behind_one_nat_is_slowed_never_locked_out(web: App) -> None:
    """Many failures with made-up names from one address cost colleagues at most a minute."""
    office = web.client(("192.0.2.10", 50000))
    for i in range(60):
        post_login(office, f"made-up{i}", "wrong-password")
        web.tick(0.1)
    _status, where, retry = post_login(office, "auditor", PASSWORDS["auditor"])
    cap = web.app.state.ctx.settings.address_cap_seconds  # type: ignore[attr-defined]
    assert where == "/login" and retry is not None and 1 <= int(retry) <= cap
    web.tick(cap)
    assert signed_in(post_login(office, "auditor", PASSWORDS["auditor"]))


def test_failures_of_an_account_back_off_exponentially_to_a_cap(any_web: App) -> None:
    web = any_web
    acc = web.accounts
    for _ in range(5):
        with pytest.raises(AuthError):
            acc.login("approver", "wrong-password", "192.0.2.20")
    waits = []
    for _ in range(12):
        with pytest.raises(Throttled) as refused:
            acc.login("approver", PASSWORDS["approver"], "192.0.2.21")  # not even checked
        waits.append(refused.value.retry_after)
        web.tick(refused.value.retry_after)
        with pytest.raises(AuthError) as failed:
            acc.login("approver", "wrong-password", "192.0.2.22")
        assert not isinstance(failed.value, Throttled)
    assert waits[:5] == [1, 2, 4, 8, 16]
    assert max(waits) == 900 and waits[-1] == 900  # the cap, never a long lockout
    # other accounts are not affected, and after the wait the right password works
    acc.login("auditor", PASSWORDS["auditor"], "192.0.2.21")
    web.tick(900)
    acc.login("approver", PASSWORDS["approver"], "192.0.2.21")
    # a success starts the count afresh
    with pytest.raises(AuthError) as again:
        acc.login("approver", "wrong-password", "192.0.2.21")
    assert not isinstance(again.value, Throttled)


# ------------------------------------------------------------------------ audit, admin view


def test_failures_backoffs_and_lifts_are_in_the_audit_chain(any_web: App) -> None:
    web = any_web
    acc = web.accounts
    for _ in range(5):
        with pytest.raises(AuthError):
            acc.login("approver", "wrong-password", "192.0.2.30")
    with pytest.raises(AuthError):
        acc.login("my-secret-password!", "x", "192.0.2.30")  # a password typed as the name
    failed = web.audit("auth.failed")
    assert len(failed) == 6 and failed[0].actor == "approver"
    assert failed[-1].object_id == "?"  # a name that is no account is not kept
    assert not any("my-secret-password" in e.content + e.object_id + e.actor
                   for e in web.ledger.audit_entries(100))  # fmt: skip
    backoff = web.audit("auth.backoff")
    assert [(e.object_type, e.object_id) for e in backoff] == [("account", "approver")]
    assert acc.lift("account", "approver", by="admin")
    lifted = web.audit("auth.unlock")
    assert len(lifted) == 1 and lifted[0].actor == "admin"
    assert web.ledger.verify_audit().ok


def test_an_admin_lists_and_lifts_back_offs_on_the_page_and_the_api(any_web: App) -> None:
    web = any_web
    for _ in range(6):
        web.tick(1)
        with pytest.raises(AuthError):
            web.accounts.login("approver", "wrong-password", "192.0.2.40")
    admin = web.client()
    assert signed_in(post_login(admin, "admin", PASSWORDS["admin"]))
    page = admin.get("/admin/signin-locks")
    assert page.status_code == 200 and "approver" in page.text
    token, _ = web.accounts.create_token("admin", "tests", by="admin")
    api = web.client()
    bearer = {"Authorization": f"Bearer {token}"}
    locks = api.get("/api/v1/signin-locks", headers=bearer).json()["locks"]
    assert {(x["kind"], x["key"]) for x in locks} == {("account", "approver")}
    assert locks[0]["failures"] == 6 and locks[0]["wait_seconds"] == 2
    r = api.post("/api/v1/signin-locks/lift", headers=bearer,
                 json={"kind": "account", "key": "approver"})  # fmt: skip
    assert r.status_code == 200 and r.json()["lifted"] is True
    assert api.get("/api/v1/signin-locks", headers=bearer).json()["locks"] == []
    r = api.post("/api/v1/signin-locks/lift", headers=bearer,
                 json={"kind": "account", "key": "approver"})  # fmt: skip
    assert r.status_code == 404 and "no sign-in back-off" in r.json()["detail"]
    # the right password works at once after the lift
    web.accounts.login("approver", PASSWORDS["approver"], "192.0.2.40")
    # the page's lift button
    for _ in range(5):
        with pytest.raises(AuthError):
            web.accounts.login("auditor", "wrong-password", "192.0.2.41")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                     admin.get("/admin/signin-locks").text).group(1)  # type: ignore[union-attr]
    r = admin.post("/admin/signin-locks/lift", data={"kind": "account", "key": "auditor",
                                                     "csrf_token": csrf},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and web.accounts.locks() == []
    # and no one else may
    officer = web.client()
    assert signed_in(post_login(officer, "officer", PASSWORDS["officer"]))
    assert officer.get("/admin/signin-locks").status_code == 403
    off_token, _ = web.accounts.create_token("officer", "tests", by="admin")
    assert api.get("/api/v1/signin-locks",
                   headers={"Authorization": f"Bearer {off_token}"}).status_code == 403


def test_the_last_active_admin_cannot_be_removed_or_deactivated(web: App) -> None:
    token, _ = web.accounts.create_token("admin", "tests", by="admin")
    api = web.client()
    bearer = {"Authorization": f"Bearer {token}"}
    web.accounts.create_user("second", "second-pass-1", ["officer"], by="admin")
    r = api.post("/api/v1/users/admin", headers=bearer, json={"roles": ["officer"]})
    assert r.status_code == 409 and "last active administrator" in r.json()["detail"]
    # deactivated by anyone else (the command line, another account)
    with pytest.raises(Conflict, match="last active administrator"):
        web.accounts.update_user("admin", by="cli", active=False)
    # the page refuses too, with the reason shown
    admin = web.client()
    assert signed_in(post_login(admin, "admin", PASSWORDS["admin"]))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                     admin.get("/admin/users").text).group(1)  # type: ignore[union-attr]
    r = admin.post("/admin/users/admin", data={"roles": ["officer"], "active": "true",
                                               "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert [u.role_list for u in web.accounts.users() if u.username == "admin"] == [["admin"]]
    # with a second active admin, the first may step down
    r = api.post("/api/v1/users/second", headers=bearer, json={"roles": ["officer", "admin"]})
    assert r.status_code == 200
    r = api.post("/api/v1/users/admin", headers=bearer, json={"roles": ["officer"]})
    assert r.status_code == 200
    # an inactive admin does not count: second is the last active one now
    web.accounts.update_user("admin", by="second", roles=["admin"], active=False)
    with pytest.raises(Conflict, match="last active administrator"):
        web.accounts.update_user("second", by="x", roles=["officer"])
