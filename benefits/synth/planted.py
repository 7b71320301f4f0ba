"""Hand-written households that put every policy, exclusion and alert of the handbook on the
table at least once, whatever the size of the district (the handbook's worked examples E1–E7
among them, with their dates moved to the benefit month).

Each scenario is a few lines over :class:`~benefits.synth.builder.Builder`; everything is
dated relative to ``M``, so a sweep for ``M`` and one for ``M+1`` both meet every edge.

Example:
    >>> from benefits.synth.dates import Month
    >>> from benefits.synth.rand import Rng
    >>> b = Builder(Month.parse("2025-01"), Rng(1))
    >>> plant_all(b)
    >>> b.persons_count() > 100
    True
"""

from __future__ import annotations

import calendar
import datetime as dt

from benefits.synth.builder import Builder, D
from benefits.synth.dates import years_before


def _leap_year_near(year: int) -> int:
    while not calendar.isleap(year):
        year -= 1
    return year


def plant_all(b: Builder) -> None:
    """Every scenario below, in a fixed order."""
    for scenario in SCENARIOS:
        scenario(b)


def ages_and_birthdays(b: Builder) -> None:
    """Policy 7 and `age_milestone`: 60th/80th/90th/100th birthdays on ``M.start``, within ``M``
    and within ``M+1``; 90+ and 100+ allowances; people born on 29 February."""
    m = b.m
    b.alone("M", b.birthday(80, m.start))  # E1: milestone in M, allowance from M+1
    b.alone("F", b.birthday(80, m.day(15)))
    b.alone("F", b.birthday(90, m.day(9)))
    b.alone("M", b.birthday(100, m.day(20)))
    b.alone("F", b.birthday(100, m.start - D(days=1)))  # 100 for M: the 800-yuan rate
    b.alone("M", b.birthday(60, m.day(3)))
    b.alone("F", b.birthday(80, m.next.day(5)))  # milestone in the sweep for M+1
    b.alone("M", b.born(95))
    b.alone("F", b.born(101))
    b.alone("M", b.born(79))
    for age in (60, 80, 90, 100):
        year = _leap_year_near(m.start.year - age)
        b.alone("F" if age % 20 else "M", dt.date(year, 2, 29))
    h = b.household()
    father = b.person(h, "head", "M", b.born(47))
    mother = b.person(h, "spouse", "F", b.born(45))
    b.person(
        h,
        "child",
        "F",
        dt.date(_leap_year_near(m.start.year - 18), 2, 29),
        father=father,
        mother=mother,
    )


def worked_examples(b: Builder) -> None:
    """The handbook's E2–E7, dated relative to ``M``."""
    m = b.m
    # E2: own status dibao, household income 800
    h = b.household()
    p = b.person(h, "head", "M", b.born(52))
    b.assist(p, "dibao")
    b.finance(h, 800)
    # E3 / E3': tekun 74 with a grade-1 certificate, care level full / self_care
    for level in ("full", "self_care"):
        p = b.alone("M", b.born(74))
        b.assist(p, "tekun")
        b.care(p, level, b.ago(90))
        b.cert(p, "physical", 1)
    # E4: mother dibao (income 500); daughter 9 with a serious illness; son 7
    h = b.household()
    mother = b.person(h, "head", "F", b.born(36))
    b.assist(mother, "dibao")
    b.finance(h, 500)
    father = b.external("M", b.born(38))
    daughter = b.person(h, "child", "F", b.born(9), father=father, mother=mother)
    b.health(daughter, "serious_illness", b.ago(300))
    b.person(h, "child", "M", b.born(7), father=father, mother=mother)
    # E5: child 10, father died 4 years 8 months ago, mother imprisoned for 3 years, still open
    h = b.household()
    grandpa = b.person(h, "head", "M", b.born(66))
    b.person(h, "spouse", "F", b.born(64))
    father = b.external("M", b.born(38))
    mother = b.external("F", b.born(36))
    b.death(father, years_before(m.start, 4) - D(days=245))
    b.situation(mother, "imprisoned", years_before(m.start, 3))
    b.person(h, "grandchild", "M", b.born(10), father=father, mother=mother)
    assert grandpa
    # E6: 64, grade-2 physical certificate expiring 15 days into M
    p = b.alone("M", b.born(64))
    b.cert(p, "physical", 2, years_before(m.day(15), 10), m.day(15))
    # E7: 85 without a bank account
    b.alone("F", b.born(85), bank=False)


def tekun_and_care(b: Builder) -> None:
    """Policy 3 supplements against policy 6; policy 8 with its 24-month and institution
    tests; 特困 never gets policy 8."""
    p = b.alone("M", b.born(70))
    b.assist(p, "tekun")
    b.care(p, "partial", b.ago(200))
    b.cert(p, "mental", 2)
    p = b.alone("F", b.born(66))
    b.assist(p, "tekun")  # no assessment: self_care supplement
    p = b.alone("M", b.born(83))
    b.assist(p, "tekun", review=b.ago(40))
    b.care(p, "full", b.ago(60), institution=True)
    b.cert(p, "visual", 1)
    p = b.alone("F", b.born(81))
    b.assist(p, "tekun")
    b.care(p, "partial", b.ago(100))
    # home care: 82 alone (partial, fresh) / dibao 66 (full) / stale / newer only / institution
    p = b.alone("F", b.born(82))
    b.care(p, "partial", b.ago(90))
    h = b.household()
    p = b.person(h, "head", "M", b.born(66))
    b.assist(p, "dibao")
    b.finance(h, 700)
    b.care(p, "full", b.ago(200))
    p = b.alone("M", b.born(82))
    b.care(p, "partial", b.ago(800))
    p = b.alone("F", b.born(82))
    b.care(p, "self_care", b.ago(300))
    b.care(p, "full", b.m.start)
    p = b.alone("M", b.born(84))
    b.care(p, "partial", b.ago(30), institution=True)
    h = b.household()
    p = b.person(h, "head", "M", b.born(85))
    b.person(h, "spouse", "F", b.born(83))
    b.care(p, "partial", b.ago(50))


def children(b: Builder) -> None:
    """Policies 11 and 12: orphans (scattered, in an institution), de facto unsupported children,
    a 特困 minor, 18th birthdays, unknown parents (`discovery_lead`), closed situations."""
    m = b.m

    def raised_by_grandparents(
        age: int | dt.date, fa: int | None, mo: int | None, relation: str = "grandchild"
    ) -> int:
        h = b.household()
        b.person(h, "head", "F", b.born(68))
        birth = age if isinstance(age, dt.date) else b.born(age)
        return b.person(
            h, relation, "F" if b.py.random() < 0.5 else "M", birth, father=fa, mother=mo
        )

    def dead_parent(sex: str, ago_days: int = 1500) -> int:
        pk = b.external(sex, b.born(40))
        b.death(pk, b.ago(ago_days), "police")
        return pk

    raised_by_grandparents(12, dead_parent("M"), dead_parent("F", 900))  # orphan, scattered
    c = raised_by_grandparents(8, dead_parent("M"), dead_parent("F"))
    b.care(c, "self_care", b.ago(120), institution=True)  # orphan in an institution
    # 18th birthday within M (paid, milestone) and on M.start (still paid for M)
    raised_by_grandparents(b.birthday(18, m.day(12)), dead_parent("M"), dead_parent("F"))
    raised_by_grandparents(b.birthday(18, m.start), dead_parent("M"), dead_parent("F"))
    # 特困 minor lives with an aunt
    c = raised_by_grandparents(15, dead_parent("M"), None, relation="other")
    b.assist(c, "tekun")
    # father dead, mother unknown: a discovery lead, not paid
    raised_by_grandparents(12, dead_parent("M"), None)
    # father's imprisonment ended a year ago, mother dead: nothing
    fa = b.external("M", b.born(42))
    b.situation(fa, "imprisoned", b.ago(2000), b.ago(365))
    raised_by_grandparents(8, fa, dead_parent("F"))
    # both parents in a situation: rehab and missing
    fa, mo = b.external("M", b.born(35)), b.external("F", b.born(33))
    b.situation(fa, "compulsory_rehab", b.ago(300))
    b.situation(mo, "missing", b.ago(700), b.after(400))
    raised_by_grandparents(6, fa, mo)
    # a registered father who died and a registered mother in prison, both still in the household
    h = b.household()
    fa = b.person(h, "head", "M", b.born(44))
    mo = b.person(h, "spouse", "F", b.born(41))
    b.death(fa, b.ago(500), "funeral")
    b.death(fa, b.ago(497), "police")
    b.situation(mo, "severely_ill", b.ago(200))
    b.person(h, "child", "M", b.born(14), father=fa, mother=mo)
    # situation starting on M.start / mother's situation ended the day before M.start
    fa = b.external("M", b.born(39))
    b.situation(fa, "guardianship_revoked", m.start)
    raised_by_grandparents(9, fa, dead_parent("F"))
    mo = b.external("F", b.born(39))
    b.situation(mo, "severely_disabled", b.ago(900), m.start - D(days=1))
    raised_by_grandparents(11, dead_parent("M"), mo)
    # dibao household: child with a grade-1 certificate, child turning 18 in M, adult child
    h = b.household()
    mo = b.person(h, "head", "F", b.born(44))
    b.assist(mo, "dibao")
    b.finance(h, 650)
    c = b.person(h, "child", "M", b.born(12), mother=mo)
    b.cert(c, "intellectual", 1, b.ago(700))
    b.person(h, "child", "F", b.birthday(18, m.day(20)), mother=mo)
    b.person(h, "child", "F", b.born(19), mother=mo)
    # dibian household with two children (one with a rare disease that ended)
    h = b.household()
    fa = b.person(h, "head", "M", b.born(40))
    b.assist(fa, "dibian")
    b.finance(h, 1800)
    c = b.person(h, "child", "M", b.born(10), father=fa)
    b.health(c, "rare_disease", b.ago(800), b.ago(30))
    b.person(h, "child", "F", b.born(4), father=fa)


def certificates(b: Builder) -> None:
    """Counting certificate edges: expiring exactly on ``M.start``, issued on it, expired the day
    before, two certificates (older expired / same issue day), cancelled; policy 5 and 6 cases."""
    m = b.m
    p = b.alone("M", b.born(45))
    b.cert(p, "visual", 1, years_before(m.start, 10), m.start)
    p = b.alone("F", b.born(50))
    b.cert(p, "hearing", 2, m.start)
    p = b.alone("M", b.born(58))
    b.cert(p, "physical", 1, years_before(m.start, 10) - D(days=1), m.start - D(days=1))
    p = b.alone("F", b.born(61))
    b.cert(p, "physical", 3, b.ago(4500), b.ago(900))
    b.cert(p, "physical", 1, b.ago(800))
    p = b.alone("M", b.born(39))
    b.cert(p, "mental", 3, b.ago(600))
    b.cert(p, "visual", 1, b.ago(600))
    p = b.alone("F", b.born(47))
    b.cert(p, "multiple", 1, b.ago(300), status="cancelled")
    h = b.household()
    p = b.person(h, "head", "M", b.born(55))
    b.assist(p, "dibao")
    b.finance(h, 900)
    b.cert(p, "physical", 3)
    h = b.household()
    p = b.person(h, "head", "F", b.born(48))
    b.assist(p, "dibian")
    b.finance(h, 1700)
    b.cert(p, "mental", 4)
    p = b.alone("M", b.born(70))
    b.cert(p, "speech", 1)
    b.care(p, "full", b.ago(100), institution=True)
    p = b.alone("F", b.born(29))
    b.cert(p, "intellectual", 3, b.after(10))  # issued during M: counts from M+1


def bank_problems(b: Builder) -> None:
    """`account_problem`: closed, not financially active, another name, two rows."""
    for status, active in (("closed", True), ("open", False)):
        p = b.alone("M", b.born(86), bank=False)
        b.bank(p, status, active)
    p = b.alone("F", b.born(87), bank=False)
    b.bank(p, name="王某某")
    p = b.alone("M", b.born(88), bank=False)
    b.bank(p, "closed")
    b.bank(p)  # the last row counts: fine
    p = b.alone("F", b.born(89), bank=False)
    b.bank(p)
    b.bank(p, "closed")  # the last row counts: held


def retirees(b: Builder) -> None:
    """Policies 9 and 10: pensioners dying in ``M−1`` (retiree, contributor reported twice,
    moved out before dying, a resident-scheme pensioner), one dying on ``M.start``; low pensions."""
    m, prev = b.m, b.m.prev
    p = b.alone("M", b.born(78))
    b.pension(p, "enterprise_employee", "active", 28.5, years_before(m.start, 18), 3200)
    b.death(p, prev.day(10), "health")
    h = b.household()
    p = b.person(h, "head", "M", b.born(50))
    b.person(h, "spouse", "F", b.born(48))
    b.pension(p, "enterprise_employee", "contributing", 7.3)
    b.death(p, prev.day(20), "police")
    b.death(p, prev.day(18), "health")
    p = b.alone("F", b.born(70), status="moved_out", moved_out=prev.day(2))
    b.pension(p, "enterprise_employee", "active", 31, years_before(m.start, 20), 3900)
    b.death(p, prev.day(12), "funeral")
    p = b.alone("M", b.born(81))
    b.pension(p, "enterprise_employee", "active", 16.75, years_before(m.start, 21), 2800)
    b.death(p, m.start, "police")
    p = b.alone("F", b.born(76))
    b.pension(p, "urban_rural_resident", "active", 12, years_before(m.start, 21), 420)
    b.death(p, prev.day(5), "health")
    # hardship grant: low pension / exactly 2 × dibao_std / dibao / household too rich
    p = b.alone("M", b.born(68))
    b.pension(p, "enterprise_employee", "active", 22.4, years_before(m.start, 8), 2000)
    p = b.alone("F", b.born(66))
    b.pension(p, "enterprise_employee", "active", 18, years_before(m.start, 11), 2 * m.dibao_std)
    h = b.household()
    p = b.person(h, "head", "M", b.born(71))
    b.assist(p, "dibao")
    b.finance(h, 1000)
    b.pension(p, "enterprise_employee", "active", 15.5, years_before(m.start, 11), 1750.5)
    h = b.household()
    p = b.person(h, "head", "F", b.born(64))
    b.person(h, "child", "M", b.born(38), mother=p)
    b.finance(h, 3000, 90000)
    b.pension(p, "enterprise_employee", "active", 20, years_before(m.start, 14), 1800)


def hardship(b: Builder) -> None:
    """Policies 1, 2 and 4 and their alerts: incomes at the thresholds, review dates, missing
    means tests, conflicting statuses, finance history, approvals on ``M.start``."""
    m, std = b.m, b.m.dibao_std
    for kind, income in (("dibao", std), ("dibian", 2300), ("dibian", 2280), ("dibian", 2 * std)):
        h = b.household()
        p = b.person(h, "head", "F", b.born(57))
        b.assist(p, kind)
        b.finance(h, income)
    h = b.household()
    p = b.person(h, "head", "M", b.born(49))
    b.assist(p, "dibao", review=b.ago(40))
    b.finance(h, 300)
    h = b.household()
    p = b.person(h, "head", "F", b.born(53))
    b.assist(p, "dibian", review=b.after(30))
    b.finance(h, 1500)
    h = b.household()
    p = b.person(h, "head", "M", b.born(60))
    b.assist(p, "dibao")  # no means test at all: review_due
    h = b.household()
    p = b.person(h, "head", "F", b.born(42))
    b.assist(p, "dibao")
    b.assist(p, "dibian")
    b.finance(h, 400)
    other = b.household()
    b.person(other, "head", "M", b.born(70))
    h = b.household()
    p = b.person(h, "head", "M", b.born(44))
    b.assist(p, "dibao")
    b.assist(p, "dibian", hh=other)
    b.finance(h, 600)
    # means-test history: the row on M.start counts from M+1
    h = b.household()
    p = b.person(h, "head", "F", b.born(62))
    b.person(h, "spouse", "M", b.born(64))
    b.assist(p, "dibao")
    b.finance(h, 600, on=b.ago(700))
    b.finance(h, 800, on=b.ago(200))
    b.finance(h, 1000, on=m.start)
    # approved on M.start, during M, the day before M.start
    for approved in (m.start, m.day(10), m.start - D(days=1)):
        h = b.household()
        p = b.person(h, "head", "M", b.born(51))
        b.assist(p, "dibao", approved=approved)
        b.finance(h, 500)
    # temporary assistance: two spenders in one household (one lead), exactly 20,000, the
    # window M−12…M−1 only, a household above prov_urban_income / 12
    h = b.household()
    a = b.person(h, "head", "M", b.born(58))
    c = b.person(h, "spouse", "F", b.born(56))
    b.finance(h, 1500)
    b.spend(a, range(1, 13), 2500)
    b.spend(c, range(1, 11), 2500)
    p = b.alone("F", b.born(45))
    b.spend(p, range(1, 9), 2500)
    p = b.alone("M", b.born(52))
    b.spend(p, range(1, 7), 2500)
    b.spend(p, (13, 0), 4000)
    h = b.household()
    p = b.person(h, "head", "M", b.born(47))
    b.finance(h, 7000, 300000)
    b.spend(p, range(1, 13), 4000)
    # discovery leads: poor household without assistance; assets too high; newer row only
    h = b.household()
    p = b.person(h, "head", "M", b.born(39))
    b.person(h, "spouse", "F", b.born(37))
    b.person(h, "child", "F", b.born(11), father=p)
    b.finance(h, 900, 20000)
    h = b.household()
    b.person(h, "head", "F", b.born(61))
    b.finance(h, 900, 50000)
    h = b.household()
    b.person(h, "head", "M", b.born(58))
    b.finance(h, 2000, 5000, b.ago(300))
    b.finance(h, 1000, 5000, m.start)


def moves_and_deaths(b: Builder) -> None:
    """`moved_out_stop`, `death_stop` and the resident test: moved out in ``M−1``, on
    ``M.start``, without a date, hukou in another district; deaths in ``M−1``, on ``M.start``
    and during ``M``; a death reported for someone not in the registry."""
    m, prev = b.m, b.m.prev
    b.alone("F", b.born(85), status="moved_out", moved_out=prev.day(12))
    b.alone("M", b.born(86), status="moved_out", moved_out=m.start)
    b.alone("F", b.born(84), status="moved_out")
    h = b.household("330105")
    b.person(h, "head", "M", b.born(87))
    b.alone("F", b.born(83), status="cancelled", moved_out=m.day(8))
    p = b.alone("M", b.born(88))
    b.death(p, prev.day(25), "funeral")
    p = b.alone("F", b.born(86))
    b.death(p, m.start, "health")
    p = b.alone("M", b.born(84))
    b.death(p, m.day(10), "police")
    b.death(p, m.day(12), "funeral")
    h = b.household()
    p = b.person(h, "head", "F", b.born(59))
    b.person(h, "spouse", "M", b.born(61))
    b.assist(p, "dibao")
    b.finance(h, 450)
    b.death(p, prev.day(3), "health")
    stranger = b.external("M", b.born(77))
    b.death(stranger, prev.day(14), "police")


SCENARIOS = (
    ages_and_birthdays,
    worked_examples,
    tekun_and_care,
    children,
    certificates,
    bank_problems,
    retirees,
    hardship,
    moves_and_deaths,
)
