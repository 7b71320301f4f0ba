"""The what-if page (issue 15): policy staff and admins price a change on a month's records;
others are refused; names and IDs stay masked; every run is in the audit chain."""

from __future__ import annotations

import re
import shutil

from conftest import Seeded, csrf_of
from sqlalchemy import select

from benefits.ledger.models import AuditEntry
from benefits.rulebook import default_rules_folder

RAW_ID = re.compile(r"\b\d{17}[\dX]\b")


def _policy_user(seeded: Seeded) -> None:
    seeded.ctx.accounts.create_user("planner", "planner-pass-1", ["policy"], pii=False,
                                    by="admin")  # fmt: skip


def _audit(seeded: Seeded, action: str) -> list[AuditEntry]:
    with seeded.ctx.db.snapshot() as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def test_only_policy_staff_and_admins_may_price_a_change(seeded: Seeded) -> None:
    _policy_user(seeded)
    assert seeded.client("officer").get("/whatif").status_code == 403
    assert seeded.client("approver").get("/whatif").status_code == 403
    page = seeded.client("admin").get("/whatif")
    assert page.status_code == 200 and 'action="/whatif"' in page.text
    from conftest import login
    from fastapi.testclient import TestClient

    planner = login(TestClient(seeded.app, base_url="http://testserver"), "planner",
                    "planner-pass-1")  # fmt: skip
    page = planner.get("/whatif")
    assert page.status_code == 200 and "dibao_std" in page.text and 'href="/whatif"' in page.text


def test_a_parameter_change_on_the_page_is_shown_masked_and_audited(seeded: Seeded) -> None:
    client = seeded.client("admin")
    token = csrf_of(client)
    r = client.post(
        "/whatif",
        data={
            "csrf_token": token,
            "month": "2025-01",
            "values": "dibao_std=1400",
            "start": "2025-01-01",
        },
    )
    assert r.status_code == 200, r.text[:500]
    assert "whatif-result" in r.text and "dibao_allowance" in r.text and "<svg" in r.text
    diff = re.search(r"data-difference-month>([-0-9.]+)<", r.text)
    assert diff and float(diff.group(1)) > 0
    assert not RAW_ID.search(r.text), RAW_ID.search(r.text)
    entries = _audit(seeded, "whatif.run")
    assert len(entries) == 1 and entries[0].actor == "admin"
    assert "dibao_std" in entries[0].content and "1400" in entries[0].content
    assert _audit(seeded, "data.view"), "the masked persons shown are tracked"


def test_a_proposed_pack_from_the_proposals_folder(seeded: Seeded) -> None:
    proposals = seeded.settings.work / "proposals" / "y2026"
    shutil.copytree(default_rules_folder(), proposals)
    client = seeded.client("admin")
    assert "y2026" in client.get("/whatif").text
    r = client.post("/whatif", data={"csrf_token": csrf_of(client), "month": "2025-01",
                                     "proposal": "y2026"})  # fmt: skip
    assert r.status_code == 200 and "data-difference-month>0.00<" in r.text
    bad = client.post("/whatif", data={"csrf_token": csrf_of(client), "month": "2025-01",
                                       "proposal": "../../etc"})  # fmt: skip
    assert bad.status_code == 400 and "no proposed pack" in bad.text


def test_bad_values_are_one_clear_error(seeded: Seeded) -> None:
    client = seeded.client("admin")
    for values, message in (("dibao_std", "NAME=VALUE"), ("nope=3", "unknown parameter"),
                            ("", "at least one parameter value")):  # fmt: skip
        r = client.post("/whatif", data={"csrf_token": csrf_of(client), "month": "2025-01",
                                         "values": values})  # fmt: skip
        assert r.status_code == 400 and message in r.text, r.text[:300]
    assert not _audit(seeded, "whatif.run")


def test_the_pdf_report(seeded: Seeded) -> None:
    client = seeded.client("admin")
    r = client.post("/whatif", data={"csrf_token": csrf_of(client), "month": "2025-01",
                                     "values": "old_age_80=70", "output": "pdf"})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content[:5] == b"%PDF-"
    assert _audit(seeded, "export.file")
