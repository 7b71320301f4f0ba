"""Migrations agree with the models, money is exact on both backends, URLs resolve."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, inspect, select

from benefits.cycle import models as cycle_models
from benefits.ledger import Ledger
from benefits.ledger.db import SCHEMA_REVISION, VERSION_TABLE, head_revision, resolve_url
from benefits.ledger.models import Base
from benefits.ledger.money import Money, parse_amount
from benefits.web import models as web_models


def test_schema_revision_constant_is_the_newest_migration() -> None:
    assert head_revision() == SCHEMA_REVISION


def test_migrations_match_models_and_downgrade_cleanly(ledger: Ledger) -> None:
    """Head's schema is today's models of every package (the migrations import none)."""
    assert {cycle_models.CycleMonth.__tablename__, web_models.WebUser.__tablename__} <= set(
        Base.metadata.tables
    )
    with ledger.db.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        diff = [d for d in compare_metadata(ctx, Base.metadata)
                if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]  # fmt: skip
    assert diff == []
    assert ledger.init() == SCHEMA_REVISION  # idempotent
    ledger.db.downgrade("base")
    with ledger.db.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {VERSION_TABLE}
    assert ledger.init() == SCHEMA_REVISION
    assert ledger.verify_audit().ok


def test_money_is_exact_in_the_database(ledger: Ledger) -> None:
    meta = MetaData()
    t = Table("money_probe", meta, Column("id", Integer, primary_key=True), Column("v", Money()))
    meta.create_all(ledger.db.engine)
    values = ["0.10", "0.10", "0.10", "999999999999.99", "-459.00", "0.01"]
    with ledger.db.engine.begin() as conn:
        conn.execute(insert(t), [{"v": parse_amount(v)} for v in values])
        got = [r[0] for r in conn.execute(select(t.c.v).order_by(t.c.id))]
        total = conn.execute(select(func.sum(t.c.v))).scalar_one()
    assert got == [Decimal(v) for v in values]
    assert all(isinstance(v, Decimal) for v in got)
    assert total == sum(Decimal(v) for v in values) == Decimal("999999999541.30")
    with pytest.raises(Exception, match="more than two decimals"), ledger.db.engine.begin() as c:
        c.execute(insert(t), [{"v": Decimal("0.001")}])
    meta.drop_all(ledger.db.engine)


def test_resolve_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENEFITS_DATABASE_URL", raising=False)
    assert resolve_url() == "sqlite:///benefits.sqlite"
    monkeypatch.setenv("BENEFITS_DATABASE_URL", "postgresql://u@h:5432/db")
    assert resolve_url() == "postgresql+psycopg://u@h:5432/db"
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
