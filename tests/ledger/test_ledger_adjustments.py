"""Corrections as new rows: arrears and recoveries when a paid month is swept again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from ledger_helpers import (
    ALICE,
    BOB,
    CAROL,
    Ent,
    bank_lines,
    pay_month,
    person_id,
    town,
    write_sweep,
)
from sqlalchemy import select

from benefits.ledger import Ledger, NothingToBatch
from benefits.ledger.adjustments import Settled, compute_adjustments
from benefits.ledger.items import Due
from benefits.ledger.models import BatchItem

D = Decimal


def _due(amount: str, id_no: str = "P1") -> Due:
    return Due(1, id_no, "H1", "dibao_allowance", "2025-01", "pay", D(amount), False, None,
               "翠苑一区", "张*明", "6222000011112222")  # fmt: skip


def _paid(net: str, anchor: int = 7) -> Settled:
    return Settled(D(net), anchor, "H1", "翠苑一区", "张*明", "6222000011112222", "pay")


KEY = ("P1", "dibao_allowance", "2025-01")


@pytest.mark.parametrize(
    ("paid", "due", "kind", "amount"),
    [
        ("459.00", "501.00", "arrears", "42.00"),
        ("459.00", "459.00", None, None),
        ("459.00", "400.01", "recovery", "-58.99"),
        ("459.00", None, "recovery", "-459.00"),
        (None, "60.00", "arrears", "60.00"),
        ("0.10", "0.30", "arrears", "0.20"),
    ],
)
def test_compute_adjustments_to_the_cent(
    paid: str | None, due: str | None, kind: str | None, amount: str | None
) -> None:
    settled = {KEY: _paid(paid)} if paid else {}
    dues = {KEY: _due(due)} if due else {}
    rows = compute_adjustments(settled, dues, run_id=5)
    if kind is None:
        assert rows == []
        return
    (row,) = rows
    assert row["kind"] == kind and row["amount"] == D(amount)
    assert row["corrects_item_id"] == (7 if paid else None)
    assert "run 5" in row["reason"]
    assert row["status"] == ("recover" if kind == "recovery" else "pending")


def test_retroactive_standard_raise_gives_arrears_to_the_cent(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    """E2: dibao 459.00 paid for 2025-01 under 1259; 1301 was in force → 501.00; 42.00 owed."""
    old = [Ent(n, policy_id="dibao_allowance", amount="459.00") for n in range(40)]
    old += [Ent(100, policy_id="dibao_allowance", amount="801.00")]
    jan = pay_month(ledger, write_sweep(sweeps / "old", "2025-01", old), tmp_path)

    new = [Ent(n, policy_id="dibao_allowance", amount="501.00") for n in range(40)]
    new += [Ent(100, policy_id="dibao_allowance", amount="843.00")]
    run = ledger.import_run(
        write_sweep(sweeps / "new", "2025-01", new, version="2025.2", pack_hash="sha256:new"),
        by=ALICE,
    )
    b = ledger.create_batch(run.run_id, by=ALICE)
    items = ledger.items(b.id, limit=None)
    assert len(items) == 41 and {it.kind for it in items} == {"arrears"}
    assert all(it.amount == D("42.00") for it in items)
    assert b.total == D("1722.00")  # 41 × 42.00, exactly
    paid = {it.id_no: it.id for it in ledger.items(jan, limit=None)}
    assert all(it.corrects_item_id == paid[it.id_no] for it in items)
    assert all("501.00" in (it.reason or "") or "843.00" in (it.reason or "") for it in items)
    assert all(it.month == "2025-01" for it in items)

    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    ledger.export(b.id, tmp_path / "arrears.csv", by=CAROL)
    lines = bank_lines(tmp_path / "arrears.csv")
    assert len(lines) == 41 and {line[2] for line in lines} == {"42.00"}

    # The same correction swept again gives nothing more.
    run_again = ledger.import_run(
        write_sweep(sweeps / "again", "2025-01", new, version="2025.3", pack_hash="sha256:x"),
        by=ALICE,
    )
    with pytest.raises(NothingToBatch):
        ledger.create_batch(run_again.run_id, by=ALICE)


def test_late_death_gives_a_recovery_item(ledger: Ledger, sweeps: Path, tmp_path: Path) -> None:
    """A death before 2025-01 reported after January was paid: payment to the deceased."""
    ents = [*town(3), Ent(9, policy_id="dibao_allowance", amount="459.00"), Ent(9)]
    jan = pay_month(ledger, write_sweep(sweeps / "jan", "2025-01", ents), tmp_path)
    paid = {it.policy_id: it for it in ledger.items(jan) if it.id_no == person_id(9)}
    assert set(paid) == {"dibao_allowance", "old_age_allowance"}

    # The re-run no longer has person 9 (dead before M.start): both payments are recovered.
    run = ledger.import_run(
        write_sweep(sweeps / "rerun", "2025-01", town(3), persons_sha="99" * 32), by=ALICE
    )
    b = ledger.create_batch(run.run_id, by=ALICE)
    recs = {it.policy_id: it for it in ledger.items(b.id)}
    assert set(recs) == set(paid)
    for policy, rec in recs.items():
        assert rec.kind == "recovery" and rec.status == "recover"
        assert rec.amount == -paid[policy].amount
        assert rec.corrects_item_id == paid[policy].id
        assert rec.id_no == person_id(9) and rec.account_no == paid[policy].account_no
        assert "not entitled" in (rec.reason or "") and "death" in (rec.reason or "")
    assert b.total == D("-519.00")
    rec = recs["dibao_allowance"]

    # A recovery is never paid out: the bank file of its batch is empty.
    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    result = ledger.export(b.id, tmp_path / "recovery.csv", by=CAROL)
    assert result.count == 0 and bank_lines(tmp_path / "recovery.csv") == []
    with ledger.db.transaction() as s:
        assert (
            s.execute(select(BatchItem.status).where(BatchItem.id == rec.id)).scalar_one()
            == "recover"
        )


def test_adjustments_go_with_later_corrections_and_newly_eligible(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    pay_month(ledger, write_sweep(sweeps / "jan", "2025-01", town(3, amount="100.00")), tmp_path)
    # Person 0 fell to 80.00, person 1 unchanged, person 2 gone, person 7 found eligible late.
    rerun = [Ent(0, amount="80.00"), Ent(1, amount="100.00"), Ent(7, amount="100.00")]
    run = ledger.import_run(
        write_sweep(sweeps / "rerun", "2025-01", rerun, persons_sha="11" * 32), by=ALICE
    )
    b = ledger.create_batch(run.run_id, by=ALICE)
    items = ledger.items(b.id)
    got = sorted((it.kind, str(it.amount), it.corrects_item_id is None) for it in items)
    assert got == [
        ("arrears", "100.00", True),
        ("recovery", "-100.00", False),
        ("recovery", "-20.00", False),
    ]
    assert b.total == D("-20.00")
    # Rejecting the correction batch voids it; a new re-run recomputes from what was paid.
    ledger.reject(b.id, by=BOB, reason="check person 2 first")
    run2 = ledger.import_run(
        write_sweep(sweeps / "rerun2", "2025-01", [*rerun, Ent(2, amount="100.00")],
                    persons_sha="22" * 32),
        by=ALICE,
    )  # fmt: skip
    b2 = ledger.create_batch(run2.run_id, by=ALICE)
    got2 = sorted((it.kind, str(it.amount)) for it in ledger.items(b2.id))
    assert got2 == [("arrears", "100.00"), ("recovery", "-20.00")]
