"""Security events in the audit chain: refused four-eyes approvals, 403s, API token use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from freezegun import freeze_time

from benefits.ledger import FourEyesViolation, Ledger
from benefits.ledger.models import AuditEntry
from benefits.web.audit_events import token_digest
from tests.ledger.ledger_helpers import ALICE, BOB, town, write_sweep
from tests.web.conftest import Seeded


def _entries(ledger: Ledger, action: str) -> list[AuditEntry]:
    return [e for e in ledger.audit_entries(500) if e.action == action]


def test_a_refused_four_eyes_approval_is_chained(ledger: Ledger, tmp_path: Path) -> None:
    run = ledger.import_run(write_sweep(tmp_path / "m", "2025-01", town(2)), by=ALICE)
    batch = ledger.create_batch(run.run_id, by=ALICE)
    ledger.submit(batch.id, by=ALICE)
    with pytest.raises(FourEyesViolation):
        ledger.approve(batch.id, by=ALICE)
    refused = _entries(ledger, "security.approval_refused")
    assert len(refused) == 1
    entry = refused[0]
    assert (entry.actor, entry.object_type, entry.object_id) == (ALICE, "batch", str(batch.id))
    assert "four eyes" in json.loads(entry.content)["after"]["reason"]
    assert ledger.batch(batch.id).batch.status == "submitted"  # the refusal changed nothing else
    ledger.approve(batch.id, by=BOB)
    assert len(_entries(ledger, "security.approval_refused")) == 1
    assert ledger.verify_audit().ok


def test_a_forbidden_request_is_chained_with_who_and_what(seeded: Seeded) -> None:
    batch = seeded.ctx.ledger.batches()[0]
    auditor = seeded.client("auditor")
    assert auditor.post(f"/batches/{batch.id}/approve", data={}).status_code == 403
    api = seeded.client()
    token = seeded.token("auditor")
    r = api.post(f"/api/v1/batches/{batch.id}/approve",
                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 403
    entries = _entries(seeded.ctx.ledger, "security.forbidden")
    assert [(e.actor, e.object_id) for e in entries] == [
        ("auditor", f"POST /batches/{batch.id}/approve"),
        ("auditor", f"POST /api/v1/batches/{batch.id}/approve"),
    ]
    anonymous = seeded.client().post("/api/v1/batches/1/approve",
                                      headers={"X-CSRF-Token": "x"})  # fmt: skip
    assert anonymous.status_code == 401  # not signed in is 401, not a 403 event
    assert len(_entries(seeded.ctx.ledger, "security.forbidden")) == 2
    assert seeded.ctx.ledger.verify_audit().ok


def test_the_first_use_of_a_token_each_day_is_chained(seeded: Seeded) -> None:
    with freeze_time("2026-12-06 09:00:00"):
        token = seeded.token("auditor")
        client = seeded.client()
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            assert client.get("/api/v1/batches", headers=headers).status_code == 200
    with freeze_time("2026-12-07 08:00:00"):
        assert client.get("/api/v1/batches", headers=headers).status_code == 200
        assert client.get("/api/v1/batches", headers=headers).status_code == 200
    uses = _entries(seeded.ctx.ledger, "security.token_use")
    assert [(e.actor, e.object_id, json.loads(e.content)["after"]["day"]) for e in uses] == [
        ("auditor", token_digest(token), "2026-12-06"),
        ("auditor", token_digest(token), "2026-12-07"),
    ]
    assert all(token not in e.content for e in uses)
    assert seeded.ctx.ledger.verify_audit().ok


def test_a_forbidden_request_with_an_id_in_its_path_chains_it_masked(seeded: Seeded) -> None:
    id_no = "330106194501011233"
    token = seeded.token("approver")
    r = seeded.client().get(f"/api/v1/audit/access/users/{id_no}",
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 403
    [entry] = [e for e in seeded.ctx.ledger.audit_entries(500)
               if e.action == "security.forbidden"][-1:]  # fmt: skip
    assert id_no not in entry.object_id and id_no not in entry.content
    assert "330106********1233" in entry.object_id
