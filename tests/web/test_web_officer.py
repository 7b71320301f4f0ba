"""What an officer notices in the web app (issue 11, points 3 and 11): account numbers, labels,
times, actions, ordering, PDFs, alerts assignment, filters and cookies."""

from __future__ import annotations

import re

from conftest import Seeded, csrf_of


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
