"""Validity periods, differentially: the event path's facts and decisions equal the sweep's.

Every table with a validity period (``period:`` in ``tables.yaml``: parent_situations,
health_conditions, disability_certificates) gets several rows per person that overlap each
other and the month's first day in every way the contract distinguishes: open-ended, a future
(planned) end, an end on the first day itself, a start on it, a start after it, ended before
it, and — for certificates — cancelled ones. Two oracles:

- facts: for each household, :func:`benefits.household.household_facts` (the event path's
  backend) equals the rows of :func:`benefits.merge.build_facts` (the sweep's), every column;
- decisions: an event service whose decisions come from its own facts (``baseline="rules"``)
  agrees with the sweep, before and after events that start, end, issue or cancel such rows.

``BENEFITS_EVENT_EXAMPLES`` scales the number of generated cases (a fifth of it here).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from events_helpers import PACK, apply_rows, assert_agrees, event, service_for, sweep
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benefits.events.generate import OUTSIDERS
from benefits.events.store import Store
from benefits.household import ORDER, MonthContext, household_facts
from benefits.ingest import load_extracts
from benefits.merge import build_facts
from benefits.period import BenefitMonth
from tests.conftest import bank, person, write_delivery

EXAMPLES = max(10, int(os.environ.get("BENEFITS_EVENT_EXAMPLES", "250")) // 5)
MONTH = BenefitMonth.parse("2025-02")
FIRST = MONTH.start
SITUATIONS = ["imprisoned", "compulsory_rehab", "missing", "severely_disabled"]
PRECEDENCE = tuple(PACK.info.status_precedence)


def iso(d: dt.date) -> str:
    return d.isoformat()


def day(offset: int) -> str:
    return iso(FIRST + dt.timedelta(days=offset))


# (start, end) relative to the month's first day; None = open-ended
SHAPES = {
    "open": (-400, None),
    "future_end": (-300, 900),
    "ends_on_first": (-200, 0),
    "ended_before": (-500, -1),
    "starts_on_first": (0, None),
    "starts_after": (3, 400),
    "short_future": (-10, 20),
}
shapes = st.sampled_from(sorted(SHAPES))


def period_row(shape: str) -> tuple[str, str]:
    start, end = SHAPES[shape]
    return day(start), "" if end is None else day(end)


@st.composite
def districts(draw: st.DrawFn) -> dict[str, list[dict]]:
    """Children with parents in and outside the registry, and overlapping periods."""
    dad = person("1980-01-05", 11, "H1", "李四", relation="head")
    mum = person("1982-02-06", 12, "H1", "王小红", relation="spouse")
    kids = [
        person(f"201{k}-03-0{k + 1}", 20 + k, "H1", "欧阳小明", relation="child",
               father_id_no=dad["id_no"], mother_id_no=mum["id_no"])
        for k in range(draw(st.integers(1, 2)))
    ]  # fmt: skip
    other = person("1950-07-08", 31, "H2", "赵敏", relation="head")
    persons = [dad, mum, *kids, other]
    ids = [p["id_no"] for p in persons]
    adults = [dad["id_no"], mum["id_no"], other["id_no"]]
    if draw(st.booleans()):  # the mother only in the deaths/situations of another registry
        kids[0]["mother_id_no"] = OUTSIDERS[0]
    tables: dict[str, list[dict]] = {"persons": persons}
    situations = []
    for who in [*adults, kids[0]["mother_id_no"]]:
        for shape in draw(st.lists(shapes, max_size=3)):
            start, end = period_row(shape)
            situations.append({"id_no": who, "situation": draw(st.sampled_from(SITUATIONS)),
                               "start_date": start, "end_date": end})  # fmt: skip
    tables["parent_situations"] = situations
    tables["health_conditions"] = [
        {"id_no": who, "condition": draw(st.sampled_from(["serious_illness", "rare_disease"])),
         "diagnosed_on": period_row(shape)[0], "end_date": period_row(shape)[1]}
        for who in ids for shape in draw(st.lists(shapes, max_size=2))
    ]  # fmt: skip
    certs = []
    for k, (who, shape) in enumerate(
        draw(st.lists(st.tuples(st.sampled_from(ids), shapes), max_size=5))
    ):
        start, end = period_row(shape)
        certs.append({
            "id_no": who, "cert_no": f"C{k}", "category": "physical",
            "grade": str(draw(st.integers(1, 4))), "issue_date": start,
            "expiry_date": end or day(2000),  # a certificate always expires
            "status": draw(st.sampled_from(["valid", "valid", "cancelled"])),
        })  # fmt: skip
    tables["disability_certificates"] = certs
    tables["assistance"] = [
        {"id_no": dad["id_no"], "household_no": "H1", "assistance_type": "dibao",
         "approved_date": "2023-05-01", "next_review_date": ""}
    ] if draw(st.booleans()) else []  # fmt: skip
    tables["household_finance"] = [
        {"household_no": "H1", "per_capita_income": "300.00", "per_capita_assets": "0.00",
         "assessed_on": "2024-10-01"}
    ]  # fmt: skip
    tables["bank_accounts"] = [bank(p) for p in persons]
    return tables


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(districts())
def test_the_two_backends_compute_the_same_facts(tables: dict[str, list[dict]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extracts = load_extracts(write_delivery(Path(tmp), tables, with_bank=False))
    swept = build_facts(extracts, MONTH, PACK.info.district_code, PRECEDENCE)
    by_row = {r["persons_row"]: r for r in swept.rows(named=True)}
    store = Store.from_extracts(extracts)
    ctx = MonthContext.for_month(MONTH, PACK.info.district_code, PRECEDENCE)
    seen = 0
    for household in store.members:
        for facts in household_facts(store, household, ctx):
            expected = by_row[facts[ORDER]]
            mine = {k: facts[k] for k in expected}
            assert mine == expected, {k: (mine[k], v) for k, v in expected.items() if mine[k] != v}
            seen += 1
    assert seen == swept.height


def events_for(tables: dict[str, list[dict]], data: st.DataObject) -> list[dict]:
    """Events on rows with periods: starts, ends (on, before and after the first), certs."""
    persons = tables["persons"]
    adults = [p["id_no"] for p in persons if p["relation"] in ("head", "spouse")]
    out = []
    for n in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["start", "end", "issue", "cancel"]))
        when = day(data.draw(st.sampled_from([-40, -1, 0, 1, 10])))
        if kind == "start":
            out.append(event("parent_situation_started", f"s{n}", "justice", when,
                             id_no=data.draw(st.sampled_from(adults)),
                             situation=data.draw(st.sampled_from(SITUATIONS))))  # fmt: skip
        elif kind == "end" and tables["parent_situations"]:
            row = data.draw(st.sampled_from(tables["parent_situations"]))
            out.append(event("parent_situation_ended", f"e{n}", "justice", when,
                             id_no=row["id_no"], situation=row["situation"]))  # fmt: skip
        elif kind == "issue":
            who = data.draw(st.sampled_from([p["id_no"] for p in persons]))
            expiry = day(data.draw(st.sampled_from([0, 30, 700])))
            out.append(event("certificate_issued", f"i{n}", "disabled_federation", when,
                             id_no=who, cert_no=f"N{n}", category="mental",
                             grade=data.draw(st.integers(1, 4)), expiry_date=expiry))  # fmt: skip
        elif kind == "cancel" and tables["disability_certificates"]:
            row = data.draw(st.sampled_from(tables["disability_certificates"]))
            out.append(event("certificate_cancelled", f"c{n}", "disabled_federation", when,
                             id_no=row["id_no"], cert_no=row["cert_no"]))  # fmt: skip
    return out


@settings(max_examples=max(5, EXAMPLES // 2), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(districts(), st.data())
def test_decisions_agree_before_and_after_period_events(
    tables: dict[str, list[dict]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        service = service_for(tables, MONTH.label, folder / "data", baseline="rules")
        assert_agrees(service, sweep(tables, MONTH.label, folder / "before"))
        for k, ev in enumerate(events_for(tables, data)):
            result = service.apply(ev)
            if result.status == "applied":
                apply_rows(tables, result.rows)
            assert_agrees(service, sweep(tables, MONTH.label, folder / f"after{k}"))
