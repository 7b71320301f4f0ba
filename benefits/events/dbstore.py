"""The month's facts in a database (PostgreSQL for a city, SQLite for tests and towns).

The in-memory :class:`benefits.events.store.Store` holds every row of the delivery; at city
scale that is tens of GiB and minutes of start-up. :class:`DbStore` keeps the rows, the
decisions before each event and the applied event ids in a database instead, loaded once a
month from the delivery and the sweep's evaluation of it, a partition at a time
(:mod:`benefits.events.storeload`, through :meth:`DbStore.loading` — ``COPY`` on PostgreSQL)
— and, per event, reads the rows of the households the event can touch into a small
in-memory :class:`Store` (:meth:`DbTransaction.working`), so that the planners, reactions and
facts run unchanged on it. What the event changed is written back in the same transaction as
its event id, under a store-wide lock: the same event applied twice, or by two processes
sharing the store, changes nothing the second time.

The store has its own tables (no ledger migration): on PostgreSQL in its own schema (default
``events_store``), on SQLite in its own file. Each row keeps the contract's columns as a JSON
list; ``key`` is the table's index column (tables.yaml), ``hh`` a person's household number,
``ref1``/``ref2`` a person's father and mother (children lookups) or a certificate's number.

Example:
    >>> db = DbStore.connect("postgresql://postgres@127.0.0.1:5432/test")  # doctest: +SKIP
    >>> with db.loading("2025-01") as load:                                  # doctest: +SKIP
    ...     load.rows("persons", table, frame)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import polars as pl

from benefits.errors import BenefitsError
from benefits.events.decide import Alert, Entitlement, PersonOutcome
from benefits.events.store import Store, records
from benefits.schema import Table

SCHEMA_VERSION = 1
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CHUNK = 5_000
COPY_SLICE = 50_000  # rows per CSV slice written to COPY


class StoreError(BenefitsError):
    """The event store cannot be used (not loaded, another month, bad URL)."""


def _ddl(q: str, kind: str) -> list[str]:
    key = ", PRIMARY KEY (tbl, row_no)" if kind == "sqlite" else ""  # PostgreSQL: after the load
    return [
        f"CREATE TABLE {q}meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE {q}next_row (tbl TEXT PRIMARY KEY, next_row INTEGER NOT NULL)",
        f"CREATE TABLE {q}rows (tbl TEXT NOT NULL, row_no INTEGER NOT NULL, key TEXT, "
        f"hh TEXT, ref1 TEXT, ref2 TEXT, data TEXT NOT NULL{key})",
        f"CREATE TABLE {q}outcomes (id_no TEXT PRIMARY KEY, data TEXT NOT NULL)",
        f"CREATE TABLE {q}static_alerts (id_no TEXT NOT NULL, data TEXT NOT NULL)",
        f"CREATE TABLE {q}applied (event_id TEXT PRIMARY KEY, digest TEXT NOT NULL, "
        "seq INTEGER NOT NULL, person TEXT, remembered INTEGER NOT NULL)",
    ]


def _indexes(q: str, p: str) -> list[str]:
    return [
        f"CREATE INDEX {p}rows_key ON {q}rows (key, tbl)",
        f"CREATE INDEX {p}rows_hh ON {q}rows (hh) WHERE hh IS NOT NULL",
        f"CREATE INDEX {p}rows_ref1 ON {q}rows (ref1) WHERE ref1 IS NOT NULL",
        f"CREATE INDEX {p}rows_ref2 ON {q}rows (ref2) WHERE ref2 IS NOT NULL",
        f"CREATE INDEX {p}static_id ON {q}static_alerts (id_no)",
        f"CREATE INDEX {p}applied_person ON {q}applied (person, seq) WHERE remembered = 1",
        f"CREATE UNIQUE INDEX {p}applied_seq ON {q}applied (seq)",
    ]


# ------------------------------------------------------------------------------ row codec
def encode_row(rec: Any) -> str:
    """A store record's columns (without its row number) as JSON (dates ISO)."""
    return json.dumps(
        [v.isoformat() if isinstance(v, dt.date) else v for v in rec[1:]],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def row_fields(table: str, t: Table, rec: Any) -> tuple[Any, ...]:
    """(key, hh, ref1, ref2) of a record: the lookups an event needs."""
    key = getattr(rec, t.index) if t.index else None
    if table == "persons":
        return rec.id_no, rec.household_no, rec.father_id_no, rec.mother_id_no
    if table == "disability_certificates":
        return key, None, rec.cert_no, None
    return key, None, None, None


def _decoder(t: Table) -> list[int]:
    return [i for i, c in enumerate(t.columns) if c.kind == "date"]


def encode_outcome(o: PersonOutcome) -> str:
    """A person's decisions (entitlements and alerts) as JSON."""
    return json.dumps(
        {
            "h": o.household_no, "c": o.community, "n": o.name, "a": o.account_no,
            "e": [[e.policy_id, e.mode, e.amount_fen, e.held, e.hold_reason, e.number]
                  for e in o.entitlements.values()],
            "l": [_alert(a) for a in o.alerts],
        },
        ensure_ascii=False, separators=(",", ":"),
    )  # fmt: skip


def _alert(a: Alert) -> list[Any]:
    return [a.id_no, a.kind, a.policy_id, a.due_date.isoformat() if a.due_date else None,
            a.message, a.holds, a.rule_id, a.party, a.subject, a.fingerprint]  # fmt: skip


def decode_alert(v: list[Any]) -> Alert:
    """The :class:`Alert` of :func:`_alert`'s list."""
    v = list(v)
    v[3] = dt.date.fromisoformat(v[3]) if v[3] else None
    return Alert(*v)


def decode_outcome(id_no: str, text: str) -> PersonOutcome:
    """The :class:`PersonOutcome` of :func:`encode_outcome`'s JSON."""
    d = json.loads(text)
    out = PersonOutcome(id_no, d["h"], d["c"], d["n"], d["a"])
    for e in d["e"]:
        out.entitlements[e[0]] = Entitlement(*e)
    out.alerts = [decode_alert(a) for a in d["l"]]
    return out


# ---------------------------------------------------------------------------- connecting
class DbStore:
    """A connection to one event store (see module doc); :meth:`transaction` per event."""

    def __init__(self, conn: Any, kind: str, schema: str) -> None:
        self.conn = conn
        self.kind = kind  # "postgresql" or "sqlite"
        self.schema = schema
        self.q = f"{schema}." if kind == "postgresql" else ""
        self.tables: dict[str, Table] = {}
        self.record_types: dict[str, type] = {}
        self.lock_key = zlib.crc32(f"benefits.events_store.{schema}".encode())  # advisory lock
        self.committed = False

    @classmethod
    def connect(cls, url: str, schema: str = "events_store") -> DbStore:
        """Open ``postgresql://…`` (tables in `schema`) or ``sqlite:///file`` (its own file)."""
        if not NAME_RE.match(schema):
            raise StoreError(f"event store schema must be a plain lower-case name, got {schema!r}")
        if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            import psycopg

            conninfo = re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql://", url)
            try:
                conn = psycopg.connect(conninfo, autocommit=True)
                # an event's queries are a few index lookups; at a city's size their estimated
                # cost passes jit_above_cost and compiling them took ~80 ms (10 million)
                conn.execute("SET jit = off")
            except psycopg.Error as exc:
                raise StoreError(f"cannot connect to the event store: {exc}".strip()) from exc
            return cls(conn, "postgresql", schema)
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            if not path or path == ":memory:":
                raise StoreError("the event store needs a file: sqlite:///path/to/store.db")
            conn = sqlite3.connect(path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            return cls(conn, "sqlite", schema)
        raise StoreError("event store URL must start with postgresql:// or sqlite:///")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def sql(self, text: str) -> str:
        """`text` with ``?`` placeholders in this driver's style."""
        return text.replace("?", "%s") if self.kind == "postgresql" else text

    def execute(self, text: str, params: Iterable[Any] = ()) -> Any:
        """Run one statement; the cursor (fetch from it)."""
        cur = self.conn.cursor()
        cur.execute(self.sql(text), tuple(params))
        return cur

    def meta(self) -> dict[str, str]:
        """The store's settings (month, rule pack, version); {} when not loaded."""
        try:
            rows = self.execute(f"SELECT name, value FROM {self.q}meta").fetchall()
        except Exception:
            if self.kind == "postgresql":
                self.conn.rollback()
            return {}
        return dict(rows)

    def require(self, month: str, schema: dict[str, Table]) -> None:
        """Refuse a store that is not loaded, or loaded for another month."""
        meta = self.meta()
        if meta.get("complete") != "yes":
            raise StoreError("the event store is not loaded: run `benefits events load-store`")
        if meta.get("month") != month:
            raise StoreError(f"the event store holds {meta.get('month')}, not {month}")
        if meta.get("version") != str(SCHEMA_VERSION):
            raise StoreError("the event store was loaded by another version: load it again")
        self.tables = schema
        self.record_types = records(schema)

    # ------------------------------------------------------------------------------ loading
    @contextmanager
    def loading(self, month: str) -> Iterator[StoreLoad]:
        """(Re)create the store's tables and bulk-load them in one transaction: what the
        block adds through the :class:`StoreLoad` replaces whatever the store held (nothing
        changes when the block fails). Indexes are built at the end."""
        q = self.q
        p = f"{self.schema}_" if self.kind == "sqlite" else ""
        with self._tx(lock=False):
            if self.kind == "postgresql":
                self.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
                self.execute(f"CREATE SCHEMA {self.schema}")
                self.execute("SET LOCAL maintenance_work_mem = '256MB'")
            else:
                for t in ("meta", "next_row", "rows", "outcomes", "static_alerts", "applied"):
                    self.execute(f"DROP TABLE IF EXISTS {t}")
            for stmt in _ddl(q, self.kind):
                self.execute(stmt)
            load = StoreLoad(self)
            yield load
            if self.kind == "postgresql":  # the key built once, after the rows
                self.execute(f"ALTER TABLE {q}rows ADD PRIMARY KEY (tbl, row_no)")
            for stmt in _indexes(q, p):
                self.execute(stmt)
            meta = {"month": month, "version": str(SCHEMA_VERSION), "complete": "yes"}
            for k, v in meta.items():
                self.execute(f"INSERT INTO {q}meta VALUES (?, ?)", (k, v))
        if self.kind == "postgresql":
            self.execute(f"ANALYZE {q}rows")
        else:
            self.execute("ANALYZE")

    def _copy_csv(self, table: str, columns: tuple[str, ...], frame: pl.DataFrame) -> None:
        """PostgreSQL: `frame` into `table` with ``COPY … (FORMAT csv)`` (nulls unquoted
        empty, empty strings quoted: as Polars writes them), a slice at a time."""
        cur = self.conn.cursor()
        text = f"COPY {self.q}{table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
        with cur.copy(text) as copy:
            for start in range(0, frame.height, COPY_SLICE):
                copy.write(frame.slice(start, COPY_SLICE).write_csv(include_header=False))

    def _bulk(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
        n = 0
        if self.kind == "postgresql":
            cur = self.conn.cursor()
            with cur.copy(f"COPY {self.q}{table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
            return n
        marks = ", ".join("?" * len(columns))
        stmt = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                self.conn.executemany(stmt, batch)
                n += len(batch)
                batch = []
        self.conn.executemany(stmt, batch)
        return n + len(batch)

    # --------------------------------------------------------------------------- per event
    @contextmanager
    def _tx(self, *, lock: bool) -> Iterator[None]:
        if self.kind == "postgresql" and not lock:
            with self.conn.transaction():
                yield
            return
        if self.kind == "postgresql":  # one round trip; one event at a time across processes
            self.committed = False
            self.conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({self.lock_key})")
        else:
            self.conn.execute("BEGIN IMMEDIATE" if lock else "BEGIN")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        if not getattr(self, "committed", False):
            self.conn.execute("COMMIT")
        self.committed = False

    @contextmanager
    def transaction(self) -> Iterator[DbTransaction]:
        """One event's transaction, holding the store-wide lock; rolled back on an error."""
        with self._tx(lock=True):
            yield DbTransaction(self)

    def counts(self) -> tuple[int, int]:
        """(persons, households) in the store."""
        row = self.execute(
            f"SELECT count(*), count(DISTINCT hh) FROM {self.q}rows WHERE tbl = 'persons'"
        ).fetchone()
        return int(row[0]), int(row[1])

    def households(self, limit: int | None = None) -> list[str]:
        """Household numbers, sorted (the first `limit`)."""
        text = f"SELECT DISTINCT hh FROM {self.q}rows WHERE hh IS NOT NULL ORDER BY hh"
        if limit is not None:
            text += f" LIMIT {int(limit)}"
        return [r[0] for r in self.execute(text).fetchall()]

    def outcome_rows(self) -> Iterator[tuple[str, str]]:
        """Every person's decisions as (id_no, JSON), by id (for the month's full lists)."""
        cur = self.execute(f"SELECT id_no, data FROM {self.q}outcomes ORDER BY id_no")
        while batch := cur.fetchmany(CHUNK):
            yield from batch

    def static_alerts(self, id_no: str | None = None) -> list[Alert]:
        """Alerts read from quarantined rows (one person's, or all)."""
        text = f"SELECT data FROM {self.q}static_alerts"
        params: tuple[Any, ...] = ()
        if id_no is not None:
            text += " WHERE id_no = ?"
            params = (id_no,)
        return [decode_alert(json.loads(r[0])) for r in self.execute(text, params).fetchall()]


class StoreLoad:
    """Adds a delivery's rows and decisions to a store being loaded (:meth:`DbStore.loading`),
    in as many pieces as wanted (a partition, a table at a time); counts what it added."""

    def __init__(self, db: DbStore) -> None:
        self.db = db
        self.counts: dict[str, int] = {}

    def _count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def rows(self, name: str, table: Table, frame: pl.DataFrame) -> None:
        """A table's accepted rows (`_row` and the table's typed columns), each row once."""
        self._count(name, frame.height)
        if not frame.height:
            return
        rows = row_frame(name, table, frame)
        if self.db.kind == "postgresql":
            self.db._copy_csv("rows", ROW_COLUMNS, rows)
        else:
            self.db._bulk("rows", ROW_COLUMNS, rows.iter_rows())

    def next_row(self, name: str, summary: dict[str, Any]) -> None:
        """The next row number of a table (after the file's rows), from its summary entry."""
        self.counts.setdefault(name, 0)
        nxt = summary["read"] + summary["skipped_empty_records"] + 1 if summary["file"] else 1
        self.db.execute(f"INSERT INTO {self.db.q}next_row VALUES (?, ?)", (name, nxt))

    def outcomes(self, outcomes: Iterable[PersonOutcome]) -> None:
        """Persons' decisions (those with entitlements or alerts)."""
        rows = ((o.id_no, encode_outcome(o)) for o in outcomes)
        self._count("outcomes", self.db._bulk("outcomes", ("id_no", "data"), rows))

    def static_alerts(self, alerts: Iterable[Alert]) -> None:
        """Alerts read from quarantined rows."""
        rows = ((a.id_no, json.dumps(_alert(a), ensure_ascii=False)) for a in alerts)
        self._count("static_alerts", self.db._bulk("static_alerts", ("id_no", "data"), rows))


ROW_COLUMNS = ("tbl", "row_no", "key", "hh", "ref1", "ref2", "data")


def row_frame(name: str, table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """The store's `rows` of a table's frame (ROW_COLUMNS): the lookups of :func:`row_fields`
    and the columns as :func:`encode_row`'s JSON text, made column-wise by Polars (the same
    text: each value JSON-encoded by Polars, dates ISO)."""
    col = pl.col
    none = pl.lit(None, pl.String)
    key = col(table.index).cast(pl.String) if table.index else none
    hh, ref1, ref2 = none, none, none
    if name == "persons":
        key, hh, ref1, ref2 = col("id_no"), col("household_no"), col("father_id_no"), col(
            "mother_id_no")  # fmt: skip
    elif name == "disability_certificates":
        ref1 = col("cert_no")
    values = []
    for c in table.columns:
        v = col(c.name).cast(pl.String) if c.kind == "date" else col(c.name)
        # {"v":…} less its 5-character head and closing brace: the value's JSON
        values.append(pl.struct(v.alias("v")).struct.json_encode().str.slice(5).str.head(-1))
    data = pl.concat_str([pl.lit("["), pl.concat_str(values, separator=","), pl.lit("]")])
    return frame.select(
        pl.lit(name).alias("tbl"), col("_row").alias("row_no"), key.alias("key"),
        hh.alias("hh"), ref1.alias("ref1"), ref2.alias("ref2"), data.alias("data"),
    )  # fmt: skip


def _working_sql(q: str) -> str:
    """PostgreSQL: every row an event naming the values %(v)s can touch (see
    :meth:`DbTransaction.working`), and the next row numbers (as ``~next`` rows). The joins
    on the found households and keys are index lookups per value (``LATERAL … OFFSET 0``):
    left to the planner, a dozen values at 10 million people turned one into a hash join
    over the whole table (11 s for a birth)."""
    return f"""
WITH homes AS (
    SELECT unnest(%(v)s::text[]) AS h
    UNION SELECT hh FROM {q}rows WHERE tbl = 'persons' AND key = ANY(%(v)s)
    UNION SELECT hh FROM {q}rows WHERE ref1 = ANY(%(v)s) AND tbl = 'persons'
    UNION SELECT hh FROM {q}rows WHERE ref2 = ANY(%(v)s) AND tbl = 'persons'
    UNION SELECT p.hh FROM {q}rows c JOIN {q}rows p ON p.tbl = 'persons' AND p.key = c.key
          WHERE c.ref1 = ANY(%(v)s) AND c.tbl = 'disability_certificates'
), ps AS MATERIALIZED (
    SELECT r.* FROM homes CROSS JOIN LATERAL (SELECT tbl, row_no, data, key, ref1, ref2
      FROM {q}rows WHERE hh = homes.h AND tbl = 'persons' OFFSET 0) r
    UNION SELECT r.* FROM homes CROSS JOIN LATERAL (SELECT tbl, row_no, data, key, ref1, ref2
      FROM {q}rows WHERE key = homes.h AND tbl = 'persons' OFFSET 0) r
), ks AS (
    SELECT h AS k FROM homes UNION SELECT key FROM ps
    UNION SELECT ref1 FROM ps WHERE ref1 IS NOT NULL
    UNION SELECT ref2 FROM ps WHERE ref2 IS NOT NULL
)
SELECT tbl, row_no, data FROM ps
UNION ALL SELECT r.* FROM ks CROSS JOIN LATERAL (SELECT tbl, row_no, data FROM {q}rows
    WHERE key = ks.k AND tbl <> 'persons' OFFSET 0) r
UNION ALL SELECT r.tbl, r.row_no, r.data FROM {q}rows r
    WHERE r.ref1 = ANY(%(v)s) AND r.tbl = 'disability_certificates'
UNION ALL SELECT '~next', next_row, tbl FROM {q}next_row
UNION ALL SELECT '~applied', 0, digest FROM {q}applied WHERE event_id = %(e)s
UNION ALL SELECT '~out', 0, o.id_no || chr(9) || o.data FROM {q}outcomes o
    WHERE o.id_no IN (SELECT key FROM ps)
UNION ALL SELECT '~recall', seq, event_id || chr(9) || digest FROM {q}applied
    WHERE person = %(p)s AND remembered = 1
"""


class DbTransaction:
    """What one event reads from and writes to the store (inside its transaction)."""

    def __init__(self, db: DbStore) -> None:
        self.db = db
        self.before: dict[tuple[str, int], Any] = {}
        self.digest: str | None = None  # the event id's, when it was applied already
        self.recall: list[tuple[str, str]] = []  # see :meth:`remembered`
        self._outcomes: dict[str, str] = {}  # id_no -> JSON, of the persons loaded
        self._loaded: set[str] = set()

    def working(
        self, values: Iterable[str], event_id: str = "", person: str | None = None
    ) -> Store:
        """A small :class:`Store` with every row an event naming `values` can touch.

        `values` are the event's IDs, household numbers and certificate numbers. Loaded: the
        persons they name, their children, the certificates they name, every member of those
        persons' households (and of households named directly), and each table's rows keyed
        by a member, a member's parent, a household number or one of the values.

        Read with them (on PostgreSQL in the same round trip): the digest `event_id` was
        applied with (:attr:`digest`), the events about `person` correlations remember
        (:attr:`recall`) and the loaded persons' decisions (:meth:`outcomes`).
        """
        db, q = self.db, self.db.q
        values = list(values)
        vals = sorted({v.upper() for v in values if v} | {v for v in values if v})
        store = Store(db.tables, db.record_types)
        found: dict[tuple[str, int], tuple[Any, ...]] = {}
        if db.kind == "postgresql":  # one round trip, one prepared statement
            params = {"v": vals, "e": event_id, "p": person or ""}
            recall: list[tuple[int, str, str]] = []
            for r in db.conn.execute(_working_sql(q), params).fetchall():
                kind = r[0]
                if kind == "~next":
                    store.next_row[r[2]] = int(r[1])
                elif kind == "~applied":
                    self.digest = r[2]
                elif kind == "~out":
                    id_no, _, text = r[2].partition("\t")
                    self._outcomes[id_no] = text
                elif kind == "~recall":
                    eid, _, text = r[2].partition("\t")
                    recall.append((r[1], eid, text))
                else:
                    found[(r[0], r[1])] = r
            self.recall = [(eid, text) for _, eid, text in sorted(recall)]
        elif vals:
            marks = ", ".join("?" * len(vals))
            first = db.execute(
                f"SELECT hh FROM {q}rows WHERE tbl = 'persons' AND (key IN ({marks}) OR "
                f"ref1 IN ({marks}) OR ref2 IN ({marks})) UNION SELECT p.hh FROM {q}rows c "
                f"JOIN {q}rows p ON p.tbl = 'persons' AND p.key = c.key "
                f"WHERE c.tbl = 'disability_certificates' AND c.ref1 IN ({marks})",
                vals * 4,
            ).fetchall()
            homes = sorted({r[0] for r in first if r[0]} | set(vals))
            marks = ", ".join("?" * len(homes))
            for r in db.execute(
                f"SELECT tbl, row_no, data, key, ref1, ref2 FROM {q}rows "
                f"WHERE tbl = 'persons' AND (hh IN ({marks}) OR key IN ({marks}))",
                homes * 2,
            ).fetchall():
                found[(r[0], r[1])] = r[:3]
            keys = set(homes)
            for r in list(found.values()):
                keys.update(json.loads(r[2])[i] or "" for i in self._parent_columns())
                keys.add(json.loads(r[2])[self._id_column()])
            keys.discard("")
            ks = sorted(keys)
            marks = ", ".join("?" * len(ks))
            for r in db.execute(
                f"SELECT tbl, row_no, data FROM {q}rows WHERE key IN ({marks}) AND "
                "tbl <> 'persons'",
                ks,
            ).fetchall():
                found[(r[0], r[1])] = r
            certs = ", ".join("?" * len(vals))
            for r in db.execute(
                f"SELECT tbl, row_no, data FROM {q}rows "
                f"WHERE tbl = 'disability_certificates' AND ref1 IN ({certs})",
                vals,
            ).fetchall():
                found[(r[0], r[1])] = r
        decoders = {n: _decoder(t) for n, t in db.tables.items()}
        for (tbl, row_no), r in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            values = json.loads(r[2])
            for i in decoders[tbl]:
                if values[i] is not None:
                    values[i] = dt.date.fromisoformat(values[i])
            rec = store.records[tbl](row_no, *values)
            store._add(tbl, rec)
            self.before[(tbl, row_no)] = rec
        if db.kind == "sqlite":
            for tbl, nxt in db.execute(f"SELECT tbl, next_row FROM {q}next_row").fetchall():
                store.next_row[tbl] = int(nxt)
            row = db.execute(
                f"SELECT digest FROM {q}applied WHERE event_id = ?", (event_id,)
            ).fetchone()
            self.digest = row[0] if row else None
            self.recall = self.remembered(person) if person else []
        else:
            self._loaded = set(store.persons)
        self.next_before = dict(store.next_row)
        return store

    def _id_column(self) -> int:
        return self.db.tables["persons"].names.index("id_no")

    def _parent_columns(self) -> list[int]:
        names = self.db.tables["persons"].names
        return [names.index(c) for c in ("father_id_no", "mother_id_no")]

    def outcomes(self, ids: Iterable[str]) -> dict[str, PersonOutcome]:
        """The decisions kept for these persons (those with entitlements or alerts)."""
        ids = set(ids)
        out = {i: decode_outcome(i, self._outcomes[i]) for i in ids if i in self._outcomes}
        ids = sorted(i for i in ids if i not in self._loaded)  # the rest were read already
        if not ids:
            return out
        if self.db.kind == "postgresql":
            rows = self.db.conn.execute(
                f"SELECT id_no, data FROM {self.db.q}outcomes WHERE id_no = ANY(%s)", (ids,)
            ).fetchall()
            return out | {r[0]: decode_outcome(r[0], r[1]) for r in rows}
        marks = ", ".join("?" * len(ids))
        return out | {
            r[0]: decode_outcome(r[0], r[1])
            for r in self.db.execute(
                f"SELECT id_no, data FROM {self.db.q}outcomes WHERE id_no IN ({marks})", ids
            ).fetchall()
        }

    def remembered(self, person: str) -> list[tuple[str, str]]:
        """(event id, canonical JSON) of the applied events about a person that correlations
        remember, in the order applied (by any process sharing the store)."""
        return self.db.execute(
            f"SELECT event_id, digest FROM {self.db.q}applied "
            "WHERE person = ? AND remembered = 1 ORDER BY seq",
            (person,),
        ).fetchall()

    def write(self, store: Store, outcomes: dict[str, PersonOutcome | None],
              event_id: str, digest: str, person: str | None) -> None:  # fmt: skip
        """Write the rows the event changed, the new decisions and the event id."""
        if self.db.kind == "postgresql":
            with self.db.conn.pipeline():  # the statements go together, with the commit
                self._write(store, outcomes, event_id, digest, person)
                self.db.conn.execute("COMMIT")
            self.db.committed = True
        else:
            self._write(store, outcomes, event_id, digest, person)

    def _write(self, store: Store, outcomes: dict[str, PersonOutcome | None],
               event_id: str, digest: str, person: str | None) -> None:  # fmt: skip
        db, q = self.db, self.db.q
        after: dict[tuple[str, int], Any] = {("persons", r.row_no): r
                                             for r in store.persons.values()}  # fmt: skip
        for tbl, by_key in store.rows.items():
            for rows in by_key.values():
                for r in rows:
                    after[(tbl, r.row_no)] = r
        gone = [k for k, r in self.before.items() if after.get(k) != r]
        new = [(k, r) for k, r in after.items() if self.before.get(k) != r]
        for tbl, row_no in gone:
            db.execute(f"DELETE FROM {q}rows WHERE tbl = ? AND row_no = ?", (tbl, row_no))
        for (tbl, row_no), r in new:
            db.execute(
                f"INSERT INTO {q}rows (tbl, row_no, key, hh, ref1, ref2, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tbl, row_no, *row_fields(tbl, db.tables[tbl], r), encode_row(r)),
            )
        for tbl, nxt in store.next_row.items():
            if nxt != self.next_before.get(tbl):
                db.execute(f"UPDATE {q}next_row SET next_row = ? WHERE tbl = ?", (nxt, tbl))
        for id_no, o in outcomes.items():
            db.execute(f"DELETE FROM {q}outcomes WHERE id_no = ?", (id_no,))
            if o is not None:
                db.execute(f"INSERT INTO {q}outcomes VALUES (?, ?)", (id_no, encode_outcome(o)))
        self.record(event_id, digest, person, remembered=True)

    def record(self, event_id: str, digest: str, person: str | None, *, remembered: bool) -> None:
        """Mark the event id applied (the primary key refuses a second insert); `remembered`:
        correlations may read it with a later event."""
        q = self.db.q
        self.db.execute(
            f"INSERT INTO {q}applied SELECT ?, ?, coalesce(max(seq), 0) + 1, ?, ? FROM {q}applied",
            (event_id, digest, person, int(remembered)),
        )
