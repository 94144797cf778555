"""The README stays true: every stack Parameter is documented (docs/parameters.md) with its real default."""

import re
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> dict[str, str]:
    text = (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8")
    table = text.split("<!-- parameters:start -->")[1].split("<!-- parameters:end -->")[0]
    rows = re.findall(r"^\| `(\w+)` \| (`[^`]*`|\(empty\)) \|", table, flags=re.MULTILINE)
    return {name: "" if default == "(empty)" else default.strip("`") for name, default in rows}


def test_every_parameter_is_documented_with_its_default() -> None:
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    actual = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    assert _documented() == actual


def test_readme_commands_exist_in_the_makefile() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in set(re.findall(r"`make (\w[\w-]*)`", readme)):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), target
