"""Settings from the environment and TOML/YAML files; the calendar; notification hooks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cycle_helpers import ZONE
from pydantic import ValidationError

from benefits.cycle.clock import current_month, deadline, resolve_month
from benefits.cycle.notify import Notifier, OperatorAlert
from benefits.cycle.settings import CycleSettings, SettingsError, load_settings
from benefits.schema import TABLE_ORDER


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BENEFITS_CONFIG", "BENEFITS_DATABASE_URL", "BENEFITS_CYCLE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    s = CycleSettings()
    assert s.expected_tables == list(TABLE_ORDER) and s.required_tables == ["persons"]
    assert (s.deadline_day, s.deadline_time, s.timezone) == (4, dt.time(12, 0), "Asia/Shanghai")
    assert s.schedule == "0 8-20 1-10 * *" and s.database_url is None


def test_environment_overrides_the_file_and_keywords_override_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "benefits.toml"
    config.write_text(
        "[cycle]\n"
        'landing_dir = "incoming"\n'
        "deadline_day = 5\n"
        "deadline_time = 09:30:00\n"
        'expected_tables = ["persons", "deaths", "pensions"]\n'
        "max_quarantine_rate = 0.02\n"
        "[cycle.table_quarantine_rates]\n"
        "deaths = 0.2\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("BENEFITS_CONFIG", str(config))
    monkeypatch.setenv("BENEFITS_CYCLE_DEADLINE_DAY", "6")
    monkeypatch.setenv("BENEFITS_CYCLE_EXPECTED_TABLES", "persons,pensions")
    monkeypatch.setenv("BENEFITS_DATABASE_URL", "postgresql://u:secret@db/benefits")
    s = load_settings()
    assert s.landing_dir == tmp_path / "incoming"  # relative to the file's folder
    assert s.deadline_day == 6 and s.deadline_time == dt.time(9, 30)
    assert s.expected_tables == ["persons", "pensions"]
    assert s.quarantine_limit("deaths") == 0.2 and s.quarantine_limit("pensions") == 0.02
    assert s.database_url == "postgresql://u:secret@db/benefits"
    assert "secret" not in json.dumps(s.public())
    assert load_settings(None, deadline_day=2).deadline_day == 2
    monkeypatch.setenv("BENEFITS_CYCLE_DATABASE_URL", "sqlite:///cycle.sqlite")
    assert load_settings().database_url == "sqlite:///cycle.sqlite"


def test_yaml_file_at_top_level(tmp_path: Path) -> None:
    config = tmp_path / "cycle.yaml"
    config.write_text(
        "schedule: '30 7 1-5 * *'\ntimezone: Asia/Urumqi\nalert_command: echo hi\n",
        encoding="utf-8",
    )
    s = load_settings(config)
    assert (s.schedule, s.timezone, s.alert_command) == ("30 7 1-5 * *", "Asia/Urumqi", "echo hi")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"schedule": "every day"}, "not a valid crontab"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"expected_tables": ["persons", "people"]}, "unknown table"),
        (
            {"required_tables": ["persons", "deaths"], "expected_tables": ["persons"]},
            "must also be expected",
        ),
        ({"required_tables": ["deaths"]}, "persons must be a required table"),
        ({"first_month": "2025-13"}, "first_month must look like"),
        ({"deadline_day": 31}, "less than or equal to 28"),
        ({"max_quarantine_rate": 1.5}, "less than or equal to 1"),
        ({"landing": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CycleSettings(**values)


def test_unreadable_settings_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("deadline_day = = 3\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad)
    ini = tmp_path / "x.ini"
    ini.write_text("", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"\.toml, \.yaml or \.yml"):
        load_settings(ini)


def test_calendar() -> None:
    utc_evening = dt.datetime(2025, 1, 31, 16, 0, tzinfo=dt.UTC)  # 00:00 on 1 Feb in Hangzhou
    assert current_month(utc_evening, ZONE) == "2025-02"
    assert current_month(utc_evening - dt.timedelta(seconds=1), ZONE) == "2025-01"
    assert resolve_month("AUTO", utc_evening, ZONE) == "2025-02"
    with pytest.raises(ValueError, match="looks like 2025-01"):
        resolve_month("January", utc_evening, ZONE)
    due = deadline("2025-02", 4, dt.time(12), ZONE)
    assert due.astimezone(dt.UTC) == dt.datetime(2025, 2, 4, 4, 0, tzinfo=dt.UTC)


def test_notifier_runs_the_command_and_the_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "alert.txt"
    posted: list[tuple[str, bytes]] = []

    class Response:
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *a: object) -> None:
            return None

        def read(self, n: int) -> bytes:
            return b"ok"

    def fake_urlopen(request: Any, timeout: float) -> Response:
        posted.append((request.full_url, request.data))
        return Response()

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)  # no network in tests
    settings = CycleSettings(
        alert_command=f'printf "%s|" "$BENEFITS_ALERT_EVENT" > {out}; cat >> {out}',
        alert_webhook="https://chat.example.invalid/hook",
    )
    errors = Notifier(settings).alert(
        OperatorAlert("cycle.gated", "2025-01", "error", "bank_accounts quarantined 20%")
    )
    assert errors == []
    event, body = out.read_text(encoding="utf-8").split("|", 1)
    assert event == "cycle.gated" and json.loads(body)["reason"].startswith("bank_accounts")
    assert posted[0][0] == "https://chat.example.invalid/hook"
    assert json.loads(posted[0][1])["month"] == "2025-01"


def test_a_failing_hook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    settings = CycleSettings(alert_command="exit 3", alert_hook="json:no_such_function")
    errors = Notifier(settings).alert(OperatorAlert("cycle.failed", "2025-01", "error", "x"))
    assert len(errors) == 2 and "exited 3" in errors[0] and "no_such_function" in errors[1]
    assert "cycle 2025-01 failed: x" in caplog.text


def test_the_deployment_example_settings_load() -> None:
    from cycle_helpers import REPO

    s = load_settings(REPO / "deploy" / "benefits.toml")
    assert s.expected_tables == list(TABLE_ORDER)
    assert s.deadline_time == dt.time(12, 0) and s.quarantine_limit("deaths") == 0.1
    for unit in ("systemd/benefits-cycle.service", "cron/benefits-cycle"):
        assert "benefits cycle catch-up" in (REPO / "deploy" / unit).read_text(encoding="utf-8")
    dag = (REPO / "deploy" / "airflow" / "benefits_monthly.py").read_text(encoding="utf-8")
    assert '"cycle", "run", "--month", month' in dag
