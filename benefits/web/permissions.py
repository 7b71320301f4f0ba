"""Roles and what they may do. One table, checked on the server for pages and API alike.

- ``officer`` runs sweeps, prepares and submits batches, releases held items, works alerts;
- ``approver`` approves or rejects submitted batches (never one they prepared: four eyes);
- ``auditor`` reads everything and changes nothing;
- ``admin`` manages users, roles and API tokens (and reads the audit log);
- ``policy`` (policy staff) maintains the rule pack and prices rule changes (what-if).

Rule pack releases: an officer (or policy staff) submits a pack, an approver who did not
submit it approves or rejects it; an approver or an admin may roll back in an emergency.

Personal data stays masked unless the user also holds the ``pii`` grant.

Example:
    >>> allowed(["officer"], "batches.prepare"), allowed(["auditor"], "batches.prepare")
    (True, False)
    >>> sorted(roles_with("batches.decide"))
    ['approver']
"""

from __future__ import annotations

from collections.abc import Iterable

from benefits.ledger.errors import InvalidInput
from benefits.web.models import ROLES

READERS = ("officer", "approver", "auditor")

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "dashboard.view": (*READERS, "admin"),
    "rules.view": (*READERS, "admin", "policy"),
    "runs.view": (*READERS, "admin"),
    "audit.view": (*READERS, "admin"),
    "access.report": ("auditor", "admin"),  # who saw whose data (issue 14)
    "batches.view": READERS,
    "persons.view": READERS,
    "alerts.view": READERS,
    "sweeps.run": ("officer",),
    "batches.prepare": ("officer",),
    "batches.decide": ("approver",),
    "alerts.work": ("officer",),
    "users.manage": ("admin",),
    "whatif.run": ("policy", "admin"),  # price a rule change on a month's records (issue 15)
    # output limits (issue 14): files of personal data; a bulk one needs a second person
    "exports.request": READERS,
    "exports.approve": ("officer", "approver"),
    # rule pack releases (issue 15): one person submits, another approves (four eyes)
    "rules.submit": ("officer", "policy"),
    "rules.decide": ("approver",),
    "rules.rollback": ("approver", "admin"),
}

ROLE_LABELS = {
    "officer": "经办人 / Officer",
    "approver": "审核人 / Approver",
    "auditor": "审计 / Auditor",
    "admin": "系统管理员 / Administrator",
    "policy": "政策制定 / Policy staff",
}


def allowed(roles: Iterable[str], permission: str) -> bool:
    """True when one of `roles` carries `permission` (unknown permissions are refused)."""
    holders = PERMISSIONS.get(permission, ())
    return any(r in holders for r in roles)


def roles_with(permission: str) -> set[str]:
    """The roles that carry `permission`."""
    return set(PERMISSIONS.get(permission, ()))


def check_roles(roles: Iterable[str]) -> list[str]:
    """Validated, de-duplicated roles in canonical order; InvalidInput names an unknown one.

    >>> check_roles(["auditor", "officer", "officer"])
    ['officer', 'auditor']
    """
    given = [r.strip() for r in roles if r and r.strip()]
    unknown = [r for r in given if r not in ROLES]
    if unknown:
        raise InvalidInput(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    return [r for r in ROLES if r in given]
