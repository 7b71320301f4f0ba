"""Run the reliability suite on a 100,000-person month and print its figures as Markdown.

Runs ``pytest tests/reliability`` (SQLite, and PostgreSQL when reachable) with
``BENEFITS_RELIABILITY_PERSONS`` people, collects the figures each test records — processes
run, processes killed with SIGKILL at a crash point, commands refused, duplicate payments and
missing items found — and prints the table for benchmarks/RESULTS.md.

    python benchmarks/reliability.py                     # 100,000 people
    python benchmarks/reliability.py --persons 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "figures.jsonl"
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "BENEFITS_RELIABILITY_PERSONS": str(args.persons),
               "BENEFITS_RELIABILITY_REPORT": str(report), "PYTHONPATH": path}  # fmt: skip
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        figures = [json.loads(line) for line in report.read_text("utf-8").splitlines()]
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    print(f"# {args.persons:,} persons — {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average {load:.2f} before")  # fmt: skip
    print(f"pytest: {last} — wall {wall:.0f} s\n")
    rows: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for f in figures:
        row = rows[(f["test"], f["backend"])]
        row["cases"] += 1
        for key in ("runs", "kills", "refused", "duplicates", "missing", "items", "seconds"):
            row[key] += f[key]
    print("| test | backend | cases | processes run | killed (SIGKILL) | refused | "
          "duplicate payments | missing items | items | seconds |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    total: dict[str, float] = defaultdict(float)
    for (test, backend), row in sorted(rows.items()):
        print(f"| {test} | {backend} | {row['cases']:.0f} | {row['runs']:.0f} | "
              f"{row['kills']:.0f} | {row['refused']:.0f} | {row['duplicates']:.0f} | "
              f"{row['missing']:.0f} | {row['items']:,.0f} | {row['seconds']:.1f} |")  # fmt: skip
        for key, value in row.items():
            total[key] += value
    print(f"| **all** | | {total['cases']:.0f} | {total['runs']:.0f} | {total['kills']:.0f} | "
          f"{total['refused']:.0f} | **{total['duplicates']:.0f}** | **{total['missing']:.0f}** "
          f"| | {total['seconds']:.1f} |")  # fmt: skip
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
