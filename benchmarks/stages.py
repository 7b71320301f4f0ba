"""Time the town's monthly sweep stage by stage, from a delivery as the contract allows it:
GBK CSV from some departments, Parquet from others.

The town (330,000 people, 1 % dirty rows, seed 7) is generated once in both forms with
`benefits synth`; the mixed delivery takes the tables of :data:`GBK_TABLES` as GBK CSV and the
others as Parquet. Each run is the real command line, ``benefits sweep --quiet``, in a fresh
process, timed from outside:

- start-up — the process's wall time minus the sweep's own (interpreter, imports, rule pack,
  month check, printing);
- ingest — reading, decoding, parsing and validating every table (the sweep's own timing);
  ``decode`` and ``parse`` are measured apart in a child (serial seconds over the files: GBK to
  UTF-8, then the CSV/Parquet reader), validation is the rest;
- merge, evaluate, traces (columnar, the default), write (the contract's CSV and Parquet
  tables) — the sweep's own timings (summary.json ``stage_seconds``).

    python benchmarks/stages.py                      # the town, best of 3
    python benchmarks/stages.py --sizes 50000 --repeat 1 --data-dir /tmp/bench
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# departments that deliver GBK CSV (civil affairs, public security, the disabled persons'
# federation); the others (social security, health, banks) deliver Parquet
GBK_TABLES = (
    "persons",
    "deaths",
    "assistance",
    "household_finance",
    "disability_certificates",
    "parent_situations",
)


def mixed_town(size: int, seed: int, month: str, data_dir: Path) -> Path:
    """The mixed delivery (generated once: GBK CSV and Parquet forms, then picked per table)."""
    from benefits.schema import TABLE_ORDER
    from benefits.synth import generate

    folder = data_dir / f"town-{size}-s{seed}-{month}-gbk+parquet"
    if (folder / "persons.csv").exists():
        return folder
    forms = {}
    for fmt, encoding in (("csv", "gbk"), ("parquet", "utf-8")):
        forms[fmt] = data_dir / f"town-{size}-s{seed}-{month}-{fmt}-{encoding}"
        if not (forms[fmt] / f"persons.{fmt}").exists():
            generate(size, seed, forms[fmt], month, dirty=0.01, fmt=fmt, encoding=encoding)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in TABLE_ORDER:
        fmt = "csv" if name in GBK_TABLES else "parquet"
        shutil.copyfile(forms[fmt] / f"{name}.{fmt}", tmp / f"{name}.{fmt}")
    tmp.rename(folder)
    return folder


def decode_and_parse(data: Path) -> dict[str, float]:
    """Serial seconds spent decoding GBK and parsing, over the delivery's files (child)."""
    import polars as pl

    from benefits.ingest import read_parquet_text
    from benefits.schema import TABLES

    decode = parse = 0.0
    for path in sorted(data.iterdir()):
        raw = path.read_bytes()
        if path.suffix == ".csv":
            t = time.perf_counter()
            text = raw.decode("gb18030").encode("utf-8")
            decode += time.perf_counter() - t
            t = time.perf_counter()
            pl.read_csv(io.BytesIO(text), infer_schema=False, truncate_ragged_lines=True)
            parse += time.perf_counter() - t
        else:
            t = time.perf_counter()
            read_parquet_text(raw, path, TABLES[path.stem])
            parse += time.perf_counter() - t
    return {"decode": decode, "parse": parse}


def one_sweep(data: Path, month: str, out: Path) -> dict:
    """One `benefits sweep` in a fresh process: wall time and the sweep's stage timings."""
    cmd = [sys.executable, "-m", "benefits.cli", "sweep", "--data", str(data), "--month", month,
           "--out", str(out), "--quiet"]  # fmt: skip
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - t
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return {
        "wall": wall,
        "startup": wall - summary["run_seconds"],
        **summary["stage_seconds"],
        "persons": summary["tables"]["persons"]["read"],
        "records": summary.get("trace_records", 0),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[330_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2025-01")
    parser.add_argument("--repeat", type=int, default=3, help="sweeps per size; best is shown")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(decode_and_parse(args.child)))
        return
    rows = []
    for size in args.sizes:
        data = mixed_town(size, args.seed, args.month, args.data_dir)
        cmd = [sys.executable, __file__, "--child", str(data)]
        proc = subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
        split = json.loads(proc.stdout.strip().splitlines()[-1])
        with tempfile.TemporaryDirectory() as tmp:
            runs = [one_sweep(data, args.month, Path(tmp) / f"out{i}") for i in range(args.repeat)]
        rows.append((size, min(runs, key=lambda r: r["wall"]), split))
    print(f"machine: {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
          f"Python {platform.python_version()} · GBK CSV: {', '.join(GBK_TABLES)}; "
          "others Parquet")  # fmt: skip
    head = ("persons", "start-up s", "ingest s", "(decode s", "parse s)", "merge s",
            "evaluate s", "traces s", "write s", "whole sweep s", "load avg")  # fmt: skip
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for size, r, split in rows:
        print(" | ".join([
            f"{size:,}", f"{r['startup']:.2f}", f"{r['ingest']:.2f}", f"({split['decode']:.2f}",
            f"{split['parse']:.2f})", f"{r['merge']:.2f}", f"{r['evaluate']:.2f}",
            f"{r.get('traces', 0):.2f}", f"{r['write']:.2f}", f"{r['wall']:.2f}",
            f"{r['load']:.2f}",
        ]))  # fmt: skip


if __name__ == "__main__":
    main()
