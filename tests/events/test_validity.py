"""Rows with a validity period on the events path: the data contract's reading, everywhere.

A row is in force on day D when start ≤ D and (end empty or end ≥ D) — a planned end later
than D does not make it any less current. These tests hold the event path to that reading for
each kind of row with a period (parent situations, disability certificates, health
conditions), and hold an ending event on D to ending the row in force on D even when it already
carries a later planned end (a detention with a scheduled release, released early).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from events_helpers import apply_rows, assert_agrees, event, service_for, sweep

from benefits.events.planners import plan
from benefits.events.schema import EventError, parse_event
from benefits.events.store import Store
from benefits.household import MonthContext, household_facts
from benefits.idcard import make_id
from benefits.ingest import load_extracts
from benefits.period import BenefitMonth
from benefits.validity import in_force, row_in_force
from tests.conftest import bank, person, write_delivery

MONTH = "2025-02"
DAY = "2025-01-20"  # the events' date, before the month


def pid_of(birth: str, seq: int) -> str:
    return make_id("330106", dt.date.fromisoformat(birth), seq)


DEAD_DAD = pid_of("1979-09-09", 21)
MUM = pid_of("1983-03-03", 22)  # not in the registry; in prison, release planned for 2027
SON = person(
    "2013-03-03", 19, "H7", name="郑二", relation="child", father_id_no=DEAD_DAD,
    mother_id_no=MUM,
)  # fmt: skip
DISABLED = person("1961-03-03", 9, "H4", name="钱进")  # 63, grade-2 certificate until 2030
ILL_KID = person("2015-05-05", 7, "H3", name="赵小宝", relation="child")


def situation(start: str, end: str = "", kind: str = "imprisoned", who: str = MUM) -> dict:
    return {"id_no": who, "situation": kind, "start_date": start, "end_date": end}


def delivery(situations: list[dict]) -> dict[str, list[dict]]:
    """Son of a dead father and of a mother in the given situations."""
    return {
        "persons": [dict(SON)],
        "deaths": [{"id_no": DEAD_DAD, "death_date": "2019-01-01", "source": "health"}],
        "parent_situations": situations,
        "bank_accounts": [bank(SON)],
    }


def end_of(kind: str = "imprisoned") -> dict:
    """The mother's `kind` situation ended on DAY."""
    return event("parent_situation_ended", "r1", "justice", DAY, id_no=MUM, situation=kind)


# ------------------------------------------------------------------------ the reported case


def test_a_release_before_the_scheduled_date_ends_the_detention(tmp_path: Path) -> None:
    """The issue's case: a detention with a scheduled release in 2027, released early."""
    tables = delivery([situation("2022-06-01", "2027-06-01")])
    service = service_for(tables, MONTH, tmp_path / "data")
    assert [e["policy_id"] for e in service.person(SON["id_no"])["entitlements"]] == [
        "unsupported_child_allowance"
    ]
    result = service.apply(end_of())
    assert result.status == "applied", result.error
    assert [r.as_dict() for r in result.rows] == [
        {"op": "update", "table": "parent_situations", "rows": [1],
         "match": {"id_no": MUM, "situation": "imprisoned", "start_date": "2022-06-01",
                   "end_date": "2027-06-01"},
         "values": {"end_date": DAY}},
    ]  # fmt: skip
    assert [(c.kind, c.policy_id) for c in result.changes][:1] == [
        ("stop", "unsupported_child_allowance")
    ]
    assert service.store.person_rows("parent_situations", MUM)[0].end_date == dt.date(2025, 1, 20)
    apply_rows(tables, result.rows)
    assert tables["parent_situations"][0]["end_date"] == DAY
    assert_agrees(service, sweep(tables, MONTH, tmp_path / "after"))


def test_only_the_rows_in_force_on_the_day_are_ended(tmp_path: Path) -> None:
    """A past detention, the current one (planned end), an open one, another situation."""
    tables = delivery([
        situation("2015-01-01", "2016-01-01"),            # ended long ago: untouched
        situation("2022-06-01", "2027-06-01"),            # planned release: brought forward
        situation("2024-03-01", "2025-01-20"),            # already ends that day: untouched
        situation("2023-01-01"),                          # no end: ended
        situation("2020-01-01", "2030-01-01", "missing"),  # another situation: untouched
        situation("2025-01-21"),                          # starts after the day: untouched
    ])  # fmt: skip
    service = service_for(tables, MONTH, tmp_path / "data")
    result = service.apply(end_of())
    assert result.status == "applied", result.error
    assert [(r.rows, r.match["end_date"]) for r in result.rows] == [
        ((2,), "2027-06-01"),
        ((4,), ""),
    ]
    ends = [r.end_date for r in service.store.person_rows("parent_situations", MUM)]
    day = dt.date(2025, 1, 20)
    assert ends == [dt.date(2016, 1, 1), day, day, day, dt.date(2030, 1, 1), None]
    # still missing: the child stays unsupported
    assert result.changes == []
    apply_rows(tables, result.rows)
    assert_agrees(service, sweep(tables, MONTH, tmp_path / "after"))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([situation("2022-06-01", "2025-01-19")],
         "has no open 'imprisoned' situation on 2025-01-20 to end"),
        ([situation("2025-02-01", "2027-06-01")],
         "has no open 'imprisoned' situation on 2025-01-20 to end (it starts on 2025-02-01)"),
        ([situation("2022-06-01", "2025-01-20")],
         "the 'imprisoned' situation of " + MUM + " already ends on 2025-01-20"),
        ([situation("2022-06-01", "2027-06-01", "missing")],
         "has no open 'imprisoned' situation on 2025-01-20 to end"),
    ],
)  # fmt: skip
def test_an_end_that_fits_no_row_in_force_is_refused(
    tmp_path: Path, rows: list[dict], message: str
) -> None:
    tables = delivery(rows)
    service = service_for(tables, MONTH, tmp_path / "data")
    before = service.entitlements()
    result = service.apply(end_of())
    assert result.status == "rejected" and message in (result.error or ""), result.error
    assert result.rows == [] and service.entitlements().equals(before)


def test_the_planner_ends_a_planned_end_early_and_leaves_other_rows(tmp_path: Path) -> None:
    data = write_delivery(tmp_path, delivery([
        situation("2022-06-01", "2027-06-01"), situation("2022-06-01", "2027-06-01"),
        situation("2010-01-01", "2011-01-01"),
    ]), with_bank=False)  # fmt: skip
    store = Store.from_extracts(load_extracts(data))
    ev = parse_event(end_of())
    changes = plan(store, ev, "330106")
    assert [(c.op, c.rows, c.values) for c in changes] == [
        ("update", (1, 2), {"end_date": DAY})
    ]
    store.apply(changes)
    ends = [r.end_date for r in store.person_rows("parent_situations", MUM)]
    assert ends == [dt.date(2025, 1, 20), dt.date(2025, 1, 20), dt.date(2011, 1, 1)]
    with pytest.raises(EventError, match="already ends on 2025-01-20"):
        plan(store, ev, "330106")


# ---------------------------------------------------------- one reading for every kind of row

START = dt.date(2025, 2, 1)  # the month's first day, when the facts read the rows


def _facts(tmp_path: Path, tables: dict[str, list[dict]], who: dict) -> dict[str, Any]:
    store = Store.from_extracts(load_extracts(write_delivery(tmp_path, tables)))
    ctx = MonthContext.for_month(BenefitMonth.parse(MONTH), "330106", ("tekun", "dibao", "dibian"))
    return next(f for f in household_facts(store, who["household_no"], ctx)
                if f["id_no"] == who["id_no"])  # fmt: skip


# (end date, in force on START): a planned end, the last day, the day before, none
ENDS = [("2027-06-01", True), ("2025-02-01", True), ("2025-01-31", False), ("", True)]


@pytest.mark.parametrize(("end", "current"), ENDS)
def test_a_parent_situation_with_a_planned_end_is_current(
    tmp_path: Path, end: str, current: bool
) -> None:
    facts = _facts(tmp_path, delivery([situation("2022-06-01", end)]), SON)
    assert facts["mother_in_situation"] is current
    assert facts["mother_situation"] == ("imprisoned" if current else None)


@pytest.mark.parametrize(("end", "current"), ENDS)
def test_a_health_condition_with_a_planned_end_is_open(
    tmp_path: Path, end: str, current: bool
) -> None:
    tables = {
        "persons": [dict(ILL_KID)],
        "health_conditions": [{"id_no": ILL_KID["id_no"], "condition": "rare_disease",
                               "diagnosed_on": "2024-05-01", "end_date": end}],
    }  # fmt: skip
    assert _facts(tmp_path, tables, ILL_KID)["has_open_health_condition"] is current


@pytest.mark.parametrize(
    ("expiry", "status", "counts"),
    [*[(end or "2099-12-31", "valid", current) for end, current in ENDS],
     ("2030-01-01", "cancelled", False)],
)  # fmt: skip
def test_a_certificate_counts_while_valid_and_in_force(
    tmp_path: Path, expiry: str, status: str, counts: bool
) -> None:
    tables = {
        "persons": [dict(DISABLED)],
        "disability_certificates": [{"id_no": DISABLED["id_no"], "cert_no": "CDPF-1",
                                     "category": "physical", "grade": "2",
                                     "issue_date": "2020-01-01", "expiry_date": expiry,
                                     "status": status}],
    }  # fmt: skip
    facts = _facts(tmp_path, tables, DISABLED)
    assert facts["has_cert"] is counts
    assert facts["cert_expiry_date"] == (dt.date.fromisoformat(expiry) if counts else None)


def test_a_certificate_cancelled_before_its_expiry_stops_the_subsidy(tmp_path: Path) -> None:
    """A certificate's early end is its cancellation: it stops counting at once."""
    tables = {
        "persons": [dict(DISABLED)],
        "disability_certificates": [{"id_no": DISABLED["id_no"], "cert_no": "CDPF-1",
                                     "category": "physical", "grade": "1",
                                     "issue_date": "2020-01-01", "expiry_date": "2030-01-01",
                                     "status": "valid"}],
    }  # fmt: skip
    service = service_for(tables, MONTH, tmp_path / "data")
    assert service.person(DISABLED["id_no"])["entitlements"]
    result = service.apply(event("certificate_cancelled", "c1", "disabled_federation", DAY,
                                 id_no=DISABLED["id_no"], cert_no="CDPF-1"))  # fmt: skip
    assert result.status == "applied", result.error
    assert {c.kind for c in result.changes} >= {"stop"}
    assert service.person(DISABLED["id_no"])["entitlements"] == []
    apply_rows(tables, result.rows)
    assert_agrees(service, sweep(tables, MONTH, tmp_path / "after"))


def test_one_helper_reads_every_period_the_same_way() -> None:
    """`row_in_force` is `in_force` over each table's period columns (plus a certificate's
    status), both ends included."""
    day = dt.date(2025, 2, 1)
    for start, end, expected in [
        (day, None, True), (day, day, True), (day + dt.timedelta(1), None, False),
        (dt.date(2020, 1, 1), day - dt.timedelta(1), False),
        (dt.date(2020, 1, 1), dt.date(2027, 1, 1), True),
    ]:  # fmt: skip
        assert in_force(start, end, day) is expected
        rows = {
            "parent_situations": _Row(start_date=start, end_date=end),
            "health_conditions": _Row(diagnosed_on=start, end_date=end),
            "disability_certificates": _Row(issue_date=start, expiry_date=end or dt.date.max,
                                            status="valid"),
        }  # fmt: skip
        for table, row in rows.items():
            assert row_in_force(table, row, day) is expected, (table, start, end)
    cancelled = _Row(issue_date=day, expiry_date=dt.date.max, status="cancelled")
    assert not row_in_force("disability_certificates", cancelled, day)


class _Row:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)
