"""The departmental extracts, declared once (data contract, "Input tables").

The tables are data: ``rules/tables.yaml`` in the rule pack lists each table's columns and
their kinds, its key, the column it hangs off (a person's ID or a household number) and the
validity period of its rows. This module holds the vocabulary they are written in — the
column kinds and their Polars types — and loads the declarations (validated by pydantic).
Every check in :mod:`benefits.ingest`, every index of the event store and every typed column
of the merged facts is derived from them; nothing else in the code lists a table's columns.

Example:
    >>> TABLES["persons"].required[:3]
    ('id_no', 'name', 'sex')
    >>> TABLES["assistance"].key
    ('id_no', 'assistance_type')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from benefits.errors import RuleError
from benefits.resources import bundled

Kind = Literal[
    "id",  # 18-character resident ID, GB 11643-1999, validated and normalised (x -> X)
    "ref_id",  # an ID used as a reference (parents): trimmed and upper-cased, not validated
    "text",  # free text (names)
    "code",  # an identifier such as a household or certificate number
    "district",  # 6 ASCII digits
    "community",  # 9 ASCII digits: the district code and a 3-digit community (社区) number
    "account",  # a bank account number, 8-32 ASCII digits (benefits.accountno)
    "date",  # YYYY-MM-DD
    "month",  # YYYY-MM
    "money",  # yuan >= 0 with at most 2 decimals, kept as integer fen
    "enum",  # one of `values`, exactly
    "bool",  # true/false/1/0, any case
    "grade",  # integer 1..4
    "number",  # decimal number >= 0
]

POLARS_DTYPE: dict[str, pl.DataType] = {
    "id": pl.String(),
    "ref_id": pl.String(),
    "text": pl.String(),
    "code": pl.String(),
    "district": pl.String(),
    "community": pl.String(),
    "account": pl.String(),
    "date": pl.Date(),
    "month": pl.String(),
    "money": pl.Int64(),  # fen
    "enum": pl.String(),
    "bool": pl.Boolean(),
    "grade": pl.Int8(),
    "number": pl.Float64(),
}


@dataclass(frozen=True)
class Column:
    """One column of an extract."""

    name: str
    kind: Kind
    required: bool = False
    values: tuple[str, ...] = ()

    @property
    def dtype(self) -> pl.DataType:
        return POLARS_DTYPE[self.kind]


@dataclass(frozen=True)
class Period:
    """A row's validity period: in force on D when start ≤ D and (end empty or end ≥ D), and,
    with `status`, only while column ``status[0]`` holds ``status[1]``."""

    start: str
    end: str
    status: tuple[str, str] | None = None


@dataclass(frozen=True)
class Table:
    """One departmental extract: its columns, key and department."""

    name: str
    department: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    last_row_wins: bool = False  # bank_accounts: the last accepted row per person counts
    doc: str = ""
    index: str | None = None  # the person's ID or household number column; None: persons
    period: Period | None = None
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        """The typed schema of the accepted rows (plus the 1-based source row `_row`)."""
        schema: dict[str, pl.DataType] = {"_row": pl.Int64()}
        schema.update({c.name: c.dtype for c in self.columns})
        return schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnDecl(_Strict):
    name: str
    kind: Kind
    required: bool = False
    values: tuple[str, ...] = ()


class PeriodDecl(_Strict):
    start: str
    end: str
    status: dict[str, str] | None = None


class TableDecl(_Strict):
    department: str
    columns: list[ColumnDecl]
    key: tuple[str, ...] = ()
    index: str | None = None
    period: PeriodDecl | None = None
    last_row_wins: bool = False
    doc: str = ""

    @model_validator(mode="after")
    def _known_columns(self) -> TableDecl:
        names = [c.name for c in self.columns]
        kinds = {c.name: c.kind for c in self.columns}
        if len(set(names)) != len(names):
            raise ValueError("a column is declared twice")
        used = [*self.key, *([self.index] if self.index else [])]
        if self.period:
            used += [self.period.start, self.period.end, *(self.period.status or {})]
            if kinds.get(self.period.start) != "date" or kinds.get(self.period.end) != "date":
                raise ValueError("a period's start and end must be date columns")
            if self.period.status is not None and len(self.period.status) != 1:
                raise ValueError("a period's status names one column and its value")
        for name in used:
            if name not in kinds:
                raise ValueError(f"unknown column '{name}'")
        if any(c.kind == "enum" and not c.values for c in self.columns):
            raise ValueError("an enum column needs its values")
        return self


class TablesDecl(_Strict):
    tables: dict[str, TableDecl]

    @model_validator(mode="after")
    def _persons_first(self) -> TablesDecl:
        if next(iter(self.tables), None) != "persons":
            raise ValueError("the first table must be persons (the hukou registry)")
        for name, t in self.tables.items():
            if name != "persons" and t.index is None:
                raise ValueError(f"table '{name}': needs `index` (the column it hangs off)")
        return self


def _table(name: str, d: TableDecl) -> Table:
    period = None
    if d.period is not None:
        status = next(iter(d.period.status.items())) if d.period.status else None
        period = Period(d.period.start, d.period.end, status)
    columns = tuple(Column(c.name, c.kind, c.required, c.values) for c in d.columns)
    return Table(name, d.department, columns, d.key, d.last_row_wins, d.doc, d.index, period)


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, path: Path, what: str) -> M:
    """`data` validated by `model`; an error names the file, what it declares and each fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise RuleError(f"{path}: {what}: {problems}") from exc


# libyaml's parser when PyYAML has it: the same documents as yaml.safe_load, ten times faster
# (the rule pack is read at every start of a sweep)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """A YAML document, read as ``yaml.safe_load`` reads it (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader: no Python objects


def read_declarations(path: Path, model: type[M], what: str, section: str) -> M:
    """A declaration file of the rule pack, validated by `model` (errors name the file)."""
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"{path}: cannot read the {what} declarations: {exc}") from exc
    return validated(model, data, path, section)


def load_tables(path: Path) -> dict[str, Table]:
    """The table declarations of a rule pack's ``tables.yaml`` (errors name the file)."""
    decl = read_declarations(path, TablesDecl, "table", "tables")
    return {name: _table(name, d) for name, d in decl.tables.items()}


# the bundled pack's tables: the data contract of this release
TABLES: dict[str, Table] = load_tables(bundled("rules") / "tables.yaml")
TABLE_ORDER: tuple[str, ...] = tuple(TABLES)


def _values(table: str, column: str) -> tuple[str, ...]:
    return TABLES[table].by_name[column].values


RELATIONS = _values("persons", "relation")
ASSISTANCE_TYPES = _values("assistance", "assistance_type")
DISABILITY_CATEGORIES = _values("disability_certificates", "category")
CARE_LEVELS = _values("care_assessments", "care_level")
SITUATIONS = _values("parent_situations", "situation")
