"""The whole lifecycle of a batch, illegal transitions, four eyes, held items and releases."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from ledger_helpers import ALICE, BOB, CAROL, Ent, bank_lines, town, write_return, write_sweep
from sqlalchemy import func, select

from benefits.ledger import (
    FourEyesViolation,
    IllegalTransition,
    InvalidInput,
    Ledger,
    NotFound,
)
from benefits.ledger.bankfile import sha256_hex
from benefits.ledger.models import BankFile, BatchItem, SweepRun


def test_full_lifecycle(ledger: Ledger, sweeps: Path, tmp_path: Path) -> None:
    ents = [
        *town(6),
        Ent(10, policy_id="dibao_allowance", amount="459.00", community="翠苑一区"),
        Ent(11, amount="60.00", held=True, hold_reason="account_problem", account_no=""),
        Ent(12, policy_id="home_care_service_subsidy", mode="credit", amount="200.00"),
        Ent(13, policy_id="temporary_assistance", mode="lead", amount="0.00"),
        Ent(14, policy_id="enterprise_retiree_survivor_benefit", mode="notice", amount="900.00"),
    ]
    out = write_sweep(sweeps / "2025-01", "2025-01", ents)

    run = ledger.import_run(out, by=ALICE)
    assert not run.already and run.month == "2025-01"
    assert run.payable_rows == 9  # lead and notice rows are not money
    assert run.payable_total == Decimal("360.00") + Decimal("459.00") + 60 + 200
    with ledger.db.transaction() as s:
        rec = s.get(SweepRun, run.run_id)
        assert rec is not None
        assert rec.rule_pack_version == "2025.1" and rec.rule_pack_hash.startswith("sha256:")
        assert rec.inputs["persons"]["sha256"] == "cd" * 32
        assert rec.entitlement_rows == 11 and rec.started_by == ALICE
        assert rec.counts["tables"]["persons"]["read"] == 11

    batch = ledger.create_batch(run.run_id, by=ALICE)
    assert (batch.status, batch.item_count, batch.total) == ("draft", 9, Decimal("1079.00"))
    detail = ledger.batch(batch.id)
    by_policy = {t.key: t for t in detail.by_policy}
    assert by_policy["old_age_allowance"].items == 7
    assert by_policy["old_age_allowance"].amount == Decimal("420.00")
    assert by_policy["old_age_allowance"].held_items == 1
    assert by_policy["old_age_allowance"].held_amount == Decimal("60.00")
    assert by_policy["dibao_allowance"].amount == Decimal("459.00")
    by_community = {t.key: t.amount for t in detail.by_community}
    assert sum(by_community.values()) == Decimal("1079.00")
    assert by_community["翠苑一区"] == Decimal("120.00") + Decimal("459.00") + 60 + 200

    assert ledger.submit(batch.id, by=ALICE).status == "submitted"
    approved = ledger.approve(batch.id, by=BOB)
    assert (approved.status, approved.approved_by) == ("approved", BOB)
    assert approved.submitted_by == ALICE

    bank = tmp_path / "bank" / "2025-01.csv"
    result = ledger.export(batch.id, bank, by=CAROL)
    lines = bank_lines(bank)
    assert result.count == len(lines) == 8  # the held item stays out
    assert result.total == Decimal("1019.00")
    trailer = bank.read_text("utf-8").splitlines()[-1]
    assert trailer == f"TRAILER,8,1019.00,BNF-B{batch.id:06d}"
    assert all(line[1] for line in lines) and "李" not in bank.read_text("utf-8")
    assert result.sha256 == sha256_hex(bank.read_bytes())
    with ledger.db.transaction() as s:
        recorded = s.execute(select(BankFile).where(BankFile.batch_id == batch.id)).scalar_one()
        assert recorded.sha256 == result.sha256 and recorded.item_count == 8
    assert ledger.batch(batch.id).batch.status == "exported"

    ret = write_return(bank, tmp_path / "return.csv", failed={0: "account closed"})
    rec_result = ledger.reconcile(batch.id, ret, by=CAROL)
    assert (rec_result.paid, rec_result.failed, rec_result.status) == (7, 1, "reconciled")
    failed = ledger.items(batch.id, status="held")
    bank_failed = [it for it in failed if it.bank_status == "failed"]
    assert len(bank_failed) == 1
    assert bank_failed[0].hold_reason == "bank: account closed"
    assert bank_failed[0].bank_reason == "account closed"
    assert ledger.verify_audit().ok
    actions = [e.action for e in ledger.audit_entries(50)]
    assert actions == [
        "ledger.init",
        "run.import",
        "batch.create",
        "batch.submit",
        "batch.approve",
        "batch.export",
        "bank_return.import",
        "batch.reconcile",
    ]


def test_four_eyes_submitter_and_creator_cannot_approve(ledger: Ledger, sweeps: Path) -> None:
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(3)), by=ALICE)
    batch = ledger.create_batch(run.run_id, by="dave")
    ledger.submit(batch.id, by=ALICE)
    with pytest.raises(FourEyesViolation) as exc:
        ledger.approve(batch.id, by=ALICE)
    msg = str(exc.value)
    assert msg.startswith(f"alice cannot approve batch {batch.id}: it is submitted (by alice")
    assert "four eyes" in msg
    with pytest.raises(FourEyesViolation, match="dave created it"):
        ledger.approve(batch.id, by="dave")
    assert ledger.batch(batch.id).batch.status == "submitted"
    assert ledger.approve(batch.id, by=BOB).approved_by == BOB


def test_illegal_transitions_name_who_state_and_why(ledger: Ledger, sweeps: Path) -> None:
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(3)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    with pytest.raises(IllegalTransition, match=r"bob cannot approve batch \d+: it is draft"):
        ledger.approve(b.id, by=BOB)
    with pytest.raises(IllegalTransition, match="only an approved batch can be exported"):
        ledger.export(b.id, Path("never.csv"), by=CAROL)
    assert not Path("never.csv").exists()
    ledger.submit(b.id, by=ALICE)
    with pytest.raises(IllegalTransition, match="only a draft can be submitted"):
        ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    with pytest.raises(IllegalTransition, match="already approved by bob"):
        ledger.approve(b.id, by=CAROL)
    with pytest.raises(InvalidInput, match="reason"):
        ledger.reject(b.id, by=BOB, reason="  ")
    with pytest.raises(NotFound):
        ledger.submit(999, by=ALICE)


def test_reject_voids_items_and_a_new_sweep_gives_a_new_draft(ledger: Ledger, sweeps: Path) -> None:
    run1 = ledger.import_run(write_sweep(sweeps / "a", "2025-01", town(4)), by=ALICE)
    b1 = ledger.create_batch(run1.run_id, by=ALICE)
    ledger.submit(b1.id, by=ALICE)
    rejected = ledger.reject(b1.id, by=BOB, reason="wrong dibao standard")
    assert rejected.status == "rejected" and rejected.reject_reason == "wrong dibao standard"
    assert all(it.voided for it in ledger.items(b1.id))
    with pytest.raises(IllegalTransition, match="import a new sweep"):
        ledger.create_batch(run1.run_id, by=ALICE)
    with pytest.raises(IllegalTransition, match="it is rejected"):
        ledger.submit(b1.id, by=ALICE)

    run2 = ledger.import_run(
        write_sweep(sweeps / "b", "2025-01", town(4, amount="61.00"), version="2025.2"), by=ALICE
    )
    b2 = ledger.create_batch(run2.run_id, by=ALICE)
    assert b2.status == "draft" and b2.item_count == 4 and b2.total == Decimal("244.00")


def test_held_items_never_leave_and_release_before_approval(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    ents = [*town(2), Ent(5, held=True, hold_reason="account_problem", account_no="")]
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", ents), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    (held,) = ledger.items(b.id, status="held")
    assert held.hold_reason == "account_problem"
    with pytest.raises(InvalidInput, match="no account number"):
        ledger.release(held.id, by=ALICE, reason="fixed")
    with pytest.raises(InvalidInput, match="reason"):
        ledger.release(held.id, by=ALICE, reason="", account="6222000011112222")
    released = ledger.release(
        held.id, by=ALICE, reason="account opened at the bank", account="6222000011112222"
    )
    assert (released.status, released.released_by) == ("pending", ALICE)
    assert released.release_reason == "account opened at the bank"
    with pytest.raises(IllegalTransition, match="only a held item"):
        ledger.release(held.id, by=ALICE, reason="again")
    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    bank = tmp_path / "b.csv"
    assert ledger.export(b.id, bank, by=CAROL).count == 3
    assert "6222000011112222" in bank.read_text("utf-8")


def test_release_refused_while_approved_and_reissued_after_export(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    ents = [*town(2), Ent(5, held=True, hold_reason="account_problem", account_no="")]
    run = ledger.import_run(write_sweep(sweeps / "jan", "2025-01", ents), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    (held,) = ledger.items(b.id, status="held")
    with pytest.raises(IllegalTransition, match="approver did not see"):
        ledger.release(held.id, by=CAROL, reason="fixed", account="6222000099990000")
    bank = tmp_path / "jan.csv"
    ledger.export(b.id, bank, by=CAROL)
    ret = write_return(bank, tmp_path / "r.csv", failed={1: "name mismatch"})
    ledger.reconcile(b.id, ret, by=CAROL)
    failed = [it for it in ledger.items(b.id, status="held") if it.bank_status == "failed"]
    assert len(failed) == 1

    ledger.release(held.id, by=CAROL, reason="account opened", account="6222000099990000")
    ledger.release(failed[0].id, by=CAROL, reason="name corrected by the bank")

    feb = ledger.import_run(write_sweep(sweeps / "feb", "2025-02", town(2)), by=ALICE)
    b2 = ledger.create_batch(feb.run_id, by=ALICE)
    reissues = ledger.items(b2.id, kind="reissue")
    assert sorted(r.corrects_item_id for r in reissues) == sorted([held.id, failed[0].id])
    assert all(r.month == "2025-01" and r.status == "pending" for r in reissues)
    by_item = {r.corrects_item_id: r for r in reissues}
    assert by_item[held.id].account_no == "6222000099990000"
    assert "released by carol: account opened" in (by_item[held.id].reason or "")
    assert b2.item_count == 4

    # Reissued once only: the next batch does not pick them up again.
    ledger.submit(b2.id, by=ALICE)
    ledger.approve(b2.id, by=BOB)
    ledger.export(b2.id, tmp_path / "feb.csv", by=CAROL)
    mar = ledger.import_run(write_sweep(sweeps / "mar", "2025-03", town(2)), by=ALICE)
    b3 = ledger.create_batch(mar.run_id, by=ALICE)
    assert ledger.items(b3.id, kind="reissue") == []
    with ledger.db.transaction() as s:
        payments = s.execute(
            select(func.count()).where(BatchItem.kind == "payment", BatchItem.month == "2025-01")
        ).scalar_one()
    assert payments == 3


def test_not_initialised_database_says_what_to_do(tmp_path: Path) -> None:
    from benefits.ledger import NotInitialised

    with (
        Ledger(f"sqlite:///{tmp_path / 'empty.sqlite'}") as led,
        pytest.raises(NotInitialised, match="benefits ledger init"),
    ):
        led.batches()


def test_batch_items_take_ids_in_entitlement_order_on_every_engine(
    ledger: Ledger, sweeps: Path
) -> None:
    """The ids — and so the pages' and the bank file's order and references — follow the
    entitlements on every engine, with no gap; a later batch's ids go on after."""
    run = ledger.import_run(write_sweep(sweeps / "a", "2025-01", town(30)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    with ledger.db.transaction() as s:
        rows = s.execute(
            select(BatchItem.id, BatchItem.entitlement_id, BatchItem.id_index)
            .where(BatchItem.batch_id == b.id).order_by(BatchItem.id)
        ).all()  # fmt: skip
    ids = [r.id for r in rows]
    assert ids == list(range(ids[0], ids[0] + 30))
    assert [r.entitlement_id for r in rows] == sorted(r.entitlement_id for r in rows)
    assert [r.id_index for r in rows] != sorted(r.id_index for r in rows)  # not index order
    ledger.submit(b.id, by=ALICE)
    ledger.reject(b.id, by=BOB, reason="redo")
    run2 = ledger.import_run(write_sweep(sweeps / "b", "2025-01", town(31)), by=ALICE)
    b2 = ledger.create_batch(run2.run_id, by=ALICE)
    with ledger.db.transaction() as s:
        low = s.execute(select(func.min(BatchItem.id)).where(BatchItem.batch_id == b2.id))
        assert low.scalar_one() == ids[-1] + 1
