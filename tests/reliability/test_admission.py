"""Attacks and faults on what the reconciler admits (issue 12, items 1, 2, 3, 9, 21).

Each test drives the reconciler through its handler against the emulated account and checks that
the hostile or broken input is refused with a reason, touches nothing it must not, and never ends
in a failed group or a dead-lettered event.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.scenarios.aws import World
from tagpatch.handlers.reconciler import handle
from tests.integration.test_reconciler import assert_single_bundle, put_override, settings_event
from tests.reliability.test_faults import tag_event

Loader = Any


# --- item 9: overrides that break the JSON parser --------------------------------------------


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ('{"priority": ' + "7" * 5000 + "}", "override is not usable JSON"),
        ('{"comment": ' + "[" * 3000 + "]" * 3000 + "}", "override nests 3001 levels deep"),
    ],
    ids=["5000-digit integer", "3000 levels of nesting"],
)
def test_an_override_the_json_parser_chokes_on_is_refused_not_failed(
    world: World, load_event: Loader, override: str, reason: str
) -> None:
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    before = assert_single_bundle(world)
    name = put_override(world, "web", "{}")
    world.ssm.put_parameter(Name=name, Value=override, Type="String", Tier="Advanced", Overwrite=True)
    world.log.reset()
    # Before the fix: ValueError / RecursionError escaped, the group was marked failed and the
    # event went to the DLQ after Lambda's retries.
    result = handle(settings_event(load_event, name), world.reconciler)
    [outcome] = result["groups"]
    assert outcome["status"] == "refused", outcome
    assert any(reason in r for r in outcome["reasons"])
    assert world.log.count("ssm", writes=True) == 0
    assert assert_single_bundle(world) == before
    assert world.record("web")["status"] == "refused"
    # the scheduled run refuses it the same way instead of failing the group
    scheduled = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert scheduled["ok"] and scheduled["groups"][0]["status"] == "refused"


# --- item 21: a patch baseline given as an ARN -----------------------------------------------


def test_a_baseline_given_as_an_arn_is_registered_once_not_on_every_run(
    world: World, load_event: Loader
) -> None:
    baseline = world.ssm.create_patch_baseline(Name="base", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    arn = f"arn:aws:ssm:us-east-1:123456789012:patchbaseline/{baseline}"
    put_override(world, "web", {"patchBaselineId": arn})
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    mappings = world.ssm.describe_patch_groups()["Mappings"]
    assert [(m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in mappings] == [("web", baseline)]
    assert world.record("web")["baseline_id"] == baseline
    # Before the fix the ARN never equalled DescribePatchGroups' BaselineId: registered every run.
    for _ in range(2):
        world.log.reset()
        result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
        assert result["groups"][0]["status"] == "converged"
        assert world.log.count("ssm", writes=True) == 0, world.log.ops("ssm")
