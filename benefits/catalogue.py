"""The facts catalogue: the handbook's per-person facts declared as data (``rules/facts.yaml``).

Each fact has its labels, kind, source table, row fact and inputs (what traces, docs and the
data classes read) and its derivation: a plain column of the persons row, a column or an
aggregate of a *selection* (a person's rows of one table, filtered by date, validity period or
month window and ordered), a household aggregate, or a per-row formula. Two backends read the
declarations: :mod:`benefits.merge` builds one Polars plan for the whole population, and
:mod:`benefits.household` computes the same facts for one household's rows. Nothing else
lists how a fact is computed. A rule pack carries its own ``facts.yaml`` and ``tables.yaml``;
:func:`load_catalogue` reads both.

Example:
    >>> cat = load_catalogue(bundled("rules"))
    >>> cat.facts["oop_12m"].source, cat.derivations["oop_12m"].how
    ('medical_expenses', 'sum')
    >>> cat.selections["cert"].open_on, cat.tables["disability_certificates"].period.start
    ('month_start', 'issue_date')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from benefits.errors import RuleError
from benefits.resources import bundled
from benefits.schema import Table, load_tables, read_declarations

FactKind = Literal["bool", "int", "money", "number", "date", "str"]
Day = Literal["month_start", "month_end", "prev_month_start", "prev_month_end", "day_before"]
DAYS: tuple[str, ...] = Day.__args__  # type: ignore[attr-defined]
CONSTANTS = ("district_code",)
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")
AGGREGATES = ("exists", "count", "sum", "n_unique", "first")

# a formula, parsed: ("name", fact) | ("day", day) | ("const", name) | ("lit", value)
# | ("col", selection, column) | ("row", selection) | (operator, *operands)
Node = tuple[Any, ...]


@dataclass(frozen=True)
class Fact:
    """A per-person fact: its type, label and where it comes from."""

    kind: FactKind
    en: str
    zh: str
    source: str  # table (or "derived")
    row: str | None = None  # the fact holding the source row number
    inputs: tuple[str, ...] = ()  # facts it is derived from, shown beside it in traces


@dataclass(frozen=True)
class Selection:
    """A person's rows of one table for the month (see ``rules/facts.yaml``)."""

    name: str
    table: str
    of: str  # the fact matched against the table's index column
    before: tuple[tuple[str, str], ...] = ()  # (column, day): column < day
    open_on: str | None = None  # the table's period in force on this day
    window: tuple[str, int] | None = None  # (month column, months before M)
    order: tuple[tuple[str, bool, bool], ...] = ()  # (column, descending, by rank)
    pick: Literal["first", "last", "all"] = "all"
    row: str | None = None


@dataclass(frozen=True)
class Derivation:
    """How one fact is computed (exactly one of the declared forms)."""

    how: Literal[
        "column", "pick", "exists", "count", "sum", "n_unique", "first", "household", "formula"
    ]
    selection: str | None = None
    column: str | None = None
    where: tuple[str, str] | None = None
    formula: Node | None = None
    household: Literal["count", "any"] | None = None
    default: Any = None
    cast_int: bool = False


@dataclass(frozen=True)
class Catalogue:
    """A rule pack's input tables, selections and facts, checked and ordered for evaluation."""

    tables: dict[str, Table]
    selections: dict[str, Selection]
    facts: dict[str, Fact]
    derivations: dict[str, Derivation]
    members: Node  # who counts as a household member
    order: tuple[str, ...]  # the facts in an order that computes every input first
    row_facts: tuple[str, ...]
    person: str  # the selection of the persons row itself

    @property
    def columns(self) -> list[str]:
        """The facts frame's columns: the facts, then the row facts."""
        return list(dict.fromkeys([*self.facts, *self.row_facts]))


# ------------------------------------------------------------------------------ declarations
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Rank(_Strict):
    rank: str


class _Window(_Strict):
    column: str
    months: Annotated[int, Field(ge=1)] = 12


class _SelectionDecl(_Strict):
    table: str
    of: str = "id_no"
    before: dict[str, Day] = {}
    open_on: Day | None = None
    window: _Window | None = None
    order: list[str | _Rank] = []
    pick: Literal["first", "last", "all"] = "all"
    row: str | None = None


class _HouseholdDecl(_Strict):
    count: Literal[True] | None = None
    any: Any = None

    @model_validator(mode="after")
    def _one(self) -> _HouseholdDecl:
        if (self.count is None) == (self.any is None):
            raise ValueError("a household aggregate is either count: true or any: <formula>")
        return self


class _FactDecl(_Strict):
    kind: FactKind
    en: str
    zh: str
    source: str | None = None
    row: str | None = None
    inputs: list[str] = []
    column: str | None = None
    from_: str | None = Field(default=None, alias="from")
    exists: Literal[True] | None = None
    count: Literal[True] | None = None
    sum: str | None = None
    n_unique: str | None = None
    first: str | None = None
    where: dict[str, str] | None = None
    household: _HouseholdDecl | None = None
    formula: Any = None
    default: Any = None
    cast: Literal["int"] | None = None


class _FactsDecl(_Strict):
    household_members: Any
    selections: dict[str, _SelectionDecl]
    facts: dict[str, _FactDecl]


# ----------------------------------------------------------------------------------- loading
def load_catalogue(folder: Path) -> Catalogue:
    """The catalogue of the rule pack in `folder` (``tables.yaml`` and ``facts.yaml``)."""
    tables = load_tables(folder / "tables.yaml")
    path = folder / "facts.yaml"
    decl = read_declarations(path, _FactsDecl, "fact", "facts")
    try:
        return _build(tables, decl)
    except ValueError as exc:
        raise RuleError(f"{path}: {exc}") from exc


def _build(tables: dict[str, Table], decl: _FactsDecl) -> Catalogue:
    selections = {n: _selection(n, s, tables) for n, s in decl.selections.items()}
    persons = [s.name for s in selections.values() if s.table == "persons"]
    if len(persons) != 1:
        raise ValueError("selections: exactly one selection reads the persons table itself")
    person = persons[0]
    row_facts = tuple(s.row for s in selections.values() if s.row)
    names = set(decl.facts)
    rows = {s.row: s.name for s in selections.values() if s.row}
    clash = (names & set(rows)) | (names & set(DAYS + CONSTANTS))
    if clash:
        raise ValueError(f"facts: '{sorted(clash)[0]}' is also a row fact, day or constant")

    def parse(node: Any, where: str) -> Node:
        return _parse(node, where, names, rows, selections, tables)

    facts: dict[str, Fact] = {}
    derivations: dict[str, Derivation] = {}
    for name, f in decl.facts.items():
        where = f"fact '{name}'"
        d = _derivation(name, f, parse, selections, tables, person)
        sel = selections.get(d.selection or "")
        source = f.source or (sel.table if sel else "derived")
        row = f.row if f.row is not None else (sel.row if sel else None)
        if f.row is not None and f.row not in rows:
            raise ValueError(f"{where}: row '{f.row}' is no selection's row fact")
        if source != "derived" and source not in tables:
            raise ValueError(f"{where}: unknown source table '{source}'")
        for i in f.inputs:
            if i not in names:
                raise ValueError(f"{where}: unknown input '{i}'")
        facts[name] = Fact(f.kind, f.en, f.zh, source, row, tuple(f.inputs))
        derivations[name] = d
    members = parse(decl.household_members, "household_members")
    for s in selections.values():
        if s.of not in names:
            raise ValueError(f"selection '{s.name}': of: '{s.of}' is not a fact")
    order = _evaluation_order(derivations, selections, members)
    return Catalogue(tables, selections, facts, derivations, members, order, row_facts, person)


def _selection(name: str, s: _SelectionDecl, tables: dict[str, Table]) -> Selection:
    where = f"selection '{name}'"
    table = tables.get(s.table)
    if table is None:
        raise ValueError(f"{where}: unknown table '{s.table}'")
    if s.table != "persons" and table.index is None:  # pragma: no cover - tables.yaml checks
        raise ValueError(f"{where}: table '{s.table}' has no index column")
    cols = table.by_name
    for c in s.before:
        if c not in cols or cols[c].kind != "date":
            raise ValueError(f"{where}: before: '{c}' is not a date column of {s.table}")
    if s.open_on and table.period is None:
        raise ValueError(f"{where}: open_on: table '{s.table}' declares no period")
    if s.window and (s.window.column not in cols or cols[s.window.column].kind != "month"):
        raise ValueError(f"{where}: window: '{s.window.column}' is not a month column")
    order: list[tuple[str, bool, bool]] = []
    for key in s.order:
        rank = isinstance(key, _Rank)
        col = key.rank if isinstance(key, _Rank) else key.lstrip("-")
        desc = isinstance(key, str) and key.startswith("-")
        if col not in cols or not cols[col].required:
            raise ValueError(f"{where}: order: '{col}' is not a required column of {s.table}")
        order.append((col, desc, rank))
    if s.pick == "all" and order:
        raise ValueError(f"{where}: an order needs pick: first or last")
    window = (s.window.column, s.window.months) if s.window else None
    return Selection(
        name, s.table, s.of, tuple(s.before.items()), s.open_on, window, tuple(order), s.pick,
        s.row,
    )  # fmt: skip


def _derivation(
    name: str,
    f: _FactDecl,
    parse: Any,
    selections: dict[str, Selection],
    tables: dict[str, Table],
    person: str,
) -> Derivation:
    where = f"fact '{name}'"
    forms = [
        k
        for k in ("column", "from_", "household", "formula")
        if getattr(f, k) is not None and not (k == "column" and f.from_ is not None)
    ]
    aggregates = [a for a in AGGREGATES if getattr(f, a) is not None]
    if len(forms) != 1:
        raise ValueError(f"{where}: needs exactly one of column, from, household, formula")
    if aggregates and f.from_ is None:
        raise ValueError(f"{where}: {aggregates[0]} needs from: <selection>")
    cast = f.cast == "int"
    if f.household is not None:
        h = f.household
        formula = parse(h.any, where) if h.any is not None else None
        return Derivation(
            "household", formula=formula, household="count" if h.count else "any",
            default=0 if h.count else False,
        )  # fmt: skip
    if f.formula is not None:
        return Derivation("formula", formula=parse(f.formula, where), default=f.default)
    sel = selections[person] if f.from_ is None else selections.get(f.from_)
    if sel is None:
        raise ValueError(f"{where}: unknown selection '{f.from_}'")
    cols = tables[sel.table].by_name

    def column(c: str | None) -> str:
        if c not in cols:
            raise ValueError(f"{where}: '{c}' is not a column of {sel.table}")
        return c

    if f.from_ is None:
        return Derivation("column", sel.name, column(f.column), default=f.default, cast_int=cast)
    if len(aggregates) + (f.column is not None) != 1:
        raise ValueError(f"{where}: needs exactly one of column, {', '.join(AGGREGATES)}")
    if f.where is not None and f.first is None:
        raise ValueError(f"{where}: where: goes with first: <column>")
    if f.column is not None:
        if sel.pick == "all":
            raise ValueError(f"{where}: column: needs a selection that picks one row")
        return Derivation("pick", sel.name, column(f.column), default=f.default, cast_int=cast)
    how = aggregates[0]
    if how in ("exists", "count"):
        return Derivation(how, sel.name, default=False if how == "exists" else 0)  # type: ignore[arg-type]
    match = None
    if f.where is not None:
        if len(f.where) != 1:
            raise ValueError(f"{where}: where: names one column and its value")
        match = next(iter(f.where.items()))
        column(match[0])
    return Derivation(
        how,
        sel.name,
        column(getattr(f, how)),
        match,
        default=f.default,
        cast_int=cast,  # type: ignore[arg-type]
    )


def _parse(
    node: Any,
    where: str,
    names: set[str],
    rows: dict[str, str],
    selections: dict[str, Selection],
    tables: dict[str, Table],
) -> Node:
    def p(n: Any) -> Node:
        return _parse(n, where, names, rows, selections, tables)

    if isinstance(node, bool | int | float):
        return ("lit", node)
    if isinstance(node, str):
        if node in DAYS:
            return ("day", node)
        if node in CONSTANTS:
            return ("const", node)
        if node in rows:
            return ("row", rows[node])
        if node in names:
            return ("name", node)
        sel, _, col = node.partition(".")
        if sel in selections and col in tables[selections[sel].table].by_name:
            if selections[sel].pick == "all":
                raise ValueError(f"{where}: '{node}': selection '{sel}' picks no single row")
            return ("col", sel, col)
        raise ValueError(f"{where}: unknown name '{node}' in a formula")
    if not isinstance(node, dict) or not node:
        raise ValueError(f"{where}: a formula is a name or a one-key mapping, not {node!r}")
    if set(node) == {"cases", "else"} or set(node) == {"cases"}:
        cases = node["cases"]
        if not isinstance(cases, list) or not cases:
            raise ValueError(f"{where}: cases: a list of {{when, then}}")
        parsed = []
        for c in cases:
            if not isinstance(c, dict) or set(c) != {"when", "then"}:
                raise ValueError(f"{where}: each case has exactly when: and then:")
            parsed.append((p(c["when"]), p(c["then"])))
        otherwise = p(node["else"]) if "else" in node else ("lit", None)
        return ("cases", tuple(parsed), otherwise)
    if len(node) != 1:
        raise ValueError(f"{where}: a formula mapping has one operator, not {sorted(node)}")
    op, arg = next(iter(node.items()))
    if op == "lit":
        return ("lit", arg)
    if op in COMPARISONS or op == "completed_years":
        if not isinstance(arg, list) or len(arg) != 2:
            raise ValueError(f"{where}: {op}: takes two operands")
        if op == "completed_years" and arg[1] not in DAYS:
            raise ValueError(f"{where}: completed_years: the second operand is a day")
        return (op, p(arg[0]), p(arg[1]))
    if op in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise ValueError(f"{where}: {op}: takes a list of formulas")
        return (op, *[p(a) for a in arg])
    if op in ("not", "missing", "present", "strip", "birthday_in_year"):
        return (op, p(arg))
    raise ValueError(f"{where}: unknown operator '{op}'")


def references(node: Node) -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """(facts, selections, (selection, column) pairs) a formula reads."""
    facts: set[str] = set()
    sels: set[str] = set()
    cols: set[tuple[str, str]] = set()

    def walk(n: Any) -> None:
        if not isinstance(n, tuple) or not n:
            return
        head = n[0]
        if not isinstance(head, str):  # the (when, then) pairs of `cases`
            for part in n:
                walk(part)
        elif head == "name":
            facts.add(n[1])
        elif head in ("col", "row"):
            sels.add(n[1])
            if head == "col":
                cols.add((n[1], n[2]))
        elif head not in ("lit", "day", "const"):
            for part in n[1:]:
                walk(part)

    walk(node)
    return facts, sels, cols


def _evaluation_order(
    derivations: dict[str, Derivation], selections: dict[str, Selection], members: Node
) -> tuple[str, ...]:
    """The facts ordered so that each comes after what it reads (stable, declaration order)."""
    needs: dict[str, set[str]] = {}
    for name, d in derivations.items():
        deps: set[str] = set()
        sels: set[str] = set()
        if d.selection:
            sels.add(d.selection)
        if d.formula is not None:
            f, s, _ = references(d.formula)
            deps |= f
            sels |= s
        if d.how == "household":
            deps |= references(members)[0]
        deps |= {selections[s].of for s in sels}
        needs[name] = set() if d.how == "column" else deps  # the persons row is always there
    done: list[str] = []
    left = list(derivations)
    while left:
        ready = next((n for n in left if needs[n] <= set(done)), None)
        if ready is None:
            raise ValueError(f"facts: a cycle among {', '.join(left)}")
        done.append(ready)
        left.remove(ready)
    return tuple(done)


_DEFAULT: Catalogue | None = None


def default_catalogue() -> Catalogue:
    """The bundled pack's catalogue (loaded once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_catalogue(bundled("rules"))
    return _DEFAULT
