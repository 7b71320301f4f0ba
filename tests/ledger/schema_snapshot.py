"""The ledger's schema at each migration revision, as plain data, and its frozen snapshot.

A migration is frozen at the schema it created: ``schema_snapshots.json`` records, per backend
and revision, what ``upgrade <revision>`` does after the previous revision — each table it
creates or changes (columns with their types, nullability and defaults, primary key, indexes,
unique and check constraints, foreign keys) or drops (null), and the triggers then. Record a
new revision once, when it is written (recorded revisions are never rewritten):

    PYTHONPATH=$PWD python -m tests.ledger.schema_snapshot
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, inspect, text

from benefits.ledger.db import Database

SNAPSHOT = Path(__file__).with_name("schema_snapshots.json")


def revisions() -> list[str]:
    """Every migration revision, oldest first."""
    from alembic.script import ScriptDirectory

    from benefits.ledger.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def _triggers(conn: Connection) -> list[str]:
    if conn.dialect.name == "postgresql":
        sql = (
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    return sorted(conn.execute(text(sql)).scalars())


def describe(conn: Connection) -> dict[str, Any]:
    """The schema `conn` sees, as JSON-ready data in a stable order."""
    insp = inspect(conn)
    tables: dict[str, Any] = {}
    for name in sorted(insp.get_table_names()):
        columns = [
            {
                "name": c["name"],
                "type": c["type"].compile(dialect=conn.dialect),
                "nullable": c["nullable"],
                "default": _text(c.get("default")),
            }
            for c in insp.get_columns(name)
        ]
        indexes = [
            {
                "name": ix["name"],
                "columns": ix["column_names"],
                "unique": bool(ix["unique"]),
                "where": {k: _text(v) for k, v in sorted(ix.get("dialect_options", {}).items())
                          if k.endswith("_where")},
                # a descending column (recorded only where there is one: 0012 on)
                **({"sorting": {c: list(o) for c, o in sorted(ix["column_sorting"].items())}}
                   if ix.get("column_sorting") else {}),
            }
            for ix in insp.get_indexes(name)
        ]  # fmt: skip
        uniques = [
            {"name": u["name"], "columns": u["column_names"]}
            for u in insp.get_unique_constraints(name)
        ]
        checks = [
            {"name": c["name"], "sql": c["sqltext"]} for c in insp.get_check_constraints(name)
        ]
        fks = [
            {
                "name": fk["name"],
                "columns": fk["constrained_columns"],
                "table": fk["referred_table"],
                "referred": fk["referred_columns"],
            }
            for fk in insp.get_foreign_keys(name)
        ]
        tables[name] = {
            "columns": columns,
            "primary_key": insp.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted(indexes, key=lambda i: str(i["name"])),
            "unique": sorted(uniques, key=lambda u: (str(u["name"]), u["columns"])),
            "checks": sorted(checks, key=lambda c: (str(c["name"]), c["sql"])),
            "foreign_keys": sorted(fks, key=lambda f: (str(f["name"]), f["columns"])),
        }
    return {"tables": tables, "triggers": _triggers(conn)}


def schemas_by_revision(url: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Upgrade the empty database at `url` one revision at a time; describe it after each."""
    db = Database(url)
    try:
        for revision in revisions():
            db.migrate(revision)
            with db.engine.connect() as conn:
                yield revision, describe(conn)
    finally:
        db.dispose()


def record(tmp: Path) -> None:
    """Add the revisions the snapshot lacks (both backends); keep every recorded one."""
    from tests.postgres import base_url, fresh_schema

    pg = base_url()
    if pg is None:
        raise SystemExit("recording needs PostgreSQL too (see tests/postgres.py)")
    snapshot = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    try:
        for dialect, urls in (
            ("sqlite", iter([f"sqlite:///{tmp / 'snapshot.sqlite'}"])),
            ("postgresql", fresh_schema(pg, admin, "snapshot")),
        ):
            for url in urls:
                recorded = snapshot.setdefault(dialect, {})
                before: dict[str, Any] = {"tables": {}}
                for revision, schema in schemas_by_revision(url):
                    recorded.setdefault(revision, changes(before, schema))
                    before = schema
    finally:
        admin.dispose()
    SNAPSHOT.write_text(dumps(snapshot))


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What one revision did: the triggers after it, and each table it created or changed
    (in full) or dropped (None)."""
    old, new = before["tables"], after["tables"]
    tables = {t: d for t, d in new.items() if old.get(t) != d}
    tables |= {t: None for t in old if t not in new}
    return {"triggers": after["triggers"], "tables": dict(sorted(tables.items()))}


def expected(dialect: str) -> dict[str, dict[str, Any]]:
    """The recorded schema after each revision on `dialect` (the changes added up)."""
    schema: dict[str, Any] = {}
    out: dict[str, dict[str, Any]] = {}
    for revision, change in json.loads(SNAPSHOT.read_text())[dialect].items():
        schema = {**schema, **change["tables"]}
        schema = {t: d for t, d in schema.items() if d is not None}
        out[revision] = {"tables": dict(sorted(schema.items())), "triggers": change["triggers"]}
    return out


def dumps(snapshot: dict[str, Any]) -> str:
    """The snapshot as JSON with one line per table (short diffs when a revision is added)."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    out = ["{"]
    for i, (dialect, by_revision) in enumerate(snapshot.items()):
        out.append(f" {one(dialect)}: {{")
        for j, (revision, schema) in enumerate(by_revision.items()):
            out.append(f"  {one(revision)}: {{")
            out.append(f'   "triggers": {one(schema["triggers"])},')
            out.append('   "tables": {')
            tables = list(schema["tables"].items())
            out += [f"    {one(t)}: {one(d)}{',' if k < len(tables) - 1 else ''}"
                    for k, (t, d) in enumerate(tables)]  # fmt: skip
            out.append("   }")
            out.append("  }" + ("," if j < len(by_revision) - 1 else ""))
        out.append(" }" + ("," if i < len(snapshot) - 1 else ""))
    return "\n".join([*out, "}", ""])


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        record(Path(tmp))
    sys.exit(0)
