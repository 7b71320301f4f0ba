"""No import cycle inside ``benefits.web``: the web modules' imports form a graph without loops.

Every import counts, also those inside functions (a deferred import hides a cycle at import
time but still ties the two modules together).
"""

from __future__ import annotations

import ast
from pathlib import Path

import benefits.web

WEB = Path(benefits.web.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in WEB.rglob("*.py"):
        parts = path.relative_to(WEB.parent.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module → the ``benefits.web`` modules it imports (anywhere in its code)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The loops of `graph`: each strongly connected set of two or more modules, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_web_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert {"benefits.web.app", "benefits.web.routes.pages", "benefits.web.templating"} <= set(
        graph
    )
    assert "benefits.web.routes.pages" in graph["benefits.web.app"]  # the graph sees inner imports
    assert cycles(graph) == []
