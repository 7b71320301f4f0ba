"""Signed checkpoints of the audit chain, kept outside the database.

A checkpoint is one JSON line — entry count, head hash, time, key ID — signed with the
``audit_signing`` Ed25519 key and appended to a checkpoint file (JSONL) that an auditor can
copy away. Each signing key's public key is written on a ``key`` line before its first
checkpoint, so the file verifies on its own (and against the key file, when one is given).
:func:`verify_checkpoints` checks every signature and that every checkpointed head is still
the hash of that entry in the chain: a rewritten or truncated tail no longer matches.

File layout::

    {"type":"key","format":"benefits-audit-checkpoints/1","key_id":"as-…","public_key":"…"}
    {"type":"checkpoint","seq":42,"head":"9f…","at":"2026-12-06T17:00:00+00:00",
     "key_id":"as-…","signature":"…"}

Example:
    >>> write_checkpoint(db, Path("/var/lib/benefits/audit-checkpoints.jsonl"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from benefits.ledger.audit import canonical
from benefits.ledger.db import Database
from benefits.ledger.models import AuditEntry, AuditHead

if TYPE_CHECKING:  # benefits.keys imports the ledger's errors: import it when used
    from benefits.keys import KeyRing

FORMAT = "benefits-audit-checkpoints/1"


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint: the chain had `seq` entries ending in `head` at time `at`."""

    seq: int
    head: str
    at: str
    key_id: str
    signature: str

    def body(self) -> dict[str, Any]:
        """The signed part."""
        return {"type": "checkpoint", "seq": self.seq, "head": self.head, "at": self.at,
                "key_id": self.key_id}  # fmt: skip


def _read_lines(path: Path) -> list[dict[str, Any]]:
    from benefits.keys import KeyProblem

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KeyProblem(f"cannot read the checkpoint file {path}: {exc.strerror}") from exc
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise KeyProblem(f"{path} line {number} is not JSON") from exc
        if not isinstance(item, dict):
            raise KeyProblem(f"{path} line {number} is not a JSON object")
        item["_line"] = number
        lines.append(item)
    return lines


def write_checkpoint(db: Database, path: Path, keys: KeyRing | None = None) -> Checkpoint:
    """Sign the chain's current head and append it to `path` (created if missing)."""
    from benefits.keys import public_key_b64

    keys = keys if keys is not None else db.keys
    key_id, private = keys.signing_key()
    with db.snapshot() as s:
        head = s.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
        seq, head_hash = head.seq, head.hash
    body = {"type": "checkpoint", "seq": seq, "head": head_hash, "at": db.now().isoformat(),
            "key_id": key_id}  # fmt: skip
    signature = base64.b64encode(private.sign(canonical(body).encode("utf-8"))).decode("ascii")
    known = {item.get("key_id") for item in _read_lines(path) if item.get("type") == "key"}
    lines = []
    if key_id not in known:
        lines.append({"type": "key", "format": FORMAT, "key_id": key_id,
                      "public_key": public_key_b64(private)})  # fmt: skip
    lines.append({**body, "signature": signature})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        for line in lines:
            f.write(canonical(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return Checkpoint(seq, head_hash, body["at"], key_id, signature)


def verify_checkpoints(session: Session, path: Path, keys: KeyRing | None = None) -> list[str]:
    """Problems found checking the checkpoint file against the chain (empty: all good).

    Every checkpoint's signature must verify under its key line's public key (which must be
    the key file's, when the key file holds that signing key), and the entry it names must
    still carry the hash it recorded.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from benefits.keys import public_key_b64

    lines = _read_lines(path)
    if not lines:
        return [f"the checkpoint file {path} is missing or empty"]
    public: dict[str, Ed25519PublicKey] = {}
    problems: list[str] = []
    count = 0
    for item in lines:
        where = f"{path.name} line {item['_line']}"
        if item.get("type") == "key":
            kid = str(item.get("key_id"))
            text = str(item.get("public_key", ""))
            if keys is not None and "audit_signing" in keys.keys and kid in keys.keys[
                "audit_signing"
            ]:
                expected = public_key_b64(keys.signing_key(kid)[1])
                if expected != text:
                    problems.append(f"{where}: the public key of {kid} is not the key file's")
                    continue
            try:
                public[kid] = Ed25519PublicKey.from_public_bytes(base64.b64decode(text))
            except ValueError:
                problems.append(f"{where}: the public key of {kid} is not valid")
            continue
        if item.get("type") != "checkpoint":
            problems.append(f"{where}: unknown line type {item.get('type')!r}")
            continue
        count += 1
        try:
            point = Checkpoint(int(item["seq"]), str(item["head"]), str(item["at"]),
                               str(item["key_id"]), str(item["signature"]))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            problems.append(f"{where}: not a complete checkpoint")
            continue
        key = public.get(point.key_id)
        if key is None:
            problems.append(f"{where}: no public key line for signing key {point.key_id}")
            continue
        try:
            key.verify(
                base64.b64decode(point.signature), canonical(point.body()).encode("utf-8")
            )
        except (InvalidSignature, ValueError):
            problems.append(f"{where}: the signature of checkpoint #{point.seq} is not valid")
            continue
        if point.seq == 0:
            continue
        found = session.execute(
            select(AuditEntry.hash).where(AuditEntry.seq == point.seq)
        ).scalar_one_or_none()
        if found is None:
            problems.append(
                f"checkpoint of {point.at} names entry #{point.seq}, which is no longer in "
                "the chain (deleted or truncated)"
            )
        elif found != point.head:
            problems.append(
                f"checkpoint of {point.at}: entry #{point.seq} no longer has the hash it had "
                "then (the chain was rewritten)"
            )
    if count == 0:
        problems.append(f"the checkpoint file {path} holds no checkpoint")
    return problems
