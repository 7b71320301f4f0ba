"""The departmental extracts, declared once (data contract, "Input tables").

Every check in :mod:`benefits.ingest` and every typed column of the merged facts is derived
from these declarations; nothing else in the code lists a table's columns.

Example:
    >>> TABLES["persons"].required[:3]
    ('id_no', 'name', 'sex')
    >>> TABLES["assistance"].key
    ('id_no', 'assistance_type')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

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
class Table:
    """One departmental extract: its columns, key and department."""

    name: str
    department: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    last_row_wins: bool = False  # bank_accounts: the last accepted row per person counts
    doc: str = ""
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


def _c(name: str, kind: Kind, required: bool = False, values: tuple[str, ...] = ()) -> Column:
    return Column(name, kind, required, values)


RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "other")
HUKOU_STATUSES = ("normal", "moved_out", "cancelled")
DEATH_SOURCES = ("police", "health", "funeral")
ASSISTANCE_TYPES = ("dibao", "dibian", "tekun")
DISABILITY_CATEGORIES = (
    "visual",
    "hearing",
    "speech",
    "physical",
    "intellectual",
    "mental",
    "multiple",
)
CERT_STATUSES = ("valid", "cancelled")
PENSION_TYPES = ("enterprise_employee", "urban_rural_resident", "civil_service")
PENSION_STATUSES = ("contributing", "active", "suspended", "terminated")
CARE_LEVELS = ("self_care", "partial", "full")
SITUATIONS = (
    "imprisoned",
    "compulsory_rehab",
    "missing",
    "severely_disabled",
    "severely_ill",
    "guardianship_revoked",
)
CONDITIONS = ("serious_illness", "rare_disease")
ACCOUNT_STATUSES = ("open", "closed")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "persons",
            "公安 hukou registry",
            (
                _c("id_no", "id", True),
                _c("name", "text", True),
                _c("sex", "enum", True, ("M", "F")),
                _c("birth_date", "date", True),
                _c("household_no", "code", True),
                _c("relation", "enum", True, RELATIONS),
                _c("hukou_district", "district", True),
                _c("hukou_community", "community", True),
                _c("hukou_status", "enum", True, HUKOU_STATUSES),
                _c("moved_out_date", "date"),
                _c("father_id_no", "ref_id"),
                _c("mother_id_no", "ref_id"),
            ),
            key=("id_no",),
        ),
        Table(
            "deaths",
            "公安 / 卫健 / 殡葬",
            (
                _c("id_no", "id", True),
                _c("death_date", "date", True),
                _c("source", "enum", True, DEATH_SOURCES),
            ),
        ),
        Table(
            "assistance",
            "民政 social assistance",
            (
                _c("id_no", "id", True),
                _c("household_no", "code", True),
                _c("assistance_type", "enum", True, ASSISTANCE_TYPES),
                _c("approved_date", "date", True),
                _c("next_review_date", "date"),
            ),
            key=("id_no", "assistance_type"),
        ),
        Table(
            "household_finance",
            "民政 核对中心 means test",
            (
                _c("household_no", "code", True),
                _c("per_capita_income", "money", True),
                _c("per_capita_assets", "money", True),
                _c("assessed_on", "date", True),
            ),
        ),
        Table(
            "disability_certificates",
            "残联 disabled persons' federation",
            (
                _c("id_no", "id", True),
                _c("cert_no", "code", True),
                _c("category", "enum", True, DISABILITY_CATEGORIES),
                _c("grade", "grade", True),
                _c("issue_date", "date", True),
                _c("expiry_date", "date", True),
                _c("status", "enum", True, CERT_STATUSES),
            ),
            key=("cert_no",),
        ),
        Table(
            "pensions",
            "人社 social insurance",
            (
                _c("id_no", "id", True),
                _c("pension_type", "enum", True, PENSION_TYPES),
                _c("status", "enum", True, PENSION_STATUSES),
                _c("retire_date", "date"),
                _c("monthly_pension", "money"),
                _c("contribution_years", "number", True),
            ),
            key=("id_no",),
        ),
        Table(
            "care_assessments",
            "民政 / 卫健 ability assessment",
            (
                _c("id_no", "id", True),
                _c("care_level", "enum", True, CARE_LEVELS),
                _c("assessed_on", "date", True),
                _c("institution_resident", "bool", True),
            ),
        ),
        Table(
            "parent_situations",
            "司法 / 公安 / 法院 / 卫健",
            (
                _c("id_no", "id", True),
                _c("situation", "enum", True, SITUATIONS),
                _c("start_date", "date", True),
                _c("end_date", "date"),
            ),
        ),
        Table(
            "health_conditions",
            "卫健 / 医保",
            (
                _c("id_no", "id", True),
                _c("condition", "enum", True, CONDITIONS),
                _c("diagnosed_on", "date", True),
                _c("end_date", "date"),
            ),
        ),
        Table(
            "medical_expenses",
            "医保 medical insurance",
            (
                _c("id_no", "id", True),
                _c("month", "month", True),
                _c("out_of_pocket", "money", True),
            ),
            key=("id_no", "month"),
        ),
        Table(
            "bank_accounts",
            "社保卡 / partner bank",
            (
                _c("id_no", "id", True),
                _c("account_no", "account", True),
                _c("account_name", "text", True),
                _c("financial_active", "bool", True),
                _c("status", "enum", True, ACCOUNT_STATUSES),
            ),
            last_row_wins=True,
        ),
    )
}

TABLE_ORDER: tuple[str, ...] = tuple(TABLES)
