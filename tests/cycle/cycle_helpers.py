"""Helpers for the cycle's tests: a movable clock, deliveries, settings, ledger counts."""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from benefits.cycle.settings import CycleSettings
from benefits.ledger import Ledger
from benefits.ledger.models import Batch, SweepRun

ZONE = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[2]


class MutableClock:
    """A clock the test moves by hand (aware UTC)."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at.astimezone(dt.UTC)

    @classmethod
    def local(cls, *args: int) -> MutableClock:
        """A clock at a Hangzhou wall-clock time."""
        return cls(dt.datetime(*args, tzinfo=ZONE))  # type: ignore[misc]

    def __call__(self) -> dt.datetime:
        return self.at

    def set_local(self, *args: int) -> None:
        self.at = dt.datetime(*args, tzinfo=ZONE).astimezone(dt.UTC)  # type: ignore[misc]


def make_settings(tmp_path: Path, db_url: str, **overrides: Any) -> CycleSettings:
    """Settings for a test: its database, landing/store folders, fast retries, no settling."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "landing_dir": tmp_path / "landing",
        "store_dir": tmp_path / "store",
        "settle_seconds": 0,
        "retry_backoff_seconds": 0.01,
        "retry_backoff_max_seconds": 0.02,
        "lock_lease_seconds": 30,
        "write_traces": False,
        "max_payee_change": 5.0,
        "max_amount_change": 5.0,
    }
    values.update(overrides)
    return CycleSettings(**values)


def deliver(
    settings: CycleSettings,
    source: Path,
    month: str,
    *,
    skip: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
) -> Path:
    """Copy month `month`'s generated files into the landing folder; return that folder."""
    target = Path(settings.landing_dir) / month
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted((source / month).iterdir()):
        table = path.stem
        if table in skip or (only and table not in only):
            continue
        shutil.copyfile(path, target / path.name)
    return target


def corrupt_ids(path: Path, fraction: float) -> int:
    """Break the id_no of every n-th row of a CSV so that `fraction` of rows are quarantined."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    col = header.index("id_no")
    step = round(1 / fraction)
    broken = 0
    for i, row in enumerate(body):
        if i % step == 0:
            row[col] = "12345"
            broken += 1
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *body])
    return broken


def counts(ledger: Ledger, month: str) -> tuple[int, int]:
    """(sweep runs, batches) of `month` in the ledger."""
    with ledger.db.snapshot() as s:
        runs = s.execute(select(func.count()).where(SweepRun.month == month)).scalar_one()
        batches = s.execute(select(func.count()).where(Batch.month == month)).scalar_one()
    return int(runs), int(batches)


def write_config(tmp_path: Path, settings: CycleSettings) -> Path:
    """A TOML settings file equal to `settings` (for the command line in a subprocess)."""
    lines = ["[cycle]"]
    for key, value in settings.model_dump(mode="json").items():
        if value is None or value == {} or key == "database_url":
            continue
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value}")
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(repr(v) for v in value)}]".replace("'", '"'))
        else:
            lines.append(f'{key} = "{value}"')
    path = tmp_path / "benefits.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cycle_command(config: Path, db_url: str, *args: str) -> list[str]:
    """``python -m benefits.cycle --config … --db … ARGS`` as an argv list."""
    sub, *rest = args
    return [
        sys.executable,
        "-m",
        "benefits.cycle",
        sub,
        "--config",
        str(config),
        "--db",
        db_url,
        *rest,
    ]


def spawn(argv: list[str], **env: str) -> subprocess.Popen[str]:
    """Start a cycle command in its own process (output captured)."""
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
