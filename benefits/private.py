"""Files and folders that hold sensitive personal data, readable by the service account only.

Sweep outputs (entitlements with account numbers, traces with every fact), the cycle's
snapshots and outbox, and bank files are written into folders of mode 0700 whose files have
mode 0600 (snapshot files: 0400, they are never rewritten). The folder is locked down
*before* anything is written into it, so no other account can open a file even for the moment
between its creation and its ``chmod``.

Example:
    >>> import tempfile, stat
    >>> d = private_dir(Path(tempfile.mkdtemp()) / "out")
    >>> oct(stat.S_IMODE(d.stat().st_mode))
    '0o700'
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
READ_ONLY_MODE = 0o400


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and make it mode 0700; return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path, mode: int = FILE_MODE) -> Path:
    """Make the file `path` readable (and writable) by its owner only; return it."""
    os.chmod(path, mode)
    return path


def lock_down(folder: Path) -> None:
    """Make `folder` 0700 and every file directly inside it 0600."""
    private_dir(folder)
    for entry in Path(folder).iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.chmod(entry, FILE_MODE)
