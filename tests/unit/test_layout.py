"""The code's layout, held by its imports: one package per function, one direction to AWS, no circle.

Every ``import`` in src/tagpatch is read with :mod:`ast` (including those under ``TYPE_CHECKING`` and
inside functions), so a shortcut taken anywhere shows here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "tagpatch"

DOMAIN = ("reconciler", "collector", "reporter", "hub")
SHARED_MODULES = {"__init__.py", "naming.py", "observability.py"}
PACKAGES = {"models", "adapters", "handlers", "cli", *DOMAIN}
# Rooms that may never import an adapter, a handler, the CLI or the AWS SDK.
PURE = {*DOMAIN, "models", "naming", "observability"}
AWS_SDK = ("boto3", "botocore")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports (``from a import b`` yields ``a.b`` when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {target for target in _imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def _room(module: str) -> str:
    """``tagpatch.collector.core`` -> ``collector``; ``tagpatch.naming`` -> ``naming``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tagpatch"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_root_holds_only_the_shared_modules_and_one_package_per_function() -> None:
    modules = {path.name for path in PACKAGE.glob("*.py")}
    packages = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}

    assert modules == SHARED_MODULES
    assert packages == PACKAGES
    for name in DOMAIN:
        assert (PACKAGE / name / "ports.py").is_file(), f"{name}/ declares its collaborators in ports.py"
        assert (PACKAGE / name / "config.py").is_file(), f"{name}/ owns its environment in config.py"


PURE_FILES = sorted(path for path in PACKAGE.rglob("*.py") if _room(_module_name(path)) in PURE)


def test_the_pure_rooms_are_found() -> None:
    assert {_room(_module_name(path)) for path in PURE_FILES} == PURE


@pytest.mark.parametrize("path", PURE_FILES, ids=_module_name)
def test_domain_and_models_import_no_adapter_and_no_aws_sdk(path: Path) -> None:
    module = _module_name(path)
    wrong = sorted(
        target
        for target in set(_imports(path))
        if target.split(".")[0] in AWS_SDK
        or target.startswith(("tagpatch.adapters", "tagpatch.handlers", "tagpatch.cli"))
    )

    assert wrong == [], f"{module} reaches AWS code directly: {wrong}"


def test_models_stay_at_the_bottom() -> None:
    above = {
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if _room(module) == "models"
        for target in targets
        # the package root: only its __version__ (the member events carry it)
        if _room(target) not in {"models", "naming", "tagpatch"}
    }

    assert above == set()


def test_no_module_imports_itself_back_through_others() -> None:
    assert _cycles(_graph()) == []


def test_no_circle_between_rooms() -> None:
    rooms: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        rooms.setdefault(_room(module), set()).update(
            _room(target) for target in targets if _room(target) != _room(module)
        )

    assert _cycles(rooms) == []


def test_the_cycle_finder_finds_a_cycle_and_a_domain_to_adapter_arrow_is_caught() -> None:
    # Given a graph with a circle of three and an arrow out of it
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}

    # Then the circle is reported and the tail is not
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _room("tagpatch.collector.core") == "collector"
    assert _room("tagpatch.adapters.ssm") not in PURE
