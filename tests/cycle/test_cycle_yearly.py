"""The parameter calendar and the yearly-parameter alert: once the configured day has come,
each yearly parameter without a value for the coming year is alerted once (freezegun)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from freezegun import freeze_time
from typer.testing import CliRunner

from benefits.cycle.clock import utc_now
from benefits.cycle.notify import Notifier
from benefits.cycle.rulecalendar import check_yearly
from benefits.cycle.settings import CycleSettings
from benefits.ledger import Ledger
from benefits.ledger.packcli import register
from benefits.paramcalendar import calendar_of, missing_yearly
from benefits.rulebook import default_rules_folder, load_pack

HOOK = "test_cycle_yearly:record"
CALLS: list[dict[str, Any]] = []


def record(payload: dict[str, Any]) -> None:
    CALLS.append(payload)


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


def with_2026_income(dest: Path) -> Path:
    shutil.copytree(default_rules_folder(), dest)
    path = dest / "parameters" / "assistance.yaml"
    old = "2024-01-01: 71268, 2025-01-01: 74997}"
    path.write_text(path.read_text("utf-8").replace(old, old[:-1] + ", 2026-01-01: 78000}"),
                    "utf-8")  # fmt: skip
    return dest


def test_calendar_months_and_states() -> None:
    p = load_pack().parameters["dibao_std"]
    cal = calendar_of("dibao_std", p, dt.date(2024, 6, 15))
    assert [(e.value, e.months, e.state) for e in cal.entries] == [
        ("1216", "2022-07 – 2023-06", "past"),
        ("1259", "2023-07 – 2024-12", "in force"),
        ("1301", "from 2025-01", "scheduled"),  # 23 January: applies to all of January
    ]
    twice = p.model_copy(update={"values": {dt.date(2025, 1, 5): 1, dt.date(2025, 1, 23): 2}})
    assert [e.months for e in calendar_of("x", twice, dt.date(2025, 1, 1)).entries] == [
        "never (superseded in 2025-01)", "from 2025-01"]  # fmt: skip


def test_missing_yearly_only_from_the_configured_day() -> None:
    pack = load_pack()
    assert pack.parameters["prov_urban_income"].yearly
    assert missing_yearly(pack, dt.date(2025, 10, 31)) == []
    [m] = missing_yearly(pack, dt.date(2025, 11, 1))
    assert (m.name, m.year, m.latest) == ("prov_urban_income", 2026, dt.date(2025, 1, 1))
    assert missing_yearly(pack, dt.date(2025, 11, 1), due="12-15") == []
    assert [m.year for m in missing_yearly(pack, dt.date(2026, 3, 1))] == [2026]
    with pytest.raises(Exception, match="MM-DD"):
        missing_yearly(pack, dt.date(2025, 11, 1), due="13-01")


def test_the_admins_are_alerted_once_per_parameter_and_year(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    settings = CycleSettings(database_url=url, store_dir=tmp_path / "store", alert_hook=HOOK)
    ledger = Ledger(url)
    ledger.init(by="admin")
    notifier = Notifier(settings)
    try:
        with freeze_time("2025-10-31 15:00:00"):  # 23:00 on 31 October in Hangzhou
            assert check_yearly(settings, ledger, notifier, utc_now()) == []
        with freeze_time("2025-10-31 16:30:00"):  # 00:30 on 1 November in Hangzhou
            [m] = check_yearly(settings, ledger, notifier, utc_now())
            assert check_yearly(settings, ledger, notifier, utc_now()) == []  # once
        assert m.name == "prov_urban_income" and m.year == 2026
        assert [c["event"] for c in CALLS] == ["rules.yearly_missing"]
        assert "prov_urban_income" in CALLS[0]["reason"] and "2026" in CALLS[0]["reason"]
        entry = ledger.audit_entries(1)[0]
        assert (entry.action, entry.object_id) == ("rules.yearly_missing", "prov_urban_income:2026")

        # the value is added and released: nothing is missing any more
        release = ledger.submit_pack(with_2026_income(tmp_path / "v2"), by="alice")
        ledger.approve_pack(release.id, by="bob")
        with freeze_time("2025-11-20 02:00:00"):
            assert check_yearly(settings, ledger, notifier, utc_now()) == []
        # the configured day is a ledger setting
        ledger.set_setting("rules.yearly_due", "12-20", by="admin")
        with freeze_time("2026-11-02 02:00:00"):
            assert check_yearly(settings, ledger, notifier, utc_now()) == []
        with freeze_time("2026-12-20 02:00:00"):
            assert [m.year for m in check_yearly(settings, ledger, notifier, utc_now())] == [
                2027]  # fmt: skip
        assert len(CALLS) == 2
    finally:
        ledger.close()


def test_cli_calendar(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    Ledger(url).init(by="admin")
    app = typer.Typer()
    rules = typer.Typer()
    register(rules)
    app.add_typer(rules, name="rules")
    env = {"BENEFITS_DATABASE_URL": url, "COLUMNS": "200"}
    with freeze_time("2025-11-05"):
        r = CliRunner().invoke(app, ["rules", "calendar", "--parameter", "prov_urban_income"],
                               env=env)  # fmt: skip
    assert r.exit_code == 1, r.output
    assert "prov_urban_income (yearly)" in r.output and "from 2025-01" in r.output
    assert "missing: yearly parameter prov_urban_income" in r.output and "2026" in r.output
    with freeze_time("2025-11-05"):
        r = CliRunner().invoke(app, ["rules", "calendar", "--rules",
                                     str(with_2026_income(tmp_path / "v2"))], env=env)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "scheduled" in r.output and "dibao_std" in r.output
