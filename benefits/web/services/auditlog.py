"""The audit page: the chain's verification status and its entries, newest first, paged.

Account numbers and full IDs inside entries are masked unless the viewer revealed personal
data (the ledger records them for releases); ``pii.view`` entries already hold only a masked
ID and a keyed blind index.

Example:
    >>> view = audit_page(ctx, page=1)                             # doctest: +SKIP
    >>> view["verify"].ok                                           # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from benefits.ledger.models import AuditEntry, AuditHead
from benefits.web.context import WebContext
from benefits.web.format import mask_ids_in_text
from benefits.web.privacy import ACCOUNT_FIELDS, mask_account


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (mask_account(v) if k in ACCOUNT_FIELDS and isinstance(v, str) else _mask(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return mask_ids_in_text(value)
    return value


def entry_view(e: AuditEntry) -> dict[str, Any]:
    """One entry as shown: who, when, what, before/after (masked)."""
    try:
        content = json.loads(e.content)
    except ValueError:
        content = {}
    return {
        "seq": e.seq,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "object_type": e.object_type,
        "object_id": mask_ids_in_text(e.object_id),
        "before": _mask(content.get("before")),
        "after": _mask(content.get("after")),
        "hash": e.hash,
        "prev_hash": e.prev_hash,
        "key_id": e.key_id,  # None: an early entry with a plain SHA-256 chain hash
    }


def audit_page(
    ctx: WebContext,
    page: int = 1,
    per_page: int = 50,
    action: str = "",
    actor: str = "",
    *,
    reverify: bool = False,
) -> dict[str, Any]:
    """Verification status and one page of entries (filter by action prefix and actor)."""
    conds: list[Any] = []
    if action:
        conds.append(AuditEntry.action.startswith(action, autoescape=True))
    if actor:
        conds.append(AuditEntry.actor == actor)
    with ctx.db.snapshot() as s:
        head = s.execute(select(AuditHead.seq)).scalar_one_or_none() or 0
        total = int(s.execute(select(func.count()).select_from(AuditEntry).where(*conds))
                    .scalar_one())  # fmt: skip
        pages = max(1, (total + per_page - 1) // per_page)
        page = min(max(1, page), pages)
        rows = list(
            s.execute(
                select(AuditEntry)
                .where(*conds)
                .order_by(AuditEntry.seq.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).scalars()
        )
        actions = sorted({a.split(".")[0] for a in s.execute(
            select(AuditEntry.action).distinct()).scalars()})  # fmt: skip
    return {
        "verify": ctx.verify_audit(int(head), force=reverify),
        "head": int(head),
        "entries": [entry_view(e) for e in rows],
        "total": total,
        "page": page,
        "pages": pages,
        "action": action,
        "actor": actor,
        "actions": actions,
    }
