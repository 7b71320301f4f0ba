"""Benchmark the Spark engine's two ways of handing partitions to tasks (issue 13).

`shuffle` (default): Spark reads the staged buckets (binaryFile) and groups them by partition
(`groupBy("part").applyInArrow`); `files`: one task per partition reads the staging folder
(`mapInArrow` over the partition numbers). For each delivery and method it runs
`benefits sweep --engine spark` as a child process (a fresh JVM each time, as in production)
and prints wall time, the peak resident memory of the whole process tree (driver, JVM, Python
workers), people per second, the Spark stage's seconds and whether the contract files are the
partitioned engine's (sha256 in summary.json).

    python benchmarks/spark.py --data /path/to/town --master 'local[2]'
    python benchmarks/spark.py --sizes 1000000 --partitions 8

Runs of a million people or more should hold the machine alone (`flock` on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import ROOT, ensure_data, run_measured

METHODS = ("shuffle", "files")


def sweep(
    data: Path, month: str, engine: str, master: str, partitions: int | None, method: str | None
) -> tuple[float, int, dict | None]:
    """(wall s, peak tree RSS bytes, summary or None) of one `benefits sweep` child."""
    out = Path(tempfile.mkdtemp(prefix="benefits-spark-bench-")) / "out"
    cmd = [sys.executable, "-m", "benefits.cli", "sweep", "--data", str(data), "--month", month,
           "--out", str(out), "--engine", engine, "-q"]  # fmt: skip
    if partitions:
        cmd += ["--partitions", str(partitions)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if engine == "spark":
        cmd += ["--master", master]
        env["PYSPARK_SUBMIT_ARGS"] = f"--conf spark.benefits.method={method} pyspark-shell"
    try:
        wall, peak, code = run_measured(cmd, env)
        if code:
            return wall, peak, None
        return wall, peak, json.loads((out / "summary.json").read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--data", type=Path, default=None, help="use this delivery (one size)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2025-01")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args()

    rows = []
    for size in [0] if args.data else args.sizes:
        data = args.data or ensure_data(size, args.seed, args.month)
        wall, peak, ref = sweep(data, args.month, "partitioned", "", args.partitions, None)
        if ref is None:
            raise SystemExit("the partitioned reference sweep failed")
        persons = ref["tables"]["persons"]["read"]
        runs = [("partitioned", wall, peak, ref)]
        for method in args.methods:
            runs.append(
                (f"spark {method}", *sweep(data, args.month, "spark", args.master,
                                           args.partitions, method))
            )  # fmt: skip
        for name, wall, peak, summary in runs:
            if summary is None:
                rows.append((persons, name, "failed", "", "", "", "", ""))
                continue
            eng = summary["engine"]
            rows.append((
                persons, name, f"{wall:.1f}", f"{peak / 2**30:.2f}", f"{persons / wall:,.0f}",
                f"{summary['stage_seconds'].get('partitions', 0):.1f}",
                "yes" if summary["outputs"] == ref["outputs"] else "NO",
                f"P={eng['partitions']} W={eng['workers']} {eng.get('master', '')}".strip(),
            ))  # fmt: skip
            print(" | ".join(str(c) for c in rows[-1]), flush=True)

    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    head = ("people", "engine", "wall s", "peak GiB (tree)", "people/s", "partition stage s",
            "same outputs", "engine block")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join([f"{r[0]:,}", *map(str, r[1:])]) + " |")


if __name__ == "__main__":
    main()
