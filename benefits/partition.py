"""One partition of a sweep, and the merge of every partition's outputs into the contract's files.

A partition is a set of whole households with every row that decides them (their own rows of
every table, and the rows of parents who live elsewhere or not in the registry at all): see
:mod:`benefits.staging`. :func:`sweep_partition` is a pure function of one partition's frames —
it runs in a worker process (:mod:`benefits.engines.partitioned`) or inside a Spark task from
Arrow input — and :func:`combine` merges the partitions' outputs into the same files, in the
same order and bytes, as the single-process sweep (:func:`benefits.sweep.run_sweep`).

Example:
    >>> out = sweep_partition(load_pack(), "2025-01", tables, quarantine)  # doctest: +SKIP
    >>> out.entitlements.columns[:3]  # doctest: +SKIP
    ['id_no', 'household_no', 'policy_id']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from benefits import traces as tracing
from benefits.evaluate import Evaluation, evaluate
from benefits.ingest import QUARANTINE_SCHEMA, Extracts, LoadedTable, empty_frame
from benefits.period import BenefitMonth
from benefits.rulebook import RulePack
from benefits.sweep import (
    ALERT_COLUMNS,
    ENTITLEMENT_COLUMNS,
    QUARANTINE_COLUMNS,
    DeliveryInfo,
    SweepResult,
    finish_entitlements,
    summary_of,
)

# a partition's entitlements: the contract's columns plus what the summary adds up
PART_ENTITLEMENT_COLUMNS = [*ENTITLEMENT_COLUMNS, "amount_fen"]
# a partition's trace records: columnar traces' columns, plus the position of the record in
# traces.jsonl of the single engine (policy in pack order, then the person's persons row)
TRACE_COLUMNS = list(tracing.TRACE_SCHEMA)
TRACE_ORDER = ["__policy", "__row"]


@dataclass
class PartOutputs:
    """What one partition produced (only for members of its own households)."""

    index: int
    entitlements: pl.DataFrame  # PART_ENTITLEMENT_COLUMNS, sorted by id_no, policy_id
    alerts: pl.DataFrame  # ALERT_COLUMNS (due_date as text), sorted like alerts.csv
    # TRACE_COLUMNS (+ TRACE_ORDER when asked for), sorted by id_no; None: not asked for
    traces: pl.DataFrame | None
    persons: int  # persons evaluated
    trace_records: int  # decision records (the rule records are counted once, by combine)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        """Write the outputs as Parquet files into `folder` (a worker hands them back so)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.entitlements.write_parquet(folder / "entitlements.parquet")
        self.alerts.write_parquet(folder / "alerts.parquet")
        if self.traces is not None:
            self.traces.write_parquet(folder / "traces.parquet", compression="lz4")

    @classmethod
    def read(
        cls, folder: Path, index: int, persons: int, trace_records: int, traces: bool = False
    ) -> PartOutputs:
        """The outputs :meth:`write` wrote (traces only when asked: they are large)."""
        return cls(
            index,
            pl.read_parquet(folder / "entitlements.parquet"),
            pl.read_parquet(folder / "alerts.parquet"),
            pl.read_parquet(folder / "traces.parquet") if traces else None,
            persons,
            trace_records,
        )


def partition_extracts(
    tables: dict[str, pl.DataFrame], quarantine: pl.DataFrame, pack: RulePack
) -> Extracts:
    """The Extracts of one partition (absent tables empty; rows in file order)."""
    loaded = {}
    for name, table in pack.catalogue.tables.items():
        frame = tables.get(name)
        if frame is None:
            frame = empty_frame(table).with_columns(pl.lit(None, pl.Int64).alias("_row"))
            frame = frame.select(["_row", *table.names])
        loaded[name] = LoadedTable(name, frame)
    return Extracts(Path("."), loaded, quarantine, pack.catalogue.tables)


def sweep_partition(
    pack: RulePack,
    month: str,
    tables: dict[str, pl.DataFrame],
    quarantine: pl.DataFrame,
    *,
    index: int = 0,
    traces: bool = True,
    jsonl_order: bool = True,
) -> PartOutputs:
    """Evaluate one partition for `month` (see module doc).

    `tables` are the partition's accepted rows per table (columns `_row` and the table's
    typed columns, as :func:`benefits.ingest.load_extracts` gives them); `quarantine` the
    quarantine rows routed to this partition (the alerts derived from them appear here once).
    `traces` asks for the decision records; `jsonl_order` adds their place in traces.jsonl
    (`__policy`, `__row`), needed only to write that file.
    """
    import time

    t = time.perf_counter()
    timings: dict[str, float] = {}
    bm = BenefitMonth.parse(month)
    extracts = partition_extracts(tables, quarantine, pack)
    ev = evaluate(pack, extracts, bm, timings=timings)
    ent, held_ids = finish_entitlements(ev)
    alerts = ev.alerts.with_columns(pl.col("due_date").dt.strftime("%Y-%m-%d")).select(
        ALERT_COLUMNS
    )
    trace_frame = None
    records = 0
    if traces:
        t1 = time.perf_counter()
        if jsonl_order:
            trace_frame = decision_records(pack, ev, held_ids)
        else:  # columnar traces only: no place in traces.jsonl needed
            trace_frame = tracing.trace_table(pack, ev, held_ids)
        records = trace_frame.height
        timings["traces"] = time.perf_counter() - t1
    timings["partition"] = time.perf_counter() - t
    return PartOutputs(
        index,
        ent.select(PART_ENTITLEMENT_COLUMNS),
        alerts,
        trace_frame,
        ev.facts.height,
        records,
        timings,
    )


def decision_records(pack: RulePack, ev: Evaluation, held_ids: pl.Series) -> pl.DataFrame:
    """The evaluation's decision records (:func:`benefits.traces.policy_records`) with their
    place in traces.jsonl (`__policy`, `__row`), sorted by id_no then pack order."""
    row = str(pack.catalogue.selections[pack.catalogue.person].row)
    rows = ev.facts.lazy().select("id_no", pl.col(row).cast(pl.Int64).alias("__row"))
    frames = [
        tracing.policy_records(pack, ev, cp, held_ids)
        .with_columns(pl.lit(i, pl.Int32).alias("__policy"))
        .join(rows, on="id_no", how="left", maintain_order="left")
        for i, cp in enumerate(ev.policies)
    ]
    if not frames:
        schema = {**tracing.TRACE_SCHEMA, "__policy": pl.Int32, "__row": pl.Int64}
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).collect().sort(["id_no", "__policy"], maintain_order=True)


def rule_records(pack: RulePack, month: str) -> list[str]:
    """The rule records that open the traces (they depend on the pack and month only)."""
    bm = BenefitMonth.parse(month)
    ev = evaluate(pack, partition_extracts({}, _empty_quarantine(), pack), bm)
    return tracing.rule_records(pack, ev)


def _empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def combine(
    pack: RulePack,
    month: str,
    delivery: DeliveryInfo,
    quarantine: pl.DataFrame,
    parts: list[PartOutputs],
    out: Path | None,
) -> SweepResult:
    """Merge the partitions' outputs into one :class:`SweepResult`, in the single engine's
    order (entitlements by id_no, policy_id; alerts by id_no, kind, policy_id, due_date;
    quarantine by table, row, field) with the same summary. Traces are not merged here:
    see :func:`write_jsonl_traces` and the columnar parts."""
    bm = BenefitMonth.parse(month)
    ent = pl.concat([p.entitlements for p in parts]) if parts else None
    if ent is None:
        ent = pl.DataFrame(schema=dict.fromkeys(PART_ENTITLEMENT_COLUMNS, pl.String))
    ent = ent.sort(["id_no", "policy_id"])
    alerts = pl.concat([p.alerts for p in parts]) if parts else pl.DataFrame()
    alerts = alerts.sort(["id_no", "kind", "policy_id", "due_date"])
    q = quarantine.sort(["table", "row", "field"]).select(QUARANTINE_COLUMNS)
    summary = summary_of(
        pack,
        bm,
        delivery,
        pack.policies_for(bm),
        ent,
        alerts,
        sum(p.persons for p in parts),
        out,
    )
    return SweepResult(bm.label, ent.select(ENTITLEMENT_COLUMNS), alerts, q, None, summary)


def jsonl_lines(rules: list[str], parts: list[pl.DataFrame] | list[pl.LazyFrame]) -> pl.LazyFrame:
    """traces.jsonl of the single engine from the partitions' decision records: the rule
    records, then the decisions policy by policy in persons-file order."""
    head = pl.DataFrame({"line": rules}, schema={"line": pl.String}).lazy()
    if not parts:
        return head
    body = (
        pl.concat([p.lazy() for p in parts])
        .sort(TRACE_ORDER)
        .select(pl.col("record").alias("line"))
    )
    return pl.concat([head, body])
