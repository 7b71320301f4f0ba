"""Helpers for the event-path tests: deliveries, row changes on raw rows, sweep comparisons.

The comparison is the differential test's oracle: the extracts a department would deliver
after the events (the original rows with the event's row changes made to them, written as
CSV files) are swept by ``benefits.sweep.run_sweep`` for the same month, and the event
service's decisions must equal the sweep's — entitlements, amounts, holds, alerts, and every
trace record.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl

from benefits.events.evaluator import LocalEvaluator
from benefits.events.service import EventService
from benefits.events.store import RowChange
from benefits.rulebook import load_pack
from benefits.sweep import SweepResult, run_sweep
from tests.conftest import write_delivery

PACK = load_pack()
_EVALUATOR: LocalEvaluator | None = None


def shared_evaluator() -> LocalEvaluator:
    """One evaluator for the whole test session (each month is compiled once)."""
    global _EVALUATOR
    if _EVALUATOR is None:
        _EVALUATOR = LocalEvaluator()
    return _EVALUATOR


def service_for(
    tables: dict[str, list[dict]], month: str, folder: Path, **kw: Any
) -> EventService:
    """Write a delivery (no automatic bank rows) and start a service on it, in-process."""
    data = write_delivery(folder, tables, with_bank=False)
    kw.setdefault("evaluator", shared_evaluator())
    kw.setdefault("pack", PACK)
    kw.setdefault("freeze_gc", False)  # many services in one process
    return EventService(data, month, **kw)


def apply_rows(tables: dict[str, list[dict]], rows: list[RowChange]) -> None:
    """Make an event's row changes to raw rows, as the department's next delivery would.

    Appends go at the end (the row number must be the one the store gave); updates change
    the rows named by number (each must match the change's `match`, cells trimmed as ingest
    trims them); a removed row becomes an all-empty record, which ingest skips
    but still counts, so later row numbers do not move. A removal takes the quarantined
    duplicates of the removed row's key with it (a status ended is listed no more: the next
    delivery holds no row of it, the duplicate included).
    """

    def matches(row: dict, match: dict[str, str]) -> bool:
        return all((row.get(c) or "").strip().upper() == t.upper() for c, t in match.items())

    for change in rows:
        raw = tables.setdefault(change.table, [])
        if change.op == "append":
            assert change.rows == (len(raw) + 1,), (change, len(raw))
            raw.append(dict(change.values))
            continue
        for row_no in change.rows:
            row = raw[row_no - 1]
            assert matches(row, change.match), (change, row)
            if change.op == "delete":
                raw[row_no - 1] = {}
            else:
                row.update(change.values)
        if change.op == "delete":
            for i, row in enumerate(raw):
                if row and matches(row, change.match):
                    raw[i] = {}


def sweep(tables: dict[str, list[dict]], month: str, folder: Path) -> SweepResult:
    """The sweep of these raw rows for the month (traces included)."""
    data = write_delivery(folder, tables, with_bank=False)
    return run_sweep(data, month, pack=PACK)


def decision_traces(result: SweepResult) -> dict[tuple[str, str], dict]:
    """The sweep's decision records by (id_no, policy_id)."""
    out = {}
    for line in result.traces.to_list():
        record = json.loads(line)
        if record.get("record") == "decision":
            out[(record["id_no"], record["policy_id"])] = record
    return out


def service_traces(service: EventService) -> dict[tuple[str, str], dict]:
    """Every person's current trace records, decided again by the event path."""
    decided, facts = service._decide(list(service.store.members), traces=True)
    return {
        (o.id_no, pid): service.trace(o, pid, facts[o.id_no])
        for o in decided.values()
        for pid in o.states or {}
    }


def assert_agrees(service: EventService, result: SweepResult, *, traces: bool = True) -> None:
    """The service's current decisions equal the sweep's (see module doc)."""
    ours = service.entitlements()
    theirs = result.entitlements.select(ours.columns)
    if not ours.equals(theirs):
        diff = pl.concat([ours.with_columns(side=pl.lit("events")),
                          theirs.with_columns(side=pl.lit("sweep"))])  # fmt: skip
        diff = diff.filter(~diff.drop("side").is_duplicated())
        raise AssertionError(f"entitlements differ:\n{diff}")
    ours_a = service.alerts()
    theirs_a = result.alerts.select(ours_a.columns)
    if not ours_a.equals(theirs_a):
        diff = pl.concat([ours_a.with_columns(side=pl.lit("events")),
                          theirs_a.with_columns(side=pl.lit("sweep"))])  # fmt: skip
        diff = diff.filter(~diff.drop("side").is_duplicated())
        raise AssertionError(f"alerts differ:\n{diff}")
    if traces:
        mine, swept = service_traces(service), decision_traces(result)
        assert set(mine) == set(swept), set(mine) ^ set(swept)
        for key, record in swept.items():
            assert mine[key] == record, (key, mine[key], record)


def event(etype: str, event_id: str, department: str, day: dt.date | str, **fields: Any) -> dict:
    """An event dict."""
    date = day.isoformat() if isinstance(day, dt.date) else day
    return {
        "event_id": event_id,
        "type": etype,
        "department": department,
        "effective_date": date,
        **fields,
    }
