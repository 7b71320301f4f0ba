"""Departmental facts about the random part of the district, one function per table.

Each function takes the registered population (one row per person with ``age`` on the day
before ``M.start`` and the household's assistance status) and returns the table in the
generator's intermediate form: ``_pk`` / ``_hh`` references, dates as ``Date``, money as
integer fen, and ``_seq`` ordering a person's rows from oldest to newest. Dates are placed
around the benefit month so that a sweep for ``M`` and for ``M+1`` meets every edge of the
handbook (on ``M.start``, in ``M−1``, within 30 or 90 days, older than 24 months …).

Example:
    >>> from benefits.synth.dates import Month
    >>> from benefits.synth.population import random_people
    >>> m = Month.parse("2025-01")
    >>> pop = with_status(Rng(3), population(random_people(Rng(3), m, 500), m))
    >>> sorted(assistance(Rng(3), m, pop).columns)[:3]
    ['_hh', '_pk', '_seq']
"""

from __future__ import annotations

import polars as pl

from benefits.synth.dates import MIN_WAGE, Month, days
from benefits.synth.names import SURNAMES
from benefits.synth.population import given_name
from benefits.synth.rand import Rng, cases

FEN = 100
# How much more often a household type is poor enough for assistance.
POVERTY_WEIGHT = {
    "elder_alone": 2.0,
    "adult_alone": 1.2,
    "single_parent": 3.0,
    "single_parent_2": 3.0,
    "grandparents_raising": 3.0,
    "with_relative": 1.2,
}


def as_date(day_number: pl.Expr) -> pl.Expr:
    """Days since 1970-01-01 → Date."""
    return day_number.cast(pl.Int32).cast(pl.Date)


def dnum(col: str) -> pl.Expr:
    """A Date column as a day number."""
    return pl.col(col).cast(pl.Int32)


def age_on(birth: pl.Expr, day: pl.Expr | int) -> pl.Expr:
    """Completed years (周岁) on the day *before* the given day number."""
    ref = as_date((day if isinstance(day, pl.Expr) else pl.lit(day)) - 1)
    before = (birth.dt.month() * 100 + birth.dt.day()) > (ref.dt.month() * 100 + ref.dt.day())
    return (ref.dt.year() - birth.dt.year() - before.cast(pl.Int32)).cast(pl.Int32)


def population(people: pl.DataFrame, m: Month) -> pl.DataFrame:
    """The registered (non-external) persons with their age for ``M``."""
    return people.filter(~pl.col("external")).with_columns(
        age=age_on(pl.col("birth"), days(m.start))
    )


def with_status(rng: Rng, pop: pl.DataFrame) -> pl.DataFrame:
    """Add ``hh_status`` (dibao/dibian household) and ``status`` (own assistance type).

    About 2 % of persons are 低保, 1 % 低边 and 0.2 % 特困; 低保/低边 is granted to all members of
    most assisted households and to the head only in the others.
    """
    weight = pl.col("htype").replace_strict(POVERTY_WEIGHT, default=0.7, return_dtype=pl.Float64)
    u = rng.u("st:hh", "_hh")
    hh_status = cases(
        [(u < 0.024 * weight, pl.lit("dibao")), (u < 0.036 * weight, pl.lit("dibian"))],
        pl.lit(None, pl.String),
    )
    covered = rng.chance("st:all", 0.75, "_hh") | (pl.col("role") == "head")
    alone = pl.col("htype").is_in(["elder_alone", "adult_alone"])
    tekun = (alone & hh_status.is_null() & rng.chance("st:tekun", 0.019)) | (
        (pl.col("role") == "orphan") & rng.chance("st:tekun_child", 0.08)
    )
    return pop.with_columns(hh_status=hh_status).with_columns(
        status=cases(
            [
                (tekun, pl.lit("tekun")),
                (covered & pl.col("hh_status").is_not_null(), pl.col("hh_status")),
            ],
            pl.lit(None, pl.String),
        )
    )


def _review(rng: Rng, m: Month, idx: pl.Expr) -> pl.Expr:
    start = days(m.start)
    when = rng.pick("as:review", ["none", "overdue", "soon", "later"], [10, 10, 15, 65], idx)
    return as_date(
        cases(
            [
                (when == "overdue", start - rng.integer("as:overdue", 1, 180, idx)),
                (when == "soon", start + rng.integer("as:soon", 0, 30, idx)),
                (when == "later", start + rng.integer("as:later", 31, 365, idx)),
            ]
        )
    )


def _approved(rng: Rng, m: Month, idx: pl.Expr) -> pl.Expr:
    start, prev, end = days(m.start), days(m.prev.start), days(m.end)
    when = rng.pick("as:approved", ["past", "prev", "start", "month"], [90, 3, 3, 4], idx)
    return as_date(
        cases(
            [
                (when == "past", start - rng.integer("as:past", start - prev + 1, 3000, idx)),
                (when == "prev", prev + rng.integer("as:prev", 0, start - prev - 1, idx)),
                (when == "start", pl.lit(start)),
            ],
            start + rng.integer("as:month", 1, end - start, idx),
        )
    )


def assistance(rng: Rng, m: Month, pop: pl.DataFrame) -> pl.DataFrame:
    """One row per person and status, plus a few conflicting second rows (`exclusive_conflict`):
    a 低保 person also listed as 低边, a 特困 person also listed as 低保, and a 低边 person listed
    as 低保 under another household number."""
    base = pop.filter(pl.col("status").is_not_null()).select(
        "_pk", "_hh", assistance_type=pl.col("status"), _seq=pl.lit(0, pl.Int64)
    )
    st = pl.col("status")
    u = rng.u("as:conflict")
    other_hh = (pl.col("_hh") + rng.integer("as:other_hh", 1, 50)) % (pl.col("_hh").max() + 1)
    extra = pop.filter(
        ((st == "dibao") & (u < 0.03))
        | ((st == "tekun") & (u < 0.05))
        | ((st == "dibian") & (u < 0.02))
    ).select(
        "_pk",
        _hh=pl.when(st == "dibian").then(other_hh).otherwise(pl.col("_hh")),
        assistance_type=cases([(st == "dibao", pl.lit("dibian"))], pl.lit("dibao")),
        _seq=pl.lit(1, pl.Int64),
    )
    rows = pl.concat([base, extra], how="vertical_relaxed")
    idx = pl.col("_pk") * 4 + pl.col("_seq")
    return rows.with_columns(
        approved_date=_approved(rng, m, idx), next_review_date=_review(rng, m, idx)
    )


def fen(yuan: pl.Expr, cents: pl.Expr) -> pl.Expr:
    """Whole yuan plus (sometimes) cents, as integer fen."""
    return (yuan.floor() * FEN + cents).cast(pl.Int64)


def household_finance(rng: Rng, m: Month, pop: pl.DataFrame) -> pl.DataFrame:
    """Means-test history: 1–3 assessments before ``M.start`` per assisted household (a few
    have none), an occasional newer one dated on/after ``M.start``, and assessments of some
    poor households that receive nothing (the `discovery_lead`). The assessment that counts
    for ``M`` puts incomes below, at and above ``dibao_std``, ``min_wage`` and 2 × ``dibao_std``.
    """
    std = m.dibao_std
    hh = (
        pop.group_by("_hh")
        .agg(
            hh_status=pl.col("hh_status").first(),
            tekun=(pl.col("status") == "tekun").any(),
        )
        .sort("_hh")
    )
    kind = cases(
        [
            (
                pl.col("hh_status").is_not_null() & rng.chance("fi:has", 0.97, "_hh"),
                pl.col("hh_status"),
            ),
            (pl.col("tekun") & rng.chance("fi:tekun", 0.5, "_hh"), pl.lit("tekun")),
            (
                pl.col("hh_status").is_null() & rng.chance("fi:poor", 0.015, "_hh"),
                pl.lit("checked"),
            ),
        ],
        pl.lit(None, pl.String),
    )
    hh = hh.with_columns(kind=kind).filter(pl.col("kind").is_not_null())
    band = rng.u("fi:band", "_hh")
    x = rng.u("fi:x", "_hh")
    dibao_income = cases(
        [(band < 0.88, x * std), (band < 0.93, pl.lit(float(std)))], std + 1 + x * std * 0.4
    )
    dibian_income = cases(
        [
            (band < 0.84, std + x * (MIN_WAGE - std)),
            (band < 0.88, pl.lit(float(MIN_WAGE))),
            (band < 0.94, MIN_WAGE + 1 + x * (2 * std - MIN_WAGE - 2)),
            (band < 0.97, pl.lit(float(2 * std))),
        ],
        2 * std + 1 + x * std,
    )
    checked_income = cases([(band < 0.6, x * std)], std + x * 2 * std)
    income = cases(
        [
            (pl.col("kind") == "dibao", dibao_income),
            (pl.col("kind") == "dibian", dibian_income),
            (pl.col("kind") == "tekun", x * std),
        ],
        checked_income,
    )
    exact = band.is_between(0.88, 0.97) & pl.col("kind").is_in(["dibao", "dibian"])
    cents = (
        pl.when(exact | rng.chance("fi:round", 0.6, "_hh"))
        .then(0)
        .otherwise(rng.integer("fi:cents", 1, 99, "_hh"))
    )
    assets_cap = cases(
        [((pl.col("kind") == "checked") & (band >= 0.45) & (band < 0.6), pl.lit(80.0 * std))],
        pl.lit(36.0 * std - 1),
    )
    assets_lo = cases(
        [((pl.col("kind") == "checked") & (band >= 0.45) & (band < 0.6), pl.lit(36.0 * std))],
        pl.lit(0.0),
    )
    hh = hh.with_columns(
        income=fen(income, cents),
        assets=fen(rng.uniform("fi:assets", assets_lo, assets_cap, "_hh"), pl.lit(0)),
        n_before=rng.integer("fi:n", 1, 3, "_hh"),
        newer=rng.chance("fi:newer", 0.1, "_hh"),
    )
    rows = hh.with_columns(
        _seq=pl.int_ranges(0, pl.col("n_before") + pl.col("newer").cast(pl.Int64))
    ).explode("_seq")
    idx = pl.col("_hh") * 8 + pl.col("_seq")
    start = days(m.start)
    latest = start - rng.integer("fi:latest", 1, 330, "_hh")
    back = pl.col("n_before") - 1 - pl.col("_seq")  # 0 for the assessment that counts for M
    on = cases(
        [(back >= 0, latest - back * 365 - rng.integer("fi:back", 0, 60, idx))],
        start + rng.integer("fi:newer_on", 0, 25, idx),
    )
    drift = rng.uniform("fi:drift", 0.8, 1.2, idx)
    return rows.select(
        "_hh",
        "_seq",
        per_capita_income=pl.when(back == 0)
        .then(pl.col("income"))
        .otherwise((pl.col("income") * drift).round(0).cast(pl.Int64)),
        per_capita_assets=pl.when(back == 0)
        .then(pl.col("assets"))
        .otherwise((pl.col("assets") * drift / 10_000).round(0).cast(pl.Int64) * 10_000),
        assessed_on=as_date(on),
    )


def _hundredths(lo: float | pl.Expr, hi: float | pl.Expr, rng: Rng, stream: str) -> pl.Expr:
    """A number in [lo, hi) with 0, 1 or 2 decimals, as an integer of hundredths."""
    x = rng.uniform(stream, lo, hi) * 100
    places = rng.pick(f"{stream}:places", [1, 10, 100], [30, 40, 30])
    return ((x / places).floor() * places).cast(pl.Int64)


def pensions(rng: Rng, m: Month, pop: pl.DataFrame) -> pl.DataFrame:
    """Pension records: retirees (`active`, some `suspended`/`terminated`) with their monthly
    pension — about one enterprise retiree in five below 2 × ``dibao_std`` — and contributors of
    working age with contribution years that have decimals."""
    std = m.dibao_std
    male = pl.col("sex") == "M"
    retired = (male & (pl.col("age") >= 60)) | (~male & (pl.col("age") >= 55))
    rows = (
        pop.filter(pl.col("age") >= 18)
        .with_columns(retired=retired)
        .filter(rng.u("pe:has") < pl.when(pl.col("retired")).then(0.85).otherwise(0.7))
    )
    r_type = rng.pick(
        "pe:rtype", ["enterprise_employee", "urban_rural_resident", "civil_service"], [62, 32, 6]
    )
    w_type = rng.pick(
        "pe:wtype", ["enterprise_employee", "urban_rural_resident", "civil_service"], [80, 15, 5]
    )
    ptype = pl.when(pl.col("retired")).then(r_type).otherwise(w_type)
    r_status = rng.pick("pe:rstatus", ["active", "suspended", "terminated"], [95, 3, 2])
    w_status = rng.pick("pe:wstatus", ["contributing", "suspended", "terminated"], [92, 6, 2])
    retire_age = cases(
        [(male, pl.lit("60y")), (pl.col("pension_type") == "enterprise_employee", pl.lit("50y"))],
        pl.lit("55y"),
    )
    monthly_yuan = cases(
        [
            (pl.col("pension_type") == "enterprise_employee", rng.uniform("pe:ent", 1700, 6500)),
            (pl.col("pension_type") == "urban_rural_resident", rng.uniform("pe:res", 180, 900)),
        ],
        rng.uniform("pe:civ", 5500, 12000),
    )
    edge = rng.pick("pe:edge", ["none", "two_std", "missing"], [97, 2, 1])
    monthly = cases(
        [(edge == "two_std", pl.lit(2 * std * FEN)), (edge == "missing", pl.lit(None, pl.Int64))],
        fen(monthly_yuan, rng.integer("pe:cents", 0, 99)),
    )
    work_years = pl.min_horizontal(pl.col("age") - 18, pl.lit(40)).cast(pl.Float64)
    years = cases(
        [
            (~pl.col("retired"), _hundredths(0, work_years, rng, "pe:wy")),
            (pl.col("pension_type") == "urban_rural_resident", _hundredths(0, 15, rng, "pe:ry")),
        ],
        _hundredths(10, 40, rng, "pe:ey"),
    )
    return (
        rows.with_columns(
            pension_type=ptype, status=pl.when(pl.col("retired")).then(r_status).otherwise(w_status)
        )
        .with_columns(
            retire_date=pl.when(pl.col("retired") & rng.chance("pe:rd", 0.97)).then(
                pl.col("birth").dt.offset_by(retire_age)
            ),
            monthly_pension=pl.when(pl.col("retired")).then(monthly),
            contribution_years=years,
        )
        .select(
            "_pk",
            "pension_type",
            "status",
            "retire_date",
            "monthly_pension",
            "contribution_years",
            _seq=pl.lit(0, pl.Int64),
        )
    )


def _death_day(rng: Rng, m: Month, when: pl.Expr, stream: str) -> pl.Expr:
    start, prev, end = days(m.start), days(m.prev.start), days(m.end)
    return cases(
        [
            (when == "past", start - rng.integer(f"{stream}:past", start - prev + 1, 1500)),
            (when == "prev", prev + rng.integer(f"{stream}:prev", 0, start - prev - 1)),
            (when == "start", pl.lit(start)),
        ],
        start + rng.integer(f"{stream}:month", 1, end - start),
    )


def deaths(
    rng: Rng, m: Month, pop: pl.DataFrame, people: pl.DataFrame, ent: pl.DataFrame
) -> pl.DataFrame:
    """Death reports. Mostly the old; more in ``M−1`` among enterprise pensioners (survivor
    notice); some on ``M.start`` and in ``M``; dead parents and strangers outside the registry;
    a quarter of deaths reported twice, by another department, sometimes on another date."""
    age = pl.col("age")
    u = rng.u("de:die")
    p_past = cases([(age >= 85, 0.04), (age >= 70, 0.015)], 0.002)
    p_prev = cases([(age >= 85, 0.012), (age >= 70, 0.004)], 0.0005) + pl.col("ent") * 0.005
    p_month = cases([(age >= 85, 0.008), (age >= 70, 0.003)], 0.0005)
    when = cases(
        [
            (u < p_past, pl.lit("past")),
            (u < p_past + p_prev, pl.lit("prev")),
            (u < p_past + p_prev + p_month * 0.3, pl.lit("start")),
            (u < p_past + p_prev + p_month, pl.lit("month")),
        ],
        pl.lit(None, pl.String),
    )
    registered = (
        pop.join(ent, on="_pk", how="left", maintain_order="left")
        .with_columns(pl.col("ent").fill_null(0.0))
        .with_columns(when=when)
        .filter(pl.col("when").is_not_null())
        .select("_pk", death=_death_day(rng, m, pl.col("when"), "de:day").cast(pl.Int32))
    )
    ext = people.filter(pl.col("external") & pl.col("fate").is_in(["dead", "stranger"]))
    latest = days(m.start) - 60
    stranger_when = rng.pick("de:swhen", ["past", "prev", "start", "month"], [70, 15, 5, 10])
    outside = ext.select(
        "_pk",
        death=pl.when(pl.col("fate") == "dead")
        .then(dnum("child_birth") + (rng.u("de:ext") * (latest - dnum("child_birth"))).floor())
        .otherwise(_death_day(rng, m, stranger_when, "de:s"))
        .cast(pl.Int32),
    )
    first = pl.concat([registered, outside]).with_columns(
        source=rng.pick("de:src", ["police", "health", "funeral"], [45, 35, 20]),
        twice=rng.chance("de:twice", 0.25),
        _seq=pl.lit(0, pl.Int64),
    )
    second = first.filter("twice").with_columns(
        source=cases(
            [
                (pl.col("source") == "police", pl.lit("health")),
                (pl.col("source") == "health", pl.lit("funeral")),
            ],
            pl.lit("police"),
        ),
        death=pl.col("death")
        + pl.when(rng.chance("de:same", 0.5))
        .then(0)
        .otherwise(rng.pick("de:shift", [-3, -2, -1, 1, 2, 3])),
        _seq=pl.lit(1, pl.Int64),
    )
    return pl.concat([first, second], how="vertical_relaxed").select(
        "_pk", "_seq", "source", death_date=as_date(pl.col("death"))
    )


def cancel_dead(people: pl.DataFrame, death_rows: pl.DataFrame, m: Month) -> pl.DataFrame:
    """Half of those who died more than two months before ``M.start`` have their hukou cancelled."""
    first = death_rows.group_by("_pk").agg(pl.col("death_date").min())
    cutoff = days(m.start) - 60
    people = people.join(first, on="_pk", how="left", maintain_order="left")
    cancel = (
        (pl.col("death_date").cast(pl.Int32) < cutoff)
        & (pl.col("_pk") % 2 == 0)
        & ~pl.col("external")
        & (pl.col("hukou_status") == "normal")
    )
    return people.with_columns(
        hukou_status=pl.when(cancel).then(pl.lit("cancelled")).otherwise(pl.col("hukou_status")),
        moved_out_date=pl.when(cancel & (pl.col("_pk") % 3 > 0))
        .then(pl.col("death_date").dt.offset_by("20d"))
        .otherwise(pl.col("moved_out_date")),
    ).drop("death_date")


def bank_accounts(rng: Rng, pop: pl.DataFrame) -> pl.DataFrame:
    """社保卡 accounts for most adults and many children; problems on a few: closed, not
    financially active, a name that differs from the registry, and people with two rows (the
    last one counts — sometimes a good one after a closed one, sometimes the other way)."""
    age = pl.col("age")
    p = cases(
        [
            (pl.col("status").is_not_null() | (age >= 80), 0.96),
            (age >= 16, 0.92),
        ],
        0.55,
    )
    holders = pop.filter(rng.u("ba:has") < p).with_columns(
        problem=rng.pick("ba:problem", ["ok", "closed", "inactive", "name"], [945, 20, 20, 15]),
        rows=rng.pick("ba:rows", ["one", "closed_then_ok", "ok_then_closed"], [950, 40, 10]),
    )
    other_name = pl.concat_str(
        [
            rng.pick("ba:surname", [s for s, _ in SURNAMES], [w for _, w in SURNAMES]),
            given_name(rng, "ba:given"),
        ]
    )
    current = holders.select(
        "_pk",
        _seq=pl.lit(1, pl.Int64),
        account_no=_account_no(rng, pl.col("_pk") * 2 + 1),
        account_name=pl.when(pl.col("problem") == "name").then(other_name),
        financial_active=pl.col("problem") != "inactive",
        status=pl.when((pl.col("problem") == "closed") | (pl.col("rows") == "ok_then_closed"))
        .then(pl.lit("closed"))
        .otherwise(pl.lit("open")),
    )
    earlier = holders.filter(pl.col("rows") != "one").select(
        "_pk",
        _seq=pl.lit(0, pl.Int64),
        account_no=_account_no(rng, pl.col("_pk") * 2),
        account_name=pl.lit(None, pl.String),
        financial_active=pl.lit(True),
        status=pl.when(pl.col("rows") == "closed_then_ok")
        .then(pl.lit("closed"))
        .otherwise(pl.lit("open")),
    )
    return pl.concat([earlier, current], how="vertical_relaxed")


def _account_no(rng: Rng, idx: pl.Expr) -> pl.Expr:
    """A 19-digit card number (6217 …)."""
    digits = (rng.bits("ba:no", idx) % (10**15)).cast(pl.String).str.zfill(15)
    return pl.concat_str([pl.lit("6217"), digits])
