"""What the auditor reads: the person page, the explanation letter and the rules page name the
amount branch taken, the target-group test with its values, and each parameter's label,
value, effective date and basis — and say why a value effective mid-month applies to the
whole month."""

from __future__ import annotations

import re
from decimal import Decimal

from conftest import Seeded


def _paid(seeded: Seeded, policy_id: str, amount: str) -> str:
    """The reference of a person paid `amount` under `policy_id` in the seeded batch."""
    batch = seeded.ctx.ledger.batches()[0]
    item = next(i for i in seeded.ctx.ledger.items(batch.id, limit=None)
                if i.policy_id == policy_id and i.amount == Decimal(amount))  # fmt: skip
    return seeded.ctx.directory.ref(item.id_no)


def _article(html: str, policy_id: str) -> str:
    found = re.search(rf'<article[^>]*id="p-{policy_id}".*?</article>', html, re.S)
    assert found, policy_id
    return found.group(0)


def test_person_page_names_branch_target_group_and_parameters(seeded: Seeded) -> None:
    ref = _paid(seeded, "old_age_allowance", "100.00")
    client = seeded.client("auditor")
    html = _article(client.get(f"/persons/{ref}?month=2025-01").text, "old_age_allowance")
    target = re.search(r"<p[^>]*data-target-group>.*?</p>", html, re.S)
    assert target and "<code>age &gt;= 79</code>" in target.group(0)
    assert re.search(r"周岁（上月末）.*?<strong>9\d</strong>", target.group(0))
    taken = re.findall(r"<li data-taken>(.*?)</li>", html, re.S)
    assert len(taken) == 1
    assert "<code>age &gt;= 90</code>" in taken[0] and "<code>old_age_90</code>" in taken[0]
    assert "本次适用" in taken[0] and "高龄津贴（90-99周岁） 100" in taken[0]
    assert "浙江省高龄津贴标准（2023-01-01 起, published）" in html  # the parameters' basis

    api = client.get(f"/api/v1/persons/{ref}/explanation?month=2025-01").json()
    old = next(p for p in api["policies"] if p["policy_id"] == "old_age_allowance")
    assert old["target_group"]["test"] == "age >= 79"
    assert [v["name"] for v in old["target_group"]["values"]] == ["age"]
    assert old["branch"]["taken"]["when"] == "age >= 90"
    assert old["branch"]["taken"]["value"] == "old_age_90"
    assert [c["taken"] for c in old["branch"]["cases"]] == [False, True, False]
    params = {p["name"]: p for p in old["parameters"]}
    assert params["old_age_90"]["value"] == "100"
    assert params["old_age_90"]["effective_from"] == "2023-01-01"
    assert params["old_age_90"]["label_zh"] == "高龄津贴（90-99周岁）"
    assert params["old_age_90"]["basis"].startswith("浙江省高龄津贴标准")
    assert params["old_age_90"]["whole_month"] is None


def test_person_page_says_a_mid_month_standard_applies_to_the_whole_month(
    seeded: Seeded,
) -> None:
    batch = seeded.ctx.ledger.batches()[0]
    item = next(i for i in seeded.ctx.ledger.items(batch.id, limit=None)
                if i.policy_id == "dibao_allowance")  # fmt: skip
    ref = seeded.ctx.directory.ref(item.id_no)
    html = _article(seeded.client("auditor").get(f"/persons/{ref}?month=2025-01").text,
                    "dibao_allowance")  # fmt: skip
    assert "<strong>1301</strong>" in html and "自 2025-01-23 起" in html
    note = re.search(r"<div data-whole-month>(.*?)</div>", html, re.S)
    assert note and "适用于 2025-01 整月" in note.group(1)
    assert "杭州市区最低生活保障标准调整通知" in html


def test_letter_names_branch_target_group_and_each_parameter(seeded: Seeded) -> None:
    ref = _paid(seeded, "old_age_allowance", "100.00")
    client = seeded.client("auditor")
    letter = client.get(f"/persons/{ref}/letter?month=2025-01").text
    block = re.search(r'<div class="small" data-policy="old_age_allowance">.*?</div>', letter,
                      re.S)  # fmt: skip
    assert block, letter[:2000]
    text = block.group(0)
    assert "纳入本政策审查的条件 <code>age &gt;= 79</code>（周岁（上月末） 9" in text
    branch = re.search(r"<span data-branch>(.*?)</span>", text, re.S)
    assert branch and "<code>age &gt;= 90</code>" in branch.group(1)
    assert "高龄津贴（90-99周岁） 100 元" in branch.group(1)
    old_90 = re.search(r'<li data-parameter="old_age_90">(.*?)</li>', text, re.S)
    assert old_90
    assert "100 CNY/person/month，自 2023-01-01 起执行" in old_90.group(1)
    assert "依据：浙江省高龄津贴标准" in old_90.group(1)

    batch = seeded.ctx.ledger.batches()[0]
    dibao = next(i for i in seeded.ctx.ledger.items(batch.id, limit=None)
                 if i.policy_id == "dibao_allowance")  # fmt: skip
    letter = client.get(f"/persons/{seeded.ctx.directory.ref(dibao.id_no)}/letter"
                        "?month=2025-01").text  # fmt: skip
    std = re.search(r'<li data-parameter="dibao_std">(.*?)</li>', letter, re.S)
    assert std and "自 2025-01-23 起执行（月中生效，按规定适用于 2025-01 整月）" in std.group(1)


def test_rules_page_says_why_a_mid_month_value_applies_to_the_whole_month(
    seeded: Seeded,
) -> None:
    html = seeded.client("auditor").get("/rules").text
    rule = re.search(r'<p class="small" id="mid-month-rule">(.*?)</p>', html, re.S)
    assert rule
    assert "月中生效的标准适用于该月整月" in rule.group(1)
    assert "applies to that whole month" in rule.group(1) and "prorated" in rule.group(1)
    row = re.search(r"<tr><td>低保标准<div class=\"en\">dibao_std</div></td>(.*?)</tr>", html,
                    re.S)  # fmt: skip
    assert row and "2025-01-23 → <strong>1301</strong>" in row.group(1)
    assert "适用于 2025-01 整月" in row.group(1)
    assert "2022-07-01 → <strong>1216</strong> <span" not in row.group(1)  # a 1st: no note
    api = seeded.client("auditor").get("/api/v1/rules").json()
    history = {h["from"]: h for h in api["parameters"]["dibao_std"]["history"]}
    assert history["2025-01-23"]["whole_month"] == "2025-01"
    assert history["2022-07-01"]["whole_month"] is None


def test_branch_values_are_masked_like_condition_values(seeded: Seeded) -> None:
    """Policy 12's first case reads the disability certificate: hidden without `pii`."""
    ref = _paid(seeded, "child_in_difficulty_subsidy", "1224.00")
    api = seeded.client("auditor").get(f"/api/v1/persons/{ref}/explanation?month=2025-01")
    child = next(p for p in api.json()["policies"]
                 if p["policy_id"] == "child_in_difficulty_subsidy")  # fmt: skip
    assert child["branch"]["taken"]["when"] == "ill_or_severely_disabled"
    shown = {v["name"]: v["value"] for v in child["branch"]["values"]}
    assert shown["cert_grade"] == shown["cert_category"] == "（受限 / restricted）"
    assert child["branch"]["restricted"] is True


def test_traces_written_before_still_explain(seeded: Seeded) -> None:
    """A run swept before the records named branch and target group: parameters as
    [value, date] pairs, no target group or branch — the page still shows what it can."""
    from benefits.web.services.persons import _policy

    decision = {"policy_id": "old_age_allowance", "decision": "paid", "amount": "100.00",
                "conditions": {}, "parameters": {"old_age_90": ["100", "2023-01-01"]},
                "exclusions": []}  # fmt: skip
    label = "高龄津贴（90-99周岁） / old-age allowance"
    rule = {"considers": "age >= 79", "amount_rule": {"formula": "old_age_90 if age >= 90"},
            "parameters": {"old_age_90": {"value": "100", "effective_from": "2023-01-01",
                                          "label": label}}}  # fmt: skip
    view = _policy(seeded.ctx, decision, rule, False, "2025-01")
    assert view["target_group"] == {"test": "age >= 79", "values": [], "restricted": False}
    assert view["branch"] is None
    [param] = view["parameters"]
    assert (param["value"], param["effective_from"]) == ("100", "2023-01-01")
    assert param["label_zh"] == "高龄津贴（90-99周岁）" and param["basis"].startswith("浙江省")
