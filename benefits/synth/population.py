"""Households and persons of the random part of the district, and their resident IDs.

Households are drawn from a small set of types (an elderly person alone, a couple with
children, three generations, grandparents raising a grandchild …); each type lists the roles of
its members, and ages, sexes and parents follow from the roles, so relations always agree with
ages. Parents who are not in the registry (dead, imprisoned, living elsewhere) become
*external* people: they get IDs but no `persons` row.

Example:
    >>> from benefits.synth.dates import Month
    >>> people = random_people(Rng(1), Month.parse("2025-01"), 50)
    >>> int(people.filter(~pl.col("external")).height)
    50
"""

from __future__ import annotations

import polars as pl

from benefits.idcard import CHECK_CHARS, WEIGHTS
from benefits.synth.dates import Month, days
from benefits.synth.names import (
    BIRTH_REGIONS,
    COMMUNITIES,
    DISTRICT,
    GIVEN,
    OTHER_DISTRICTS,
    SURNAMES,
)
from benefits.synth.rand import Rng, cases

# name, weight, head age (lo, hi) or "elder", P(head is male), member roles
HOUSEHOLD_TYPES: tuple[tuple[str, float, tuple[int, int] | str, float, tuple[str, ...]], ...] = (
    ("elder_alone", 9, "elder", 0.35, ("head",)),
    ("adult_alone", 14, (20, 65), 0.6, ("head",)),
    ("elder_couple", 10, "elder", 0.8, ("head", "spouse")),
    ("couple", 10, (22, 60), 0.75, ("head", "spouse")),
    ("couple_child", 20, (24, 58), 0.75, ("head", "spouse", "child")),
    ("couple_2children", 12, (26, 55), 0.75, ("head", "spouse", "child", "child")),
    ("single_parent", 5, (24, 55), 0.2, ("head", "child")),
    ("single_parent_2", 2, (28, 55), 0.2, ("head", "child", "child")),
    ("with_parent", 7, (30, 62), 0.75, ("head", "spouse", "child", "parent")),
    ("three_generations", 6, (52, 78), 0.8, ("head", "spouse", "gen2", "grandchild")),
    ("grandparents_raising", 1.5, (52, 78), 0.8, ("head", "spouse", "orphan")),
    ("with_relative", 3, (25, 70), 0.6, ("head", "other")),
)
ROLE_RELATION = {
    "head": "head",
    "spouse": "spouse",
    "child": "child",
    "gen2": "child",
    "parent": "parent",
    "grandchild": "grandchild",
    "orphan": "grandchild",
    "other": "other",
}
# Elderly heads: (probability, lo, hi) age bands.
ELDER_BANDS = (
    (0.70, 60.0, 80.0),
    (0.245, 80.0, 90.0),
    (0.0535, 90.0, 100.0),
    (0.0015, 100.0, 105.0),
)
# What happened to the parents of a child raised by grandparents: (weight, father, mother).
ORPHAN_CASES = (
    (20, "ext_dead", "ext_dead"),
    (15, "ext_dead", "ext_situation"),
    (5, "ext_situation", "ext_dead"),
    (5, "ext_situation", "ext_situation"),
    (10, "ext_dead", None),
    (5, None, "ext_dead"),
    (5, "ext_situation", None),
    (35, "ext_alive", "ext_alive"),
)
YEAR = 365.2425


def type_table() -> pl.DataFrame:
    """One row per household type with its weight, age band and size."""
    return pl.DataFrame(
        {
            "htype": [t[0] for t in HOUSEHOLD_TYPES],
            "a_lo": [60.0 if t[2] == "elder" else float(t[2][0]) for t in HOUSEHOLD_TYPES],
            "a_hi": [60.0 if t[2] == "elder" else float(t[2][1]) for t in HOUSEHOLD_TYPES],
            "elder": [t[2] == "elder" for t in HOUSEHOLD_TYPES],
            "p_male": [t[3] for t in HOUSEHOLD_TYPES],
            "size": [len(t[4]) for t in HOUSEHOLD_TYPES],
        }
    )


def slot_table() -> pl.DataFrame:
    """One row per (household type, member slot) with the member's role and relation."""
    rows = [(t[0], i, r, ROLE_RELATION[r]) for t in HOUSEHOLD_TYPES for i, r in enumerate(t[4])]
    return pl.DataFrame(rows, schema=["htype", "_slot", "role", "relation"], orient="row")


def elder_age(rng: Rng, stream: str, idx: str, lo: float) -> pl.Expr:
    """An age from the elderly bands (:data:`ELDER_BANDS`), none below ``lo``."""
    band = rng.u(f"{stream}:band", idx)
    x = rng.u(f"{stream}:x", idx)
    pairs, cum = [], 0.0
    for p, a, b in ELDER_BANDS:
        cum += p
        pairs.append((band < cum, max(a, lo) + x * (b - max(a, lo))))
    return cases(pairs, pl.lit(ELDER_BANDS[-1][2] - 1.0))


def households(rng: Rng, count: int) -> pl.DataFrame:
    """``count`` households with type, community, surname and the head's age and sex."""
    types = type_table()
    weights = [t[1] for t in HOUSEHOLD_TYPES]
    n_comm = len(COMMUNITIES)
    hh = (
        pl.DataFrame({"_hh": pl.int_range(count, eager=True, dtype=pl.Int64)})
        .with_columns(htype=rng.pick("hh:type", types["htype"].to_list(), weights, "_hh"))
        .join(types, on="htype", how="left", maintain_order="left")
        .with_columns(
            head_age=pl.when(pl.col("elder"))
            .then(elder_age(rng, "hh:elder", "_hh", 65.0))
            .otherwise(rng.uniform("hh:age", pl.col("a_lo"), pl.col("a_hi"), "_hh")),
            head_male=rng.u("hh:male", "_hh") < pl.col("p_male"),
            surname=rng.pick(
                "hh:surname", [s for s, _ in SURNAMES], [w for _, w in SURNAMES], "_hh"
            ),
            comm=(rng.u("hh:comm", "_hh").pow(1.25) * n_comm).floor().cast(pl.Int64),
            away=rng.chance("hh:away", 0.03, "_hh"),
            away_district=rng.pick("hh:district", OTHER_DISTRICTS, None, "_hh"),
            away_comm=rng.integer("hh:away_comm", 1, 20, "_hh"),
        )
        .with_columns(
            # the generation between grandparents and grandchildren
            gen2_age=pl.col("head_age") - 22 - rng.u("hh:gen2", "_hh") * 12,
            hukou_district=pl.when(pl.col("away"))
            .then(pl.col("away_district"))
            .otherwise(pl.lit(DISTRICT)),
            hukou_community=pl.when(pl.col("away"))
            .then(
                pl.concat_str(
                    [pl.col("away_district"), pl.col("away_comm").cast(pl.String).str.zfill(3)]
                )
            )
            .otherwise(pl.lit(pl.Series(COMMUNITIES)).gather(pl.col("comm"))),
        )
    )
    return hh.drop("a_lo", "a_hi", "elder", "p_male", "comm", "away", "away_district", "away_comm")


def _members(hh: pl.DataFrame, n: int) -> pl.DataFrame:
    """Expand households into their first ``n`` members (the last household may be cut)."""
    return (
        hh.join(slot_table(), on="htype", how="left")
        .sort("_hh", "_slot")
        .head(n)
        .with_columns(_pk=pl.int_range(pl.len(), dtype=pl.Int64))
    )


def _ages_and_sexes(rng: Rng, m: Month, people: pl.DataFrame) -> pl.DataFrame:
    role = pl.col("role")
    head = pl.col("head_age")
    offset = 22 + rng.u("p:childgap") * (pl.min_horizontal(head, pl.lit(38.0)) - 22)
    gc_gap = 22 + rng.u("p:gcgap") * (pl.min_horizontal(pl.col("gen2_age"), pl.lit(34.0)) - 22)
    age = (
        pl.when(role == "head")
        .then(head)
        .when(role == "spouse")
        .then(pl.max_horizontal(head + rng.uniform("p:sp", -6, 4), pl.lit(20.0)))
        .when(role == "child")
        .then(head - offset)
        .when(role == "gen2")
        .then(pl.col("gen2_age"))
        .when(role == "parent")
        .then(pl.min_horizontal(head + rng.uniform("p:par", 22, 32), pl.lit(103.0)))
        .when(role == "grandchild")
        .then(pl.col("gen2_age") - gc_gap)
        .when(role == "orphan")
        .then(rng.uniform("p:orph", 1, 18))
        .otherwise(rng.uniform("p:other", 18, 80))
    )
    male = (
        pl.when(role == "head")
        .then(pl.col("head_male"))
        .when(role == "spouse")
        .then(~pl.col("head_male"))
        .when(role == "parent")
        .then(rng.chance("p:parsex", 0.4))
        .otherwise(rng.chance("p:sex", 0.515))
    )
    # whole years from the role, the day within the year at random (no spikes at clamps)
    age_days = (age.floor() * YEAR + rng.u("p:day") * 364).floor()
    return people.with_columns(
        sex=pl.when(male).then(pl.lit("M")).otherwise(pl.lit("F")),
        birth=(pl.lit(days(m.start)) - 1 - age_days).cast(pl.Int32).cast(pl.Date),
        region=rng.pick("p:region", [r for r, _ in BIRTH_REGIONS], [w for _, w in BIRTH_REGIONS]),
    )


def given_name(rng: Rng, stream: str, idx: str = "_pk") -> pl.Expr:
    """A given name fitting the person's sex and birth year (columns ``sex``, ``birth``)."""
    keys = sorted(GIVEN)
    pool = [g for k in keys for g in GIVEN[k]]
    offsets, lengths, at = [], [], 0
    for k in keys:
        offsets.append(at)
        lengths.append(len(GIVEN[k]))
        at += len(GIVEN[k])
    year = pl.col("birth").dt.year()
    gen = pl.when(year < 1965).then(0).when(year < 1995).then(1).otherwise(2)
    key = pl.when(pl.col("sex") == "F").then(0).otherwise(3) + gen  # keys sort F before M
    off = pl.lit(pl.Series(offsets)).gather(key)
    length = pl.lit(pl.Series(lengths)).gather(key)
    pos = off + (rng.u(stream, idx) * length).floor().cast(pl.Int64)
    return pl.lit(pl.Series(pool)).gather(pos)


def _names(rng: Rng, people: pl.DataFrame) -> pl.DataFrame:
    own_surname = rng.pick("p:surname", [s for s, _ in SURNAMES], [w for _, w in SURNAMES])
    keeps_family_name = pl.col("role").is_in(["head", "child", "gen2", "grandchild", "orphan"]) | (
        (pl.col("role") == "parent") & (pl.col("sex") == "M")
    )
    surname = pl.when(keeps_family_name).then(pl.col("surname")).otherwise(own_surname)
    return people.with_columns(name=pl.concat_str([surname, given_name(rng, "p:given")]))


def _parents(rng: Rng, people: pl.DataFrame) -> pl.DataFrame:
    """Father and mother: a member's ``_pk``, an external parent to create, or unknown.

    Members are numbered consecutively in slot order, so the head of a household is at
    ``_pk - _slot`` and the other fixed roles at known distances from it.
    """
    n = people.height
    head_pk = pl.col("_pk") - pl.col("_slot")
    has = {
        role: pl.col("htype").is_in([t[0] for t in HOUSEHOLD_TYPES if role in t[4]])
        for role in ("spouse", "gen2", "parent")
    }
    at = {"spouse": 1, "gen2": 2, "parent": 3}

    def member(role: str) -> pl.Expr:
        pk = head_pk + at[role]
        return pl.when(has[role] & (pk < n)).then(pk)

    def sex_at(pk: pl.Expr) -> pl.Expr:
        return pl.col("sex").gather(pk.fill_null(0).clip(0, n - 1))

    people = people.with_columns(
        head_pk=head_pk,
        spouse_pk=member("spouse"),
        gen2_pk=member("gen2"),
        parent_pk=member("parent"),
    ).with_columns(
        head_sex=sex_at(pl.col("head_pk")),
        gen2_sex=pl.when(pl.col("gen2_pk").is_not_null()).then(sex_at(pl.col("gen2_pk"))),
        parent_sex=pl.when(pl.col("parent_pk").is_not_null()).then(sex_at(pl.col("parent_pk"))),
    )
    role = pl.col("role")
    missing_parent = rng.pick("p:absent", ["ext_alive", "ext_dead", None], [60, 15, 25])
    other_side = rng.pick("p:gcother", ["ext_alive", None], [70, 30])
    case = rng.integer("p:orphan_case", 0, sum(c[0] for c in ORPHAN_CASES) - 1)
    cum, fa_pairs, mo_pairs = 0, [], []
    for w, fa, mo in ORPHAN_CASES:
        cum += w
        fa_pairs.append((case < cum, pl.lit(fa, pl.String)))
        mo_pairs.append((case < cum, pl.lit(mo, pl.String)))
    orphan_fa, orphan_mo = cases(fa_pairs), cases(mo_pairs)
    is_child = role.is_in(["child", "gen2"])
    head_m = pl.col("head_sex") == "M"
    father_member = cases(
        [
            (is_child & head_m, pl.col("head_pk")),
            (is_child, pl.col("spouse_pk")),
            ((role == "grandchild") & (pl.col("gen2_sex") == "M"), pl.col("gen2_pk")),
            ((role == "head") & (pl.col("parent_sex") == "M"), pl.col("parent_pk")),
        ]
    )
    mother_member = cases(
        [
            (is_child & ~head_m, pl.col("head_pk")),
            (is_child, pl.col("spouse_pk")),
            ((role == "grandchild") & (pl.col("gen2_sex") == "F"), pl.col("gen2_pk")),
            ((role == "head") & (pl.col("parent_sex") == "F"), pl.col("parent_pk")),
        ]
    )

    def kind(member: pl.Expr, orphan: pl.Expr) -> pl.Expr:
        return cases(
            [
                (member.is_not_null(), pl.lit("member")),
                (is_child, missing_parent),
                (role == "grandchild", other_side),
                (role == "orphan", orphan),
            ],
            pl.lit(None, pl.String),
        )

    return people.with_columns(father_pk=father_member, mother_pk=mother_member).with_columns(
        fa_kind=kind(pl.col("father_pk"), orphan_fa), mo_kind=kind(pl.col("mother_pk"), orphan_mo)
    )


def _externals(rng: Rng, m: Month, people: pl.DataFrame, n_strangers: int) -> pl.DataFrame:
    """Parents outside the registry, plus strangers who only appear in death reports; their
    ``_pk`` continue after the registered persons'."""
    base = people.height
    sides = [
        people.filter(pl.col(kind).str.starts_with("ext_")).select(
            child_pk=pl.col("_pk"),
            side=pl.lit(side),
            sex=pl.lit(sex),
            fate=pl.col(kind).str.strip_prefix("ext_"),
            child_birth=pl.col("birth"),
        )
        for side, kind, sex in (("father", "fa_kind", "M"), ("mother", "mo_kind", "F"))
    ]
    parents = (
        pl.concat(sides)
        .sort("child_pk", "side")
        .with_columns(_pk=base + pl.int_range(pl.len(), dtype=pl.Int64))
        .with_columns(
            birth=(
                pl.col("child_birth").cast(pl.Int32)
                - (rng.uniform("x:gap", 21, 40) * YEAR).floor().cast(pl.Int32)
            ).cast(pl.Date)
        )
    )
    first = base + parents.height
    strangers = pl.DataFrame(
        {"_pk": pl.int_range(first, first + n_strangers, eager=True, dtype=pl.Int64)}
    ).with_columns(
        child_pk=pl.lit(None, pl.Int64),
        side=pl.lit(None, pl.String),
        sex=pl.when(rng.chance("x:sex", 0.5)).then(pl.lit("M")).otherwise(pl.lit("F")),
        fate=pl.lit("stranger"),
        child_birth=pl.lit(None, pl.Date),
        birth=(pl.lit(days(m.start)) - (rng.uniform("x:age", 40, 95) * YEAR).floor())
        .cast(pl.Int32)
        .cast(pl.Date),
    )
    return pl.concat([parents, strangers.select(parents.columns)]).with_columns(
        region=rng.pick("x:region", [r for r, _ in BIRTH_REGIONS], [w for _, w in BIRTH_REGIONS]),
        external=pl.lit(True),
    )


def _hukou_status(rng: Rng, m: Month, people: pl.DataFrame) -> pl.DataFrame:
    """A few percent moved out or cancelled, with dates spread around the month."""
    u = rng.u("p:hukou")
    status = cases(
        [(u < 0.012, pl.lit("moved_out")), (u < 0.017, pl.lit("cancelled"))], pl.lit("normal")
    )
    start, prev = days(m.start), days(m.prev.start)
    when = rng.pick("p:moved_when", ["none", "past", "prev", "start", "month"], [10, 60, 14, 4, 12])
    moved = cases(
        [
            (when == "past", start - rng.integer("p:moved_past", start - prev + 1, 1500)),
            (when == "prev", prev + rng.integer("p:moved_prev", 0, start - prev - 1)),
            (when == "start", pl.lit(start)),
            (when == "month", start + rng.integer("p:moved_month", 1, days(m.end) - start)),
        ]
    )
    return people.with_columns(
        hukou_status=status,
        moved_out_date=pl.when(status != "normal").then(moved).cast(pl.Int32).cast(pl.Date),
    )


def random_people(rng: Rng, m: Month, n: int) -> pl.DataFrame:
    """``n`` registered persons in households, plus the external parents and strangers.

    Columns: ``_pk``, ``_hh``, ``_slot``, ``htype``, ``role``, ``relation``, ``sex``,
    ``birth``, ``region``, ``name``, ``hukou_*``, ``moved_out_date``, ``father_pk``,
    ``mother_pk``, ``external``, ``fate`` (external parents: alive/dead/situation/stranger).
    """
    count = n // 2 + 100
    while True:
        hh = households(rng, count)
        sizes = hh.join(type_table().select("htype", "size"), on="htype")["size"].sum()
        if sizes >= n:
            break
        count *= 2
    people = _members(hh, n)
    people = _ages_and_sexes(rng, m, people)
    people = _names(rng, people)
    people = _parents(rng, people)
    people = _hukou_status(rng, m, people)
    ext = _externals(rng, m, people, max(1, n // 500))
    link = ext.filter(pl.col("child_pk").is_not_null()).select("child_pk", "side", "_pk")
    for side, col in (("father", "father_pk"), ("mother", "mother_pk")):
        ids = link.filter(pl.col("side") == side).select(
            pl.col("child_pk").alias("_pk"), pl.col("_pk").alias(f"{col}_ext")
        )
        people = people.join(ids, on="_pk", how="left", maintain_order="left").with_columns(
            pl.coalesce(col, f"{col}_ext").alias(col)
        )
    people = people.with_columns(
        external=pl.lit(False), fate=pl.lit(None, pl.String), child_birth=pl.lit(None, pl.Date)
    )
    keep = [
        "_pk",
        "_hh",
        "_slot",
        "htype",
        "role",
        "relation",
        "sex",
        "birth",
        "region",
        "name",
        "hukou_district",
        "hukou_community",
        "hukou_status",
        "moved_out_date",
        "father_pk",
        "mother_pk",
        "external",
        "fate",
        "child_birth",
    ]
    ext = ext.with_columns(
        **{c: pl.lit(None, people.schema[c]) for c in keep if c not in ext.columns}
    )
    return pl.concat([people.select(keep), ext.select(keep)])


def check_character_expr(body: pl.Expr) -> pl.Expr:
    """Vectorised GB 11643 check character of a 17-digit string column."""
    total = pl.sum_horizontal(
        [body.str.slice(i, 1).cast(pl.Int32, strict=False) * w for i, w in enumerate(WEIGHTS)]
    )
    return pl.lit(pl.Series(list(CHECK_CHARS))).gather(total % 11)


def _check_character_of_number(body: pl.Expr) -> pl.Expr:
    """The check character of a 17-digit body held as an integer (fast integer arithmetic)."""
    total = pl.sum_horizontal([(body // 10 ** (16 - i)) % 10 * w for i, w in enumerate(WEIGHTS)])
    return pl.lit(pl.Series(list(CHECK_CHARS))).gather(total % 11)


def _rank_within(key: pl.Expr) -> pl.Expr:
    """0-based position of each row among the rows with the same ``key`` (frame sorted by key)."""
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    first = pl.when(key != key.shift(1)).then(row).otherwise(None).fill_null(strategy="forward")
    return row - first.fill_null(0)


def assign_ids(rng: Rng, people: pl.DataFrame, serials: int = 100_000) -> pl.DataFrame:
    """Give everyone a valid, unique resident ID (sequence odd for men) and a household number.

    The 3-digit sequence is the person's rank among people of the same birthplace, birth date
    and sex, so two people never share an ID. Adds ``id_no``, ``id_key`` (the 17-digit body as
    an integer, for sorting), ``household_no`` and ``hh_key`` (the community code followed by
    the household's serial in the community, below `serials`: a city needs a wider number).
    ``people`` must be in ``_pk`` order with ``_pk`` equal to the row number, and households
    numbered from 0 without gaps.
    """
    region = pl.col("region").cast(pl.Int64)
    birth = pl.col("birth")
    ymd = (
        birth.dt.year().cast(pl.Int64) * 10_000
        + birth.dt.month().cast(pl.Int64) * 100
        + birth.dt.day().cast(pl.Int64)
    )
    male = (pl.col("sex") == "M").cast(pl.Int64)
    keys = (
        people.select("_pk", _date=region * 100_000_000 + ymd, _male=male)
        .with_columns(_group=pl.col("_date") * 2 + pl.col("_male"))
        .sort("_group", "_pk")
        .with_columns(
            _rank=_rank_within(pl.col("_group")),
            _start=rng.integer("id:seq", 0, 494, pl.col("_group")),
        )
        .select(
            "_pk",
            id_key=pl.col("_date") * 1000
            + 2 * ((pl.col("_rank") + pl.col("_start")) % 495)
            + 2
            + pl.col("_male"),
        )
        .sort("_pk")
        .with_columns(
            id_no=pl.concat_str(
                [pl.col("id_key").cast(pl.String), _check_character_of_number(pl.col("id_key"))]
            )
        )
    )
    homes = (
        people.filter(pl.col("_hh").is_not_null())
        .select("_hh", "hukou_community")
        .unique("_hh", keep="first")
        .with_columns(_comm=pl.col("hukou_community").cast(pl.Int64))
        .sort("_comm", "_hh")
        .with_columns(_serial=_rank_within(pl.col("_comm")) + 1)
        .sort("_hh")
    )
    if homes.height and int(homes["_serial"].max() or 0) >= serials:
        raise ValueError(f"more than {serials - 1} households in one community")
    homes = homes.select("_hh", hh_key=pl.col("_comm") * serials + pl.col("_serial"))
    if (
        not (people["_pk"] == pl.int_range(people.height, eager=True)).all()
        or not (homes["_hh"] == pl.int_range(homes.height, eager=True)).all()
    ):
        raise ValueError("people and households must be numbered from 0 without gaps")
    hh_idx = pl.col("_hh").fill_null(0)
    return people.with_columns(
        id_no=keys["id_no"],
        id_key=keys["id_key"],
        hh_key=pl.when(pl.col("_hh").is_not_null()).then(pl.lit(homes["hh_key"]).gather(hh_idx)),
    ).with_columns(household_no=pl.col("hh_key").cast(pl.String))
