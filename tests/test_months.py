"""The months a sweep may cover (issue 11 point 4): one range, one message, exit code 2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import typer
from freezegun import freeze_time
from typer.testing import CliRunner

from benefits.cli import app
from benefits.months import (
    ENV_HORIZON,
    MonthError,
    check_sweep_month,
    earliest_month,
    horizon_months,
    sweep_range,
)
from benefits.period import BenefitMonth
from benefits.rulebook import load_pack
from benefits.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "sample"
runner = CliRunner()


def test_range_runs_from_the_packs_first_month_to_the_horizon() -> None:
    pack = load_pack()
    # every parameter is in force from 2023-01-01; a sweep of M also reads M-1
    assert earliest_month(pack) == BenefitMonth(2023, 2)
    span = sweep_range(pack, dt.date(2025, 6, 30), horizon=12)
    assert (span.earliest.label, span.latest and span.latest.label) == ("2023-02", "2026-06")
    assert check_sweep_month("2026-06", pack, dt.date(2025, 6, 30), horizon=12).label == "2026-06"
    assert check_sweep_month("2023-02", pack, dt.date(2025, 6, 30), horizon=12).label == "2023-02"
    with pytest.raises(MonthError, match=r"month 2026-07 is outside .* \(2023-02 … 2026-06\)"):
        check_sweep_month("2026-07", pack, dt.date(2025, 6, 30), horizon=12)


def test_horizon_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_HORIZON, raising=False)
    assert horizon_months() == 12
    monkeypatch.setenv(ENV_HORIZON, "3")
    assert horizon_months() == 3
    assert sweep_range(load_pack(), dt.date(2025, 1, 5)).text == "2023-02 … 2025-04"
    monkeypatch.setenv(ENV_HORIZON, "soon")
    with pytest.raises(MonthError, match=f"{ENV_HORIZON} must be a whole number"):
        horizon_months()


def test_run_sweep_refuses_months_before_the_pack_with_the_range() -> None:
    # before: 0001-01 was a ValueError (year 0) and 1900-01 a misleading 'unknown name'
    for month in ("0001-01", "1900-01", "2023-01"):
        with pytest.raises(MonthError, match=f"month {month} is outside the months"):
            run_sweep(SAMPLE, month)


@freeze_time("2025-03-10")
@pytest.mark.parametrize("month", ["0001-01", "1900-01", "2100-01", "9999-12", "2026-04"])
def test_cli_refuses_months_outside_the_range(month: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["sweep", "--data", str(SAMPLE), "--month", month, "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"month {month} is outside the months this rule pack can sweep" in text
    assert "(2023-02 … 2026-03)" in text
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("month", ["2025-13", "abc", "2025-1", ""])
def test_cli_refuses_what_is_not_a_month(month: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["sweep", "--data", str(SAMPLE), "--month", month, "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    assert "month must look like 2025-01" in " ".join(result.output.split())


@freeze_time("2025-03-10")
def test_cli_sweeps_the_last_month_of_the_horizon(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sweep", "--data", str(SAMPLE), "--month", "2026-03",
                                 "--out", str(tmp_path / "o"), "--quiet", "--no-traces"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "summary.json").is_file()


def test_a_bad_horizon_setting_stops_the_web_app_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from benefits.web.cli import serve

    monkeypatch.setenv(ENV_HORIZON, "-3")
    app_ = typer.Typer()
    app_.command()(serve)
    result = runner.invoke(app_, ["--db", f"sqlite:///{tmp_path / 'l.sqlite'}"])
    assert result.exit_code == 2
    assert f"{ENV_HORIZON} must be a whole number of months from 0 to 120, got '-3'" in (
        " ".join(result.output.split()))
