"""Helpers of the reliability suite: the `benefits` CLI run as a real child process (killed at
a crash point, or held at a barrier file to race another), and the figures each test records."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from benefits.ledger import Ledger
from benefits.ledger.faults import ENV as CRASH_ENV
from benefits.ledger.models import BankFile, BankReturn, Batch, BatchItem, RunEntitlement, SweepRun

PERSONS = int(os.environ.get("BENEFITS_RELIABILITY_PERSONS", "100000"))
REPORT = os.environ.get("BENEFITS_RELIABILITY_REPORT")
ROOT = Path(__file__).resolve().parents[2]
SEED = 11
MONTH = "2025-01"

# `benefits …` in a child process; waits for a barrier file first when one is given, so that
# two children started together reach the database at the same moment.
LAUNCHER = """
import os, sys, time
barrier = os.environ.pop("BENEFITS_TEST_BARRIER", "")
sys.argv = ["benefits", *sys.argv[1:]]
from benefits.cli import app
if barrier:
    while not os.path.exists(barrier):
        time.sleep(0.002)
app(prog_name="benefits")
"""


@dataclass
class Proc:
    """A finished `benefits` process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -9

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def child_env(crash_at: str | None = None, barrier: Path | None = None) -> dict[str, str]:
    """The environment of a child `benefits`: this worktree first on the path, no stray crash
    point. The terminal width is left alone: a message must stay on one line at 80 columns."""
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, "BENEFITS_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("COLUMNS", None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    if barrier:
        env["BENEFITS_TEST_BARRIER"] = str(barrier)
    return env


def start(
    args: list[str], crash_at: str | None = None, barrier: Path | None = None
) -> subprocess.Popen[str]:
    """Start `benefits args…` (a Popen)."""
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *args],
        env=child_env(crash_at, barrier),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )


def finish(proc: subprocess.Popen[str], args: list[str], timeout: float = 300) -> Proc:
    """Wait for a started `benefits` and collect what it said."""
    out, err = proc.communicate(timeout=timeout)
    return Proc(args, proc.returncode, out, err)


def benefits(*args: str, crash_at: str | None = None) -> Proc:
    """Run `benefits args…` to the end (or to its crash point)."""
    argv = list(args)
    return finish(start(argv, crash_at), argv)


@dataclass
class Figures:
    """What one reliability test did, for benchmarks/RESULTS.md."""

    test: str
    backend: str
    persons: int = PERSONS
    runs: int = 0
    kills: int = 0
    refused: int = 0
    duplicates: int = 0
    missing: int = 0
    items: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def run(self, proc: Proc) -> Proc:
        self.runs += 1
        self.kills += proc.killed
        return proc


@dataclass(frozen=True)
class Month:
    """The session's swept month: the extracts, the sweep output and its payable rows."""

    data: Path
    out: Path
    payable: int  # pay + credit entitlements (held included)


def counts(ledger: Ledger) -> dict[str, int]:
    """Rows of each ledger table that a crash could leave half-written."""
    with ledger.db.transaction() as s:
        return {
            name: s.execute(select(func.count()).select_from(model)).scalar_one()
            for name, model in (("runs", SweepRun), ("entitlements", RunEntitlement),
                                ("batches", Batch), ("items", BatchItem),
                                ("bank_files", BankFile), ("returns", BankReturn))
        }  # fmt: skip


def duplicates(ledger: Ledger) -> int:
    """Live payments beyond the first per person × policy × month (the invariant: 0)."""
    with ledger.db.transaction() as s:
        rows = s.execute(
            select(func.count())
            .where(BatchItem.kind == "payment", BatchItem.voided.is_(False))
            # by the blind index: id_no is sealed with a random nonce, never equal to itself
            .group_by(BatchItem.id_index, BatchItem.policy_id, BatchItem.month)
        ).all()
    return sum(r[0] - 1 for r in rows)
