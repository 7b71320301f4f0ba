"""One targeted test per event type: the change it makes, and agreement with the sweep.

Every test starts the event service on a small delivery for February 2025, applies one event,
checks the changes it reports (start, stop, amount change, hold change, alerts) and then
checks that the service's decisions equal a sweep of the delivery with the event's row
changes made to it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from events_helpers import apply_rows, assert_agrees, event, service_for, sweep

from benefits.events.changes import ENTITLEMENT_CHANGES
from benefits.events.service import ApplyResult, EventService
from benefits.idcard import make_id
from tests.conftest import bank, person

MONTH = "2025-02"


def pid_of(birth: str, seq: int) -> str:
    return make_id("330106", dt.date.fromisoformat(birth), seq)


# handles for the people of the base delivery
OLD = person("1940-01-10", 3, "H1", name="王老汉")  # 85: old-age allowance 60.00
SPOUSE = person("1950-06-01", 4, "H1", name="李阿姨", relation="spouse")
MUM = person("1990-04-04", 6, "H3", name="赵丽")  # dibao, household income 500.00
KID = person("2016-05-05", 7, "H3", name="赵小宝", relation="child", mother_id_no=MUM["id_no"])
DISABLED = person("1961-03-03", 9, "H4", name="钱进")  # 63, grade-2 certificate
APPLICANT = person("1975-07-07", 11, "H5", name="孙明")  # finance row, no status yet
LONER = person("1942-09-09", 13, "H6", name="周独居")  # 82, lives alone
FATHER = person("1980-01-01", 15, "H2", name="吴父")  # died in 2020
ORPHAN = person(
    "2014-02-02", 17, "H2", name="吴小", relation="child", father_id_no=FATHER["id_no"],
    mother_id_no=pid_of("1982-02-02", 20),
)  # fmt: skip
OUTSIDE_MUM2 = pid_of("1983-03-03", 22)  # in prison since 2022: her son is unsupported
SON2 = person(
    "2013-03-03", 19, "H7", name="郑二", relation="child", father_id_no=pid_of("1979-09-09", 21),
    mother_id_no=OUTSIDE_MUM2,
)  # fmt: skip
NO_BANK = person("1938-08-08", 23, "H8", name="冯无卡")  # old-age allowance, held

PEOPLE = [OLD, SPOUSE, MUM, KID, DISABLED, APPLICANT, LONER, FATHER, ORPHAN, SON2, NO_BANK]


def base() -> dict[str, list[dict]]:
    """The delivery before any event."""
    return {
        "persons": [dict(p) for p in PEOPLE],
        "deaths": [
            {"id_no": FATHER["id_no"], "death_date": "2020-05-01", "source": "police"},
            {"id_no": SON2["father_id_no"], "death_date": "2019-01-01", "source": "health"},
        ],
        "assistance": [
            {"id_no": MUM["id_no"], "household_no": "H3", "assistance_type": "dibao",
             "approved_date": "2023-03-01", "next_review_date": "2026-03-01"},
        ],
        "household_finance": [
            {"household_no": "H3", "per_capita_income": "500.00", "per_capita_assets": "1000",
             "assessed_on": "2024-11-01"},
            {"household_no": "H5", "per_capita_income": "800.00", "per_capita_assets": "0",
             "assessed_on": "2024-12-01"},
        ],
        "disability_certificates": [
            {"id_no": DISABLED["id_no"], "cert_no": "CDPF-1", "category": "physical",
             "grade": "2", "issue_date": "2020-01-01", "expiry_date": "2030-01-01",
             "status": "valid"},
        ],
        "parent_situations": [
            {"id_no": OUTSIDE_MUM2, "situation": "imprisoned", "start_date": "2022-06-01",
             "end_date": ""},
        ],
        "bank_accounts": [bank(p) for p in PEOPLE if p is not NO_BANK],
    }


def run(tmp_path: Path, ev: dict) -> tuple[EventService, ApplyResult, dict[str, list[dict]]]:
    tables = base()
    service = service_for(tables, MONTH, tmp_path / "data")
    result = service.apply(ev)
    assert result.status == "applied", result.error
    apply_rows(tables, result.rows)
    assert_agrees(service, sweep(tables, MONTH, tmp_path / "after"))
    return service, result, tables


def kinds(result: ApplyResult) -> list[tuple[str, str, str]]:
    """(change, person, policy) for entitlements, (change, person, alert kind) for alerts."""
    return [
        (c.kind, c.id_no,
         c.policy_id if c.kind in ENTITLEMENT_CHANGES else (c.after or c.before or {})["kind"])
        for c in result.changes
    ]  # fmt: skip


def test_base_delivery_agrees_with_the_sweep(tmp_path: Path) -> None:
    tables = base()
    service = service_for(tables, MONTH, tmp_path / "data", baseline="rules")
    assert_agrees(service, sweep(tables, MONTH, tmp_path / "s"))
    held = service.person(NO_BANK["id_no"])["entitlements"]
    assert held == [{"policy_id": "old_age_allowance", "mode": "pay", "amount": "60.00",
                     "held": True, "hold_reason": held[0]["hold_reason"]}]  # fmt: skip


def test_death_registered_stops_payment_and_raises_death_stop(tmp_path: Path) -> None:
    ev = event("death_registered", "d1", "health", "2025-01-10", id_no=OLD["id_no"])
    _, result, _ = run(tmp_path, ev)
    assert kinds(result) == [
        ("stop", OLD["id_no"], "old_age_allowance"),
        ("alert_raised", OLD["id_no"], "death_stop"),
    ]
    stop = result.changes[0]
    assert stop.before == {"amount": "60.00", "held": False, "hold_reason": None}
    assert stop.trace is not None and stop.trace["decision"] == "not_eligible"
    assert stop.trace["conditions"]["alive"]["holds"] is False
    assert stop.trace["conditions"]["alive"]["values"]["death_date"] == "2025-01-10"
    assert result.rows[0].table == "deaths" and result.rows[0].values["source"] == "health"


def test_death_during_the_month_changes_nothing_for_it(tmp_path: Path) -> None:
    ev = event("death_registered", "d2", "police", "2025-02-10", id_no=OLD["id_no"])
    _, result, _ = run(tmp_path, ev)
    assert result.changes == []  # paid for the month of death; stops from the next


def test_birth_registered_starts_the_child_subsidy(tmp_path: Path) -> None:
    baby = make_id("330106", dt.date(2024, 12, 5), 30)
    ev = event(
        "birth_registered", "b1", "police", "2024-12-05", id_no=baby, name="赵小妹", sex="F",
        household_no="H3", hukou_community="330106001", mother_id_no=MUM["id_no"],
    )  # fmt: skip
    service, result, _ = run(tmp_path, ev)
    assert ("start", baby, "child_in_difficulty_subsidy") in kinds(result)
    assert service.person(baby)["entitlements"][0]["amount"] == "612.00"
    assert result.rows[0].values["hukou_district"] == "330106"


def test_hukou_moved_out_stops_payment(tmp_path: Path) -> None:
    ev = event("hukou_moved_out", "m1", "police", "2025-01-15", id_no=OLD["id_no"])
    _, result, _ = run(tmp_path, ev)
    assert kinds(result) == [
        ("stop", OLD["id_no"], "old_age_allowance"),
        ("alert_raised", OLD["id_no"], "moved_out_stop"),
    ]
    assert result.rows[0].op == "update" and result.rows[0].rows == (1,)


def test_certificate_issued_starts_the_nursing_subsidy(tmp_path: Path) -> None:
    ev = event(
        "certificate_issued", "c1", "disabled_federation", "2025-01-05", id_no=LONER["id_no"],
        cert_no="CDPF-9", category="visual", grade=1, expiry_date="2025-04-01",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert kinds(result) == [
        ("start", LONER["id_no"], "severe_disability_nursing_subsidy"),
        ("alert_raised", LONER["id_no"], "cert_expiring"),
    ]
    assert result.changes[0].after["amount"] == "390.30"  # 0.30 × 1301, exactly


def test_certificate_cancelled_stops_the_nursing_subsidy(tmp_path: Path) -> None:
    ev = event(
        "certificate_cancelled", "c2", "disabled_federation", "2025-01-20",
        id_no=DISABLED["id_no"], cert_no="CDPF-1",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert kinds(result) == [("stop", DISABLED["id_no"], "severe_disability_nursing_subsidy")]
    assert result.changes[0].before["amount"] == "260.20"


def test_assistance_approved_starts_dibao(tmp_path: Path) -> None:
    ev = event(
        "assistance_approved", "a1", "civil_affairs", "2025-01-10", id_no=APPLICANT["id_no"],
        household_no="H5", assistance_type="dibao", next_review_date="2025-02-20",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert kinds(result) == [
        ("start", APPLICANT["id_no"], "dibao_allowance"),
        ("alert_cleared", APPLICANT["id_no"], "discovery_lead"),
        ("alert_raised", APPLICANT["id_no"], "review_due"),
    ]
    assert result.changes[0].after["amount"] == "501.00"  # 1301 − 800


def test_assistance_approved_again_updates_the_row(tmp_path: Path) -> None:
    ev = event(
        "assistance_approved", "a2", "civil_affairs", "2024-12-20", id_no=MUM["id_no"],
        household_no="H3", assistance_type="dibao", next_review_date="2025-12-20",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert [r.op for r in result.rows] == ["update"]
    assert result.changes == []


def test_assistance_ended_stops_dibao_and_the_child_subsidy(tmp_path: Path) -> None:
    ev = event(
        "assistance_ended", "a3", "civil_affairs", "2025-01-31", id_no=MUM["id_no"],
        assistance_type="dibao",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    got = kinds(result)
    assert ("stop", MUM["id_no"], "dibao_allowance") in got
    assert ("stop", KID["id_no"], "child_in_difficulty_subsidy") in got
    assert result.rows[0].op == "delete"


def test_finance_assessed_changes_the_amount(tmp_path: Path) -> None:
    ev = event(
        "finance_assessed", "f1", "civil_affairs", "2025-01-12", household_no="H3",
        per_capita_income="901.50", per_capita_assets="0",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    change = result.changes[0]
    assert (change.kind, change.policy_id) == ("amount_change", "dibao_allowance")
    assert (change.before["amount"], change.after["amount"]) == ("801.00", "399.50")


def test_finance_assessed_over_the_standard_stops_with_an_alert(tmp_path: Path) -> None:
    ev = event(
        "finance_assessed", "f2", "civil_affairs", "2025-01-12", household_no="H3",
        per_capita_income="1301.00", per_capita_assets="0",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert ("stop", MUM["id_no"], "dibao_allowance") in kinds(result)
    assert ("alert_raised", MUM["id_no"], "income_over_threshold") in kinds(result)


def test_care_assessed_starts_home_care_credits(tmp_path: Path) -> None:
    ev = event(
        "care_assessed", "h1", "health", "2025-01-03", id_no=LONER["id_no"], care_level="full",
        institution_resident=False,
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert kinds(result) == [("start", LONER["id_no"], "home_care_service_subsidy")]
    assert result.changes[0].mode == "credit" and result.changes[0].after["amount"] == "600.00"


def test_parent_situation_started_starts_the_orphan_allowance(tmp_path: Path) -> None:
    ev = event(
        "parent_situation_started", "p1", "court", "2025-01-02",
        id_no=ORPHAN["mother_id_no"], situation="imprisoned",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    # the mother is not in the registry: her child, in another household, is re-decided
    assert result.households == ["H2"]
    assert kinds(result)[0] == ("start", ORPHAN["id_no"], "unsupported_child_allowance")
    assert result.changes[0].after["amount"] == "2525.00"


def test_parent_situation_ended_stops_the_orphan_allowance(tmp_path: Path) -> None:
    ev = event(
        "parent_situation_ended", "p2", "justice", "2025-01-20", id_no=OUTSIDE_MUM2,
        situation="imprisoned",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert kinds(result)[0] == ("stop", SON2["id_no"], "unsupported_child_allowance")
    assert result.rows[0].values == {"end_date": "2025-01-20"}


def test_bank_account_changed_releases_the_hold(tmp_path: Path) -> None:
    ev = event(
        "bank_account_changed", "k1", "bank", "2025-01-25", id_no=NO_BANK["id_no"],
        account_no="6222000011112222", account_name=NO_BANK["name"],
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert kinds(result) == [
        ("hold_change", NO_BANK["id_no"], "old_age_allowance"),
        ("alert_cleared", NO_BANK["id_no"], "account_problem"),
    ]
    assert result.changes[0].after == {"amount": "60.00", "held": False, "hold_reason": None}


def test_bank_account_closed_holds_the_payment(tmp_path: Path) -> None:
    ev = event(
        "bank_account_changed", "k2", "bank", "2025-01-25", id_no=OLD["id_no"],
        account_no="6222000099990000", account_name=OLD["name"], status="closed",
    )  # fmt: skip
    _, result, _ = run(tmp_path, ev)
    assert kinds(result)[0] == ("hold_change", OLD["id_no"], "old_age_allowance")
    assert result.changes[0].after["held"] is True


@pytest.mark.parametrize(
    ("ev", "message"),
    [
        (event("hukou_moved_out", "x1", "police", "2025-01-01", id_no=pid_of("1999-09-09", 1)),
         "is not in the hukou registry"),
        (event("certificate_cancelled", "x2", "disabled_federation", "2025-01-01",
               id_no=OLD["id_no"], cert_no="NOPE"), "there is no certificate NOPE"),
        (event("certificate_cancelled", "x3", "disabled_federation", "2025-01-01",
               id_no=OLD["id_no"], cert_no="CDPF-1"), "belongs to another person"),
        (event("certificate_issued", "x4", "disabled_federation", "2025-01-01",
               id_no=OLD["id_no"], cert_no="CDPF-1", category="visual", grade=1,
               expiry_date="2026-01-01"), "already exists"),
        (event("assistance_ended", "x5", "civil_affairs", "2025-01-01", id_no=OLD["id_no"],
               assistance_type="tekun"), "has no tekun status"),
        (event("parent_situation_ended", "x6", "justice", "2025-01-01", id_no=OLD["id_no"],
               situation="missing"), "no open 'missing' situation"),
        (event("birth_registered", "x7", "police", "1940-01-10", id_no=OLD["id_no"],
               name="王", sex="M", household_no="H1", hukou_community="330106001"),
         "already registered"),
    ],
)  # fmt: skip
def test_events_that_do_not_fit_the_data_are_refused(
    tmp_path: Path, ev: dict, message: str
) -> None:
    tables = base()
    service = service_for(tables, MONTH, tmp_path / "data", dead_letter=tmp_path / "dead.jsonl")
    before = service.entitlements()
    result = service.apply(ev)
    assert result.status == "rejected" and message in (result.error or "")
    assert service.entitlements().equals(before)
    dead = service.dead_letter.read()  # type: ignore[union-attr]
    assert [d["event_id"] for d in dead] == [ev["event_id"]]
    assert dead[0]["event"] == ev and message in dead[0]["error"]


def test_the_journal_keeps_events_applied_across_restarts(tmp_path: Path) -> None:
    tables = base()
    journal = tmp_path / "journal.jsonl"
    death = event("death_registered", "d1", "police", "2025-01-10", id_no=OLD["id_no"])
    first = service_for(tables, MONTH, tmp_path / "data", journal=journal)
    assert first.apply(death).status == "applied"
    again = service_for(tables, MONTH, tmp_path / "data2", journal=journal)
    assert [r.status for r in again.replayed] == ["applied"]
    assert again.apply(death).status == "duplicate"  # the id stays applied after a restart
    assert again.entitlements().equals(first.entitlements())
    assert journal.read_text(encoding="utf-8").count("\n") == 1
