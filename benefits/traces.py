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
(:func:`benefits.events.tracing.trace_record`) builds the same records from the same
:class:`DecisionLayout` — what a policy's decision records hold, declared once.

Two forms on disk (``benefits sweep --traces parquet|jsonl|both|none``, Parquet by default):

- ``traces/`` — columnar: ``rules.parquet`` (``policy_id``, ``record``: the rule records) and
  ``part-NNNNN.parquet`` (one per partition of the sweep; the single engine writes
  ``part-00000``), one row per decision record with ``id_no``, ``household_no``,
  ``policy_id`` and ``record`` (the exact JSON text of the traces.jsonl line), sorted by
  ``id_no`` and cut into small zstd row groups so one person's records are found by reading
  one row group (:func:`read_person_records`).
- ``traces.jsonl`` — every record as one JSON line: the rule records, then the decisions
  policy by policy (for small runs and tools that want lines).

Example decision line (abridged)::

    {"record":"decision","month":"2025-01","policy_id":"old_age_allowance",…,"decision":"paid",
     "amount":"100.00","amount_branch":{"case":2,"when":"age >= 90","value":"old_age_90",
     "values":{"age":92}},"target_group":{"test":"age >= 79","values":{"age":92},
     "sources":{"persons":12}},"conditions":{"aged_80":{"holds":true,"values":{"age":92,…},
     "sources":{"persons":12}},…},"parameters":{"old_age_90":{"value":"100",
     "from":"2023-01-01"},…},"exclusions":[]}
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from benefits import idcard
from benefits.catalogue import Fact
from benefits.compiled import AmountCase, CompiledPolicy, col_name
from benefits.display import display_expr, json_const, yuan_expr
from benefits.evaluate import Evaluation
from benefits.pipeline import TRACE_AS_TEXT, ExclusionStage
from benefits.rulebook import RulePack

DECISIONS = {
    "pay": "paid",
    "credit": "credited",
    "lead": "lead",
    "notice": "notice",
}
# the decision of a person considered: the first step whose flag is false, else held (a pay
# entitlement whose person has a holding alert), else the mode's word
DECISION_STEPS = (("eligible", "not_eligible"), ("candidate", "not_selected"), ("paid", "excluded"))


def fact_kind(name: str, facts: Mapping[str, Fact]) -> str:
    """The kind a trace renders a name with (names that are not facts are flags)."""
    return facts[name].kind if name in facts else "bool"


def source_rows(names: list[str] | tuple[str, ...], facts: Mapping[str, Fact]) -> dict[str, str]:
    """Department table → the column holding its source row number, for the facts read."""
    rows: dict[str, str] = {}
    for n in names:
        fact = facts.get(n)
        if fact and fact.row and fact.source not in rows:
            rows[fact.source] = fact.row
    return rows


@dataclass(frozen=True)
class DecisionLayout:
    """What the decision records of one policy hold, for both paths (see module doc)."""

    header: dict[str, str]  # record, month, policy_id, rule_version
    mode: str
    considers: str
    considers_facts: tuple[str, ...]
    conditions: tuple[tuple[str, tuple[str, ...]], ...]  # condition id → facts shown
    cases: tuple[AmountCase, ...]
    components: tuple[str, ...]
    parameters: dict[str, dict[str, str]]
    exclusions: tuple[tuple[str, str | None, dict[str, str]], ...]  # (id, component, entry)
    one_per: dict[str, str] | None  # the entry of a member not selected
    facts: Mapping[str, Fact]  # the pack's fact catalogue: kinds and source rows shown

    def decision(self, flags: dict[str, bool], held: bool) -> str:
        """The decision word from the person's flags (eligible, candidate, paid)."""
        for flag, word in DECISION_STEPS:
            if not flags[flag]:
                return word
        return "held" if held and self.mode == "pay" else DECISIONS[self.mode]


def decision_layout(
    month: str,
    cp: CompiledPolicy,
    exclusions: tuple[ExclusionStage, ...],
    facts: Mapping[str, Fact],
) -> DecisionLayout:
    """The layout of a compiled policy's decision records for `month`."""
    policy = cp.policy
    return DecisionLayout(
        header={
            "record": "decision",
            "month": month,
            "policy_id": cp.id,
            "rule_version": policy.version,
        },
        mode=policy.mode,
        considers=policy.considers,
        considers_facts=tuple(cp.considers_facts),
        conditions=tuple((c.id, tuple(with_inputs(c.facts, facts))) for c in cp.conditions),
        cases=tuple(cp.cases),
        components=tuple(cp.components),
        parameters=decision_parameters(cp.params),
        exclusions=tuple(
            (
                e.id,
                e.component,
                {
                    "id": e.id,
                    "effect": f"component {e.component} dropped" if e.component else "not paid",
                    "in_favour_of": e.winner,
                },
            )
            for e in exclusions
            if e.target == cp.id
        ),
        one_per=(
            {"id": f"one_per_{policy.one_per.by}", "effect": "not selected"}
            if policy.one_per
            else None
        ),
        facts=facts,
    )


def _json_value(name: str, facts: Mapping[str, Fact]) -> pl.Expr:
    """A fact as a JSON-ready value: numbers and booleans typed, money/dates as text."""
    kind = fact_kind(name, facts)
    if kind in TRACE_AS_TEXT:
        return display_expr(name, kind).alias(name)
    return pl.col(name).alias(name)


def _bool_text(e: pl.Expr) -> pl.Expr:
    return pl.when(e).then(pl.lit("true")).otherwise(pl.lit("false"))


def with_inputs(names: list[str], facts: Mapping[str, Fact]) -> list[str]:
    """Facts read plus the facts they are derived from (e.g. resident → hukou fields)."""
    out: list[str] = []
    for n in names:
        for m in (n, *(facts[n].inputs if n in facts else ())):
            if m not in out:
                out.append(m)
    return out


def _object(names: list[str] | tuple[str, ...], facts: Mapping[str, Fact]) -> pl.Expr:
    if not names:
        return pl.lit("{}")
    return pl.struct([_json_value(n, facts) for n in names]).struct.json_encode()


def _sources(names: list[str] | tuple[str, ...], facts: Mapping[str, Fact]) -> pl.Expr:
    rows = source_rows(names, facts)
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


def _branch(cp: CompiledPolicy, facts: Mapping[str, Fact]) -> pl.Expr:
    """``"amount_branch"``: the amount case that chose the amount paid, with the values its
    test (and every earlier case's test) read; empty when nothing was paid."""
    number = pl.col(col_name(cp.id, "case"))
    out: pl.Expr = pl.lit("")
    for case in reversed(cp.cases):
        text = pl.concat_str([pl.lit(branch_head(case)), _object(case.facts, facts), pl.lit("}")])
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


def policy_records(
    pack: RulePack,
    ev: Evaluation,
    cp: CompiledPolicy,
    held_ids: pl.Series,
    keep: pl.Expr | None = None,
) -> pl.LazyFrame:
    """The decision records of one policy with their keys (lazy, columns of TRACE_SCHEMA)."""
    facts = ev.facts.lazy()
    if keep is not None:
        facts = facts.filter(keep)
    return facts.filter(pl.col(col_name(cp.id, "considered"))).select(
        pl.col("id_no").cast(pl.String),
        pl.col("household_no").cast(pl.String),
        pl.lit(cp.id, pl.String).alias("policy_id"),
        _line(pack, ev, cp, held_ids).alias("record"),
    )


def _line(pack: RulePack, ev: Evaluation, cp: CompiledPolicy, held_ids: pl.Series) -> pl.Expr:
    """The decision record of one person for one policy, as a string expression."""
    pid = cp.id
    layout = decision_layout(ev.month.label, cp, ev.exclusions, pack.catalogue.facts)
    pieces: list[pl.Expr] = [
        pl.lit(json_const(layout.header)[:-1] + ',"id_no":'),  # reopen the object
        _json_string("id_no"),
        pl.lit(',"household_no":'),
        _json_string("household_no"),
    ]
    flags = {flag: pl.col(col_name(pid, flag)) for flag, _ in DECISION_STEPS}
    is_held = pl.col("id_no").is_in(held_ids.implode()) if layout.mode == "pay" else pl.lit(False)
    decision = pl.when(is_held).then(pl.lit("held")).otherwise(pl.lit(DECISIONS[layout.mode]))
    for flag, word in reversed(DECISION_STEPS):
        decision = pl.when(~flags[flag]).then(pl.lit(word)).otherwise(decision)
    pieces += [pl.lit(',"decision":"'), decision, pl.lit('","amount":')]
    amount = pl.col(col_name(pid, "final_amount"))
    pieces.append(
        pl.when(amount.is_not_null())
        .then(pl.concat_str([pl.lit('"'), yuan_expr(amount), pl.lit('"')]))
        .otherwise(pl.lit("null"))
    )
    if layout.cases:
        pieces.append(_branch(cp, layout.facts))
    pieces += [
        pl.lit(',"target_group":{"test":' + json_const(layout.considers) + ',"values":'),
        _object(layout.considers_facts, layout.facts),
        pl.lit(',"sources":'),
        _sources(layout.considers_facts, layout.facts),
        pl.lit("}"),
    ]
    pieces.append(pl.lit(',"conditions":{'))
    for i, (cid, names) in enumerate(layout.conditions):
        pieces += [
            pl.lit(("," if i else "") + json_const(cid) + ':{"holds":'),
            _bool_text(pl.col(col_name(pid, "c", cid))),
            pl.lit(',"values":'),
            _object(names, layout.facts),
            pl.lit(',"sources":'),
            _sources(names, layout.facts),
            pl.lit("}"),
        ]
    pieces.append(pl.lit("}"))
    if layout.components:
        pieces.append(pl.lit(',"components":{'))
        for i, name in enumerate(layout.components):
            pieces += [
                pl.lit(("," if i else "") + json_const(name) + ':{"amount":"'),
                yuan_expr(pl.col(col_name(pid, "comp", name))).fill_null(""),
                pl.lit('","dropped":'),
                _bool_text(pl.col(col_name(pid, "drop", name))),
                pl.lit("}"),
            ]
        pieces.append(pl.lit("}"))
    pieces.append(pl.lit(',"parameters":' + json_const(layout.parameters)))
    pieces.append(pl.lit(',"exclusions":['))
    excl: list[pl.Expr] = []
    for eid, component, entry in layout.exclusions:
        flag = col_name(pid, "drop", component) if component else col_name(pid, "excl", eid)
        excl.append(pl.when(pl.col(flag)).then(pl.lit(json_const(entry))))
    if layout.one_per:
        not_selected = flags["eligible"] & ~flags["candidate"]
        excl.append(pl.when(not_selected).then(pl.lit(json_const(layout.one_per))))
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


# -- the columnar form ----------------------------------------------------------------------------

TRACE_FORMATS = ("parquet", "jsonl", "both", "none")
TRACES_DIR = "traces"
JSONL_NAME = "traces.jsonl"
RULES_FILE = "rules.parquet"
PART_GLOB = "part-*.parquet"
# rows per Parquet row group: a lookup decompresses one group (~4 MB of records), while the
# file stays about 20 times smaller than traces.jsonl; zstd level 1 writes fastest for a size
# within 2 % of the default level's
ROW_GROUP_ROWS = 4096
ZSTD_LEVEL = 1
TRACE_SCHEMA = {
    "id_no": pl.String,
    "household_no": pl.String,
    "policy_id": pl.String,
    "record": pl.String,
}


def decision_records(
    pack: RulePack, ev: Evaluation, held_ids: pl.Series, keep: pl.Expr | None = None
) -> pl.LazyFrame:
    """Every decision record of an evaluation, policy by policy (the traces.jsonl order)."""
    parts = [policy_records(pack, ev, cp, held_ids, keep) for cp in ev.policies]
    return pl.concat(parts) if parts else pl.LazyFrame(schema=TRACE_SCHEMA)


def sort_records(frame: pl.DataFrame) -> pl.DataFrame:
    """Decision records sorted by ``id_no``, keeping the policy order within a person.

    IDs of 17 digits and a check character (every accepted person's) are sorted by a number
    that orders them as their text does — the body times 11 plus the check character (X = 10,
    after 9 as in ASCII) — four times faster than comparing texts; any other ID sorts as text.
    """
    ids = frame["id_no"]
    if ids.null_count() or not ids.str.contains(idcard.ID_PATTERN).all():
        return frame.sort("id_no", maintain_order=True, nulls_last=True)
    id_no = pl.col("id_no")
    key = idcard.id_key(id_no) * 11 + idcard.given_check_expr(id_no)
    return frame.sort(key, maintain_order=True)


def trace_table(
    pack: RulePack, ev: Evaluation, held_ids: pl.Series, keep: pl.Expr | None = None
) -> pl.DataFrame:
    """One evaluation's decision records (no rule records), sorted by ``id_no``.

    Columns ``id_no``, ``household_no``, ``policy_id``, ``record``. `keep` filters the
    evaluated persons first (a partition keeps the members of its own households).
    """
    return sort_records(decision_records(pack, ev, held_ids, keep).collect(engine="streaming"))


def rule_records(pack: RulePack, ev: Evaluation) -> list[str]:
    """The rule records, one per policy in pack order (they depend on the pack and month only,
    so every partition of a sweep gives the same list)."""
    return [rule_line(pack, ev, cp) for cp in ev.policies]


def write_trace_part(frame: pl.DataFrame, folder: Path, index: int) -> Path:
    """Write sorted decision records as ``folder/part-{index:05d}.parquet``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"part-{index:05d}.parquet"
    frame.select(list(TRACE_SCHEMA)).write_parquet(
        path,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
        statistics=True,
    )
    return path


def write_trace_rules(records: list[str], folder: Path) -> Path:
    """Write the rule records as ``folder/rules.parquet`` (columns ``policy_id``, ``record``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / RULES_FILE
    ids = [json.loads(r)["policy_id"] for r in records]
    pl.DataFrame(
        {"policy_id": ids, "record": records}, schema={"policy_id": pl.String, "record": pl.String}
    ).write_parquet(path, compression="zstd")
    return path


def write_jsonl(rules: list[str], decisions: pl.DataFrame | pl.LazyFrame, path: Path) -> None:
    """traces.jsonl from rule records and decision records (in the order given)."""
    lines = pl.concat(
        [
            pl.LazyFrame({"line": rules}, schema={"line": pl.String}),
            decisions.lazy().select(pl.col("record").alias("line")),
        ]
    )
    lines.sink_csv(path, include_header=False, quote_style="never")


def write_sweep_traces(
    pack: RulePack, ev: Evaluation, held_ids: pl.Series, out: Path, fmt: str
) -> None:
    """The single engine's traces in `out` in format `fmt` (see :data:`TRACE_FORMATS`); the
    forms not asked for are removed, so no other run's traces are left beside these."""
    if fmt not in TRACE_FORMATS:
        raise ValueError(f"traces must be one of {', '.join(TRACE_FORMATS)}, got {fmt!r}")
    out = Path(out)
    folder, jsonl = out / TRACES_DIR, out / JSONL_NAME
    shutil.rmtree(folder, ignore_errors=True)
    jsonl.unlink(missing_ok=True)
    if fmt == "none":
        return
    if fmt == "jsonl":
        write_traces(pack, ev, held_ids, jsonl)
        return
    rules = rule_records(pack, ev)
    records = decision_records(pack, ev, held_ids).collect(engine="streaming")
    if fmt == "both":
        write_jsonl(rules, records, jsonl)
    write_trace_rules(rules, folder)
    write_trace_part(sort_records(records), folder, 0)


def has_columnar(out: Path) -> bool:
    """Whether the sweep folder `out` holds columnar traces."""
    return (Path(out) / TRACES_DIR / RULES_FILE).is_file()


def trace_parts(out: Path) -> list[Path]:
    """The decision files of a sweep folder's columnar traces, in partition order."""
    return sorted((Path(out) / TRACES_DIR).glob(PART_GLOB))


def jsonl_lines(path: Path) -> pl.DataFrame:
    """The lines of a traces.jsonl file (sealed or not) as one text column ``line``."""
    from benefits.sealedfiles import read_csv

    return read_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        schema_overrides={"line": pl.String},
        infer_schema=False,
    )


def scan_trace_parts(parts: list[Path]) -> pl.LazyFrame:
    """The trace parts as one lazy frame: scanned in place (row-group statistics prune a
    lookup), or opened whole when sealed (:mod:`benefits.sealedfiles`)."""
    from benefits.sealedfiles import is_sealed, read_parquet

    if not any(is_sealed(p) for p in parts):
        return pl.scan_parquet(parts)
    return pl.concat([read_parquet(p).lazy() for p in parts])


def read_trace_rules(out: Path) -> pl.Series:
    """The rule records (JSON texts) of a sweep folder's columnar traces, sealed or not."""
    from benefits.sealedfiles import read_parquet

    return read_parquet(Path(out) / TRACES_DIR / RULES_FILE)["record"]


def read_person_records(out: Path, id_no: str) -> list[str]:
    """The decision records (JSON texts, in policy order) of one person in a sweep folder:
    from the columnar traces, else from traces.jsonl (older runs); [] when it kept none."""
    out = Path(out)
    if has_columnar(out):
        parts = trace_parts(out)
        if not parts:
            return []
        found = scan_trace_parts(parts).filter(pl.col("id_no") == id_no).select("record").collect()
        return found["record"].to_list()
    jsonl = out / JSONL_NAME
    if not jsonl.is_file():
        return []
    needle = '"id_no":' + json.dumps(id_no, ensure_ascii=False) + ","
    lines = jsonl_lines(jsonl).filter(
        ~pl.col("line").str.starts_with('{"record":"rule"')
        & pl.col("line").str.contains(needle, literal=True)
    )
    return [ln for ln in lines["line"] if json.loads(ln).get("id_no") == id_no]


def read_rule_records(out: Path) -> dict[str, dict]:
    """The rule records of a sweep folder by policy id (columnar, else traces.jsonl)."""
    out = Path(out)
    if has_columnar(out):
        texts = read_trace_rules(out)
    elif (out / JSONL_NAME).is_file():
        texts = jsonl_lines(out / JSONL_NAME).filter(
            pl.col("line").str.starts_with('{"record":"rule"')
        )["line"]
    else:
        return {}
    rules = [json.loads(t) for t in texts]
    return {r["policy_id"]: r for r in rules}


def read_all_records(out: Path) -> pl.Series:
    """Every record of a sweep folder's traces as JSON texts: the rule records, then the
    decisions (columnar: by resident ID; traces.jsonl: in file order)."""
    out = Path(out)
    if has_columnar(out):
        rules = read_trace_rules(out)
        parts = trace_parts(out)
        decisions = (
            scan_trace_parts(parts).select("record").collect()["record"]
            if parts
            else pl.Series("record", [], pl.String)
        )
        return pl.concat([rules, decisions]).rename("line")
    if (out / JSONL_NAME).is_file():
        return jsonl_lines(out / JSONL_NAME)["line"]
    return pl.Series("line", [], pl.String)
