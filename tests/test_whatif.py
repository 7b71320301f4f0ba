"""What-if (issue 15): a parameter change priced on a small delivery whose outcome is worked
out by hand, through the Python API, the command line (``--set`` and ``--proposed``), the
tables, the JSON summary and the HTML report.

The delivery (month 2025-01, dibao standard 1301 in force from 2025-01-23, proposed 1400):

- A, household H1, dibao status, per-capita income 1200.00: paid 1301 − 1200 = 101.00, then
  1400 − 1200 = 200.00 — a gain of 99.00;
- B, household H2, dibao status, income 1350.00: not paid (1350 ≥ 1301), then 1400 − 1350 =
  50.00 — a start; H2 is newly below the standard;
- C, household H3, dibao status, income 1450.00: above both standards — no change;
- D, household H4, aged 85: the old-age allowance (60.00 for 80–89), untouched;
- E, household H5, dibao status, income 1290.00: paid 11.00, then 110.00 — a gain of 99.00.

So dibao costs 112.00 → 360.00 a month (+248.00; +2,976.00 a year). Lowering the standard
to 1250 instead: A 101.00 → 50.00 (loses 51.00), E 11.00 → nothing (stops: H5 is newly above
the standard), B and C unchanged; dibao 112.00 → 50.00 (−62.00; −744.00 a year).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from benefits.cli import app
from benefits.rulebook import default_rules_folder, load_pack
from benefits.rulecases import Case, Vocabulary, build, write_extracts
from benefits.whatif import WhatIfError, parse_settings, run_whatif, with_values
from benefits.whatifreport import report_html

runner = CliRunner()
SPEC = {
    "name": "hand-checked what-if",
    "month": "2025-01",
    "persons": [
        {"id": "A", "birth_date": "1975-06-15", "household": "H1"},
        {"id": "B", "birth_date": "1976-06-15", "household": "H2"},
        {"id": "C", "birth_date": "1977-06-15", "household": "H3"},
        {"id": "D", "birth_date": "1940-03-10", "household": "H4"},
        {"id": "E", "birth_date": "1978-06-15", "household": "H5"},
    ],
    "assistance": [
        {"id_no": h, "assistance_type": "dibao", "approved_date": "2020-03-01"} for h in "ABCE"
    ],
    "household_finance": [
        {
            "household_no": hh,
            "per_capita_income": pci,
            "per_capita_assets": "5000.00",
            "assessed_on": "2024-06-15",
        }
        for hh, pci in (("H1", "1200.00"), ("H2", "1350.00"), ("H3", "1450.00"), ("H5", "1290.00"))
    ],
    "expect": {"entitlements": [], "alerts": []},
}


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The four people's extracts and their generated IDs by handle."""
    folder = tmp_path_factory.mktemp("whatif-data")
    case = Case(folder / "case.yaml", "what_if", SPEC, folder)
    built = build(case, Vocabulary.of_pack(load_pack()))
    write_extracts(built, folder)
    return folder, built.ids


def _masked(id_no: str) -> str:
    return id_no[:6] + "*" * 8 + id_no[-4:]


def test_a_parameter_change_priced_by_hand(delivery: tuple[Path, dict[str, str]]) -> None:
    data, ids = delivery
    base = load_pack()
    proposed = with_values(base, {"dibao_std": Decimal("1400")}, dt.date(2025, 1, 1))
    w = run_whatif(data, "2025-01", base, proposed, top=5)

    dibao = w.cost.filter(pl.col("policy_id") == "dibao_allowance").row(0, named=True)
    assert (dibao["base_people"], dibao["proposed_people"]) == (2, 3)
    assert (dibao["base_fen"], dibao["proposed_fen"]) == (11200, 36000)
    assert (dibao["difference_fen"], dibao["difference_year_fen"]) == (24800, 297600)
    old_age = w.cost.filter(pl.col("policy_id") == "old_age_allowance").row(0, named=True)
    assert old_age["base_fen"] == old_age["proposed_fen"] == 6000
    assert w.totals() == {
        "base_month": "172.00", "proposed_month": "420.00", "difference_month": "248.00",
        "base_year": "2064.00", "proposed_year": "5040.00", "difference_year": "2976.00",
    }  # fmt: skip

    changes = {r["masked_id"]: r for r in w.changes.iter_rows(named=True)}
    assert set(changes) == {_masked(ids[h]) for h in "ABE"}
    a, b = changes[_masked(ids["A"])], changes[_masked(ids["B"])]
    assert (a["status"], a["base_fen"], a["proposed_fen"], a["change_fen"]) == (
        "gain",
        10100,
        20000,
        9900,
    )
    assert (b["status"], b["base_fen"], b["proposed_fen"], b["change_fen"]) == (
        "start",
        None,
        5000,
        5000,
    )
    assert w.counts() == {
        "persons_evaluated": 5, "persons_changed": 3, "persons_better_off": 3,
        "persons_worse_off": 0, "starts": 1, "stops": 0, "gains": 2, "loses": 0,
    }  # fmt: skip
    by_policy = w.by_policy.row(0, named=True)
    assert (by_policy["policy_id"], by_policy["start"], by_policy["gain"]) == (
        "dibao_allowance",
        1,
        2,
    )
    assert (by_policy["net_change_fen"], by_policy["min_change_fen"],
            by_policy["max_change_fen"]) == (24800, 5000, 9900)  # fmt: skip
    assert w.by_group.select("group", "changed").rows() == [("hardship", 3)]
    assert w.by_community.select("hukou_community", "changed").rows() == [("330106001", 3)]
    dist = dict(w.distribution.rows())
    assert dist["0 … 50"] == 1 and dist["50 … 100"] == 2 and sum(dist.values()) == 3

    below = w.thresholds.filter(pl.col("condition") == "income_below_standard").row(0, named=True)
    assert below["households_newly_meeting"] == 1 and below["people_newly_meeting"] == 1
    assert below["households_newly_failing"] == 0
    assert w.parameters == [{
        "name": "dibao_std", "label": "低保标准 / minimum living standard",
        "unit": "CNY/person/month", "base": {"value": "1301", "from": "2025-01-23"},
        "proposed": {"value": "1400", "from": "2025-01-01"},
    }]  # fmt: skip

    first = w.largest[0]  # A and E gain 99.00, the largest change; A has the smaller ID
    assert first["masked_id"] == _masked(ids["A"]) and first["change"] == "99.00"
    assert [p["masked_id"] for p in w.largest] == [_masked(ids[h]) for h in "AEB"]
    trace = {row["what"]: row for row in first["policies"][0]["trace"]}
    assert trace["amount"]["base"] == "101.00" and trace["amount"]["proposed"] == "200.00"
    assert trace["parameter dibao_std"]["differs"]
    assert trace["condition income_below_standard"]["differs"] is False
    started = w.largest[2]["policies"][0]["trace"]  # B
    below_row = next(r for r in started if r["what"] == "condition income_below_standard")
    assert below_row["base"].startswith("fails") and below_row["proposed"].startswith("holds")
    assert w.largest_ids == [ids[h] for h in "AEB"]


def test_a_lower_standard_by_hand(delivery: tuple[Path, dict[str, str]]) -> None:
    data, ids = delivery
    base = load_pack()
    w = run_whatif(
        data,
        "2025-01",
        base,
        with_values(base, {"dibao_std": Decimal("1250")}, dt.date(2025, 1, 1)),
    )
    dibao = w.cost.filter(pl.col("policy_id") == "dibao_allowance").row(0, named=True)
    assert (dibao["base_fen"], dibao["proposed_fen"], dibao["difference_year_fen"]) == (
        11200,
        5000,
        -74400,
    )
    changes = {r["masked_id"]: r for r in w.changes.iter_rows(named=True)}
    assert set(changes) == {_masked(ids["A"]), _masked(ids["E"])}
    a, e = changes[_masked(ids["A"])], changes[_masked(ids["E"])]
    assert (a["status"], a["change_fen"]) == ("lose", -5100)
    assert (e["status"], e["base_fen"], e["proposed_fen"], e["change_fen"]) == (
        "stop",
        1100,
        None,
        -1100,
    )
    assert w.counts()["persons_worse_off"] == 2 and w.counts()["stops"] == 1
    above = w.thresholds.filter(pl.col("condition") == "income_below_standard").row(0, named=True)
    assert above["households_newly_failing"] == 1 and above["households_newly_meeting"] == 0
    dist = dict(w.distribution.rows())
    assert dist["-100 … -50"] == 1 and dist["-50 … 0"] == 1


def test_the_same_change_as_a_proposed_pack_gives_the_same_numbers(
    delivery: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, _ = delivery
    proposed = tmp_path / "proposed"
    shutil.copytree(default_rules_folder(), proposed)
    params = proposed / "parameters" / "assistance.yaml"
    text = params.read_text(encoding="utf-8")
    old = "values: {2022-07-01: 1216, 2023-07-01: 1259, 2025-01-23: 1301}"
    assert old in text
    params.write_text(text.replace(old, old.replace("1301", "1400")), encoding="utf-8")
    w = run_whatif(data, "2025-01", load_pack(), load_pack(proposed))
    assert w.totals()["difference_month"] == "248.00"
    assert w.counts()["starts"] == 1 and w.counts()["gains"] == 2


def test_the_command_line_writes_tables_summary_and_report(
    delivery: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, ids = delivery
    out, report = tmp_path / "out", tmp_path / "whatif.html"
    args = ["whatif", "--data", str(data), "--month", "2025-01", "--set", "dibao_std=1400",
            "--from", "2025-01-01", "--out", str(out), "--report", str(report)]  # fmt: skip
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "248.00" in done.output and "2976.00" in done.output
    cost = pl.read_csv(out / "cost_by_policy.csv", infer_schema=False)
    dibao = cost.filter(pl.col("policy_id") == "dibao_allowance").row(0, named=True)
    assert (dibao["base"], dibao["proposed"], dibao["difference_year"]) == (
        "112.00",
        "360.00",
        "2976.00",
    )
    changes = pl.read_parquet(out / "changes.parquet")
    assert "id_no" not in changes.columns and "household_no" not in changes.columns
    assert set(changes["masked_id"]) == {_masked(ids[h]) for h in "ABE"}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["difference_month"] == "248.00"
    html = report.read_text(encoding="utf-8")
    assert "<svg" in html and "+248.00" in html and _masked(ids["A"]) in html
    assert ids["A"] not in html and ids["A"] not in json.dumps(summary)
    # the same what-if again: byte-identical outputs
    runner.invoke(app, [*args[:-4], "--out", str(tmp_path / "again"), "--report",
                        str(tmp_path / "again.html")])  # fmt: skip
    for name in ("cost_by_policy.csv", "changes.csv", "summary.json"):
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    assert report.read_bytes() == (tmp_path / "again.html").read_bytes()


def test_json_summary_and_a_proposed_pack_on_the_command_line(
    delivery: tuple[Path, dict[str, str]],
) -> None:
    data, _ = delivery
    done = runner.invoke(app, ["whatif", "--data", str(data), "--month", "2025-01",
                               "--proposed", str(default_rules_folder()), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["totals"]["difference_month"] == "0.00" and summary["parameters"] == []
    assert summary["counts"]["persons_changed"] == 0 and summary["largest_changes"] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "dibao_std"], "NAME=VALUE"),
        (["--set", "no_such=1"], "unknown parameter 'no_such'"),
        (["--set", "dibao_std=1400", "--from", "2025-02-01"], "after 2025-01"),
        (["--set", "dibao_std=1400", "--from", "soon"], "--from must be a date"),
        ([], "either --proposed FOLDER or --set"),
        (["--set", "dibao_std=1400", "--report", "x.docx"], ".html or .pdf"),
        (["--proposed", "/nonexistent/pack"], "not a rule pack folder"),
    ],
)
def test_bad_input_is_one_clear_line(
    delivery: tuple[Path, dict[str, str]], extra: list[str], message: str
) -> None:
    data, _ = delivery
    done = runner.invoke(app, ["whatif", "--data", str(data), "--month", "2025-01", *extra])
    assert done.exit_code == 2, done.output
    assert message in done.output and "Traceback" not in done.output


def test_month_outside_the_pack_is_refused(delivery: tuple[Path, dict[str, str]]) -> None:
    data, _ = delivery
    done = runner.invoke(app, ["whatif", "--data", str(data), "--month", "2019-01",
                               "--set", "dibao_std=1400"])  # fmt: skip
    assert done.exit_code == 2 and "outside the months" in done.output


def test_parse_settings() -> None:
    assert parse_settings(["dibao_std=1400", "ta_rate = 0.6"]) == {
        "dibao_std": Decimal("1400"),
        "ta_rate": Decimal("0.6"),
    }
    with pytest.raises(WhatIfError, match="twice"):
        parse_settings(["a=1", "a=2"])
    pack = with_values(load_pack(), {"dibao_std": "1400", "old_age_80": 70}, dt.date(2026, 1, 1))
    assert pack.parameters["dibao_std"].values[dt.date(2026, 1, 1)] == Decimal("1400")
    assert pack.parameters["dibao_std"].values[dt.date(2025, 1, 23)] == Decimal("1301")
    assert pack.parameters["old_age_80"].values[dt.date(2026, 1, 1)] == Decimal("70")
    with pytest.raises(WhatIfError, match="is a number"):
        with_values(load_pack(), {"dibao_std": "much"}, dt.date(2026, 1, 1))


def test_report_html_renders_without_changes(delivery: tuple[Path, dict[str, str]]) -> None:
    data, _ = delivery
    w = run_whatif(data, "2025-01", load_pack(), load_pack())
    html = report_html(w)
    assert "政策调整影响测算" in html and "0.00" in html
