"""Departmental facts about health, care and family: disability certificates (残联), ability
assessments, parents' situations, serious illnesses and medical spending — same intermediate
form as :mod:`benefits.synth.facts`.

Example:
    >>> from benefits.synth.dates import Month
    >>> from benefits.synth.facts import population, with_status
    >>> from benefits.synth.population import random_people
    >>> m = Month.parse("2025-01")
    >>> pop = with_status(Rng(3), population(random_people(Rng(3), m, 500), m))
    >>> care_assessments(Rng(3), m, pop).columns
    ['_pk', '_seq', 'care_level', 'assessed_on', 'institution_resident']
"""

from __future__ import annotations

import polars as pl

from benefits.synth.dates import Month, days
from benefits.synth.facts import as_date, fen
from benefits.synth.rand import Rng, cases

# The category digit of a certificate number (残疾人证号 = ID + category + grade).
CATEGORY_CODES = {
    "visual": 1, "hearing": 2, "speech": 3, "physical": 4, "intellectual": 5, "mental": 6,
    "multiple": 7,
}  # fmt: skip


def disability_certificates(rng: Rng, m: Month, pop: pl.DataFrame) -> pl.DataFrame:
    """About 6 % of persons hold a certificate (more among the old and 特困): every category
    and grade, some cancelled, expired, expiring within 90 days, issued or expiring exactly
    on ``M.start``; a few hold two (an older one, or two issued the same day)."""
    age = pl.col("age")
    p = cases([(age < 18, 0.015), (age < 60, 0.05), (age < 80, 0.11)], 0.19)
    p = (
        pl.when(pl.col("status") == "tekun")
        .then(0.45)
        .otherwise(pl.when(pl.col("status").is_not_null()).then(p * 1.5).otherwise(p))
    )
    holders = pop.filter(rng.u("ce:has") < p).select("_pk")
    start = days(m.start)
    ten_years = 3652
    kind = rng.pick(
        "ce:kind", ["normal", "on_start", "expires_start", "expiring", "new"], [87, 2, 2, 7, 2]
    )
    issue = cases(
        [
            (kind == "normal", start - rng.integer("ce:age", 0, 11 * 365)),
            (kind == "on_start", pl.lit(start)),
            (kind == "expiring", start + rng.integer("ce:soon", 1, 90) - ten_years),
            (kind == "new", start + rng.integer("ce:new", 1, 27)),
        ],
        pl.lit(start - ten_years),
    )
    first = holders.with_columns(
        category=rng.pick("ce:cat", list(CATEGORY_CODES), [12, 15, 3, 40, 10, 12, 8]),
        grade=rng.pick("ce:grade", [1, 2, 3, 4], [15, 25, 30, 30]),
        issue=issue,
        expires_start=kind == "expires_start",
        status=rng.pick("ce:status", ["valid", "cancelled"], [97, 3]),
        two=rng.pick("ce:two", ["no", "older", "same_day"], [960, 30, 10]),
        _seq=pl.lit(1, pl.Int64),
    )
    second = first.filter(pl.col("two") != "no").with_columns(
        grade=pl.col("grade") % 4 + 1,
        issue=pl.when(pl.col("two") == "older")
        .then(pl.col("issue") - rng.integer("ce:older", 4 * 365, 9 * 365))
        .otherwise(pl.col("issue")),
        status=pl.lit("valid"),
        expires_start=pl.lit(False),
        _seq=pl.lit(0, pl.Int64),
    )
    both = pl.concat([first, second], how="vertical_relaxed").with_columns(
        issue_date=as_date(pl.col("issue"))
    )
    return both.select(
        "_pk",
        "_seq",
        "category",
        "grade",
        "issue_date",
        expiry_date=pl.when(pl.col("expires_start"))
        .then(pl.lit(m.start))
        .otherwise(pl.col("issue_date").dt.offset_by("10y")),
        status="status",
    )


def care_assessments(rng: Rng, m: Month, pop: pl.DataFrame) -> pl.DataFrame:
    """Ability assessments of many elderly and every 特困 person: 1–3 before ``M.start`` (some
    older than 24 months), an occasional newer one, some institution residents."""
    age = pl.col("age")
    assisted = pl.col("status").is_in(["dibao", "dibian"])
    p = cases(
        [
            (pl.col("status") == "tekun", 1.0),
            (age >= 80, 0.55),
            ((age >= 60) & assisted, 0.6),
            (age >= 60, 0.22),
            (assisted, 0.05),
        ],
        0.003,
    )
    people = pop.filter(rng.u("ca:has") < p).with_columns(
        n_before=rng.integer("ca:n", 1, 3),
        newer=rng.chance("ca:newer", 0.08),
        inst=rng.u("ca:inst") < cases([(pl.col("status") == "tekun", 0.3), (age >= 80, 0.1)], 0.05),
        latest=days(m.start) - rng.integer("ca:latest", 1, 1000),
    )
    rows = people.with_columns(
        _seq=pl.int_ranges(0, pl.col("n_before") + pl.col("newer").cast(pl.Int64))
    ).explode("_seq")
    idx = pl.col("_pk") * 8 + pl.col("_seq")
    back = pl.col("n_before") - 1 - pl.col("_seq")
    on = cases(
        [(back >= 0, pl.col("latest") - back * 400 - rng.integer("ca:back", 0, 90, idx))],
        days(m.start) + rng.integer("ca:newer_on", 0, 25, idx),
    )
    # P(self_care), P(self_care or partial): 特困 / aged 80+ / others
    bands = [(pl.col("status") == "tekun", 0.35, 0.70), (age >= 80, 0.40, 0.75)]
    self_care = cases([(c, a) for c, a, _ in bands], 0.65)
    partial = cases([(c, b) for c, _, b in bands], 0.87)
    u = rng.u("ca:level", idx)
    level = cases(
        [(u < self_care, pl.lit("self_care")), (u < partial, pl.lit("partial"))], pl.lit("full")
    )
    return rows.select(
        "_pk", "_seq", care_level=level, assessed_on=as_date(on), institution_resident="inst"
    )


def parent_situations(rng: Rng, m: Month, people: pl.DataFrame, pop: pl.DataFrame) -> pl.DataFrame:
    """Situations of parents outside the registry (open on ``M.start``: imprisoned, in rehab,
    missing …) and of some registered adults (open, closed, ended the day before ``M.start``,
    starting after it)."""
    start = days(m.start)
    what = rng.pick(
        "ps:what",
        [
            "imprisoned",
            "compulsory_rehab",
            "missing",
            "severely_disabled",
            "severely_ill",
            "guardianship_revoked",
        ],
        [45, 15, 15, 10, 10, 5],
    )
    ext = people.filter(pl.col("external") & (pl.col("fate") == "situation")).select(
        "_pk",
        _seq=pl.lit(0, pl.Int64),
        situation=what,
        start=start - rng.integer("ps:ext_start", 60, 2500),
        end=cases(
            [
                (rng.chance("ps:ext_end", 0.25), start + rng.integer("ps:ext_until", 1, 800)),
                (rng.chance("ps:ext_end0", 0.06), pl.lit(start)),
            ]
        ),
    )
    kind = rng.pick("ps:kind", ["open", "closed", "future", "ended_before"], [30, 45, 10, 15])
    began = start - rng.integer("ps:began", 400, 3000)
    adults = pop.filter(pl.col("age").is_between(25, 55) & rng.chance("ps:adult", 0.003)).select(
        "_pk",
        _seq=pl.lit(0, pl.Int64),
        situation=what,
        start=pl.when(kind == "future")
        .then(start + rng.integer("ps:future", 0, 20))
        .otherwise(began),
        end=cases(
            [
                (kind == "closed", began + rng.integer("ps:len", 30, 380)),
                (kind == "ended_before", pl.lit(start - 1)),
            ]
        ),
    )
    rows = pl.concat([ext, adults], how="vertical_relaxed")
    return rows.select(
        "_pk",
        "_seq",
        "situation",
        start_date=as_date(pl.col("start")),
        end_date=as_date(pl.col("end")),
    )


def health_conditions(rng: Rng, m: Month, pop: pl.DataFrame) -> pl.DataFrame:
    """Serious illnesses and rare diseases: about 1 % of persons, one child in eight of 低保/低边
    households; most still open on ``M.start``, some ended, a few diagnosed after it."""
    start = days(m.start)
    p = cases(
        [
            ((pl.col("age") < 18) & pl.col("hh_status").is_not_null(), 0.12),
            (pl.col("age") >= 60, 0.015),
        ],
        0.007,
    )
    kind = rng.pick("hc:kind", ["open", "ended", "open_later_end", "future"], [75, 15, 5, 5])
    diag = (
        pl.when(kind == "future")
        .then(start + rng.integer("hc:fut", 0, 20))
        .otherwise(start - rng.integer("hc:diag", 1, 2000))
    )
    rows = pop.filter(rng.u("hc:has") < p).with_columns(diag=diag)
    return rows.select(
        "_pk",
        _seq=pl.lit(0, pl.Int64),
        condition=rng.pick("hc:cond", ["serious_illness", "rare_disease"], [85, 15]),
        diagnosed_on=as_date(pl.col("diag")),
        end_date=as_date(
            cases(
                [
                    (
                        kind == "ended",
                        pl.col("diag") + (rng.u("hc:end") * (start - 1 - pl.col("diag"))).floor(),
                    ),
                    (kind == "open_later_end", start + rng.integer("hc:later", 0, 300)),
                ]
            )
        ),
    )


def medical_expenses(rng: Rng, m: Month, pop: pl.DataFrame) -> pl.DataFrame:
    """Monthly out-of-pocket spending for months ``M−13 … M``: occasional for about 9 % of
    persons, heavy (≥ 20,000 yuan a year) for a few per thousand and more among the assisted."""
    p_heavy = pl.when(pl.col("status").is_not_null()).then(0.02).otherwise(0.0025)
    spenders = (
        pop.with_columns(u=rng.u("me:has"), heavy_p=p_heavy)
        .with_columns(
            heavy=pl.col("u") < pl.col("heavy_p"),
            some=pl.col("u")
            < pl.col("heavy_p") + pl.when(pl.col("age") >= 60).then(0.15).otherwise(0.07),
        )
        .filter("some")
        .select("_pk", "heavy")
    )
    months = pl.DataFrame(
        {"_seq": list(range(14)), "month": [m.shift(k - 13).label for k in range(14)]},
        schema={"_seq": pl.Int64, "month": pl.String},
    )
    rows = spenders.join(months, how="cross")
    idx = pl.col("_pk") * 16 + pl.col("_seq")
    keep = rng.u("me:month", idx) < pl.when(pl.col("heavy")).then(0.85).otherwise(0.45)
    amount = (
        pl.when(pl.col("heavy"))
        .then(rng.uniform("me:big", 1500, 7000, idx))
        .otherwise(rng.u("me:small", idx).pow(3) * 4000 + 20)
    )
    return rows.filter(keep).select(
        "_pk", "_seq", "month", out_of_pocket=fen(amount, rng.integer("me:cents", 0, 99, idx))
    )
