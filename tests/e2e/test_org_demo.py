"""``make demo-org`` (``python -m emulator.demo_org``) runs the organization end to end and says so.

It starts its own emulator (moto's backends are shared by everything in the process), so it is its
own module; it runs once (about 40 s).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest

from emulator import demo_org

OUTCOMES = (
    "organization",
    "hub",
    "member stacks",
    "member events",
    "outsider",
    "hub store",
    "silent member",
    "digest",
    "health",
)
SECTIONS = (
    "What happened",
    "How it ran (timed steps)",
    "The organization report: the tagpatch CLI against the hub stack (tagpatch-hub)",
    "The digest on HubTopic (what DigestEmail receives)",
    "Least privilege: hub and member roles (IAM enforced; journal of every request)",
    "What the emulator does differently from AWS",
    "Timings",
)


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[demo_org.OrgDemoResult, str]]:
    out = io.StringIO()
    result = demo_org.run(out)
    yield result, out.getvalue()


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^== (.+?) =+$", text, flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_demo_prints_every_outcome_and_section(run: tuple[demo_org.OrgDemoResult, str]) -> None:
    result, text = run
    sections = _sections(text)
    assert list(sections) == list(SECTIONS)
    labels = [re.split(r"\s{2,}", line.strip())[0] for line in sections["What happened"].strip().splitlines()]
    assert labels == list(OUTCOMES)
    assert result.seconds < 300


def test_the_demo_ends_healthy_with_the_outsider_refused_and_a_silent_member(
    run: tuple[demo_org.OrgDemoResult, str],
) -> None:
    result, text = run
    assert not result.failed_invocations
    assert not [access for usage in result.usage for access in usage.denied]
    assert result.scenario.outsider_direct.startswith("AccessDeniedException")
    refused = [d for d in result.scenario.forwarded if d.refused]
    assert refused and {d.sender_account for d in refused} == {result.org.org.outsider}
    assert "0 failed invocations, 0 denied requests" in text
    assert re.search(r"SILENT", _sections(text)[SECTIONS[2]])
    assert '"silentMembers": 1' in result.digest
    assert result.left == "2 stack instances deleted, 0 retained"
    assert all(code == 0 for _, code, _, _ in result.cli)


def test_the_demo_says_what_the_emulator_does_differently(run: tuple[demo_org.OrgDemoResult, str]) -> None:
    _, text = run
    notes = _sections(text)["What the emulator does differently from AWS"]
    for phrase in (
        "CreateStackSet ignores AutoDeployment",
        "bus policy",
        "OrganizationAccountAccessRole",
        "clock",
    ):
        assert phrase in notes
