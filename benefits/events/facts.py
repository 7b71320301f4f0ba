"""Per-person facts for one household and one month, from the in-memory store.

The same facts as :func:`benefits.merge.build_facts` (handbook §0/§2: age for the month,
resident, alive, assistance status after precedence, the household's latest means test, the
counting certificate, parents' situations, …) with the same meaning, computed for the members
of one household at a time by dictionary lookups instead of a Polars plan over everyone.
Values are plain Python: dates as :class:`datetime.date`, money as integer fen, missing as
``None``. The differential test holds the two implementations to the same answers.

Example:
    >>> ctx = MonthContext.for_month(BenefitMonth.parse("2025-01"), "330106",
    ...                              ("tekun", "dibao", "dibian"))
    >>> ctx.day_before
    datetime.date(2024, 12, 31)
    >>> household_facts(store, "H1", ctx)[0]["age"]    # doctest: +SKIP
    80
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any

from benefits.events.store import Store
from benefits.events.validity import row_in_force
from benefits.period import BenefitMonth, completed_years

ORDER = "_order"  # the persons row number: file order, for one-per-group tie-breaks


@dataclass(frozen=True)
class MonthContext:
    """The dates and settings a month's facts depend on."""

    month: BenefitMonth
    district: str
    rank: dict[str, int]
    start: dt.date
    end: dt.date
    prev_start: dt.date
    day_before: dt.date
    window: frozenset[str]  # the 12 months before M, as YYYY-MM

    @classmethod
    def for_month(
        cls, month: BenefitMonth, district: str, precedence: tuple[str, ...]
    ) -> MonthContext:
        """Context for `month` (precedence: the pack's status order, strongest first)."""
        return cls(
            month,
            district,
            {t: i for i, t in enumerate(precedence)},
            month.start,
            month.end,
            month.previous.start,
            month.start - dt.timedelta(days=1),
            frozenset(month.shift(-k).label for k in range(1, 13)),
        )


def birthday_in_year(birth: dt.date, year: int) -> dt.date:
    """The birthday in `year`; 29 February falls on 1 March in common years."""
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return dt.date(year, 3, 1)
    return dt.date(year, birth.month, birth.day)


def _latest(rows: list[Any], date_field: str, before: dt.date) -> Any:
    """The row with the latest date before `before`; on a tie, the later row in the file."""
    best = None
    for r in rows:
        d = getattr(r, date_field)
        if d < before and (
            best is None
            or (d, r.row_no) > (getattr(best, date_field), best.row_no)
        ):
            best = r
    return best


def death_of(store: Store, id_no: str | None) -> Any:
    """The earliest death row of an ID (earliest date, then earliest row), or None."""
    best = None
    for r in store.person_rows("deaths", id_no):
        if best is None or (r.death_date, r.row_no) < (best.death_date, best.row_no):
            best = r
    return best


def _situation(store: Store, id_no: str | None, day: dt.date) -> str | None:
    """The situation of the earliest-started row in force on `day` (then the earliest row)."""
    best = None
    for r in store.person_rows("parent_situations", id_no):
        if not row_in_force("parent_situations", r, day):
            continue
        if best is None or (r.start_date, r.row_no) < (best.start_date, best.row_no):
            best = r
    return None if best is None else best.situation


def _resident_on(p: Any, day: dt.date, district: str) -> bool:
    return (
        p.birth_date < day
        and p.hukou_district == district
        and (
            p.hukou_status == "normal" or (p.moved_out_date is not None and p.moved_out_date >= day)
        )
    )


def _assistance(store: Store, id_no: str, ctx: MonthContext) -> dict[str, Any]:
    rows = [r for r in store.person_rows("assistance", id_no) if r.approved_date < ctx.start]
    out: dict[str, Any] = {f"{t}_review_date": None for t in ctx.rank}
    if not rows:
        out.update(status="none", assistance_row=None, assistance_types=0, assistance_households=0)
        return out
    first = min(rows, key=lambda r: ctx.rank[r.assistance_type])
    for t in ctx.rank:
        for r in rows:
            if r.assistance_type == t:
                out[f"{t}_review_date"] = r.next_review_date
                break
    out.update(
        status=first.assistance_type,
        assistance_row=first.row_no,
        assistance_types=len({r.assistance_type for r in rows}),
        assistance_households=len({r.household_no for r in rows}),
    )
    return out


def _certificate(store: Store, id_no: str, start: dt.date) -> Any:
    """The counting certificate: valid and in force on `start`, latest issue, most severe."""
    best = None
    best_key: tuple[Any, ...] = ()
    for r in store.person_rows("disability_certificates", id_no):
        if row_in_force("disability_certificates", r, start):
            key = (-r.issue_date.toordinal(), r.grade, r.cert_no)
            if best is None or key < best_key:
                best, best_key = r, key
    return best


def person_facts(store: Store, p: Any, ctx: MonthContext) -> dict[str, Any]:
    """The facts of one persons row for the month, without the household aggregates."""
    start = ctx.start
    death = death_of(store, p.id_no)
    death_date = None if death is None else death.death_date
    age = completed_years(p.birth_date, ctx.day_before)
    age_end = completed_years(p.birth_date, ctx.end)
    turning = age_end > age
    f: dict[str, Any] = {
        "id_no": p.id_no,
        "name": p.name,
        "sex": p.sex,
        "birth_date": p.birth_date,
        "household_no": p.household_no,
        "relation": p.relation,
        "hukou_district": p.hukou_district,
        "hukou_community": p.hukou_community,
        "hukou_status": p.hukou_status,
        "moved_out_date": p.moved_out_date,
        "age": age,
        "age_turning": age_end if turning else None,
        "birthday_in_month": birthday_in_year(p.birth_date, ctx.month.year) if turning else None,
        "resident": _resident_on(p, start, ctx.district),
        "alive": death_date is None or death_date >= start,
        "resident_prev_month": _resident_on(p, ctx.prev_start, ctx.district),
        "alive_prev_month": death_date is None or death_date >= ctx.prev_start,
        "death_date": death_date,
        "death_row": None if death is None else death.row_no,
        "persons_row": p.row_no,
        ORDER: p.row_no,
    }
    f.update(_assistance(store, p.id_no, ctx))

    cert = _certificate(store, p.id_no, start)
    f.update(
        has_cert=cert is not None,
        cert_no=None if cert is None else cert.cert_no,
        cert_grade=None if cert is None else cert.grade,
        cert_category=None if cert is None else cert.category,
        cert_expiry_date=None if cert is None else cert.expiry_date,
        cert_row=None if cert is None else cert.row_no,
    )
    care = _latest(store.person_rows("care_assessments", p.id_no), "assessed_on", start)
    f.update(
        has_care_assessment=care is not None,
        care_level="none" if care is None else care.care_level,
        care_assessed_on=None if care is None else care.assessed_on,
        institution_resident=False if care is None else care.institution_resident,
        care_row=None if care is None else care.row_no,
    )
    for parent in ("father", "mother"):
        ref = getattr(p, f"{parent}_id_no")
        pdeath = death_of(store, ref)
        pdate = None if pdeath is None else pdeath.death_date
        situation = _situation(store, ref, start)
        f[f"{parent}_id_no"] = ref
        f[f"{parent}_known"] = ref is not None
        f[f"{parent}_death_date"] = pdate
        f[f"{parent}_situation"] = situation
        f[f"{parent}_dead"] = pdate is not None and pdate < start
        f[f"{parent}_in_situation"] = situation is not None
    f["has_open_health_condition"] = any(
        row_in_force("health_conditions", r, start)
        for r in store.person_rows("health_conditions", p.id_no)
    )
    f["oop_12m"] = sum(
        r.out_of_pocket
        for r in store.person_rows("medical_expenses", p.id_no)
        if r.month in ctx.window
    )
    pensions = store.person_rows("pensions", p.id_no)
    pension = pensions[0] if pensions else None
    f.update(
        has_pension=pension is not None,
        pension_type="none" if pension is None else pension.pension_type,
        pension_status="none" if pension is None else pension.status,
        retire_date=None if pension is None else pension.retire_date,
        monthly_pension=None if pension is None else pension.monthly_pension,
        contribution_years=None if pension is None else pension.contribution_years,
        pension_row=None if pension is None else pension.row_no,
    )
    accounts = store.person_rows("bank_accounts", p.id_no)
    bank = max(accounts, key=lambda r: r.row_no) if accounts else None
    if bank is None:
        issue: str | None = "no_account"
    elif bank.status == "closed":
        issue = "account_closed"
    elif not bank.financial_active:
        issue = "not_financial_active"
    elif bank.account_name.strip() != p.name.strip():
        issue = "name_mismatch"
    else:
        issue = None
    f.update(
        account_no=None if bank is None else bank.account_no,
        account_issue=issue,
        bank_row=None if bank is None else bank.row_no,
    )
    return f


def household_facts(store: Store, household_no: str, ctx: MonthContext) -> list[dict[str, Any]]:
    """Facts of every persons row of a household (in file order), aggregates included."""
    ids = store.members.get(household_no, ())
    people = [person_facts(store, store.persons[i], ctx) for i in ids]
    members = [f for f in people if f["resident"] and f["alive"]]
    aggregates = {
        "hh_members": len(members),
        "hh_has_dibao": any(f["status"] == "dibao" for f in members),
        "hh_has_dibian": any(f["status"] == "dibian" for f in members),
        "hh_has_tekun": any(f["status"] == "tekun" for f in members),
    }
    finance = _latest(store.finance.get(household_no, []), "assessed_on", ctx.start)
    aggregates.update(
        hh_has_finance=finance is not None,
        hh_pci=None if finance is None else finance.per_capita_income,
        hh_assets=None if finance is None else finance.per_capita_assets,
        hh_assessed_on=None if finance is None else finance.assessed_on,
        hh_finance_row=None if finance is None else finance.row_no,
    )
    for f in people:
        f.update(aggregates)
    return people
