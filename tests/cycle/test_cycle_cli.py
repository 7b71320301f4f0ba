"""The command line: ``benefits cycle run|catch-up|status|history`` and ``benefits scheduler``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import typer
from cycle_helpers import deliver, make_settings, write_config
from typer.testing import CliRunner

from benefits.cycle.cli import cycle_app, scheduler
from benefits.period import BenefitMonth

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    """The main command with the cycle registered the way ``benefits/cli.py`` does it."""
    main = typer.Typer()

    @main.callback()
    def _root() -> None:
        """benefits"""

    main.add_typer(cycle_app, name="cycle")
    main.command("scheduler")(scheduler)
    return main


def test_run_status_history(
    app: typer.Typer, sqlite_url: str, tmp_path: Path, deliveries: Path
) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    deliver(settings, deliveries, "2025-01")
    config = str(write_config(tmp_path, settings))
    base = ["--config", config, "--db", sqlite_url]

    result = runner.invoke(app, ["cycle", "run", "--month", "2025-01", *base])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("done 2025-01: draft batch 1")
    again = runner.invoke(app, ["cycle", "run", "--month", "2025-01", *base])
    assert again.exit_code == 0 and "already done" in again.output

    status = runner.invoke(app, ["cycle", "status", "--json", *base])
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert [(m["month"], m["status"], m["batch_id"]) for m in data["months"]] == [
        ("2025-01", "done", 1)
    ]
    assert data["locks"] == [] and len(data["next_runs"]) == 3

    history = runner.invoke(app, ["cycle", "history", "--month", "2025-01", "--json", *base])
    [attempt] = json.loads(history.output)
    assert (attempt["outcome"], attempt["trigger"], attempt["by"]) == ("done", "cli", "cycle")
    assert attempt["details"]["snapshot"]["digest"] == attempt["snapshot"]
    table = runner.invoke(app, ["cycle", "history", *base], env={"COLUMNS": "200"})
    assert "2025-01" in table.output and "done" in table.output
    text = runner.invoke(app, ["cycle", "status", *base], env={"COLUMNS": "200"})
    assert "published" in text.output and "next:" in text.output


def test_exit_codes_and_refusals(app: typer.Typer, sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sqlite_url, first_month="2100-01")
    config = str(write_config(tmp_path, settings))
    base = ["--config", config, "--db", sqlite_url]
    today = dt.datetime.now(dt.UTC).date()
    next_month = BenefitMonth(today.year, today.month).shift(1).label  # deadline still ahead
    waiting = runner.invoke(app, ["cycle", "run", "--month", next_month, *base])
    assert waiting.exit_code == 3 and "no delivery" in waiting.output
    refused = runner.invoke(app, ["cycle", "run", "--accept-gate", "ok", *base])
    assert refused.exit_code == 2 and "needs --by" in refused.output
    bad_month = runner.invoke(app, ["cycle", "run", "--month", "2025-13", *base])
    assert bad_month.exit_code == 2 and "2025-01" in bad_month.output
    for month in ("1900-01", "2100-01", "9999-12"):  # issue 11.4: the sweep's range, exit 2
        outside = runner.invoke(app, ["cycle", "run", "--month", month, *base])
        assert outside.exit_code == 2, outside.output
        assert (f"month {month} is outside the months this rule pack can sweep (2023-02 … "
                in " ".join(outside.output.split()))  # fmt: skip
    nothing = runner.invoke(app, ["cycle", "catch-up", *base])
    assert nothing.exit_code == 0 and "no month is due" in nothing.output
    bad = tmp_path / "bad.toml"
    bad.write_text("deadline_day = 40\n", encoding="utf-8")
    refused = runner.invoke(app, ["cycle", "status", "--config", str(bad), "--db", sqlite_url])
    assert refused.exit_code == 2 and "settings" in refused.output
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    uninitialised = runner.invoke(app, ["cycle", "history", "--config", config, "--db", empty])
    assert uninitialised.exit_code == 2 and "benefits ledger init" in uninitialised.output
