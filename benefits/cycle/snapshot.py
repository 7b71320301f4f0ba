"""Immutable, content-addressed snapshots of a month's delivery.

Every delivered file is stored once under its SHA-256 (``STORE/objects/sha256/ab/ab12…``,
read-only); a snapshot is a folder named by the delivery digest
(``STORE/snapshots/<digest>/``) holding the files under their contract names (hard links to
the objects, or copies where links are impossible) and ``manifest.json`` listing each file
with its table, size and SHA-256. The sweep reads the snapshot, never the landing folder, so
a department overwriting a file mid-run changes nothing, and the run's input hashes name
exactly what was swept. Taking the same delivery twice gives the same folder.

Example:
    >>> store = SnapshotStore(Path("var/cycle"))                     # doctest: +SKIP
    >>> snap = store.take(scan_landing(Path("landing"), "2025-01"))  # doctest: +SKIP
    >>> snap.folder.name == snap.digest                              # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from benefits.cycle.landing import CHUNK, Landing, delivery_digest, sha256_file
from benefits.private import READ_ONLY_MODE, private_dir
from benefits.sealedfiles import file_keys, seal_stream, sealing_wanted

READ_ONLY = READ_ONLY_MODE  # 0400: the service account reads it, nobody else, nobody writes


class _Hashing:
    """A binary file whose bytes are added to a hash as they are read."""

    def __init__(self, raw: BinaryIO, h: Any) -> None:
        self.raw, self.h = raw, h

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.h.update(chunk)
        return chunk


class SnapshotChanged(Exception):
    """A landing file changed while it was being copied (it is still arriving)."""


@dataclass(frozen=True)
class Snapshot:
    """A stored delivery: its digest, its folder and its manifest."""

    digest: str
    folder: Path
    manifest: dict[str, Any]

    def paths(self) -> dict[str, Path]:
        """File name → path inside the snapshot."""
        return {name: self.folder / name for name in self.manifest["files"]}


class SnapshotStore:
    """The object store and the snapshot folders under one root.

    Example:
        >>> SnapshotStore(Path("var/cycle")).objects.as_posix()
        'var/cycle/objects/sha256'
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects" / "sha256"
        self.snapshots = self.root / "snapshots"

    def object_path(self, sha256: str) -> Path:
        """Where the file with this SHA-256 is stored."""
        return self.objects / sha256[:2] / sha256

    def put(self, source: Path, expected_sha256: str) -> Path:
        """Store `source` under its hash; raise SnapshotChanged if it is not `expected_sha256`."""
        target = self.object_path(expected_sha256)
        if target.is_file():
            return target
        for folder in (self.root, self.objects.parent, self.objects, target.parent):
            private_dir(folder)
        tmp = target.parent / f".{expected_sha256}.{uuid.uuid4().hex}.tmp"
        h = hashlib.sha256()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                if sealing_wanted():  # the stored copy is sealed; its name stays the clear hash
                    seal_stream(_Hashing(src, h), dst, file_keys())
                else:
                    while chunk := src.read(CHUNK):
                        h.update(chunk)
                        dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            if h.hexdigest() != expected_sha256:
                raise SnapshotChanged(
                    f"{source.name} changed while it was being copied (still arriving?)"
                )
            os.chmod(tmp, READ_ONLY)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return target

    def take(self, landing: Landing) -> Snapshot:
        """Store every usable file of `landing` and return its (possibly existing) snapshot."""
        files = {
            f.name: {"table": f.table, "sha256": f.sha256, "bytes": f.size}
            for f in sorted(landing.files.values(), key=lambda f: f.name)
        }
        digest = delivery_digest(landing.month, {n: v["sha256"] for n, v in files.items()})
        manifest = {"month": landing.month, "digest": digest, "files": files}
        folder = self.snapshots / digest
        stored = {f.name: self.put(f.path, f.sha256) for f in landing.files.values()}
        if folder.is_dir() and (folder / "manifest.json").is_file():
            return Snapshot(digest, folder, manifest)
        private_dir(self.root)
        private_dir(self.snapshots)
        tmp = self.snapshots / f".{digest}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir(mode=0o700)
        os.chmod(tmp, 0o700)
        try:
            for name, obj in stored.items():
                try:
                    os.link(obj, tmp / name)
                except OSError:
                    shutil.copyfile(obj, tmp / name)
                    os.chmod(tmp / name, READ_ONLY)
            text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
            (tmp / "manifest.json").write_text(text, encoding="utf-8")
            os.chmod(tmp / "manifest.json", READ_ONLY)
            try:
                os.rename(tmp, folder)
            except OSError:
                if not (folder / "manifest.json").is_file():  # not a concurrent twin: re-raise
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return Snapshot(digest, folder, manifest)

    def verify(self, snapshot: Snapshot) -> list[str]:
        """Files of a snapshot whose bytes no longer match their recorded SHA-256."""
        problems = []
        for name, info in snapshot.manifest["files"].items():
            path = snapshot.folder / name
            if not path.is_file():
                problems.append(f"{name}: missing from snapshot {snapshot.digest[:12]}")
            elif sha256_file(path) != info["sha256"]:
                problems.append(f"{name}: changed in snapshot {snapshot.digest[:12]} (tampered)")
        return problems
