"""Each migration is frozen at the schema it created: recorded schemas, no imported models."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from schema_snapshot import SNAPSHOT, expected, revisions, schemas_by_revision
from sqlalchemy.engine import make_url

from benefits.ledger.db import SCHEMA_REVISION

VERSIONS = Path(__file__).parents[2] / "benefits" / "ledger" / "migrations" / "versions"
# What a migration may import from the project: the sealing of values (0006 seals the rows it
# finds), never a model, whose later changes would change what an old revision creates.
ALLOWED = {"benefits.ledger.sealed"}


def test_every_revision_is_recorded() -> None:
    recorded = json.loads(SNAPSHOT.read_text())
    assert revisions()[-1] == SCHEMA_REVISION
    for dialect in ("sqlite", "postgresql"):
        assert list(recorded[dialect]) == revisions(), dialect


def test_each_revision_creates_its_recorded_schema(db_url: str) -> None:
    dialect = make_url(db_url).get_backend_name()
    want = expected(dialect)
    seen = []
    for revision, schema in schemas_by_revision(db_url):
        assert schema == want[revision], f"{revision} on {dialect} differs from its snapshot"
        seen.append(revision)
    assert seen == list(want)


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_migrations_import_no_models() -> None:
    files = sorted(VERSIONS.glob("0*.py"))
    assert [f.stem for f in files] == revisions()
    for path in files:
        project = {n for n in _imported(ast.parse(path.read_text())) if n.startswith("benefits")}
        modules = {n for n in project if not any(n.startswith(f"{a}.") for a in ALLOWED)}
        assert modules <= ALLOWED, f"{path.name} imports {sorted(modules - ALLOWED)}"
