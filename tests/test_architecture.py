"""The import rules docs/architecture.md states, read from the source: imports run one way.

A cycle between modules, a foundation module importing a layer, or the audit trail calling into
the quality layer (it receives results instead) fails here, naming the import."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster_project

PACKAGE = Path(dagster_project.__file__).parent
# Read by every layer; they import nothing of the layers above them.
FOUNDATIONS = {"config", "warehouse", "contracts", "registry", "partitions", "resources", "html_pages"}
LAYERS = {"ingest", "transform", "quality", "audit", "publish", "automation", "demo", "scale_out"}


def _imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports ('dagster_project.x.y' names)."""
    modules = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dagster_project"):
                for alias in node.names:  # `from dagster_project.ingest import loader` imports a module
                    full = f"{node.module}.{alias.name}"
                    graph[module].add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name.startswith("dagster_project")}
    return {m: {i for i in imported if i in modules and i != m} for m, imported in graph.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_module_imports_itself_back():
    graph, cycles, state = _imports(), [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_foundations_import_no_layer():
    wrong = [
        f"{module} imports {imported}"
        for module, imports in _imports().items()
        if _layer(module) in FOUNDATIONS
        for imported in imports
        if _layer(imported) in LAYERS
    ]
    assert wrong == []


def test_the_audit_trail_receives_results_and_never_calls_into_quality():
    wrong = [
        f"{module} imports {imported}"
        for module, imports in _imports().items()
        if _layer(module) == "audit"
        for imported in imports
        if _layer(imported) == "quality"
    ]
    assert wrong == []
