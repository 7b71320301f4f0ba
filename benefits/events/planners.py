"""The row changes each type of event makes, checked against the store's rows.

One planner per event type (:data:`PLANNERS`): each checks that the event fits the data
(the person exists, the period is open, ...) and writes the rows it appends, updates or ends
as :class:`benefits.events.store.RowChange`, in the contract's text form;
:func:`plan` looks the planner up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

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
from benefits.events.store import RowChange, Store, text_value
from benefits.validity import ends_after, row_in_force


def plan(store: Store, event: EventBase, district: str) -> list[RowChange]:
    """The row changes an event makes; :class:`EventError` when it does not fit the data.

    Example:
        >>> plan(store, death_event, district="330106")         # doctest: +SKIP
        [RowChange(op='append', table='deaths', values={...}, rows=(8271,))]
    """
    planner = PLANNERS.get(type(event))
    if planner is None:  # pragma: no cover - every schema type has a planner
        raise EventError(f"{event.label()}: no planner for this event type")
    return planner(store, event, district)


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


PLANNERS: dict[type, Callable[[Store, Any, str], list[RowChange]]] = {
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
