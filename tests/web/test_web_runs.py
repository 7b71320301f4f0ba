"""Runs in the web app: independent of the working directory (issue 11 point 7), reuse of an
identical run and the retention of old runs' folders (point 9)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from conftest import PASSWORDS, SAMPLE, Seeded, csrf_of, login
from fastapi.testclient import TestClient

from benefits.ledger import Ledger
from benefits.ledger.models import AuditEntry
from benefits.sweep import run_sweep
from benefits.web.app import create_app
from benefits.web.demo import create_users
from benefits.web.settings import WebSettings
from tests.security.leakscan import recording


def _paid(out: Path, policy: str) -> str:
    with (out / "entitlements.csv").open(encoding="utf-8") as f:
        return next(r["id_no"] for r in csv.DictReader(f)
                    if r["policy_id"] == policy and r["mode"] == "pay")  # fmt: skip


def test_explanations_survive_a_server_started_in_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run swept and imported with relative paths still explains itself when the app runs
    from elsewhere: what the run needs is stored independently of the working directory."""
    clone, elsewhere = tmp_path / "clone", tmp_path / "elsewhere"
    clone.mkdir()
    elsewhere.mkdir()
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.chdir(clone)
    (clone / "extracts").symlink_to(SAMPLE, target_is_directory=True)
    run_sweep(Path("extracts"), "2025-01", out=Path("out/2025-01"))
    with Ledger(db) as ledger:
        ledger.init(by="test")
        run_id = ledger.import_run(Path("out/2025-01"), by="test").run_id
        assert Path(ledger.runs()[0].source).is_absolute()
    id_no = _paid(clone / "out" / "2025-01", "severe_disability_nursing_subsidy")

    monkeypatch.chdir(elsewhere)
    app = create_app(WebSettings(db=db, data=SAMPLE, work=Path("web"), secret_key="k"))
    try:
        create_users(app.state.ctx, PASSWORDS)
        client = login(TestClient(recording(app), base_url="http://testserver"), "auditor")
        detail = client.get(f"/api/v1/runs/{run_id}").json()
        assert detail["folder_present"] and detail["outputs"], detail
        ref = app.state.ctx.directory.ref(id_no)
        api = client.get(f"/api/v1/persons/{ref}/explanation?month=2025-01").json()
        paid = [p for p in api["policies"] if p["decision"] == "paid"]
        assert "severe_disability_nursing_subsidy" in {p["policy_id"] for p in paid}, api
        html = client.get(f"/persons/{ref}?month=2025-01").text
        assert "重度残疾人护理补贴" in html and "dibao_std" in html
    finally:
        app.state.ctx.ledger.close()


def test_demo_with_unusable_data_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from benefits.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENEFITS_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["serve", "--demo", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2, result.output
    assert "error: the demo could not be seeded" in result.output
    assert "nowhere" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def _sweep_folders(seeded: Seeded) -> list[Path]:
    sweeps = Path(seeded.settings.work) / "sweeps"
    return sorted(sweeps.iterdir()) if sweeps.is_dir() else []


def test_a_resweep_of_unchanged_data_reuses_the_run(seeded: Seeded, tmp_path: Path) -> None:
    """Same inputs, rule pack and month: the recorded run is reused, no new output folder."""
    recorded = seeded.ctx.ledger.runs()[0]
    officer = seeded.client("officer")
    api = seeded.client()
    api.headers["Authorization"] = f"Bearer {seeded.token('officer')}"
    r = api.post("/api/v1/sweeps", json={"month": "2025-01"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reused"] and body["already"] and body["run_id"] == recorded.id
    page = officer.post("/sweeps", data={"csrf_token": csrf_of(officer), "month": "2025-01"})
    assert f"run {recorded.id} reused, nothing swept again" in page.text
    assert _sweep_folders(seeded) == [] and len(seeded.ctx.ledger.runs()) == 1
    with seeded.ctx.db.snapshot() as s:
        reuses = s.query(AuditEntry).filter(AuditEntry.action == "run.reuse").all()
    assert [(e.actor, e.object_id) for e in reuses] == [("officer", str(recorded.id))] * 2

    # a changed delivery is swept again and recorded as a new run
    changed = tmp_path / "changed"
    shutil.copytree(SAMPLE, changed)
    with (changed / "deaths.csv").open("a", encoding="utf-8") as f:
        f.write("\n")
    seeded.ctx.settings.data = changed
    r = api.post("/api/v1/sweeps", json={"month": "2025-01"})
    assert r.status_code == 201 and not r.json()["reused"], r.text
    assert r.json()["run_id"] != recorded.id and len(_sweep_folders(seeded)) == 1
