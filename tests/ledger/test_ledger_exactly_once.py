"""Exactly once: one payment per person × policy × month whatever is retried or raced.

Races use threads, each with its own Ledger (its own engine, so its own connection).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ledger_helpers import ALICE, BOB, CAROL, TickClock, town, write_sweep
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from benefits.ledger import Conflict, IllegalTransition, Ledger
from benefits.ledger.models import Batch, BatchItem, SweepRun

APPROVERS = (BOB, CAROL, "dave", "erin")


def race(db_url: str, n: int, action: Callable[[Ledger, int], Any]) -> list[Any]:
    """Run `action(ledger, i)` in n threads released together; results or exceptions."""
    ledgers = [Ledger(db_url, clock=TickClock()) for _ in range(n)]
    for led in ledgers:
        led.db.require_ready()  # connect before the start line
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(ledgers[i], i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for led in ledgers:
        led.close()
    return results


def payments_per_key(ledger: Ledger) -> dict[tuple[str, str, str], int]:
    with ledger.db.transaction() as s:
        rows = s.execute(
            select(func.min(BatchItem.id_no), BatchItem.policy_id, BatchItem.month, func.count())
            .where(BatchItem.kind == "payment", BatchItem.voided.is_(False))
            # by the blind index: id_no is sealed with a random nonce, never equal to itself
            .group_by(BatchItem.id_index, BatchItem.policy_id, BatchItem.month)
        ).all()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


def test_same_sweep_imported_twice_is_one_run_and_one_batch(ledger: Ledger, sweeps: Path) -> None:
    out = write_sweep(sweeps / "m", "2025-01", town(20))
    first = ledger.import_run(out, by=ALICE)
    again = ledger.import_run(out, by=BOB)
    assert again.already and again.run_id == first.run_id
    # The same sweep written to another folder (same inputs, rules and bytes) is the same run.
    copy = write_sweep(sweeps / "copy", "2025-01", town(20))
    assert ledger.import_run(copy, by=BOB).run_id == first.run_id
    ledger.create_batch(first.run_id, by=ALICE)
    with pytest.raises(IllegalTransition, match="one open batch at a time"):
        ledger.create_batch(first.run_id, by=BOB)
    counts = payments_per_key(ledger)
    assert len(counts) == 20 and set(counts.values()) == {1}


def test_concurrent_imports_of_one_sweep_record_one_run(
    ledger: Ledger, db_url: str, sweeps: Path
) -> None:
    out = write_sweep(sweeps / "m", "2025-01", town(300))
    results = race(db_url, 4, lambda led, i: led.import_run(out, by=f"officer{i}"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.run_id for r in results}) == 1
    assert sum(not r.already for r in results) == 1
    with ledger.db.transaction() as s:
        assert s.execute(select(func.count()).select_from(SweepRun)).scalar_one() == 1


def test_two_sweeps_of_one_month_never_pay_twice(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    run1 = ledger.import_run(write_sweep(sweeps / "a", "2025-01", town(10)), by=ALICE)
    run2 = ledger.import_run(
        write_sweep(sweeps / "b", "2025-01", town(12), persons_sha="ef" * 32), by=ALICE
    )
    assert run1.run_id != run2.run_id
    b1 = ledger.create_batch(run1.run_id, by=ALICE)
    with pytest.raises(IllegalTransition, match=f"batch {b1.id}"):
        ledger.create_batch(run2.run_id, by=ALICE)
    ledger.submit(b1.id, by=ALICE)
    ledger.approve(b1.id, by=BOB)
    ledger.export(b1.id, tmp_path / "b1.csv", by=CAROL)
    # Once the month is paid, the second sweep only adds what the first missed.
    b2 = ledger.create_batch(run2.run_id, by=ALICE)
    kinds = {it.kind for it in ledger.items(b2.id)}
    assert kinds == {"arrears"} and b2.item_count == 2
    counts = payments_per_key(ledger)
    assert len(counts) == 10 and set(counts.values()) == {1}


def test_racing_approvals_exactly_one_wins(ledger: Ledger, db_url: str, sweeps: Path) -> None:
    for round_no, month in enumerate(("2025-01", "2025-02", "2025-03")):
        run = ledger.import_run(write_sweep(sweeps / month, month, town(50)), by=ALICE)
        batch = ledger.create_batch(run.run_id, by=ALICE)
        ledger.submit(batch.id, by=ALICE)
        results = race(db_url, 4, lambda led, i, b=batch.id: led.approve(b, by=APPROVERS[i]))
        winners = [r for r in results if isinstance(r, Batch)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1, (round_no, results)
        assert len(losers) == 3 and all(isinstance(e, IllegalTransition) for e in losers)
        assert all("already approved by" in str(e) for e in losers)
        detail = ledger.batch(batch.id).batch
        assert detail.status == "approved" and detail.approved_by == winners[0].approved_by
        approvals = [e for e in ledger.audit_entries(500) if e.action == "batch.approve"]
        assert sum(e.object_id == str(batch.id) for e in approvals) == 1
    assert ledger.verify_audit().ok


def test_racing_batch_creation_exactly_one_batch(ledger: Ledger, db_url: str, sweeps: Path) -> None:
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(200)), by=ALICE)
    results = race(db_url, 3, lambda led, i: led.create_batch(run.run_id, by=f"officer{i}"))
    made = [r for r in results if isinstance(r, Batch)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(made) == 1, results
    assert all(isinstance(e, IllegalTransition | Conflict) for e in refused), refused
    counts = payments_per_key(ledger)
    assert len(counts) == 200 and set(counts.values()) == {1}
    assert ledger.verify_audit().ok


def test_database_itself_refuses_a_second_payment(ledger: Ledger, sweeps: Path) -> None:
    """Even code that skips every check cannot write a duplicate payment or open batch."""
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(2)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    (item, _) = ledger.items(b.id)
    row = {c.name: getattr(item, c.name) for c in BatchItem.__table__.columns if c.name != "id"}
    with pytest.raises(IntegrityError), ledger.db.transaction() as s:
        s.execute(insert(BatchItem.__table__), [row])
    with pytest.raises(IntegrityError), ledger.db.transaction() as s:
        s.execute(
            insert(Batch.__table__),
            [{"month": "2025-01", "run_id": run.run_id, "status": "draft", "item_count": 0,
              "total": 0, "created_by": BOB, "created_at": ledger.db.now()}],
        )  # fmt: skip
    # A voided (rejected) payment frees the key; a live one does not.
    ledger.reject(b.id, by=BOB, reason="test")
    with ledger.db.transaction() as s:
        s.execute(
            insert(Batch.__table__),
            [{"id": 99, "month": "2025-01", "run_id": run.run_id, "status": "draft",
              "item_count": 1, "total": item.amount, "created_by": BOB,
              "created_at": ledger.db.now()}],
        )  # fmt: skip
        s.execute(insert(BatchItem.__table__), [{**row, "batch_id": 99}])


def test_database_itself_enforces_four_eyes(ledger: Ledger, sweeps: Path) -> None:
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(2)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    ledger.submit(b.id, by=ALICE)
    with pytest.raises(IntegrityError), ledger.db.transaction() as s:
        s.execute(
            update(Batch)
            .where(Batch.id == b.id)
            .values(status="approved", approved_by=ALICE, approved_at=ledger.db.now())
        )
    with pytest.raises(IntegrityError), ledger.db.transaction() as s:
        s.execute(text("UPDATE batches SET status = 'approved' WHERE id = :id"), {"id": b.id})
    assert ledger.batch(b.id).batch.status == "submitted"
