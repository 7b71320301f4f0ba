"""Change events: typed, versioned records of what a department reports (schema version 1).

Every event names its ``event_id`` (unique: applying the same id twice is a no-op), its
``type``, the ``department`` that reported it, its ``effective_date`` (the day the change
happened in the world) and the record it changes (:attr:`ChangeEvent.record`). One JSON
object per event, e.g. one line of a JSONL file::

    {"event_id": "gab-2025-000117", "type": "death_registered", "department": "police",
     "effective_date": "2024-12-10", "id_no": "330106194501011233"}

Invalid events are refused by :func:`parse_event` with an :class:`EventError` whose message
names the event and every field at fault; the service keeps them in a dead-letter file.

Example:
    >>> e = parse_event('{"event_id": "e1", "type": "death_registered", "department": '
    ...                 '"police", "effective_date": "2024-12-10", "id_no": "11010519491231002X"}')
    >>> e.type, e.record
    ('death_registered', ('deaths', {'id_no': '11010519491231002X'}))
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from benefits import idcard
from benefits.accountno import check_account_no
from benefits.ingest import MINUS_ZERO
from benefits.schema import (
    ASSISTANCE_TYPES,
    CARE_LEVELS,
    DISABILITY_CATEGORIES,
    RELATIONS,
    SITUATIONS,
)

SCHEMA_VERSION = 1

DEPARTMENTS: dict[str, str] = {
    "police": "公安 police / hukou registry",
    "health": "卫健 health commission",
    "funeral": "殡葬 funeral services",
    "civil_affairs": "民政 civil affairs",
    "disabled_federation": "残联 disabled persons' federation",
    "justice": "司法 justice bureau",
    "court": "法院 court",
    "bank": "社保卡 / partner bank",
}
Department = Literal[
    "police",
    "health",
    "funeral",
    "civil_affairs",
    "disabled_federation",
    "justice",
    "court",
    "bank",
]


class EventError(ValueError):
    """An event that cannot be applied; the message says which event and why."""


# ------------------------------------------------------------------------------ field types

_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_MONEY = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")


def _iso_date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise ValueError(f"{value!r} is not a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a real date") from exc


def _resident_id(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("a resident ID is a string of 18 characters")
    text = value.strip().upper()
    problem = idcard.problem(text)
    if problem is not None:
        raise ValueError(f"'{value}': {idcard.ID_REASONS[problem]}")
    return text


def _ref_id(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a parent's ID is a string")
    return value.strip().upper() or None


def _money(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("an amount in yuan, not a boolean")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int | Decimal):
        value = str(value)
    if isinstance(value, str):
        value = re.sub(MINUS_ZERO, r"\1", value.strip())  # -0, -0.00 are zero (data contract)
    if not isinstance(value, str) or not _MONEY.match(value.strip()):
        raise ValueError(f"{value!r} is not an amount in yuan >= 0 with at most 2 decimals")
    try:
        return Decimal(value.strip())
    except InvalidOperation as exc:  # pragma: no cover - the pattern rules it out
        raise ValueError(f"{value!r} is not an amount") from exc


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"{value!r} is not a boolean (true/false)")


def _code(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty code")
    if re.search("[０-９]", value):
        raise ValueError(f"'{value}' has full-width digits")
    return value.strip()


def _community(value: Any) -> Any:
    value = _code(value)
    if not re.fullmatch(r"[0-9]{9}", value):
        raise ValueError(f"'{value}' is not a 9-digit community code")
    return value


def _account_no(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be an account number")
    return check_account_no(value)


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
ResidentId = Annotated[str, BeforeValidator(_resident_id)]
RefId = Annotated[str | None, BeforeValidator(_ref_id)]
Money = Annotated[Decimal, BeforeValidator(_money)]
Boolean = Annotated[bool, BeforeValidator(_boolean)]
Code = Annotated[str, BeforeValidator(_code)]
AccountNo = Annotated[str, BeforeValidator(_account_no)]
Community = Annotated[str, BeforeValidator(_community)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


def _enum(values: tuple[str, ...]) -> Any:
    return Literal[values]  # type: ignore[valid-type]


# ---------------------------------------------------------------------------------- events


class EventBase(BaseModel):
    """Fields every event has. Subclasses add the record they change."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    event_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^\S+$")]
    schema_version: Literal[1] = SCHEMA_VERSION
    department: Department
    effective_date: IsoDate

    departments: ClassVar[tuple[str, ...]] = ()
    table: ClassVar[str] = ""
    description: ClassVar[str] = ""

    @model_validator(mode="after")
    def _department_reports_it(self) -> EventBase:
        if self.departments and self.department not in self.departments:
            raise ValueError(
                f"department '{self.department}' does not report {self.type} events "  # type: ignore[attr-defined]
                f"(expected {' or '.join(self.departments)})"
            )
        return self

    @property
    def record(self) -> tuple[str, dict[str, str]]:
        """(table, key) of the record the event changes."""
        return self.table, {"id_no": self.id_no}  # type: ignore[attr-defined]

    @property
    def person(self) -> str | None:
        """The resident ID the event is about (None for a household's means test)."""
        return getattr(self, "id_no", None)

    def canonical(self) -> str:
        """Canonical JSON of the event (sorted keys): equal events have equal text."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )

    def label(self) -> str:
        """Short description for messages, e.g. ``e17 death_registered (police, 2024-12-10)``."""
        return (
            f"{self.event_id} {self.type} ({self.department}, "  # type: ignore[attr-defined]
            f"{self.effective_date.isoformat()})"
        )


class DeathRegistered(EventBase):
    """A death reported by the police, a hospital or a funeral home → a ``deaths`` row."""

    type: Literal["death_registered"]
    id_no: ResidentId
    departments: ClassVar[tuple[str, ...]] = ("police", "health", "funeral")
    table: ClassVar[str] = "deaths"
    description: ClassVar[str] = "death date = effective_date; source = department"


class BirthRegistered(EventBase):
    """A birth registered in the hukou registry → a new ``persons`` row."""

    type: Literal["birth_registered"]
    id_no: ResidentId
    name: Text
    sex: Literal["M", "F"]
    household_no: Code
    relation: _enum(RELATIONS) = "child"  # type: ignore[valid-type]
    hukou_community: Community
    hukou_district: Annotated[str | None, Field(pattern=r"^[0-9]{6}$")] = None
    father_id_no: RefId = None
    mother_id_no: RefId = None
    departments: ClassVar[tuple[str, ...]] = ("police",)
    table: ClassVar[str] = "persons"
    description: ClassVar[str] = "birth date = effective_date; hukou in the district by default"

    @model_validator(mode="after")
    def _id_agrees(self) -> BirthRegistered:
        born = dt.date(int(self.id_no[6:10]), int(self.id_no[10:12]), int(self.id_no[12:14]))
        if born != self.effective_date:
            raise ValueError(
                f"effective_date {self.effective_date} (the birth date) disagrees with the "
                f"ID's birth date {born}"
            )
        sex = "M" if int(self.id_no[16]) % 2 else "F"
        if sex != self.sex:
            raise ValueError(f"sex {self.sex} disagrees with the ID, whose sequence says {sex}")
        return self


class HukouMovedOut(EventBase):
    """A hukou moved out of the district → ``persons`` status ``moved_out`` with the date."""

    type: Literal["hukou_moved_out"]
    id_no: ResidentId
    departments: ClassVar[tuple[str, ...]] = ("police",)
    table: ClassVar[str] = "persons"
    description: ClassVar[str] = "moved_out_date = effective_date"


class HukouMovedIn(EventBase):
    """A hukou moved back into the district → ``persons`` status ``normal``, no moved-out date.

    Only a person the registry lists as moved out can move back in (a newcomer's row comes
    with the registry's next delivery). A move back within the window declared in
    rules/events.yaml after a move out withdraws it (the result says so).
    """

    type: Literal["hukou_moved_in"]
    id_no: ResidentId
    departments: ClassVar[tuple[str, ...]] = ("police",)
    table: ClassVar[str] = "persons"
    description: ClassVar[str] = "hukou_status = normal; moved_out_date emptied"


class CertificateIssued(EventBase):
    """A disability certificate issued → a new ``disability_certificates`` row (valid)."""

    type: Literal["certificate_issued"]
    id_no: ResidentId
    cert_no: Code
    category: _enum(DISABILITY_CATEGORIES)  # type: ignore[valid-type]
    grade: Annotated[int, Field(ge=1, le=4, strict=True)]
    expiry_date: IsoDate
    departments: ClassVar[tuple[str, ...]] = ("disabled_federation",)
    table: ClassVar[str] = "disability_certificates"
    description: ClassVar[str] = "issue_date = effective_date"

    @property
    def record(self) -> tuple[str, dict[str, str]]:
        return self.table, {"cert_no": self.cert_no}

    @model_validator(mode="after")
    def _dates(self) -> CertificateIssued:
        if self.expiry_date < self.effective_date:
            raise ValueError(f"expiry_date {self.expiry_date} is before the issue date")
        return self


class CertificateCancelled(EventBase):
    """A disability certificate cancelled → its row's status becomes ``cancelled``."""

    type: Literal["certificate_cancelled"]
    id_no: ResidentId
    cert_no: Code
    departments: ClassVar[tuple[str, ...]] = ("disabled_federation",)
    table: ClassVar[str] = "disability_certificates"
    description: ClassVar[str] = "the certificate stops counting from every month on"

    @property
    def record(self) -> tuple[str, dict[str, str]]:
        return self.table, {"cert_no": self.cert_no}


class AssistanceApproved(EventBase):
    """A 低保/低边/特困 status granted or renewed → the ``assistance`` row (upserted)."""

    type: Literal["assistance_approved"]
    id_no: ResidentId
    household_no: Code
    assistance_type: _enum(ASSISTANCE_TYPES)  # type: ignore[valid-type]
    next_review_date: IsoDate | None = None
    departments: ClassVar[tuple[str, ...]] = ("civil_affairs",)
    table: ClassVar[str] = "assistance"
    description: ClassVar[str] = "approved_date = effective_date; replaces a row of the same type"

    @property
    def record(self) -> tuple[str, dict[str, str]]:
        return self.table, {"id_no": self.id_no, "assistance_type": self.assistance_type}


class AssistanceEnded(EventBase):
    """A status ended → its ``assistance`` row leaves the extract (handbook §2)."""

    type: Literal["assistance_ended"]
    id_no: ResidentId
    assistance_type: _enum(ASSISTANCE_TYPES)  # type: ignore[valid-type]
    departments: ClassVar[tuple[str, ...]] = ("civil_affairs",)
    table: ClassVar[str] = "assistance"
    description: ClassVar[str] = "the row is removed"

    @property
    def record(self) -> tuple[str, dict[str, str]]:
        return self.table, {"id_no": self.id_no, "assistance_type": self.assistance_type}


class FinanceAssessed(EventBase):
    """A household means test → a new ``household_finance`` row."""

    type: Literal["finance_assessed"]
    household_no: Code
    per_capita_income: Money
    per_capita_assets: Money
    departments: ClassVar[tuple[str, ...]] = ("civil_affairs",)
    table: ClassVar[str] = "household_finance"
    description: ClassVar[str] = "assessed_on = effective_date"

    @property
    def record(self) -> tuple[str, dict[str, str]]:
        return self.table, {"household_no": self.household_no}


class CareAssessed(EventBase):
    """An ability (care) assessment → a new ``care_assessments`` row."""

    type: Literal["care_assessed"]
    id_no: ResidentId
    care_level: _enum(CARE_LEVELS)  # type: ignore[valid-type]
    institution_resident: Boolean
    departments: ClassVar[tuple[str, ...]] = ("civil_affairs", "health")
    table: ClassVar[str] = "care_assessments"
    description: ClassVar[str] = "assessed_on = effective_date"


class ParentSituationStarted(EventBase):
    """A parent imprisoned, in rehab, missing … → a new open ``parent_situations`` row."""

    type: Literal["parent_situation_started"]
    id_no: ResidentId
    situation: _enum(SITUATIONS)  # type: ignore[valid-type]
    departments: ClassVar[tuple[str, ...]] = ("justice", "police", "court", "health")
    table: ClassVar[str] = "parent_situations"
    description: ClassVar[str] = "start_date = effective_date, no end date"


class ParentSituationEnded(EventBase):
    """A parent's situation ended → its row(s) in force on that day end on that day.

    In force on D: start ≤ D and (no end date or end ≥ D); a planned end later than D (a
    scheduled release) is brought forward to D.
    """

    type: Literal["parent_situation_ended"]
    id_no: ResidentId
    situation: _enum(SITUATIONS)  # type: ignore[valid-type]
    departments: ClassVar[tuple[str, ...]] = ("justice", "police", "court", "health")
    table: ClassVar[str] = "parent_situations"
    description: ClassVar[str] = (
        "end_date = effective_date on the rows of the situation in force on that day "
        "whose end date is empty or later"
    )


class BankAccountChanged(EventBase):
    """A new or changed 社保卡 / bank account → a new ``bank_accounts`` row (the last counts)."""

    type: Literal["bank_account_changed"]
    id_no: ResidentId
    account_no: AccountNo
    account_name: Text
    financial_active: Boolean = True
    status: Literal["open", "closed"] = "open"
    departments: ClassVar[tuple[str, ...]] = ("bank",)
    table: ClassVar[str] = "bank_accounts"
    description: ClassVar[str] = "appended; the last row of a person counts"


EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (
        DeathRegistered,
        BirthRegistered,
        HukouMovedOut,
        HukouMovedIn,
        CertificateIssued,
        CertificateCancelled,
        AssistanceApproved,
        AssistanceEnded,
        FinanceAssessed,
        CareAssessed,
        ParentSituationStarted,
        ParentSituationEnded,
        BankAccountChanged,
    )
}

ChangeEvent = (
    DeathRegistered
    | BirthRegistered
    | HukouMovedOut
    | HukouMovedIn
    | CertificateIssued
    | CertificateCancelled
    | AssistanceApproved
    | AssistanceEnded
    | FinanceAssessed
    | CareAssessed
    | ParentSituationStarted
    | ParentSituationEnded
    | BankAccountChanged
)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(
    Annotated[ChangeEvent, Field(discriminator="type")]  # type: ignore[valid-type]
)


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        eid, etype = data.get("event_id"), data.get("type")
        parts = [str(x) for x in (eid, etype) if x]
        if parts:
            return "event " + " ".join(parts)
    return "event"


def parse_event(raw: str | bytes | dict[str, Any] | EventBase) -> EventBase:
    """Validate one event (a JSON text or a dict); raise :class:`EventError` if invalid.

    Example:
        >>> try:
        ...     parse_event({"event_id": "x", "type": "moved_away"})
        ... except EventError as exc:
        ...     print(str(exc)[:51])
        event x moved_away: unknown event type 'moved_away'
    """
    if isinstance(raw, EventBase):
        return raw
    data: Any = raw
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise EventError(f"event: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise EventError("event: expected a JSON object")
    who = _describe(data)
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise EventError(
            f"{who}: schema_version {version!r} is not supported (this engine reads version "
            f"{SCHEMA_VERSION})"
        )
    etype = data.get("type")
    if etype not in EVENT_TYPES:
        known = ", ".join(EVENT_TYPES)
        what = f"unknown event type {etype!r}" if etype else "field type is missing"
        raise EventError(f"{who}: {what} (known: {known})")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"][1:]) or "(event)"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{loc}: {msg}")
        raise EventError(f"{who}: " + "; ".join(problems)) from exc
