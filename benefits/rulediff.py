"""`benefits rules diff OLD NEW`: what changed between two rule packs, in the handbook's words.

Parameters (old → new value with its effective date, dates added or removed, labels, units,
bases), policies added or removed and, per policy, the target group, conditions, amounts,
components, validity and mode; exclusions, mutually exclusive pairs, alerts, event reactions
and the fact catalogue. Rendered for the terminal, as JSON or as Markdown (for a release).

Example:
    >>> from benefits.rulebook import load_pack
    >>> d = diff_packs(load_pack(), load_pack().with_parameters({"dibao_std": "1400"}))
    >>> d.changes[0].text  # doctest: +ELLIPSIS
    '低保标准 / minimum living standard (dibao_std): ...'
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from benefits.rulebook import Parameter, RulePack

SECTIONS = {
    "pack": "Pack / 规则包",
    "parameters": "Parameters / 参数",
    "policies": "Policies / 政策",
    "exclusions": "Exclusions / 排斥规则",
    "mutually_exclusive": "Mutually exclusive pairs / 互斥",
    "alerts": "Alerts / 预警",
    "events": "Event reactions / 事件响应",
    "facts": "Facts and tables / 事实与数据表",
}
MARK = {"added": "+", "removed": "-", "changed": "~"}


@dataclass(frozen=True)
class Change:
    """One difference: section, the item (its id), added/removed/changed, the field, the old
    and new text, and the sentence that says it in the handbook's words."""

    section: str
    item: str
    kind: str
    field: str
    old: str | None
    new: str | None
    text: str


@dataclass
class PackDiff:
    """The differences between two packs (empty `changes`: the same rules)."""

    old: dict[str, str]
    new: dict[str, str]
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "changes": [asdict(c) for c in self.changes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def by_section(self) -> dict[str, list[Change]]:
        out: dict[str, list[Change]] = {}
        for c in self.changes:
            out.setdefault(c.section, []).append(c)
        return out

    def to_text(self) -> str:
        lines = [
            f"Rule pack {self.old['version']} ({self.old['hash'][:12]}) → "
            f"{self.new['version']} ({self.new['hash'][:12]})"
        ]
        if not self.changes:
            lines.append("no differences")
        for section, changes in self.by_section().items():
            lines += ["", SECTIONS[section]]
            lines += [f"  {MARK[c.kind]} {c.text}" for c in changes]
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        lines = [
            f"# Rule pack changes: {self.old['version']} → {self.new['version']}",
            "",
            f"- old: `{self.old['folder']}`, hash `{self.old['hash']}`",
            f"- new: `{self.new['folder']}`, hash `{self.new['hash']}`",
        ]
        if not self.changes:
            lines += ["", "No differences."]
        for section, changes in self.by_section().items():
            lines += ["", f"## {SECTIONS[section]}", ""]
            for c in changes:
                lines.append(f"- **{c.kind}** — {_md(c.text)}")
        return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


class _Differ:
    def __init__(self, old: RulePack, new: RulePack) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []

    def add(self, section: str, item: str, kind: str, fld: str, old: Any, new: Any,
            text: str) -> None:  # fmt: skip
        o = None if old is None else _text(old)
        n = None if new is None else _text(new)
        self.changes.append(Change(section, item, kind, fld, o, n, text))

    def fields(self, section: str, item: str, title: str, a: BaseModel, b: BaseModel,
               skip: tuple[str, ...] = ()) -> None:  # fmt: skip
        """Every top-level field of two models that differs, as `changed`."""
        da, db = a.model_dump(mode="json"), b.model_dump(mode="json")
        for key in da.keys() | db.keys():
            if key in skip or da.get(key) == db.get(key):
                continue
            self.add(section, item, "changed", key, da.get(key), db.get(key),
                     f"{title}: {key} {_text(da.get(key))} → {_text(db.get(key))}")  # fmt: skip

    # ------------------------------------------------------------------ sections

    def pack(self) -> None:
        self.fields("pack", "pack", "pack", self.old.info, self.new.info)

    def parameters(self) -> None:
        old, new = self.old.parameters, self.new.parameters
        for name in sorted(old.keys() - new.keys()):
            p = old[name]
            self.add("parameters", name, "removed", "", _values(p), None,
                     f"{p.label.text()} ({name}) removed (was {_values(p)})")  # fmt: skip
        for name in sorted(new.keys() - old.keys()):
            p = new[name]
            self.add("parameters", name, "added", "", None, _values(p),
                     f"{p.label.text()} ({name}) added: {_values(p)} {p.unit}")  # fmt: skip
        for name in sorted(old.keys() & new.keys()):
            self.parameter(name, old[name], new[name])

    def parameter(self, name: str, a: Parameter, b: Parameter) -> None:
        title = f"{b.label.text()} ({name})"
        for day in sorted(a.values.keys() | b.values.keys()):
            va, vb = a.values.get(day), b.values.get(day)
            if va == vb:
                continue
            fld = f"value from {day.isoformat()}"
            if va is None:
                before = _in_force(a, day)
                was = (f"{before[0]} in force since {before[1].isoformat()}" if before
                       else "no value before")  # fmt: skip
                self.add("parameters", name, "added", fld, before and before[0], vb,
                         f"{title}: {before[0] if before else '—'} → {vb} {b.unit} from "
                         f"{day.isoformat()} (a new effective date; {was})")  # fmt: skip
            elif vb is None:
                after = _in_force(b, day)
                stays = f"{after[0]} from {after[1].isoformat()}" if after else "no value"
                self.add("parameters", name, "removed", fld, va, after and after[0],
                         f"{title}: the value {va} from {day.isoformat()} is removed "
                         f"({stays} stays in force)")  # fmt: skip
            else:
                self.add("parameters", name, "changed", fld, va, vb,
                         f"{title}: {va} → {vb} {b.unit} from {day.isoformat()}")  # fmt: skip
        self.fields("parameters", name, title, a, b, skip=("values",))

    def policies(self) -> None:
        old, new = self.old.by_id, self.new.by_id
        for pid in [p.id for p in self.old.policies if p.id not in new]:
            p = old[pid]
            self.add("policies", pid, "removed", "", p.name.text(), None,
                     f"policy {p.number} {p.name.text()} ({pid}) removed")  # fmt: skip
        for pid in [p.id for p in self.new.policies if p.id not in old]:
            p = new[pid]
            self.add("policies", pid, "added", "", None, p.name.text(),
                     f"policy {p.number} {p.name.text()} ({pid}) added, {p.mode}, from "
                     f"{p.valid_from.isoformat()}")  # fmt: skip
        for p in self.new.policies:
            if p.id in old:
                self.policy(old[p.id], p)

    def policy(self, a: Any, b: Any) -> None:
        title = f"policy {b.number} {b.name.text()} ({b.id})"
        pid = b.id
        if a.considers != b.considers:
            self.add("policies", pid, "changed", "considers", a.considers, b.considers,
                     f"{title}: target group {a.considers} → {b.considers}")  # fmt: skip
        ca, cb = {c.id: c for c in a.conditions}, {c.id: c for c in b.conditions}
        for cid in [c for c in ca if c not in cb]:
            self.add("policies", pid, "removed", f"conditions.{cid}", ca[cid].when, None,
                     f"{title}: condition '{ca[cid].label.text()}' ({ca[cid].when}) "
                     "removed")  # fmt: skip
        for cid in [c for c in cb if c not in ca]:
            self.add("policies", pid, "added", f"conditions.{cid}", None, cb[cid].when,
                     f"{title}: condition '{cb[cid].label.text()}' added: "
                     f"{cb[cid].when}")  # fmt: skip
        for cid in [c for c in cb if c in ca]:
            x, y = ca[cid], cb[cid]
            if x.when != y.when:
                self.add("policies", pid, "changed", f"conditions.{cid}.when", x.when, y.when,
                         f"{title}: condition '{y.label.text()}' {x.when} → {y.when}")  # fmt: skip
            if x.label != y.label:
                self.add("policies", pid, "changed", f"conditions.{cid}.label", x.label.text(),
                         y.label.text(), f"{title}: condition '{cid}' now reads "
                         f"'{y.label.text()}' (was '{x.label.text()}')")  # fmt: skip
        if a.amount_text() != b.amount_text():
            self.add("policies", pid, "changed", "amount", a.amount_text(), b.amount_text(),
                     f"{title}: amount {a.amount_text()} → {b.amount_text()}")  # fmt: skip
        for key, what in (("let", "definition"), ("components", "component")):
            da, db = getattr(a, key), getattr(b, key)
            for n in sorted(da.keys() | db.keys()):
                if da.get(n) != db.get(n):
                    kind = "added" if n not in da else "removed" if n not in db else "changed"
                    self.add("policies", pid, kind, f"{key}.{n}", da.get(n), db.get(n),
                             f"{title}: {what} {n} {_text(da.get(n))} → "
                             f"{_text(db.get(n))}")  # fmt: skip
        self.fields("policies", pid, title, a, b,
                    skip=("considers", "conditions", "amount", "let", "components",
                          "source_file"))  # fmt: skip

    def keyed(self, section: str, what: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        for key in [k for k in old if k not in new]:
            self.add(section, key, "removed", "", _label(old[key]), None,
                     f"{what} '{key}' ({_label(old[key])}) removed")  # fmt: skip
        for key in [k for k in new if k not in old]:
            self.add(section, key, "added", "", None, _label(new[key]),
                     f"{what} '{key}' ({_label(new[key])}) added")  # fmt: skip
        for key in [k for k in new if k in old]:
            self.fields(section, key, f"{what} '{key}'", old[key], new[key])

    def exclusions(self) -> None:
        ea, eb = self.old.exclusions, self.new.exclusions
        self.keyed("exclusions", "exclusion", {e.id: e for e in ea.exclusions},
                   {e.id: e for e in eb.exclusions})  # fmt: skip
        pa = {" + ".join(sorted(p.policies)): p for p in ea.mutually_exclusive}
        pb = {" + ".join(sorted(p.policies)): p for p in eb.mutually_exclusive}
        for key in sorted(pa.keys() | pb.keys()):
            x, y = pa.get(key), pb.get(key)
            if x == y:
                continue
            kind = "added" if x is None else "removed" if y is None else "changed"
            old_by = x.resolved_by if x else None
            new_by = y.resolved_by if y else None
            self.add("mutually_exclusive", key, kind, "resolved_by", old_by, new_by,
                     f"{key} never both paid: {_text(old_by)} → {_text(new_by)}")  # fmt: skip

    def alerts(self) -> None:
        self.keyed("alerts", "alert", {a.id: a for a in self.old.alerts},
                   {a.id: a for a in self.new.alerts})  # fmt: skip

    def events(self) -> None:
        ea, eb = self.old.events, self.new.events
        self.keyed("events", "reaction", {r.id: r for r in ea.reactions},
                   {r.id: r for r in eb.reactions})  # fmt: skip
        self.keyed("events", "correlation", {c.id: c for c in ea.correlations},
                   {c.id: c for c in eb.correlations})  # fmt: skip

    def facts(self) -> None:
        fa, fb = self.old.catalogue.facts, self.new.catalogue.facts
        for name in sorted(fa.keys() | fb.keys()):
            x, y = fa.get(name), fb.get(name)
            if x == y:
                continue
            kind = "added" if x is None else "removed" if y is None else "changed"
            label = f"{(y or x).zh} / {(y or x).en}"  # type: ignore[union-attr]
            self.add("facts", name, kind, "", x and asdict(x), y and asdict(y),
                     f"fact {name} ({label}) {kind}")  # fmt: skip
        ta, tb = self.old.catalogue.tables, self.new.catalogue.tables
        for name in sorted(ta.keys() | tb.keys()):
            if repr(ta.get(name)) != repr(tb.get(name)):
                kind = "added" if name not in ta else "removed" if name not in tb else "changed"
                self.add("facts", f"table {name}", kind, "", None, None,
                         f"departmental table {name}: its columns or checks {kind}")  # fmt: skip


def _label(model: Any) -> str:
    label = getattr(model, "label", None)
    return label.text() if label is not None else ""


def _values(p: Parameter) -> str:
    return ", ".join(f"{v} from {d.isoformat()}" for d, v in sorted(p.values.items()))


def _in_force(p: Parameter, day: dt.date) -> tuple[Any, dt.date] | None:
    best = None
    for d in sorted(p.values):
        if d <= day:
            best = (p.values[d], d)
    return best


def _info(pack: RulePack) -> dict[str, str]:
    return {"folder": str(pack.folder), "version": pack.version, "hash": pack.digest}


def diff_packs(old: RulePack, new: RulePack) -> PackDiff:
    """Every difference between two loaded packs, section by section."""
    d = _Differ(old, new)
    for step in (d.pack, d.parameters, d.policies, d.exclusions, d.alerts, d.events, d.facts):
        step()
    return PackDiff(_info(old), _info(new), d.changes)
