"""Faults at every AWS call site: throttling, 5xx and timeouts are retried; work converges, none is lost."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.scenarios.aws import World
from emulator.scenarios.collector import CollectorWorld, instance_id, invocation, notifications_event
from emulator.scenarios.compliance import ReporterWorld, scheduled_event
from tagpatch.adapters import clients
from tagpatch.adapters.clients import RETRY_CONFIG
from tagpatch.adapters.commands import CommandStatusTable
from tagpatch.adapters.groups import LEASE_SECONDS
from tagpatch.handlers import collector as collector_handler
from tagpatch.handlers import reconciler as reconciler_handler
from tagpatch.handlers import reporter as reporter_handler
from tests.conftest import FakeLambdaContext
from tests.reliability.faults import WireFaults

Loader = Callable[[str], Any]

# One of each fault kind, in a row, then the call succeeds: within the 8 attempts of RETRY_CONFIG.
EVERY_FAULT = ["throttle", "5xx", "read-timeout", "connect-timeout"]

# Every AWS call the reconciler makes, and the scenario step that makes it.
RECONCILER_CALLS = {
    "ssm": [
        "GetParameter",
        "DescribeMaintenanceWindows",
        "CreateMaintenanceWindow",
        "RegisterTargetWithMaintenanceWindow",
        "RegisterTaskWithMaintenanceWindow",
        "GetParametersByPath",
        "GetMaintenanceWindow",
        "DescribeMaintenanceWindowTargets",
        "DescribeMaintenanceWindowTasks",
        "GetMaintenanceWindowTask",
        "UpdateMaintenanceWindow",
    ],
    "dynamodb": ["GetItem", "UpdateItem", "Scan"],
    "ec2": ["DescribeInstances"],
}


def tag_event(load_event: Loader, group: str) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(load_event("reconciler-tag-added.json"))
    event["detail"]["tags"]["PatchGroup"] = group
    event["detail"]["changed-tag-keys"] = ["PatchGroup"]
    return event


def run_reconciler_scenario(
    world: World, load_event: Loader, arm: Callable[[str], None]
) -> list[dict[str, Any]]:
    """A new group by tag event, the schedule's verify, then drift repaired by the schedule."""
    arm("start")
    results = [reconciler_handler.handle(tag_event(load_event, "web"), world.reconciler)]
    results.append(reconciler_handler.handle(load_event("reconciler-scheduled.json"), world.reconciler))
    window_id = world.window_of("web")["WindowId"]
    world.ssm.update_maintenance_window(WindowId=window_id, Schedule="cron(0 5 ? * MON *)")
    arm("drifted")
    results.append(reconciler_handler.handle(load_event("reconciler-scheduled.json"), world.reconciler))
    return results


@pytest.mark.parametrize("operation", [op for ops in RECONCILER_CALLS.values() for op in ops], ids=str)
def test_reconciler_retries_every_call_and_converges(
    world: World, faults: WireFaults, load_event: Loader, operation: str
) -> None:
    # Given an instance in group web, and the next calls of one operation failing with
    # throttling, a 5xx, a read timeout and a connect timeout
    world.launch("web")
    faults.attempts.clear()

    def arm(step: str) -> None:
        if step == ("drifted" if operation == "UpdateMaintenanceWindow" else "start"):
            faults.fail(operation, EVERY_FAULT)

    # When the group is made, verified and its drift repaired
    results = run_reconciler_scenario(world, load_event, arm)

    # Then every fault was met and retried, and the group converged to exactly one window bundle
    assert faults.injected[operation] == len(EVERY_FAULT)
    assert faults.pending() == 0
    assert all(result["ok"] for result in results), results
    assert [g["status"] for r in results for g in r["groups"]] == ["converged"] * 3
    window = world.window_of("web")
    assert window["Schedule"] == "cron(0 3 ? * SUN *)"
    assert len(world.targets(window["WindowId"])) == 1
    assert len(world.tasks(window["WindowId"])) == 1
    assert world.record("web")["status"] == "converged"


def test_reconciler_fault_beyond_the_retry_budget_fails_loudly_then_a_rerun_converges(
    world: World, faults: WireFaults, load_event: Loader
) -> None:
    # Given CreateMaintenanceWindow throttled on every attempt: botocore reads RETRY_CONFIG's
    # max_attempts=8 as 8 retries, 9 attempts in all
    world.launch("web")
    faults.fail("CreateMaintenanceWindow", ["throttle"] * 9)

    # When the tag event arrives, the error escapes (Lambda retries the event, then the DLQ) and
    # the group is recorded as failed with the reason
    with pytest.raises(ClientError, match="reached max retries: 8"):
        reconciler_handler.handle(tag_event(load_event, "web"), world.reconciler)
    assert faults.attempts["CreateMaintenanceWindow"] == 9
    record = world.record("web")
    assert record["status"] == "failed"
    assert "Throttling" in record["reasons"][0]

    # Then the redelivered event converges the group with one window
    result = reconciler_handler.handle(tag_event(load_event, "web"), world.reconciler)
    assert result["groups"][0]["status"] == "converged"
    assert len(world.windows()) == 1


# --- collector ---------------------------------------------------------------------------------


def faulty_collector_world(faults: WireFaults) -> CollectorWorld:
    world = CollectorWorld()
    world.ddb = world.log.attach(boto3.client("dynamodb", config=RETRY_CONFIG))
    world.sns = world.log.attach(boto3.client("sns", config=RETRY_CONFIG))
    world.sqs = world.log.attach(boto3.client("sqs", config=RETRY_CONFIG))
    world.ssm = world.log.attach(boto3.client("ssm", config=RETRY_CONFIG))
    world.table = CommandStatusTable(world.config.table_name, world.ddb)
    world.collector = world.make_collector()
    return world


@pytest.mark.parametrize("operation", ["UpdateItem", "ListCommands", "Publish"])
def test_collector_retries_every_call_and_records_every_notification(
    aws: None, no_backoff: None, faults: WireFaults, operation: str
) -> None:
    # Given a command with 20 instances, and the next calls of one operation failing
    world = faulty_collector_world(faults)
    command = world.send_command("web")
    faults.fail(operation, EVERY_FAULT)
    messages = [
        invocation(command, instance_id(n), "Failed" if n == 1 else "Success", "2025-06-15T03:02:00Z")
        for n in range(1, 21)
    ]

    # When the batch is processed
    response = collector_handler.handle(notifications_event(*messages), world.collector)

    # Then the faults were retried, no record failed, and every notification is in the table
    assert faults.injected[operation] == len(EVERY_FAULT)
    assert response == {"batchItemFailures": []}
    for n in range(1, 21):
        item = world.instance_item(command, instance_id(n))
        assert item is not None and item["status"] == ("Failed" if n == 1 else "Success")
        assert item["group"] == "web"
    assert len(world.alerts()) == 1


# --- reporter ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        "DescribePatchGroups",
        "DescribePatchGroupState",
        "DescribeInstancePatchStatesForPatchGroup",
        "Scan",
        "BatchWriteItem",
        "BatchGetItem",
        "Publish",
    ],
)
def test_reporter_retries_every_call_and_records_the_snapshot(
    aws: None, no_backoff: None, faults: WireFaults, operation: str
) -> None:
    # Given two groups of instances, and the next calls of one operation failing
    world = ReporterWorld()
    world.manage("web")
    world.register("web")
    world.register("db")
    world.seed("web", 30, group_index=1, missing=1)
    world.seed("db", 5, group_index=2)
    faults.fail(operation, EVERY_FAULT)

    # When the scheduled snapshot runs
    result = reporter_handler.handle(scheduled_event(datetime(2025, 6, 1, 6, tzinfo=UTC)), world.reporter)

    # Then the faults were retried and both groups' snapshots and the digest are recorded
    assert faults.injected[operation] == len(EVERY_FAULT), dict(faults.attempts)
    assert result["ok"], result
    assert {g["group"]: g["status"] for g in result["groups"]} == {"web": "recorded", "db": "recorded"}
    assert world.item("GROUP#web", "LATEST") is not None
    assert world.item("GROUP#db", "LATEST") is not None
    assert len(world.digests()) == 1


# --- issue 12 #4: retries bounded by the time the invocation has left -------------------------


def test_retries_stop_before_the_invocation_ends_and_nothing_is_half_made(
    world: World,
    faults: WireFaults,
    load_event: Loader,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given clients bounded as production's are, 200 s left in the invocation, and
    # CreateMaintenanceWindow timing out after 30 s on every attempt (9 allowed by RETRY_CONFIG)
    for any_client in (world.ssm, world.ddb, world.ec2):
        clients.bounded(any_client)
    now = [time.time()]
    monkeypatch.setattr(clients, "clock", lambda: now[0])

    def attempt_takes_time(operation: str) -> None:
        if operation == "CreateMaintenanceWindow":
            now[0] += 30

    faults.on_attempt = attempt_takes_time
    faults.fail("CreateMaintenanceWindow", ["read-timeout"] * 9)
    lambda_context.remaining_time_in_millis = 200_000
    world.launch("web")

    # When the tag event is handled, the retries stop at the first attempt that could not finish
    # in time (at 180 s: 180 + 35 > 200), and the error reaches Lambda, which retries the event
    with pytest.raises(clients.DeadlineReached):
        reconciler_handler.handle(tag_event(load_event, "web"), world.reconciler, lambda_context)
    assert faults.attempts["CreateMaintenanceWindow"] == 6
    assert world.windows() == []

    # Then the deadline is the invocation's only: a later invocation (after the lease) converges
    faults.on_attempt = None
    faults.clear()  # the 3 attempts never made
    later = world.make_reconciler()
    later.clock = lambda: time.time() + LEASE_SECONDS + 1
    result = reconciler_handler.handle(tag_event(load_event, "web"), later, lambda_context)
    assert result["groups"][0]["status"] == "converged"
    assert len(world.windows()) == 1


# --- issue 12 #19: drift against what SSM really answers -------------------------------------


def test_a_converged_group_costs_no_write_although_ssm_reports_defaults(
    world: World, load_event: Loader
) -> None:
    # Given a group made by TagPatch, whose task SSM reports with defaults TagPatch never set
    world.launch("web")
    reconciler_handler.handle(tag_event(load_event, "web"), world.reconciler)
    window_id = world.window_of("web")["WindowId"]
    run = world.tasks(window_id)[0]["TaskInvocationParameters"]["RunCommand"]
    assert run["CloudWatchOutputConfig"] == {"CloudWatchOutputEnabled": False}
    assert run["Parameters"]["InstallOverrideList"] == [""]

    # When the scheduled verify runs twice
    world.log.reset()
    for _ in range(2):
        result = reconciler_handler.handle(load_event("reconciler-scheduled.json"), world.reconciler)
        assert result["groups"][0]["actions"] == []

    # Then it wrote nothing
    assert world.log.count("ssm", writes=True) == 0


# --- issue 12 #6: a failed alert publish uses no alert slot -------------------------------


def test_an_sns_outage_over_four_cooldowns_uses_no_alert_slot_and_alarms_then_sends_once(
    aws: None, no_backoff: None, faults: WireFaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a failing instance, and SNS (or the topic's KMS key) failing every publish attempt for
    # five deliveries, each beyond RETRY_CONFIG's budget (1 attempt + 8 retries), one cooldown apart
    world = faulty_collector_world(faults)
    command = world.send_command("web")
    event = notifications_event(invocation(command, instance_id(1), "Failed"))
    counted: list[dict[str, Any]] = []
    monkeypatch.setattr(
        collector_handler.metrics,
        "add_metric",
        lambda **metric: counted.append(metric),
    )
    for _ in range(5):
        faults.fail("Publish", ["unavailable"] * 9)
        response = collector_handler.handle(event, world.collector)
        # Then each time the record is reported failed (SQS redelivers it) ...
        assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
        world.clock.advance(world.config.alert_cooldown_seconds)
    assert faults.injected["Publish"] == 5 * 9 and faults.pending() == 0
    # ... the failure is counted for the stack's alarm, and no slot of the budget is used
    assert sum(m["value"] for m in counted if m["name"] == "AlertPublishFailures") == 5
    item = world.command_item(command) or {}
    assert "alert_count" not in item and "alert_lease" not in item

    # When SNS is back, the next delivery sends the alert: once, as alert 1, however often the
    # record is delivered again
    for _ in range(3):
        assert collector_handler.handle(event, world.collector)["batchItemFailures"] == []
    (alert,) = world.alerts()
    assert instance_id(1) in alert["Message"] and "This is alert 1 of at most 4" in alert["Message"]
    assert (world.command_item(command) or {})["alert_count"] == 1
