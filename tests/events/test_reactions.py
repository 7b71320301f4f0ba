"""The event reactions of rules/events.yaml: declared in the pack, matched by durable_rules.

A reaction added to a copy of the pack takes effect through the event service; correlations
read a later event with an earlier one (a death reported twice, a move back in after a move
out, within or outside the declared window); what the reactions declare (policies, alerts)
covers what re-deciding really changes on a stream of generated events.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from events_helpers import (
    PACK,
    apply_rows,
    assert_agrees,
    event,
    service_for,
    shared_evaluator,
)
from events_helpers import sweep as sweep_tables

from benefits.errors import RuleError
from benefits.events.changes import ENTITLEMENT_CHANGES
from benefits.events.generate import RandomChooser, next_event
from benefits.events.reactions import Reactions
from benefits.events.schema import EVENT_TYPES, parse_event
from benefits.events.service import EventService
from benefits.rulebook import default_rules_folder, load_pack
from benefits.rulesdoc import splice_reactions
from tests.conftest import bank, person

MONTH = "2025-02"
GRANNY = person("1940-01-10", 3, "H1", name="王奶奶")  # 85: old-age allowance
KID = person("2016-05-05", 5, "H2", name="王小", relation="child", mother_id_no=GRANNY["id_no"])
OLD = person("1938-03-03", 7, "H3", name="陈老")  # 86: old-age allowance, moves out and back


def tables() -> dict[str, list[dict]]:
    return {
        "persons": [dict(p) for p in (GRANNY, KID, OLD)],
        "bank_accounts": [bank(p) for p in (GRANNY, KID, OLD)],
    }


@pytest.fixture
def pack_copy(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "rules"
    shutil.copytree(default_rules_folder(), folder)
    yield folder


def edit_events(folder: Path, change: object) -> None:
    path = folder / "events.yaml"
    book = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(book)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(book, allow_unicode=True, sort_keys=False), encoding="utf-8")


def service(tmp_path: Path, pack: object = PACK) -> EventService:
    return service_for(tables(), MONTH, tmp_path / "data", pack=pack)


# ------------------------------------------------------------------------------------ the pack


def test_every_event_type_has_a_reaction_and_reactions_are_checked() -> None:
    covered = {t for r in PACK.events.reactions for t in r.events}
    assert covered == set(EVENT_TYPES)
    assert {c.id for c in PACK.events.correlations} == {"death_confirmed", "moved_back_in"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b["reactions"][0].update(events=["moved_away"]),
         "unknown event type 'moved_away'"),
        (lambda b: b["reactions"][0].update(redecide=[{"household_of": "cert_no"}]),
         "death_registered events have no field 'cert_no'"),
        (lambda b: b["reactions"][0].update(policies=["pension"]), "unknown policy 'pension'"),
        (lambda b: b["reactions"][0].update(touches=["pets"]), "unknown table 'pets'"),
        (lambda b: b["reactions"][0].update(holds=["maybe"]), "holds.0"),
        (lambda b: b["correlations"][0].update(same=["cert_no"]),
         "'cert_no' is not a field of both"),
        (lambda b: b["correlations"][0].update(note="see {first_evnt}"),
         "unknown name {first_evnt}"),
    ],
)  # fmt: skip
def test_a_wrong_reaction_is_refused_when_the_pack_loads(
    pack_copy: Path, edit: object, message: str
) -> None:
    edit_events(pack_copy, edit)
    with pytest.raises(RuleError, match=r"events\.yaml") as info:
        load_pack(pack_copy)
    assert message in str(info.value)


def test_the_events_document_lists_the_reactions_of_the_pack() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "events.md"
    text = doc.read_text(encoding="utf-8")
    assert splice_reactions(text, PACK) == text, "run: benefits events reactions --doc " + str(doc)
    assert "`death_confirmed`" in text and "`parent_situation_redecides_children`" in text


# ------------------------------------------------------------------------- reactions at work


def test_a_death_sets_off_its_reactions_and_re_decides_the_children(tmp_path: Path) -> None:
    svc = service(tmp_path)
    death = event("death_registered", "d1", "police", "2025-01-10", id_no=GRANNY["id_no"])
    result = svc.apply(death)
    assert result.status == "applied", result.error
    assert [r["reaction"] for r in result.reactions] == [
        "death_stops_payments", "death_opens_survivor_notice", "parent_death_redecides_children",
    ]  # fmt: skip
    assert result.households == ["H1", "H2"]  # her own, and her son's
    assert ("stop", "old_age_allowance") in [(c.kind, c.policy_id) for c in result.changes]
    assert svc.reactions.working_memory() == []  # nothing is kept in durable_rules


def test_a_certificate_re_decides_only_the_holders_household(tmp_path: Path) -> None:
    svc = service(tmp_path)
    ev = event("certificate_issued", "c1", "disabled_federation", "2025-01-05",
               id_no=GRANNY["id_no"], cert_no="C-1", category="physical", grade=1,
               expiry_date="2029-01-01")  # fmt: skip
    result = svc.apply(ev)
    assert [r["reaction"] for r in result.reactions] == ["certificate_redecides_disability"]
    assert result.households == ["H1"]  # her son's decisions do not read her certificate


def test_a_reaction_added_in_yaml_takes_effect(pack_copy: Path, tmp_path: Path) -> None:
    def add(book: dict) -> None:
        book["reactions"].append({
            "id": "care_redecides_children",
            "label": {"zh": "评估重审子女", "en": "a care assessment re-decides the children"},
            "basis": "test",
            "events": ["care_assessed"],
            "where": {"care_level": ["full", "partial"]},
            "touches": ["care_assessments"],
            "redecide": [{"children_of": "id_no"}],
            "policies": ["unsupported_child_allowance"],
        })  # fmt: skip

    ev = event("care_assessed", "a1", "health", "2025-01-05", id_no=GRANNY["id_no"],
                care_level="full", institution_resident=False)  # fmt: skip
    before = service(tmp_path / "before").apply(ev)
    assert before.households == ["H1"]
    edit_events(pack_copy, add)
    svc = service(tmp_path / "after", load_pack(pack_copy))
    after = svc.apply(ev)
    assert [r["reaction"] for r in after.reactions] == [
        "care_assessment_redecides_care", "care_redecides_children",
    ]  # fmt: skip
    assert after.households == ["H1", "H2"]
    self_care = dict(ev, event_id="a2", care_level="self_care")  # `where` does not hold
    assert [r["reaction"] for r in svc.apply(self_care).reactions] == [
        "care_assessment_redecides_care"
    ]


def test_a_change_no_reaction_declares_is_refused(pack_copy: Path, tmp_path: Path) -> None:
    edit_events(pack_copy, lambda b: b["reactions"][-1].update(touches=["persons"]))
    svc = service(tmp_path, load_pack(pack_copy))
    ev = event("bank_account_changed", "b1", "bank", "2025-01-05", id_no=OLD["id_no"],
               account_no="6222000011112222", account_name="陈老")  # fmt: skip
    result = svc.apply(ev)
    assert result.status == "failed"
    assert "bank_account_changed changes bank_accounts, which no reaction" in (result.error or "")
    assert svc.store.person_rows("bank_accounts", OLD["id_no"])[-1].account_no != "6222000011112222"


def test_holds_follow_the_reactions(pack_copy: Path) -> None:
    book = load_pack(pack_copy).events
    rx = Reactions(book)
    bank_event = parse_event(event("bank_account_changed", "b1", "bank", "2025-01-05",
                                   id_no=OLD["id_no"], account_no="6222000011112222",
                                   account_name="陈老", status="closed"))  # fmt: skip
    assert rx.match(bank_event).holds() == {"held"}
    death = parse_event(event("death_registered", "d1", "police", "2025-01-10",
                              id_no=OLD["id_no"]))  # fmt: skip
    assert rx.match(death).holds() == {"stop", "held"}


# ------------------------------------------------------------------------------ correlations


def test_a_second_report_of_a_death_confirms_it_and_changes_nothing(tmp_path: Path) -> None:
    data = tables()
    svc = service_for(data, MONTH, tmp_path / "data")
    first = svc.apply(event("death_registered", "gab-1", "police", "2025-01-10",
                            id_no=GRANNY["id_no"]))  # fmt: skip
    assert first.status == "applied" and len(first.rows) == 1 and first.changes
    apply_rows(data, first.rows)
    again = svc.apply(event("death_registered", "hos-9", "health", "2025-01-11",
                            id_no=GRANNY["id_no"]))  # fmt: skip
    assert again.status == "applied"
    assert (again.rows, again.changes, again.households) == ([], [], [])
    assert again.notes == [
        "confirms the death reported by event gab-1 (police, 2025-01-10): nothing changes"
    ]
    assert [r.get("correlation") for r in again.reactions][-1] == "death_confirmed"
    assert len(svc.store.person_rows("deaths", GRANNY["id_no"])) == 1
    # the same department again, or a date outside the window: a report of its own
    same_dept = svc.apply(event("death_registered", "gab-2", "police", "2025-01-10",
                                id_no=GRANNY["id_no"]))  # fmt: skip
    far = svc.apply(event("death_registered", "fun-3", "funeral", "2025-01-20",
                          id_no=GRANNY["id_no"]))  # fmt: skip
    assert same_dept.notes == [] and len(same_dept.rows) == 1
    assert far.notes == [] and len(far.rows) == 1
    for result in (same_dept, far):
        apply_rows(data, result.rows)
    assert_agrees(svc, sweep_tables(data, MONTH, tmp_path / "after"))


def test_a_confirmation_survives_a_restart_through_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    svc = service_for(tables(), MONTH, tmp_path / "data", journal=journal)
    svc.apply(event("death_registered", "gab-1", "police", "2025-01-10", id_no=GRANNY["id_no"]))
    restarted = EventService(tmp_path / "data", MONTH, pack=PACK, evaluator=shared_evaluator(),
                             journal=journal, freeze_gc=False)  # fmt: skip
    second = restarted.apply(event("death_registered", "hos-9", "health", "2025-01-10",
                                   id_no=GRANNY["id_no"]))  # fmt: skip
    assert second.rows == [] and second.notes[0].startswith("confirms the death reported by")


@pytest.mark.parametrize(
    ("back_on", "within"),
    [("2025-01-20", True), ("2025-02-14", True), ("2025-02-15", False), ("2025-01-09", False)],
)
def test_a_move_back_in_within_the_window_withdraws_the_move_out(
    tmp_path: Path, back_on: str, within: bool
) -> None:
    data = tables()
    svc = service_for(data, MONTH, tmp_path / "data")
    out = svc.apply(event("hukou_moved_out", "m1", "police", "2025-01-15", id_no=OLD["id_no"]))
    assert ("stop", "old_age_allowance") in [(c.kind, c.policy_id) for c in out.changes]
    apply_rows(data, out.rows)
    back = svc.apply(event("hukou_moved_in", "m2", "police", back_on, id_no=OLD["id_no"]))
    assert back.status == "applied", back.error
    days = (dt.date.fromisoformat(back_on) - dt.date(2025, 1, 15)).days
    expected = [f"moves back in {days} day(s) after the move out of event m1 (2025-01-15): "
                "the move out is withdrawn"]  # fmt: skip
    assert back.notes == (expected if within else [])
    assert ("start", "old_age_allowance") in [(c.kind, c.policy_id) for c in back.changes]
    apply_rows(data, back.rows)
    assert_agrees(svc, sweep_tables(data, MONTH, tmp_path / "after"))


def test_moving_in_someone_who_did_not_move_out_is_refused(tmp_path: Path) -> None:
    result = service(tmp_path).apply(
        event("hukou_moved_in", "m9", "police", "2025-01-15", id_no=OLD["id_no"])
    )
    assert result.status == "rejected"
    assert "is normal, not moved out" in (result.error or "")


# ------------------------------------------------------------- declarations against decisions


def test_what_reactions_declare_covers_what_re_deciding_changes() -> None:
    """On generated events over the sample district, every entitlement change is of a policy
    and every alert change of a kind that a reaction that fired declares."""
    data = Path(__file__).resolve().parents[2] / "datasets" / "sample"
    svc = EventService(data, MONTH, pack=PACK, evaluator=shared_evaluator(), freeze_gc=False)
    chooser = RandomChooser(20251206)
    undeclared = []
    applied = 0
    for n in range(400):
        ev = next_event(chooser, svc.store, svc.month, n)
        result = svc.apply(ev)
        if result.status != "applied":
            continue
        applied += 1
        fired = [r for r in result.reactions if "reaction" in r]
        policies = {p for r in fired if r["policies"] != "all" for p in r["policies"]}
        alerts = {a for r in fired if r["alerts"] != "all" for a in r["alerts"]}
        any_policy = any(r["policies"] == "all" for r in fired)
        any_alert = any(r["alerts"] == "all" for r in fired)
        for c in result.changes:
            if c.kind in ENTITLEMENT_CHANGES:
                if not any_policy and c.policy_id not in policies:
                    undeclared.append((ev["type"], c.policy_id))
            elif not any_alert and (c.after or c.before or {})["kind"] not in alerts:
                undeclared.append((ev["type"], (c.after or c.before or {})["kind"]))
    assert applied > 300
    assert undeclared == []
