"""The package's shape is part of its contract: layers import only downward, Dagster stays in `defs/` and `app/`.

Every import is read from the source (function-level ones included), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "roster_pipeline"

# Each layer may import itself and the layers before it. `sandbox/` (the test server) sits beside the library;
# `notify/` (webhook and e-mail delivery) sits above the store, below the Dagster wiring that sends alerts.
LAYERS = ("oneroster", "sandbox", "config", "store", "ingest", "notify", "defs", "app")
DAGSTER_LAYERS = {"defs", "app"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def project_imports() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        graph[name] = {target for target in imports_of(name, path) if target in known and target != name}
    return graph


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else "top"


def test_no_module_outside_defs_and_app_imports_dagster() -> None:
    offenders = [
        name
        for name, path in modules().items()
        if layer_of(name) not in DAGSTER_LAYERS
        and any(target.split(".")[0] in {"dagster", "dagster_shared"} for target in imports_of(name, path))
    ]
    assert offenders == []


def test_layers_import_only_downward() -> None:
    upward = []
    for module, targets in project_imports().items():
        here = layer_of(module)
        if here == "top":
            continue
        for target in targets:
            there = layer_of(target)
            if there == "top" or LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycles() -> None:
    graph = project_imports()
    # Package __init__ files re-exporting their children are not edges of a cycle between modules.
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_is_a_folder(layer: str) -> None:
    assert (PACKAGE / layer / "__init__.py").exists()


def test_no_two_modules_share_a_name() -> None:
    stems: dict[str, list[str]] = {}
    for name in modules():
        stem = name.rsplit(".", 1)[-1]
        if name.count(".") > 1 or stem not in LAYERS:
            stems.setdefault(stem, []).append(name)
    assert {stem: names for stem, names in stems.items() if len(names) > 1 and stem != "roster_pipeline"} == {}


def test_packaged_dagster_yaml_is_the_repositorys() -> None:
    """An installed package without the repository around it gets the same run limits and run monitoring."""
    repository = PACKAGE.parent / "dagster.yaml"
    assert (PACKAGE / "config" / "dagster.yaml").read_text() == repository.read_text()
