"""``make demo`` (``python -m emulator.demo``) runs the whole stack and reports what an operator sees.

It starts its own emulator, so it lives in its own module: the emulator of test_stack.py is
stopped before this module starts (moto's backends are shared by everything in the process).
"""

from __future__ import annotations

import io

from emulator import demo


def test_the_demo_drives_every_flow_and_prints_the_operator_views() -> None:
    # Given nothing but this repository
    out = io.StringIO()

    # When the demo runs
    result = demo.run(out)

    # Then every flow ran without a failed invocation or a denied request, and each view is printed
    text = out.getvalue()
    assert not result.failed_invocations, [i.describe_error() for i in result.failed_invocations]
    assert not [access for usage in result.usage for access in usage.denied]
    assert len(result.runs) == 3
    subjects = [email.subject for email in result.emails]
    assert sum("instance Failed in group db" in s for s in subjects) == 1
    assert sum("instance TimedOut in group Batch Jobs (command" in s for s in subjects) == 1
    assert sum(s.startswith("TagPatch compliance") for s in subjects) == 1
    for heading in (
        "Patch groups and their maintenance windows",
        "Patch run results",
        "Alerts that would have been e-mailed",
        "Compliance report",
        "Made through service APIs because moto's CloudFormation did not",
        "Least privilege: granted but never used",
    ):
        assert f"== {heading}" in text
    assert "[skipped resource] StatusQueueSubscription (AWS::SNS::Subscription)" in text
    # and the forged Success for the failed instance was refused by the topic policy, so the real
    # Failed still alerted (above)
    assert result.forged_publish == "denied by NotificationTopic's topic policy (AuthorizationError)"
    assert "with an explicit deny in a resource-based policy (statement OnlyRunCommandPublishes)" in text
    assert result.seconds < 60
