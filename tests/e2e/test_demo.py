"""``make demo`` (``python -m emulator.demo``) runs the whole stack and reports what an operator sees.

It starts its own emulator, so it lives in its own module: the emulator of test_stack.py is
stopped before this module starts (moto's backends are shared by everything in the process).
The demo runs twice here, as ``make demo`` and as ``make demo DEMO_ARGS=--verbose``.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from emulator import demo
from emulator.deploy import SKIPPED

FLOWS = (
    "deploy",
    "tag changes",
    "scheduled reconcile",
    "settings override",
    "invalid override",
    "on-demand dry run",
    "window runs",
    "compliance snapshot",
    "alerts e-mailed",
    "forged result",
    "health",
    "least privilege",
)
VIEWS = (
    "What happened",
    "How it ran",
    "Patch groups and their maintenance windows",
    "Patch run results",
    "Alerts that would have been e-mailed",
    "Compliance report",
    "Dead-letter queues and alarms",
    demo.MADE_BY_API,
    demo.LEAST_PRIVILEGE,
)


@pytest.fixture(scope="module")
def runs() -> dict[bool, tuple[demo.DemoResult, str]]:
    """verbose -> (result, printed text): the demo as `make demo`, then with --verbose."""
    printed = {}
    for verbose in (False, True):
        out = io.StringIO()
        result = demo.run(out, verbose=verbose)
        printed[verbose] = (result, out.getvalue())
    return printed


def _sections(text: str) -> dict[str, str]:
    """``== Heading ===`` -> the lines under it, by heading text."""
    parts = re.split(r"^== (.+?) =+$", text, flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def _section(text: str, title: str) -> str:
    matches = [body for heading, body in _sections(text).items() if heading.startswith(title)]
    assert len(matches) == 1, title
    return matches[0]


@pytest.mark.parametrize("verbose", [False, True])
def test_the_demo_drives_every_flow_with_the_same_outcomes(
    runs: dict[bool, tuple[demo.DemoResult, str]], verbose: bool
) -> None:
    # When the demo runs (with or without --verbose)
    result, text = runs[verbose]

    # Then every flow ran without a failed invocation or a denied request, and each view is printed
    assert not result.failed_invocations, [i.describe_error() for i in result.failed_invocations]
    assert not [access for usage in result.usage for access in usage.denied]
    assert len(result.runs) == 3
    subjects = [email.subject for email in result.emails]
    assert sum("instance Failed in group db" in s for s in subjects) == 1
    assert sum('instance TimedOut in group "Batch Jobs" (command' in s for s in subjects) == 1
    assert sum(s.startswith("TagPatch compliance") for s in subjects) == 1
    headings = list(_sections(text))
    assert [next(h for h in headings if h.startswith(view)) for view in VIEWS] == headings
    # the forged Success for the failed instance was refused by the topic policy, so the real
    # Failed still alerted (above)
    assert result.forged_publish == "denied by NotificationTopic's topic policy (AuthorizationError)"
    assert "with an explicit deny in a resource-based policy (statement OnlyRunCommandPublishes)" in text
    assert result.seconds < 60


def test_the_demo_leads_with_one_line_per_flow(runs: dict[bool, tuple[demo.DemoResult, str]]) -> None:
    # When the demo runs as `make demo`
    _, text = runs[False]

    # Then the first section, after a two-line introduction, says how each flow ended
    lines = text.splitlines()
    assert lines[0].startswith("TagPatch on a local AWS emulator")
    assert lines[3].startswith("== What happened")
    summary = {
        line[2:].split("  ", 1)[0]: line[2:].split("  ", 1)[1].strip()
        for line in _section(text, "What happened").strip("\n").splitlines()
    }
    assert tuple(summary) == FLOWS
    assert summary["window runs"].startswith(
        "web 3 Success; db 1 Failed, 1 Success; Batch Jobs 1 Success, 1 TimedOut"
    )
    assert summary["invalid override"].startswith("Batch Jobs refused - duration")
    assert summary["compliance snapshot"].startswith("71.43% (5 of 7 instances)")
    assert summary["alerts e-mailed"].startswith("2 failure alert(s) and 1 compliance digest")
    assert summary["forged result"] == (
        "a forged Success published to NotificationTopic: "
        "denied by NotificationTopic's topic policy (AuthorizationError)"
    )
    assert summary["health"].startswith("0 failed invocations, 0 denied requests, 0 dead letters")
    assert text.index("== How it ran") < text.index("== Patch groups")


def test_moto_s_skipped_resources_are_listed_once(runs: dict[bool, tuple[demo.DemoResult, str]]) -> None:
    result, text = runs[False]
    skipped = result.deployment.changes(SKIPPED)
    assert skipped
    assert [text.count(change.line()) for change in skipped] == [1] * len(skipped)
    assert "[skipped resource] StatusQueueSubscription (AWS::SNS::Subscription)" in _section(
        text, demo.MADE_BY_API
    )


def test_the_least_privilege_detail_is_printed_only_with_verbose(
    runs: dict[bool, tuple[demo.DemoResult, str]],
) -> None:
    # Given the same flows printed without and with --verbose
    quiet = _section(runs[False][1], demo.LEAST_PRIVILEGE).split("\nDone in")[0]
    verbose = _section(runs[True][1], demo.LEAST_PRIVILEGE).split("\nDone in")[0]

    # Then only --verbose lists each role's used and unused grants; without it, a count and the hint
    assert "denied requests: 0" in quiet and "denied requests: 0" in verbose
    assert "unused:" not in quiet and "      AWS managed " not in quiet
    assert "DEMO_ARGS=--verbose" in quiet
    assert "      unused: sqs:SendMessage" in verbose and "      AWS managed " in verbose
    assert "  ReconcilerFunction (" in verbose and "  ReconcilerFunction (" not in quiet
    assert len(quiet.strip().splitlines()) <= 3


def test_the_run_table_shows_group_names_not_slugs(runs: dict[bool, tuple[demo.DemoResult, str]]) -> None:
    table = _section(runs[False][1], "Patch run results").strip("\n").splitlines()
    groups = [re.split(r"\s{2,}", row.strip())[0] for row in table[2:]]
    assert sorted(set(groups)) == ["Batch Jobs", "db", "web"]
    assert groups.count("Batch Jobs") == 2
    assert "Batch-Jobs-" not in "\n".join(table)


def test_main_passes_verbose_to_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stand-in for the demo that records how it is called
    calls: list[dict[str, Any]] = []

    def fake_run(out: io.StringIO, **options: Any) -> demo.DemoResult:
        calls.append(options)
        return demo.DemoResult(deployment=None, fleet={}, groups={})  # type: ignore[arg-type]

    # When main runs without and with --verbose (the Makefile's DEMO_ARGS)
    codes = [demo.main([], run_demo=fake_run), demo.main(["--verbose"], run_demo=fake_run)]

    # Then both succeed and only the second asks for the least-privilege detail
    assert codes == [0, 0]
    assert [call["verbose"] for call in calls] == [False, True]
