"""The CLI end to end: `benefits ledger|batch|audit …`, clear refusals with exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from ledger_helpers import Ent, town, write_return, write_sweep
from typer.testing import CliRunner

from benefits.ledger.cli import register

runner = CliRunner()


@pytest.fixture
def cli(db_url: str):  # type: ignore[no-untyped-def]
    """Invoke the CLI against the test database: cli("batch", "submit", "1", "--by", "x")."""
    app = typer.Typer()
    register(app)

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env={"BENEFITS_DATABASE_URL": db_url})
        assert "Traceback" not in result.output, result.output
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    return invoke


def test_cli_lifecycle_and_refusals(cli, sweeps: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out = cli("batch", "list")
    assert code == 2 and "benefits ledger init" in out
    code, out = cli("ledger", "init")
    assert code == 0 and "now at schema revision" in out
    assert "already at" in cli("ledger", "init")[1]

    ents = [*town(4), Ent(9, held=True, hold_reason="account_problem", account_no="")]
    sweep = write_sweep(sweeps / "jan", "2025-01", ents)
    code, out = cli("ledger", "import-run", "--out", str(sweep), "--by", "alice")
    assert code == 0 and "recorded as run 1" in out and "5 pay/credit" in out
    assert "already recorded" in cli("ledger", "import-run", "--out", str(sweep), "--by", "x")[1]
    assert "2025-01" in cli("ledger", "runs")[1]

    code, out = cli("batch", "create", "--run", "1", "--by", "alice")
    assert code == 0 and "batch 1 for 2025-01 created as draft" in out
    code, out = cli("batch", "approve", "1", "--by", "bob")
    assert code == 2
    assert "bob cannot approve batch 1: it is draft" in out and "not been submitted" in out
    assert cli("batch", "submit", "1", "--by", "alice")[0] == 0
    code, out = cli("batch", "approve", "1", "--by", "alice")
    assert code == 2 and "alice cannot approve batch 1: it is submitted" in out
    assert "four eyes" in out

    code, out = cli("batch", "show", "1", "--items", "10", "--status", "held")
    assert code == 0 and "old_age_allowance" in out and "翠苑一区" in out
    assert re.search(r"330106\*{8}\d{3}[\dX]", out)  # IDs masked
    held_id = re.search(r"^\s+(\d+)  payment .* held ", out, re.M)
    assert held_id
    code, out = cli("batch", "release", held_id.group(1), "--reason", "fixed", "--by", "alice",
                    "--account", "6222000011110000")  # fmt: skip
    assert code == 0 and "goes out with this batch" in out

    assert cli("batch", "approve", "1", "--by", "bob")[0] == 0
    bank = tmp_path / "bank.csv"
    code, out = cli("batch", "export", "1", "--to", str(bank), "--by", "carol")
    assert code == 0 and "5 payments, 300.00 yuan" in out and "sha256" in out
    assert "already exported" in cli("batch", "export", "1", "--to", str(bank), "--by", "carol")[1]
    ret = write_return(bank, tmp_path / "ret.csv", failed={0: "account closed"})
    code, out = cli("batch", "reconcile", "1", "--file", str(ret), "--by", "carol")
    assert code == 0 and "4 paid, 1 failed" in out and "reconciled" in out
    code, out = cli("batch", "reject", "1", "--reason", "too late", "--by", "bob")
    assert code == 2 and "bank file has gone out" in out

    code, out = cli("batch", "list")
    assert code == 0 and "reconciled" in out
    code, out = cli("ledger", "setting", "bank.payer_name", "西湖区民政局", "--by", "admin")
    assert code == 0
    assert "西湖区民政局" in cli("ledger", "setting")[1]
    code, out = cli("audit", "verify")
    assert code == 0 and "audit chain intact" in out
    assert "batch.reconcile" in cli("audit", "log")[1]
    code, out = cli("batch", "submit", "42", "--by", "alice")
    assert code == 2 and "there is no batch 42" in out


def test_cli_verify_reports_tampering(cli, db_url: str, sweeps: Path) -> None:  # type: ignore[no-untyped-def]
    from benefits.ledger import Ledger

    cli("ledger", "init")
    cli("ledger", "import-run", "--out", str(write_sweep(sweeps / "m", "2025-01", town(2))),
        "--by", "alice")  # fmt: skip
    with Ledger(db_url) as led, led.db.engine.begin() as conn:
        if led.db.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    code, out = cli("audit", "verify")
    assert code == 1 and "BROKEN at entry #2" in out


def test_cli_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    result = runner.invoke(
        app, ["batch", "list", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"]
    )
    assert result.exit_code == 2 and "cannot use the database" in result.output
    assert "Traceback" not in result.output
