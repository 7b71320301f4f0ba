"""Audit traces: one JSON line per person × policy considered, built as a by-product.

Every line says the decision, each condition in the handbook's words with whether it held,
the fact values it read and the source rows (table → 1-based row number in the delivered
file), the parameters with their effective dates, the amount formula and components, the
exclusions applied, the rule id, version, file and legal basis. Lines are assembled with
Polars string expressions (no Python loop per person).

Example line (abridged)::

    {"month":"2025-01","id_no":"330106…","policy_id":"old_age_allowance","decision":"paid",
     "amount":"60.00","conditions":[{"id":"aged_80","label":"已满80周岁… / 80th birthday…",
     "test":"age >= 80","holds":true,"values":{"age":80},"sources":{"persons":12}}], …}
"""

from __future__ import annotations

import polars as pl

from benefits.evaluate import (
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


def policy_lines(
    pack: RulePack, ev: Evaluation, cp: CompiledPolicy, held_ids: pl.Series
) -> pl.Series:
    """The trace lines of one policy (one per person considered)."""
    pid, policy = cp.id, cp.policy
    facts = ev.facts.filter(pl.col(col_name(pid, "considered")))
    if facts.is_empty():
        return pl.Series("line", [], pl.String)
    header = json_const(
        {
            "month": ev.month.label,
            "policy_id": pid,
            "policy_number": policy.number,
            "policy_name": policy.name.text(),
            "mode": policy.mode,
            "rule": {
                "id": pid,
                "version": policy.version,
                "file": policy.source_file,
                "rule_pack": pack.version,
                "basis": [b.model_dump(exclude_none=True) for b in policy.basis],
            },
        }
    )[:-1]  # reopen the object
    pieces: list[pl.Expr] = [
        pl.lit(header + ',"id_no":'),
        pl.struct([pl.col("id_no")]).struct.json_encode().str.slice(9).str.head(-1),
        pl.lit(',"household_no":'),
        pl.struct([pl.col("household_no")]).struct.json_encode().str.slice(16).str.head(-1),
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
    pieces.append(pl.lit(',"conditions":['))
    for i, c in enumerate(cp.conditions):
        head = json_const({"id": c.id, "label": c.label, "test": c.test})[:-1]
        pieces += [
            pl.lit(("," if i else "") + head + ',"holds":'),
            _bool_text(pl.col(col_name(pid, "c", c.id))),
            pl.lit(',"values":'),
            _object(c.facts),
            pl.lit(',"sources":'),
            _sources(c.facts),
            pl.lit("}"),
        ]
    pieces.append(pl.lit("]"))
    pieces.append(
        pl.lit(
            ',"amount_rule":'
            + json_const(
                {
                    "formula": policy.amount_text(),
                    "label": policy.amount_label.text() if policy.amount_label else None,
                }
            )
        )
    )
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
    pieces.append(pl.lit(',"parameters":' + json_const(cp.params)))
    pieces.append(pl.lit(',"exclusions":['))
    excl: list[pl.Expr] = []
    for e in pack.exclusions.exclusions:
        if e.target_policy != pid:
            continue
        flag = (
            col_name(pid, "drop", e.component) if e.component else col_name(pid, "excl", e.id)
        )
        if flag not in ev.facts.columns:
            continue
        text = json_const(
            {
                "id": e.id,
                "label": e.label.text(),
                "effect": f"component {e.component} dropped" if e.component else "not paid",
                "in_favour_of": e.winner,
                "basis": e.basis,
            }
        )
        excl.append(pl.when(pl.col(flag)).then(pl.lit(text)))
    if policy.one_per:
        text = json_const(
            {
                "id": "one_per_" + policy.one_per.by,
                "label": policy.one_per.label.text(),
                "effect": "not selected",
            }
        )
        excl.append(pl.when(eligible & ~candidate).then(pl.lit(text)))
    if excl:
        pieces.append(pl.concat_list(excl).list.drop_nulls().list.join(","))
    pieces.append(pl.lit("]}"))
    return facts.select(pl.concat_str(pieces).alias("line"))["line"]


def build_traces(pack: RulePack, ev: Evaluation, held_ids: pl.Series) -> pl.Series:
    """All trace lines of a sweep, ordered by policy number then id_no."""
    parts = []
    for cp in ev.policies:
        lines = policy_lines(pack, ev, cp, held_ids)
        parts.append(lines)
    if not parts:
        return pl.Series("line", [], pl.String)
    return pl.concat(parts)
