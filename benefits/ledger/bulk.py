"""Fast bulk inserts inside the caller's transaction: COPY on PostgreSQL, executemany on SQLite.

A town's batch is ~30,000 rows; row-by-row parameter round trips would dominate. Values go
through each column type's own bind processor (so `Money` still becomes NUMERIC or integer
fen), constraints and indexes still apply, and database errors come back as SQLAlchemy
exceptions (an `IntegrityError` stays an `IntegrityError`).

Example:
    >>> with db.transaction() as s:                                    # doctest: +SKIP
    ...     bulk_insert(s, BatchItem.__table__, rows)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, MetaData, Table, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from benefits.ledger.faults import crashpoint
from benefits.ledger.sealed import id_index, keys_of

BULK_CHUNK = 5000  # rows per executemany / COPY stretch; a crash point follows each


def bulk_insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert `rows` (dicts with the same keys) into `table`; returns the number inserted.

    A table with an ``id_index`` column gets each row's blind index computed from its
    ``id_no`` (:func:`benefits.ledger.sealed.id_index`) unless the rows carry it.
    """
    if not rows:
        return 0
    conn = session.connection()
    dialect = conn.dialect
    if "id_index" in table.c and "id_index" not in rows[0]:
        keys = keys_of(dialect)
        rows = [{**row, "id_index": id_index(keys, row["id_no"])} for row in rows]
    cols = [table.c[name] for name in rows[0]]
    procs = [c.type.bind_processor(dialect) for c in cols]
    names = [c.name for c in cols]
    # Column by column: one bind processor over a list is much cheaper than per-cell calls.
    columns = []
    for name, proc in zip(names, procs, strict=True):
        cells = [row[name] for row in rows]
        columns.append(list(map(proc, cells)) if proc else cells)
    values = list(zip(*columns, strict=True))
    prep = dialect.identifier_preparer
    target = f"{prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)})"
    raw = conn.connection.dbapi_connection
    assert raw is not None
    if dialect.name == "postgresql":
        statement = f"COPY {target} FROM STDIN"
    else:
        statement = f"INSERT INTO {target} VALUES ({', '.join('?' for _ in names)})"
    try:
        cursor = raw.cursor()
        try:
            if dialect.name == "postgresql":
                with cursor.copy(statement) as copy:
                    for i, value in enumerate(values, start=1):
                        copy.write_row(value)
                        if i % BULK_CHUNK == 0:
                            crashpoint("bulk:rows")
            else:
                for i in range(0, len(values), BULK_CHUNK):
                    cursor.executemany(statement, values[i : i + BULK_CHUNK])
                    crashpoint("bulk:rows")
        finally:
            cursor.close()
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            statement, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
    return len(values)


def sorted_insert(
    session: Session, table: Table, chunks: Iterable[Sequence[Mapping[str, Any]]],
    order_by: Sequence[str],
) -> int:
    """Insert rows given in chunks into `table` in `order_by` order; returns the number.

    The chunks are bulk-loaded (:func:`bulk_insert`) into a temporary copy of the table with
    no index, then moved into `table` with one ``INSERT … SELECT … ORDER BY``: its ids follow
    that order, and an index keyed by a blind index takes its entries in key order — one
    pass over its pages instead of a random page per row, which no longer fits the
    database's buffers at a city's million rows. The same on every engine, so ids (and files
    listed in id order) do not depend on the engine.
    """
    names = [c.name for c in table.columns if not c.primary_key]
    stage = Table(
        f"{table.name}_staged", MetaData(),
        *(Column(c.name, c.type) for c in table.columns if c.name in names),
        prefixes=["TEMPORARY"],
    )  # fmt: skip
    conn = session.connection()
    stage.create(conn)  # rolled back with the transaction if anything below fails
    count = 0
    for chunk in chunks:
        count += bulk_insert(session, stage, chunk)
    # Byte order on every engine (SQLite's BINARY; PostgreSQL's "C", whatever the database's
    # collation), so that the ids come out the same.
    keys = [stage.c[n].collate("C") if conn.dialect.name == "postgresql" else stage.c[n]
            for n in order_by]  # fmt: skip
    ordered = select(*(stage.c[n] for n in names)).order_by(*keys)
    session.execute(insert(table).from_select(names, ordered))
    stage.drop(conn)
    return count
