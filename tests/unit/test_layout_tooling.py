"""Tooling stands on its own: nothing under emulator/, benchmarks/ or hub/ imports from tests/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ("emulator", "benchmarks", "hub")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import, at any depth (functions, ``if`` blocks too)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _imports_tests(module: str) -> bool:
    return module == "tests" or module.startswith("tests.")


def _tooling_files() -> list[Path]:
    return sorted(path for folder in TOOLING for path in (ROOT / folder).rglob("*.py"))


def test_the_tooling_folders_have_python_files() -> None:
    files = {path.relative_to(ROOT).parts[0] for path in _tooling_files()}
    assert files == set(TOOLING)


@pytest.mark.parametrize("path", _tooling_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_tooling_imports_nothing_from_tests(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules = _imported_modules(tree)
    offending = [f"line {line}: {module}" for line, module in modules if _imports_tests(module)]
    assert offending == [], f"{path.relative_to(ROOT)} imports from tests/: {offending}"


@pytest.mark.parametrize(
    ("source", "offends"),
    [
        ("import tests.conftest", True),
        ("import tests", True),
        ("from tests import strict_validation", True),
        ("from tests.support.aws import World", True),
        ("def f():\n    from tests.fakes import ssm", True),
        ("import testsuite", False),
        ("from emulator.scenarios.aws import World", False),
        ("from . import tests", False),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, offends: bool) -> None:
    modules = [module for _, module in _imported_modules(ast.parse(source))]
    assert any(_imports_tests(module) for module in modules) is offends
