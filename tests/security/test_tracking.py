"""Issue 14, point 4: data tracking — who saw whose data, when, of what class and why.

Every route kind that serves a person's data writes exactly one audit entry per request, with
the class and the purpose and the persons by keyed blind index (never an ID in clear); an
auditor lists who saw one person's data (page, PDF, API) and whose data one user saw; an
account revealing far more persons than its peers in an hour raises an alert admins see.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from typing import Any

import pytest

from benefits.idcard import make_id, mask_id
from benefits.ledger import Ledger
from benefits.ledger.models import AuditEntry
from benefits.web import tracking
from tests.web.conftest import Seeded


def _entries(seeded: Seeded, after_seq: int) -> list[AuditEntry]:
    return [e for e in seeded.ctx.ledger.audit_entries(10_000) if e.seq > after_seq]


def _head(seeded: Seeded) -> int:
    found = seeded.ctx.ledger.audit_entries(1)
    return found[0].seq if found else 0


def _after(entry: AuditEntry) -> dict[str, Any]:
    return json.loads(entry.content)["after"]


def _known_ids(seeded: Seeded) -> list[str]:
    seeded.ctx.know_all()
    return seeded.ctx.directory.known_ids()


def _one_person(seeded: Seeded) -> tuple[str, str, int]:
    """(ID, reference, batch) of a person with an item in the seeded batch."""
    ctx = seeded.ctx
    batch = ctx.ledger.batches()[0]
    item = ctx.ledger.items(batch.id, limit=1)[0]
    return item.id_no, ctx.directory.ref(item.id_no), batch.id


def test_every_route_kind_writes_one_entry_with_class_and_purpose(seeded: Seeded) -> None:
    ctx = seeded.ctx
    id_no, ref, batch_id = _one_person(seeded)
    officer = seeded.client("officer")  # the demo officer holds the pii grant
    api = seeded.client()
    api.headers["Authorization"] = f"Bearer {seeded.token('officer')}"
    api.get("/api/v1/me")  # the token's first use of the day is its own entry
    index = ctx.db.keys.blind_index(id_no)[1]
    calls: list[tuple[Any, str, str, str, str]] = [
        # (client, url, action, class, what)
        (officer, f"/persons/{ref}?month=2025-01", "data.view", "personal", "explanation page"),
        (officer, f"/persons/{ref}?month=2025-01&reveal=true&reason=phone%20call%20from%20her",
         "pii.view", "sensitive", "explanation page"),
        (officer, f"/persons/{ref}/letter?month=2025-01", "data.view", "personal",
         "explanation letter"),
        (officer, f"/persons/{ref}/letter.pdf?month=2025-01&reveal=true", "pii.view",
         "sensitive", "explanation letter (PDF)"),
        (api, f"/api/v1/persons/{ref}/explanation?month=2025-01", "data.view", "personal",
         "explanation (API)"),
        (officer, f"/batches/{batch_id}", "data.view", "personal", "batch items (page)"),
        (api, f"/api/v1/batches/{batch_id}/items?per_page=500", "data.view", "personal",
         "batch items (API)"),
        (officer, "/alerts", "data.view", "personal", "alerts inbox (page)"),
        (api, "/api/v1/alerts", "data.view", "personal", "alerts inbox (API)"),
        (officer, "/alerts/1", "data.view", "personal", "alert 1"),
        (api, "/api/v1/alerts/1", "data.view", "personal", "alert 1 (API)"),
    ]
    ids = _known_ids(seeded)
    for client, url, action, cls, what in calls:
        before = _head(seeded)
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        new = _entries(seeded, before)
        if url.endswith(".pdf") or ".pdf?" in url:  # a file: its SHA-256 too (output limits)
            files = [e for e in new if e.action == "export.file"]
            assert len(files) == 1 and json.loads(files[0].content)["after"]["format"] == "pdf"
            new = [e for e in new if e.action != "export.file"]
        assert len(new) == 1, (url, [e.action for e in new])  # one append per request
        entry, after = new[0], _after(new[0])
        assert entry.actor == "officer" and entry.action == action, url
        assert after["class"] == cls and after["what"] == what, url
        assert after["purpose"] in tracking.PURPOSES.values(), url
        assert after["index_key"] and after["count"] == len(after["persons"]) >= 1
        assert all(len(p) == 32 for p in after["persons"])
        if "/persons/" in url or "/alerts/1" in url:
            assert entry.object_type == "person" and "********" in entry.object_id
        else:  # a list: one entry naming the list and every person on it
            assert entry.object_type == "persons" and "page" in entry.object_id
        if "persons" in url and "alerts" not in url:
            assert after["persons"] == [index] and entry.object_id == mask_id(id_no)
        leaked = [i for i in ids if i in entry.content or i in entry.object_id]
        assert leaked == [], url
    reveal = [e for e in _entries(seeded, 0) if e.action == "pii.view"]
    assert _after(reveal[0])["reason"] == "phone call from her"
    # the page's reveal button is a form asking for the reason
    form = officer.get(f"/persons/{ref}?month=2025-01").text
    assert 'id="reveal-form"' in form and 'name="reason"' in form
    # a 500-item page is still one entry, every person of the page in it
    items = api.get(f"/api/v1/batches/{batch_id}/items?per_page=500").json()
    last = ctx.ledger.audit_entries(1)[0]
    assert _after(last)["count"] == len({i["ref"] for i in items["items"]})
    assert ctx.ledger.verify_audit().ok


def test_a_reveal_without_the_grant_is_refused_and_not_recorded_as_a_view(
    seeded: Seeded,
) -> None:
    _, ref, _ = _one_person(seeded)
    approver = seeded.client("approver")
    before = _head(seeded)
    r = approver.get(f"/persons/{ref}?reveal=true")
    assert r.status_code == 403
    assert [e.action for e in _entries(seeded, before)] == ["security.forbidden"]


def test_the_access_report_lists_exactly_who_saw_a_person(seeded: Seeded) -> None:
    ctx = seeded.ctx
    id_no, ref, batch_id = _one_person(seeded)
    other = next(i for i in _known_ids(seeded) if i != id_no)
    officer, approver = seeded.client("officer"), seeded.client("approver")
    assert officer.get(f"/persons/{ref}?month=2025-01&reveal=true").status_code == 200
    assert officer.get(f"/persons/{ref}/letter?month=2025-01").status_code == 200
    assert approver.get(f"/persons/{ctx.directory.ref(other)}").status_code == 200
    # the chief sees the person on a batch page (one entry for the whole page)
    assert seeded.client("chief").get(f"/batches/{batch_id}").status_code == 200

    auditor = seeded.client("auditor")
    page = auditor.get(f"/audit/access?person={ref}")
    assert page.status_code == 200
    users = sorted(set(_attr(page.text, "data-user")))
    assert users == ["chief", "officer"]
    assert id_no not in page.text and id_no[:6] + "********" + id_no[-4:] in page.text

    api = seeded.client()
    api.headers["Authorization"] = f"Bearer {seeded.token('auditor')}"
    body = api.get(f"/api/v1/audit/access/persons/{ref}").json()
    # the auditor's own look at the report page is an access too, and is listed
    assert sorted(u["user"] for u in body["users"]) == ["auditor", "chief", "officer"]
    officer_row = next(u for u in body["users"] if u["user"] == "officer")
    assert (officer_row["views"], officer_row["reveals"]) == (1, 1)
    kinds = {(a["actor"], a["what"], a["class"]) for a in body["accesses"]}
    assert ("officer", "explanation page", "sensitive") in kinds
    assert ("chief", "batch items (page)", "personal") in kinds
    assert ("auditor", "access report (page)", "personal") in kinds
    assert id_no not in json.dumps(body)

    pdf = auditor.get(f"/audit/access.pdf?person={ref}")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    text = _pdf_text(pdf.content)
    if text is not None:
        assert "officer" in text and "chief" in text and "auditor" in text
        assert "approver" not in text
        assert id_no not in text


def test_the_access_report_finds_a_person_by_id_in_the_body(seeded: Seeded) -> None:
    id_no, ref, _ = _one_person(seeded)
    auditor = seeded.client("auditor")
    from tests.web.conftest import csrf_of

    r = auditor.post("/audit/access", data={"person": id_no, "csrf_token": csrf_of(auditor)},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/audit/access?person={ref}"
    r = auditor.post("/audit/access", data={"person": "330106190001010000",
                                            "csrf_token": csrf_of(auditor)},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/audit/access"


def test_the_user_report_lists_whose_data_a_user_saw(seeded: Seeded) -> None:
    ctx = seeded.ctx
    id_no, ref, _ = _one_person(seeded)
    other = next(i for i in _known_ids(seeded) if i != id_no)
    officer = seeded.client("officer")
    officer.get(f"/persons/{ref}")
    officer.get(f"/persons/{ref}?reveal=true")
    officer.get(f"/persons/{ctx.directory.ref(other)}")
    seeded.client("approver").get(f"/persons/{ref}")  # someone else's look is not listed

    api = seeded.client()
    api.headers["Authorization"] = f"Bearer {seeded.token('admin')}"
    body = api.get("/api/v1/audit/access/users/officer").json()
    seen = {p["ref"]: (p["views"], p["reveals"]) for p in body["persons"]}
    assert seen == {ref: (1, 1), ctx.directory.ref(other): (1, 0)}
    assert id_no not in json.dumps(body) and other not in json.dumps(body)
    page = seeded.client("admin").get("/audit/access?user=officer")
    assert page.status_code == 200 and f"/audit/access?person={ref}" in page.text
    assert api.get("/api/v1/audit/access/users/nobody").status_code == 404
    assert api.get(f"/api/v1/audit/access/persons/{'0' * 24}").status_code == 404
    assert api.get("/api/v1/audit/access/persons/not-a-ref").status_code == 422


@pytest.mark.parametrize("role", ["officer", "approver"])
def test_only_auditors_and_admins_read_the_access_report(seeded: Seeded, role: str) -> None:
    _, ref, _ = _one_person(seeded)
    assert seeded.client(role).get(f"/audit/access?person={ref}").status_code == 403
    api = seeded.client()
    api.headers["Authorization"] = f"Bearer {seeded.token(role)}"
    assert api.get(f"/api/v1/audit/access/persons/{ref}").status_code == 403


def test_an_account_revealing_far_more_than_its_peers_raises_an_admin_alert(
    seeded: Seeded,
) -> None:
    db = seeded.ctx.db
    many = [make_id("330106", dt.date(1950, 1, 1) + dt.timedelta(days=d), 7) for d in range(40)]

    def reveal(actor: str, ids: list[str]) -> None:
        for i in ids:
            tracking.record_access(db, actor=actor, what="explanation page",
                                   purpose=tracking.PURPOSES["person"], id_nos=[i],
                                   data_class="sensitive", reveal=True)  # fmt: skip

    reveal("peer1", many[:3])
    reveal("peer2", many[:4])
    # peers' median 3.5: 3 × 3.5 = 10.5, so the floor of 20 decides: the alert comes with
    # the 21st distinct person, not before.
    reveal("officer", many[:20])
    assert tracking.unusual_notices(db) == []
    reveal("officer", many[:20])  # the same persons again: still 20 distinct
    assert tracking.unusual_notices(db) == []
    reveal("officer", many[20:21])
    notices = tracking.unusual_notices(db)
    assert [(n["user"], n["persons_revealed"]) for n in notices] == [("officer", 21)]
    reveal("officer", many[21:30])  # once an hour, not once per reveal
    assert len(tracking.unusual_notices(db)) == 1
    entry = seeded.ctx.ledger.audit_entries(100)
    alert = next(e for e in entry if e.action == "security.unusual_access")
    assert alert.actor == "system" and alert.object_id == "officer"
    assert not any(i in e.content for e in entry for i in many)

    # the admins see it on every page; others do not
    page = seeded.client("admin").get("/admin/users")
    assert 'data-unusual-access="officer"' in page.text
    assert "data-unusual-access" not in seeded.client("auditor").get("/audit").text
    assert seeded.ctx.ledger.verify_audit().ok


def test_peers_revealing_as_much_raise_no_alert(seeded: Seeded) -> None:
    db = seeded.ctx.db
    ids = [make_id("330106", dt.date(1960, 1, 1) + dt.timedelta(days=d), 3) for d in range(30)]
    for i in ids:  # three accounts at the same pace: 30 each, none far above the others
        for actor in ("a1", "a2", "officer"):
            tracking.record_access(db, actor=actor, what="page", purpose="p", id_nos=[i],
                                   data_class="sensitive", reveal=True)  # fmt: skip
    assert tracking.unusual_notices(db) == []
    # masked views do not count: they are not reveals
    tracking.record_access(db, actor="a3", what="batch", purpose="p", id_nos=ids * 3,
                           data_class="personal", reference="batch 1 page 1")
    assert tracking.unusual_notices(db) == []


def test_reports_and_the_alert_on_each_backend(ledger: Ledger) -> None:
    """The ledger functions alone, on SQLite and PostgreSQL: reports and the hourly window."""
    db = ledger.db
    ids = [make_id("330106", dt.date(1970, 1, 1) + dt.timedelta(days=d), 5) for d in range(25)]
    tracking.record_access(db, actor="li", what="batch items (page)", purpose="p", id_nos=ids,
                           data_class="personal", reference="batch 1 page 1")  # fmt: skip
    for i in ids[:22]:
        tracking.record_access(db, actor="wang", what="explanation page", purpose="p",
                               id_nos=[i], data_class="sensitive", reveal=True)  # fmt: skip
    report = tracking.person_report(db, ids[0])
    assert [(u["user"], u["views"], u["reveals"]) for u in report["users"]] == [
        ("li", 1, 0), ("wang", 0, 1)]
    assert tracking.person_report(db, ids[24])["users"][0]["user"] == "li"
    mine = tracking.user_report(db, "wang", ids, lambda i: i[-4:])
    assert len(mine["persons"]) == 22 and len(mine["accesses"]) == 22
    notices = tracking.unusual_notices(db)
    assert [(n["user"], n["persons_revealed"]) for n in notices] == [("wang", 21)]
    assert not any(i in e.content for e in ledger.audit_entries(100) for i in ids)
    assert ledger.verify_audit().ok


def _attr(html: str, name: str) -> list[str]:
    import re

    return re.findall(rf'{name}="([^"]*)"', html)


def _pdf_text(pdf: bytes) -> str | None:
    """The PDF's text (poppler's pdftotext), or None when the tool is not installed."""
    tool = shutil.which("pdftotext")
    if tool is None:
        return None
    done = subprocess.run([tool, "-", "-"], input=pdf, capture_output=True, check=True)
    return done.stdout.decode("utf-8")
