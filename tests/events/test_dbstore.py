"""The database event store: same decisions as the in-memory store, idempotent across
connections and processes, start-up without reading the delivery, clear errors."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from events_helpers import PACK, event, shared_evaluator
from sqlalchemy import text
from typer.testing import CliRunner

import benefits.events.service as service_module
from benefits.events.cli import events_app
from benefits.events.dbstore import DbStore, StoreError
from benefits.events.generate import RandomChooser, next_event
from benefits.events.service import EventService
from benefits.events.storeload import load_store

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "sample"
MONTH = "2025-02"
runner = CliRunner()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None, pg_admin: object
) -> Iterator[tuple[str, str]]:
    """(URL, schema) of an empty event store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}", "events_store"
        return
    if pg_base_url is None:
        pytest.skip("no PostgreSQL for the tests")
    schema = f"evstore_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    try:
        yield pg_base_url, schema
    finally:
        with pg_admin.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def db_service(url: str, schema: str, data: Path = SAMPLE) -> EventService:
    return EventService(data, MONTH, pack=PACK, evaluator=shared_evaluator(), store=url,
                        store_schema=schema, freeze_gc=False)  # fmt: skip


def events(service: EventService, count: int, seed: int) -> list[dict]:
    """Generated events of every type for the sample, with a repeat now and then."""
    chooser = RandomChooser(seed)
    out: list[dict] = []
    for n in range(count):
        out.append(
            out[-3] if n % 11 == 10 else next_event(chooser, service.store, service.month, n)
        )
    return out


def test_the_database_store_decides_as_the_in_memory_store(store: tuple[str, str]) -> None:
    url, schema = store
    counts = load_store(SAMPLE, MONTH, url, pack=PACK, schema=schema)
    assert counts["persons"] == 2970 and counts["outcomes"] > 0
    memory = EventService(SAMPLE, MONTH, pack=PACK, evaluator=shared_evaluator(),
                          freeze_gc=False)  # fmt: skip
    db = db_service(url, schema)
    assert db.entitlements().equals(memory.entitlements())
    assert db.alerts().equals(memory.alerts())
    statuses = set()
    for ev in events(memory, 120, 20250202):
        a, b = memory.apply(ev), db.apply(ev)
        assert b.as_dict() == a.as_dict(), ev
        statuses.add(a.status)
    assert {"applied", "duplicate", "rejected"} <= statuses
    assert db.counts == memory.counts
    assert db.entitlements().equals(memory.entitlements())
    assert db.alerts().equals(memory.alerts())
    some = next(iter(memory.outcomes))
    assert db.person(some) == memory.person(some)
    db.close()
    # a restart keeps what the events changed, and their ids
    again = db_service(url, schema)
    assert again.entitlements().equals(memory.entitlements())
    assert again.apply(ev).status in ("duplicate", "rejected")
    assert again.status()["persons"] == len(memory.store.persons)
    again.close()


def _two_services(store: tuple[str, str]) -> tuple[EventService, EventService, EventService]:
    """The sample loaded into the store, two services sharing it, and the in-memory one."""
    url, schema = store
    load_store(SAMPLE, MONTH, url, pack=PACK, schema=schema)
    memory = EventService(SAMPLE, MONTH, pack=PACK, evaluator=shared_evaluator(),
                          freeze_gc=False)  # fmt: skip
    return db_service(url, schema), db_service(url, schema), memory


def test_the_same_event_on_two_connections_changes_nothing_the_second_time(
    store: tuple[str, str],
) -> None:
    one, two, memory = _two_services(store)
    stream = [e for e in events(memory, 40, 7) if e["type"] != "death_registered"][:20]
    first = [one.apply(e) for e in stream]
    after_one = one.entitlements(), one.alerts()
    second = [two.apply(e) for e in stream]
    assert sum(r.status == "applied" for r in first) > 10
    assert all(r.status in ("duplicate", "rejected") for r in second)
    assert all(not r.rows and not r.changes for r in second)
    assert two.entitlements().equals(after_one[0]) and two.alerts().equals(after_one[1])
    # the same id with other content is refused, not applied
    changed = dict(stream[0], effective_date="2025-01-02")
    assert two.apply(changed).status == "rejected"
    one.close()
    two.close()


def _apply_all(url: str, schema: str, stream: list[dict], out: multiprocessing.Queue) -> None:
    service = EventService(SAMPLE, MONTH, pack=PACK, store=url, store_schema=schema,
                           freeze_gc=False)  # fmt: skip
    out.put([(r.event_id, r.status) for r in service.apply_many(stream)])
    service.close()


def test_two_processes_sharing_the_store_apply_each_event_once(store: tuple[str, str]) -> None:
    url, schema = store
    load_store(SAMPLE, MONTH, url, pack=PACK, schema=schema)
    memory = EventService(SAMPLE, MONTH, pack=PACK, evaluator=shared_evaluator(),
                          freeze_gc=False)  # fmt: skip
    stream = events(memory, 60, 99)
    expected = [memory.apply(e).status for e in stream]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_apply_all, args=(url, schema, stream, queue)) for _ in "ab"]
    for w in workers:
        w.start()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    applied = [eid for res in results for eid, status in res if status == "applied"]
    assert len(applied) == len(set(applied)) == expected.count("applied")
    check = db_service(url, schema)
    assert check.entitlements().equals(memory.entitlements())
    assert check.alerts().equals(memory.alerts())
    check.close()


def test_start_up_does_not_read_the_delivery(
    store: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, schema = store
    load_store(SAMPLE, MONTH, url, pack=PACK, schema=schema)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the delivery was read at start-up")

    monkeypatch.setattr(service_module, "load_extracts", refuse)
    service = db_service(url, schema, data=tmp_path / "no-such-folder")
    assert service.status()["persons"] == 2970
    assert not service.store.persons and not service.outcomes  # nothing held in memory
    service.close()


def test_an_unloaded_store_or_another_month_is_a_clear_error(
    store: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = store
    with pytest.raises(StoreError, match="not loaded"):
        db_service(url, schema)
    load_store(SAMPLE, MONTH, url, pack=PACK, schema=schema)
    with pytest.raises(StoreError, match="holds 2025-02, not 2025-03"):
        EventService(SAMPLE, "2025-03", pack=PACK, store=url, store_schema=schema)
    with pytest.raises(StoreError, match="URL must start"):
        DbStore.connect("mysql://x")


def test_cli_loads_the_store_and_applies_events_from_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    file = tmp_path / "events.jsonl"
    file.write_text(
        '{"event_id": "d1", "type": "death_registered", "department": "police", '
        '"effective_date": "2025-01-10", "id_no": "NOT-AN-ID"}\n',
        encoding="utf-8",
    )
    args = ["apply", str(file), "--month", MONTH, "--store", url, "--data", str(tmp_path)]
    unloaded = runner.invoke(events_app, args)
    assert unloaded.exit_code == 2 and "not loaded" in unloaded.output
    loaded = runner.invoke(
        events_app,
        ["load-store", "--data", str(SAMPLE), "--month", MONTH, "--store", url,
         "--partitions", "3", "--work-dir", str(tmp_path)],
    )  # fmt: skip
    assert loaded.exit_code == 0, loaded.output
    assert "partition 1 of 4" in loaded.output and "loaded 2,970 persons" in loaded.output
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # the staging is removed
    result = runner.invoke(events_app, args)
    assert result.exit_code == 1 and "rejected" in result.output
    assert "Traceback" not in result.output


def test_a_death_confirmed_through_another_process_changes_nothing(
    store: tuple[str, str],
) -> None:
    """Correlations read the earlier events of every process sharing the store."""
    one, two, memory = _two_services(store)
    who = next(i for i, o in memory.outcomes.items() if o.entitlements)
    first = one.apply(event("death_registered", "gab-1", "police", "2025-01-10", id_no=who))
    assert first.status == "applied" and len(first.rows) == 1 and first.changes
    again = two.apply(event("death_registered", "hos-9", "health", "2025-01-11", id_no=who))
    assert again.status == "applied" and (again.rows, again.changes) == ([], [])
    assert again.notes == [
        "confirms the death reported by event gab-1 (police, 2025-01-10): nothing changes"
    ]
    one.close()
    two.close()


def _contents(url: str, schema: str) -> dict[str, list[tuple]]:
    db = DbStore.connect(url, schema)
    try:
        return {t: sorted(tuple(r) for r in db.execute(f"SELECT * FROM {db.q}{t}").fetchall())
                for t in ("rows", "next_row", "outcomes", "static_alerts", "meta")}  # fmt: skip
    finally:
        db.close()


def test_a_store_loaded_by_partitions_holds_what_the_whole_delivery_gives(
    store: tuple[str, str],
) -> None:
    """Loaded from the partitioned engine's staging (4 partitions, rows of IDs no person has
    in the extra one) the store holds the same rows, next row numbers and decisions, byte for
    byte, as loaded from the whole delivery at once; events then decide the same."""
    url, schema = store
    memory = EventService(SAMPLE, MONTH, pack=PACK, evaluator=shared_evaluator(),
                          freeze_gc=False)  # fmt: skip
    stream = events(memory, 30, 4)
    results, contents = [], []
    for partitions in (1, 4):
        counts = load_store(SAMPLE, MONTH, url, pack=PACK, schema=schema, partitions=partitions)
        contents.append(_contents(url, schema))
        service = db_service(url, schema)
        results.append([service.apply(e).as_dict() for e in stream])
        service.close()
        assert counts["persons"] == 2970 and counts["static_alerts"] > 0
    whole, parts = contents
    assert len(whole["rows"]) == 10094 and len(whole["outcomes"]) == 370
    assert parts == whole
    assert results[0] == results[1] and any(r["changes"] for r in results[0])
