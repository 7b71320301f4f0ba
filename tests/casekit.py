"""Rule case kit for the test suite: the YAML cases under ``tests/cases/`` read with the
handbook's policies and alert kinds (not the pack's, so a case checks the engine and the pack
together). The kit itself — the case format, building extracts, comparing a sweep's tables —
is :mod:`benefits.rulecases`, which ``benefits rules test`` runs against any pack.
"""

from __future__ import annotations

from pathlib import Path

from benefits import rulecases
from benefits.rulecases import Built, Case, CaseError, compare, describe, write_extracts

CASES_DIR = Path(__file__).parent / "cases"

POLICY_MODES: dict[str, str] = {
    "dibao_allowance": "pay",
    "dibian_living_subsidy": "pay",
    "tekun_support": "pay",
    "temporary_assistance": "lead",
    "disability_living_subsidy": "pay",
    "severe_disability_nursing_subsidy": "pay",
    "old_age_allowance": "pay",
    "home_care_service_subsidy": "credit",
    "enterprise_retiree_survivor_benefit": "notice",
    "enterprise_retiree_hardship_grant": "pay",
    "unsupported_child_allowance": "pay",
    "child_in_difficulty_subsidy": "pay",
}
ALERT_KINDS = (
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
)
HANDBOOK = rulecases.Vocabulary(POLICY_MODES, frozenset(ALERT_KINDS))


def load_cases(root: Path = CASES_DIR) -> list[Case]:
    """Every case under ``tests/cases/`` (or `root`)."""
    return rulecases.load_cases(root)


def build(case: Case) -> Built:
    """Extract rows and exact expectations of one case, in the handbook's words."""
    return rulecases.build(case, HANDBOOK)


__all__ = [
    "ALERT_KINDS", "CASES_DIR", "HANDBOOK", "POLICY_MODES", "Built", "Case", "CaseError", "build",
    "compare", "describe", "load_cases", "write_extracts",
]  # fmt: skip
