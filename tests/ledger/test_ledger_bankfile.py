"""Bank file format, re-runnable export, and return-file reconciliation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from ledger_helpers import ALICE, BOB, CAROL, bank_lines, town, write_return, write_sweep

from benefits.ledger import InvalidInput, Ledger, LedgerError
from benefits.ledger.bankfile import parse_reference, reference, render, sha256_hex


def test_render_is_deterministic_and_has_trailer() -> None:
    lines = [(17, "6222", "张*明", Decimal("459.00")), (18, "6223", "李*", Decimal("0.01"))]
    data = render(3, lines)
    assert data == render(3, list(lines))
    text = data.decode("utf-8")
    assert text.splitlines() == [
        "account,masked_name,amount,reference",
        "6222,张*明,459.00,BNF-B000003-I000000017",
        "6223,李*,0.01,BNF-B000003-I000000018",
        "TRAILER,2,459.01,BNF-B000003",
    ]
    assert parse_reference(reference(3, 17)) == (3, 17)
    assert parse_reference("X-1") is None


def _approved(ledger: Ledger, sweeps: Path, people: int = 5) -> int:
    run = ledger.import_run(write_sweep(sweeps / "m", "2025-01", town(people)), by=ALICE)
    b = ledger.create_batch(run.run_id, by=ALICE)
    ledger.submit(b.id, by=ALICE)
    ledger.approve(b.id, by=BOB)
    return b.id


def test_export_again_rewrites_the_identical_file(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    b = _approved(ledger, sweeps)
    first = ledger.export(b, tmp_path / "a.csv", by=CAROL)
    (tmp_path / "a.csv").unlink()
    again = ledger.export(b, tmp_path / "a.csv", by=CAROL)
    other = ledger.export(b, tmp_path / "copy.csv", by=CAROL)
    assert again.already and other.already
    assert first.sha256 == again.sha256 == other.sha256
    assert sha256_hex((tmp_path / "a.csv").read_bytes()) == first.sha256
    assert (tmp_path / "copy.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert [e.action for e in ledger.audit_entries(2)] == ["batch.export.rewrite"] * 2


def test_export_refuses_when_the_ledger_was_changed_after_export(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    from sqlalchemy import text

    b = _approved(ledger, sweeps)
    ledger.export(b, tmp_path / "a.csv", by=CAROL)
    with ledger.db.transaction() as s:
        s.execute(  # a valid sealed value (account numbers are sealed at rest)
            text("UPDATE batch_items SET account_no = :a WHERE batch_id = :b"),
            {"a": ledger.db.keys.seal("999", "account_no"), "b": b},
        )
    with pytest.raises(LedgerError, match="changed after export"):
        ledger.export(b, tmp_path / "b.csv", by=CAROL)
    assert not (tmp_path / "b.csv").exists()


def test_reconcile_is_idempotent_and_partial_files_add_up(
    ledger: Ledger, sweeps: Path, tmp_path: Path
) -> None:
    b = _approved(ledger, sweeps, people=6)
    bank = tmp_path / "bank.csv"
    ledger.export(b, bank, by=CAROL)
    full = write_return(bank, tmp_path / "full.csv", failed={2: "account frozen"})
    rows = full.read_text("utf-8").splitlines()
    part1 = tmp_path / "part1.csv"
    part1.write_text("\n".join(rows[:4]) + "\n", "utf-8")  # header + 3 lines

    r1 = ledger.reconcile(b, part1, by=CAROL)
    assert (r1.paid, r1.failed, r1.still_sent, r1.status) == (2, 1, 3, "exported")
    assert ledger.reconcile(b, part1, by=CAROL).already
    r2 = ledger.reconcile(b, full, by=CAROL)  # overlaps part1: those lines are unchanged
    assert (r2.paid, r2.failed, r2.unchanged, r2.still_sent) == (3, 0, 3, 0)
    assert r2.status == "reconciled"
    detail = {t.key: t for t in ledger.batch(b).by_status}
    assert detail["paid"].items == 5 and detail["held"].items == 1


def test_bad_return_file_is_refused_whole(ledger: Ledger, sweeps: Path, tmp_path: Path) -> None:
    b = _approved(ledger, sweeps, people=3)
    bank = tmp_path / "bank.csv"
    ledger.export(b, bank, by=CAROL)
    good = bank_lines(bank)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"reference,status,reason\n{good[0][3]},paid,\n{reference(b, 999999)},paid,\n",
        "utf-8",
    )
    with pytest.raises(InvalidInput, match="nothing applied"):
        ledger.reconcile(b, bad, by=CAROL)
    assert {t.key for t in ledger.batch(b).by_status} == {"sent"}
    wrong_amount = tmp_path / "amount.csv"
    wrong_amount.write_text(f"reference,status,amount\n{good[0][3]},paid,1.00\n", "utf-8")
    with pytest.raises(InvalidInput, match="amount"):
        ledger.reconcile(b, wrong_amount, by=CAROL)
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("ref,state\nx,y\n", "utf-8")
    with pytest.raises(InvalidInput, match="reference and status"):
        ledger.reconcile(b, garbage, by=CAROL)
    conflicting = tmp_path / "conflict.csv"
    write_return(bank, tmp_path / "ok.csv")
    ledger.reconcile(b, tmp_path / "ok.csv", by=CAROL)
    conflicting.write_text(f"reference,status,reason\n{good[0][3]},failed,late\n", "utf-8")
    with pytest.raises(InvalidInput, match="already paid"):
        ledger.reconcile(b, conflicting, by=CAROL)


def test_bad_sweep_folder_names_file_line_and_field(ledger: Ledger, sweeps: Path) -> None:
    out = write_sweep(sweeps / "m", "2025-01", town(3))
    path = out / "entitlements.csv"
    text = path.read_text("utf-8").splitlines()
    text[2] = text[2].replace("60.00", "60.5")
    path.write_text("\n".join(text) + "\n", "utf-8")
    with pytest.raises(InvalidInput, match=r"entitlements.csv: line 3, amount: .*two decimals"):
        ledger.import_run(out, by=ALICE)
    with pytest.raises(InvalidInput, match=r"summary\.json: missing"):
        ledger.import_run(sweeps, by=ALICE)
    text[2] = text[2].replace("60.5", "60.00").replace(",2025-01,", ",2024-12,")
    path.write_text("\n".join(text) + "\n", "utf-8")
    with pytest.raises(InvalidInput, match=r"line 3, month: is '2024-12' but summary\.json"):
        ledger.import_run(out, by=ALICE)
    text[2] = text[1]
    path.write_text("\n".join(text) + "\n", "utf-8")
    with pytest.raises(InvalidInput, match="one payment per person"):
        ledger.import_run(out, by=ALICE)
    assert ledger.runs() == []


def test_bank_file_is_written_in_pieces_identical_to_the_whole() -> None:
    """The file is streamed (a piece per CHUNK lines), never held whole: same bytes."""
    from io import BytesIO

    from benefits.ledger.bankfile import CHUNK, write_lines

    class Sink(BytesIO):
        pieces = 0

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.pieces += 1
            return super().write(data)

    lines = [(i, f"6222{i:012d}", "张*明", Decimal("0.01") * i) for i in range(1, 2 * CHUNK + 2)]
    sink = Sink()
    count, total, sha = write_lines(sink, 3, iter(lines))
    assert sink.pieces == 3
    assert sink.getvalue() == render(3, lines)
    expected = (len(lines), sum(x[3] for x in lines), sha256_hex(sink.getvalue()))
    assert (count, total, sha) == expected
