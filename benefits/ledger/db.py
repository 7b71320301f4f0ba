"""Database access: which database, engines tuned per backend, transactions, migrations.

The default is a SQLite file ``benefits.sqlite`` in the working directory; set
``BENEFITS_DATABASE_URL`` (or pass a URL) for PostgreSQL, e.g.
``postgresql+psycopg://ledger@db.example/benefits``. Plain ``postgresql://`` URLs are taken
to mean psycopg 3.

Example:
    >>> resolve_url("postgres://u@h/db")
    'postgresql+psycopg://u@h/db'
    >>> db = Database("sqlite:///:memory:")   # doctest: +SKIP
    >>> db.migrate()                          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from benefits.ledger.clock import Clock, as_utc, utc_now
from benefits.ledger.errors import NotInitialised
from benefits.ledger.sealed import attach_keys

if TYPE_CHECKING:  # Alembic is imported only when migrating: it is slow to import.
    from alembic.config import Config

    from benefits.keys import KeyRing

ENV_URL = "BENEFITS_DATABASE_URL"
DEFAULT_URL = "sqlite:///benefits.sqlite"
VERSION_TABLE = "ledger_alembic_version"
# The newest migration in migrations/versions (a test checks they agree). Compared with the
# database's version on first use, without importing Alembic.
SCHEMA_REVISION = "0012_held_kind_indexes"
SQLITE_BUSY_SECONDS = 60


def resolve_url(url: str | None = None) -> str:
    """The database URL: the argument, else ``$BENEFITS_DATABASE_URL``, else the SQLite file.

    >>> resolve_url("sqlite:///x.sqlite")
    'sqlite:///x.sqlite'
    """
    value = url or os.environ.get(ENV_URL) or DEFAULT_URL
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite gets foreign keys, WAL, a busy timeout and BEGIN IMMEDIATE.

    BEGIN IMMEDIATE makes every SQLite write transaction take the write lock up front, so two
    processes never both read then both try to write (the source of SQLITE_BUSY deadlocks);
    they queue instead, and the busy timeout lets them wait. Read-only transactions (execution
    option ``ledger_read_only``) use a plain BEGIN: in WAL mode they read a snapshot and
    neither wait for writers nor block them.
    """
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")
        if make_url(url).database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get("ledger_read_only")
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for the ledger's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "benefits.ledger:migrations")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration revision in the package (read by Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def migrations_path() -> str:
    """Filesystem path of the migrations folder (for `alembic revision` by developers)."""
    return str(resources.files("benefits.ledger") / "migrations")


class Database:
    """An engine, a session factory and the injectable clock, for one ledger database.

    Example:
        >>> db = Database("sqlite:///ledger.sqlite")       # doctest: +SKIP
        >>> with db.transaction() as session:                # doctest: +SKIP
        ...     session.execute(...)
    """

    def __init__(
        self, url: str | None = None, *, clock: Clock | None = None, engine: Engine | None = None
    ) -> None:
        self.url = resolve_url(url) if engine is None else engine.url.render_as_string(False)
        self.engine = engine if engine is not None else make_engine(self.url)
        self.clock: Clock = clock or utc_now
        info = {"ledger_database": self}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        snapshot: dict[str, Any] = {"ledger_read_only": True}
        if self.engine.dialect.name == "postgresql":
            snapshot |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        self.read_sessions = sessionmaker(
            self.engine.execution_options(**snapshot), expire_on_commit=False, info=info
        )
        self._ready = False
        self._keys: KeyRing | None = None
        attach_keys(self.engine.dialect, lambda: self.keys)  # sealed columns read with them

    @property
    def keys(self) -> KeyRing:
        """The ledger's keys (``$BENEFITS_KEY_FILE``, ``BENEFITS_KEY_*``, or the development
        key file beside a SQLite ledger), read once."""
        if self._keys is None:
            from benefits.keys import ledger_keys

            self._keys = ledger_keys(self.url)
        return self._keys

    def ensure_keys(self) -> KeyRing:
        """The keys, writing the development key file beside a SQLite ledger when none is
        configured; MissingKey when the audit chain's key is still missing."""
        from benefits.keys import ledger_keys

        self._keys = ledger_keys(self.url, create=True)
        self._keys.current("audit_hmac")
        return self._keys

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def now(self) -> Any:
        """The clock's current time as an aware UTC datetime."""
        return as_utc(self.clock())

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        self.require_ready()
        with self.sessions.begin() as session:
            yield session

    def analyze(self, *tables: str) -> None:
        """After a bulk write, fresh planner statistics for `tables` (PostgreSQL; a no-op on
        SQLite): a city's million rows written in one transaction would otherwise be planned
        with the statistics of the empty table until autovacuum comes by — the held page and
        the alerts inbox took 0.35–0.55 s instead of ~30 ms at 1.2 million items."""
        if self.dialect != "postgresql":
            return
        with self.engine.connect() as conn:
            for table in tables:
                conn.execute(text(f'ANALYZE "{table}"'))
            conn.commit()

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only session on one consistent snapshot (totals, listings, audit verify).

        On PostgreSQL a REPEATABLE READ READ ONLY transaction; on SQLite a deferred one.
        """
        self.require_ready()
        with self.read_sessions.begin() as session:
            yield session

    def current_revision(self) -> str | None:
        """The migration revision the database is at (None when never initialised)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()

    def require_ready(self) -> None:
        """Raise NotInitialised unless the schema is at the package's head revision."""
        if self._ready:
            return
        current, head = self.current_revision(), SCHEMA_REVISION
        if current is None:
            raise NotInitialised(
                f"no ledger in {display_url(self.url)}: run `benefits ledger init` first"
            )
        if current != head:
            raise NotInitialised(
                f"the ledger in {display_url(self.url)} is at schema revision {current}, "
                f"this code needs {head}: run `benefits ledger init` to upgrade it"
            )
        self._ready = True

    def migrate(self, revision: str = "head") -> str | None:
        """Upgrade the schema to `revision` (default: the newest); idempotent."""
        from alembic import command

        with self.engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
        self._ready = False
        return self.current_revision()

    def downgrade(self, revision: str = "base") -> str | None:
        """Downgrade the schema to `revision` ('base' drops every ledger table)."""
        from alembic import command

        with self.engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)
        self._ready = False
        return self.current_revision()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
