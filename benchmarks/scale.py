"""Benchmark the sweep engines from 1 to 10 million people (issue 13).

For each size it generates a district with `benefits synth` (Parquet, cached under the data
folder), then runs `benefits sweep --engine E` as a child process for each engine and prints
wall time, the peak resident memory of the whole process tree (the sweep, its worker
processes, a Spark JVM) sampled every 50 ms, and people per second; it checks that every
engine wrote the same contract files (the sha256 in summary.json).

    python benchmarks/scale.py                                  # 1M, 3M, 10M; partitioned
    python benchmarks/scale.py --sizes 1000000 --engines single partitioned
    python benchmarks/scale.py --engines partitioned spark --master 'local[2]'

Runs above a million people should hold the machine alone (`flock` on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("BENEFITS_BENCH_DATA", ROOT / "benchmarks" / "data"))
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        p = int(entry.name)
        children.setdefault(int(fields[1]), []).append(p)  # field 4: ppid
        rss[p] = int(fields[21]) * PAGE  # field 24: rss in pages
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def run_measured(cmd: list[str], env: dict[str, str], stdout: Any = subprocess.DEVNULL
                 ) -> tuple[float, int, int]:
    """(wall seconds, peak tree RSS bytes, exit code) of a child command; its standard
    output to `stdout` (discarded unless given)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    return wall, peak, proc.returncode


def ensure_data(size: int, seed: int, month: str) -> Path:
    """A synthetic district of `size` people in Parquet (generated once, then cached)."""
    folder = DATA / f"city-{size}-s{seed}-{month}-parquet"
    if not (folder / "persons.parquet").exists():
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "benefits.cli", "synth", "--persons", str(size),
             "--seed", str(seed), "--month", month, "--out", str(folder),
             "--format", "parquet"],
            check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        print(f"generated {size:,} people in {time.perf_counter() - t:.1f} s -> {folder}")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", default=["partitioned"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2025-01")
    parser.add_argument("--traces", default=None, help="--traces value passed to the sweep")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--master", default=None, help="Spark master URL (engine spark)")
    parser.add_argument("--data", type=Path, default=None, help="use this delivery (one size)")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    for size in args.sizes:
        data = args.data or ensure_data(size, args.seed, args.month)
        digests: dict[str, dict[str, str]] = {}
        for engine in args.engines:
            out = Path(tempfile.mkdtemp(prefix="benefits-scale-")) / "out"
            cmd = [sys.executable, "-m", "benefits.cli", "sweep", "--data", str(data),
                   "--month", args.month, "--out", str(out), "--engine", engine, "-q"]  # fmt: skip
            for flag in ("traces", "workers", "partitions", "master"):
                value = getattr(args, flag)
                if value is not None and (flag != "master" or engine == "spark"):
                    cmd += [f"--{flag}", str(value)]
            wall, peak, code = run_measured(cmd, env)
            if code:
                rows.append((size, engine, "failed", "", "", "", ""))
                shutil.rmtree(out.parent, ignore_errors=True)
                continue
            summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
            persons = summary["tables"]["persons"]["read"]
            digests[engine] = summary["outputs"]
            same = all(d == digests[args.engines[0]] for d in digests.values())
            stages = " ".join(f"{k}={v:.1f}" for k, v in summary["stage_seconds"].items())
            eng = summary.get("engine", {})
            per = eng.get("partition_seconds")
            per_text = f" partition median={per['median']:.1f} max={per['max']:.1f}" if per else ""
            shape = f"P={eng.get('partitions')} W={eng.get('workers')} {stages}{per_text}"
            rows.append((size, engine, f"{wall:.1f}", f"{peak / 2**30:.2f}",
                         f"{persons / wall:,.0f}", "yes" if same else "NO", shape))  # fmt: skip
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
            shutil.rmtree(out.parent, ignore_errors=True)

    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    head = ("people", "engine", "wall s", "peak GiB (tree)", "people/s", "same outputs", "stages")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join([f"{r[0]:,}", *map(str, r[1:])]) + " |")


if __name__ == "__main__":
    main()
