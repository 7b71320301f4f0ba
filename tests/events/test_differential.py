"""Agreement proven: the event path equals a full sweep of the updated extracts.

Hypothesis generates small districts (every table of the contract, parents inside and outside
the registry, statuses, means tests, certificates, situations, pensions, bank accounts) and a
random sequence of events of every type — valid ones, ones that do not fit the data, invalid
ones and repeats. Rows with a validity period (situations, health conditions, certificates)
often carry a planned end after the events' dates, which the ending events bring forward.
The events are applied one by one through the event service (rules in durable_rules); the
row changes each applied event made are made to the raw rows, which are written to disk and
swept by ``run_sweep`` for the same month. Entitlements (amounts, holds), alerts and every
trace record must be equal.

``BENEFITS_EVENT_EXAMPLES`` sets the number of generated cases (default 250; each applies one
to eight events).
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
from events_helpers import PACK, apply_rows, assert_agrees, service_for, shared_evaluator, sweep
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

from benefits.events.generate import OUTSIDERS, RandomChooser, next_event
from benefits.events.service import EventService
from benefits.sweep import run_sweep
from tests.conftest import bank, person

EXAMPLES = int(os.environ.get("BENEFITS_EVENT_EXAMPLES", "250"))
MONTHS = ["2024-12", "2025-01", "2025-02", "2025-03", "2025-07"]
NAMES = ["张三明", "李四", "王小红", "赵敏", "欧阳小明"]
births = st.dates(min_value=dt.date(1915, 1, 1), max_value=dt.date(2024, 12, 31))
recent = st.dates(min_value=dt.date(2022, 1, 1), max_value=dt.date(2025, 8, 31))
money = st.integers(min_value=0, max_value=400000).map(lambda f: f"{f // 100}.{f % 100:02d}")
SITUATIONS = ["imprisoned", "compulsory_rehab", "missing", "severely_disabled"]


def planned_end(start: dt.date) -> st.SearchStrategy[str]:
    """An end date on or after `start`, often after the events' dates (a scheduled release,
    a certificate's expiry years away): rows the events end early."""
    return st.integers(0, 1500).map(lambda days: (start + dt.timedelta(days=days)).isoformat())


def end_dates(start: dt.date) -> st.SearchStrategy[str]:
    """A validity period's end: none, planned (on or after `start`), or any recent date."""
    return st.one_of(st.just(""), planned_end(start), recent.map(str))


@st.composite
def districts(draw: st.DrawFn) -> tuple[dict[str, list[dict]], str]:
    """A small district and a benefit month."""
    n = draw(st.integers(min_value=1, max_value=9))
    households = [f"H{k}" for k in range(draw(st.integers(1, 3)))]
    persons = []
    for i, birth in enumerate(draw(st.lists(births, min_size=n, max_size=n))):
        seq = 100 + i * 2 + draw(st.integers(0, 1))
        relation = draw(st.sampled_from(["head", "spouse", "child", "parent"]))
        household = draw(st.sampled_from(households))
        row = person(birth.isoformat(), seq, household, draw(st.sampled_from(NAMES)),
                     relation=relation)  # fmt: skip
        status = draw(st.sampled_from(["normal"] * 8 + ["moved_out", "cancelled"]))
        row["hukou_status"] = status
        if status != "normal" and draw(st.booleans()):
            row["moved_out_date"] = draw(recent).isoformat()
        if draw(st.integers(0, 12)) == 0:
            row["hukou_district"] = "330105"
        persons.append(row)
    ids = [p["id_no"] for p in persons]
    parents = ids + list(OUTSIDERS)
    for row in persons:
        if draw(st.integers(0, 2)) == 0:
            row["father_id_no"] = draw(st.sampled_from([*parents, ""]))
            row["mother_id_no"] = draw(st.sampled_from([*parents, ""]))
    pick = st.sampled_from(ids)
    anyone = st.sampled_from(parents)
    tables: dict[str, list[dict]] = {"persons": persons}
    kinds = draw(st.sets(st.tuples(pick, st.sampled_from(["dibao", "dibian", "tekun"])),
                         max_size=4))  # fmt: skip
    tables["assistance"] = [
        {"id_no": i, "household_no": draw(st.sampled_from(households)), "assistance_type": t,
         "approved_date": draw(recent).isoformat(),
         "next_review_date": draw(st.one_of(st.just(""), recent.map(str)))}
        for i, t in sorted(kinds)
    ]  # fmt: skip
    tables["household_finance"] = [
        {"household_no": draw(st.sampled_from(households)),
         "per_capita_income": draw(money), "per_capita_assets": draw(money),
         "assessed_on": draw(recent).isoformat()}
        for _ in range(draw(st.integers(0, 4)))
    ]  # fmt: skip
    tables["disability_certificates"] = [
        {"id_no": draw(pick), "cert_no": f"C{k}",
         "category": draw(st.sampled_from(["physical", "intellectual", "mental", "visual"])),
         "grade": str(draw(st.integers(1, 4))), "issue_date": issued.isoformat(),
         "expiry_date": draw(st.one_of(st.just((issued + dt.timedelta(days=700)).isoformat()),
                                       planned_end(issued))),
         "status": draw(st.sampled_from(["valid", "valid", "cancelled"]))}
        for k, issued in enumerate(draw(st.lists(recent, max_size=3)))
    ]  # fmt: skip
    tables["care_assessments"] = [
        {"id_no": draw(pick), "care_level": draw(st.sampled_from(["self_care", "partial", "full"])),
         "assessed_on": draw(recent).isoformat(),
         "institution_resident": draw(st.sampled_from(["true", "false", "0"]))}
        for _ in range(draw(st.integers(0, 3)))
    ]  # fmt: skip
    tables["deaths"] = [
        {"id_no": draw(anyone), "death_date": draw(recent).isoformat(),
         "source": draw(st.sampled_from(["police", "health", "funeral"]))}
        for _ in range(draw(st.integers(0, 2)))
    ]  # fmt: skip
    tables["parent_situations"] = [
        {"id_no": draw(anyone), "situation": draw(st.sampled_from(SITUATIONS)),
         "start_date": start.isoformat(), "end_date": draw(end_dates(start))}
        for start in [draw(recent) for _ in range(draw(st.integers(0, 3)))]
    ]  # fmt: skip
    tables["health_conditions"] = [
        {"id_no": draw(pick), "condition": "serious_illness",
         "diagnosed_on": start.isoformat(), "end_date": draw(end_dates(start))}
        for start in draw(st.lists(recent, max_size=1))
    ]  # fmt: skip
    spent = draw(st.sets(st.tuples(pick, st.sampled_from(["2024-06", "2024-11", "2024-12"])),
                         max_size=3))  # fmt: skip
    tables["medical_expenses"] = [
        {"id_no": i, "month": m, "out_of_pocket": draw(st.sampled_from(["9000.00", "25000.50"]))}
        for i, m in sorted(spent)
    ]  # fmt: skip
    tables["pensions"] = [
        {"id_no": i, "pension_type": "enterprise_employee",
         "status": draw(st.sampled_from(["active", "contributing"])),
         "retire_date": draw(st.one_of(st.just(""), recent.map(str))),
         "monthly_pension": draw(st.sampled_from(["", "1800.00", "4000.00"])),
         "contribution_years": draw(st.sampled_from(["3", "12.5", "22"]))}
        for i in sorted(draw(st.sets(pick, max_size=2)))
    ]  # fmt: skip
    tables["bank_accounts"] = [bank(p) for p in persons if draw(st.integers(0, 5))]
    return tables, draw(st.sampled_from(MONTHS))


class HypothesisChooser:
    """The generator's choices drawn by hypothesis (so failures shrink)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def choice(self, options: Any) -> Any:
        return self.data.draw(st.sampled_from(list(options)))

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))


def draw_event(c: Any, service: EventService, n: int, sent: list[dict]) -> Any:
    """Mostly a generated event for the current data; sometimes a repeat or an invalid one;
    ending events (situations, certificates) a little more often than the others."""
    roll = c.integer(0, 19)
    if roll == 0 and sent:
        return c.choice(sent)  # the same event again: nothing changes
    if roll == 1:
        return {"event_id": f"bad{n}", "type": "death_registered", "department": "police",
                "effective_date": "2025-02-30", "id_no": "123"}  # fmt: skip
    if roll in (2, 3):  # more of the events that end a row with a validity period early
        etype = c.choice(["parent_situation_ended", "certificate_cancelled"])
        return next_event(c, service.store, service.month, n, etype=etype)
    return next_event(c, service.store, service.month, n)


def ending_fits(tables: dict[str, list[dict]], ev: Any) -> bool | None:
    """For a situation's end on D, read from the raw rows (not the store): does a row of that
    situation in force on D end after D or never (start ≤ D, end empty or > D)? None for
    other events."""
    if not isinstance(ev, dict) or ev.get("type") != "parent_situation_ended":
        return None
    day, who = ev["effective_date"], ev["id_no"].upper()
    cells = ({k: (v or "").strip() for k, v in r.items()}
             for r in tables.get("parent_situations", []))  # the contract trims cells
    return any(
        r.get("id_no", "").upper() == who and r.get("situation") == ev["situation"]
        and r["start_date"] <= day and (not r.get("end_date") or r["end_date"] > day)
        for r in cells
    )  # fmt: skip


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(districts(), st.data())
def test_event_path_agrees_with_a_sweep_of_the_updated_extracts(
    case: tuple[dict[str, list[dict]], str], data: st.DataObject
) -> None:
    original, month = case
    tables = copy.deepcopy(original)
    baseline = data.draw(st.sampled_from(["rules", "rules", "rules", "sweep"]))
    with tempfile.TemporaryDirectory() as tmp:
        service = service_for(tables, month, Path(tmp) / "data", baseline=baseline)
        sent: list[dict] = []
        for n in range(data.draw(st.integers(1, 8))):
            ev = draw_event(HypothesisChooser(data), service, n, sent)
            expected = ending_fits(tables, ev)
            result = service.apply(ev)
            if expected is not None and result.status != "duplicate":
                assert (result.status == "applied") is expected, (ev, result.error)
                early = any(r.match.get("end_date") for r in result.rows)
                label(f"{ev['type']}: {result.status}" + (", planned end brought forward" * early))
            if result.status == "applied" and ev["type"] == "certificate_cancelled":
                cert = next(r for r in tables["disability_certificates"]
                            if r.get("cert_no") == ev["cert_no"])  # fmt: skip
                if cert["expiry_date"] > ev["effective_date"]:
                    label("certificate_cancelled: applied, before its expiry")
            if result.status == "applied":
                apply_rows(tables, result.rows)
                sent.append(ev)
            else:
                assert result.rows == [] and result.changes == []
        assert_agrees(service, sweep(tables, month, Path(tmp) / "after"))


def test_a_stream_of_events_on_the_sample_district_agrees(tmp_path: Path) -> None:
    """Hundreds of events on the committed sample (3,000 people), compared at the end."""
    data = Path(__file__).resolve().parents[2] / "datasets" / "sample"
    month = "2025-02"
    service = EventService(data, month, pack=PACK, evaluator=shared_evaluator(),
                           baseline="rules", freeze_gc=False)  # fmt: skip
    assert_agrees(service, run_sweep(data, month, pack=PACK), traces=False)
    # the event path names each alert's rule, party, subject and facts as the sweep does
    alerts = service.alerts()
    assert alerts.columns[-4:] == ["rule_id", "party", "subject", "fingerprint"]
    leads = alerts.filter(pl.col("rule_id") == "dibao_discovery_lead")
    assert leads.height and (leads["party"] != leads["id_no"]).all()
    assert alerts["fingerprint"].str.len_chars().eq(64).all()
    tables = _raw_tables(data)
    chooser = RandomChooser(20250201)
    results = []
    for n in range(300):
        ev = draw_event(chooser, service, n, [])
        expected = ending_fits(tables, ev)
        result = service.apply(ev)
        assert expected is None or (result.status == "applied") is expected, (ev, result.error)
        if result.status == "applied":
            apply_rows(tables, result.rows)
        results.append(result)
    applied = sum(r.status == "applied" for r in results)
    assert applied > 200, Counter(r.status for r in results)
    assert sum(len(r.changes) for r in results) > 50
    assert_agrees(service, sweep(tables, month, tmp_path / "after"))


def _raw_tables(folder: Path) -> dict[str, list[dict]]:
    tables = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            tables[path.stem] = [dict(r) for r in csv.DictReader(fh)]
    return tables
