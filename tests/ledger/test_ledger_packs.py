"""Rule pack releases with four eyes: submit, approve (never by the submitter), reject, roll
back; the ledger records a sweep only with the release in force; every step audited."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from ledger_helpers import town, write_sweep
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from benefits.ledger import Ledger
from benefits.ledger.errors import FourEyesViolation, IllegalTransition, InvalidInput, LedgerError
from benefits.ledger.models import AuditEntry, PackRelease, PackReleaseFile, SweepRun
from benefits.ledger.packcli import register
from benefits.ledger.packs import (
    Report,
    UnapprovedPack,
    files_digest,
    materialize,
    pack_files,
    pack_in_force,
)
from benefits.rulebook import default_rules_folder, load_pack, pack_digest

runner = CliRunner()


def make_pack(dest: Path, dibao: str | None = None) -> Path:
    """A copy of the bundled pack; with `dibao`, a 2026-01-01 dibao standard added."""
    shutil.copytree(default_rules_folder(), dest)
    if dibao is not None:
        path = dest / "parameters" / "assistance.yaml"
        text = path.read_text(encoding="utf-8")
        old = "values: {2022-07-01: 1216, 2023-07-01: 1259, 2025-01-23: 1301}"
        assert old in text
        path.write_text(text.replace(old, old[:-1] + f", 2026-01-01: {dibao}}}"), "utf-8")
    return dest


@pytest.fixture
def packs_dir(tmp_path: Path) -> dict[str, Path]:
    return {
        "v1": make_pack(tmp_path / "v1"),
        "v2": make_pack(tmp_path / "v2", dibao="1400"),
        "v3": make_pack(tmp_path / "v3", dibao="1450"),
    }


def actions(ledger: Ledger) -> list[str]:
    return [e.action for e in ledger.audit_entries(200)]


def test_submit_approve_four_eyes_and_audit(ledger: Ledger, packs_dir: dict[str, Path]) -> None:
    assert ledger.release_in_force() is None
    diff = Report("diff", "rules-diff.md", "dibao_std 1301 → 1400".encode(), "file by alice")
    r = ledger.submit_pack(packs_dir["v1"], by="alice", note="first release", reports=[diff])
    assert (r.status, r.digest, r.base_release_id) == ("submitted", pack_digest(packs_dir["v1"]),
                                                       None)  # fmt: skip
    assert ledger.release_in_force() is None  # submitted is not in force

    with pytest.raises(FourEyesViolation, match=r"alice cannot approve release 1.*four eyes"):
        ledger.approve_pack(r.id, by="alice")
    assert actions(ledger)[-1] == "security.approval_refused"
    # the database refuses it too, whatever code writes
    with pytest.raises(IntegrityError), ledger.db.transaction() as s:
        s.execute(update(PackRelease).where(PackRelease.id == r.id)
                  .values(status="approved", approved_by="alice", generation=1))  # fmt: skip

    ok = ledger.approve_pack(r.id, by="bob")
    assert (ok.status, ok.approved_by, ok.generation) == ("approved", "bob", 1)
    assert ledger.release_in_force().id == r.id  # type: ignore[union-attr]
    with pytest.raises(IllegalTransition, match="only a submitted release can be approved"):
        ledger.approve_pack(r.id, by="carol")
    with pytest.raises(InvalidInput, match="the release in force"):
        ledger.submit_pack(packs_dir["v1"], by="alice")

    r2 = ledger.submit_pack(packs_dir["v2"], by="alice")
    assert r2.base_release_id == r.id
    with pytest.raises(InvalidInput, match="awaiting approval"):
        ledger.submit_pack(packs_dir["v2"], by="carol")
    with pytest.raises(InvalidInput, match="must give a reason"):
        ledger.reject_pack(r2.id, by="bob", reason=" ")
    rej = ledger.reject_pack(r2.id, by="bob", reason="the 2026 notice is not published yet")
    assert rej.status == "rejected"
    with pytest.raises(IllegalTransition, match="it is rejected"):
        ledger.approve_pack(r2.id, by="bob")

    got = actions(ledger)
    assert [a for a in got if a.startswith("rules.")] == [
        "rules.submit", "rules.approve", "rules.submit", "rules.reject"]  # fmt: skip
    assert ledger.verify_audit().ok


def test_a_pack_that_does_not_load_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    bad = make_pack(tmp_path / "bad")
    path = bad / "parameters" / "assistance.yaml"
    path.write_text(path.read_text("utf-8").replace("unit: CNY/person/month", "unit: [", 1),
                    "utf-8")  # fmt: skip
    with pytest.raises(InvalidInput, match=r"the pack does not load.*assistance\.yaml"):
        ledger.submit_pack(bad, by="alice")
    assert ledger.pack_releases() == []


def test_only_the_release_in_force_may_be_recorded(
    ledger: Ledger, packs_dir: dict[str, Path], sweeps: Path
) -> None:
    v1, v2 = (pack_digest(packs_dir[k]) for k in ("v1", "v2"))
    # no release yet: not governed, the run records no release
    first = ledger.import_run(write_sweep(sweeps / "a", "2025-01", town(2), pack_hash=v2), "al")
    r1 = ledger.submit_pack(packs_dir["v1"], by="alice")
    ledger.approve_pack(r1.id, by="bob")
    r2 = ledger.submit_pack(packs_dir["v2"], by="alice")
    sweep = write_sweep(sweeps / "b", "2025-02", town(2), pack_hash=v2)
    with pytest.raises(UnapprovedPack) as refused:
        ledger.import_run(sweep, by="alice")
    msg = str(refused.value)
    assert "\n" not in msg
    assert f"release {r2.id}" in msg and "submitted (by alice" in msg
    assert f"release {r1.id}" in msg and f"have another officer approve release {r2.id}" in msg
    other = write_sweep(sweeps / "c", "2025-02", town(2), pack_hash="ef" * 32)
    with pytest.raises(UnapprovedPack, match=r"never submitted as a release.*rules submit"):
        ledger.import_run(other, by="alice")

    ok = ledger.import_run(write_sweep(sweeps / "d", "2025-02", town(2), pack_hash=v1), "alice")
    # a run recorded before the first release stays recorded (importing it again is a no-op)
    assert ledger.import_run(sweeps / "a", by="alice").run_id == first.run_id
    with ledger.db.snapshot() as s:
        got = dict(s.execute(select(SweepRun.id, SweepRun.release_id)).all())
    assert got == {first.run_id: None, ok.run_id: r1.id}

    ledger.approve_pack(r2.id, by="carol")
    assert ledger.import_run(sweep, by="alice").already is False  # v2 in force now
    with pytest.raises(UnapprovedPack, match=r"release 1 \(.*\), which is approved"):
        ledger.import_run(write_sweep(sweeps / "e", "2025-03", town(2), pack_hash=v1), "al")


def test_rollback_and_stale_approvals(
    ledger: Ledger, packs_dir: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="no approved rule pack release"):
        ledger.rollback_pack(by="carol", reason="x")
    r1 = ledger.submit_pack(packs_dir["v1"], by="alice")
    ledger.approve_pack(r1.id, by="bob")
    with pytest.raises(IllegalTransition, match="only approved release"):
        ledger.rollback_pack(by="carol", reason="x")
    r2 = ledger.submit_pack(packs_dir["v2"], by="alice")
    r3 = ledger.submit_pack(packs_dir["v3"], by="dave")  # also against release 1
    ledger.approve_pack(r2.id, by="bob")
    with pytest.raises(IllegalTransition, match="submitted against release 1 but release 2"):
        ledger.approve_pack(r3.id, by="bob")

    with pytest.raises(InvalidInput, match="reason"):
        ledger.rollback_pack(by="carol", reason="")
    done = ledger.rollback_pack(by="carol", reason="2026 dibao standard typed wrong")
    assert (done.rolled_back.id, done.rolled_back.status, done.in_force.id) == (
        r2.id, "rolled_back", r1.id)  # fmt: skip
    assert ledger.release_in_force().id == r1.id  # type: ignore[union-attr]
    entry = ledger.audit_entries(1)[0]
    assert (entry.action, entry.actor, entry.object_id) == ("rules.rollback", "carol", str(r2.id))
    assert '"in_force":1' in entry.content and "typed wrong" in entry.content
    with pytest.raises(IllegalTransition, match="rolled_back"):
        ledger.reject_pack(r2.id, by="bob", reason="x")
    # r3 was prepared against release 1, in force again: it can be approved now
    assert ledger.approve_pack(r3.id, by="bob").generation == 3
    assert ledger.verify_audit().ok


def test_materialized_pack_is_checked_against_its_digest(
    ledger: Ledger, packs_dir: dict[str, Path], tmp_path: Path
) -> None:
    r1 = ledger.submit_pack(packs_dir["v1"], by="alice")
    cache = tmp_path / "cache"
    assert pack_in_force(ledger.db, packs_dir["v2"], cache) == (packs_dir["v2"], None)
    ledger.approve_pack(r1.id, by="bob")
    folder, rid = pack_in_force(ledger.db, None, cache)
    assert rid == r1.id and pack_digest(folder) == r1.digest == folder.name
    assert pack_in_force(ledger.db, packs_dir["v1"], cache) == (packs_dir["v1"], r1.id)
    with pytest.raises(UnapprovedPack):
        pack_in_force(ledger.db, packs_dir["v2"], cache)
    assert files_digest(pack_files(folder)) == r1.digest
    # a file changed in the database is noticed before any sweep loads it
    shutil.rmtree(folder)
    with ledger.db.transaction() as s:
        s.execute(update(PackReleaseFile).where(PackReleaseFile.path == "pack.yaml")
                  .values(content=b"name: evil\n"))  # fmt: skip
    with pytest.raises(LedgerError, match="altered"):
        materialize(ledger.db, r1.id, cache)


def test_cli_release_lifecycle(db_url: str, packs_dir: dict[str, Path], tmp_path: Path) -> None:
    from benefits.ledger.cli import register as register_ledger

    app = typer.Typer()
    rules = typer.Typer()
    register(rules)
    app.add_typer(rules, name="rules")
    register_ledger(app)

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env={"BENEFITS_DATABASE_URL": db_url})
        assert "Traceback" not in result.output, result.output
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    assert cli("ledger", "init")[0] == 0
    report = tmp_path / "diff.md"
    report.write_text("dibao_std: 1301 → 1400 from 2026-01-01\n", "utf-8")
    code, out = cli("rules", "submit", str(packs_dir["v1"]), "--by", "alice", "--note", "base",
                    "--diff-report", str(report))  # fmt: skip
    assert code == 0 and "release 1" in out and "diff diff.md" in out
    code, out = cli("rules", "approve", "1", "--by", "alice")
    assert code == 2 and "four eyes" in out and len(out.strip().splitlines()) == 1
    code, out = cli("rules", "approve", "1", "--by", "bob")
    assert code == 0 and "in force" in out
    assert cli("rules", "submit", str(packs_dir["v2"]), "--by", "alice")[0] == 0
    code, out = cli("rules", "list")
    assert code == 0 and "in force" in out and "submitted" in out
    code, out = cli("rules", "show", "1")
    assert code == 0 and "pack.yaml" in out and "dibao_std: 1301 → 1400" in out
    assert cli("rules", "approve", "2", "--by", "carol")[0] == 0
    code, out = cli("rules", "fetch", "current", "--to", str(tmp_path / "got"))
    assert code == 0 and pack_digest(tmp_path / "got") == pack_digest(packs_dir["v2"])
    code, out = cli("rules", "rollback", "--reason", "wrong standard", "--by", "carol")
    assert code == 0 and "release 1" in out and "in force again" in out
    code, out = cli("rules", "show", "9")
    assert code == 2 and "no rule pack release 9" in out
    sweep = write_sweep(tmp_path / "s", "2025-01", town(2), pack_hash=pack_digest(packs_dir["v2"]))
    code, out = cli("ledger", "import-run", "--out", str(sweep), "--by", "alice")
    assert code == 2 and "release 2" in out and "rolled_back" in out
    assert len(out.strip().splitlines()) == 1
    with Ledger(db_url) as led, led.db.snapshot() as s:
        acts = list(s.execute(select(AuditEntry.action)).scalars())
    assert acts.count("rules.approve") == 2 and "rules.rollback" in acts


def test_submit_makes_the_diff_with_rules_diff_when_installed(
    ledger: Ledger, packs_dir: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --diff-report, `benefits rules diff` (benefits.rulediff) of the release in force
    against the submitted pack is attached; with no release in force, nothing is."""
    import sys
    import types

    from benefits.ledger.packreports import diff_report
    from benefits.ledger.packs import release_reports

    seen: list[tuple[str, str]] = []

    class Diff:
        def to_markdown(self) -> str:
            return "| parameter | old | new |\n| dibao_std | 1301 | 1400 |\n"

    def diff_packs(old, new):  # type: ignore[no-untyped-def]
        seen.append((old.digest, new.digest))
        return Diff()

    monkeypatch.setitem(sys.modules, "benefits.rulediff",
                        types.SimpleNamespace(diff_packs=diff_packs))  # fmt: skip
    assert diff_report(ledger.db, packs_dir["v1"], tmp_path / "c") is None  # no release yet
    r1 = ledger.submit_pack(packs_dir["v1"], by="alice")
    ledger.approve_pack(r1.id, by="bob")
    made = diff_report(ledger.db, packs_dir["v2"], tmp_path / "c")
    assert made is not None and made.kind == "diff" and made.media_type == "text/markdown"
    assert seen == [(r1.digest, pack_digest(packs_dir["v2"]))]
    r2 = ledger.submit_pack(packs_dir["v2"], by="alice", reports=[made])
    [rep] = release_reports(ledger.db, r2.id)
    assert b"dibao_std | 1301 | 1400" in rep.content and "rules diff" in rep.origin


def test_submit_attaches_the_real_diff_and_whatif_against_the_release_in_force(
    ledger: Ledger, packs_dir: dict[str, Path], tmp_path: Path
) -> None:
    """`rules submit` with the installed `benefits rules diff` and `benefits whatif`: the
    approver reads the parameter change and its priced impact on a month's delivery."""
    from benefits.ledger.packreports import diff_report, whatif_report
    from benefits.ledger.packs import release_reports
    from benefits.whatif import run_whatif

    sample = Path(__file__).resolve().parents[2] / "datasets" / "sample"
    r1 = ledger.submit_pack(packs_dir["v1"], by="alice")
    ledger.approve_pack(r1.id, by="bob")
    diff = diff_report(ledger.db, packs_dir["v2"], tmp_path / "c")
    assert diff is not None
    text = diff.content.decode("utf-8")
    assert "dibao\\_std" in text and "1301 → 1400" in text and "2026-01-01" in text
    priced = whatif_report(ledger.db, packs_dir["v2"], sample, "2026-01", tmp_path / "c")
    assert priced.kind == "whatif" and priced.name == "whatif-2026-01.html"
    # the same what-if run by hand: its monthly difference is in the attached report
    expected = run_whatif(sample, "2026-01", load_pack(packs_dir["v1"]), load_pack(packs_dir["v2"]))
    difference = expected.summary()["totals"]["difference_month"]
    assert Decimal(difference) > 0
    assert f"{Decimal(difference):,}" in priced.content.decode("utf-8")
    r2 = ledger.submit_pack(packs_dir["v2"], by="alice", reports=[diff, priced])
    kinds = sorted(r.kind for r in release_reports(ledger.db, r2.id))
    assert kinds == ["diff", "whatif"]
