"""What-if: the impact of a rule change on one month's records, before anything is paid.

Both packs — the base (today's rules) and the proposed one (another pack folder, or the base
with new parameter values from an effective date) — are run over the same month's delivery:
the extracts are ingested and merged **once** and evaluated twice (so a what-if costs well
under two sweeps). The comparison gives

- the cost (pay + credit) per policy for the month and for a year (the month × 12), base →
  proposed;
- who gains, loses, starts or stops, by policy, community and policy group, with the
  distribution of the changes (per person, all policies together);
- the largest individual changes with the two decision traces side by side;
- the households newly meeting or failing each condition that reads a changed parameter (e.g.
  newly below the dibao standard);

as tables (terminal, CSV, Parquet), a JSON summary and an HTML/PDF report
(:mod:`benefits.whatifreport`). Names and IDs are masked in everything it writes.

Example:
    >>> from benefits.rulebook import load_pack
    >>> base = load_pack()
    >>> proposed = with_values(base, {"dibao_std": "1400"}, dt.date(2025, 1, 1))
    >>> w = run_whatif(Path("datasets/sample"), "2025-01", base, proposed)  # doctest: +SKIP
    >>> w.cost.filter(pl.col("policy_id") == "dibao_allowance")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl

from benefits.compiled import col_name
from benefits.display import fen_to_decimal, yuan_expr
from benefits.errors import BenefitsError
from benefits.evaluate import Evaluation, evaluate, merged_facts
from benefits.expr import names_in
from benefits.idcard import mask_id_expr
from benefits.ingest import load_extracts
from benefits.months import check_sweep_month
from benefits.period import BenefitMonth
from benefits.private import lock_down, private_dir
from benefits.progress import Progress, no_progress
from benefits.rulebook import Parameter, RulePack
from benefits.sweep import finish_entitlements
from benefits.traces import policy_lines

COST_MODES = ("pay", "credit")
STATUSES = ("start", "stop", "gain", "lose", "same")
# edges (yuan) of the distribution of per-person monthly changes; zero is its own bin
BINS = (-1000, -500, -200, -100, -50, 0, 50, 100, 200, 500, 1000)


class WhatIfError(BenefitsError, ValueError):
    """A what-if that cannot be run as asked (one clear line)."""


# ----------------------------------------------------------------------------- proposals


def parse_settings(items: list[str]) -> dict[str, Decimal | str]:
    """``["dibao_std=1400", "ta_rate=0.6"]`` → ``{"dibao_std": Decimal("1400"), …}``."""
    out: dict[str, Decimal | str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise WhatIfError(f"--set takes NAME=VALUE, e.g. dibao_std=1400; got {item!r}")
        if name in out:
            raise WhatIfError(f"--set gives '{name}' twice")
        try:
            out[name] = Decimal(value)
        except InvalidOperation:
            out[name] = value
        if isinstance(out[name], Decimal) and not out[name].is_finite():  # type: ignore[union-attr]
            raise WhatIfError(f"--set {name}: {value!r} is not a number")
    return out


def with_values(pack: RulePack, values: dict[str, Decimal | int | str], start: dt.date) -> RulePack:
    """A proposed copy of `pack` in which each named parameter gets a new value effective
    `start` (the values before it stay as they are). Its digest says what was proposed."""
    if not values:
        raise WhatIfError("no parameter values proposed")
    parameters = dict(pack.parameters)
    for name, value in values.items():
        old = parameters.get(name)
        if old is None:
            raise WhatIfError(f"unknown parameter '{name}' (see `benefits rules doc`)")
        if isinstance(value, int | str) and re.fullmatch(
            r"-?[0-9]+(\.[0-9]+)?", str(value).strip()
        ):
            value = Decimal(str(value).strip())
        if isinstance(value, str) and not isinstance(next(iter(old.values.values())), str):
            raise WhatIfError(f"parameter '{name}' is a number; got {value!r}")
        kept = {d: v for d, v in old.values.items() if d < start}
        parameters[name] = Parameter(
            label=old.label, unit=old.unit, basis=f"what-if proposal; was: {old.basis}",
            published=False, values={**kept, start: value},
        )  # fmt: skip
    canonical = json.dumps({k: str(v) for k, v in sorted(values.items())}) + start.isoformat()
    digest = hashlib.sha256(f"{pack.digest}+{canonical}".encode()).hexdigest()
    return RulePack(
        pack.folder, pack.info, parameters, pack.policies, pack.exclusions, pack.alerts,
        digest, pack.catalogue, pack.events,
    )  # fmt: skip


def _same_merge(a: RulePack, b: RulePack) -> bool:
    """Whether two packs merge a delivery into the same facts (then one merge serves both)."""
    if a.info.district_code != b.info.district_code:
        return False
    if a.info.status_precedence != b.info.status_precedence:
        return False
    if a.catalogue is b.catalogue:
        return True
    for name in ("tables.yaml", "facts.yaml"):
        fa, fb = Path(a.folder) / name, Path(b.folder) / name
        if fa.read_bytes() != fb.read_bytes():
            return False
    return True


# ----------------------------------------------------------------------------- the result


@dataclass
class WhatIf:
    """The comparison of two packs over one month's records (see the module doc)."""

    month: BenefitMonth
    base: dict[str, str]
    proposed: dict[str, str]
    parameters: list[dict[str, Any]]  # the parameters whose value for the month changed
    cost: pl.DataFrame  # per policy: people and amounts, base → proposed, month and year
    changes: pl.DataFrame  # person × policy whose amount or entitlement changed (IDs kept in
    # memory for grouping; written masked only)
    by_policy: pl.DataFrame
    by_community: pl.DataFrame
    by_group: pl.DataFrame
    distribution: pl.DataFrame  # per-person change bins
    thresholds: pl.DataFrame  # conditions reading a changed parameter: households crossing
    largest: list[dict[str, Any]]  # the largest individual changes, both traces side by side
    persons: int = 0
    largest_ids: list[str] = field(default_factory=list)  # whose traces `largest` shows
    timings: dict[str, float] = field(default_factory=dict)

    def totals(self) -> dict[str, str]:
        """Pay + credit for the month and the year, base → proposed."""
        paid = self.cost.filter(pl.col("mode").is_in(COST_MODES))
        base = int(paid["base_fen"].sum() or 0)
        prop = int(paid["proposed_fen"].sum() or 0)
        return {
            "base_month": str(fen_to_decimal(base)),
            "proposed_month": str(fen_to_decimal(prop)),
            "difference_month": str(fen_to_decimal(prop - base)),
            "base_year": str(fen_to_decimal(base * 12)),
            "proposed_year": str(fen_to_decimal(prop * 12)),
            "difference_year": str(fen_to_decimal((prop - base) * 12)),
        }

    def counts(self) -> dict[str, int]:
        """People (not rows) by what happens to them, all policies together."""
        per = self.person_changes()
        return {
            "persons_evaluated": self.persons,
            "persons_changed": per.height,
            "persons_better_off": per.filter(pl.col("change_fen") > 0).height,
            "persons_worse_off": per.filter(pl.col("change_fen") < 0).height,
            **{
                f"{s}s": int(self.changes.filter(pl.col("status") == s).height)
                for s in STATUSES[:4]
            },
        }

    def person_changes(self) -> pl.DataFrame:
        """Per person with a change: the monthly change of pay + credit (all policies)."""
        return person_totals(self.changes)

    def summary(self) -> dict[str, Any]:
        """Everything in plain JSON-ready values (money as exact strings)."""
        return {
            "month": self.month.label,
            "base": self.base,
            "proposed": self.proposed,
            "parameters": self.parameters,
            "totals": self.totals(),
            "counts": self.counts(),
            "cost_by_policy": _money_rows(self.cost),
            "changes_by_policy": _money_rows(self.by_policy),
            "changes_by_group": _money_rows(self.by_group),
            "changes_by_community": _money_rows(self.by_community),
            "distribution": self.distribution.to_dicts(),
            "thresholds": self.thresholds.to_dicts(),
            "largest_changes": self.largest,
            "stage_seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def tables(self) -> dict[str, pl.DataFrame]:
        """The tables written by :meth:`write` (money in yuan, two decimals)."""
        return {
            "cost_by_policy": _yuan(self.cost),
            "changes_by_policy": _yuan(self.by_policy),
            "changes_by_group": _yuan(self.by_group),
            "changes_by_community": _yuan(self.by_community),
            "distribution": self.distribution,
            "thresholds": self.thresholds,
            "changes": _yuan(self.changes.drop("id_no", "household_no")),  # masked only
        }

    def write(self, out: Path, formats: tuple[str, ...] = ("csv", "parquet")) -> list[Path]:
        """Each table as CSV and/or Parquet plus summary.json, into a private folder."""
        out = Path(out)
        private_dir(out)
        written: list[Path] = []
        for name, frame in self.tables().items():
            if "csv" in formats:
                frame.write_csv(out / f"{name}.csv")
                written.append(out / f"{name}.csv")
            if "parquet" in formats:
                frame.write_parquet(out / f"{name}.parquet", statistics=False)
                written.append(out / f"{name}.parquet")
        summary = {k: v for k, v in self.summary().items() if k != "stage_seconds"}
        (out / "summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        written.append(out / "summary.json")
        lock_down(out)
        return written


def _money_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.endswith("_fen")]


def _yuan(frame: pl.DataFrame) -> pl.DataFrame:
    """`*_fen` integer columns as exact yuan strings named without the suffix."""
    money = _money_columns(frame)
    return frame.with_columns(
        [yuan_expr(pl.col(c)).alias(c.removesuffix("_fen")) for c in money]
    ).drop(money)


def _money_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return _yuan(frame).to_dicts()


# ----------------------------------------------------------------------------- running


def run_whatif(
    data: Path,
    month: str,
    base: RulePack,
    proposed: RulePack,
    *,
    top: int = 10,
    progress: Progress = no_progress,
) -> WhatIf:
    """Price `proposed` against `base` on the delivery in `data` for `month`."""
    timings: dict[str, float] = {}
    bm = check_sweep_month(month, base, None)
    check_sweep_month(month, proposed, None)
    progress("ingest: reading and validating extracts")
    t = time.perf_counter()
    extracts = load_extracts(Path(data), base.catalogue.tables)
    timings["ingest"] = time.perf_counter() - t
    progress("merge: facts of the month")
    t = time.perf_counter()
    facts = merged_facts(base, extracts, bm)
    timings["merge"] = time.perf_counter() - t
    progress("evaluate: base pack")
    t = time.perf_counter()
    ev_base = evaluate(base, extracts, bm, facts=facts)
    timings["evaluate base"] = time.perf_counter() - t
    progress("evaluate: proposed pack")
    t = time.perf_counter()
    same = _same_merge(base, proposed)
    if same:
        ev_prop = evaluate(proposed, extracts, bm, facts=facts)
    else:  # a proposal with other tables or facts: read and merge with its own catalogue
        ev_prop = evaluate(proposed, load_extracts(Path(data), proposed.catalogue.tables), bm)
    timings["evaluate proposed"] = time.perf_counter() - t
    progress("compare")
    t = time.perf_counter()
    ent_base, held_base = finish_entitlements(ev_base)
    ent_prop, held_prop = finish_entitlements(ev_prop)
    pairs = _pairs(ent_base, ent_prop)
    changes = pairs.filter(pl.col("status") != "same")
    result = WhatIf(
        month=bm,
        base=_pack_info(base),
        proposed=_pack_info(proposed),
        parameters=changed_parameters(ev_base, ev_prop, base, proposed),
        cost=_cost(base, proposed, pairs),
        changes=changes,
        by_policy=_by(changes, ["policy_id", "policy_number"]).sort("policy_number"),
        by_community=_by(changes, ["hukou_community"]).sort("hukou_community"),
        by_group=_by(
            changes.join(_groups(base, proposed), on="policy_id", how="left"), ["group"]
        ).sort("group"),
        distribution=_distribution(changes),
        thresholds=_thresholds(ev_base, ev_prop, base, proposed, same),
        largest=[],
        persons=ev_base.facts.height,
    )
    timings["compare"] = time.perf_counter() - t
    progress("traces of the largest changes")
    t = time.perf_counter()
    result.largest, result.largest_ids = _largest(
        changes, top, (base, ev_base, held_base), (proposed, ev_prop, held_prop)
    )
    timings["traces"] = time.perf_counter() - t
    result.timings = timings
    return result


def _pack_info(pack: RulePack) -> dict[str, str]:
    return {"folder": str(pack.folder), "version": pack.version, "hash": pack.digest}


def changed_parameters(
    ev_base: Evaluation, ev_prop: Evaluation, base: RulePack, proposed: RulePack
) -> list[dict[str, Any]]:
    """Parameters whose value in force for the month differs (with their effective dates)."""
    out = []
    for name in sorted(base.parameters.keys() | proposed.parameters.keys()):
        a, b = ev_base.params.get(name), ev_prop.params.get(name)
        if (a or {}).get("value") == (b or {}).get("value"):
            continue
        param = proposed.parameters.get(name) or base.parameters[name]
        out.append({
            "name": name, "label": param.label.text(), "unit": param.unit,
            "base": {"value": a["value"], "from": a["from"]} if a else None,
            "proposed": {"value": b["value"], "from": b["from"]} if b else None,
        })  # fmt: skip
    return out


def _pairs(ent_base: pl.DataFrame, ent_prop: pl.DataFrame) -> pl.DataFrame:
    """One row per person × policy entitled under either pack: both amounts and the status."""
    keep = ["id_no", "household_no", "hukou_community", "masked_name", "policy_id",
            "policy_number", "mode", "amount_fen", "held"]  # fmt: skip
    a = ent_base.select(keep).rename({"amount_fen": "base_fen", "held": "base_held"})
    b = ent_prop.select(keep).rename({"amount_fen": "proposed_fen", "held": "proposed_held"})
    joined = a.join(b, on=["id_no", "policy_id"], how="full", coalesce=True, suffix="_p")
    for c in ("household_no", "hukou_community", "masked_name", "policy_number", "mode"):
        joined = joined.with_columns(pl.coalesce(c, f"{c}_p").alias(c)).drop(f"{c}_p")
    base_fen, prop_fen = pl.col("base_fen"), pl.col("proposed_fen")
    change = prop_fen.fill_null(0) - base_fen.fill_null(0)
    status = (
        pl.when(base_fen.is_null()).then(pl.lit("start"))
        .when(prop_fen.is_null()).then(pl.lit("stop"))
        .when(change > 0).then(pl.lit("gain"))
        .when(change < 0).then(pl.lit("lose"))
        .otherwise(pl.lit("same"))
    )  # fmt: skip
    return (
        joined.with_columns(change_fen=change, status=status)
        .with_columns(masked_id=mask_id_expr(pl.col("id_no")))
        .select(
            "id_no", "household_no", "masked_id", "masked_name", "hukou_community", "policy_id",
            "policy_number", "mode", "status", "base_fen", "proposed_fen", "change_fen",
            "base_held", "proposed_held",
        )
        .sort(["policy_number", "id_no"])
    )  # fmt: skip


def _groups(base: RulePack, proposed: RulePack) -> pl.DataFrame:
    groups = {p.id: p.group for p in base.policies} | {p.id: p.group for p in proposed.policies}
    return pl.DataFrame(
        {"policy_id": list(groups), "group": list(groups.values())},
        schema={"policy_id": pl.String, "group": pl.String},
    )


def _cost(base: RulePack, proposed: RulePack, pairs: pl.DataFrame) -> pl.DataFrame:
    """People and amounts per policy under each pack, the difference, and ×12 for a year."""
    policies = {p.id: p for p in proposed.policies} | {p.id: p for p in base.policies}
    agg = pairs.group_by("policy_id").agg(
        base_people=pl.col("base_fen").is_not_null().sum(),
        proposed_people=pl.col("proposed_fen").is_not_null().sum(),
        base_fen=pl.col("base_fen").sum(),
        proposed_fen=pl.col("proposed_fen").sum(),
    )
    found = {r["policy_id"]: r for r in agg.iter_rows(named=True)}
    rows = []
    for pid, p in sorted(policies.items(), key=lambda kv: kv[1].number):
        r = found.get(pid, {})
        b, n = int(r.get("base_fen") or 0), int(r.get("proposed_fen") or 0)
        rows.append({
            "policy_number": p.number, "policy_id": pid, "name": p.name.text(),
            "mode": p.mode, "base_people": int(r.get("base_people") or 0),
            "proposed_people": int(r.get("proposed_people") or 0),
            "base_fen": b, "proposed_fen": n, "difference_fen": n - b,
            "base_year_fen": 12 * b, "proposed_year_fen": 12 * n,
            "difference_year_fen": 12 * (n - b),
        })  # fmt: skip
    schema = {"policy_number": pl.Int64, "policy_id": pl.String, "name": pl.String,
              "mode": pl.String, "base_people": pl.Int64, "proposed_people": pl.Int64,
              **{k: pl.Int64 for k in ("base_fen", "proposed_fen", "difference_fen",
                                       "base_year_fen", "proposed_year_fen",
                                       "difference_year_fen")}}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def person_totals(changes: pl.DataFrame) -> pl.DataFrame:
    """Per person: `change_fen` of pay + credit (what the person is paid more or less each
    month) and `any_fen` of every mode (leads and notices too), for ranking."""
    paid = pl.col("mode").is_in(COST_MODES)
    return changes.group_by("id_no").agg(
        pl.col("change_fen").filter(paid).sum().alias("change_fen"),
        pl.col("change_fen").abs().sum().alias("any_fen"),
        pl.col("masked_id").first(),
        pl.col("masked_name").first(),
        pl.col("hukou_community").first(),
    )


def _by(changes: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Counts by status and the distribution of the amount changes, per group of `keys`."""
    delta = pl.col("change_fen")
    return changes.group_by(keys).agg(
        *[(pl.col("status") == s).sum().cast(pl.Int64).alias(s) for s in STATUSES[:4]],
        pl.len().cast(pl.Int64).alias("changed"),
        delta.sum().alias("net_change_fen"),
        delta.min().alias("min_change_fen"),
        delta.quantile(0.1, "nearest").cast(pl.Int64).alias("p10_change_fen"),
        delta.quantile(0.5, "nearest").cast(pl.Int64).alias("median_change_fen"),
        delta.quantile(0.9, "nearest").cast(pl.Int64).alias("p90_change_fen"),
        delta.max().alias("max_change_fen"),
    )


def _bin_label(i: int) -> str:
    edges = BINS
    if i == 0:
        return f"< {edges[0]}"
    if i == len(edges):
        return f"> {edges[-1]}"
    return f"{edges[i - 1]} … {edges[i]}"


def _distribution(changes: pl.DataFrame) -> pl.DataFrame:
    """People by their monthly change of pay + credit in yuan (all policies together), in
    fixed bins: `lo … hi` holds changes > lo and ≤ hi for gains, ≥ lo and < hi for losses."""
    per = person_totals(changes).filter(pl.col("change_fen") != 0)
    counts = [0] * (len(BINS) + 1)
    for fen in per["change_fen"].to_list():
        y = Decimal(fen) / 100
        if y < 0:
            i = next((k for k, e in enumerate(BINS) if y < e), len(BINS))
        else:
            i = next((k for k, e in enumerate(BINS) if y <= e), len(BINS))
        counts[i] += 1
    return pl.DataFrame(
        {"change_yuan": [_bin_label(i) for i in range(len(counts))], "people": counts},
        schema={"change_yuan": pl.String, "people": pl.Int64},
    )


def _thresholds(
    ev_base: Evaluation, ev_prop: Evaluation, base: RulePack, proposed: RulePack, aligned: bool
) -> pl.DataFrame:
    """For each condition that reads a parameter whose value changed: the households and
    people who newly meet it and who newly fail it (among those the policy considers)."""
    changed = {
        n for n in base.parameters.keys() | proposed.parameters.keys()
        if (ev_base.params.get(n) or {}).get("value") != (ev_prop.params.get(n) or {}).get("value")
    }  # fmt: skip
    rows: list[dict[str, Any]] = []
    in_base = {cp.id: cp for cp in ev_base.policies}
    for cp in ev_prop.policies:
        old = in_base.get(cp.id)
        if old is None:
            continue
        old_conds = {c.id for c in old.conditions}
        for cond in cp.policy.conditions:
            used = [n for n in names_in(cond.when) if n in changed]
            if not used or cond.id not in old_conds:
                continue
            c = col_name(cp.id, "c", cond.id)
            considered = col_name(cp.id, "considered")
            key = "__i" if aligned else "id_no"
            a = ev_base.facts.select(key, "household_no", pl.col(c).fill_null(False).alias("a"),
                                     pl.col(considered).alias("ka"))  # fmt: skip
            b = ev_prop.facts.select(key, pl.col(c).fill_null(False).alias("b"),
                                     pl.col(considered).alias("kb"))  # fmt: skip
            both = a.join(b, on=key, how="inner").filter(pl.col("ka") | pl.col("kb"))
            meet = both.filter(~pl.col("a") & pl.col("b"))
            fail = both.filter(pl.col("a") & ~pl.col("b"))
            rows.append({
                "policy_id": cp.id, "condition": cond.id, "label": cond.label.text(),
                "test": cond.when, "parameters": ", ".join(used),
                "households_newly_meeting": meet["household_no"].n_unique(),
                "people_newly_meeting": meet.height,
                "households_newly_failing": fail["household_no"].n_unique(),
                "people_newly_failing": fail.height,
            })  # fmt: skip
    schema = {"policy_id": pl.String, "condition": pl.String, "label": pl.String,
              "test": pl.String, "parameters": pl.String,
              "households_newly_meeting": pl.Int64, "people_newly_meeting": pl.Int64,
              "households_newly_failing": pl.Int64, "people_newly_failing": pl.Int64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def _decision_records(
    side: tuple[RulePack, Evaluation, pl.Series], ids: list[str], policies: set[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The decision records of `ids` for `policies` under one pack, by (id_no, policy)."""
    pack, ev, held = side
    sub = replace(ev, facts=ev.facts.filter(pl.col("id_no").is_in(ids)))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for cp in sub.policies:
        if cp.id not in policies:
            continue
        for line in policy_lines(pack, sub, cp, held).collect()["line"]:
            record = json.loads(line)
            out[(record["id_no"], cp.id)] = record
    return out


def _side_by_side(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows (what, base, proposed, differs) comparing two decision records of one policy."""
    a, b = a or {}, b or {}
    rows: list[tuple[str, Any, Any]] = [
        ("decision", a.get("decision", "not considered"), b.get("decision", "not considered")),
        ("amount", a.get("amount"), b.get("amount")),
    ]
    if "amount_branch" in a or "amount_branch" in b:
        rows.append(("amount case", _branch(a), _branch(b)))
    conds = list((a.get("conditions") or {}).keys())
    conds += [c for c in (b.get("conditions") or {}) if c not in conds]
    for c in conds:
        ca, cb = (a.get("conditions") or {}).get(c), (b.get("conditions") or {}).get(c)
        rows.append((f"condition {c}", _cond(ca), _cond(cb)))
    params = list((a.get("parameters") or {}).keys())
    params += [p for p in (b.get("parameters") or {}) if p not in params]
    for p in params:
        pa, pb = (a.get("parameters") or {}).get(p), (b.get("parameters") or {}).get(p)
        rows.append((f"parameter {p}", _param(pa), _param(pb)))
    ex_a = ", ".join(e.get("id", "") for e in a.get("exclusions") or [])
    ex_b = ", ".join(e.get("id", "") for e in b.get("exclusions") or [])
    if ex_a or ex_b:
        rows.append(("exclusions", ex_a or "—", ex_b or "—"))
    return [{"what": w, "base": _s(x), "proposed": _s(y), "differs": _s(x) != _s(y)}
            for w, x, y in rows]  # fmt: skip


def _s(value: Any) -> str:
    return "—" if value is None else str(value)


def _branch(record: dict[str, Any]) -> str | None:
    br = record.get("amount_branch")
    if not br:
        return None
    return f"case {br.get('case')}: {br.get('when') or 'otherwise'} → {br.get('value')}"


def _cond(c: dict[str, Any] | None) -> str | None:
    if c is None:
        return None
    values = ", ".join(f"{k}={v}" for k, v in (c.get("values") or {}).items())
    return f"{'holds' if c.get('holds') else 'fails'} ({values})" if values else (
        "holds" if c.get("holds") else "fails")  # fmt: skip


def _param(p: dict[str, Any] | None) -> str | None:
    return None if p is None else f"{p.get('value')} from {p.get('from')}"


def _largest(
    changes: pl.DataFrame,
    top: int,
    base: tuple[RulePack, Evaluation, pl.Series],
    proposed: tuple[RulePack, Evaluation, pl.Series],
) -> tuple[list[dict[str, Any]], list[str]]:
    """The `top` people whose monthly pay + credit changes most (then: whose leads and notices
    change most), with both decision traces side by side for each policy that changed."""
    if top <= 0 or changes.is_empty():
        return [], []
    per = (
        person_totals(changes)
        .with_columns(size=pl.col("change_fen").abs())
        .sort(["size", "any_fen", "id_no"], descending=[True, True, False])
        .head(top)
    )
    ids = per["id_no"].to_list()
    rows = changes.filter(pl.col("id_no").is_in(ids))
    policies = set(rows["policy_id"].to_list())
    rec_a = _decision_records(base, ids, policies)
    rec_b = _decision_records(proposed, ids, policies)
    out = []
    for person in per.iter_rows(named=True):
        mine = rows.filter(pl.col("id_no") == person["id_no"]).sort("policy_number")
        out.append({
            "masked_id": person["masked_id"], "masked_name": person["masked_name"],
            "hukou_community": person["hukou_community"],
            "change": str(fen_to_decimal(int(person["change_fen"]))),
            "policies": [
                {
                    "policy_id": r["policy_id"], "status": r["status"],
                    "base": _money(r["base_fen"]), "proposed": _money(r["proposed_fen"]),
                    "change": str(fen_to_decimal(int(r["change_fen"]))),
                    "trace": _side_by_side(rec_a.get((person["id_no"], r["policy_id"])),
                                           rec_b.get((person["id_no"], r["policy_id"]))),
                }
                for r in mine.iter_rows(named=True)
            ],
        })  # fmt: skip
    return out, ids


def _money(fen: int | None) -> str | None:
    return None if fen is None else str(fen_to_decimal(int(fen)))


def check_proposal_month(values_from: dt.date, month: BenefitMonth) -> None:
    """A proposed value must be in force for the month priced (else nothing would change)."""
    if values_from > month.end:
        raise WhatIfError(
            f"--from {values_from.isoformat()} is after {month.label}: the proposed values "
            f"would not be in force for the month priced"
        )


__all__ = [
    "WhatIf", "WhatIfError", "check_proposal_month", "parse_settings", "person_totals",
    "run_whatif", "with_values",
]  # fmt: skip
