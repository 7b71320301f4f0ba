"""The access report: who saw one person's data, and whose data one user saw (issue 14).

Built from the audit chain's ``data.view`` and ``pii.view`` entries (see
:mod:`benefits.web.tracking`); persons are shown by masked ID and URL reference only.

Example:
    >>> person_access(ctx, "3301…")["users"]                    # doctest: +SKIP
    [{'user': 'officer', 'views': 2, 'reveals': 0, ...}]
"""

from __future__ import annotations

import re
from typing import Any

from benefits.ledger.errors import NotFound
from benefits.web import tracking
from benefits.web.context import WebContext
from benefits.web.privacy import person_ref

REF = re.compile(r"^[0-9a-f]{24}$")


def find_person(ctx: WebContext, value: str) -> str:
    """The ID of a person given their URL reference or their resident ID (NotFound if none)."""
    value = value.strip()
    ctx.know_all()
    if REF.match(value):
        id_no = ctx.directory.resolve(value)
    else:
        known = value.upper()
        # person_ref, not directory.ref: looking up must not make an unknown ID known
        id_no = ctx.directory.resolve(person_ref(ctx.directory.secret, known)) if known else None
    if id_no is None:
        raise NotFound("no person with this reference or ID / 未找到该人员")
    return id_no


def person_access(ctx: WebContext, id_no: str) -> dict[str, Any]:
    """Everyone who saw the person's data, with each access (masked ID and reference)."""
    view = tracking.person_report(ctx.db, id_no)
    return {**view, "ref": ctx.directory.ref(id_no)}


def user_access(ctx: WebContext, username: str) -> dict[str, Any]:
    """Every access of one user and the persons whose data they saw."""
    if username not in {u.username for u in ctx.accounts.users()}:
        raise NotFound(f"no user {username!r}")
    ctx.know_all()
    return tracking.user_report(ctx.db, username, ctx.directory.known_ids(), ctx.directory.ref)
