"""Messages of refused ledger commands are printed as written: an officer's reason with square
brackets (``[/b]``, ``[urgent]``) is neither read as console markup nor a crash."""

from __future__ import annotations

from pathlib import Path

from ledger_helpers import ALICE, BOB, town, write_sweep
from reliability_helpers import Figures, benefits

from benefits.ledger import Ledger

REASON = "amounts wrong [/b] see [urgent] note"


def test_refusal_quoting_a_bracketed_reason_is_one_clean_line(
    db_url: str, tmp_path: Path, figures: Figures
) -> None:
    with Ledger(db_url) as ledger:
        ledger.init(by="admin")
        run = ledger.import_run(write_sweep(tmp_path / "m", "2025-01", town(3)), by=ALICE)
        batch = ledger.create_batch(run.run_id, by=ALICE)
        ledger.reject(batch.id, by=BOB, reason=REASON)
    proc = figures.run(benefits("batch", "approve", str(batch.id), "--by", BOB, "--db", db_url))
    figures.refused += 1
    assert "Traceback" not in proc.output, proc.output
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert f"bob cannot approve batch {batch.id}" in line and REASON in line
    shown = figures.run(benefits("batch", "show", str(batch.id), "--db", db_url))
    assert shown.returncode == 0 and f"reason: {REASON}" in shown.stdout, shown.output
