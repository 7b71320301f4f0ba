"""Benchmark the ledger: a town's month (≈ 30,000 payments) through the whole lifecycle.

For each database it starts from an empty ledger (a SQLite file in a temporary folder; a
fresh PostgreSQL schema, dropped afterwards), then times: schema creation, importing the sweep,
creating the batch, submit, approve, exporting the bank file, reconciling the bank's return
file, a correction sweep (arrears for everyone), and verifying the audit chain.

    python benchmarks/ledger.py                          # 30,000 items, SQLite and PostgreSQL
    python benchmarks/ledger.py --items 100000 --backends sqlite
    python benchmarks/ledger.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

PostgreSQL is taken from --pg-url, else $BENEFITS_TEST_POSTGRES_URL, else the local server
(postgresql+psycopg://postgres@127.0.0.1:5432/test); it is skipped if unreachable.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benefits.idcard import make_id
from benefits.ledger import Ledger
from benefits.ledger.db import resolve_url

PG_LOCAL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS = ("id_no", "household_no", "policy_id", "month", "mode", "amount", "held",
           "hold_reason", "hukou_community", "masked_name", "account_no")  # fmt: skip
POLICIES = (  # (policy, mode, amount); cycled over people, about one in four has two
    ("old_age_allowance", "pay", "60.00"),
    ("dibao_allowance", "pay", "459.00"),
    ("home_care_service_subsidy", "credit", "200.00"),
    ("severe_disability_nursing_subsidy", "pay", "260.20"),
    ("disability_living_subsidy", "pay", "650.50"),
)


def write_town(out: Path, month: str, items: int, raise_by: str = "0.00") -> Path:
    """A sweep folder with `items` pay/credit rows (1 % held) in 43 communities."""
    out.mkdir(parents=True, exist_ok=True)
    extra = float(raise_by)
    rows = []
    n = 0
    while len(rows) < items:
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=n // 1000)
        id_no = make_id("330106", birth, n % 1000)
        for k in range(1 + (n % 4 == 0)):
            policy, mode, amount = POLICIES[(n + k) % len(POLICIES)]
            held = n % 100 == 7
            value = f"{float(amount) + extra:.2f}"
            account = "" if held else f"6222{n:012d}"
            rows.append((id_no, f"H{n // 3:07d}", policy, month, mode, value,
                         "true" if held else "false", "account_problem" if held else "",
                         f"330106{n % 43:03d}", "张*明", account))  # fmt: skip
        n += 1
    rows = sorted(rows[:items], key=lambda r: (r[0], r[2]))
    with open(out / "entitlements.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)
    summary = {
        "month": month,
        "rule_pack": {"version": "bench", "hash": f"sha256:{raise_by}"},
        "inputs": {"persons": {"file": "persons.csv", "sha256": "0" * 64}},
        "tables": {},
        "policies": {},
    }
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return out


def write_return(bank: Path, dest: Path) -> Path:
    """The bank's answer: every line paid except one in 500."""
    with open(bank, newline="", encoding="utf-8") as fh, open(dest, "w", encoding="utf-8") as o:
        o.write("reference,status,reason\n")
        for i, row in enumerate(list(csv.reader(fh))[1:-1]):
            o.write(f"{row[3]},failed,account closed\n" if i % 500 == 0 else f"{row[3]},paid,\n")
    return dest


@contextmanager
def database(backend: str, tmp: Path, pg_url: str | None) -> Iterator[str]:
    """A fresh, empty database URL for `backend`."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'bench.sqlite'}"
        return
    assert pg_url
    schema = f"ledger_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def bench(url: str, tmp: Path, sweep: Path, rerun: Path) -> dict[str, float]:
    """Time each step of one month on the database at `url`."""
    times: dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        result = fn()
        times[name] = time.perf_counter() - t
        return result

    with Ledger(url) as ledger:
        step("init (migrations)", lambda: ledger.init(by="admin"))
        run = step("import sweep", lambda: ledger.import_run(sweep, by="alice"))
        batch = step("create batch", lambda: ledger.create_batch(run.run_id, by="alice"))
        step("submit", lambda: ledger.submit(batch.id, by="alice"))
        step("approve", lambda: ledger.approve(batch.id, by="bob"))
        bank = tmp / f"bank-{uuid.uuid4().hex[:6]}.csv"
        exported = step("export bank file", lambda: ledger.export(batch.id, bank, by="carol"))
        ret = write_return(bank, tmp / "return.csv")
        step("reconcile return file", lambda: ledger.reconcile(batch.id, ret, by="carol"))
        run2 = step("import correction sweep", lambda: ledger.import_run(rerun, by="alice"))
        fix = step("create arrears batch", lambda: ledger.create_batch(run2.run_id, by="alice"))
        step("verify audit chain", ledger.verify_audit)
        times["_items"] = batch.item_count
        times["_exported"] = exported.count
        times["_arrears"] = fix.item_count
    return times


def pg_url_or_none(explicit: str | None) -> str | None:
    url = resolve_url(explicit or os.environ.get("BENEFITS_TEST_POSTGRES_URL") or PG_LOCAL)
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as c:
            c.execute(text("select 1"))
        return url
    except Exception as exc:
        print(f"PostgreSQL not reachable at {make_url(url).render_as_string()}: {exc}")
        return None
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=30_000, help="payments in the batch")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    pg = pg_url_or_none(args.pg_url) if "postgresql" in backends else None
    if pg is None:
        backends = [b for b in backends if b != "postgresql"]

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmpdir:
        tmp = Path(tmpdir)
        sweep = write_town(tmp / "sweep", "2025-01", args.items)
        rerun = write_town(tmp / "rerun", "2025-01", args.items, raise_by="42.00")
        for backend in backends:
            with database(backend, tmp, pg) as url:
                results[backend] = bench(url, tmp, sweep, rerun)

    if not results:
        raise SystemExit("no backend to benchmark")
    first = next(iter(results.values()))
    print(
        f"\nLedger benchmark: {int(first['_items']):,} items "
        f"({int(first['_exported']):,} in the bank file, {int(first['_arrears']):,} arrears); "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs\n"
    )
    steps = [k for k in first if not k.startswith("_")]
    header = "| step | " + " | ".join(f"{b} (s)" for b in results) + " |"
    print(header)
    print("|---|" + "---:|" * len(results))
    for s in steps:
        print(f"| {s} | " + " | ".join(f"{results[b][s]:.2f}" for b in results) + " |")
    core = ("create batch", "submit", "approve", "export bank file")
    print(
        "| **create + approve + export** | "
        + " | ".join(f"**{sum(results[b][s] for s in core):.2f}**" for b in results)
        + " |"
    )
    whole = [sum(v for k, v in results[b].items() if not k.startswith("_")) for b in results]
    print(
        "| **whole month incl. import, reconcile, correction, verify** | "
        + " | ".join(f"**{w:.2f}**" for w in whole)
        + " |"
    )


if __name__ == "__main__":
    main()
