"""Property-based tests (hypothesis) of sweep invariants on generated small districts."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benefits.period import BenefitMonth, completed_years
from benefits.rulebook import load_pack
from benefits.sweep import run_sweep
from tests.conftest import bank, person, write_delivery

PACK = load_pack()
MONTHS = ["2024-12", "2025-01", "2025-02", "2025-03", "2025-07"]
days = st.dates(min_value=dt.date(1915, 1, 1), max_value=dt.date(2024, 12, 31))
recent = st.dates(min_value=dt.date(2022, 1, 1), max_value=dt.date(2025, 8, 31))
money = st.integers(min_value=0, max_value=400000).map(lambda f: f"{f // 100}.{f % 100:02d}")


@st.composite
def districts(draw: st.DrawFn) -> tuple[dict[str, list[dict]], str]:
    n = draw(st.integers(min_value=1, max_value=12))
    births = draw(st.lists(days, min_size=n, max_size=n))
    persons = []
    for i, birth in enumerate(births):
        seq = 100 + i * 2 + draw(st.integers(0, 1))
        row = person(birth.isoformat(), seq, household=f"H{draw(st.integers(0, 3))}")
        status = draw(st.sampled_from(["normal"] * 6 + ["moved_out", "cancelled"]))
        row["hukou_status"] = status
        if status != "normal" and draw(st.booleans()):
            row["moved_out_date"] = draw(recent).isoformat()
        if draw(st.integers(0, 9)) == 0:
            row["hukou_district"] = "330105"
        persons.append(row)
    ids = [p["id_no"] for p in persons]
    households = sorted({p["household_no"] for p in persons})
    pick = st.sampled_from(ids)
    tables: dict[str, list[dict]] = {"persons": persons}
    tables["assistance"] = [
        {
            "id_no": draw(pick),
            "household_no": draw(st.sampled_from(households)),
            "assistance_type": t,
            "approved_date": draw(recent).isoformat(),
            "next_review_date": draw(recent).isoformat(),
        }
        for t in draw(st.lists(st.sampled_from(["dibao", "dibian", "tekun"]), max_size=4))
    ]
    tables["household_finance"] = [
        {
            "household_no": draw(st.sampled_from(households)),
            "per_capita_income": draw(money),
            "per_capita_assets": draw(money),
            "assessed_on": draw(recent).isoformat(),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    tables["disability_certificates"] = [
        {
            "id_no": draw(pick),
            "cert_no": f"C{k}",
            "category": draw(st.sampled_from(["physical", "intellectual", "mental", "visual"])),
            "grade": str(draw(st.integers(1, 4))),
            "issue_date": draw(recent).isoformat(),
            "expiry_date": (draw(recent) + dt.timedelta(days=700)).isoformat(),
            "status": draw(st.sampled_from(["valid", "valid", "cancelled"])),
        }
        for k in range(draw(st.integers(0, 3)))
    ]
    tables["care_assessments"] = [
        {
            "id_no": draw(pick),
            "care_level": draw(st.sampled_from(["self_care", "partial", "full"])),
            "assessed_on": draw(recent).isoformat(),
            "institution_resident": draw(st.sampled_from(["true", "false", "0"])),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    tables["deaths"] = [
        {"id_no": draw(pick), "death_date": draw(recent).isoformat(), "source": "police"}
        for _ in range(draw(st.integers(0, 2)))
    ]
    tables["bank_accounts"] = [bank(p) for p in persons if draw(st.integers(0, 4))]
    return tables, draw(st.sampled_from(MONTHS))


def _sweep(tables: dict[str, list[dict]], month: str, folder: Path):
    data = write_delivery(folder / "data", tables, with_bank=False)
    return run_sweep(data, month, out=folder / "out", pack=PACK)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(districts())
def test_sweep_invariants(case: tuple[dict[str, list[dict]], str]) -> None:
    tables, month = case
    with tempfile.TemporaryDirectory() as tmp:
        first = _sweep(tables, month, Path(tmp) / "a")
        second = _sweep(tables, month, Path(tmp) / "b")
        # determinism: byte-identical contract files
        for name in ("entitlements", "alerts", "quarantine"):
            for ext in ("csv", "parquet"):
                a = (Path(tmp) / "a" / "out" / f"{name}.{ext}").read_bytes()
                b = (Path(tmp) / "b" / "out" / f"{name}.{ext}").read_bytes()
                assert a == b, f"{name}.{ext} differs between two identical runs"
    # counts reconcile
    for info in first.summary["tables"].values():
        assert info["read"] == info["accepted"] + info["quarantined"]
    ent = first.entitlements
    bm = BenefitMonth.parse(month)
    facts = first.evaluation.facts
    # a resident, alive person past their 80th birthday always gets policy 7, by age band
    for row in facts.filter(pl.col("resident") & pl.col("alive")).iter_rows(named=True):
        age = completed_years(row["birth_date"], bm.start - dt.timedelta(days=1))
        got = ent.filter(
            (pl.col("id_no") == row["id_no"]) & (pl.col("policy_id") == "old_age_allowance")
        )
        if age >= 80:
            band = "800.00" if age >= 100 else "100.00" if age >= 90 else "60.00"
            assert got["amount"].to_list() == [band]
        else:
            assert got.is_empty()
    # no person gets two mutually exclusive policies
    by_person = ent.group_by("id_no").agg(pl.col("policy_id"))
    for pair in PACK.exclusions.mutually_exclusive:
        for policies in by_person["policy_id"].to_list():
            assert not set(pair.policies) <= set(policies)
    # held payments are exactly the pay entitlements of people with an account problem
    problems = set(first.alerts.filter(pl.col("kind") == "account_problem")["id_no"].to_list())
    for row in ent.iter_rows(named=True):
        assert row["held"] == (row["mode"] == "pay" and row["id_no"] in problems)
    # nobody is paid twice for one policy, and amounts are positive
    assert ent.select("id_no", "policy_id").is_duplicated().sum() == 0
    assert all(float(a) > 0 for a in ent["amount"].to_list())
    second_ent = second.entitlements
    assert ent.equals(second_ent)
