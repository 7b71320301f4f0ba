"""Benchmark the event path: a 330,000-person town, 10,000 mixed events, one at a time.

Loads the town (generated with ``benefits.synth.generate`` and cached under
``benchmarks/data/``, shared with benchmarks/sweep.py) into an event service for the month —
eligibility decided in process, as in production — then applies
mixed events of all twelve types to at least 5,000 distinct households, one by one, and prints
events per second, per-event latency (p50/p90/p99/max, measured around
``EventService.apply``: validation, row changes, facts, the decisions with traces, the
comparison), and the resident memory of the service (and of a worker process, when an
evaluator has one: none today) after warm-up and at the end. Targets (issue 4): p99 < 10 ms;
memory flat within 10 % after warm-up. The load average is printed too: other processes
share the CPUs.

    python benchmarks/events.py                          # 330,000 people, 10,000 events
    python benchmarks/events.py --events 2000 --persons 50000

With ``--store URL`` (``postgresql://…`` or ``sqlite:///file``) the service reads each
event's household from a database event store instead of holding the town in memory: the
store is bulk-loaded first (timed and printed; ``--no-load`` reuses a loaded one), then the
service's start-up time and memory are measured as above. Targets (issue 16): start-up
< 10 s and service memory < 1 GiB whatever the size, p99 < 10 ms.

    python benchmarks/events.py --store postgresql://postgres@127.0.0.1:5432/test \
        --store-schema bench_events --data-root DIR
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
sys.path.insert(0, str(ROOT))


def ensure_data(size: int, seed: int, month: str, root: Path = DATA) -> Path:
    """The cached synthetic town (generated on first use)."""
    folder = root / f"town-{size}-s{seed}-{month}"
    if not (folder / "persons.csv").exists():
        from benefits.synth import generate

        t = time.perf_counter()
        generate(persons=size, seed=seed, out=folder, month=month, dirty=0.01)
        print(f"generated {size:,} people in {time.perf_counter() - t:.1f} s -> {folder}")
    return folder


def rss_mib(pid: int | None) -> float:
    """Resident set size of a process, MiB (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def feasible(store: object, members: list[str], etype: str) -> bool:
    """Whether the household has a record this event type changes (so it is not refused)."""
    rows = store.rows  # type: ignore[attr-defined]
    if etype == "certificate_cancelled":
        return any(i in rows["disability_certificates"] for i in members)
    if etype == "assistance_ended":
        return any(i in rows["assistance"] for i in members)
    if etype == "hukou_moved_in":
        persons = store.persons  # type: ignore[attr-defined]
        return any(persons[i].hukou_status == "moved_out" for i in members)
    if etype == "parent_situation_ended":
        persons = store.persons  # type: ignore[attr-defined]
        parents = [x for i in members for x in (persons[i].father_id_no, persons[i].mother_id_no)]
        situations = rows["parent_situations"]
        return any(
            r.end_date is None for i in [*members, *parents] if i for r in situations.get(i, ())
        )
    return True


def draw_event(chooser: Any, store: Any, month: str, n: int, hh: str) -> dict:
    """Event number `n` about household `hh`: a type drawn until one fits its members."""
    from benefits.events.generate import TYPES, next_event

    members = store.members.get(hh) or [next(iter(store.persons))]
    etype = chooser.choice(TYPES)
    while not feasible(store, members, etype):
        etype = chooser.choice(TYPES)
    return next_event(chooser, store, month, n, people=members, households=[hh], etype=etype)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# the store's loader (in a child process): prints its counts, CPU seconds and peak RSS, and
# the peak RSS of the staging process it starts for a large delivery
LOAD_CHILD = """
import resource, sys, time
from benefits.events.storeload import load_store
if __name__ == "__main__":
    t, w = time.process_time(), time.perf_counter()
    stages = []
    counts = load_store(sys.argv[1], sys.argv[2], sys.argv[3], schema=sys.argv[4],
                        partitions=int(sys.argv[5]) or None,
                        progress=lambda s: stages.append(f"{time.perf_counter() - w:.1f} s {s}"))
    print("; ".join(stages) + f"; {time.perf_counter() - w:.1f} s done")
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(counts)
    print(f"loader CPU {time.process_time() - t:.1f} s, peak RSS {own.ru_maxrss / 1024:,.0f} MiB; "
          f"staging process CPU {kids.ru_utime + kids.ru_stime:.1f} s, peak RSS "
          f"{kids.ru_maxrss / 1024:,.0f} MiB (0: staged in the loader)")
"""


def _apply_all(
    store: str, schema: str, month: str, stream: list[dict], ready: object, start: object,
    out: object,
) -> None:  # fmt: skip
    """One service process of --processes: start, wait for the others, apply the stream."""
    from benefits.events.service import EventService

    t = time.perf_counter()
    service = EventService(".", month, store=store, store_schema=schema)
    started = time.perf_counter() - t
    ready.put(os.getpid())  # type: ignore[attr-defined]
    start.wait()  # type: ignore[attr-defined]
    results, latencies = [], []
    for ev in stream:
        t = time.perf_counter()
        results.append((ev["event_id"], service.apply(ev).status))
        latencies.append(time.perf_counter() - t)
    out.put((os.getpid(), started, rss_mib(os.getpid()), results, latencies))  # type: ignore[attr-defined]
    service.close()


def concurrent(args: argparse.Namespace, stream: list[dict]) -> bool:
    """--processes: that many service processes apply the same events at once; each event
    must be applied by one of them only (the others: duplicate, or rejected as before)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_apply_all, args=(args.store, args.store_schema, args.month,
                                                  stream, ready, start, out))
             for _ in range(args.processes)]  # fmt: skip
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    t = time.perf_counter()
    start.set()
    got = [out.get(timeout=3600) for _ in procs]
    wall = time.perf_counter() - t
    for p in procs:
        p.join(timeout=60)
    applied: Counter[str] = Counter()
    print(f"{args.processes} service processes, the same {len(stream):,} events each, at once "
          f"({wall:.1f} s):")  # fmt: skip
    for pid, started, rss, results, latencies in got:
        ms = [x * 1000 for x in latencies]
        st = Counter(s for _, s in results)
        applied.update(e for e, s in results if s == "applied")
        print(f"  process {pid}: start-up {started:.2f} s, RSS {rss:,.0f} MiB, {dict(st)}, "
              f"p50 {percentile(ms, 0.5):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
              f"max {max(ms):.1f} ms")  # fmt: skip
    once = all(n == 1 for n in applied.values())
    print(f"  events applied: {len(applied):,}, each by one process only: {once}")
    return once and all(p.exitcode == 0 for p in procs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=330_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2025-01")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--households", type=int, default=5_000, help="distinct, at least")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--in-process", action="store_true", help="no effect: always in process")
    parser.add_argument("--data-root", type=Path, default=DATA, help="where towns are cached")
    parser.add_argument("--data", type=Path, help="a delivery folder (instead of a town)")
    parser.add_argument("--store", help="event store URL (default: the in-memory store)")
    parser.add_argument("--store-schema", default="events_store", help="its PostgreSQL schema")
    parser.add_argument("--no-load", action="store_true", help="reuse the loaded store")
    parser.add_argument(
        "--first-event",
        type=int,
        default=0,
        help="number of the first event (a reused store: numbers not yet used, "
        "else its births and certificates are already there and refused)",
    )
    parser.add_argument("--partitions", type=int, help="the store's load: partitions")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="then N service processes apply the same new events at once",
    )
    parser.add_argument("--concurrent-events", type=int, default=2_000)  # fmt: skip
    args = parser.parse_args()

    from benefits.events.generate import RandomChooser
    from benefits.events.service import EventService

    data = args.data or ensure_data(args.persons, args.seed, args.month, args.data_root)
    load_before = os.getloadavg()
    if args.store and not args.no_load:
        import subprocess

        t0 = time.perf_counter()
        # in a child process, so that the load's memory is not counted as the service's
        child = subprocess.run(
            [sys.executable, "-c", LOAD_CHILD, str(data), args.month, args.store,
             args.store_schema, str(args.partitions or 0)],
            check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        print(f"store loaded in {time.perf_counter() - t0:.1f} s (load average "
              f"{os.getloadavg()[0]:.2f}): {child.stdout.strip()}")  # fmt: skip
    t0 = time.perf_counter()
    service = EventService(data, args.month, store=args.store, store_schema=args.store_schema)
    load_s = time.perf_counter() - t0
    worker = service.evaluator
    rss_loaded = rss_mib(os.getpid())
    counts = service.status()
    print(f"{'started' if args.store else 'loaded'} {counts['persons']:,} people in "
          f"{counts['households']:,} households for {args.month} in {load_s:.2f} s "
          f"({'event store ' + args.store.split('://')[0] if args.store else 'in memory'}), "
          f"RSS {rss_loaded:,.0f} MiB")  # fmt: skip

    rng = random.Random(args.seed)
    if args.store:
        from benefits.events.dbstore import DbStore

        reader = DbStore.connect(args.store, args.store_schema)  # to draw events, not timed
        reader.require(args.month, service.pack.catalogue.tables)
        # a random sample drawn by the database: a city's 4 million household numbers
        # would weigh on the RSS measured here (the service holds none); on PostgreSQL from
        # 1 % of the table's pages (a DISTINCT over a city's rows takes minutes)
        want = max(args.households + args.households // 5, 1)
        sample = " TABLESAMPLE SYSTEM (1) REPEATABLE (7)" if reader.kind == "postgresql" else ""
        households = sorted(r[0] for r in reader.execute(
            f"SELECT hh FROM (SELECT DISTINCT hh FROM {reader.q}rows{sample} "
            f"WHERE tbl = 'persons' AND hh IS NOT NULL) h ORDER BY random() LIMIT {want}"
        ).fetchall())  # fmt: skip
        if len(households) < want:  # a small town: all of them
            households = reader.households()
    else:
        households = sorted(service.store.members)
    rng.shuffle(households)
    pool = households[: max(args.households + args.households // 5, 1)]
    chooser = RandomChooser(args.seed)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    types: Counter[str] = Counter()
    touched: set[str] = set()
    changes = 0
    rss_warm = (0.0, 0.0)
    peak = (0.0, 0.0)
    start = time.perf_counter()
    for n in range(args.events):
        hh = pool[n % len(pool)]
        store = service.store
        if args.store:
            with reader.transaction() as tx:
                store = tx.working([hh])
        ev = draw_event(chooser, store, service.month, args.first_event + n, hh)
        t = time.perf_counter()
        result = service.apply(ev)
        latencies.append(time.perf_counter() - t)
        statuses[result.status] += 1
        types[ev["type"]] += 1
        touched.update(result.households)
        changes += len(result.changes)
        if n + 1 == args.warmup:
            rss_warm = (rss_mib(os.getpid()), rss_mib(getattr(worker, "pid", None)))
        if n % 500 == 0 or n + 1 == args.events:
            now = (rss_mib(os.getpid()), rss_mib(getattr(worker, "pid", None)))
            peak = (max(peak[0], now[0]), max(peak[1], now[1]))
    wall = time.perf_counter() - start
    rss_end = (rss_mib(os.getpid()), rss_mib(getattr(worker, "pid", None)))
    restarts = getattr(worker, "restarts", 0)
    service.close()

    measured = latencies[args.warmup :] or latencies
    ms = [x * 1000 for x in measured]
    p50, p90, p99 = (percentile(ms, q) for q in (0.50, 0.90, 0.99))
    growth = [
        (end - warm) / warm * 100 if warm else 0.0
        for warm, end in zip(rss_warm, rss_end, strict=True)
    ]
    load_after = os.getloadavg()
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python "
          f"{platform.python_version()} · load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")  # fmt: skip
    print(f"events: {args.events:,} ({', '.join(f'{k} {v}' for k, v in sorted(types.items()))})")
    print(f"results: {dict(statuses)}; {changes:,} changes; {len(touched):,} distinct households "
          f"re-decided; worker restarts {restarts}")  # fmt: skip
    if args.store:
        print(f"start-up {load_s:.2f} s ({'PASS' if load_s < 10 else 'FAIL'} < 10 s); service "
              f"RSS peak {max(peak[0], rss_end[0]):,.0f} MiB (includes the benchmark's own "
              f"list of {len(households):,} household numbers)")  # fmt: skip
    print(f"service RSS: {rss_loaded:,.0f} MiB after loading, {rss_warm[0]:,.0f} after "
          f"{args.warmup:,} events, {rss_end[0]:,.0f} at the end (peak sampled "
          f"{peak[0]:,.0f}); worker peak {peak[1]:,.0f} MiB")  # fmt: skip
    print()
    head = ("events/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms",
            "service RSS MiB warm→end", "worker RSS MiB warm→end", "load avg")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    print(
        "| "
        + " | ".join(
            [
                f"{args.events / wall:,.0f}",
                f"{p50:.2f}",
                f"{p90:.2f}",
                f"{p99:.2f}",
                f"{max(ms):.1f}",
                f"{statistics.mean(ms):.2f}",
                f"{rss_warm[0]:,.0f} → {rss_end[0]:,.0f} ({growth[0]:+.1f} %)",
                f"{rss_warm[1]:,.0f} → {rss_end[1]:,.0f} ({growth[1]:+.1f} %)",
                f"{load_before[0]:.2f} / {load_after[0]:.2f}",
            ]
        )
        + " |"
    )
    print()
    checks = {
        "p99 < 10 ms": p99 < 10.0,
        f"{args.households:,} distinct households": len(touched) >= args.households,
        "no crash (worker restarts 0, nothing failed)": restarts == 0 and not statuses["failed"],
        "memory flat after warm-up (grows < 10 %)": all(g < 10 for g in growth),
    }
    if args.store and args.processes:
        stream = []
        for n in range(args.concurrent_events):
            hh = pool[(n * 7 + 3) % len(pool)]
            with reader.transaction() as tx:
                store = tx.working([hh])
            stream.append(
                draw_event(chooser, store, service.month, args.first_event + args.events + n, hh)
            )
        checks[f"{args.processes} processes: each event applied once"] = concurrent(args, stream)
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
