"""Alembic environment for the ledger.

Used programmatically by :meth:`benefits.ledger.db.Database.migrate`, which hands over an
open connection. To add a revision after changing ``models.py`` (then set
``db.SCHEMA_REVISION`` to the new id; a test checks they agree):

    from alembic import command
    from benefits.ledger.db import Database, alembic_config
    Database("sqlite:///dev.sqlite").migrate()
    command.revision(alembic_config(url="sqlite:///dev.sqlite"), message="add x",
                     autogenerate=True, rev_id="0002_add_x")

A revision is frozen at the schema it creates: it declares its tables and columns itself and
imports no models (tests/ledger/test_ledger_migrations.py checks both). ``target_metadata`` is
today's models, every package's, so autogenerate compares against all of them.
"""

from __future__ import annotations

from importlib import import_module

from alembic import context

from benefits.ledger.db import VERSION_TABLE, make_engine, resolve_url
from benefits.ledger.models import Base

config = context.config
# Every package's tables are declared on the ledger's metadata; load today's models of all.
MODEL_MODULES = ("benefits.ledger.models", "benefits.web.models", "benefits.cycle.models")
for _module in MODEL_MODULES:
    import_module(_module)


def _configure_and_run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Run migrations on the given connection, or on a fresh engine for the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = resolve_url(
        config.get_main_option("sqlalchemy.url")
        or context.get_x_argument(as_dictionary=True).get("url")
    )
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():  # pragma: no cover - SQL scripts are not part of the workflow
    raise SystemExit("the ledger's migrations run online only (benefits ledger init)")
run()
