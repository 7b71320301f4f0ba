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

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
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
