"""Account numbers are checked once, in the ledger: releases refuse an invalid one on every
path, and the export holds (never sends) an item whose account is not valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from ledger_helpers import ALICE, BOB, CAROL, Ent, bank_lines, town, write_sweep
from sqlalchemy import update
from typer.testing import CliRunner

from benefits.ledger import InvalidInput, Ledger
from benefits.ledger.cli import register
from benefits.ledger.models import BatchItem

BAD_ACCOUNTS = [
    ("abc", "only digits 0-9"),
    ("6222 0000 1111 2222", "only digits 0-9"),
    ("1234567", "8 to 32 digits"),
    ("6" * 33, "8 to 32 digits"),
    ("６２２２000011112222", "full-width digits"),
]


def _held_draft(ledger: Ledger, sweeps: Path, month: str = "2025-01") -> tuple[int, int]:
    ents = [*town(2), Ent(5, held=True, hold_reason="account_problem", account_no="")]
    run = ledger.import_run(write_sweep(sweeps / month, month, ents), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    (held,) = ledger.items(b.id, status="held")
    return b.id, held.id


@pytest.mark.parametrize(("account", "why"), BAD_ACCOUNTS)
def test_release_refuses_an_invalid_account(
    ledger: Ledger, sweeps: Path, account: str, why: str
) -> None:
    batch_id, item_id = _held_draft(ledger, sweeps)
    entries = len(ledger.audit_entries(last=1000))
    with pytest.raises(InvalidInput, match=why) as err:
        ledger.release(item_id, by=ALICE, reason="account fixed", account=account)
    assert "--" not in str(err.value)
    (still,) = ledger.items(batch_id, status="held")
    assert still.id == item_id and still.account_no == "" and still.released_by is None
    assert len(ledger.audit_entries(last=1000)) == entries


def test_release_without_account_says_so_in_plain_words(ledger: Ledger, sweeps: Path) -> None:
    _batch_id, item_id = _held_draft(ledger, sweeps)
    with pytest.raises(InvalidInput, match="no account number") as err:
        ledger.release(item_id, by=ALICE, reason="fixed")
    assert "--account" not in str(err.value)
    assert "corrected account number" in str(err.value)


def test_release_after_export_refuses_an_invalid_account(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    batch_id, item_id = _held_draft(ledger, sweeps)
    ledger.submit(batch_id, by=ALICE)
    ledger.approve(batch_id, by=BOB)
    ledger.export(batch_id, tmp_path / "jan.csv", by=CAROL)
    with pytest.raises(InvalidInput, match="only digits"):
        ledger.release(item_id, by=CAROL, reason="account opened", account="6222-0000-9999")
    with pytest.raises(InvalidInput, match="no account number"):
        ledger.release(item_id, by=CAROL, reason="account opened")
    ok = ledger.release(item_id, by=CAROL, reason="account opened", account=" 6222000099990000 ")
    assert ok.status == "released" and ok.release_account == "6222000099990000"


def test_a_sweep_account_that_is_not_valid_is_held_at_batch_creation(
    ledger: Ledger, sweeps: Path
) -> None:
    ents = [*town(2), Ent(7, account_no="6222-0000")]
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", ents), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    (held,) = ledger.items(b.id, status="held")
    assert held.account_no == "6222-0000"
    assert held.hold_reason == (
        "bank account number not valid: an account number has only digits 0-9 "
        "(this one has other characters)"
    )
    released = ledger.release(held.id, by=ALICE, reason="bank gave the number",
                              account="6222000077770000")  # fmt: skip
    assert released.status == "pending" and released.account_no == "6222000077770000"


def test_export_holds_an_item_whose_account_is_not_valid(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    """Defence in depth: whatever put a bad account on a pending item, it never leaves."""
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(3)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    items = ledger.items(b.id)
    bad = items[1]
    with ledger.db.transaction() as s:  # e.g. a hand edit, or a path that skipped the checks
        s.execute(update(BatchItem).where(BatchItem.id == bad.id).values(account_no="62x2"))
    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    bank = tmp_path / "b.csv"
    result = ledger.export(b.id, bank, by=CAROL)
    assert result.count == 2 and result.held == (bad.id,)
    lines = bank_lines(bank)
    assert [line[0] for line in lines] == [items[0].account_no, items[2].account_no]
    assert "62x2" not in bank.read_text("utf-8")
    (held,) = ledger.items(b.id, status="held")
    assert held.id == bad.id
    assert held.hold_reason is not None and "not valid" in held.hold_reason
    assert "held at export" in held.hold_reason
    assert any(e.action == "item.hold" and e.object_id == str(bad.id)
               for e in ledger.audit_entries(last=20))  # fmt: skip
    assert ledger.verify_audit().ok
    again = ledger.export(b.id, bank, by=CAROL)
    assert again.already and again.sha256 == result.sha256


def test_cli_release_refuses_an_invalid_account(db_url: str, sweeps: Path) -> None:
    app = typer.Typer()
    register(app)
    env = {"BENEFITS_DATABASE_URL": db_url}
    runner = CliRunner()
    assert runner.invoke(app, ["ledger", "init"], env=env).exit_code == 0
    with Ledger(db_url) as ledger:
        _batch_id, item_id = _held_draft(ledger, sweeps)
    r = runner.invoke(app, ["batch", "release", str(item_id), "--reason", "fixed", "--by",
                            ALICE, "--account", "6222-0000-1111"], env=env)  # fmt: skip
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "account number given: an account number has only digits 0-9" in r.output


def test_the_account_rule_module_examples() -> None:
    import doctest

    import benefits.accountno

    assert doctest.testmod(benefits.accountno).failed == 0
