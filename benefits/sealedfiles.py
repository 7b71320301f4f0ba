"""Sweep outputs and cycle snapshots sealed on disk: one envelope for every file format.

Sealing is optional (``BENEFITS_SEAL_FILES=1``, or ``benefits sweep --seal``). When it is on,
every file of a sweep's output folder that holds personal data (entitlements, alerts,
quarantine as CSV and Parquet, traces — everything but ``summary.json``, which holds counts,
totals and file hashes) and every file a cycle snapshot stores is replaced by its sealed form:

    ``BENEFITS-SEALED/1`` line, a JSON header line (data key ID, segment size, nonce prefix),
    then the file in segments of 64 KiB, each AES-256-GCM under the ``data`` key of
    :mod:`benefits.keys` (the STREAM construction: segment ``i`` has nonce
    ``prefix ‖ i ‖ last``, the header is authenticated with every segment).

A reordered, truncated, extended or altered file, or one whose header was swapped, does not
open (:class:`benefits.keys.SealBroken`); a file sealed under a key that is not in the key
file stops with :class:`benefits.keys.MissingKey`. Segments make large files (traces) both
streamable and seekable: :func:`open_output` gives a seekable binary file of the clear bytes,
whatever the file is, so every reader (ledger import, web app, cycle, event service) opens
sealed and plain files the same way.

Example:
    >>> import tempfile
    >>> from benefits.keys import KeyRing
    >>> ring = KeyRing.generate()
    >>> path = Path(tempfile.mkdtemp()) / "alerts.csv"
    >>> _ = path.write_bytes(b"id_no,kind\\n330106194501011233,death\\n")
    >>> seal_file(path, ring)
    True
    >>> b"330106" in path.read_bytes(), is_sealed(path)
    (False, True)
    >>> read_output(path, ring)
    b'id_no,kind\\n330106194501011233,death\\n'
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import secrets
import struct
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from benefits.private import FILE_MODE

if TYPE_CHECKING:
    import polars as pl

    from benefits.keys import KeyRing

ENV_SEAL = "BENEFITS_SEAL_FILES"
MAGIC = b"BENEFITS-SEALED/1\n"
SEGMENT = 64 * 1024
TAG = 16
CLEAR_FILES = frozenset({"summary.json"})  # counts, totals and hashes: no person in it


def sealing_wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether ``$BENEFITS_SEAL_FILES`` asks for sealed outputs and snapshots (1/true/yes/on).

    >>> sealing_wanted({"BENEFITS_SEAL_FILES": "1"}), sealing_wanted({})
    (True, False)
    """
    env = os.environ if environ is None else environ
    return env.get(ENV_SEAL, "").strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=4)
def _env_ring(key_file: str, stamp: int, data_var: str) -> KeyRing:
    from benefits.keys import KeyRing

    return KeyRing.from_env()


def file_keys() -> KeyRing:
    """The key ring of sealed files: ``$BENEFITS_KEY_FILE`` / ``$BENEFITS_KEY_DATA``, else the
    keys of the ledger this process opened (a development key file beside a SQLite ledger).
    Read again when the key file changes."""
    from benefits.keys import last_ledger_keys

    key_file = os.environ.get("BENEFITS_KEY_FILE", "").strip()
    try:
        stamp = os.stat(key_file).st_mtime_ns if key_file else 0
    except OSError:
        stamp = -1
    ring = _env_ring(key_file, stamp, os.environ.get("BENEFITS_KEY_DATA", ""))
    if not ring.has("data") and last_ledger_keys() is not None:
        return last_ledger_keys()  # type: ignore[return-value]
    return ring


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _header(key_id: str, prefix: bytes) -> bytes:
    head = {"key": key_id, "segment": SEGMENT, "nonce": base64.b64encode(prefix).decode()}
    return MAGIC + json.dumps(head, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def is_sealed(path: Path) -> bool:
    """Whether `path` is a sealed file (starts with the envelope's first line)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def seal_stream(src: IO[bytes], dst: IO[bytes], keys: KeyRing) -> None:
    """Write the sealed form of everything `src` holds to `dst`, segment by segment."""
    kid, _ = keys.current("data")
    aead = keys._cipher(kid)
    prefix = secrets.token_bytes(7)
    header = _header(kid, prefix)
    dst.write(header)
    index = 0
    chunk = src.read(SEGMENT)
    while True:
        following = src.read(SEGMENT) if len(chunk) == SEGMENT else b""
        last = not following
        dst.write(aead.encrypt(_nonce(prefix, index, last), chunk, header))
        if last:
            return
        chunk, index = following, index + 1


def _replace_sealed(path: Path, src: IO[bytes], keys: KeyRing) -> None:
    """Replace `path` by the sealed bytes of `src`: written aside (mode 0600, fsynced), given
    the file's mode, then renamed over it — an interruption leaves the old file whole."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.sealing")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as dst:
            seal_stream(src, dst, keys)
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def seal_file(path: Path, keys: KeyRing | None = None) -> bool:
    """Replace the file `path` by its sealed form (temporary file mode 0600, then rename);
    False when it was sealed already."""
    path = Path(path)
    if is_sealed(path):
        return False
    keys = keys or file_keys()
    keys.current("data")  # MissingKey before anything is written
    with open(path, "rb") as src:
        _replace_sealed(path, src, keys)
    return True


def sealed_key(path: Path) -> str | None:
    """The data key ID a sealed file names (None for a plain file)."""
    if not is_sealed(path):
        return None
    with open(path, "rb") as fh:
        fh.read(len(MAGIC))
        try:
            return str(json.loads(fh.readline(4096))["key"])
        except (ValueError, KeyError, TypeError):
            return None


def reseal_file(path: Path, keys: KeyRing | None = None) -> bool:
    """Seal a sealed file again under the current ``data`` key (temporary file, rename: an
    interruption leaves it whole under one key or the other); False when it already is."""
    path = Path(path)
    keys = keys or file_keys()
    current, _ = keys.current("data")
    if sealed_key(path) in (None, current):
        return False
    with open_output(path, keys) as src:
        _replace_sealed(path, src, keys)
    return True


def reseal_tree(folders: Iterable[Path], keys: KeyRing | None = None) -> tuple[int, dict[str, int]]:
    """Re-seal every sealed file under `folders` (sweep outputs, a cycle store, the web app's
    work folder) under the current ``data`` key; returns (files re-sealed, sealed files by
    key ID afterwards)."""
    keys = keys or file_keys()
    done = 0
    by_key: dict[str, int] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if not path.is_file() or path.is_symlink() or path.name.startswith("."):
                continue
            done += reseal_file(path, keys)
            kid = sealed_key(path)
            if kid is not None:
                by_key[kid] = by_key.get(kid, 0) + 1
    return done, by_key


def seal_outputs(folder: Path, keys: KeyRing | None = None) -> list[Path]:
    """Seal every file of a finished sweep output folder (and its subfolders, e.g. traces)
    but ``summary.json`` and hidden temporary files; return the files sealed now."""
    keys = keys or file_keys()
    sealed = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or path.is_symlink() or path.name in CLEAR_FILES:
            continue
        if path.name.startswith("."):
            continue
        if seal_file(path, keys):
            sealed.append(path)
    return sealed


def check_sealing_keys() -> None:
    """When sealing is on, MissingKey unless the ``data`` key is there (checked before a
    sweep writes anything)."""
    if sealing_wanted():
        file_keys().current("data")


def seal_outputs_if_wanted(folder: Path) -> list[Path]:
    """:func:`seal_outputs` when ``$BENEFITS_SEAL_FILES`` is on, else nothing."""
    return seal_outputs(folder) if sealing_wanted() else []


class SealedReader(io.RawIOBase):
    """The clear bytes of a sealed file, read and seeked segment by segment."""

    def __init__(self, path: Path, keys: KeyRing | None = None) -> None:
        from benefits.keys import MissingKey, SealBroken

        super().__init__()
        self.path = Path(path)
        self._fh = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        try:
            magic = self._fh.read(len(MAGIC))
            line = self._fh.readline(4096)
            if magic != MAGIC or not line.endswith(b"\n"):
                raise SealBroken(f"{self.path.name}: not a sealed file")
            try:
                head = json.loads(line)
                self.key_id = str(head["key"])
                self.segment = int(head["segment"])
                self.prefix = base64.b64decode(head["nonce"], validate=True)
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                raise SealBroken(f"{self.path.name}: the sealed file's header is damaged") from exc
            if len(self.prefix) != 7 or self.segment <= 0:
                raise SealBroken(f"{self.path.name}: the sealed file's header is damaged")
            self.header = magic + line
            ring = keys or file_keys()
            try:
                self._aead = ring._cipher(self.key_id)
            except MissingKey as exc:
                raise MissingKey(f"{self.path.name} is sealed: {exc}") from exc
            body = os.fstat(self._fh.fileno()).st_size - len(self.header)
            stride = self.segment + TAG
            self.segments = max(1, -(-body // stride))
            self.size = body - TAG * self.segments
            if self.size < 0 or (body - (self.segments - 1) * stride) < TAG:
                raise SealBroken(f"{self.path.name}: the sealed file is truncated")
        except BaseException:
            self._fh.close()
            raise
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def _segment(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        stride = self.segment + TAG
        self._fh.seek(len(self.header) + index * stride)
        blob = self._fh.read(stride)
        last = index == self.segments - 1
        from cryptography.exceptions import InvalidTag

        from benefits.keys import SealBroken

        try:
            clear = self._aead.decrypt(_nonce(self.prefix, index, last), blob, self.header)
        except InvalidTag as exc:
            raise SealBroken(
                f"{self.path.name}: sealed with data key {self.key_id} but does not "
                "authenticate (wrong key, or the file was altered or truncated)"
            ) from exc
        self._cached = (index, clear)
        return clear

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            index, within = divmod(self._pos, self.segment)
            clear = self._segment(index)
            piece = clear[within : within + len(view) - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
        return done

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_output(path: Path, keys: KeyRing | None = None) -> IO[bytes]:
    """A seekable binary file of the clear bytes of `path`, sealed or not."""
    if is_sealed(path):
        return io.BufferedReader(SealedReader(path, keys), buffer_size=SEGMENT)
    return open(path, "rb")


def read_output(path: Path, keys: KeyRing | None = None) -> bytes:
    """The clear bytes of `path`, sealed or not."""
    with open_output(path, keys) as fh:
        return fh.read()


def read_parquet(path: Path, keys: KeyRing | None = None, **kwargs: Any) -> pl.DataFrame:
    """A Parquet file, sealed or not, as a Polars frame."""
    import polars as pl

    if is_sealed(path):
        return pl.read_parquet(io.BytesIO(read_output(path, keys)), **kwargs)
    return pl.read_parquet(path, **kwargs)


def read_csv(path: Path, keys: KeyRing | None = None, **kwargs: Any) -> pl.DataFrame:
    """A CSV file, sealed or not, as a Polars frame."""
    import polars as pl

    if is_sealed(path):
        return pl.read_csv(io.BytesIO(read_output(path, keys)), **kwargs)
    return pl.read_csv(path, **kwargs)
