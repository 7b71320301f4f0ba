"""The person explanation: every policy considered for a month, and why, from the sweep's
traces (its columnar ``traces/`` folder, or traces.jsonl of older runs).

For each policy: the decision and amount; the target-group test that put the person under
the policy, with the values it read; each condition in the handbook's words with whether it
held, the values read (fact labels from the merge stage) and the department and row they came
from; the amount rule and the branch of it that chose the amount; each parameter's label,
value, effective date (noting when a mid-month date applies to the whole month) and basis
(and its history); exclusions applied; the legal basis, rule version and file. Then the ledger's
history of the person's payments and the person's alerts.

Values are masked for a viewer who did not reveal personal data (see
:mod:`benefits.web.privacy`).

Example:
    >>> view = explanation(ctx, "330106194501011233", "2025-01", reveal=False)
    ...                                                             # doctest: +SKIP
    >>> [(p["policy_id"], p["decision"]) for p in view["policies"]]   # doctest: +SKIP
    [('old_age_allowance', 'paid')]
"""

from __future__ import annotations

from typing import Any

from benefits.idcard import mask_id, mask_name
from benefits.ledger.errors import NotFound
from benefits.merge import FACTS
from benefits.web.context import WebContext
from benefits.web.format import decision_state, split_label
from benefits.web.privacy import DEPARTMENTS, fact_source, is_sensitive, mask_value
from benefits.web.services import alerts as alert_service
from benefits.web.services import runs as run_service
from benefits.web.services.batches import person_items

SEX = {"M": "男 / male", "F": "女 / female"}
RELATION = {
    "head": "户主 / head",
    "spouse": "配偶 / spouse",
    "child": "子女 / child",
    "parent": "父母 / parent",
    "grandchild": "孙子女 / grandchild",
    "other": "其他 / other",
}


def _fact_label(name: str) -> tuple[str, str]:
    fact = FACTS.get(name)
    if fact is None:
        return name, name.replace("_", " ")
    return fact.zh, fact.en


def _display(value: Any) -> str:
    if value is True:
        return "是 / yes"
    if value is False:
        return "否 / no"
    if value is None:
        return "—"
    return str(value)


def _values(got: dict[str, Any], reveal: bool) -> tuple[list[dict[str, Any]], bool]:
    """The values a test read, labelled, masked and with their department and row; and
    whether any was hidden."""
    sources: dict[str, Any] = got.get("sources") or {}
    values = []
    hidden = False
    for name, value in (got.get("values") or {}).items():
        table = fact_source(name)
        shown = mask_value(name, value, reveal=reveal)
        hidden = hidden or (shown != value and is_sensitive(name))
        fzh, fen = _fact_label(name)
        values.append(
            {
                "name": name,
                "label_zh": fzh,
                "label_en": fen,
                "value": _display(shown),
                "table": table,
                "department": DEPARTMENTS.get(table, table),
                "row": sources.get(table),
            }
        )
    return values, hidden


def _condition(
    cid: str, rule_cond: dict[str, Any] | None, got: dict[str, Any], reveal: bool
) -> dict[str, Any]:
    zh, en = split_label((rule_cond or {}).get("label") or cid)
    values, hidden = _values(got, reveal)
    return {
        "id": cid,
        "label_zh": zh,
        "label_en": en,
        "test": (rule_cond or {}).get("test", ""),
        "holds": bool(got.get("holds")),
        "values": values,
        "restricted": hidden,
    }


def _target_group(decision: dict[str, Any], rule: dict[str, Any], reveal: bool) -> dict | None:
    """The test that put the person in the policy's target group, with the values it read
    (traces written before it was recorded give the rule's test only)."""
    got = decision.get("target_group")
    test = (got or {}).get("test") or rule.get("considers")
    if not test:
        return None
    values, hidden = _values(got or {}, reveal)
    return {"test": test, "values": values, "restricted": hidden}


def _branch(
    decision: dict[str, Any], rule: dict[str, Any], parameters: list[dict[str, Any]],
    reveal: bool,
) -> dict[str, Any] | None:  # fmt: skip
    """The amount case that chose the amount paid, among the rule's cases."""
    got = decision.get("amount_branch")
    cases = (rule.get("amount_rule") or {}).get("cases") or []
    if not got and not cases:
        return None
    taken = (got or {}).get("case")
    values, hidden = _values(got or {}, reveal)
    by_name = {p["name"]: p for p in parameters}
    listed = []
    for c in cases or [got]:
        param = by_name.get(c.get("value"))
        listed.append(
            {
                "case": c.get("case"),
                "when": c.get("when"),
                "value": c.get("value"),
                "taken": c.get("case") == taken,
                "value_label_zh": param["label_zh"] if param else None,
                "value_label_en": param["label_en"] if param else None,
                "amount": param["value"] if param else None,
            }
        )
    chosen = next((c for c in listed if c["taken"]), None)
    return {"taken": chosen, "cases": listed, "values": values, "restricted": hidden}


def _parameters(
    ctx: WebContext, decision: dict[str, Any], rule: dict[str, Any], month: str | None
) -> list[dict]:
    """Each parameter the decision used: label, value, unit, effective date and basis — from
    the trace's rule record (the pack in force when it was written), else the loaded pack."""
    out = []
    described = rule.get("parameters") or {}
    for name, used in (decision.get("parameters") or {}).items():
        if isinstance(used, dict):
            value, since = used.get("value"), used.get("from")
        elif isinstance(used, list):  # traces written before parameters were named
            value, since = [*used, None, None][:2]
        else:
            value, since = used, None
        info = described.get(name) or {}
        zh, en = split_label(info.get("label") or name)
        base = name.removeprefix("previous_month(").removesuffix(")")
        param = ctx.pack.parameters.get(base)
        history = (
            [{"from": d.isoformat(), "value": str(v)} for d, v in sorted(param.values.items())]
            if param
            else []
        )
        since = since or info.get("from") or info.get("effective_from")
        out.append(
            {
                "name": name,
                "label_zh": zh,
                "label_en": en,
                "value": str(value),
                "effective_from": since,
                "whole_month": whole_month_note(since, month),
                "unit": info.get("unit") or (param.unit if param else ""),
                "basis": info.get("basis") or (param.basis if param else ""),
                "history": history,
            }
        )
    return out


def whole_month_note(since: str | None, month: str | None) -> str | None:
    """The month a mid-month effective date applies to in full, when it is this month.

    >>> whole_month_note("2025-01-23", "2025-01"), whole_month_note("2023-01-01", "2025-01")
    ('2025-01', None)
    """
    if since and month and since[:7] == month and since[8:10] != "01":
        return month
    return None


def _policy(ctx: WebContext, decision: dict[str, Any], rule: dict[str, Any],
            reveal: bool, month: str | None) -> dict[str, Any]:  # fmt: skip
    rule_conds = {c["id"]: c for c in rule.get("conditions") or []}
    got_conds: dict[str, Any] = decision.get("conditions") or {}
    order = [c["id"] for c in rule.get("conditions") or []]
    order += [c for c in got_conds if c not in order]
    conditions = [
        _condition(cid, rule_conds.get(cid), got_conds[cid], reveal)
        for cid in order
        if cid in got_conds
    ]
    rule_excl = {e["id"]: e for e in rule.get("exclusions") or []}
    exclusions = []
    for e in decision.get("exclusions") or []:
        zh, en = split_label((rule_excl.get(e.get("id")) or {}).get("label") or e.get("id"))
        exclusions.append(
            {
                "id": e.get("id"),
                "label_zh": zh,
                "label_en": en,
                "effect": e.get("effect"),
                "in_favour_of": e.get("in_favour_of"),
                "basis": (rule_excl.get(e.get("id")) or {}).get("basis"),
            }
        )
    name_zh, name_en = split_label(rule.get("policy_name") or decision.get("policy_id"))
    amount_rule = rule.get("amount_rule") or {}
    a_zh, a_en = split_label(amount_rule.get("label") or "")
    components = [
        {"name": k, "amount": v.get("amount"), "dropped": v.get("dropped")}
        for k, v in (decision.get("components") or {}).items()
    ]
    pack = rule.get("rule_pack") or {}
    parameters = _parameters(ctx, decision, rule, month or decision.get("month"))
    return {
        "policy_id": decision.get("policy_id"),
        "number": rule.get("policy_number"),
        "name_zh": name_zh,
        "name_en": name_en,
        "group": rule.get("group"),
        "mode": rule.get("mode"),
        "decision": decision.get("decision"),
        "amount": decision.get("amount"),
        "target_group": _target_group(decision, rule, reveal),
        "conditions": conditions,
        "met": sum(c["holds"] for c in conditions),
        "parameters": parameters,
        "branch": _branch(decision, rule, parameters, reveal),
        "formula": amount_rule.get("formula"),
        "amount_label_zh": a_zh,
        "amount_label_en": a_en,
        "components": components,
        "exclusions": exclusions,
        "basis": rule.get("basis") or [],
        "rule_version": decision.get("rule_version") or rule.get("rule_version"),
        "rule_file": rule.get("rule_file"),
        "rule_pack_version": pack.get("version"),
        "rule_pack_hash": pack.get("hash"),
        "one_per": rule.get("one_per"),
    }


def _ledger_states(policies: list[dict[str, Any]], payments: list[dict[str, Any]],
                   month: str | None) -> None:
    """Label each decision as the ledger knows it (its month's payment item, if any)."""
    items = {(p["policy_id"], p["month"]): p for p in reversed(payments)
             if not p["voided"] and p["kind"] in ("payment", "reissue")}  # fmt: skip
    for pol in policies:
        it = items.get((pol["policy_id"], month))
        pol["state"] = decision_state(pol["decision"], it and it["status"],
                                      it and it["batch_status"])  # fmt: skip


def explanation(ctx: WebContext, id_no: str, month: str | None, *, reveal: bool) -> dict:
    """Everything the explanation page and letter show for one person and month."""
    all_months = run_service.months(ctx)
    month = month if month in all_months else (all_months[0] if all_months else None)
    run = run_service.run_for_month(ctx, month) if month else None
    person = ctx.directory.person(id_no) or {}
    decisions: list[dict[str, Any]] = []
    rules: dict[str, dict[str, Any]] = {}
    traces_available = False
    if run is not None:
        index = ctx.trace_index(run)
        if index is not None:
            traces_available = True
            decisions = index.decisions(id_no)
            rules = index.rules
    payments = person_items(ctx, id_no)
    alerts = alert_service.person_alerts(ctx, id_no)
    if not person and not decisions and not payments and not alerts:
        raise NotFound("no person with this reference is known to the ledger or the sweeps")
    policies = [
        _policy(ctx, d, rules.get(d.get("policy_id"), {}), reveal, month)
        for d in sorted(decisions, key=lambda d: rules.get(d.get("policy_id"), {}).get(
            "policy_number", 99))
    ]  # fmt: skip
    _ledger_states(policies, payments, month)
    name = person.get("name") or ""
    masked_name = mask_name(name) if name else (payments[0]["masked_name"] if payments else "—")
    birth = person.get("birth_date")
    household = person.get("household_no") or (decisions[0].get("household_no")
                                                if decisions else None)  # fmt: skip
    return {
        "ref": ctx.directory.ref(id_no),
        "month": month,
        "months": all_months,
        "run": run_service.run_row(run, []) if run is not None else None,
        "traces_available": traces_available,
        "reveal": reveal,
        "person": {
            "name": name if reveal and name else masked_name,
            "id_no": id_no if reveal else mask_id(id_no),
            "sex": SEX.get(person.get("sex") or "", "—"),
            "birth_date": (birth if reveal else mask_value("birth_date", birth, reveal=False))
            or "—",
            "household_no": household or "—",
            "relation": RELATION.get(person.get("relation") or "", "—"),
            "community": person.get("hukou_community") or "—",
            "hukou_status": person.get("hukou_status") or "—",
        },
        "policies": policies,
        "paid": [p for p in policies if p["decision"] in ("paid", "held", "credited")],
        "payments": payments,
        "alerts": [alert_service.alert_view(a, "", reveal=reveal) for a in alerts],
    }
