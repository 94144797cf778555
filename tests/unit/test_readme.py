"""The README and docs/ stay true and the README stays short enough to read from the top."""

import re
import tomllib
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

#: A duration as the README states one: "about 50 s", "11 min".
DURATION = re.compile(r"\b\d+(?:\.\d+)? ?(?:s|min|minutes?)\b")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _documented() -> dict[str, str]:
    text = _text(ROOT / "docs" / "parameters.md")
    table = text.split("<!-- parameters:start -->")[1].split("<!-- parameters:end -->")[0]
    rows = re.findall(r"^\| `(\w+)` \| (`[^`]*`|\(empty\)) \|", table, flags=re.MULTILINE)
    return {name: "" if default == "(empty)" else default.strip("`") for name, default in rows}


def test_every_parameter_is_documented_with_its_default() -> None:
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    actual = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    assert _documented() == actual


def test_the_readme_counts_the_parameters_right() -> None:
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    assert f"All {len(template['Parameters'])}, with their defaults" in _text(README)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_make_commands_exist_in_the_makefile(page: Path) -> None:
    makefile = _text(ROOT / "Makefile")
    for target in set(re.findall(r"`make (\w[\w-]*)`", _text(page))):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), target


def test_the_first_screen_shows_both_commands_with_their_time() -> None:
    first_screen = _text(README).splitlines()[:40]
    for command in ("`make demo`", "`make test`"):
        timed = [line for line in first_screen if command in line and DURATION.search(line)]
        assert timed, f"{command} and how long it takes are not in the README's first 40 lines"


def test_the_first_screen_states_the_python_the_project_requires() -> None:
    project = tomllib.loads(_text(ROOT / "pyproject.toml"))["project"]
    minimum = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"])
    assert minimum, project["requires-python"]
    assert f"Python {minimum[1]}+" in "\n".join(_text(README).splitlines()[:40])


def test_the_readme_is_under_250_lines() -> None:
    assert len(_text(README).splitlines()) < 250


def _anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation but `-` dropped, spaces as `-`."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.DOTALL), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_reach_a_file_and_heading(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", _text(page)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.is_file(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(_text(linked)), f"{page.name}: {target}"
