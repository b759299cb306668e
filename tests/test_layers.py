"""Imports point downward only (DESIGN.md, "Layout and layers"), with no package cycle.

Every module of ``src/genomenode`` is parsed (``ast``) and each of its imports of
genomenode, including those inside functions and under ``TYPE_CHECKING``, becomes an
edge between two top-level packages (a top-level module counts as a package). An
edge may go to the same layer or one below, never above; and the packages' graph
has no cycle, within a layer either. A package not yet written is simply absent.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterable, Mapping

import genomenode

SOURCE = pathlib.Path(genomenode.__file__).parent

#: Lowest first. ``__init__`` is the package root (its public surface).
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer)
    for layer in (
        {"vocab", "config", "setting_types", "errors", "web", "version", "dataset"},
        {"store"},
        {
            "ingest",
            "qc",
            "disclosure",
            "access",
            "simulate",
            "simulate_vcf",
            "simulate_vcz",
        },
        {"beacon", "reference", "transfer", "analysis", "catalogue", "client"},
        {"network"},
        {"portal"},
        {"app", "cli", "privacy", "index", "demo", "docs", "__main__", "__init__"},
    )
)
#: The bottom of the bottom: imports nothing else of genomenode.
NO_IMPORTS = frozenset({"vocab", "errors", "version"})

Edges = Mapping[str, Iterable[str]]


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(path): path for path in sorted(SOURCE.rglob("*.py"))}


def _imports(name: str, path: pathlib.Path, known: Iterable[str]) -> set[str]:
    """The genomenode modules ``name`` imports, wherever in the file."""
    modules = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                # ``from genomenode.store import node`` imports a module.
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
    return {item for item in found if item.split(".")[0] == "genomenode"}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def package_edges() -> dict[str, set[str]]:
    """Top-level package → the other top-level packages it imports."""
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        source = _package(name)
        for target in _imports(name, path, modules):
            if _package(target) != source:
                edges.setdefault(source, set()).add(_package(target))
    return edges


def layer_of(package: str) -> int:
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    raise AssertionError(f"{package!r} is in no layer: add it to LAYERS")


def upward_edges(edges: Edges) -> list[str]:
    """Every edge into a higher layer, and every import of a package that
    imports nothing."""
    found = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if layer_of(target) > layer_of(source) or source in NO_IMPORTS:
                found.append(f"{source} -> {target}")
    return found


def package_cycles(edges: Edges) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted({*edges, *(t for ts in edges.values() for t in ts)}):
        if node not in index:
            visit(node)
    return cycles


def test_the_walk_sees_the_packages_and_their_imports() -> None:
    edges = package_edges()
    # Imports inside functions count (the CLI imports its library lazily).
    assert "store" in edges["cli"]
    assert "store" in edges["beacon"] and "access" in edges["beacon"]


def test_every_package_is_in_a_layer() -> None:
    for package in {_package(name) for name in _modules()}:
        layer_of(package)


def test_imports_point_downward_only() -> None:
    assert upward_edges(package_edges()) == []


def test_no_package_cycle() -> None:
    assert package_cycles(package_edges()) == []


def test_an_upward_edge_and_a_cycle_are_caught() -> None:
    edges = {name: set(targets) for name, targets in package_edges().items()}
    edges.setdefault("store", set()).add("beacon")
    assert "store -> beacon" in upward_edges(edges)
    (cycle,) = package_cycles(edges)  # store -> beacon -> (access ->) store
    assert {"beacon", "store"} <= set(cycle)
    assert upward_edges({"vocab": {"config"}}) == ["vocab -> config"]
    assert package_cycles({"access": {"dataset"}, "dataset": {"access"}}) == [
        ["access", "dataset"]
    ]
