"""The monthly sweep: ingest → merge → evaluate → write (data contract, "Outputs of a sweep").

Example:
    >>> from pathlib import Path
    >>> result = run_sweep(Path("datasets/sample"), "2025-01", out=None)
    >>> sorted(result.entitlements.columns)[:3]
    ['account_no', 'amount', 'held']
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benefits import __version__
from benefits import traces as tracing
from benefits.alertid import ALERT_ID_COLUMNS
from benefits.atomic import atomic_folder
from benefits.display import fen_to_decimal, yuan_expr
from benefits.evaluate import Evaluation, evaluate
from benefits.idcard import mask_name_expr
from benefits.ingest import Extracts, load_extracts
from benefits.months import check_sweep_month
from benefits.period import BenefitMonth
from benefits.private import lock_down, private_dir
from benefits.progress import Progress, no_progress
from benefits.rulebook import Policy, RulePack, load_pack
from benefits.sealedfiles import check_sealing_keys, seal_outputs_if_wanted

ENTITLEMENT_COLUMNS = [
    "id_no",
    "household_no",
    "policy_id",
    "month",
    "mode",
    "amount",
    "held",
    "hold_reason",
    "hukou_community",
    "masked_name",
    "account_no",
]
# the contract's columns, then what the alert is about across months (benefits.alertid)
ALERT_COLUMNS = ["id_no", "kind", "policy_id", "due_date", "message", *ALERT_ID_COLUMNS]
QUARANTINE_COLUMNS = ["table", "row", "id_no", "field", "reason", "code"]


@dataclass
class SweepResult:
    """Everything a sweep produced (also written to disk when `out` is given).

    `traces` are the trace records as JSON texts (the lines of traces.jsonl); when the sweep
    wrote them to `out` they are read back from there only if asked for (columnar traces give
    the rule records, then the decisions by resident ID).
    """

    month: str
    entitlements: pl.DataFrame
    alerts: pl.DataFrame
    quarantine: pl.DataFrame
    trace_lines: pl.Series | None
    summary: dict
    evaluation: Evaluation | None = None
    timings: dict[str, float] = field(default_factory=dict)
    traces_path: Path | None = None  # the sweep folder whose traces were written

    @property
    def traces(self) -> pl.Series:
        if self.trace_lines is None and self.traces_path is not None:
            self.trace_lines = tracing.read_all_records(self.traces_path)
        if self.trace_lines is None:
            return pl.Series("line", [], pl.String)
        return self.trace_lines


def finish_entitlements(ev: Evaluation) -> tuple[pl.DataFrame, pl.Series]:
    """Entitlements in the contract's shape, with holds from holding alerts applied."""
    holds = (
        ev.alerts.filter(pl.col("holds") == "pay")
        .select("id_no", pl.col("message").alias("hold_reason"))
        .unique("id_no", keep="first", maintain_order=True)
    )
    ent = (
        ev.entitlements.join(holds, on="id_no", how="left")
        .with_columns(
            held=(pl.col("mode") == "pay") & pl.col("hold_reason").is_not_null(),
        )
        .with_columns(
            hold_reason=pl.when(pl.col("held")).then(pl.col("hold_reason")),
            amount=yuan_expr(pl.col("amount_fen")),
            masked_name=mask_name_expr(pl.col("name")),
        )
        .sort(["id_no", "policy_id"])
    )
    return ent, holds["id_no"]


def run_sweep(
    data: Path,
    month: str,
    out: Path | None = None,
    rules: Path | None = None,
    write_traces: bool = True,
    progress: Progress = no_progress,
    pack: RulePack | None = None,
    traces: str | None = None,
) -> SweepResult:
    """Run the sweep for `month` on the delivery in `data`; write outputs into `out` if given.

    `traces` is the form of the traces written to `out` (``parquet``, the default, ``jsonl``,
    ``both`` or ``none``; see :mod:`benefits.traces`); ``write_traces=False`` means ``none``.
    Without `out` the trace records are kept in memory (``result.traces``) unless ``none``.
    """
    fmt = traces or ("parquet" if write_traces else "none")
    if fmt not in tracing.TRACE_FORMATS:
        raise ValueError(f"traces must be one of {', '.join(tracing.TRACE_FORMATS)}, got {fmt!r}")
    write_traces = fmt != "none"
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    progress("loading the rule pack")
    pack = pack or load_pack(rules)
    bm = check_sweep_month(month, pack, None)  # the pack's first month; callers add the horizon
    if out is not None:
        check_sealing_keys()  # a missing key stops the sweep before anything is written
    progress("ingest: reading and validating extracts")
    t = time.perf_counter()
    extracts = load_extracts(Path(data), pack.catalogue.tables)
    timings["ingest"] = time.perf_counter() - t
    progress("merge + evaluate: facts, rules, exclusions, alerts")
    ev = evaluate(pack, extracts, bm, timings=timings)
    ent, held_ids = finish_entitlements(ev)
    alerts = ev.alerts.with_columns(pl.col("due_date").dt.strftime("%Y-%m-%d")).select(
        ALERT_COLUMNS
    )
    quarantine = extracts.quarantine.sort(["table", "row", "field"]).select(QUARANTINE_COLUMNS)
    summary = build_summary(pack, extracts, ev, ent, alerts, bm, out)
    summary["engine"] = {"name": "single", "partitions": 1, "workers": 1}
    result = SweepResult(
        bm.label, ent.select(ENTITLEMENT_COLUMNS), alerts, quarantine, None, summary, ev, timings
    )
    if write_traces:
        summary["trace_records"] = tracing.count_records(ev)
    if out is None:
        if write_traces:
            t = time.perf_counter()
            result.trace_lines = tracing.build_traces(pack, ev, held_ids)
            timings["traces"] = time.perf_counter() - t
        summary["run_seconds"] = round(time.perf_counter() - t0, 3)
        summary["stage_seconds"] = {k: round(v, 3) for k, v in timings.items()}
        return result
    out = Path(out)
    with atomic_folder(out) as work:
        progress("writing outputs")
        t = time.perf_counter()
        write_outputs(result, work)
        timings["write"] = time.perf_counter() - t
        if write_traces:
            progress("traces")
            t = time.perf_counter()
            tracing.write_sweep_traces(pack, ev, held_ids, work, fmt)
            timings["traces"] = time.perf_counter() - t
            result.traces_path = out
        summary["run_seconds"] = round(time.perf_counter() - t0, 3)
        summary["stage_seconds"] = {k: round(v, 3) for k, v in timings.items()}
        write_summary(summary, work)
    return result


def write_summary(summary: dict, folder: Path) -> None:
    """summary.json, written last: a folder with it is a finished sweep; the other files are
    sealed first when sealing is on (:mod:`benefits.sealedfiles`); then lock down."""
    seal_outputs_if_wanted(folder)
    (folder / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    lock_down(folder)
    if (folder / tracing.TRACES_DIR).is_dir():
        lock_down(folder / tracing.TRACES_DIR)


def build_summary(
    pack: RulePack,
    extracts: Extracts,
    ev: Evaluation,
    ent: pl.DataFrame,
    alerts: pl.DataFrame,
    month: BenefitMonth,
    out: Path | None,
) -> dict:
    """The run summary: counts that reconcile, totals per policy, versions and hashes."""
    return summary_of(
        pack,
        month,
        DeliveryInfo.of(extracts),
        [cp.policy for cp in ev.policies],
        ent,
        alerts,
        ev.facts.height,
        out,
    )


@dataclass
class DeliveryInfo:
    """What the summary says about the delivery: folder, per-table counts, the quarantine."""

    folder: Path
    tables: dict[str, dict]  # LoadedTable.summary() per table
    inputs: dict[str, dict]  # file and sha256 of each delivered table
    quarantined: int

    @classmethod
    def of(cls, extracts: Extracts) -> DeliveryInfo:
        return cls(
            Path(extracts.folder),
            {name: t.summary() for name, t in extracts.tables.items()},
            {
                name: {"file": t.file, "sha256": t.sha256}
                for name, t in extracts.tables.items()
                if t.file
            },
            int(extracts.quarantine.height),
        )


def summary_of(
    pack: RulePack,
    month: BenefitMonth,
    delivery: DeliveryInfo,
    policies: list[Policy],
    ent: pl.DataFrame,
    alerts: pl.DataFrame,
    persons_evaluated: int,
    out: Path | None,
) -> dict:
    """The run summary from its parts (every engine builds the same one; `ent` has
    `amount_fen` and `held`, `alerts` the contract's columns)."""
    tables = delivery.tables
    for name, info in tables.items():
        if info["read"] != info["accepted"] + info["quarantined"]:  # pragma: no cover
            raise AssertionError(f"{name}: read != accepted + quarantined")
    by_policy = {
        pid: (int(n), int(fen or 0), int(h), int(hfen or 0))
        for pid, n, fen, h, hfen in ent.group_by("policy_id")
        .agg(
            pl.len().alias("n"),
            pl.col("amount_fen").sum().alias("fen"),
            pl.col("held").sum().alias("h"),
            pl.col("amount_fen").filter(pl.col("held")).sum().alias("hfen"),
        )
        .iter_rows()
    }
    out_policies = {}
    for policy in policies:
        count, fen, held, held_fen = by_policy.get(policy.id, (0, 0, 0, 0))
        out_policies[policy.id] = {
            "number": policy.number,
            "name_zh": policy.name.zh,
            "name_en": policy.name.en,
            "mode": policy.mode,
            "version": policy.version,
            "count": count,
            "amount": str(fen_to_decimal(fen)),
            "held": held,
            "held_amount": str(fen_to_decimal(held_fen)),
        }
    alert_counts = dict(sorted(alerts.group_by("kind").len().iter_rows(), key=lambda kv: kv[0]))
    payable = ent.filter(pl.col("mode").is_in(["pay", "credit"]))
    return {
        "month": month.label,
        "engine_version": __version__,
        "rule_pack": {
            "name": pack.info.name,
            "version": pack.version,
            "hash": pack.digest,
            "folder": str(Path(pack.folder).resolve()),
        },
        "data": str(delivery.folder.resolve()),  # absolute: read back from any directory
        "inputs": delivery.inputs,
        "tables": tables,
        "quarantined_total": delivery.quarantined,
        "policies": out_policies,
        "totals": {
            "entitlements": ent.height,
            "people": ent["id_no"].n_unique(),
            "pay_and_credit_amount": str(fen_to_decimal(int(payable["amount_fen"].sum() or 0))),
            "held": int(ent["held"].sum()),
        },
        "alerts": alert_counts,
        "out": str(Path(out).resolve()) if out else None,
        "persons_evaluated": persons_evaluated,
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_outputs(result: SweepResult, out: Path) -> None:
    """Write the contract's tables as CSV and Parquet (traces and summary are written after)
    into a folder only the service account can read (0700, files 0600)."""
    private_dir(out)
    ent = result.entitlements
    ent.write_csv(out / "entitlements.csv")
    ent.with_columns(pl.col("amount").cast(pl.Decimal(14, 2))).write_parquet(
        out / "entitlements.parquet", statistics=False
    )
    result.alerts.write_csv(out / "alerts.csv")
    result.alerts.with_columns(pl.col("due_date").str.to_date()).write_parquet(
        out / "alerts.parquet", statistics=False
    )
    result.quarantine.write_csv(out / "quarantine.csv")
    result.quarantine.write_parquet(out / "quarantine.parquet", statistics=False)
    result.summary["outputs"] = {
        p.name: _sha256(p)
        for p in sorted(out.iterdir())
        if p.suffix in (".csv", ".parquet") and p.stem in ("entitlements", "alerts", "quarantine")
    }
