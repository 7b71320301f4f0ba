"""Benchmark the two forms of the sweep's traces on a synthetic town: size, write time, and the
time to find one person's records (what the web app's person explanation does).

In a fresh child process it ingests and evaluates the town once, then writes the traces as
``traces.jsonl`` and as the columnar ``traces/`` folder (each timed, best of --repeat), and
looks up --lookups residents in each: the columnar traces read directly
(:func:`benefits.traces.read_person_records`), traces.jsonl through the web app's index
(:class:`benefits.web.traceindex.TraceIndex`: built once per file, then seek and read).

    python benchmarks/traces.py                          # the 330,000-person town
    python benchmarks/traces.py --sizes 50000 --data-dir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(data: Path, month: str, work: Path, repeat: int, lookups: int) -> dict:
    """Evaluate once, then write and read both forms (called in the child)."""
    import polars as pl

    from benefits import traces as tracing
    from benefits.evaluate import evaluate
    from benefits.ingest import load_extracts
    from benefits.months import check_sweep_month
    from benefits.rulebook import load_pack
    from benefits.sweep import finish_entitlements
    from benefits.web.traceindex import TraceIndex

    pack = load_pack()
    ev = evaluate(
        pack, load_extracts(data, pack.catalogue.tables), check_sweep_month(month, pack, None)
    )
    _, held = finish_entitlements(ev)
    out: dict = {"persons": ev.facts.height, "records": tracing.count_records(ev)}
    for fmt in ("jsonl", "parquet"):
        best = float("inf")
        for _ in range(repeat):
            folder = work / fmt
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            t = time.perf_counter()
            tracing.write_sweep_traces(pack, ev, held, folder, fmt)
            best = min(best, time.perf_counter() - t)
        out[f"{fmt}_write_s"] = best
        files = [p for p in (work / fmt).rglob("*") if p.is_file()]
        out[f"{fmt}_bytes"] = sum(p.stat().st_size for p in files)
    ids = pl.read_parquet(tracing.trace_parts(work / "parquet")[0], columns=["id_no"])["id_no"]
    picked = random.Random(1).sample(ids.unique().sort().to_list(), lookups)
    t = time.perf_counter()
    col = [tracing.read_person_records(work / "parquet", i) for i in picked]
    out["parquet_lookup_ms"] = (time.perf_counter() - t) / lookups * 1000
    cache = work / "cache"
    t = time.perf_counter()
    index = TraceIndex.open(work / "jsonl" / "traces.jsonl", cache)
    out["jsonl_index_s"] = time.perf_counter() - t
    t = time.perf_counter()
    lines = [index.lines(i) for i in picked]
    out["jsonl_lookup_ms"] = (time.perf_counter() - t) / lookups * 1000
    if col != lines:
        raise AssertionError("the two forms disagree on a person's records")
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def ensure_town(size: int, seed: int, month: str, data_dir: Path) -> Path:
    """The town of benchmarks/sweep.py (CSV, 1 % dirty rows), generated once."""
    folder = data_dir / f"town-{size}-s{seed}-{month}"
    if not (folder / "persons.csv").exists():
        from benefits.synth import generate

        generate(persons=size, seed=seed, out=folder, month=month, dirty=0.01)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[330_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2025-01")
    parser.add_argument("--repeat", type=int, default=2, help="writes per form; best is shown")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--child", nargs=2, metavar=("DATA", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        data, work = Path(args.child[0]), Path(args.child[1])
        print(json.dumps(one_run(data, args.month, work, args.repeat, args.lookups)))
        return
    rows = []
    for size in args.sizes:
        data = ensure_town(size, args.seed, args.month, args.data_dir)
        with tempfile.TemporaryDirectory() as work:
            cmd = [sys.executable, __file__, "--month", args.month, "--repeat", str(args.repeat),
                   "--lookups", str(args.lookups), "--child", str(data), work]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        rows.append((size, json.loads(proc.stdout.strip().splitlines()[-1])))
    print(f"machine: {platform.processor() or platform.machine()} · Python "
          f"{platform.python_version()}")  # fmt: skip
    head = ("persons", "records", "form", "size MB", "write s", "first lookup s",
            "lookup ms", "size vs JSONL")  # fmt: skip
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for size, r in rows:
        for fmt, first in (("jsonl", r["jsonl_index_s"]), ("parquet", 0.0)):
            print(" | ".join([
                f"{size:,}", f"{r['records']:,}", fmt, f"{r[fmt + '_bytes'] / 1e6:,.1f}",
                f"{r[fmt + '_write_s']:.2f}", f"{first:.2f}", f"{r[fmt + '_lookup_ms']:.1f}",
                f"{r[fmt + '_bytes'] / r['jsonl_bytes']:.3f}",
            ]))  # fmt: skip
    print(f"child peak memory: {rows[-1][1]['peak_mib']:,.0f} MiB")


if __name__ == "__main__":
    main()
