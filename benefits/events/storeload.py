"""Loading the event store from a month's delivery, a partition at a time, in bounded memory.

The store (:mod:`benefits.events.dbstore`) needs every accepted row of the delivery (with the
file's row numbers), each table's next row number, and the decisions before any event: every
person's entitlements and alerts, with the person's household, community, name and account,
and the alerts read from quarantined rows. The sweep's output folder has the decisions but
not the rows, names or accounts, so the loader makes them the partitioned engine's way:

1. the delivery is staged into household partitions (:func:`benefits.staging.stage`, in a
   process of its own whose memory is given back), with the rows that decide nothing — IDs no
   person has — in one extra partition, since the store keeps every row;
2. partition by partition: its rows go to the store (a row routed to several partitions —
   a parent's row in each child's partition — once), and its households are decided by the
   sweep's own evaluation (:func:`benefits.events.service.sweep_baseline` on the partition,
   as :func:`benefits.partition.sweep_partition` does) — the same decisions as the
   single-process sweep, as the engines' differential tests prove;
3. keys and indexes are built once at the end, in the same transaction.

The loading process holds one partition at a time, whatever the city's size. ``partitions=1``
loads the whole delivery at once with the single engine's ingest (a small town; the
reference the partitioned load is tested against).

Example:
    >>> load_store(Path("datasets/sample"), "2025-02", "sqlite:///store.db")  # doctest: +SKIP
    {'persons': 12, ...}
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from benefits.engines import default_partitions, estimated_persons
from benefits.engines.partitioned import stage_apart
from benefits.events.dbstore import DbStore, StoreLoad
from benefits.events.decide import PersonOutcome
from benefits.events.program import MonthProgram, build_program
from benefits.events.service import sweep_baseline
from benefits.ingest import Extracts, load_extracts
from benefits.partition import partition_extracts
from benefits.period import BenefitMonth
from benefits.progress import Progress, no_progress
from benefits.rulebook import RulePack, load_pack
from benefits.staging import Staged

# people from which the staging runs in a process of its own (its memory given back after)
STAGE_APART = 1_000_000
# rows per chunk the staging reads: a fifth of the sweep's, half its peak memory (1 million
# people: 0.58 GiB against 1.23 GiB), the same CPU time
STAGE_CHUNK_ROWS = 100_000


def load_store(
    data: Path | str, month: str, url: str, *, pack: RulePack | None = None,
    rules: Path | None = None, schema: str = "events_store", partitions: int | None = None,
    work_dir: Path | None = None, progress: Progress = no_progress,
) -> dict[str, int]:  # fmt: skip
    """Load a delivery and the sweep's decisions of it into an event store (replacing it).

    `partitions`: how many household partitions to load it in (default: about 150,000
    people each, as the partitioned sweep); 1 reads it whole. The staging goes to a
    temporary folder (under `work_dir`), removed at the end. Returns the rows loaded per
    table (and ``outcomes``, ``static_alerts``).
    """
    pack = pack or load_pack(rules)
    m = BenefitMonth.parse(month)
    program = build_program(pack, m)
    parts = partitions or default_partitions(Path(data), 1)
    db = DbStore.connect(url, schema)
    try:
        if parts <= 1:
            progress("reading the delivery")
            extracts = load_extracts(Path(data), pack.catalogue.tables)
            with db.loading(m.label) as load:
                _load_whole(load, pack, program, extracts, m)
            return load.counts
        scratch = Path(tempfile.mkdtemp(prefix="benefits-store-", dir=work_dir))
        try:
            progress(f"staging into {parts} partitions")
            apart = 2 if estimated_persons(Path(data)) >= STAGE_APART else 1
            staged = stage_apart(Path(data), pack, parts, scratch / "stage",
                                 STAGE_CHUNK_ROWS, apart, strays=True)  # fmt: skip
            with db.loading(m.label) as load:
                _load_staged(load, pack, program, staged, m, progress)
                progress("building the keys and indexes")
            return load.counts
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        db.close()


def _load_whole(
    load: StoreLoad, pack: RulePack, program: MonthProgram, extracts: Extracts, m: BenefitMonth
) -> None:
    """The whole delivery, decided at once (a town)."""
    for name, loaded in extracts.tables.items():
        load.rows(name, extracts.schema[name], loaded.frame)
        load.next_row(name, loaded.summary())
    _decisions(load, pack, program, extracts, m)


def _load_staged(
    load: StoreLoad, pack: RulePack, program: MonthProgram, staged: Staged, m: BenefitMonth,
    progress: Progress,
) -> None:  # fmt: skip
    """A staged delivery, partition by partition, then the partition of rows that decide
    nothing."""
    schema = pack.catalogue.tables
    seen: dict[str, pl.Series] = {}  # per table, by row number: loaded already
    for name in staged.table_names:
        info = staged.delivery.tables[name]
        load.next_row(name, info)
        seen[name] = pl.repeat(False, info["read"] + info["skipped_empty_records"] + 2,
                               eager=True)  # fmt: skip
    for index in range(staged.partitions + 1):
        if index % 10 == 0:
            progress(f"partition {index + 1} of {staged.partitions + 1}")
        tables, quarantine = staged.read_part(index)
        for name, frame in tables.items():
            load.rows(name, schema[name], _first_time(frame, seen, name))
        if index < staged.partitions:
            extracts = partition_extracts(tables, quarantine, pack)
            _decisions(load, pack, program, extracts, m)
        del tables, quarantine


def _first_time(frame: pl.DataFrame, seen: dict[str, pl.Series], name: str) -> pl.DataFrame:
    """The rows of `frame` not loaded before (marked loaded now)."""
    rows = frame["_row"]
    top = rows.max()
    if isinstance(top, int) and top >= seen[name].len():  # never with a staging's own counts
        seen[name] = seen[name].extend(pl.repeat(False, top + 1 - seen[name].len(), eager=True))
    new = ~seen[name].gather(rows)
    seen[name].scatter(rows, True)
    return frame if new.all() else frame.filter(new)


def _decisions(
    load: StoreLoad, pack: RulePack, program: MonthProgram, extracts: Extracts, m: BenefitMonth
) -> None:
    """The sweep's decisions of `extracts` (a partition's or the whole delivery's)."""
    outcomes, static = sweep_baseline(pack, program, extracts, m, frame_outcomes(extracts))
    load.outcomes(outcomes.values())
    load.static_alerts(static)


def frame_outcomes(extracts: Extracts) -> Callable[[str], PersonOutcome]:
    """`outcome(id_no)` for :func:`sweep_baseline` read from the delivery's frames (as
    :meth:`EventService._outcome` reads the in-memory store: the last persons row of an ID,
    the account of its last bank_accounts row)."""
    persons = (
        extracts.tables["persons"].frame.sort("_row")
        .unique("id_no", keep="last", maintain_order=True)
        .select("id_no", "household_no", "hukou_community", "name")
    )  # fmt: skip
    info = {r[0]: r[1:] for r in persons.iter_rows()}
    banks = (
        extracts.tables["bank_accounts"].frame.sort("_row")
        .unique("id_no", keep="last", maintain_order=True).select("id_no", "account_no")
    )  # fmt: skip
    accounts = dict(banks.iter_rows())

    def outcome(id_no: str) -> PersonOutcome:
        hh, community, name = info.get(id_no, ("", "", ""))
        return PersonOutcome(id_no, hh, community, name, accounts.get(id_no))

    return outcome
