"""Deterministic synthetic districts in the data contract's format (``benefits synth``).

A district is a random population — households of realistic types in the 43 communities of
西湖区 (330106), about 2.5 persons each, Chinese names, resident IDs that agree with birth date
and sex — with the facts every department would deliver about it, dated around the benefit
month ``M``, plus a set of planted households that put each policy, exclusion and alert of the
handbook on the table whatever the size. A fraction ``dirty`` of rows is then corrupted with
every kind of bad value the contract names.

Everything is drawn from counter-based random streams keyed by ``seed``, built column-wise
with Polars: the same arguments give byte-identical files, and a million persons take seconds.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     counts = generate(persons=400, seed=1, out=Path(tmp), dirty=0)
    >>> counts["persons"]
    400
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from benefits.schema import TABLE_ORDER
from benefits.synth import facts as F
from benefits.synth import health as H
from benefits.synth.chunked import CHUNKED_ABOVE, generate_chunked
from benefits.synth.dates import Month
from benefits.synth.dirty import corrupt
from benefits.synth.output import ENCODINGS, contract_tables, shuffle_columns, write_table
from benefits.synth.planted import Builder, plant_all
from benefits.synth.population import assign_ids, random_people
from benefits.synth.rand import Rng

__all__ = ["generate"]

FORMATS = ("csv", "parquet")


def generate(
    persons: int,
    seed: int,
    out: Path,
    month: str = "2025-01",
    dirty: float = 0.01,
    fmt: str = "csv",
    encoding: str = "utf-8",
    workers: int | None = None,
) -> dict[str, int]:
    """Write a deterministic synthetic district into `out`; return rows written per table.

    One file per table of the data contract. ``persons`` is the number of registered persons
    (before duplicated rows); ``month`` the benefit month the delivery is for (``YYYY-MM``);
    ``dirty`` the fraction of rows to corrupt (0 gives clean files); ``fmt`` ``csv`` or
    ``parquet`` (text columns); ``encoding`` of CSV files ``utf-8``, ``utf-8-sig`` (with BOM) or
    ``gbk``. A file of the other format for the same table, left from an earlier run, is
    removed (the sweep refuses both). Districts above a million persons are generated in
    chunks by `workers` processes (default: one per core); the files do not depend on
    `workers` (:mod:`benefits.synth.chunked`).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     n = generate(1000, seed=7, out=Path(tmp), month="2025-03", fmt="parquet")
        >>> sorted(n)[:3], n["persons"] >= 1000
        (['assistance', 'bank_accounts', 'care_assessments'], True)
    """
    if persons < 1:
        raise ValueError("persons must be at least 1")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    if not 0 <= dirty <= 0.5:
        raise ValueError("dirty must be between 0 and 0.5")
    m = Month.parse(month)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if persons > CHUNKED_ABOVE:
        return generate_chunked(persons, seed, out, month, dirty, fmt, encoding, workers)
    rng = Rng(seed)
    people, facts = _district(rng, m, persons)
    tables = contract_tables(people, facts)
    counts: dict[str, int] = {}
    other = "parquet" if fmt == "csv" else "csv"
    for name in TABLE_ORDER:
        df = shuffle_columns(name, tables[name], rng)
        df = corrupt(name, df, rng, dirty).drop("_planted")
        (out / f"{name}.{other}").unlink(missing_ok=True)
        write_table(df, out, name, fmt, encoding)
        counts[name] = df.height
    return counts


def _district(rng: Rng, m: Month, persons: int) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """All people (registered and external, with IDs) and every table in intermediate form."""
    people, facts = district_without_ids(rng, m, persons)
    return assign_ids(rng, people), facts


def district_without_ids(
    rng: Rng, m: Month, persons: int, plant: bool = True
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """All people (registered and external, before IDs) and every table in intermediate form;
    the planted households are added when `plant` and the district is big enough for them."""
    builder = Builder(m, rng)
    plant_all(builder)
    planted = plant and builder.persons_count() * 3 <= persons  # small: random people only
    n_random = persons - builder.persons_count() if planted else persons
    people = random_people(rng, m, n_random)
    pop = F.with_status(rng, F.population(people, m))
    pensions = F.pensions(rng, m, pop)
    enterprise = pensions.filter(
        (pl.col("pension_type") == "enterprise_employee")
        & pl.col("status").is_in(["active", "contributing"])
    ).select("_pk", ent=pl.lit(1.0))
    deaths = F.deaths(rng, m, pop, people, enterprise)
    people = F.cancel_dead(people, deaths, m)
    facts = {
        "deaths": deaths,
        "assistance": F.assistance(rng, m, pop),
        "household_finance": F.household_finance(rng, m, pop),
        "disability_certificates": H.disability_certificates(rng, m, pop),
        "pensions": pensions,
        "care_assessments": H.care_assessments(rng, m, pop),
        "parent_situations": H.parent_situations(rng, m, people, pop),
        "health_conditions": H.health_conditions(rng, m, pop),
        "medical_expenses": H.medical_expenses(rng, m, pop),
        "bank_accounts": F.bank_accounts(rng, pop),
    }
    people = people.with_columns(_planted=pl.lit(False))
    facts = {k: v.with_columns(_planted=pl.lit(False)) for k, v in facts.items()}
    if planted:
        schemas = {"people": people.drop("_planted").schema}
        schemas.update({k: v.drop("_planted").schema for k, v in facts.items()})
        extra = builder.frames(schemas, people.height, int(people["_hh"].max() or 0) + 1)
        extra = {k: v.with_columns(_planted=pl.lit(True)) for k, v in extra.items()}
        people = pl.concat([people, extra["people"]])
        facts = {k: pl.concat([v, extra[k]]) for k, v in facts.items()}
    return people, facts
