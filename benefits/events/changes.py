"""What an event changed: entitlements started, stopped or changed, alerts raised or cleared.

:func:`diff` compares a person's decisions before and after an event. The service attaches
to each entitlement change the new decision's trace (the sweep's trace record for that
person × policy), so an officer sees at once why the payment stops or starts.

Example:
    >>> before = PersonOutcome("3301…", "H1", "c", "张三", "6222…",
    ...                        {"old_age_allowance": Entitlement("old_age_allowance", "pay", 6000)})
    >>> after = PersonOutcome("3301…", "H1", "c", "张三", "6222…")
    >>> [c.kind for c in diff(before, after, "2025-02")]
    ['stop']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benefits.events.decide import Alert, Entitlement, PersonOutcome, yuan

ENTITLEMENT_CHANGES = ("start", "stop", "amount_change", "hold_change")
ALERT_CHANGES = ("alert_raised", "alert_cleared", "alert_changed")


@dataclass(frozen=True)
class Change:
    """One change of a person's decisions for the month."""

    kind: str
    id_no: str
    household_no: str
    month: str
    policy_id: str = ""
    mode: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    trace: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "change": self.kind,
            "id_no": self.id_no,
            "household_no": self.household_no,
            "month": self.month,
            "policy_id": self.policy_id,
        }
        if self.mode:
            out["mode"] = self.mode
        out["before"] = self.before
        out["after"] = self.after
        if self.trace is not None:
            out["trace"] = self.trace
        return out

    def describe(self) -> str:
        """One line for people, e.g. ``stop old_age_allowance 60.00 → —``."""

        def money(side: dict[str, Any] | None) -> str:
            if side is None:
                return "—"
            return side["amount"] + (" (held)" if side.get("held") else "")

        if self.kind in ENTITLEMENT_CHANGES:
            return f"{self.kind} {self.policy_id} {money(self.before)} → {money(self.after)}"
        alert = self.after or self.before or {}
        what = alert.get("kind", "")
        if alert.get("policy_id"):
            what += f"/{alert['policy_id']}"
        return f"{self.kind} {what} due {alert.get('due_date') or '—'}: {alert.get('message', '')}"


def entitlement_view(e: Entitlement) -> dict[str, Any]:
    return {"amount": yuan(e.amount_fen), "held": e.held, "hold_reason": e.hold_reason}


def alert_view(a: Alert) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "policy_id": a.policy_id,
        "due_date": a.due_date.isoformat() if a.due_date else None,
        "message": a.message,
    }


def diff(before: PersonOutcome | None, after: PersonOutcome, month: str) -> list[Change]:
    """The changes from `before` (None: nothing decided yet) to `after` for one person."""
    old_ents = before.entitlements if before else {}
    new_ents = after.entitlements
    changes: list[Change] = []
    who = (after.id_no, after.household_no, month)
    for pid in sorted(set(old_ents) | set(new_ents), key=lambda p: _number(p, old_ents, new_ents)):
        o, n = old_ents.get(pid), new_ents.get(pid)
        if o is None and n is not None:
            kind = "start"
        elif n is None and o is not None:
            kind = "stop"
        elif o is not None and n is not None and o.amount_fen != n.amount_fen:
            kind = "amount_change"
        elif o is not None and n is not None and (o.held, o.hold_reason) != (n.held, n.hold_reason):
            kind = "hold_change"
        else:
            continue
        mode = (n or o).mode  # type: ignore[union-attr]
        changes.append(
            Change(
                kind, *who, pid, mode,
                None if o is None else entitlement_view(o),
                None if n is None else entitlement_view(n),
            )
        )  # fmt: skip
    old_alerts = {a.identity: a for a in (before.alerts if before else [])}
    new_alerts = {a.identity: a for a in after.alerts}
    for key in sorted(set(old_alerts) | set(new_alerts), key=_alert_key):
        o_a, n_a = old_alerts.get(key), new_alerts.get(key)
        if o_a is None:
            kind = "alert_raised"
        elif n_a is None:
            kind = "alert_cleared"
        elif o_a.message != n_a.message:
            kind = "alert_changed"
        else:
            continue
        changes.append(
            Change(
                kind, *who, key[2], None,
                None if o_a is None else alert_view(o_a),
                None if n_a is None else alert_view(n_a),
            )
        )  # fmt: skip
    return changes


def _number(pid: str, *maps: dict[str, Entitlement]) -> tuple[int, str]:
    for m in maps:
        if pid in m:
            return (m[pid].number, pid)
    return (0, pid)  # pragma: no cover


def _alert_key(identity: tuple[Any, ...]) -> tuple[Any, ...]:
    id_no, kind, policy, due = identity
    return (id_no, kind, policy, due is not None, due)
