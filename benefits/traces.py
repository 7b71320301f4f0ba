"""Audit traces: one JSON line per person × policy considered, built as a by-product.

The file starts with one rule record per policy (names, basis, the target-group test, the
conditions' labels and tests, the amount formula and its numbered cases, and each parameter's
label, value, effective date, unit and basis). Then every decision record says the decision,
the amount and — for an amount given by cases — the case that chose it (`amount_branch`), the
target-group test with the values it read, each condition in the handbook's words with
whether it held, the fact values it read and the source rows (table → 1-based row number in
the delivered file), the parameters' values and effective dates (their labels and bases are
in the rule record), the components and the exclusions applied. Lines are assembled with
Polars string expressions (no Python loop per person); the event path
(:func:`benefits.events.decide.trace_record`) builds the same records.

Example decision line (abridged)::

    {"record":"decision","month":"2025-01","policy_id":"old_age_allowance",…,"decision":"paid",
     "amount":"100.00","amount_branch":{"case":2,"when":"age >= 90","value":"old_age_90",
     "values":{"age":92}},"target_group":{"test":"age >= 79","values":{"age":92},
     "sources":{"persons":12}},"conditions":{"aged_80":{"holds":true,"values":{"age":92,…},
     "sources":{"persons":12}},…},"parameters":{"old_age_90":{"value":"100",
     "from":"2023-01-01"},…},"exclusions":[]}
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from benefits.evaluate import (
    AmountCase,
    CompiledPolicy,
    Evaluation,
    col_name,
    display_expr,
    json_const,
    yuan_expr,
)
from benefits.merge import FACTS
from benefits.rulebook import RulePack

DECISIONS = {
    "pay": "paid",
    "credit": "credited",
    "lead": "lead",
    "notice": "notice",
}


def _json_value(name: str) -> pl.Expr:
    """A fact as a JSON-ready value: numbers and booleans typed, money/dates as text."""
    kind = FACTS[name].kind if name in FACTS else "bool"
    if kind in ("money", "date"):
        return display_expr(name, kind).alias(name)
    return pl.col(name).alias(name)


def _bool_text(e: pl.Expr) -> pl.Expr:
    return pl.when(e).then(pl.lit("true")).otherwise(pl.lit("false"))


def with_inputs(names: list[str]) -> list[str]:
    """Facts read plus the facts they are derived from (e.g. resident → hukou fields)."""
    out: list[str] = []
    for n in names:
        for m in (n, *(FACTS[n].inputs if n in FACTS else ())):
            if m not in out:
                out.append(m)
    return out


def _object(names: list[str]) -> pl.Expr:
    if not names:
        return pl.lit("{}")
    return pl.struct([_json_value(n) for n in names]).struct.json_encode()


def _sources(names: list[str]) -> pl.Expr:
    rows: dict[str, str] = {}
    for n in names:
        fact = FACTS.get(n)
        if fact and fact.row and fact.source not in rows:
            rows[fact.source] = fact.row
    if not rows:
        return pl.lit("{}")
    return pl.struct([pl.col(r).alias(t) for t, r in rows.items()]).struct.json_encode()


def rule_line(pack: RulePack, ev: Evaluation, cp: CompiledPolicy) -> str:
    """The rule record of a policy for the month: labels, tests, basis, parameters, formula."""
    policy = cp.policy
    exclusions = [
        {
            "id": e.id,
            "label": e.label.text(),
            "between": list(e.between),
            "exclude": e.exclude,
            "when": e.when,
            "basis": e.basis,
        }
        for e in pack.exclusions.exclusions
        if cp.id in e.between
    ]
    return json_const(
        {
            "record": "rule",
            "month": ev.month.label,
            "policy_id": cp.id,
            "policy_number": policy.number,
            "policy_name": policy.name.text(),
            "group": policy.group,
            "mode": policy.mode,
            "rule_version": policy.version,
            "rule_file": policy.source_file,
            "rule_pack": {"version": pack.version, "hash": pack.digest},
            "basis": [b.model_dump(exclude_none=True) for b in policy.basis],
            "considers": policy.considers,
            "conditions": [{"id": c.id, "label": c.label, "test": c.test} for c in cp.conditions],
            "amount_rule": {
                "formula": policy.amount_text(),
                "cases": [{"case": c.number, "when": c.when, "value": c.value} for c in cp.cases],
                "components": dict(policy.components),
                "label": policy.amount_label.text() if policy.amount_label else None,
            },
            "parameters": cp.params,
            "exclusions": exclusions,
            "one_per": policy.one_per.label.text() if policy.one_per else None,
        }
    )


def decision_parameters(params: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The parameters as a decision record gives them: value and effective date only (the
    label, unit and basis are in the policy's rule record)."""
    return {k: {"value": v["value"], "from": v["from"]} for k, v in params.items()}


def branch_head(case: AmountCase) -> str:
    """The constant start of a decision's ``amount_branch`` (up to its ``values``)."""
    head = json_const({"case": case.number, "when": case.when, "value": case.value})
    return ',"amount_branch":' + head[:-1] + ',"values":'


def _branch(cp: CompiledPolicy) -> pl.Expr:
    """``"amount_branch"``: the amount case that chose the amount paid, with the values its
    test (and every earlier case's test) read; empty when nothing was paid."""
    number = pl.col(col_name(cp.id, "case"))
    out: pl.Expr = pl.lit("")
    for case in reversed(cp.cases):
        text = pl.concat_str([pl.lit(branch_head(case)), _object(case.facts), pl.lit("}")])
        out = pl.when(number == case.number).then(text).otherwise(out)
    return out


def _json_string(name: str) -> pl.Expr:
    """A string column as a JSON string literal (quotes and escapes handled by Polars)."""
    return pl.struct([pl.col(name).alias("v")]).struct.json_encode().str.slice(5).str.head(-1)


def policy_lines(
    pack: RulePack, ev: Evaluation, cp: CompiledPolicy, held_ids: pl.Series
) -> pl.LazyFrame:
    """The decision records of one policy: one per person considered (lazy, column `line`)."""
    pid = cp.id
    facts = ev.facts.lazy().filter(pl.col(col_name(pid, "considered")))
    return facts.select(_line(pack, ev, cp, held_ids).alias("line"))


def _line(pack: RulePack, ev: Evaluation, cp: CompiledPolicy, held_ids: pl.Series) -> pl.Expr:
    """The decision record of one person for one policy, as a string expression."""
    pid, policy = cp.id, cp.policy
    header = json_const(
        {
            "record": "decision",
            "month": ev.month.label,
            "policy_id": pid,
            "rule_version": policy.version,
        }
    )[:-1]  # reopen the object
    pieces: list[pl.Expr] = [
        pl.lit(header + ',"id_no":'),
        _json_string("id_no"),
        pl.lit(',"household_no":'),
        _json_string("household_no"),
    ]
    eligible = pl.col(col_name(pid, "eligible"))
    candidate = pl.col(col_name(pid, "candidate"))
    paid = pl.col(col_name(pid, "paid"))
    paid_word = DECISIONS[policy.mode]
    is_held = pl.col("id_no").is_in(held_ids.implode()) if policy.mode == "pay" else pl.lit(False)
    decision = (
        pl.when(~eligible)
        .then(pl.lit("not_eligible"))
        .when(~candidate)
        .then(pl.lit("not_selected"))
        .when(~paid)
        .then(pl.lit("excluded"))
        .when(is_held)
        .then(pl.lit("held"))
        .otherwise(pl.lit(paid_word))
    )
    pieces += [pl.lit(',"decision":"'), decision, pl.lit('","amount":')]
    amount = pl.col(col_name(pid, "final_amount"))
    pieces.append(
        pl.when(amount.is_not_null())
        .then(pl.concat_str([pl.lit('"'), yuan_expr(amount), pl.lit('"')]))
        .otherwise(pl.lit("null"))
    )
    if cp.cases:
        pieces.append(_branch(cp))
    pieces += [
        pl.lit(',"target_group":{"test":' + json_const(policy.considers) + ',"values":'),
        _object(cp.considers_facts),
        pl.lit(',"sources":'),
        _sources(cp.considers_facts),
        pl.lit("}"),
    ]
    pieces.append(pl.lit(',"conditions":{'))
    for i, c in enumerate(cp.conditions):
        names = with_inputs(c.facts)
        pieces += [
            pl.lit(("," if i else "") + json_const(c.id) + ':{"holds":'),
            _bool_text(pl.col(col_name(pid, "c", c.id))),
            pl.lit(',"values":'),
            _object(names),
            pl.lit(',"sources":'),
            _sources(names),
            pl.lit("}"),
        ]
    pieces.append(pl.lit("}"))
    if cp.components:
        pieces.append(pl.lit(',"components":{'))
        for i, name in enumerate(cp.components):
            pieces += [
                pl.lit(("," if i else "") + json_const(name) + ':{"amount":"'),
                yuan_expr(pl.col(col_name(pid, "comp", name))).fill_null(""),
                pl.lit('","dropped":'),
                _bool_text(pl.col(col_name(pid, "drop", name))),
                pl.lit("}"),
            ]
        pieces.append(pl.lit("}"))
    pieces.append(pl.lit(',"parameters":' + json_const(decision_parameters(cp.params))))
    pieces.append(pl.lit(',"exclusions":['))
    excl: list[pl.Expr] = []
    for e in pack.exclusions.exclusions:
        if e.target_policy != pid:
            continue
        flag = col_name(pid, "drop", e.component) if e.component else col_name(pid, "excl", e.id)
        if flag not in ev.facts.columns:
            continue
        text = json_const(
            {
                "id": e.id,
                "effect": f"component {e.component} dropped" if e.component else "not paid",
                "in_favour_of": e.winner,
            }
        )
        excl.append(pl.when(pl.col(flag)).then(pl.lit(text)))
    if policy.one_per:
        text = json_const({"id": f"one_per_{policy.one_per.by}", "effect": "not selected"})
        excl.append(pl.when(eligible & ~candidate).then(pl.lit(text)))
    if excl:
        pieces.append(pl.concat_list(excl).list.drop_nulls().list.join(","))
    pieces.append(pl.lit("]}"))
    return pl.concat_str(pieces)


def trace_frame(pack: RulePack, ev: Evaluation, held_ids: pl.Series) -> pl.LazyFrame:
    """All trace records as a lazy frame of JSON lines: the rule records first, then the
    decisions, policy by policy (lazy, so only the columns a line reads are touched and the
    lines can be streamed to disk)."""
    rules = pl.DataFrame(
        {"line": [rule_line(pack, ev, cp) for cp in ev.policies]}, schema={"line": pl.String}
    ).lazy()
    return pl.concat([rules, *[policy_lines(pack, ev, cp, held_ids) for cp in ev.policies]])


def build_traces(pack: RulePack, ev: Evaluation, held_ids: pl.Series) -> pl.Series:
    """All trace records in memory (see :func:`trace_frame`)."""
    return trace_frame(pack, ev, held_ids).collect()["line"]


def write_traces(pack: RulePack, ev: Evaluation, held_ids: pl.Series, path: Path) -> None:
    """Stream the trace records to a JSON Lines file without holding them all in memory."""
    trace_frame(pack, ev, held_ids).sink_csv(path, include_header=False, quote_style="never")


def count_records(ev: Evaluation) -> int:
    """How many records the traces hold (rule records plus one per person × policy)."""
    considered = [pl.col(col_name(cp.id, "considered")).sum() for cp in ev.policies]
    if not considered:
        return 0
    return len(ev.policies) + int(ev.facts.select(pl.sum_horizontal(considered)).item())
