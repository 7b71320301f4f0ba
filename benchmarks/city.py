"""Benchmark a city's month in the ledger and the web app: 1.2 million items, 550,000 alerts.

Issue 16's sizes: a city of 10 million gives a batch of about 1.2 million items and about
550,000 alerts a month. Two ways to get the sweep's outputs:

- ``--from-sweep``: the real thing — the synthetic city of ``--persons`` people (10 million;
  Parquet, generated once and cached by ``benchmarks/scale.py``'s ``ensure_data``), swept by
  ``benefits sweep --engine partitioned`` in a child process (wall time and the peak RSS of
  its whole process tree);
- otherwise they are synthesised in today's data contract (``entitlements.csv``,
  ``alerts.csv``, ``summary.json``): ``--items`` pay/credit rows for ~1 million people in 600
  communities (1 % held by the sweep, 0.5 % without an account) and ``--alerts`` alerts —
  a quick run of the ledger and the pages at any size.

Then, on a fresh PostgreSQL schema (dropped afterwards), it times each step with its peak
memory (RSS of this process, sampled):

    import → create batch → submit → approve (a second officer) → export → reconcile (a
    return file) → verify audit → alerts into the inbox → events against the city's store
    (with --from-sweep: the store loaded from the delivery, the service started on it,
    --events events applied; 0 skips it) → the web pages (served by uvicorn, median of --repeat)

    flock bigrun.lock python benchmarks/city.py --from-sweep  # 10M people, swept for real
    python benchmarks/city.py                                # 1.2M items, 550k alerts
    python benchmarks/city.py --items 100000 --alerts 50000  # a quick look
    python benchmarks/city.py --skip-web                     # ledger steps only

Runs above 1 million rows are big runs: wrap them in ``flock`` on a shared machine.
PostgreSQL is taken from --pg-url, else $BENEFITS_TEST_POSTGRES_URL, else the local server.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benefits.idcard import make_id

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ledger as ledger_bench
import scale

BUDGET_MS = 300.0
GOAL_S = 120.0
COLUMNS = ("id_no", "household_no", "policy_id", "month", "mode", "amount", "held",
           "hold_reason", "hukou_community", "masked_name", "account_no")  # fmt: skip
ALERT_COLUMNS = ("id_no", "kind", "policy_id", "due_date", "message", "rule_id", "party",
                 "subject", "fingerprint")  # fmt: skip
POLICIES = (
    ("old_age_allowance", "pay", "60.00"),
    ("dibao_allowance", "pay", "459.00"),
    ("home_care_service_subsidy", "credit", "200.00"),
    ("severe_disability_nursing_subsidy", "pay", "260.20"),
    ("disability_living_subsidy", "pay", "650.50"),
)
ALERT_RULES = (  # (rule_id, kind, policy_id, message)
    ("cert_expiring", "cert_expiring", "disability_living_subsidy", "残疾证将于 {d} 到期"),
    ("dibao_review_due", "review_due", "dibao_allowance", "低保家庭 {d} 前须复核"),
    ("age_milestone", "age_milestone", "old_age_allowance", "{d} 年满 80 周岁"),
)
COMMUNITIES = 600
PASSWORD = "benchmark-password"


# ------------------------------------------------------------------------------ memory


class PeakRss:
    """The peak resident set size of this process during a step, sampled every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> int:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


# ------------------------------------------------------------------------------ synthesis


def write_city(out: Path, month: str, items: int, alerts: int, held_pct: int | None = None
               ) -> tuple[Path, list[str]]:  # fmt: skip
    """A sweep output folder of `items` payable rows and `alerts` alerts; some IDs to find.

    The sweep holds 1 % of the people and 0.5 % have no account, spread evenly; with
    `held_pct`, the sweep holds the last `held_pct` % of the people in the file's order and
    every other person has an account (the real city's 13.6 % held items bunch together in its
    order), and the alerts of one kind fall in the month's last days."""
    people = items * 5 // 6  # one person in five has two items
    held_from = people - people * held_pct // 100 if held_pct is not None else None
    out.mkdir(parents=True, exist_ok=True)
    sample: list[str] = []
    with open(out / "entitlements.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        n = written = 0
        while written < items:
            birth = dt.date(1925, 1, 1) + dt.timedelta(days=n // 900)
            id_no = make_id("330106", birth, n % 900)
            if n % 100_003 == 0:
                sample.append(id_no)
            for k in range(1 + (n % 5 == 0)):
                if written == items:
                    break
                policy, mode, amount = POLICIES[(n + k) % len(POLICIES)]
                held = n % 100 == 7 if held_from is None else n >= held_from
                spread = held_from is None and n % 200 == 13  # no account: held at creation
                account = "" if spread else f"6222{n:012d}"
                w.writerow((id_no, f"H{n // 3:08d}", policy, month, mode, amount,
                            "true" if held else "false", "account_problem" if held else "",
                            f"330106{n % COMMUNITIES:03d}", "张*明", account))  # fmt: skip
                written += 1
            n += 1
    with open(out / "alerts.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(ALERT_COLUMNS)
        for a in range(alerts):
            p = (a * 7) % max(n, 1)
            birth = dt.date(1925, 1, 1) + dt.timedelta(days=p // 900)
            id_no = make_id("330106", birth, p % 900)
            rule, kind, policy, message = ALERT_RULES[a % len(ALERT_RULES)]
            day = 25 + a % 4 if held_pct is not None and kind == "review_due" else 1 + a % 28
            due = f"{month}-{day:02d}"
            facts = json.dumps({"d": due}, sort_keys=True)
            w.writerow((id_no, kind, policy, due, message.format(d=due), rule, id_no, due,
                        hashlib.sha256(facts.encode()).hexdigest()))  # fmt: skip
    summary = {"month": month, "rule_pack": {"version": "city-bench", "hash": "sha256:city"},
               "inputs": {"persons": {"file": "persons.csv", "sha256": "0" * 64}},
               "tables": {}, "policies": {}}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return out, sample


def write_return(bank: Path, dest: Path) -> Path:
    """The bank's answer: every line paid except one in 500."""
    with open(bank, newline="", encoding="utf-8") as fh, open(dest, "w", encoding="utf-8") as o:
        o.write("reference,status,reason\n")
        reader = csv.reader(fh)
        next(reader)
        for i, row in enumerate(reader):
            if row[0] == "TRAILER":
                break
            o.write(f"{row[3]},failed,account closed\n" if i % 500 == 0 else f"{row[3]},paid,\n")
    return dest


# ------------------------------------------------------------------------------ steps


class Steps:
    """Each step's wall time and peak memory, printed as a table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, int, str]] = []

    def run(self, name: str, fn: Callable[[], Any], note: str = "") -> Any:
        with PeakRss() as mem:
            t = time.perf_counter()
            result = fn()
            took = time.perf_counter() - t
        self.add(name, took, mem.peak, note)
        return result

    def add(self, name: str, took: float, peak: int, note: str = "") -> None:
        """Record a step measured elsewhere (a child process tree)."""
        self.rows.append((name, took, peak, note))
        print(f"  {name}: {took:.1f} s, peak {peak / 2**20:,.0f} MiB {note}", file=sys.stderr)


def sweep_city(steps: Steps, data: Path, month: str, out: Path, workers: int | None) -> None:
    """``benefits sweep --engine partitioned`` of the city, timed with its process tree's peak."""
    cmd = [sys.executable, "-m", "benefits.cli", "sweep", "--data", str(data), "--month", month,
           "--out", str(out), "--engine", "partitioned", "-q"]  # fmt: skip
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(scale.ROOT)}
    took, peak, code = scale.run_measured(cmd, env)
    if code:
        raise SystemExit(f"the sweep failed (exit code {code})")
    steps.add("sweep (partitioned)", took, peak, "(process tree)")


def sample_people(out: Path, every: int = 100_003) -> list[str]:
    """Some resident IDs with a payment in the sweep's entitlements (for the person search)."""
    from benefits.sealedfiles import read_csv

    ids = read_csv(out / "entitlements.csv", columns=["id_no"], infer_schema=False)["id_no"]
    return ids.gather_every(every).to_list()[:20]


EVENTS_SCHEMA = "city_events_store"


def events_step(steps: Steps, url: str, data: Path, month: str, events: int) -> list[str]:
    """The change-events service against the city's store (issue 16 item 3):
    ``benchmarks/events.py`` loads the store from the city's delivery partition by partition
    (``benefits events load-store``), starts the service on it and applies `events` events;
    timed with its process tree's peak. Returns its report lines (start-up, memory, p99),
    printed with the month's table. The store's schema is dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    cmd = [sys.executable, str(scale.ROOT / "benchmarks" / "events.py"), "--data", str(data),
           "--month", month, "--store", plain, "--store-schema", EVENTS_SCHEMA,
           "--events", str(events), "--warmup", str(min(1_000, events // 5)),
           "--households", str(min(5_000, events // 2))]  # fmt: skip
    log = Path(tempfile.mkstemp(prefix="city-events-", suffix=".log")[1])
    env = {**os.environ, "PYTHONPATH": str(scale.ROOT)}
    try:
        with log.open("w") as sink:
            took, peak, code = scale.run_measured(cmd, env, stdout=sink)
        lines = log.read_text(encoding="utf-8").splitlines()
    finally:
        log.unlink(missing_ok=True)
        engine = create_engine(url)
        with engine.begin() as c:
            c.execute(text(f"DROP SCHEMA IF EXISTS {EVENTS_SCHEMA} CASCADE"))
        engine.dispose()
    steps.add(f"events: load the store, start, {events:,} events", took, peak, "(process tree)")
    if code:
        print("\n".join(lines[-20:]), file=sys.stderr)
        raise SystemExit(f"the events benchmark failed (exit code {code})")
    keep = ("store loaded", "started ", "loader CPU", "start-up", "service RSS", "| ", "|---",
            "PASS", "FAIL")
    return [line for line in lines if line.startswith(keep)]


@contextmanager
def served(url: str, folder: Path, data: Path) -> Iterator[Any]:
    """The web app on a free local port, signed in as an auditor; yields an httpx client."""
    import httpx
    import uvicorn

    from benefits.web.app import create_app
    from benefits.web.settings import WebSettings

    settings = WebSettings(db=url, data=data, work=folder / "work", secret_key="bench")
    app = create_app(settings)
    ctx = app.state.ctx
    ctx.accounts.create_user("bench", PASSWORD, ["auditor"], by="bench")
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text)
            assert token is not None
            client.post("/login", data={"username": "bench", "password": PASSWORD,
                                        "token": token.group(1)})  # fmt: skip
            client.ctx = ctx  # type: ignore[attr-defined]
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctx.ledger.close()


def time_pages(client: Any, batch_id: int, month: str, people: list[str], repeat: int
               ) -> list[tuple[str, float, float]]:  # fmt: skip
    """(request, median ms, max ms) of every page the issue names, at the city's size."""
    first = client.get(f"/api/v1/batches/{batch_id}/items?per_page=50").json()
    pages = first["pages"]
    after = first["next_after"]
    held = client.get(f"/api/v1/batches/{batch_id}/items?held=yes&per_page=50").json()
    csrf_page = client.get("/persons").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', csrf_page)
    b = f"/batches/{batch_id}"
    cases: list[tuple[str, str, str, dict[str, str] | None]] = [
        ("batch page 1", "GET", b, None),
        ("batch page 2 (next, keyset)", "GET", f"{b}?page=2&after={after}", None),
        ("batch page, middle (jump by number)", "GET", f"{b}?page={pages // 2}", None),
        ("batch page, last", "GET", f"{b}?page={pages}", None),
        ("held filter", "GET", f"{b}?held=yes", None),
        (
            "held filter, next page (keyset)",
            "GET",
            f"{b}?held=yes&page=2&after={held['next_after']}",
            None,
        ),
        ("policy + community", "GET", f"{b}?policy=dibao_allowance&community=330106007", None),
        (
            "API items, next page (keyset)",
            "GET",
            f"/api/v1/batches/{batch_id}/items?page=2&after={after}",
            None,
        ),
        ("dashboard", "GET", f"/dashboard?month={month}", None),
        ("alerts inbox", "GET", f"/alerts?month={month}", None),
        ("alerts inbox, last page", "GET", f"/alerts?month={month}&page=99999", None),
        ("alerts inbox, one kind", "GET", f"/alerts?month={month}&kind=review_due", None),
    ]
    if csrf is not None and people:
        from benefits.web.privacy import person_ref

        who = people[len(people) // 2]
        cases.append(("person search (the first after start in max)", "POST", "/persons/search",
                      {"csrf_token": csrf.group(1), "id_no": who}))  # fmt: skip
        cases.append(("person page", "GET", f"/persons/{person_ref('bench', who)}", None))
    out = []
    for what, method, path, form in cases:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            r = (client.get(path) if method == "GET"
                 else client.post(path, data=form, follow_redirects=False))  # fmt: skip
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code in (200, 303), (path, r.status_code, r.text[:300])
        out.append((what, statistics.median(times), max(times)))
    return out


EXPLAINED = {  # the pages' queries, as the app sends them (keyset pages, kept totals)
    "batch page (keyset)": "SELECT id, amount, status FROM batch_items WHERE batch_id = :b "
    "AND id > :after ORDER BY id LIMIT 50",
    "held filter page 1": "SELECT id, amount FROM batch_items WHERE batch_id BETWEEN :b AND :b "
    "AND status = 'held' AND hold_reason IS NOT NULL ORDER BY batch_id DESC, id LIMIT 50",
    "held filter (keyset)": "SELECT id, amount FROM batch_items WHERE batch_id BETWEEN :b AND :b "
    "AND status = 'held' AND hold_reason IS NOT NULL AND id > :after "
    "ORDER BY batch_id DESC, id LIMIT 50",
    "community filter": "SELECT id, amount FROM batch_items WHERE batch_id = :b "
    "AND community = '330106007' AND policy_id = 'dibao_allowance' ORDER BY id LIMIT 50",
    "last page (backwards)": "SELECT id FROM batch_items WHERE batch_id = :b "
    "ORDER BY id DESC LIMIT 50",
    "batch totals (kept)": "SELECT policy_id, community, kind, status, items, amount "
    "FROM batch_totals WHERE batch_id = :b",
    "alerts inbox page 1": "SELECT id FROM web_alerts WHERE first_month <= :m AND "
    "last_month >= :m ORDER BY due_date, kind, id LIMIT 50",
    "alerts inbox, one kind": "SELECT id FROM web_alerts WHERE first_month <= :m AND "
    "last_month >= :m AND kind = 'review_due' AND status IN ('open', 'acknowledged') "
    "ORDER BY due_date, kind, id LIMIT 50",
    "person's items (blind index)": "SELECT id FROM batch_items WHERE id_index = :ix",
}


def explain(url: str, batch_id: int, month: str) -> list[tuple[str, str, float]]:
    """(query, plan's access path, execution ms) of each page query, by EXPLAIN ANALYZE."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    out = []
    try:
        with engine.connect() as c:
            c.execute(text("ANALYZE"))
            after = c.execute(text("SELECT (min(id) + max(id)) / 2 FROM batch_items")).scalar()
            ix = c.execute(text("SELECT id_index FROM batch_items LIMIT 1")).scalar()
            params = {"b": batch_id, "after": after, "m": month, "ix": ix}
            for name, sql in EXPLAINED.items():
                plan = c.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"), params).scalar()
                top = plan[0]
                node, path = top["Plan"], []
                while node is not None:
                    if "Index Name" in node or "Scan" in node["Node Type"]:
                        path.append(f"{node['Node Type']} {node.get('Index Name', '')}".strip())
                    node = (node.get("Plans") or [None])[0]
                out.append((name, "; ".join(path), float(top["Execution Time"])))
    finally:
        engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_200_000)
    parser.add_argument("--alerts", type=int, default=550_000)
    parser.add_argument("--held", type=int, default=None,
                        help="hold the last N %% of the people, and put one kind of alert at "
                        "the month's end, as in the real city (N ~14); else 1 %% spread evenly")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-web", action="store_true")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--from-sweep", action="store_true",
                        help="sweep the synthetic city for real (else synthesise outputs)")
    parser.add_argument("--persons", type=int, default=10_000_000, help="with --from-sweep")
    parser.add_argument("--workers", type=int, default=None, help="the sweep's workers")
    parser.add_argument("--events", type=int, default=10_000,
                        help="with --from-sweep: events applied against the city's store (0: none)")
    parser.add_argument("--data", type=Path, default=None,
                        help="with --from-sweep: sweep this delivery instead of the cached city")
    args = parser.parse_args()
    pg = ledger_bench.pg_url_or_none(args.pg_url)
    if pg is None:
        raise SystemExit("PostgreSQL is needed for the city benchmark")
    from benefits.ledger import Ledger

    steps = Steps()
    month = "2025-01"
    pages: list[tuple[str, float, float]] = []
    plans: list[tuple[str, str, float]] = []
    n_alerts: int | None = None
    events: list[str] = []
    with tempfile.TemporaryDirectory(prefix="city-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.from_sweep:
            data = args.data or steps.run("synthetic city (cached)",
                                          lambda: scale.ensure_data(args.persons, 7, month))
            sweep = tmp / "sweep"
            sweep_city(steps, data, month, sweep, args.workers)
            people = sample_people(sweep)
        else:
            data = tmp
            sweep, people = steps.run("synthesise the sweep's outputs",
                                      lambda: write_city(tmp / "sweep", month, args.items,
                                                         args.alerts, args.held))  # fmt: skip
        with ledger_bench.database("postgresql", tmp, pg) as url, Ledger(url) as ledger:
            steps.run("init (migrations)", lambda: ledger.init(by="admin"))
            run = steps.run("import run", lambda: ledger.import_run(sweep, by="alice"))
            batch = steps.run("create batch", lambda: ledger.create_batch(run.run_id, by="alice"))
            steps.run("submit", lambda: ledger.submit(batch.id, by="alice"))
            steps.run("approve", lambda: ledger.approve(batch.id, by="bob"))
            bank = tmp / "bank.csv"
            exported = steps.run(
                "export bank file", lambda: ledger.export(batch.id, bank, by="carol")
            )
            ret = write_return(bank, tmp / "return.csv")
            steps.run("reconcile return file", lambda: ledger.reconcile(batch.id, ret, by="carol"))
            steps.run("verify audit chain", ledger.verify_audit)
            if not args.skip_web:
                with served(url, tmp, data) as client:
                    from benefits.web.services import alerts as alert_service
                    from benefits.web.services import runs as run_service

                    ctx = client.ctx
                    the_run = run_service.latest_run(ctx, month)
                    n_alerts = steps.run(
                        "alerts into the inbox", lambda: alert_service.import_alerts(ctx, the_run)
                    )
                    if args.from_sweep and args.events:
                        events = events_step(steps, url, data, month, args.events)
                    plans = explain(url, batch.id, month)
                    pages = steps.run("web pages", lambda: time_pages(
                        client, batch.id, month, people, args.repeat))  # fmt: skip

    said = f"{n_alerts:,} alerts" if n_alerts is not None else "alerts not imported"
    print(f"\n# City month: {batch.item_count:,} items ({exported.count:,} in the bank file), "
          f"{said} — PostgreSQL, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs\n")  # fmt: skip
    print("| step | wall s | peak RSS MiB |")
    print("|---|---:|---:|")
    for name, took, peak, _ in steps.rows:
        print(f"| {name} | {took:.1f} | {peak / 2**20:,.0f} |")
    core = {"import run", "create batch", "export bank file"}
    over = [n for n, took, _, _ in steps.rows if n in core and took > GOAL_S]
    print(
        f"\nGoal: import, create batch and export each under {GOAL_S:.0f} s — "
        + ("met" if not over else f"NOT met: {', '.join(over)}")
    )
    ok = not over
    if events:
        print("\nEvents against the city's store (benchmarks/events.py):")
        print("\n".join(events))
        ok = ok and not any("FAIL" in line for line in events)
    if pages:
        print(f"\n| page | median ms | max ms | budget {BUDGET_MS:.0f} ms |")
        print("|---|---:|---:|---|")
        for what, median, worst in pages:
            passed = median < BUDGET_MS
            ok = ok and passed
            print(f"| {what} | {median:.1f} | {worst:.1f} | {'ok' if passed else 'OVER'} |")
    if plans:
        print("\n| query (EXPLAIN ANALYZE) | access path | ms |")
        print("|---|---|---:|")
        for name, path, ms in plans:
            print(f"| {name} | {path} | {ms:.1f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
