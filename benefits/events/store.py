"""The departmental tables kept in memory, indexed by person and by household.

The store is built once from an ingested delivery (:class:`benefits.ingest.Extracts`: the
accepted rows, with their 1-based row numbers in the delivered files) and then changed by
events, each as a list of :class:`RowChange` — the exact rows appended, updated or removed,
written in the data contract's text form so that the same change can be made to the files
(a department's next delivery). Every lookup the facts need is a dictionary access by resident
ID or household number: an event never scans a table.

Example:
    >>> store = Store.from_extracts(load_extracts(Path("datasets/sample")))  # doctest: +SKIP
    >>> changes = store.plan(event, district="330106")                        # doctest: +SKIP
    >>> undo = store.apply(changes)                                           # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from benefits.events.schema import (
    AssistanceApproved,
    AssistanceEnded,
    BankAccountChanged,
    BirthRegistered,
    CareAssessed,
    CertificateCancelled,
    CertificateIssued,
    DeathRegistered,
    EventBase,
    EventError,
    FinanceAssessed,
    HukouMovedIn,
    HukouMovedOut,
    ParentSituationEnded,
    ParentSituationStarted,
)
from benefits.ingest import Extracts
from benefits.schema import TABLES, Column, Table
from benefits.validity import ends_after, row_in_force


def records(schema: dict[str, Table]) -> dict[str, type]:
    """One record type per table: the file's row number, then the contract's columns."""
    return {
        name: namedtuple(f"{name}_row", ["row_no", *t.names])  # type: ignore[misc]
        for name, t in schema.items()
    }


RECORDS = records(TABLES)
LOW_CARDINALITY = ("enum", "district", "bool", "grade", "month")


@dataclass(frozen=True)
class RowChange:
    """One row appended, updated or removed, in the contract's text form.

    `match` names the row(s) an update or removal applies to (column → text, "" = empty);
    `values` is the whole new row (append) or the columns set (update); `rows` are the file
    row numbers concerned (for an append, the number the new row gets).
    """

    op: Literal["append", "update", "delete"]
    table: str
    values: dict[str, str] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)
    rows: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for results, journals and audit entries)."""
        out: dict[str, Any] = {"op": self.op, "table": self.table, "rows": list(self.rows)}
        if self.match:
            out["match"] = dict(self.match)
        if self.values:
            out["values"] = dict(self.values)
        return out


def text_value(value: Any) -> str:
    """A typed cell as the contract's text (dates ISO, booleans true/false, money 2 decimals)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def typed_value(column: Column, text: str) -> Any:
    """The typed value of a contract text cell (as ingest types it; money in integer fen)."""
    if text is None or text == "":
        return None
    kind = column.kind
    if kind in ("id", "ref_id"):
        return text.upper()
    if kind == "date":
        return dt.date.fromisoformat(text)
    if kind == "money":
        return int(Decimal(text) * 100)
    if kind == "bool":
        return text.lower() in ("true", "1")
    if kind == "grade":
        return int(text)
    if kind == "number":
        return float(text)
    return text


class Store:
    """Accepted rows of every table, indexed for the per-person facts (see module doc)."""

    def __init__(self, schema: dict[str, Table] | None = None) -> None:
        self.schema = TABLES if schema is None else schema  # the tables (a pack's tables.yaml)
        self.records = RECORDS if schema is None else records(schema)
        # each table's index column: a person's ID or a household number (tables.yaml)
        self.index = {n: t.index for n, t in self.schema.items() if t.index is not None}
        self.persons: dict[str, Any] = {}
        self.members: dict[str, list[str]] = {}  # household_no -> ids in file order
        self.children: dict[str, list[str]] = {}  # a parent's ID -> the children's IDs
        # table -> its index value (ID or household number) -> rows in file order
        self.rows: dict[str, dict[str, list[Any]]] = {t: {} for t in self.index}
        self.finance = self.rows["household_finance"]  # household_no -> means tests
        self.certs: dict[str, Any] = {}  # cert_no -> row
        self.next_row: dict[str, int] = dict.fromkeys(self.schema, 1)
        self._intern: dict[Any, Any] = {}

    # ---------------------------------------------------------------------------- building
    @classmethod
    def from_extracts(cls, extracts: Extracts) -> Store:
        """Index the accepted rows of a delivery (row numbers as in the files)."""
        store = cls(extracts.schema)
        for name, table in store.schema.items():
            loaded = extracts.tables[name]
            frame = loaded.frame.select(["_row", *table.names])
            rec = store.records[name]
            shared = [
                i + 1
                for i, c in enumerate(table.columns)
                if c.kind in LOW_CARDINALITY or c.name in ("household_no", "hukou_community")
            ]
            intern = store._intern.setdefault
            for values in frame.iter_rows():
                if shared:
                    values = list(values)
                    for i in shared:
                        v = values[i]
                        values[i] = intern((type(v), v), v)
                store._add(name, rec(*values))
            if loaded.file is not None:
                store.next_row[name] = loaded.read + loaded.skipped_empty + 1
        return store

    def _add(self, table: str, rec: Any) -> None:
        if table == "persons":
            self.persons[rec.id_no] = rec
            self.members.setdefault(rec.household_no, []).append(rec.id_no)
            for parent in (rec.father_id_no, rec.mother_id_no):
                if parent:
                    self.children.setdefault(parent, []).append(rec.id_no)
        else:
            self.rows[table].setdefault(getattr(rec, self.index[table]), []).append(rec)
            if table == "disability_certificates":
                self.certs[rec.cert_no] = rec

    def _remove(self, table: str, rec: Any) -> None:
        if table == "persons":
            del self.persons[rec.id_no]
            self.members[rec.household_no].remove(rec.id_no)
            for parent in (rec.father_id_no, rec.mother_id_no):
                if parent:
                    self.children[parent].remove(rec.id_no)
        else:
            key = getattr(rec, self.index[table])
            found = self.rows[table][key]
            found.remove(rec)
            if not found:
                del self.rows[table][key]
            if table == "disability_certificates":
                del self.certs[rec.cert_no]

    # ----------------------------------------------------------------------------- lookups
    def person_rows(self, table: str, id_no: str | None) -> list[Any]:
        """Rows of a person-keyed table for one ID (empty list when none)."""
        if not id_no:
            return []
        return self.rows[table].get(id_no, [])

    # ---------------------------------------------------------------------------- planning
    def plan(self, event: EventBase, district: str) -> list[RowChange]:
        """The row changes an event makes; :class:`EventError` when it does not fit the data.

        Example:
            >>> store.plan(death_event, district="330106")         # doctest: +SKIP
            [RowChange(op='append', table='deaths', values={...}, rows=(8271,))]
        """
        planner = _PLANNERS.get(type(event))
        if planner is None:  # pragma: no cover - every schema type has a planner
            raise EventError(f"{event.label()}: no planner for this event type")
        return planner(self, event, district)

    def _append(self, table: str, values: dict[str, str], offset: int = 0) -> RowChange:
        full = {name: values.get(name, "") for name in self.schema[table].names}
        return RowChange("append", table, full, rows=(self.next_row[table] + offset,))

    def _person(self, event: EventBase) -> Any:
        rec = self.persons.get(event.person or "")
        if rec is None:
            raise EventError(f"{event.label()}: {event.person} is not in the hukou registry")
        return rec

    # ----------------------------------------------------------------------------- applying
    def apply(self, changes: list[RowChange]) -> Callable[[], None]:
        """Make the changes; return a function that undoes them (in reverse order)."""
        undo: list[Callable[[], None]] = []
        try:
            for change in changes:
                undo.append(self._apply_one(change))
        except Exception:
            for step in reversed(undo):
                step()
            raise

        def revert() -> None:
            for step in reversed(undo):
                step()

        return revert

    def _typed(self, table: str, values: dict[str, str]) -> dict[str, Any]:
        by_name = self.schema[table].by_name
        out = {}
        for name, text in values.items():
            v = typed_value(by_name[name], text)
            if by_name[name].kind in LOW_CARDINALITY or name in ("household_no", "hukou_community"):
                v = self._intern.setdefault((type(v), v), v)
            out[name] = v
        return out

    def _matching(self, change: RowChange) -> list[Any]:
        table = change.table
        want = self._typed(table, change.match)
        if table == "persons":
            pool = [self.persons[want["id_no"]]] if want.get("id_no") in self.persons else []
        elif table == "household_finance":
            pool = list(self.finance.get(want.get("household_no", ""), []))
        elif "id_no" in want:
            pool = list(self.person_rows(table, want["id_no"]))
        else:
            pool = [r for rows in self.rows[table].values() for r in rows]  # pragma: no cover
        return [r for r in pool if all(getattr(r, k) == v for k, v in want.items())]

    def _apply_one(self, change: RowChange) -> Callable[[], None]:
        table = change.table
        rec_type = self.records[table]
        if change.op == "append":
            row_no = change.rows[0]
            rec = rec_type(row_no, **self._typed(table, change.values))
            before_next = self.next_row[table]
            self._add(table, rec)
            self.next_row[table] = max(before_next, row_no + 1)

            def undo_append() -> None:
                self._remove(table, rec)
                self.next_row[table] = before_next

            return undo_append
        targets = self._matching(change)
        if not targets:
            raise EventError(f"no {table} row matches {change.match}")
        if change.op == "delete":
            for rec in targets:
                self._remove(table, rec)

            def undo_delete() -> None:
                for rec in targets:
                    self._add(table, rec)
                    self._resort(table, rec)

            return undo_delete
        new_values = self._typed(table, change.values)
        replaced = [(old, old._replace(**new_values)) for old in targets]
        for old, new in replaced:
            self._replace(table, old, new)

        def undo_update() -> None:
            for old, new in reversed(replaced):
                self._replace(table, new, old)

        return undo_update

    def _replace(self, table: str, old: Any, new: Any) -> None:
        if table == "persons":
            self._remove(table, old)
            self._add(table, new)
            self._resort(table, new)
            return
        if table == "household_finance":
            rows = self.finance[old.household_no]
        else:
            rows = self.rows[table][old.id_no]
        rows[rows.index(old)] = new
        if table == "disability_certificates":
            self.certs[new.cert_no] = new

    def _resort(self, table: str, rec: Any) -> None:
        """Keep file order after re-adding a row (undo, or an update of persons)."""
        if table == "persons":
            ids = self.members[rec.household_no]
            ids.sort(key=lambda i: self.persons[i].row_no)
            for parent in (rec.father_id_no, rec.mother_id_no):
                if parent:
                    self.children[parent].sort(key=lambda i: self.persons[i].row_no)
        elif table == "household_finance":
            self.finance[rec.household_no].sort(key=lambda r: r.row_no)
        else:
            self.rows[table][rec.id_no].sort(key=lambda r: r.row_no)


# ---------------------------------------------------------------------------------- planners


def _plan_death(store: Store, e: DeathRegistered, district: str) -> list[RowChange]:
    return [
        store._append(
            "deaths",
            {"id_no": e.id_no, "death_date": text_value(e.effective_date), "source": e.department},
        )
    ]


def _plan_birth(store: Store, e: BirthRegistered, district: str) -> list[RowChange]:
    if e.id_no in store.persons:
        row = store.persons[e.id_no].row_no
        raise EventError(f"{e.label()}: {e.id_no} is already registered (persons row {row})")
    return [
        store._append(
            "persons",
            {
                "id_no": e.id_no,
                "name": e.name,
                "sex": e.sex,
                "birth_date": text_value(e.effective_date),
                "household_no": e.household_no,
                "relation": e.relation,
                "hukou_district": e.hukou_district or district,
                "hukou_community": e.hukou_community,
                "hukou_status": "normal",
                "father_id_no": e.father_id_no or "",
                "mother_id_no": e.mother_id_no or "",
            },
        )
    ]


def _plan_moved_out(store: Store, e: HukouMovedOut, district: str) -> list[RowChange]:
    rec = store._person(e)
    if rec.hukou_status == "cancelled":
        raise EventError(f"{e.label()}: the hukou of {e.id_no} is cancelled, it cannot move out")
    return [
        RowChange(
            "update",
            "persons",
            {"hukou_status": "moved_out", "moved_out_date": text_value(e.effective_date)},
            {"id_no": e.id_no},
            (rec.row_no,),
        )
    ]


def _plan_moved_in(store: Store, e: HukouMovedIn, district: str) -> list[RowChange]:
    rec = store._person(e)
    if rec.hukou_status != "moved_out":
        raise EventError(
            f"{e.label()}: the hukou of {e.id_no} is {rec.hukou_status}, not moved out: "
            "nothing to move back in"
        )
    return [
        RowChange(
            "update",
            "persons",
            {"hukou_status": "normal", "moved_out_date": ""},
            {"id_no": e.id_no},
            (rec.row_no,),
        )
    ]


def _plan_cert_issued(store: Store, e: CertificateIssued, district: str) -> list[RowChange]:
    if e.cert_no in store.certs:
        row = store.certs[e.cert_no].row_no
        raise EventError(
            f"{e.label()}: certificate {e.cert_no} already exists (disability_certificates row "
            f"{row}); a new certificate needs a new number"
        )
    return [
        store._append(
            "disability_certificates",
            {
                "id_no": e.id_no,
                "cert_no": e.cert_no,
                "category": e.category,
                "grade": str(e.grade),
                "issue_date": text_value(e.effective_date),
                "expiry_date": text_value(e.expiry_date),
                "status": "valid",
            },
        )
    ]


def _plan_cert_cancelled(store: Store, e: CertificateCancelled, district: str) -> list[RowChange]:
    rec = store.certs.get(e.cert_no)
    if rec is None:
        raise EventError(f"{e.label()}: there is no certificate {e.cert_no}")
    if rec.id_no != e.id_no:
        raise EventError(f"{e.label()}: certificate {e.cert_no} belongs to another person")
    return [
        RowChange(
            "update",
            "disability_certificates",
            {"status": "cancelled"},
            {"id_no": e.id_no, "cert_no": e.cert_no},
            (rec.row_no,),
        )
    ]


def _assistance_row(store: Store, id_no: str, kind: str) -> Any:
    for rec in store.person_rows("assistance", id_no):
        if rec.assistance_type == kind:
            return rec
    return None


def _plan_approved(store: Store, e: AssistanceApproved, district: str) -> list[RowChange]:
    values = {
        "household_no": e.household_no,
        "approved_date": text_value(e.effective_date),
        "next_review_date": text_value(e.next_review_date),
    }
    rec = _assistance_row(store, e.id_no, e.assistance_type)
    if rec is not None:
        match = {"id_no": e.id_no, "assistance_type": e.assistance_type}
        return [RowChange("update", "assistance", values, match, (rec.row_no,))]
    return [
        store._append(
            "assistance", {"id_no": e.id_no, "assistance_type": e.assistance_type, **values}
        )
    ]


def _plan_ended(store: Store, e: AssistanceEnded, district: str) -> list[RowChange]:
    rec = _assistance_row(store, e.id_no, e.assistance_type)
    if rec is None:
        raise EventError(f"{e.label()}: {e.id_no} has no {e.assistance_type} status to end")
    match = {"id_no": e.id_no, "assistance_type": e.assistance_type}
    return [RowChange("delete", "assistance", {}, match, (rec.row_no,))]


def _plan_finance(store: Store, e: FinanceAssessed, district: str) -> list[RowChange]:
    return [
        store._append(
            "household_finance",
            {
                "household_no": e.household_no,
                "per_capita_income": text_value(e.per_capita_income),
                "per_capita_assets": text_value(e.per_capita_assets),
                "assessed_on": text_value(e.effective_date),
            },
        )
    ]


def _plan_care(store: Store, e: CareAssessed, district: str) -> list[RowChange]:
    return [
        store._append(
            "care_assessments",
            {
                "id_no": e.id_no,
                "care_level": e.care_level,
                "assessed_on": text_value(e.effective_date),
                "institution_resident": text_value(e.institution_resident),
            },
        )
    ]


def _plan_situation_started(
    store: Store, e: ParentSituationStarted, district: str
) -> list[RowChange]:
    return [
        store._append(
            "parent_situations",
            {
                "id_no": e.id_no,
                "situation": e.situation,
                "start_date": text_value(e.effective_date),
            },
        )
    ]


def _plan_situation_ended(store: Store, e: ParentSituationEnded, district: str) -> list[RowChange]:
    """End, on the event's date D, the rows of the situation in force on D.

    A row in force on D (start ≤ D, end empty or ≥ D) whose end is empty or later than D — a
    detention with a scheduled release, released early — gets the end date D; rows that ended
    before D or start after it are left alone. One update per distinct (start, end) so that
    each names its rows exactly.
    """
    day = e.effective_date
    rows = store.person_rows("parent_situations", e.id_no)
    mine = [r for r in rows if r.situation == e.situation]
    current = [r for r in mine if row_in_force("parent_situations", r, day)]
    if not current:
        later = sorted(r.start_date for r in mine if r.start_date > day)
        hint = f" (it starts on {later[0]})" if later else ""
        raise EventError(
            f"{e.label()}: {e.id_no} has no open '{e.situation}' situation on {day} to end{hint}"
        )
    to_end = [r for r in current if ends_after(r.end_date, day)]
    if not to_end:
        raise EventError(
            f"{e.label()}: the '{e.situation}' situation of {e.id_no} already ends on {day}"
        )
    groups: dict[tuple[dt.date, dt.date | None], list[int]] = {}
    for r in sorted(to_end, key=lambda r: r.row_no):
        groups.setdefault((r.start_date, r.end_date), []).append(r.row_no)
    return [
        RowChange(
            "update",
            "parent_situations",
            {"end_date": text_value(day)},
            {
                "id_no": e.id_no,
                "situation": e.situation,
                "start_date": text_value(start),
                "end_date": text_value(end),
            },
            tuple(rows),
        )
        for (start, end), rows in groups.items()
    ]


def _plan_bank(store: Store, e: BankAccountChanged, district: str) -> list[RowChange]:
    return [
        store._append(
            "bank_accounts",
            {
                "id_no": e.id_no,
                "account_no": e.account_no,
                "account_name": e.account_name,
                "financial_active": text_value(e.financial_active),
                "status": e.status,
            },
        )
    ]


_PLANNERS: dict[type, Callable[[Store, Any, str], list[RowChange]]] = {
    DeathRegistered: _plan_death,
    BirthRegistered: _plan_birth,
    HukouMovedOut: _plan_moved_out,
    HukouMovedIn: _plan_moved_in,
    CertificateIssued: _plan_cert_issued,
    CertificateCancelled: _plan_cert_cancelled,
    AssistanceApproved: _plan_approved,
    AssistanceEnded: _plan_ended,
    FinanceAssessed: _plan_finance,
    CareAssessed: _plan_care,
    ParentSituationStarted: _plan_situation_started,
    ParentSituationEnded: _plan_situation_ended,
    BankAccountChanged: _plan_bank,
}
