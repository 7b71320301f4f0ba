"""Benchmark the web app: the batch detail page of a 30,000-item batch, served by uvicorn.

Builds a ledger with one town-sized batch (30,000 pay/credit items in 43 communities, 1 % held),
starts the app on 127.0.0.1 and a free port, signs in as an auditor and times the batch page
(first, middle and last page; filtered by held, by policy and community, by adjustment) and
the JSON items endpoint. Each request runs `--repeat` times; the table shows the median and
the worst time, and the run fails if any median exceeds the budget (300 ms).

    python benchmarks/web.py                       # 30,000 items on SQLite
    python benchmarks/web.py --items 100000 --backends sqlite postgresql
    python benchmarks/web.py --items 1200000 --backends postgresql   # a city (flock it)
    python benchmarks/web.py --sealed-persons 30000   # + person pages on sealed outputs

``benchmarks/city.py`` measures the other pages (dashboard, alerts inbox, person search) at a
city's size too.

With ``--sealed-persons N`` it also sweeps a synthetic town of N persons through the app twice
— outputs plain, then sealed (``BENEFITS_SEAL_FILES=1``, issue 14) — and times the first
person page (which indexes the traces), further person pages, the explanation API and the
alerts inbox on each.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benefits.idcard import make_id
from benefits.ledger import Ledger
from benefits.ledger.db import resolve_url
from benefits.web.app import create_app
from benefits.web.settings import WebSettings

BUDGET_MS = 300.0
PG_LOCAL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS = ("id_no", "household_no", "policy_id", "month", "mode", "amount", "held",
           "hold_reason", "hukou_community", "masked_name", "account_no")
POLICIES = (
    ("old_age_allowance", "pay", "60.00"),
    ("dibao_allowance", "pay", "459.00"),
    ("home_care_service_subsidy", "credit", "300.00"),
    ("severe_disability_nursing_subsidy", "pay", "260.20"),
    ("disability_living_subsidy", "pay", "390.30"),
)
PASSWORD = "benchmark-password"


def write_sweep(out: Path, month: str, items: int) -> Path:
    """A sweep output folder with `items` payable rows."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    n = 0
    while len(rows) < items:
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=n // 1000)
        id_no = make_id("330106", birth, n % 1000)
        for k in range(1 + (n % 4 == 0)):
            policy, mode, amount = POLICIES[(n + k) % len(POLICIES)]
            held = n % 100 == 7
            rows.append((id_no, f"H{n // 3:07d}", policy, month, mode, amount,
                         "true" if held else "false", "账户问题 account problem" if held else "",
                         f"330106{n % 43:03d}", "张*明", "" if held else f"6222{n:012d}"))
        n += 1
    rows = sorted(rows[:items], key=lambda r: (r[0], r[2]))
    with open(out / "entitlements.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)
    summary = {"month": month, "rule_pack": {"version": "bench", "hash": "bench"},
               "inputs": {}, "tables": {}, "policies": {}}
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database(backend: str, folder: Path, pg_url: str) -> Iterator[str | None]:
    """A database URL for the backend (a fresh PostgreSQL schema, dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.sqlite'}"
        return
    base = resolve_url(pg_url)
    admin = create_engine(base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception:
        admin.dispose()
        yield None
        return
    schema = f"web_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def seed(url: str, folder: Path, items: int) -> int:
    """Import the sweep, create and submit the batch; returns the batch id."""
    ledger = Ledger(url)
    ledger.init(by="bench")
    t = time.perf_counter()
    run = ledger.import_run(write_sweep(folder / "sweep", "2025-01", items), by="bench")
    batch = ledger.create_batch(run.run_id, by="bench")
    ledger.submit(batch.id, by="bench")
    print(f"  seeded {items:,} items in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    ledger.close()
    return batch.id


def measure(url: str, folder: Path, batch_id: int, repeat: int) -> list[tuple[str, float, float]]:
    """Serve the app and time each page; returns (what, median ms, max ms)."""
    settings = WebSettings(db=url, data=folder, work=folder / "work", secret_key="bench")
    app = create_app(settings)
    app.state.ctx.accounts.create_user("bench", PASSWORD, ["auditor"], by="bench")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    results = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text)
            assert token is not None
            client.post("/login", data={"username": "bench", "password": PASSWORD,
                                        "token": token.group(1)})
            pages = (client.get(f"/batches/{batch_id}").text.count("page") and
                     int(re.search(r"of (\d+)", client.get(f"/batches/{batch_id}").text)[1]))
            after = client.get(f"/api/v1/batches/{batch_id}/items").json()["next_after"]
            cases = [
                ("page 1", f"/batches/{batch_id}"),
                ("page 2 by keyset (next)", f"/batches/{batch_id}?page=2&after={after}"),
                (f"page {pages // 2} (middle)", f"/batches/{batch_id}?page={pages // 2}"),
                (f"page {pages} (last)", f"/batches/{batch_id}?page={pages}"),
                ("held only", f"/batches/{batch_id}?held=yes"),
                ("policy + community, page 2",
                 f"/batches/{batch_id}?policy=dibao_allowance&community=330106007&page=2"),
                ("adjustments (none)", f"/batches/{batch_id}?kind=adjustment"),
                ("API items, last page", f"/api/v1/batches/{batch_id}/items?page={pages}"),
            ]
            for what, path in cases:
                times = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    r = client.get(path)
                    times.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, (path, r.status_code, r.text[:300])
                results.append((what, statistics.median(times), max(times)))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.ctx.ledger.close()
    return results


def _signed_in(port: int) -> httpx.Client:
    """A client of the app on `port`, signed in as the benchmark's auditor."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post("/login", data={"username": "bench", "password": PASSWORD,
                                "token": token.group(1)})
    return client


def measure_persons(folder: Path, persons: int, repeat: int,
                    sealed: bool) -> list[tuple[str, float, float]]:  # fmt: skip
    """Person pages and the alerts inbox on a real sweep of `persons` (synthetic town), with
    its output files sealed (``BENEFITS_SEAL_FILES=1``) or plain; SQLite ledger."""
    from benefits.sealedfiles import ENV_SEAL, is_sealed
    from benefits.synth import generate
    from benefits.web.services import runs as run_service

    data = folder / "town"
    if not data.is_dir():
        generate(persons=persons, seed=7, out=data, month="2025-01", dirty=0.01)
    os.environ[ENV_SEAL] = "1" if sealed else "0"
    mode = "sealed" if sealed else "plain"
    settings = WebSettings(db=f"sqlite:///{folder / f'{mode}.sqlite'}", data=data,
                           work=folder / f"work-{mode}", secret_key="bench")  # fmt: skip
    app = create_app(settings)
    ctx = app.state.ctx
    ctx.accounts.create_user("bench", PASSWORD, ["auditor"], by="bench")
    t = time.perf_counter()
    result = run_service.start_sweep(ctx, "2025-01", by="bench")
    sweep_s = time.perf_counter() - t
    run = run_service.get_run(ctx, result.run_id)
    assert is_sealed(Path(run.source) / "traces.jsonl") == sealed
    batch = ctx.ledger.create_batch(result.run_id, by="bench")
    ids = sorted({it.id_no for it in ctx.ledger.items(batch.id, limit=None)})
    step = max(1, len(ids) // (repeat + 1))
    refs = [ctx.directory.ref(i) for i in ids[::step]][: repeat + 1]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    results = [(f"{mode}: sweep + import ({persons:,} persons), s", sweep_s * 1000, sweep_s * 1000)]
    try:
        client = _signed_in(port)
        try:
            t = time.perf_counter()
            assert client.get(f"/persons/{refs[0]}?month=2025-01").status_code == 200
            first = (time.perf_counter() - t) * 1000
            results.append((f"{mode}: first person page (indexes the traces)", first, first))
            cases = [
                ("person page", [f"/persons/{r}?month=2025-01" for r in refs[1:]]),
                ("API explanation", [f"/api/v1/persons/{r}/explanation?month=2025-01"
                                     for r in refs[1:]]),
                ("alerts inbox", ["/alerts?month=2025-01"] * repeat),
            ]  # fmt: skip
            for what, paths in cases:
                times = []
                for path in paths:
                    t = time.perf_counter()
                    r = client.get(path)
                    times.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, (path, r.status_code, r.text[:300])
                results.append((f"{mode}: {what}", statistics.median(times), max(times)))
        finally:
            client.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctx.ledger.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backends", nargs="+", default=["sqlite"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=os.environ.get("BENEFITS_TEST_POSTGRES_URL")
                        or PG_LOCAL)
    parser.add_argument("--sealed-persons", type=int, default=0, metavar="N",
                        help="also time person pages and the inbox on a real sweep of N "
                             "persons, outputs plain and sealed (issue 14)")
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    print(f"# batch detail page, {args.items:,} items — {cpu}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"\n| backend | request | median ms | max ms | budget {BUDGET_MS:.0f} ms |")
    print("|---|---|---:|---:|---|")
    ok = True
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp), args.pg_url) as url:
            if url is None:
                print(f"| {backend} | skipped: not reachable | | | |")
                continue
            batch_id = seed(url, Path(tmp), args.items)
            for what, median, worst in measure(url, Path(tmp), batch_id, args.repeat):
                passed = median < BUDGET_MS
                ok = ok and passed
                print(f"| {backend} | {what} | {median:.1f} | {worst:.1f} | "
                      f"{'ok' if passed else 'OVER'} |")
    if args.sealed_persons:
        with tempfile.TemporaryDirectory() as tmp:
            for sealed in (False, True):
                for what, median, worst in measure_persons(Path(tmp), args.sealed_persons,
                                                           args.repeat, sealed):  # fmt: skip
                    if what.endswith(", s"):  # a whole step, not a page: no budget
                        print(f"| sqlite | {what} | {median / 1000:.1f} s | | |")
                        continue
                    passed = median < BUDGET_MS or "first person page" in what
                    ok = ok and passed
                    print(f"| sqlite | {what} | {median:.1f} | {worst:.1f} | "
                          f"{'ok' if passed else 'OVER'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
