"""Duplicate and reordered deliveries for every trigger end in the same state as one in-order delivery.

Two concurrent deliveries of the reporter's scheduled event are here; the sequential ones (the
scheduled event twice, an older event after a newer one) are in
tests/integration/test_reporter.py: ``test_the_same_scheduled_event_twice_makes_one_snapshot`` and
``test_a_late_older_event_is_recorded_without_moving_latest``; they run in the same suite.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.scenarios.aws import World
from emulator.scenarios.collector import (
    CollectorWorld,
    command_summary,
    instance_id,
    invocation,
    notifications_event,
)
from emulator.scenarios.compliance import ReporterWorld, scheduled_event
from tagpatch.handlers import collector as collector_handler
from tagpatch.handlers import reporter as reporter_handler
from tagpatch.handlers.reconciler import handle
from tests.integration.test_reconciler import assert_single_bundle, put_override, settings_event
from tests.reliability.test_faults import tag_event

Loader = Callable[[str], Any]


def test_the_same_tag_event_twice_makes_one_window_and_the_second_writes_nothing(
    world: World, load_event: Loader
) -> None:
    # Given an instance tagged web and its tag event delivered once
    world.launch("web")
    event = tag_event(load_event, "web")
    first = handle(event, world.reconciler)
    world.log.reset()

    # When EventBridge delivers the same event again
    second = handle(event, world.reconciler)

    # Then the second delivery finds the group converged and writes nothing
    assert first["groups"][0]["status"] == "converged"
    assert second["groups"][0]["status"] == "unchanged"
    assert world.log.count("ssm", writes=True) == 0
    assert_single_bundle(world)


def test_settings_events_reordered_still_apply_the_latest_settings(world: World, load_event: Loader) -> None:
    # Given a converged group whose override is changed twice (v1, then v2)
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    name = put_override(world, "web", {"schedule": "cron(0 1 ? * MON *)"})
    event_v1 = settings_event(load_event, name)
    name = put_override(world, "web", {"schedule": "cron(0 2 ? * TUE *)"})
    event_v2 = settings_event(load_event, name)

    # When the events arrive newest first, then the older one, then the newer one again
    results = [handle(e, world.reconciler) for e in (event_v2, event_v1, event_v2)]

    # Then the window has the settings as they are now (v2), once
    assert [r["groups"][0]["status"] for r in results] == ["converged"] * 3
    made = assert_single_bundle(world)
    assert made["window"]["Schedule"] == "cron(0 2 ? * TUE *)"


def test_a_tag_event_delivered_after_the_schedule_repaired_the_group_changes_nothing(
    world: World, load_event: Loader
) -> None:
    # Given the scheduled reconcile made the group before its tag event arrived (late delivery)
    world.launch("web")
    handle(load_event("reconciler-scheduled.json"), world.reconciler)
    world.log.reset()

    # When the late tag event arrives
    late = handle(tag_event(load_event, "web"), world.reconciler)

    # Then nothing is written and there is one window
    assert late["groups"][0]["status"] == "unchanged"
    assert world.log.count("ssm", writes=True) == 0
    assert_single_bundle(world)


def _wipe(world: CollectorWorld) -> None:
    """Empty the status table and start a new container: the next run starts from nothing."""
    for page in world.ddb.get_paginator("scan").paginate(TableName=world.config.table_name):
        for item in page["Items"]:
            world.ddb.delete_item(TableName=world.config.table_name, Key={"pk": item["pk"], "sk": item["sk"]})
    world.collector = world.make_collector()


def test_notifications_shuffled_and_duplicated_end_in_the_same_table_as_in_order(aws: None) -> None:
    # Given the life of 10 instance runs (InProgress, then Success or Failed), delivered in order
    world = CollectorWorld()
    command = world.send_command("web")
    messages = []
    for n in range(1, 11):
        messages.append(invocation(command, instance_id(n), "InProgress", "2025-06-15T03:01:00.000Z"))
        final = "Failed" if n % 4 == 0 else "Success"
        messages.append(invocation(command, instance_id(n), final, f"2025-06-15T03:{10 + n:02d}:00.000Z"))
    for message in messages:
        assert (
            collector_handler.handle(notifications_event(message), world.collector)["batchItemFailures"] == []
        )
    in_order = {n: world.instance_item(command, instance_id(n)) for n in range(1, 11)}
    alerts_in_order = len(world.alerts())

    # When the same notifications arrive again from scratch, a third of them duplicated, shuffled,
    # in batches of 7
    _wipe(world)
    deliveries = messages + messages[::3]
    random.Random(7).shuffle(deliveries)
    for start in range(0, len(deliveries), 7):
        response = collector_handler.handle(
            notifications_event(*deliveries[start : start + 7]), world.collector
        )
        assert response["batchItemFailures"] == []

    # Then every instance ends with the same status and event time as in order
    for n in range(1, 11):
        expected, got = in_order[n], world.instance_item(command, instance_id(n))
        assert expected is not None and got is not None
        assert (got["status"], got["event_time"]) == (expected["status"], expected["event_time"])
    assert {item["status"] for item in in_order.values() if item} == {"Success", "Failed"}
    # And the failures alerted as often as in order, not once per duplicate
    assert len(world.alerts()) - alerts_in_order == alerts_in_order >= 1


def test_a_tag_targeted_command_notification_first_does_not_lose_the_group_of_later_alerts(
    aws: None,
) -> None:
    # Given a window's command of group web whose first delivery is its Command notification as
    # AWS's tag-targeted sample has it: instanceIds [], outputS3KeyPrefix "" and no bucket
    world = CollectorWorld()
    command = world.send_command("web")
    started = command_summary(command, "InProgress", "2025-06-15T03:00:05Z", prefix="", bucket="")
    assert collector_handler.handle(notifications_event(started), world.collector)["batchItemFailures"] == []

    # When an instance then fails, in this container and in a fresh one
    for collector in (world.collector, world.make_collector()):
        failed = invocation(command, instance_id(1 if collector is world.collector else 2), "Failed")
        world.clock.advance(901)
        assert collector_handler.handle(notifications_event(failed), collector)["batchItemFailures"] == []

    # Then both alerts and both records name the group, and the item keeps where the output is
    alerts = world.alerts()
    assert len(alerts) == 2
    assert all("in group web (command" in alert["Subject"] for alert in alerts)
    assert all("Patch group:   web" in alert["Message"] for alert in alerts)
    for n in (1, 2):
        assert (world.instance_item(command, instance_id(n)) or {}).get("group") == "web"
    assert (world.command_item(command) or {})["output_prefix"] == "patch-output/web"


@pytest.mark.parametrize("overlap", ["inside the first's publish", "before the first's claim"])
def test_two_concurrent_deliveries_of_one_scheduled_report_send_one_digest(aws: None, overlap: str) -> None:
    # Given two groups to snapshot, and the same scheduled event delivered twice at once: the
    # second delivery runs whole while the first is at ``overlap``
    world = ReporterWorld()
    for index, group in enumerate(("web", "db"), start=1):
        world.register(group)
        world.seed(group, 3, group_index=index, missing=1)
    event = scheduled_event(datetime(2025, 6, 1, 6, tzinfo=UTC))
    first, second = world.make_reporter(), world.make_reporter()
    results: list[dict[str, Any]] = []

    def run_second() -> None:
        results.append(reporter_handler.handle(event, second))

    if overlap == "inside the first's publish":
        topic = first._topic
        publish = topic.publish

        def publishing(subject: str, body: str) -> str:
            run_second()
            return publish(subject, body)

        topic.publish = publishing  # type: ignore[method-assign]
    else:
        claim = world.store.claim_digest

        def claiming(*args: Any, **kwargs: Any) -> bool:
            world.store.claim_digest = claim  # type: ignore[method-assign]
            run_second()
            return claim(*args, **kwargs)

        world.store.claim_digest = claiming  # type: ignore[method-assign]

    # When both deliveries run
    results.append(reporter_handler.handle(event, first))

    # Then both succeed, the snapshot is recorded once, and exactly one digest went out
    assert all(result["ok"] for result in results)
    assert len(world.digests()) == 1
    assert [result["digestMessageId"] is not None for result in results].count(True) == 1
    run = world.item("RUN", "SNAP#2025-06-01T06:00:00Z") or {}
    assert run["digest_message_id"] in {result["digestMessageId"] for result in results}
    assert "digest_lease" not in run
