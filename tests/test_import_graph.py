"""The layers point one way and nothing imports in a circle (CONVENTIONS.md, rule 13).

``hoptrace.processors`` needs only the OpenTelemetry SDK, ``hoptrace.tracing`` may use it, and
``hoptrace.harness`` may use both, through public names only. Imports inside functions count too: a cycle
hidden in a function still ties two modules together. Imports under ``if TYPE_CHECKING:`` do not run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"processors": 0, "tracing": 1, "harness": 2}  # folder -> layer


def _modules() -> dict[str, Path]:
    modules = {}
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            parts = [f"hoptrace.{folder}", *path.relative_to(ROOT / folder).with_suffix("").parts]
            modules[".".join(parts).removesuffix(".__init__")] = path
    return modules


MODULES = _modules()


class _Imports(ast.NodeVisitor):
    """The hoptrace modules one module imports at run time, each with the names it takes from it."""

    def __init__(self) -> None:
        self.found: dict[str, set[str]] = defaultdict(set)

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" not in ast.unparse(node.test):
            self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if not module.startswith("hoptrace."):
            return
        for alias in node.names:
            submodule = f"{module}.{alias.name}"
            if submodule in MODULES:
                self.found[submodule].add("*")
            else:
                self.found[module].add(alias.name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in MODULES:
                self.found[alias.name].add("*")


def _graph() -> dict[str, dict[str, set[str]]]:
    graph = {}
    for name, path in MODULES.items():
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text()))
        graph[name] = {target: names for target, names in visitor.found.items() if target != name}
    return graph


def _package(module: str) -> str:
    return module.split(".")[1]


def test_layers_point_one_way() -> None:
    upward = [
        f"{source} imports {target}"
        for source, targets in _graph().items()
        for target in targets
        if PACKAGES[_package(target)] > PACKAGES[_package(source)]
    ]
    assert upward == []


def test_only_public_names_cross_a_package_boundary() -> None:
    private = [
        f"{source} imports {target} ({', '.join(sorted(names))})"
        for source, targets in _graph().items()
        for target, names in targets.items()
        if _package(target) != _package(source)
        and (any(part.startswith("_") for part in target.split(".")) or any(n.startswith("_") for n in names))
    ]
    assert private == []


def test_no_import_cycles_not_even_inside_functions() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, {})):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    # A package __init__'s lazy re-exports are names in a table, not imports: they make no edge here.
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("folder", list(PACKAGES))
def test_every_package_is_found(folder: str) -> None:
    assert f"hoptrace.{folder}" in MODULES
