"""``benefits events apply``: changes printed, refused events dead-lettered, exit codes, ledger."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from events_helpers import PACK, event
from freezegun import freeze_time
from typer.testing import CliRunner

from benefits.events.cli import default_month, events_app
from benefits.ledger import Ledger
from benefits.ledger.clock import fixed_clock
from benefits.sweep import run_sweep
from tests.conftest import bank, person, write_delivery

ELDER = person("1940-01-10", 3, "H1", name="王老汉")
OTHER = person("1939-05-05", 5, "H2", name="李老")
runner = CliRunner()


def delivery(tmp_path: Path) -> Path:
    tables = {"persons": [ELDER, OTHER], "bank_accounts": [bank(ELDER), bank(OTHER)]}
    return write_delivery(tmp_path / "data", tables, with_bank=False)


def events_file(tmp_path: Path, *events: dict | str) -> Path:
    path = tmp_path / "events.jsonl"
    lines = [e if isinstance(e, str) else json.dumps(e, ensure_ascii=False) for e in events]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


DEATH = event("death_registered", "d1", "police", "2025-01-10", id_no=ELDER["id_no"])


def test_apply_prints_the_changes_and_exits_0(tmp_path: Path) -> None:
    file = events_file(tmp_path, DEATH, DEATH)
    result = runner.invoke(events_app, ["apply", "--data", str(delivery(tmp_path)), str(file),
                                        "--in-process"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "d1 death_registered: applied" in result.output
    assert f"{ELDER['id_no']}  stop old_age_allowance 60.00 → —" in result.output
    assert "alert_raised death_stop due 2025-01-10" in result.output
    assert "duplicate (already applied: nothing changes)" in result.output
    assert "2025-02: 1 applied, 1 duplicate" in result.output  # month after the newest event
    assert not Path(f"{file}.dead.jsonl").exists()


def test_refused_events_go_to_the_dead_letter_file_and_exit_1(tmp_path: Path) -> None:
    bad = event("death_registered", "x", "bank", "2025-01-10", id_no=ELDER["id_no"])
    file = events_file(tmp_path, DEATH, "{not json", bad)
    dead = tmp_path / "refused.jsonl"
    result = runner.invoke(events_app, ["apply", "--data", str(delivery(tmp_path)), "--month",
                                        "2025-02", "--dead-letter", str(dead), "--in-process",
                                        str(file)])  # fmt: skip
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in dead.read_text(encoding="utf-8").splitlines()]
    assert [r["source"] for r in records] == [f"{file}:2", f"{file}:3"]
    assert records[0]["event"] == "{not json" and "not valid JSON" in records[0]["error"]
    assert records[1]["event"] == bad and "does not report death_registered" in records[1]["error"]


def test_stdin_and_jsonl_output(tmp_path: Path) -> None:
    result = runner.invoke(
        events_app,
        ["apply", "--data", str(delivery(tmp_path)), "--format", "jsonl", "-"],
        input=json.dumps(DEATH) + "\n\n",
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.splitlines()[0])
    assert line["status"] == "applied" and line["event_id"] == "d1"
    assert line["rows"] == [{"op": "append", "table": "deaths", "rows": [1],
                             "values": {"id_no": ELDER["id_no"], "death_date": "2025-01-10",
                                        "source": "police"}}]  # fmt: skip
    stop = line["changes"][0]
    assert stop["change"] == "stop" and stop["trace"]["decision"] == "not_eligible"


def test_with_a_ledger_the_stop_holds_the_item(tmp_path: Path) -> None:
    data = delivery(tmp_path)
    run_sweep(data, "2025-02", out=tmp_path / "out", pack=PACK)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Ledger(url, clock=fixed_clock(dt.datetime(2025, 2, 3))) as ledger:
        ledger.init(by="admin")
        batch = ledger.create_batch(ledger.import_run(tmp_path / "out", by="alice").run_id,
                                    by="alice")  # fmt: skip
    file = events_file(tmp_path, DEATH)
    result = runner.invoke(events_app, ["apply", "--data", str(data), "--db", url, "--by", "ops",
                                        "--in-process", str(file)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"of batch {batch.id} (draft): old_age_allowance 2025-02" in result.output
    with Ledger(url) as ledger:
        assert ledger.audit_entries(1)[0].actor == "ops"


def test_a_bad_delivery_or_ledger_exits_2(tmp_path: Path) -> None:
    file = events_file(tmp_path, DEATH)
    missing = runner.invoke(events_app, ["apply", "--data", str(tmp_path / "nowhere"),
                                         "--in-process", str(file)])  # fmt: skip
    assert missing.exit_code == 2 and "does not exist" in missing.output
    no_ledger = runner.invoke(events_app, ["apply", "--data", str(delivery(tmp_path)), "--db",
                                           f"sqlite:///{tmp_path / 'x.sqlite'}", "--in-process",
                                           str(file)])  # fmt: skip
    assert no_ledger.exit_code == 2 and "benefits ledger init" in no_ledger.output


def test_types_lists_every_event_type() -> None:
    result = runner.invoke(events_app, ["types"])
    assert result.exit_code == 0
    for name in ("death_registered", "certificate_cancelled", "bank_account_changed"):
        assert f"{name} → " in result.output


def test_default_month_is_the_month_after_the_newest_event() -> None:
    lines = [json.dumps(DEATH), json.dumps({**DEATH, "effective_date": "2025-03-31"}), "junk"]
    assert default_month(lines) == "2025-04"
    assert default_month(["junk"]) is None
    assert PACK.version  # the bundled pack is the one used


@freeze_time("2025-03-10")
def test_months_outside_the_range_and_no_month_exit_2(tmp_path: Path) -> None:
    """Issue 11.4: the same range and message as `benefits sweep`; no substitute month."""
    file = events_file(tmp_path, DEATH)
    for month in ("1900-01", "2023-01", "2100-01", "9999-12"):
        result = runner.invoke(events_app, ["apply", "--data", str(delivery(tmp_path)),
                                            "--month", month, "--in-process", str(file)])
        assert result.exit_code == 2, result.output
        assert (f"month {month} is outside the months this rule pack can sweep "
                "(2023-02 … 2026-03)") in " ".join(result.output.split())  # fmt: skip
    refused_only = events_file(tmp_path, "{not json")
    result = runner.invoke(events_app, ["apply", "--data", str(delivery(tmp_path)),
                                        "--in-process", str(refused_only)])
    assert result.exit_code == 2
    assert "no valid event to apply; give --month" in " ".join(result.output.split())
    assert "unknown name" not in result.output  # not the 2000-01 substitute's parameter error


def test_a_confirming_report_says_so_and_the_reactions_command_lists_the_pack(
    tmp_path: Path,
) -> None:
    again = event("death_registered", "h1", "health", "2025-01-10", id_no=ELDER["id_no"])
    file = events_file(tmp_path, DEATH, again)
    result = runner.invoke(events_app, ["apply", "--data", str(delivery(tmp_path)), str(file),
                                        "--in-process", "--format", "jsonl"])  # fmt: skip
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines()[:2])
    assert first["reactions"][0]["reaction"] == "death_stops_payments"
    assert second["rows"] == [] and second["changes"] == []
    assert second["notes"] == [
        "confirms the death reported by event d1 (police, 2025-01-10): nothing changes"
    ]
    listed = runner.invoke(events_app, ["reactions"])
    assert listed.exit_code == 0
    assert "| `death_confirmed`" in listed.output and "3 days either way" in listed.output
    doc = tmp_path / "events.md"
    doc.write_text("# head\n\nold\n", encoding="utf-8")
    refused = runner.invoke(events_app, ["reactions", "--doc", str(doc)])
    assert refused.exit_code == 2 and "no generated reactions section" in refused.output
