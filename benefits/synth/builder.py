"""A small builder for hand-written households and their departmental rows.

Rows are kept in the generator's intermediate form (``_pk`` / ``_hh`` references, dates,
money in fen); :meth:`Builder.frames` turns them into frames that line up with the random
part of the district.

Example:
    >>> from benefits.synth.dates import Month, years_before
    >>> b = Builder(Month.parse("2025-01"), Rng(1))
    >>> p = b.alone("F", b.born(85))
    >>> b.assist(p, "dibao")
    >>> b.persons_count(), len(b.rows["assistance"]), len(b.rows["bank_accounts"])
    (1, 1, 1)
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import polars as pl

from benefits.synth.dates import Month, years_before
from benefits.synth.names import BIRTH_REGIONS, COMMUNITIES, DISTRICT, GIVEN, SURNAMES
from benefits.synth.rand import Rng

D = dt.timedelta


class Builder:
    """Collects planted persons and their departmental rows in the intermediate form."""

    def __init__(self, m: Month, rng: Rng) -> None:
        self.m = m
        self.py = rng.python("planted")
        self.people: list[dict[str, Any]] = []
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._next_pk = 0  # numbered from 0 here, moved after the random ones by frames()
        self._next_hh = 0
        self._slots: dict[int, int] = defaultdict(int)

    # ---------------------------------------------------------------- dates

    def born(self, age: int) -> dt.date:
        """A birth date giving ``age`` for ``M`` with no birthday in ``M`` or ``M+1``."""
        return years_before(self.m.start, age) - D(days=self.py.randint(70, 280))

    @staticmethod
    def birthday(age: int, on: dt.date) -> dt.date:
        """The birth date whose ``age``-th birthday falls on ``on``."""
        return years_before(on, age)

    def ago(self, days: int) -> dt.date:
        return self.m.start - D(days=days)

    def after(self, days: int) -> dt.date:
        return self.m.start + D(days=days)

    # ---------------------------------------------------------------- people

    def household(self, district: str = DISTRICT) -> int:
        hh = self._next_hh
        self._next_hh += 1
        self._community = (
            COMMUNITIES[hh % len(COMMUNITIES)]
            if district == DISTRICT
            else f"{district}{hh % 20 + 1:03d}"
        )
        self._district = district
        return hh

    def _name(self, sex: str, birth: dt.date, surname: str | None = None) -> str:
        gen = 0 if birth.year < 1965 else 1 if birth.year < 1995 else 2
        if surname is None:
            surname = self.py.choices([s for s, _ in SURNAMES], [w for _, w in SURNAMES])[0]
        return surname + self.py.choice(GIVEN[(sex, gen)])

    def person(
        self,
        hh: int,
        relation: str,
        sex: str,
        birth: dt.date,
        *,
        father: int | None = None,
        mother: int | None = None,
        status: str = "normal",
        moved_out: dt.date | None = None,
        bank: bool = True,
    ) -> int:
        """A registered person; ``bank`` adds a good 社保卡 account."""
        pk = self._new_pk()
        surname = None
        if father is not None and relation in ("child", "grandchild"):
            surname = next((p["name"][0] for p in self.people if p["_pk"] == father), None)
        row = {
            "_pk": pk, "_hh": hh, "_slot": self._slot(hh), "htype": "planted",
            "role": relation, "relation": relation, "sex": sex, "birth": birth,
            "region": self._region(), "name": self._name(sex, birth, surname),
            "hukou_district": self._district, "hukou_community": self._community,
            "hukou_status": status, "moved_out_date": moved_out,
            "father_pk": father, "mother_pk": mother, "external": False,
        }  # fmt: skip
        self.people.append(row)
        if bank:
            self.bank(pk)
        return pk

    def alone(self, sex: str, birth: dt.date, **kw: Any) -> int:
        """A one-person household."""
        return self.person(self.household(), "head", sex, birth, **kw)

    def external(self, sex: str, birth: dt.date) -> int:
        """A parent known only by ID (not in `persons`)."""
        pk = self._new_pk()
        row = {
            "_pk": pk, "_slot": 0, "role": "ext", "sex": sex, "birth": birth,
            "region": self._region(), "name": self._name(sex, birth), "external": True,
            "fate": "planted",
        }  # fmt: skip
        self.people.append(row)
        return pk

    def persons_count(self) -> int:
        return sum(1 for p in self.people if not p["external"])

    def _new_pk(self) -> int:
        self._next_pk += 1
        return self._next_pk - 1

    def _slot(self, hh: int) -> int:
        self._slots[hh] += 1
        return self._slots[hh] - 1

    def _region(self) -> str:
        return self.py.choices([r for r, _ in BIRTH_REGIONS], [w for _, w in BIRTH_REGIONS])[0]

    # ---------------------------------------------------------------- facts

    def _add(self, table: str, **row: Any) -> None:
        row["_seq"] = len(self.rows[table])
        self.rows[table].append(row)

    def assist(
        self,
        pk: int,
        kind: str,
        approved: dt.date | None = None,
        review: dt.date | None = None,
        hh: int | None = None,
    ) -> None:
        home = hh if hh is not None else next(p["_hh"] for p in self.people if p["_pk"] == pk)
        self._add(
            "assistance",
            _pk=pk,
            _hh=home,
            assistance_type=kind,
            approved_date=approved or self.ago(400),
            next_review_date=review or self.after(200),
        )

    def finance(
        self, hh: int, income: float, assets: float = 12000, on: dt.date | None = None
    ) -> None:
        self._add(
            "household_finance",
            _hh=hh,
            per_capita_income=round(income * 100),
            per_capita_assets=round(assets * 100),
            assessed_on=on or self.ago(100),
        )

    def cert(
        self,
        pk: int,
        category: str,
        grade: int,
        issue: dt.date | None = None,
        expiry: dt.date | None = None,
        status: str = "valid",
    ) -> None:
        issue = issue or self.ago(1000)
        expiry = expiry or issue.replace(year=issue.year + 10)
        self._add(
            "disability_certificates",
            _pk=pk,
            category=category,
            grade=grade,
            issue_date=issue,
            expiry_date=expiry,
            status=status,
        )

    def care(self, pk: int, level: str, on: dt.date, institution: bool = False) -> None:
        self._add(
            "care_assessments",
            _pk=pk,
            care_level=level,
            assessed_on=on,
            institution_resident=institution,
        )

    def pension(
        self,
        pk: int,
        kind: str,
        status: str,
        years: float,
        retired: dt.date | None = None,
        monthly: float | None = None,
    ) -> None:
        self._add(
            "pensions",
            _pk=pk,
            pension_type=kind,
            status=status,
            retire_date=retired,
            monthly_pension=None if monthly is None else round(monthly * 100),
            contribution_years=round(years * 100),
        )

    def death(self, pk: int, on: dt.date, source: str = "police") -> None:
        self._add("deaths", _pk=pk, death_date=on, source=source)

    def situation(self, pk: int, what: str, start: dt.date, end: dt.date | None = None) -> None:
        self._add("parent_situations", _pk=pk, situation=what, start_date=start, end_date=end)

    def health(self, pk: int, condition: str, on: dt.date, end: dt.date | None = None) -> None:
        self._add("health_conditions", _pk=pk, condition=condition, diagnosed_on=on, end_date=end)

    def spend(self, pk: int, months_back: Iterable[int], yuan: float) -> None:
        """Out-of-pocket spending of ``yuan`` in each month ``M−k`` for k in ``months_back``."""
        for k in months_back:
            self._add(
                "medical_expenses",
                _pk=pk,
                month=self.m.shift(-k).label,
                out_of_pocket=round(yuan * 100),
            )

    def bank(
        self, pk: int, status: str = "open", active: bool = True, name: str | None = None
    ) -> None:
        digits = "".join(str(self.py.randint(0, 9)) for _ in range(15))
        self._add(
            "bank_accounts",
            _pk=pk,
            account_no="6228" + digits,
            account_name=name,
            financial_active=active,
            status=status,
        )

    # ---------------------------------------------------------------- output

    def frames(
        self, schemas: dict[str, pl.Schema], pk_base: int, hh_base: int
    ) -> dict[str, pl.DataFrame]:
        """The planted rows of every table with the given intermediate schemas, persons and
        households renumbered to follow the random ones (from ``pk_base`` / ``hh_base``)."""
        shift = {"_pk": pk_base, "father_pk": pk_base, "mother_pk": pk_base, "_hh": hh_base}
        out = {}
        for table, schema in schemas.items():
            rows = self.people if table == "people" else self.rows.get(table, [])
            df = pl.DataFrame(rows, schema=schema)
            out[table] = df.with_columns(pl.col(c) + b for c, b in shift.items() if c in schema)
        return out
