"""`benefits rules check|test|diff` (issue 15) on small packs: copies of the bundled pack with
one deliberate change each."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from benefits.cli import app
from benefits.period import BenefitMonth
from benefits.rulebook import default_rules_folder, load_pack
from benefits.rulecheck import check_folder
from benefits.rulediff import diff_packs

runner = CliRunner()
CASES = Path(__file__).parent / "cases"
OLD_AGE = CASES / "elderly" / "old_age_allowance.yaml"
EXCLUSION_NEVER = """
  - id: never_when_rich
    label: {zh: 测试, en: "a test exclusion whose condition never holds"}
    basis: test
    between: [old_age_allowance, disability_living_subsidy]
    when: dibao_std > 5000
    exclude: disability_living_subsidy
  - id: dibian_over_dibao
    label: {zh: 测试, en: "a test exclusion between two statuses"}
    basis: test
    between: [dibao_allowance, dibian_living_subsidy]
    exclude: dibian_living_subsidy
"""


@pytest.fixture
def pack_copy(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the bundled pack with `edits`: {file (``parameters__elderly_yaml`` for
    parameters/elderly.yaml): (old text, new text)}."""

    def make(name: str = "pack", **edits: tuple[str, str]) -> Path:
        folder = tmp_path / name
        shutil.copytree(default_rules_folder(), folder)
        for rel, (old, new) in edits.items():
            path = folder / (rel.replace("__", "/").removesuffix("_yaml") + ".yaml")
            text = path.read_text(encoding="utf-8")
            assert old in text, (rel, old)
            path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return folder

    return make


# ----------------------------------------------------------------------------- check


def test_check_of_the_bundled_pack_is_clean() -> None:
    done = runner.invoke(
        app,
        [
            "rules",
            "check",
            str(default_rules_folder()),
            "--cases",
            str(CASES),
            "--month",
            "2025-01",
            "--horizon-months",
            "6",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "0 warning(s)" in done.output and "every policy compiles" in done.output


def test_check_warns_of_missing_yearly_values_within_the_horizon() -> None:
    report = check_folder(default_rules_folder(), CASES, month=BenefitMonth.parse("2026-06"))
    codes = {(w.code, w.where.split("'")[1]) for w in report.warnings}
    assert ("parameter-missing", "dibao_std") in codes
    assert ("parameter-missing", "prov_urban_income") in codes
    assert ("parameter-missing", "min_wage") not in codes  # one value: nothing to expect
    dibao = next(w for w in report.warnings if "'dibao_std'" in w.where)
    assert dibao.where.startswith("parameters/assistance.yaml: parameter 'dibao_std'")
    assert "1301 from 2025-01-23" in dibao.message and "572 days" in dibao.message
    assert "is due by 2026-08-18" in dibao.message
    assert report.exit_code == 1
    done = runner.invoke(app, ["rules", "check", str(default_rules_folder()), "--cases",
                               str(CASES), "--month", "2026-06", "--json"])  # fmt: skip
    assert done.exit_code == 1
    assert any(w["code"] == "parameter-missing" for w in json.loads(done.stdout)["warnings"])


@freeze_time("2025-01-15 10:00:00")
def test_check_counts_the_horizon_from_the_current_month() -> None:
    done = runner.invoke(app, ["rules", "check", str(default_rules_folder()), "--cases",
                               str(CASES), "--horizon-months", "3"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "every policy compiles for 2025-01 … 2025-04" in " ".join(done.output.split())


def test_a_pack_that_does_not_load_fails_check_naming_file_rule_and_field(
    pack_copy: Callable[..., Path],
) -> None:
    broken = pack_copy(policies__hardship__dibao_allowance_yaml=(
        "when: hh_pci < dibao_std", "when: hh_pci < dibao_standard"))  # fmt: skip
    done = runner.invoke(app, ["rules", "check", str(broken), "--month", "2025-01"])
    assert done.exit_code == 2
    line = " ".join(done.output.split())
    for text in (
        "dibao_allowance.yaml",
        "policy 'dibao_allowance'",
        "field conditions.income_below_standard.when",
        "unknown name 'dibao_standard'",
    ):
        assert text in line, line  # fmt: skip
    assert "Traceback" not in done.output


def test_a_policy_that_cannot_be_decided_in_the_horizon_fails_check(
    pack_copy: Callable[..., Path],
) -> None:
    """A parameter whose first value comes too late: the policy cannot be decided for the
    months before it, inside the horizon."""
    late = pack_copy(parameters__elderly_yaml=("values: {2023-01-01: 60}",
                                               "values: {2025-06-01: 60}"))  # fmt: skip
    report = check_folder(late, CASES, month=BenefitMonth.parse("2025-01"), horizon=3)
    assert report.exit_code == 2
    assert "parameter 'old_age_80' has no value before 2025-06-01" in (report.error or "")
    assert "cannot decide 2025-01 … 2025-06" in (report.error or "")


def test_check_warns_of_exclusions_that_never_apply_and_policies_without_cases(
    pack_copy: Callable[..., Path], tmp_path: Path
) -> None:
    folder = pack_copy(exclusions_yaml=("\nexclusions:\n", "\nexclusions:\n" + EXCLUSION_NEVER))
    only_hardship = tmp_path / "cases"
    shutil.copytree(CASES / "hardship", only_hardship)
    report = check_folder(folder, only_hardship, month=BenefitMonth.parse("2025-01"), horizon=2)
    assert report.error is None, report.error
    never = {w.where.split("'")[1]: w.message for w in report.warnings
             if w.code == "exclusion-never-applies"}  # fmt: skip
    assert set(never) == {"never_when_rich", "dibian_over_dibao"}
    assert "dibao_std > 5000" in never["never_when_rich"]
    assert "status precedence" in never["dibian_over_dibao"]
    missing = {w.where.split("'")[1] for w in report.warnings if w.code == "policy-without-case"}
    assert "old_age_allowance" in missing and "dibao_allowance" not in missing
    assert report.exit_code == 1


# ----------------------------------------------------------------------------- test


def test_rule_cases_pass_against_the_bundled_pack() -> None:
    done = runner.invoke(app, ["rules", "test", str(default_rules_folder()), str(OLD_AGE),
                               "-k", "80th birthday"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "PASS old_age_allowance.yaml: 3 case(s)" in done.output
    assert "0 failed" in done.output
    verbose = runner.invoke(app, ["rules", "test", str(default_rules_folder()), str(OLD_AGE),
                                  "-k", "80th birthday", "-v"])  # fmt: skip
    assert "PASS old_age_allowance.yaml::80th birthday the day before M.start - paid" in (
        verbose.output
    )


def test_rule_cases_fail_readably_against_a_changed_pack(pack_copy: Callable[..., Path]) -> None:
    changed = pack_copy(parameters__elderly_yaml=("values: {2023-01-01: 60}",
                                                  "values: {2023-01-01: 70}"))  # fmt: skip
    done = runner.invoke(app, ["rules", "test", str(changed), str(OLD_AGE), "-k", "80th"])
    assert done.exit_code == 1, done.output
    assert "FAIL old_age_allowance.yaml: 1 of 3 case(s) failed" in done.output
    assert "FAIL old_age_allowance.yaml::80th birthday the day before M.start - paid" in (
        done.output
    )
    assert "entitlements missing:    A  old_age_allowance  pay  60.00" in done.output
    assert "entitlements unexpected: A  old_age_allowance  pay  70.00" in done.output
    as_json = runner.invoke(app, ["rules", "test", str(changed), str(OLD_AGE), "-k", "80th",
                                  "--json"])  # fmt: skip
    doc = json.loads(as_json.stdout)
    assert doc["failed"] >= 1 and not doc["cases"][0]["passed"]


def test_rules_test_bad_input_is_one_line(tmp_path: Path) -> None:
    done = runner.invoke(app, ["rules", "test", str(default_rules_folder()), str(tmp_path)])
    assert done.exit_code == 2 and "no rule cases" in done.output
    (tmp_path / "bad.yaml").write_text("cases: [", encoding="utf-8")
    done = runner.invoke(app, ["rules", "test", str(default_rules_folder()), str(tmp_path)])
    assert done.exit_code == 2 and "not valid YAML" in done.output


# ----------------------------------------------------------------------------- diff


def test_diff_in_the_handbooks_words(pack_copy: Callable[..., Path], tmp_path: Path) -> None:
    new = pack_copy(
        "new",
        pack_yaml=('version: "2025.1"', 'version: "2026.1"'),
        parameters__assistance_yaml=("2025-01-23: 1301}", "2025-01-23: 1301, 2026-01-01: 1400}"),
        policies__hardship__dibao_allowance_yaml=("when: hh_pci < dibao_std",
                                                  "when: hh_pci <= dibao_std"),
        alerts_yaml=("  - id: age_milestone\n", "  - id: age_milestone_renamed\n"),
    )  # fmt: skip
    diff = diff_packs(load_pack(), load_pack(new))
    texts = [c.text for c in diff.changes]
    assert "pack: version 2025.1 → 2026.1" in texts
    assert (
        "低保标准 / minimum living standard (dibao_std): 1301 → 1400 CNY/person/month from "
        "2026-01-01 (a new effective date; 1301 in force since 2025-01-23)"
    ) in texts
    assert any(
        "condition '家庭人均收入低于低保标准 / household per-capita income below the dibao "
        "standard' hh_pci < dibao_std → hh_pci <= dibao_std" in t
        for t in texts
    )
    assert "alert 'age_milestone' (年龄节点 / age milestone) removed" in texts
    assert "alert 'age_milestone_renamed' (年龄节点 / age milestone) added" in texts

    done = runner.invoke(app, ["rules", "diff", str(default_rules_folder()), str(new)])
    assert done.exit_code == 1 and "1301 → 1400" in done.output
    md = tmp_path / "diff.md"
    done = runner.invoke(app, ["rules", "diff", str(default_rules_folder()), str(new),
                               "--format", "markdown", "--out", str(md)])  # fmt: skip
    assert done.exit_code == 1
    assert md.read_text(encoding="utf-8").startswith("# Rule pack changes: 2025.1 → 2026.1")
    done = runner.invoke(app, ["rules", "diff", str(default_rules_folder()), str(new),
                               "--format", "json"])  # fmt: skip
    doc = json.loads(done.stdout)
    param = next(c for c in doc["changes"] if c["item"] == "dibao_std")
    assert (param["field"], param["old"], param["new"]) == ("value from 2026-01-01", "1301", "1400")


def test_diff_of_identical_packs(pack_copy: Callable[..., Path]) -> None:
    done = runner.invoke(app, ["rules", "diff", str(default_rules_folder()), str(pack_copy())])
    assert done.exit_code == 0 and "no differences" in done.output
    done = runner.invoke(app, ["rules", "diff", str(default_rules_folder()), "/nonexistent"])
    assert done.exit_code == 2 and "not a rule pack folder" in done.output
