"""Outputs that appear atomically: a sweep writes into a hidden sibling folder and renames it
into place only when everything — summary.json last — is written.

A sweep that fails leaves the previous finished folder (if any) untouched and no folder that
passes for a finished one; the hidden work folder is removed on failure, and a rerun removes
any left behind by a killed process before it starts.

Example:
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "2025-01"
    >>> with atomic_folder(out) as work:
    ...     _ = (work / "summary.json").write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['summary.json']
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benefits.errors import BenefitsError
from benefits.private import private_dir

WORK_PREFIX = ".{name}.partial-"
OLD_PREFIX = ".{name}.old-"
STAGING_PREFIX = ".{name}.staging-"  # a partitioned engine's scratch folder beside the output
# what a sweep writes: an existing folder holding anything else is not replaced
SWEEP_FILES = frozenset(
    {
        "entitlements.csv",
        "entitlements.parquet",
        "alerts.csv",
        "alerts.parquet",
        "quarantine.csv",
        "quarantine.parquet",
        "traces.jsonl",
        "traces",
        "summary.json",
    }
)


class OutputFolderError(BenefitsError):
    """The output folder cannot be replaced safely."""


def _leftovers(out: Path) -> list[Path]:
    prefixes = tuple(p.format(name=out.name) for p in (WORK_PREFIX, OLD_PREFIX, STAGING_PREFIX))
    if not out.parent.is_dir():
        return []
    return [p for p in out.parent.iterdir() if p.name.startswith(prefixes)]


def check_replaceable(out: Path) -> None:
    """Refuse an output folder that holds files a sweep did not write (they would be lost)."""
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"cannot write the outputs to {out}: it is a file, not a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in SWEEP_FILES)
        if foreign:
            raise OutputFolderError(
                f"cannot write the outputs to {out}: it holds files a sweep does not write "
                f"({foreign[0]} …); choose a new or empty output folder"
            )


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield a private work folder beside `out`; on success it replaces `out` in one rename
    (the previous folder, if any, is moved aside first and then deleted)."""
    out = Path(out).absolute()
    check_replaceable(out)
    for stale in _leftovers(out):  # a killed run's work folder: a rerun starts clean
        shutil.rmtree(stale, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f"{WORK_PREFIX.format(name=out.name)}{os.getpid()}"
    private_dir(work)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    old = out.parent / f"{OLD_PREFIX.format(name=out.name)}{os.getpid()}"
    if out.exists():
        os.rename(out, old)
    os.rename(work, out)
    shutil.rmtree(old, ignore_errors=True)
