"""The package declares what it imports, and imports what it declares (pyproject.toml): a
dependency that only arrives through another one breaks the day that one drops it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib import metadata

from tests.conftest import REPO_ROOT

PACKAGE_ROOT = REPO_ROOT / "pipeline"
# Declared for an extra rather than imported by name: dask[distributed] is how dask's own
# documentation installs the `distributed` that the package imports.
DECLARED_FOR_EXTRAS = {"dask"}


def third_party_imports() -> set[str]:
    """Top-level names of every module the package imports that is neither its own nor the
    standard library's (lazy imports inside functions included)."""
    names: set[str] = set()
    for path in PACKAGE_ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n != "pipeline" and n not in sys.stdlib_module_names}


def declared(group: str | None = None) -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = (
        project["dependencies"] if group is None else project["optional-dependencies"][group]
    )
    names = set()
    for requirement in requirements:
        name, _, rest = re.split(r"([<>=!~; ]|$)", requirement, maxsplit=1)[0].partition("[")
        names.add(name.lower())
        # An extra that names a distribution (dask[distributed]) declares that one too.
        names.update(extra.strip().lower() for extra in rest.rstrip("]").split(",") if extra)
    return names


@cache
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # reads every installed package's files: once


def distributions_of(module: str) -> set[str]:
    return {name.lower() for name in _distributions().get(module, [])}


def test_every_imported_package_is_a_declared_dependency() -> None:
    runtime = declared()
    undeclared = {
        module for module in third_party_imports() if not distributions_of(module) & runtime
    }
    assert not undeclared, f"imported but not declared in [project] dependencies: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    imported = set().union(*(distributions_of(m) for m in third_party_imports()))
    unused = declared() - imported - DECLARED_FOR_EXTRAS
    assert not unused, f"declared but never imported by the package: {unused}"


def test_no_dependency_is_declared_twice() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in project["dependencies"]]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
