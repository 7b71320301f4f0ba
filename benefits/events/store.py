"""The departmental tables kept in memory, indexed by person and by household.

The store is built once from an ingested delivery (:class:`benefits.ingest.Extracts`: the
accepted rows, with their 1-based row numbers in the delivered files) and then changed by
events, each as a list of :class:`RowChange` (planned by :mod:`benefits.events.planners`) —
the exact rows appended, updated or removed, written in the data contract's text form so that
the same change can be made to the files (a department's next delivery). Every lookup the
facts need is a dictionary access by resident ID or household number: an event never scans a
table.

Example:
    >>> store = Store.from_extracts(load_extracts(Path("datasets/sample")))  # doctest: +SKIP
    >>> changes = plan(store, event, district="330106")                       # doctest: +SKIP
    >>> undo = store.apply(changes)                                           # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from benefits.events.schema import EventBase, EventError
from benefits.ingest import Extracts
from benefits.schema import TABLES, Column, Table


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

    def __init__(
        self, schema: dict[str, Table] | None = None, record_types: dict[str, type] | None = None
    ) -> None:
        self.schema = TABLES if schema is None else schema  # the tables (a pack's tables.yaml)
        # the record types of `schema` (made once: the event store builds a store per event)
        self.records = record_types or (RECORDS if schema is None else records(schema))
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
