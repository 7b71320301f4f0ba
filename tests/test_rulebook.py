"""The rule pack: loads, validates, names file/rule/field in errors, effective dating."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from benefits.errors import ParameterError, RuleError
from benefits.period import BenefitMonth
from benefits.rulebook import DEFAULT_RULES, load_pack


def test_bundled_pack_has_all_policies_and_alert_kinds() -> None:
    pack = load_pack()
    assert [p.number for p in pack.policies] == list(range(1, 13))
    kinds = {a.kind for a in pack.alerts}
    assert kinds == {
        "cert_expiring",
        "age_milestone",
        "death_stop",
        "moved_out_stop",
        "review_due",
        "income_over_threshold",
        "exclusive_conflict",
        "identity_conflict",
        "account_problem",
        "discovery_lead",
        "survivor_benefit_notice",
    }
    for p in pack.policies:
        assert p.basis, p.id


@pytest.mark.parametrize(
    ("month", "value", "since"),
    [
        ("2024-12", "1259", dt.date(2023, 7, 1)),
        ("2025-01", "1301", dt.date(2025, 1, 23)),  # mid-month standard applies to all January
        ("2023-06", "1216", dt.date(2022, 7, 1)),
    ],
)
def test_parameter_in_force(month: str, value: str, since: dt.date) -> None:
    pack = load_pack()
    assert pack.parameter_at("dibao_std", BenefitMonth.parse(month)) == (Decimal(value), since)


def test_parameter_without_value_names_parameter_and_month() -> None:
    with pytest.raises(ParameterError, match=r"'dibao_std'.*2022-06"):
        load_pack().parameter_at("dibao_std", BenefitMonth.parse("2022-06"))


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES, folder)
    return folder


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_unknown_fact_in_condition_names_file_rule_and_field(pack_copy: Path) -> None:
    f = pack_copy / "policies/elderly/old_age_allowance.yaml"
    _edit(f, lambda d: d["conditions"][2].update(when="agee >= 80"))
    with pytest.raises(
        RuleError, match=r"old_age_allowance.yaml.*'old_age_allowance'.*aged_80.*agee"
    ):
        load_pack(pack_copy)


def test_schema_error_names_file_and_field(pack_copy: Path) -> None:
    f = pack_copy / "policies/elderly/old_age_allowance.yaml"
    _edit(f, lambda d: d.update(mode="cash"))
    with pytest.raises(RuleError, match=r"old_age_allowance.yaml.*mode"):
        load_pack(pack_copy)


def test_exclusive_pair_without_declared_precedence_is_rejected(pack_copy: Path) -> None:
    f = pack_copy / "exclusions.yaml"
    _edit(f, lambda d: d["exclusions"].pop(0))  # policy 11 over 12 no longer declared
    with pytest.raises(RuleError, match="no exclusion declares which one wins"):
        load_pack(pack_copy)


def test_pack_hash_changes_with_any_rule_file(pack_copy: Path) -> None:
    before = load_pack(pack_copy).digest
    f = pack_copy / "parameters/elderly.yaml"
    _edit(f, lambda d: d["old_age_80"]["values"].update({dt.date(2026, 1, 1): 70}))
    pack = load_pack(pack_copy)
    assert pack.digest != before
    assert pack.parameter_at("old_age_80", BenefitMonth.parse("2026-01"))[0] == Decimal(70)
    assert pack.parameter_at("old_age_80", BenefitMonth.parse("2025-12"))[0] == Decimal(60)


def test_what_if_parameters_replace_every_value_and_change_the_digest() -> None:
    pack = load_pack()
    what_if = pack.with_parameters({"dibao_std": "1400"})
    for month in ("2023-01", "2025-01"):
        assert what_if.parameter_at("dibao_std", BenefitMonth.parse(month))[0] == Decimal(1400)
    assert pack.parameter_at("dibao_std", BenefitMonth.parse("2025-01"))[0] == Decimal(1301)
    assert what_if.digest != pack.digest
    with pytest.raises(ParameterError, match="unknown parameter 'dibao_standard'"):
        pack.with_parameters({"dibao_standard": "1"})


def test_alert_rule_without_id_names_file_and_field(pack_copy: Path) -> None:
    f = pack_copy / "alerts.yaml"
    _edit(f, lambda d: d["alerts"][3].pop("id"))
    with pytest.raises(RuleError, match=r"alerts.yaml: alerts: alerts\.3\.id: Field required"):
        load_pack(pack_copy)


def test_alert_rule_id_used_twice_is_rejected(pack_copy: Path) -> None:
    f = pack_copy / "alerts.yaml"
    _edit(f, lambda d: d["alerts"][5].update(id="dibao_review_due"))  # the 6th is dibian's
    with pytest.raises(
        RuleError, match=r"alerts.yaml: field id: .*more than one rule: dibao_review_due"
    ):
        load_pack(pack_copy)


def test_alert_rule_id_must_be_snake_case(pack_copy: Path) -> None:
    f = pack_copy / "alerts.yaml"
    _edit(f, lambda d: d["alerts"][0].update(id="Cert-Expiring"))
    with pytest.raises(RuleError, match=r"alerts.yaml: alerts: alerts\.0\.id: String should"):
        load_pack(pack_copy)


def test_every_alert_rule_has_its_own_id() -> None:
    ids = [a.id for a in load_pack().alerts]
    assert len(ids) == len(set(ids)) == 17
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids)
