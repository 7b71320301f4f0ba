"""Security events of the web app written to the audit chain: forbidden requests, token use.

- ``security.forbidden``: every answer 403 (a role or grant missing, a four-eyes refusal, a
  CSRF failure) — who (``anonymous`` when not signed in), the method and the path (never the
  query string, which may carry search terms).
- ``security.token_use``: the first use of each API token per UTC day — the token's user and
  the first 12 characters of the token's stored SHA-256 (which names the token to an admin
  and reveals nothing of it). Later uses that day are not written: the token list keeps the
  last use, and the chain is not flooded by scripts that call the API every minute.

Example:
    >>> record_token_use(db, actor="ops", token="bnf_…")        # doctest: +SKIP
    True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading

from sqlalchemy import select
from starlette.requests import Request

from benefits.ledger import audit
from benefits.ledger.db import Database
from benefits.ledger.models import AuditEntry
from benefits.web.format import mask_ids_in_text

log = logging.getLogger("benefits.web.security")

_seen: set[tuple[str, str, dt.date]] = set()  # (database url, token digest, UTC day)
_seen_lock = threading.Lock()


def token_digest(token: str) -> str:
    """The first 12 hex characters of the token's SHA-256 (as stored for the token)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def record_token_use(db: Database, *, actor: str, token: str) -> bool:
    """Write ``security.token_use`` unless this token was already recorded today (UTC).

    Returns True when an entry was written.
    """
    now = db.now()
    digest, day = token_digest(token), now.date()
    key = (db.url, digest, day)
    with _seen_lock:
        if key in _seen:
            return False
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    with db.transaction() as s:
        already = s.execute(
            select(AuditEntry.seq)
            .where(
                AuditEntry.action == "security.token_use",
                AuditEntry.object_id == digest,
                AuditEntry.at >= start,
            )
            .limit(1)
        ).scalar_one_or_none()
        if already is None:
            audit.append(
                s, at=now, actor=actor, action="security.token_use", object_type="api_token",
                object_id=digest, after={"day": day.isoformat()},
            )  # fmt: skip
    with _seen_lock:
        _seen.add(key)
    return already is None


def record_forbidden(db: Database, request: Request) -> None:
    """Write ``security.forbidden`` for a request answered 403 (a failure is logged, not raised:
    the caller still gets its 403)."""
    state = request.scope.get("state") or {}
    principal = state.get("api_caller") or state.get("principal")
    actor = getattr(principal, "username", None) or "anonymous"
    path = mask_ids_in_text(request.url.path)  # an ID typed into a URL is not chained in clear
    try:
        with db.transaction() as s:
            audit.append(
                s, at=db.now(), actor=actor, action="security.forbidden",
                object_type="request", object_id=f"{request.method} {path}"[:64],
                after={"method": request.method, "path": path},
            )  # fmt: skip
    except Exception as exc:  # the 403 still goes out; the operator sees why it was not chained
        log.error("could not write security.forbidden to the audit chain: %s", exc)
