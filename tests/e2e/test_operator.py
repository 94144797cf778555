"""``make operator`` (``python -m emulator.operator``): the CLI's commands against the demo stack.

It starts its own emulator, so it lives in its own module (moto's backends are shared by
everything in the process).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

from emulator import operator

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_operator_run_writes_its_html_report_under_the_ignored_build_folder() -> None:
    # Given the repository's build folder, which git ignores
    report = REPO_ROOT / "build" / "tagpatch-report.html"
    assert "build/" in (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    started = time.time()
    out = io.StringIO()

    # When the operator commands run as `make operator` runs them
    code = operator.run(out)

    # Then every command exited as expected and the html report is in build/, as the output says
    text = out.getvalue()
    assert code == 0, text
    assert report == operator.REPORT_FILE
    assert report.stat().st_mtime >= started - 1
    assert "<svg" in report.read_text(encoding="utf-8")
    assert "build/tagpatch-report.html" in text.splitlines()[-1]
    assert "(stderr) wrote " in text and f"wrote {operator._shown(report)}" in text
