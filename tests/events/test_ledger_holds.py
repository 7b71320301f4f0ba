"""With a ledger: a stop holds the pending item of an unexported batch at once, audited."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from events_helpers import PACK, event, shared_evaluator

from benefits.events.service import EventService
from benefits.ledger import Ledger
from benefits.ledger.clock import fixed_clock
from benefits.rulebook import default_rules_folder, load_pack
from benefits.sweep import run_sweep
from tests.conftest import bank, person, write_delivery

MONTH = "2025-02"
ELDER = person("1940-01-10", 3, "H1", name="王老汉")
OTHER = person("1939-05-05", 5, "H2", name="李老")
KEPT = person("1938-02-02", 7, "H3", name="赵老")


@pytest.fixture
def month_in_ledger(tmp_path: Path) -> tuple[Ledger, Path, int]:
    """A ledger with February's sweep imported and a draft batch created from it."""
    people = [ELDER, OTHER, KEPT]
    tables = {"persons": people, "bank_accounts": [bank(p) for p in people]}
    data = write_delivery(tmp_path / "data", tables, with_bank=False)
    run_sweep(data, MONTH, out=tmp_path / "out", pack=PACK)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}",
                    clock=fixed_clock(dt.datetime(2025, 2, 3, 9, 0)))  # fmt: skip
    ledger.init(by="admin")
    run = ledger.import_run(tmp_path / "out", by="alice")
    batch = ledger.create_batch(run.run_id, by="alice")
    return ledger, data, batch.id


def service(data: Path, ledger: Ledger) -> EventService:
    return EventService(data, MONTH, pack=PACK, evaluator=shared_evaluator(), ledger=ledger,
                        freeze_gc=False,
                        by="events-bot")  # fmt: skip


def test_a_death_holds_the_draft_batch_item_with_the_event_as_reason(
    month_in_ledger: tuple[Ledger, Path, int],
) -> None:
    ledger, data, batch_id = month_in_ledger
    with service(data, ledger) as svc:
        result = svc.apply(event("death_registered", "gab-17", "police", "2025-01-10",
                                 id_no=ELDER["id_no"]))  # fmt: skip
        assert result.ledger_error is None
        [held] = result.holds
        assert (held["batch"], held["batch_status"], held["id_no"]) == (batch_id, "draft",
                                                                        ELDER["id_no"])  # fmt: skip
        assert "event gab-17 (death_registered, police, effective 2025-01-10)" in held["reason"]
        items = {i.id_no: i for i in ledger.items(batch_id)}
        assert items[ELDER["id_no"]].status == "held"
        assert items[ELDER["id_no"]].hold_reason == held["reason"]
        assert items[OTHER["id_no"]].status == items[KEPT["id_no"]].status == "pending"
        entry = ledger.audit_entries(1)[0]
        assert (entry.action, entry.actor, entry.object_id) == ("item.hold", "events-bot",
                                                                str(held["item"]))  # fmt: skip
        assert '"event_id":"gab-17"' in entry.content
        assert ledger.verify_audit().ok
        # the same event again: nothing changes, nothing more is held or audited
        again = svc.apply(event("death_registered", "gab-17", "police", "2025-01-10",
                                id_no=ELDER["id_no"]))  # fmt: skip
        assert again.status == "duplicate" and again.holds == []
        assert ledger.audit_entries(1)[0].seq == entry.seq
    ledger.close()


def test_a_move_out_holds_an_approved_batch_item_but_not_an_exported_one(
    month_in_ledger: tuple[Ledger, Path, int], tmp_path: Path
) -> None:
    ledger, data, batch_id = month_in_ledger
    ledger.submit(batch_id, by="alice")
    ledger.approve(batch_id, by="bob")
    with service(data, ledger) as svc:
        moved = svc.apply(event("hukou_moved_out", "m1", "police", "2025-01-20",
                                id_no=OTHER["id_no"]))  # fmt: skip
        assert [h["batch_status"] for h in moved.holds] == ["approved"]
        ledger.export(batch_id, tmp_path / "bank.csv", by="carol")
        died = svc.apply(event("death_registered", "d2", "health", "2025-01-05",
                               id_no=KEPT["id_no"]))  # fmt: skip
        assert [c.kind for c in died.changes][:1] == ["stop"]
        assert died.holds == []  # already in the bank file: a later recovery deals with it
    bank_file = (tmp_path / "bank.csv").read_text(encoding="utf-8")
    assert OTHER["id_no"][-4:] not in bank_file  # the held item did not go to the bank
    ledger.close()


def test_a_closed_account_holds_the_item_too(month_in_ledger: tuple[Ledger, Path, int]) -> None:
    ledger, data, _ = month_in_ledger
    with service(data, ledger) as svc:
        result = svc.apply(event(
            "bank_account_changed", "k1", "bank", "2025-01-25", id_no=KEPT["id_no"],
            account_no="6222000099990000", account_name=KEPT["name"], status="closed",
        ))  # fmt: skip
        [held] = result.holds
        assert "is held for 2025-02: 账户问题（account_closed）" in held["reason"]
    ledger.close()


def test_a_ledger_failure_does_not_lose_the_event(tmp_path: Path) -> None:
    tables = {"persons": [ELDER], "bank_accounts": [bank(ELDER)]}
    data = write_delivery(tmp_path / "data", tables, with_bank=False)
    broken = Ledger(f"sqlite:///{tmp_path / 'never-initialised.sqlite'}")
    with service(data, broken) as svc:
        result = svc.apply(event("death_registered", "d1", "police", "2025-01-10",
                                 id_no=ELDER["id_no"]))  # fmt: skip
        assert result.status == "applied" and result.changes
        assert "NotInitialised" in (result.ledger_error or "")
    broken.close()


def test_holds_are_what_the_reactions_declare(
    month_in_ledger: tuple[Ledger, Path, int], tmp_path: Path
) -> None:
    """A copy of the pack whose death reactions hold nothing: the stop is reported, no hold."""
    ledger, data, batch_id = month_in_ledger
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_folder(), rules)
    book = yaml.safe_load((rules / "events.yaml").read_text(encoding="utf-8"))
    for reaction in book["reactions"]:
        if "death_registered" in reaction["events"]:
            reaction.pop("holds", None)
    (rules / "events.yaml").write_text(yaml.safe_dump(book, allow_unicode=True), encoding="utf-8")
    with EventService(data, MONTH, pack=load_pack(rules), evaluator=shared_evaluator(),
                      ledger=ledger, freeze_gc=False) as svc:  # fmt: skip
        result = svc.apply(event("death_registered", "gab-18", "police", "2025-01-10",
                                 id_no=ELDER["id_no"]))  # fmt: skip
        assert ("stop", "old_age_allowance") in [(c.kind, c.policy_id) for c in result.changes]
        assert result.holds == [] and result.ledger_error is None
        assert {i.status for i in ledger.items(batch_id)} == {"pending"}
