"""Helpers for the ledger tests: sweep folders in the data contract's format, bank return
files, a deterministic clock, and a whole month paid end to end."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benefits.idcard import make_id
from benefits.ledger import Ledger

COLUMNS = (
    "id_no",
    "household_no",
    "policy_id",
    "month",
    "mode",
    "amount",
    "held",
    "hold_reason",
    "hukou_community",
    "masked_name",
    "account_no",
)
ALICE, BOB, CAROL = "alice", "bob", "carol"  # preparer, approver, finance officer


def person_id(n: int) -> str:
    """A valid resident ID for person number n (born 1940 + n % 60)."""
    return make_id("330106", dt.date(1940 + n % 60, 1 + n % 12, 1 + n % 28), 100 + n % 900)


@dataclass
class Ent:
    """One entitlements.csv row; defaults make a payable old-age allowance."""

    n: int
    policy_id: str = "old_age_allowance"
    amount: str = "60.00"
    mode: str = "pay"
    held: bool = False
    hold_reason: str = ""
    community: str = "翠苑一区"
    masked_name: str = "张*明"
    account_no: str | None = None  # None: a made-up valid account

    def row(self, month: str) -> list[str]:
        account = f"62220200{self.n:08d}" if self.account_no is None else self.account_no
        return [
            person_id(self.n),
            f"H{self.n // 3:06d}",
            self.policy_id,
            month,
            self.mode,
            self.amount,
            "true" if self.held else "false",
            self.hold_reason if self.held else "",
            self.community,
            self.masked_name,
            account,
        ]


def write_sweep(
    out: Path,
    month: str,
    ents: Iterable[Ent],
    *,
    version: str = "2025.1",
    pack_hash: str = "sha256:" + "ab" * 32,
    persons_sha: str = "cd" * 32,
) -> Path:
    """Write a sweep output folder exactly as the data contract describes it."""
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted((e.row(month) for e in ents), key=lambda r: (r[0], r[2]))
    with open(out / "entitlements.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)
    policies: dict[str, dict[str, object]] = {}
    for r in rows:
        p = policies.setdefault(r[2], {"mode": r[4], "count": 0, "held": 0})
        p["count"] = int(p["count"]) + 1  # type: ignore[call-overload]
        p["held"] = int(p["held"]) + (r[6] == "true")  # type: ignore[call-overload]
    summary = {
        "month": month,
        "rule_pack": {"version": version, "hash": pack_hash},
        "inputs": {"persons": {"file": "persons.csv", "sha256": persons_sha}},
        "tables": {"persons": {"file": "persons.csv", "read": len(rows), "accepted": len(rows),
                               "quarantined": 0}},
        "policies": policies,
        "run_seconds": 0.1,
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), "utf-8")
    return out


def town(people: int, *, amount: str = "60.00", start: int = 0) -> list[Ent]:
    """`people` payable old-age allowances in three communities."""
    communities = ("翠苑一区", "翠苑二区", "文新街道")
    return [
        Ent(n, amount=amount, community=communities[n % 3]) for n in range(start, start + people)
    ]


def bank_lines(path: Path) -> list[list[str]]:
    """The item lines of a bank file (header and trailer removed)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["account", "masked_name", "amount", "reference"]
    assert rows[-1][0] == "TRAILER"
    return rows[1:-1]


def write_return(bank_file: Path, dest: Path, failed: dict[int, str] | None = None) -> Path:
    """A bank return file for `bank_file`: every line paid except `failed` {line index: reason}."""
    failed = failed or {}
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["reference", "status", "reason", "amount"])
        for i, line in enumerate(bank_lines(bank_file)):
            if i in failed:
                w.writerow([line[3], "failed", failed[i], line[2]])
            else:
                w.writerow([line[3], "paid", "", line[2]])
    return dest


class TickClock:
    """A deterministic clock: starts at `start`, one second later at every call."""

    def __init__(self, start: dt.datetime = dt.datetime(2025, 2, 3, 9, 0, tzinfo=dt.UTC)):
        self._counter = itertools.count()
        self._start = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._start + dt.timedelta(seconds=next(self._counter))


def pay_month(
    ledger: Ledger, out: Path, bank_dir: Path, *, failed: dict[int, str] | None = None
) -> int:
    """Import `out`, create, submit (alice), approve (bob), export and reconcile (carol)."""
    run = ledger.import_run(out, by=ALICE)
    batch = ledger.create_batch(run.run_id, by=ALICE)
    ledger.submit(batch.id, by=ALICE)
    ledger.approve(batch.id, by=BOB)
    bank = bank_dir / f"batch-{batch.id}.csv"
    ledger.export(batch.id, bank, by=CAROL)
    ret = write_return(bank, bank_dir / f"batch-{batch.id}-return.csv", failed)
    ledger.reconcile(batch.id, ret, by=CAROL)
    return batch.id
