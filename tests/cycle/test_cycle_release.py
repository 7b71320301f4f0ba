"""The cycle sweeps with the approved rule pack release in force and refuses any other pack."""

from __future__ import annotations

import shutil
from pathlib import Path

from cycle_helpers import MutableClock, deliver
from sqlalchemy import select

from benefits.cycle.runner import run_cycle
from benefits.cycle.settings import CycleSettings
from benefits.ledger import Ledger
from benefits.ledger.models import SweepRun
from benefits.rulebook import default_rules_folder, pack_digest


def test_cycle_uses_the_release_in_force_and_refuses_another_pack(
    settings: CycleSettings, ledger: Ledger, clock: MutableClock, deliveries: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    release = ledger.submit_pack(default_rules_folder(), by="alice")
    ledger.approve_pack(release.id, by="bob")
    edited = tmp_path / "edited"
    shutil.copytree(default_rules_folder(), edited)
    (edited / "pack.yaml").write_text(
        (edited / "pack.yaml").read_text("utf-8") + "# edited, not approved\n", "utf-8"
    )
    deliver(settings, deliveries, "2025-01")

    refused = run_cycle(settings.model_copy(update={"rules_dir": edited}), "2025-01",
                        clock=clock, ledger=ledger)  # fmt: skip
    assert refused.status == "failed"
    assert "UnapprovedPack" in refused.message and "\n" not in refused.message
    assert f"release {release.id}" in refused.message and "never submitted" in refused.message
    assert ledger.runs("2025-01") == []

    done = run_cycle(settings, "2025-01", clock=clock, ledger=ledger, retry=True)
    assert done.status == "done", done.message
    with ledger.db.snapshot() as s:
        run = s.execute(select(SweepRun)).scalar_one()
    assert run.release_id == release.id and run.rule_pack_hash == pack_digest(
        default_rules_folder()
    )
    assert (Path(settings.store_dir) / "packs" / release.digest / "pack.yaml").is_file()
