"""Data tracking: who saw whose data, when, of what class and why (issue 14, point 4).

Every route that serves a person's data calls :func:`record_access` once per request: one
audit entry in the keyed chain, whatever the number of persons served.

- ``data.view``: data served masked (a person page, a letter, a batch's items, the alerts);
- ``pii.view``: data revealed in full to a user with the ``pii`` grant (with the reason the
  user gave, else the route's purpose).

Each entry holds the actor and time (columns of the chain), ``what`` was served, its
``class`` (the highest data class served, :mod:`benefits.classes`), its ``purpose`` and the
persons by keyed blind index (``persons``, with ``index_key``, the blind index key's ID) —
never an ID in clear. A list names its persons in one entry (a 50-item page: 50 indexes of
32 hex characters). The object of the entry is the person's masked ID (as ``pii.view`` always
had it), or a reference of the list (``batch 3 page 2``).

An auditor asks :func:`person_report` who saw one person's data, and :func:`user_report`
whose data one user saw. After each reveal :func:`check_unusual` compares the account's
distinct persons revealed in the last hour with its peers': more than
:data:`UNUSUAL_FACTOR` × the peers' median and more than :data:`UNUSUAL_MIN` writes one
``security.unusual_access`` entry (at most one per account per hour), which admins see as a
notice on every page (:func:`unusual_notices`).

Example:
    >>> record_access(db, actor="wang", what="person page", purpose=PURPOSES["person"],
    ...               id_nos=["3301…"], data_class="personal")   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select

from benefits import classes
from benefits.idcard import mask_id
from benefits.ledger import audit
from benefits.ledger.db import Database
from benefits.ledger.models import AuditEntry

log = logging.getLogger("benefits.web.tracking")

VIEW, REVEAL, UNUSUAL = "data.view", "pii.view", "security.unusual_access"
ACCESS_ACTIONS = (VIEW, REVEAL)
WINDOW = dt.timedelta(hours=1)
UNUSUAL_FACTOR = 3
UNUSUAL_MIN = 20
NOTICE_WINDOW = dt.timedelta(hours=24)

# The purpose of each kind of route: why the data is served (handbook: explanation letters,
# the four-eyes payout check, working the alerts).
PURPOSES: dict[str, str] = {
    "person": "解释认定结果 / explain the decisions to the person",
    "letter": "出具告知书 / issue the notice of decisions",
    "batch": "发放审核 / check a payout batch (four eyes)",
    "alerts": "处理预警 / work the alerts inbox",
    "alert": "处理预警 / work an alert",
    "report": "数据查阅记录 / access report (data-subject request, audit)",
    "whatif": "政策调整测算 / price a rule change (what-if)",
}


def masked_class() -> str:
    """The class of data shown masked: personal (masked IDs, names, amounts)."""
    return classes.PERSONAL


def revealed_class() -> str:
    """The class of data revealed in full: sensitive (the ID, health, accounts)."""
    return classes.SENSITIVE


def indexes(db: Database, id_nos: Iterable[str]) -> tuple[str, list[str]]:
    """(blind index key ID, the distinct blind indexes of the IDs in order)."""
    key_id, seen, out = "", set(), []
    for id_no in id_nos:
        if not id_no or id_no in seen:
            continue
        seen.add(id_no)
        key_id, index = db.keys.blind_index(id_no)
        out.append(index)
    if not key_id:
        key_id = db.keys.current("blind_index")[0]
    return key_id, out


def record_access(
    db: Database,
    *,
    actor: str,
    what: str,
    purpose: str,
    id_nos: Sequence[str],
    data_class: str,
    reveal: bool = False,
    reason: str = "",
    reference: str = "",
    month: str | None = None,
) -> None:
    """Write one ``data.view`` (or ``pii.view`` when revealed) entry for one request.

    `reference` names a list (``batch 3 page 2``); a single person is named by their blind
    index. Nothing is written when a list is empty. A reveal then runs :func:`check_unusual`.
    """
    if data_class not in classes.CLASSES:
        raise ValueError(f"unknown data class {data_class!r}")
    key_id, persons = indexes(db, id_nos)
    if not persons:
        return
    single = len(persons) == 1 and not reference
    first = next(i for i in id_nos if i)
    after: dict[str, Any] = {
        "what": what, "class": data_class, "purpose": purpose, "month": month,
        "count": len(persons), "persons": persons, "index_key": key_id,
    }  # fmt: skip
    if single:
        after["id_index"] = persons[0]
    if reason:
        after["reason"] = reason
    with db.transaction() as s:
        audit.append(
            s, at=db.now(), actor=actor, action=REVEAL if reveal else VIEW,
            object_type="person" if single else "persons",
            object_id=mask_id(first) if single else reference[:64], after=after,
        )  # fmt: skip
    if reveal:
        try:
            check_unusual(db, actor)
        except Exception as exc:  # the page is still served; the operator sees why
            log.error("could not check for unusual access: %s", exc)


def track(ctx: Any, who: Any, ids: Sequence[str | None], kind: str, what: str, *,
          shown: bool = False, reason: str = "", reference: str = "",
          month: str | None = None) -> None:  # fmt: skip
    """One audit entry for the person data a page or API call served to `who` (a signed-in
    Principal): `kind` names the purpose (PURPOSES), `shown` whether it was revealed."""
    record_access(
        ctx.db, actor=who.username, what=what, purpose=PURPOSES[kind],
        id_nos=[i for i in ids if i], reveal=shown, reason=reason.strip(),
        data_class=revealed_class() if shown else masked_class(),
        reference=reference, month=month,
    )  # fmt: skip


def track_listed(ctx: Any, who: Any, items: Sequence[dict[str, Any]], kind: str, what: str,
                 **how: Any) -> None:  # fmt: skip
    """:func:`track` for a listing: the persons of its `items` (each with a directory ``ref``)."""
    track(ctx, who, [ctx.directory.resolve(i["ref"]) for i in items], kind, what, **how)


def _content(entry: AuditEntry) -> dict[str, Any]:
    try:
        return json.loads(entry.content).get("after") or {}
    except (ValueError, AttributeError):
        return {}


def _persons(after: dict[str, Any]) -> list[str]:
    found = after.get("persons")
    if isinstance(found, list):
        return [str(p) for p in found]
    return [str(after["id_index"])] if after.get("id_index") else []


def revealed_last_hour(db: Database, now: dt.datetime) -> dict[str, set[str]]:
    """Distinct persons (blind indexes) each account revealed in the hour before `now`."""
    with db.snapshot() as s:
        rows = s.execute(
            select(AuditEntry).where(AuditEntry.action == REVEAL, AuditEntry.at >= now - WINDOW)
        ).scalars()
        seen: dict[str, set[str]] = {}
        for e in rows:
            seen.setdefault(e.actor, set()).update(_persons(_content(e)))
    return seen


def check_unusual(db: Database, actor: str) -> bool:
    """Raise ``security.unusual_access`` when `actor` revealed far more persons than its peers
    in the last hour (> UNUSUAL_FACTOR × the peers' median and > UNUSUAL_MIN); once an hour.

    Returns True when an alert was written.
    """
    now = db.now()
    seen = revealed_last_hour(db, now)
    mine = len(seen.get(actor, ()))
    peers = [len(v) for k, v in seen.items() if k != actor]
    median = statistics.median(peers) if peers else 0
    if mine <= UNUSUAL_MIN or mine <= UNUSUAL_FACTOR * median:
        return False
    with db.transaction() as s:
        already = s.execute(
            select(AuditEntry.seq).where(
                AuditEntry.action == UNUSUAL, AuditEntry.object_id == actor,
                AuditEntry.at >= now - WINDOW,
            ).limit(1)
        ).scalar_one_or_none()  # fmt: skip
        if already is not None:
            return False
        audit.append(
            s, at=now, actor="system", action=UNUSUAL, object_type="user", object_id=actor,
            after={"persons_revealed": mine, "peers": len(peers), "peer_median": median,
                   "window_minutes": int(WINDOW.total_seconds() // 60),
                   "rule": f"> {UNUSUAL_FACTOR} x peer median and > {UNUSUAL_MIN}"},
        )  # fmt: skip
    log.warning("unusual access: %s revealed %d persons in an hour (peer median %s)",
                actor, mine, median)  # fmt: skip
    return True


def unusual_notices(db: Database) -> list[dict[str, Any]]:
    """The unusual-access alerts of the last 24 hours, newest first (the admins' notice)."""
    now = db.now()
    with db.snapshot() as s:
        rows = list(s.execute(
            select(AuditEntry).where(AuditEntry.action == UNUSUAL,
                                     AuditEntry.at >= now - NOTICE_WINDOW)
            .order_by(AuditEntry.seq.desc()).limit(20)
        ).scalars())  # fmt: skip
    return [{"seq": e.seq, "at": e.at, "user": e.object_id, **_content(e)} for e in rows]


def _row(e: AuditEntry, after: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
        "what": after.get("what", ""), "class": after.get("class", classes.SENSITIVE
                                                          if e.action == REVEAL else ""),
        "purpose": after.get("purpose", ""), "reason": after.get("reason", ""),
        "month": after.get("month"), "count": after.get("count", len(_persons(after))),
        "reference": e.object_id if e.object_type == "persons" else "",
    }  # fmt: skip


def person_indexes(db: Database, id_no: str) -> set[str]:
    """The blind indexes of an ID under every blind index key of the ring (old keys too)."""
    ring = db.keys
    return {ring.mac_with("blind_index", kid, id_no.encode("utf-8"))[:32]
            for kid in ring.keys.get("blind_index", {})}  # fmt: skip


def person_report(db: Database, id_no: str) -> dict[str, Any]:
    """Everyone who saw one person's data: each access and a summary per user."""
    wanted = person_indexes(db, id_no)
    rows: list[dict[str, Any]] = []
    if not wanted:  # no blind index key: nothing can have been recorded about anyone
        return {"person": mask_id(id_no), "accesses": [], "users": []}
    with db.snapshot() as s:
        found = s.execute(
            select(AuditEntry)
            .where(AuditEntry.action.in_(ACCESS_ACTIONS),
                   or_(*(AuditEntry.content.contains(w) for w in sorted(wanted))))
            .order_by(AuditEntry.seq)
        ).scalars()  # fmt: skip
        for e in found:
            after = _content(e)
            if wanted & set(_persons(after)):
                rows.append(_row(e, after))
    users: dict[str, dict[str, Any]] = {}
    for r in rows:
        u = users.setdefault(r["actor"], {"user": r["actor"], "views": 0, "reveals": 0,
                                          "first": r["at"], "last": r["at"]})  # fmt: skip
        u["reveals" if r["action"] == REVEAL else "views"] += 1
        u["last"] = r["at"]
    return {"person": mask_id(id_no), "accesses": rows, "users": list(users.values())}


def user_report(db: Database, username: str, known_ids: Iterable[str],
                ref: Callable[[str], str]) -> dict[str, Any]:
    """Whose data one user saw: each access and the persons (masked ID, reference, how often).

    `known_ids` are the IDs the app knows and `ref` gives a person's URL reference; a blind
    index of a person the app no longer knows is listed as ``unknown``.
    """
    with db.snapshot() as s:
        found = list(s.execute(
            select(AuditEntry)
            .where(AuditEntry.action.in_(ACCESS_ACTIONS), AuditEntry.actor == username)
            .order_by(AuditEntry.seq)
        ).scalars())  # fmt: skip
    rows, counts = [], {}
    for e in found:
        after = _content(e)
        rows.append(_row(e, after))
        for p in _persons(after):
            c = counts.setdefault(p, {"views": 0, "reveals": 0})
            c["reveals" if e.action == REVEAL else "views"] += 1
    by_index: dict[str, str] = {}
    if counts:
        ring = db.keys
        kids = list(ring.keys.get("blind_index", {}))
        for id_no in known_ids:
            for kid in kids:
                index = ring.mac_with("blind_index", kid, id_no.encode("utf-8"))[:32]
                if index in counts:
                    by_index[index] = id_no
    persons = sorted(
        ({"ref": ref(by_index[i]) if i in by_index else "",
          "person": mask_id(by_index[i]) if i in by_index else "unknown", **c}
         for i, c in counts.items()),
        key=lambda p: (-(p["views"] + p["reveals"]), p["person"]),
    )  # fmt: skip
    return {"user": username, "accesses": rows, "persons": persons}
