"""The append-only, keyed hash chain of the audit log.

Each entry's content — sequence number, time, who, action, object, before and after — is
serialised as canonical JSON (sorted keys, no spaces, UTF-8) and chained to the previous
entry's hash with a secret key: ``hash = HMAC-SHA256(audit_hmac key, prev_hash + content)``,
the key's ID stored beside it (``key_id``). Changing, inserting or deleting any entry breaks
the chain from that entry on, and :func:`verify` names the first broken one. The key lives in
the key file (:mod:`benefits.keys`), never in the database, so whoever holds only the
application's database rights cannot forge an entry with a valid chain.

Entries written before the chain was keyed (migration 0005_audit_keys) have no key ID and a
plain ``sha256(prev_hash + content)``; they are still verified, but only before the first
keyed entry: a plain entry after a keyed one is a forgery. Truncating the chain's tail is
caught by the signed checkpoints outside the database (:mod:`benefits.ledger.checkpoints`).
The one-row ``audit_head`` table holds the newest sequence number and hash: appends lock it
(so concurrent writers chain one after another) and it reveals entries deleted from the end.

Always append as the *last* step of a transaction: the head lock is then taken last by every
writer, so no two transactions can wait on each other.

Example:
    >>> canonical({"b": 1, "a": "张*明"})
    '{"a":"张*明","b":1}'
    >>> chain_hash("0" * 64, "{}")[:12]
    '5508d2b710e6'
    >>> keyed_hash(b"k" * 32, "0" * 64, "{}") != chain_hash("0" * 64, "{}")
    True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from benefits.ledger.clock import as_utc
from benefits.ledger.models import AuditEntry, AuditHead

if TYPE_CHECKING:  # benefits.keys imports the ledger's errors: import it when used
    from benefits.keys import KeyRing

GENESIS = "0" * 64
VERIFY_CHUNK = 5000


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in an audit entry")


def canonical(content: Any) -> str:
    """Canonical JSON: sorted keys, compact separators, non-ASCII kept, decimals as strings."""
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def chain_hash(prev_hash: str, content: str) -> str:
    """Plain SHA-256 (hex) of the previous hash and the content: entries before keying."""
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


def keyed_hash(key: bytes, prev_hash: str, content: str) -> str:
    """HMAC-SHA256 (hex) of the previous entry's hash followed by this entry's content."""
    return hmac.new(key, (prev_hash + content).encode("utf-8"), hashlib.sha256).hexdigest()


def session_keys(session: Session) -> KeyRing:
    """The keys of the ledger a session belongs to (its Database's, else from the environment)."""
    database = session.info.get("ledger_database")
    if database is not None:
        return database.keys  # type: ignore[no-any-return]
    from benefits.keys import ledger_keys

    bind = session.get_bind()
    return ledger_keys(bind.engine.url.render_as_string(hide_password=False))


def entry_hash(keys: KeyRing, entry: AuditEntry) -> str:
    """The hash an entry should carry: keyed with its key ID, or plain SHA-256 if it has none."""
    if entry.key_id is None:
        return chain_hash(entry.prev_hash, entry.content)
    return keyed_hash(keys.get("audit_hmac", entry.key_id), entry.prev_hash, entry.content)


def append(
    session: Session,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (call it last: it locks the chain head).

    Example:
        >>> with db.transaction() as s:                          # doctest: +SKIP
        ...     append(s, at=db.now(), actor="alice", action="batch.submit",
        ...            object_type="batch", object_id=3,
        ...            before={"status": "draft"}, after={"status": "submitted"})
    """
    key_id, key = session_keys(session).current("audit_hmac")  # MissingKey before any lock
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    seq, prev = head.seq + 1, head.hash
    at_utc = as_utc(at)
    content = canonical(
        {
            "seq": seq,
            "at": at_utc.isoformat(),
            "actor": actor,
            "action": action,
            "object": {"type": object_type, "id": str(object_id)},
            "before": before,
            "after": after,
        }
    )
    entry = AuditEntry(
        seq=seq,
        at=at_utc,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        content=content,
        prev_hash=prev,
        hash=keyed_hash(key, prev, content),
        key_id=key_id,
    )
    session.add(entry)
    session.flush()
    moved = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1, AuditHead.seq == head.seq)
        .values(seq=seq, hash=entry.hash)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # pragma: no cover - the row lock makes this unreachable
        raise RuntimeError("audit head moved under a lock")
    session.expire(head)
    return entry


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ok, entries checked, and the first broken entry if any."""

    ok: bool
    entries: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None
    unkeyed: int = 0

    def __str__(self) -> str:
        if self.ok:
            legacy = (
                f" ({self.unkeyed} early entries with a plain SHA-256 chain)"
                if self.unkeyed else ""
            )
            return (
                f"audit chain intact: {self.entries} entries, head {self.head_hash[:16]}…{legacy}"
            )
        return f"audit chain BROKEN at entry #{self.broken_seq}: {self.problem}"


def _columns_problem(entry: AuditEntry, content: dict[str, Any]) -> str | None:
    """Why the queryable columns disagree with the hashed content, or None."""
    obj = content.get("object") or {}
    expected = {
        "seq": entry.seq,
        "actor": entry.actor,
        "action": entry.action,
        "object type": entry.object_type,
        "object id": entry.object_id,
    }
    found = {
        "seq": content.get("seq"),
        "actor": content.get("actor"),
        "action": content.get("action"),
        "object type": obj.get("type"),
        "object id": obj.get("id"),
    }
    for name, value in expected.items():
        if found[name] != value:
            return f"column {name} is {value!r} but the hashed content says {found[name]!r}"
    try:
        hashed_at = dt.datetime.fromisoformat(content["at"])
    except (KeyError, TypeError, ValueError):
        return "the hashed content has no valid time"
    if as_utc(entry.at) != hashed_at:
        return (
            f"column at is {as_utc(entry.at).isoformat()} "
            f"but the hashed content says {content['at']}"
        )
    return None


def _entries(session: Session, upto: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        chunk = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.seq > last, AuditEntry.seq <= upto)
                .order_by(AuditEntry.seq)
                .limit(VERIFY_CHUNK)
            )
            .scalars()
            .all()
        )
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].seq
        session.expunge_all()


def _head(session: Session) -> AuditHead | None:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is not None:
        session.expunge(head)
    return head


def verify(session: Session, keys: KeyRing | None = None) -> VerifyResult:
    """Recompute the whole chain; report the first entry that was changed, removed or forged.

    The head is read first and the chain checked up to it, so entries appended while
    verifying (by other officers) are left for the next run instead of looking forged.

    Example:
        >>> with db.snapshot() as s:      # doctest: +SKIP
        ...     print(verify(s))
        audit chain intact: 12 entries, head 3f9a…
    """
    keys = keys if keys is not None else session_keys(session)
    prev, expected_seq, count, unkeyed, keyed_seen = GENESIS, 1, 0, 0, False

    def broken(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, count, prev, seq, problem, unkeyed)

    head = _head(session)
    if head is None:
        return broken(1, "the chain head row is missing")
    for entry in _entries(session, head.seq):
        if entry.seq != expected_seq:
            return broken(
                expected_seq,
                f"entry #{expected_seq} is missing (the next entry is #{entry.seq}): deleted",
            )
        if entry.prev_hash != prev:
            return broken(entry.seq, "its previous-hash does not match the entry before it")
        if entry.key_id is None and keyed_seen:
            return broken(
                entry.seq,
                f"{entry.action} by {entry.actor}: a plain SHA-256 entry after keyed entries "
                "(forged without the audit key)",
            )
        if not hmac.compare_digest(entry_hash(keys, entry), entry.hash):
            return broken(
                entry.seq,
                f"{entry.action} by {entry.actor}: content does not match its hash "
                f"({'HMAC key ' + entry.key_id + '; ' if entry.key_id else ''}edited or forged)",
            )
        keyed_seen = keyed_seen or entry.key_id is not None
        unkeyed += entry.key_id is None
        try:
            content = json.loads(entry.content)
        except ValueError:
            return broken(entry.seq, "content is not valid JSON")
        if canonical(content) != entry.content:
            return broken(entry.seq, "content is not in canonical form")
        problem = _columns_problem(entry, content)
        if problem:
            return broken(entry.seq, f"{problem} (edited)")
        prev, expected_seq, count = entry.hash, expected_seq + 1, count + 1

    if count < head.seq:
        return broken(
            count + 1,
            f"entries #{count + 1}…#{head.seq} are missing (the head says the chain has "
            f"{head.seq} entries): deleted",
        )
    if head.hash != prev:
        return broken(head.seq, "the chain head does not match the last entry (rewritten)")
    beyond = session.execute(
        select(AuditEntry.seq).where(AuditEntry.seq > head.seq).order_by(AuditEntry.seq).limit(1)
    ).scalar_one_or_none()
    if beyond is not None:
        now = _head(session)
        if now is None or beyond > now.seq:
            return broken(
                beyond, "it lies beyond the chain head: inserted behind the ledger's back"
            )
    return VerifyResult(True, count, prev, unkeyed=unkeyed)
