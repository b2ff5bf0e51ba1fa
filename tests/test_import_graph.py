"""The package's import graph, read from the source with `ast`: no cycle, and every import points
down the layers (compute -> data -> execution -> runner -> cli), never up."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE_ROOT = REPO_ROOT / "pipeline"

# Lowest first; a module may import from its own layer and the ones before it. The longest
# matching prefix places a module; "pipeline" itself is the package's __init__ only, so a new
# top-level module must be placed here by name.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "compute",
        (
            "pipeline.errors",
            "pipeline.display",
            "pipeline.symbols",
            "pipeline.configs",
            "pipeline.config",
            "pipeline.backtest",
            "pipeline.statistics",
        ),
    ),
    (
        "data",
        (
            "pipeline.data",
            "pipeline.progress",
            "pipeline.logs",
            "pipeline.outputs",
            "pipeline.manifest",
            "pipeline.history",
            "pipeline.jsonlines",
            "pipeline.safe_io",
            "pipeline.interrupts",
            "pipeline.signals",
            "pipeline.trials",
            "pipeline.report",
        ),
    ),
    ("execution", ("pipeline.execution",)),
    ("runner", ("pipeline.runner",)),
    (
        "cli",
        (
            "pipeline.benchmarking",
            "pipeline.sweep",
            "pipeline.cli",
            "pipeline.exiting",
            "pipeline.terminal",
            "pipeline.__main__",
            "pipeline",
        ),
    ),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
    return name == "TYPE_CHECKING"


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs (at import time or in a function), skipping the blocks
    guarded by `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def _resolve(node: ast.Import | ast.ImportFrom, importer: str, modules: set[str]) -> set[str]:
    """The package modules one import statement loads (the submodule for `from pkg import sub`)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:
        base = importer.split(".")[: -node.level or None]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    found = set()
    for alias in node.names:
        submodule = f"{target}.{alias.name}"
        if submodule in modules:
            found.add(submodule)
        elif target in modules:
            found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, an import of its own ancestor package aside
    (Python runs a package's __init__ before any of its modules anyway)."""
    modules = package_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets: set[str] = set()
        for node in _runtime_imports(tree):
            targets |= _resolve(node, name, set(modules))
        graph[name] = {t for t in targets if t != name and not name.startswith(f"{t}.")}
    return graph


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (prefix != "pipeline" and module.startswith(f"{prefix}."))
    ]
    if not matches:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__name__}")
    return max(matches)[1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    }


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_point_down_the_layers_only() -> None:
    assert upward_imports(import_graph()) == set(), "upward imports (importer, imported)"


def test_every_module_has_a_layer() -> None:
    for module in package_modules():
        layer_of(module)


def test_config_imports_the_model_registry_at_module_level() -> None:
    tree = ast.parse((PACKAGE_ROOT / "config.py").read_text())
    top_level = {
        node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "pipeline.backtest.models" in top_level


# The checker itself, on small graphs: a check that cannot see a cycle protects nothing.
@pytest.mark.parametrize(
    ("graph", "has_cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"b"}, "b": {"a"}}, True),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, False),
    ],
    ids=["chain", "pair", "triangle", "diamond"],
)
def test_find_cycle_on_small_graphs(graph: dict[str, set[str]], has_cycle: bool) -> None:
    cycle = find_cycle(graph)
    assert (cycle is not None) is has_cycle
    if cycle:
        assert cycle[0] == cycle[-1]
        assert all(b in graph[a] for a, b in itertools.pairwise(cycle))


def test_upward_imports_sees_a_lower_layer_importing_a_higher_one() -> None:
    graph = {"pipeline.backtest.task": {"pipeline.runner"}, "pipeline.runner": {"pipeline.data"}}
    assert upward_imports(graph) == {("pipeline.backtest.task", "pipeline.runner")}


def test_the_graph_reads_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pipeline.runner import RunResult\n"
        "def f():\n    from pipeline.cli import app\n"
    )
    modules = {"pipeline.runner", "pipeline.cli", "pipeline.x"}
    found = set()
    for node in _runtime_imports(ast.parse(source)):
        found |= _resolve(node, "pipeline.x", modules)
    assert found == {"pipeline.cli"}
