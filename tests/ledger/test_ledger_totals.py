"""City scale: the set-based batch creation and the totals kept with each batch.

The totals kept in ``batch_totals`` must always equal the totals counted from the items, after
every operation that changes items; the set-based creation must give exactly the items the row
by row creation gave (hold reasons included), on both databases.
"""

from __future__ import annotations

from pathlib import Path

from ledger_helpers import ALICE, BOB, CAROL, Ent, town, write_return, write_sweep
from sqlalchemy import update

from benefits.accountno import account_no_problem
from benefits.ledger import Ledger
from benefits.ledger.batchviews import DIMENSIONS, _totals, add_up, kept_groups
from benefits.ledger.items import BAD_ACCOUNT, NO_ACCOUNT
from benefits.ledger.models import BatchItem, RunEntitlement, SweepRun


def _assert_kept_equals_counted(ledger: Ledger, batch_id: int) -> None:
    with ledger.db.snapshot() as s:
        groups = kept_groups(s, batch_id)
        assert groups is not None, "totals are kept with the batch"
        for name in DIMENSIONS:
            counted = _totals(s, batch_id, getattr(BatchItem, name))
            assert add_up(groups, name) == counted, name


def _month(people: int) -> list[Ent]:
    ents = town(people)
    ents[1] = Ent(1, held=True, hold_reason="account_problem")
    ents[2] = Ent(2, account_no="")  # no account: held
    ents[3] = Ent(3, account_no="6222-0000-1111")  # not valid: held
    ents.append(Ent(4, policy_id="dibao_allowance", amount="459.00", community="翠苑二区"))
    return ents


def test_kept_totals_follow_every_change(ledger: Ledger, sweeps: Path, tmp_path: Path) -> None:
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", _month(8)), by=ALICE)
    batch = ledger.create_batch(run.run_id, by=ALICE)
    _assert_kept_equals_counted(ledger, batch.id)
    held = ledger.items(batch.id, status="held", limit=None)
    invalid = BAD_ACCOUNT.format(problem=account_no_problem("6222-0000-1111"))
    assert [i.hold_reason for i in held] == ["account_problem", NO_ACCOUNT, invalid]
    ledger.release(held[1].id, by=ALICE, reason="account given", account="6222020000009999")
    _assert_kept_equals_counted(ledger, batch.id)
    ledger.submit(batch.id, by=ALICE)
    ledger.approve(batch.id, by=BOB)
    bank = tmp_path / "bank.csv"
    ledger.export(batch.id, bank, by=CAROL)
    _assert_kept_equals_counted(ledger, batch.id)
    ledger.reconcile(batch.id, write_return(bank, tmp_path / "r.csv", failed={1: "closed"}),
                     by=CAROL)  # fmt: skip
    _assert_kept_equals_counted(ledger, batch.id)
    detail = ledger.batch(batch.id)
    assert detail.groups is not None
    assert sum(t.items for t in detail.by_status) == batch.item_count == 9


def test_set_based_creation_gives_the_row_by_row_items(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    """The same run created set-based and (as a run imported before 0010) row by row."""
    folder = write_sweep(sweeps / "m", "2025-01", _month(12))
    run = ledger.import_run(folder, by=ALICE)
    with ledger.db.snapshot() as s:
        checked = s.get(SweepRun, run.run_id)
        assert checked is not None and checked.accounts_checked
        problems = [r.account_problem for r in s.query(RunEntitlement).order_by(RunEntitlement.id)]
    assert problems.count(NO_ACCOUNT) == 1 and sum(p is not None for p in problems) == 2

    def items(batch_id: int) -> list[tuple]:  # type: ignore[type-arg]
        return [(i.id_no, i.account_no, i.policy_id, i.amount, i.status, i.hold_reason,
                 i.community, i.kind, i.entitlement_id)
                for i in ledger.items(batch_id, limit=None)]  # fmt: skip

    fast = ledger.create_batch(run.run_id, by=ALICE)
    set_based = items(fast.id)
    ledger.reject(fast.id, by=BOB, reason="compare with the row-by-row path")
    rerun = ledger.import_run(write_sweep(sweeps / "m2", "2025-01", _month(12),
                                          persons_sha="ef" * 32), by=ALICE)  # fmt: skip
    with ledger.db.transaction() as s:  # as if imported before the ledger checked accounts
        s.execute(update(SweepRun).where(SweepRun.id == rerun.run_id)
                  .values(accounts_checked=False))  # fmt: skip
    slow = ledger.create_batch(rerun.run_id, by=ALICE)
    row_by_row = items(slow.id)
    assert [r[:8] for r in set_based] == [r[:8] for r in row_by_row]
    assert (fast.item_count, fast.total) == (slow.item_count, slow.total)
    _assert_kept_equals_counted(ledger, slow.id)
