"""The event path writes the sweep's trace records: the amount branch taken, the target-group
test with its values, parameters as value and effective date — equal to a sweep's."""

from __future__ import annotations

import copy
from pathlib import Path

from events_helpers import apply_rows, assert_agrees, event, service_for, service_traces, sweep

from tests.conftest import bank, person

MONTH = "2025-02"
ALONE = person("1939-06-15", 3, "H1", name="王老汉")  # 85, the only member of H1
ELDER = person("1932-06-15", 5, "H2", name="李老")  # 92


def tables() -> dict[str, list[dict]]:
    people = [ALONE, ELDER]
    return {
        "persons": people,
        "care_assessments": [
            {"id_no": ALONE["id_no"], "care_level": "partial", "assessed_on": "2024-06-01",
             "institution_resident": "false"},
        ],
        "bank_accounts": [bank(p) for p in people],
    }  # fmt: skip


def test_event_traces_name_the_branch_and_target_group_as_the_sweep(tmp_path: Path) -> None:
    raw = tables()
    service = service_for(copy.deepcopy(raw), MONTH, tmp_path / "data")
    traces = service_traces(service)
    elder = traces[(ELDER["id_no"], "old_age_allowance")]
    assert elder["amount_branch"] == {
        "case": 2, "when": "age >= 90", "value": "old_age_90", "values": {"age": 92}
    }  # fmt: skip
    assert elder["target_group"] == {
        "test": "age >= 79", "values": {"age": 92}, "sources": {"persons": 2}
    }  # fmt: skip
    assert elder["parameters"]["old_age_90"] == {"value": "100", "from": "2023-01-01"}
    care = traces[(ALONE["id_no"], "home_care_service_subsidy")]
    assert care["amount_branch"]["value"] == "home_care_partial"
    assert care["target_group"]["test"] == "age >= 60 and has_care_assessment"
    assert care["target_group"]["values"] == {"age": 85, "has_care_assessment": True}
    assert_agrees(service, sweep(raw, MONTH, tmp_path / "before"))

    # a new assessment: full care; the change's trace names the other branch
    result = service.apply(event("care_assessed", "c1", "civil_affairs", "2025-01-20",
                                 id_no=ALONE["id_no"], care_level="full",
                                 institution_resident="false"))  # fmt: skip
    assert result.status == "applied", result
    [change] = [c for c in result.changes if c.policy_id == "home_care_service_subsidy"]
    assert change.kind == "amount_change" and change.trace is not None
    assert change.trace["amount_branch"] == {
        "case": 1, "when": "care_level == 'full'", "value": "home_care_full",
        "values": {"care_level": "full"},
    }  # fmt: skip
    apply_rows(raw, result.rows)
    assert_agrees(service, sweep(raw, MONTH, tmp_path / "after"))
