"""The status collector against moto: records, ordering, malformed messages, alerts and their bounds.

Every test drives ``handle`` with SQS events shaped as Lambda receives them from the status queue
(SNS JSON inside, raw delivery off) and asserts exact DynamoDB call counts with ``CallLog``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from emulator.scenarios.aws import make_dynamodb_writes_atomic
from emulator.scenarios.collector import (
    BUCKET,
    COLLECTOR_ENV,
    T0,
    CollectorWorld,
    command_summary,
    instance_id,
    invocation,
    notifications_event,
    sns_body,
    sqs_event,
    sqs_record,
)
from tagpatch.adapters import commands as commands_adapter
from tagpatch.handlers.collector import handle
from tests.support.collector import SAMPLE_COMMAND_ID, SAMPLE_INSTANCES

Loader = Callable[[str], Any]
DAY = 86_400


@pytest.fixture
def world(aws: None) -> Iterator[CollectorWorld]:
    yield CollectorWorld()


def failures_of(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def with_command(event: dict[str, Any], command_id: str) -> dict[str, Any]:
    """``event`` (from events/) with every SSM message's commandId replaced."""
    event = copy.deepcopy(event)
    for record in event["Records"]:
        envelope = json.loads(record["body"])
        try:
            message = json.loads(envelope["Message"])
        except ValueError:
            continue
        message["commandId"] = command_id
        envelope["Message"] = json.dumps(message)
        record.update(sqs_record(json.dumps(envelope), message_id=record["messageId"]))
    return event


# --------------------------------------------------------------------------------------------
# Success flow, records, indexes, TTL
# --------------------------------------------------------------------------------------------
def test_an_instance_run_is_recorded_with_its_group_and_history(world: CollectorWorld) -> None:
    # Given a command sent by the web group's window
    command = world.send_command("web")
    first = instance_id(1)

    # When its invocation goes InProgress, then Success
    started = handle(
        notifications_event(invocation(command, first, "InProgress", "2025-06-15T03:05:00Z")), world.collector
    )
    done = handle(
        notifications_event(invocation(command, first, "Success", "2025-06-15T03:09:30.5Z")), world.collector
    )

    # Then the instance item holds the latest status, its time, rank, group and expiry, and
    # nothing its command's other instances share (that is on the command item)
    assert failures_of(started) == failures_of(done) == []
    item = world.instance_item(command, first)
    assert item is not None
    assert item == {
        "pk": f"CMD#{command}",
        "sk": f"INST#{first}",
        "status": "Success",
        "status_rank": 3,
        "event_time": "2025-06-15T03:09:30.500000Z",
        "instance_id": first,
        "group": "web",
        "ttl": item["ttl"],
    }
    # And readers get the command id back from the key
    assert [(i["command_id"], i["status"]) for i in world.table.by_instance(first)] == [(command, "Success")]
    # And the command item counts statuses and remembers where the command writes
    summary = world.command_item(command)
    assert summary is not None
    assert (summary["count_Success"], summary["count_InProgress"]) == (1, 0)
    assert (summary["group"], summary["output_prefix"]) == ("web", "patch-output/web")
    # And nobody was alerted
    assert world.alerts() == []


def test_dynamodb_calls_per_notification(world: CollectorWorld) -> None:
    command = world.send_command("web")

    def calls(*messages: dict[str, Any]) -> tuple[int, int]:
        world.log.reset()
        response = handle(notifications_event(*messages), world.collector)
        assert failures_of(response) == []
        return world.log.count("dynamodb"), world.log.count("ssm")

    # first notification of a command in a container: GetItem (group), ListCommands, record, merge
    assert calls(invocation(command, instance_id(1), "InProgress", "2025-06-15T03:01:00Z")) == (3, 1)
    # a new status, context cached: record + merge
    assert calls(invocation(command, instance_id(1), "Success", "2025-06-15T03:02:00Z")) == (2, 0)
    # a duplicate (or a late, superseded status): the conditional record write only
    assert calls(invocation(command, instance_id(1), "Success", "2025-06-15T03:02:00Z")) == (1, 0)
    assert calls(invocation(command, instance_id(1), "InProgress", "2025-06-15T03:01:30Z")) == (1, 0)
    # a new failure that alerts: record + merge + claim + mark alerted (and one SNS publish), and
    # the container's first alert reads the group names (one Scan, cached for 5 minutes)
    assert calls(invocation(command, instance_id(2), "Failed", "2025-06-15T03:03:00Z")) == (5, 0)
    assert world.log.ops("dynamodb")["Scan"] == 1
    assert world.log.ops("sns") == {"Publish": 1}
    # a new failure during the cooldown: record + merge + flush due (and one SQS SendMessage)
    assert calls(invocation(command, instance_id(3), "Failed", "2025-06-15T03:04:00Z")) == (3, 0)
    assert world.log.ops("sqs") == {"SendMessage": 1}
    # another during the same cooldown (flush already due): record + merge
    assert calls(invocation(command, instance_id(4), "Failed", "2025-06-15T03:05:00Z")) == (2, 0)
    # a redelivered failure: record (no-op) + merge (the failure is known: no alert)
    assert calls(invocation(command, instance_id(2), "Failed", "2025-06-15T03:03:00Z")) == (2, 0)
    # 100 new statuses of one command in one batch: one record each + one merge
    batch = [invocation(command, instance_id(100 + n), "Success", "2025-06-15T03:06:00Z") for n in range(100)]
    assert calls(*batch) == (101, 0)
    # Command notifications: the command item only
    assert calls(command_summary(command, "InProgress", "2025-06-15T03:00:05Z")) == (1, 0)
    # a Command-level failure: record (claims the final alert) + mark sent (and one SNS publish)
    assert calls(command_summary(command, "Failed", "2025-06-15T03:30:00Z")) == (2, 0)
    assert calls(command_summary(command, "Failed", "2025-06-15T03:30:00Z")) == (1, 0)


def test_the_group_is_looked_up_once_per_command_not_per_notification(world: CollectorWorld) -> None:
    # Given a command and its notifications spread over batches and containers
    command = world.send_command("db")
    for n in range(3):
        handle(notifications_event(invocation(command, instance_id(n), "InProgress")), world.collector)
    # Then one container asked SSM once and read the command item once
    assert world.log.ops("ssm") == {"ListCommands": 1}
    assert world.log.ops("dynamodb")["GetItem"] == 1

    # When a new container sees the command
    world.log.reset()
    fresh = world.make_collector()
    handle(notifications_event(invocation(command, instance_id(9), "InProgress")), fresh)
    # Then it reads the group persisted on the command item and does not ask SSM
    assert world.log.count("ssm") == 0
    assert world.log.ops("dynamodb")["GetItem"] == 1
    item = world.instance_item(command, instance_id(9))
    assert item is not None and item["group"] == "db"


def test_an_unknown_command_is_recorded_without_a_group(world: CollectorWorld, load_event: Loader) -> None:
    # Given the sample event, whose command SSM does not know (older than 30 days, or foreign)
    response = handle(load_event("collector-invocation-failed.json"), world.collector)

    # Then the run is recorded (outside the group index) and still alerted, with the console link
    assert failures_of(response) == []
    item = world.instance_item(SAMPLE_COMMAND_ID, SAMPLE_INSTANCES[0])
    assert item is not None and item["status"] == "Failed" and "group" not in item
    assert "output_prefix" not in (world.command_item(SAMPLE_COMMAND_ID) or {})  # another container may retry
    (alert,) = world.alerts()
    assert alert["Subject"] == f"TagPatch tagpatch-test: 1 instance Failed (command {SAMPLE_COMMAND_ID[:8]})"
    assert f"run-command/{SAMPLE_COMMAND_ID}?region=us-east-1" in alert["Message"]


def test_records_are_queryable_by_command_instance_group_and_time(world: CollectorWorld) -> None:
    from datetime import UTC, datetime

    # Given two commands of two groups, each run on a shared instance
    web, db = world.send_command("web"), world.send_command("db")
    shared = instance_id(1)
    handle(
        notifications_event(
            invocation(web, shared, "Success", "2025-06-01T03:10:00Z"),
            invocation(web, instance_id(2), "Failed", "2025-06-01T03:11:00Z"),
            invocation(db, shared, "Success", "2025-06-08T03:10:00Z"),
        ),
        world.collector,
    )

    # Then by command, by instance and by group (with a time range) each finds its records
    assert {i["instance_id"] for i in world.table.invocations(web)} == {shared, instance_id(2)}
    assert [i["command_id"] for i in world.table.by_instance(shared)] == [web, db]
    since = datetime(2025, 6, 5, tzinfo=UTC)
    assert [i["command_id"] for i in world.table.by_instance(shared, since=since)] == [db]
    assert {i["instance_id"] for i in world.table.by_group("web")} == {shared, instance_id(2)}
    until = datetime(2025, 6, 1, 3, 10, 30, tzinfo=UTC)
    assert [i["instance_id"] for i in world.table.by_group("web", until=until)] == [shared]
    assert [i["command_id"] for i in world.table.by_group("db")] == [db]


def test_every_record_expires_after_the_history_period(world: CollectorWorld) -> None:
    # Given the table as the template makes it
    ttl = world.ddb.describe_time_to_live(TableName=world.config.table_name)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("ttl", "ENABLED")
    command = world.send_command("web")

    # When notifications are recorded
    handle(
        notifications_event(
            invocation(command, instance_id(1), "Failed"),
            command_summary(command, "Failed", instances=[instance_id(1)]),
        ),
        world.collector,
    )

    # Then both kinds of item carry ttl = now + CommandHistoryDays (90)
    for item in (world.instance_item(command, instance_id(1)), world.command_item(command)):
        assert item is not None
        assert item["ttl"] == int(T0) + 90 * DAY


def test_history_days_come_from_the_environment(aws: None) -> None:
    world = CollectorWorld(COMMAND_HISTORY_DAYS="7")
    command = world.send_command("web")

    handle(notifications_event(invocation(command, instance_id(1), "Success")), world.collector)

    assert (world.instance_item(command, instance_id(1)) or {})["ttl"] == int(T0) + 7 * DAY


# --------------------------------------------------------------------------------------------
# Ordering and duplicates
# --------------------------------------------------------------------------------------------
def test_a_late_in_progress_never_overwrites_success(world: CollectorWorld) -> None:
    command = world.send_command("web")
    target = instance_id(1)
    # Given Success recorded first
    handle(
        notifications_event(invocation(command, target, "Success", "2025-06-15T03:09:00Z")), world.collector
    )

    # When the earlier InProgress and Pending arrive late (in one batch and in another)
    handle(
        notifications_event(
            invocation(command, target, "InProgress", "2025-06-15T03:05:00Z"),
            invocation(command, target, "Pending", "2025-06-15T03:04:00Z"),
        ),
        world.collector,
    )
    handle(
        notifications_event(invocation(command, target, "InProgress", "2025-06-15T03:10:00Z")),
        world.collector,
    )

    # Then the record still says Success at its time and rank, and the counts are intact
    item = world.instance_item(command, target) or {}
    assert (item["status"], item["event_time"], item["status_rank"]) == (
        "Success",
        "2025-06-15T03:09:00.000000Z",
        3,
    )
    summary = world.command_item(command) or {}
    assert summary["count_Success"] == 1
    assert "count_InProgress" not in summary


def test_a_duplicate_changes_nothing(world: CollectorWorld) -> None:
    command = world.send_command("web")
    event = notifications_event(invocation(command, instance_id(1), "InProgress"))
    handle(event, world.collector)
    before = (world.instance_item(command, instance_id(1)), world.command_item(command))

    world.clock.advance(60)
    handle(event, world.collector)

    assert (world.instance_item(command, instance_id(1)), world.command_item(command)) == before


def test_both_cancel_spellings_are_one_status(world: CollectorWorld) -> None:
    command = world.send_command("web")

    handle(
        notifications_event(
            invocation(command, instance_id(1), "Canceled"),
            invocation(command, instance_id(2), "Cancelled"),
        ),
        world.collector,
    )

    assert {(world.instance_item(command, instance_id(n)) or {})["status"] for n in (1, 2)} == {"Cancelled"}
    (alert,) = world.alerts()
    assert "2 instances Cancelled in group web" in alert["Subject"]


# --------------------------------------------------------------------------------------------
# Malformed messages
# --------------------------------------------------------------------------------------------
def test_exactly_the_malformed_records_fail_and_the_rest_of_the_batch_succeeds(
    world: CollectorWorld, load_event: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the mixed sample batch (one record's Message is not JSON) plus one of each other kind
    command = world.send_command("web")
    event = with_command(load_event("collector-mixed-batch.json"), command)
    good = invocation(command, instance_id(7), "InProgress")
    bad = {
        "wrong-shape": sqs_record(sns_body({**good, "instanceId": None})),
        "unknown-status": sqs_record(sns_body({**good, "status": "Exploded"})),
        "oversized": sqs_record(sns_body("x" * 300_000)),
        "not-an-sqs-record": {"messageId": "not-an-sqs-record", "body": "{}"},
    }
    for message_id, record in bad.items():
        record["messageId"] = message_id
        event["Records"].append(record)
    event["Records"].append(sqs_record(sns_body(good), message_id="last-good"))

    # When the batch is handled
    response = handle(event, world.collector)

    # Then exactly the bad records are reported, so SQS redelivers them and then dead-letters them
    malformed = event["Records"][1]["messageId"]
    assert sorted(failures_of(response)) == sorted([malformed, *bad])
    # And every good record was recorded and the TimedOut one alerted
    assert (world.instance_item(command, SAMPLE_INSTANCES[0]) or {})["status"] == "Success"
    assert (world.instance_item(command, SAMPLE_INSTANCES[1]) or {})["status"] == "TimedOut"
    assert (world.instance_item(command, instance_id(7)) or {})["status"] == "InProgress"
    assert len(world.alerts()) == 1
    # And each refusal is logged with its reason
    reasons = {
        getattr(log, "messageId", None): getattr(log, "reason", None)
        for log in caplog.records
        if log.getMessage().startswith("malformed")
    }
    assert reasons == {
        malformed: "not JSON",
        "wrong-shape": "wrong shape",
        "unknown-status": "unknown status",
        "oversized": "oversized",
        "not-an-sqs-record": "wrong shape",
    }


def test_a_batch_of_only_malformed_records_reports_them_all(world: CollectorWorld) -> None:
    event = sqs_event("nope", "{}")

    response = handle(event, world.collector)

    assert failures_of(response) == [record["messageId"] for record in event["Records"]]
    assert handle({"Records": []}, world.collector) == {"batchItemFailures": []}


def test_a_failed_write_fails_only_its_record(world: CollectorWorld) -> None:
    command = world.send_command("web")
    event = notifications_event(
        invocation(command, instance_id(1), "Success"), invocation(command, instance_id(2), "Success")
    )
    original = world.table.record_invocation

    def flaky(record: Any, **kwargs: Any) -> Any:
        if record.instance_id == instance_id(2):
            raise RuntimeError("throttled beyond retries")
        return original(record, **kwargs)

    world.table.record_invocation = flaky  # type: ignore[method-assign]
    response = handle(event, world.collector)

    assert failures_of(response) == [event["Records"][1]["messageId"]]
    assert world.instance_item(command, instance_id(1)) is not None
    assert world.instance_item(command, instance_id(2)) is None


# --------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------
def test_a_failure_alerts_once_with_group_status_and_links(world: CollectorWorld, load_event: Loader) -> None:
    # Given the sample Failed invocation for a command of the web group
    command = world.send_command("web")
    event = with_command(load_event("collector-invocation-failed.json"), command)
    failed = SAMPLE_INSTANCES[0]

    # When it is delivered, then delivered again (SQS at-least-once), also to another container
    handle(event, world.collector)
    handle(event, world.collector)
    handle(event, world.make_collector())

    # Then exactly one readable alert names the group, the instance, its status and where to look
    (alert,) = world.alerts()
    assert (
        alert["Subject"] == f"TagPatch tagpatch-test: 1 instance Failed in group web (command {command[:8]})"
    )
    body = alert["Message"]
    assert f"  {failed}  Failed" in body
    assert "Patch group:   web" in body
    assert (
        f"https://s3.console.aws.amazon.com/s3/buckets/{BUCKET}?region=us-east-1"
        f"&prefix=patch-output/web/{command}/{failed}/&showversions=false"
    ) in body
    assert (
        f"https://us-east-1.console.aws.amazon.com/systems-manager/run-command/{command}?region=us-east-1"
        in body
    )
    assert f"s3://{BUCKET}/patch-output/web/{command}/" in body


def test_an_alert_names_the_group_by_its_tag_value_not_its_slug(world: CollectorWorld) -> None:
    # Given the group "Batch Jobs", whose windows write under its SSM-safe slug
    slug = world.record_group("Batch Jobs")
    command = world.send_command(slug)
    assert slug != "Batch Jobs"

    # When one of its instances fails
    handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)

    # Then the alert names the group as the operator tagged it, and the slug where S3 uses it
    (alert,) = world.alerts()
    assert alert["Subject"] == (
        f'TagPatch tagpatch-test: 1 instance Failed in group "Batch Jobs" (command {command[:8]})'
    )
    assert f'Patch group:   "Batch Jobs" (slug {slug})' in alert["Message"]
    assert f"s3://{BUCKET}/patch-output/{slug}/{command}/" in alert["Message"]


def test_an_alert_without_readable_group_names_names_the_slug(world: CollectorWorld) -> None:
    # Given a collector whose group names cannot be read (the table is gone)
    world.ddb.delete_table(TableName=world.config.groups_table_name)
    command = world.send_command("web")

    # When an instance fails, the alert still goes out, naming the group by its slug
    response = handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)
    assert failures_of(response) == []
    (alert,) = world.alerts()
    assert "in group web (command" in alert["Subject"]


def test_one_message_per_command_per_batch(world: CollectorWorld) -> None:
    # Given one batch with failures of two commands
    web, db = world.send_command("web"), world.send_command("db")
    messages = [invocation(web, instance_id(n), "Failed") for n in range(5)]
    messages += [invocation(db, instance_id(n), "TimedOut") for n in range(3)]

    handle(notifications_event(*messages), world.collector)

    # Then each command gets exactly one message listing all its failures
    alerts = sorted(world.alerts(), key=lambda a: a["Subject"])
    assert [a["Subject"] for a in alerts] == [
        f"TagPatch tagpatch-test: 3 instances TimedOut in group db (command {db[:8]})",
        f"TagPatch tagpatch-test: 5 instances Failed in group web (command {web[:8]})",
    ]
    assert all(f"  {instance_id(n)}  Failed" in alerts[1]["Message"] for n in range(5))


def test_failures_during_the_cooldown_become_one_digest(world: CollectorWorld) -> None:
    command = world.send_command("web")
    # Given a first failure alerted at once
    handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)
    assert len(world.alerts()) == 1

    # When more failures arrive within the cooldown, in three batches
    for n in range(2, 5):
        world.clock.advance(60)
        handle(notifications_event(invocation(command, instance_id(n), "ExecutionTimedOut")), world.collector)

    # Then no message yet, and one flush is due when the cooldown ends
    assert len(world.alerts()) == 1
    ((body, delay),) = world.pending_flushes()
    assert json.loads(body) == {"tagpatch": "alert-flush", "commandId": command}
    assert delay == 900 - 60

    # When the flush arrives after the cooldown (delivered twice)
    world.clock.advance(delay)
    flush = world.deliver_flushes()
    assert failures_of(handle(flush, world.collector)) == []
    handle(flush, world.collector)

    # Then one digest lists exactly the held failures
    alerts = world.alerts()
    assert len(alerts) == 2
    digest = alerts[1]
    assert digest["Subject"] == (
        f"TagPatch tagpatch-test: 3 instances ExecutionTimedOut in group web (command {command[:8]})"
    )
    assert all(f"  {instance_id(n)}  ExecutionTimedOut" in digest["Message"] for n in range(2, 5))
    assert instance_id(1) not in digest["Message"]
    assert "alert 2 of at most 4" in digest["Message"]
    assert world.pending_flushes() == []


def test_a_flush_with_nothing_held_sends_nothing(world: CollectorWorld) -> None:
    from tagpatch.models.notifications import AlertFlush

    command = world.send_command("web")
    handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)
    flush = sqs_event(AlertFlush(command_id=command).body(), AlertFlush(command_id=SAMPLE_COMMAND_ID).body())

    world.clock.advance(1000)
    response = handle(flush, world.collector)

    assert failures_of(response) == []
    assert len(world.alerts()) == 1


def test_a_failure_arriving_with_the_flush_is_in_the_digest(world: CollectorWorld) -> None:
    command = world.send_command("web")
    handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)
    handle(notifications_event(invocation(command, instance_id(2), "Failed")), world.collector)
    world.clock.advance(900)

    flush = world.deliver_flushes()
    flush["Records"].append(sqs_record(sns_body(invocation(command, instance_id(3), "Failed"))))
    handle(flush, world.collector)

    alerts = world.alerts()
    assert len(alerts) == 2
    assert alerts[1]["Subject"].startswith("TagPatch tagpatch-test: 2 instances Failed")


def test_alerts_per_command_are_capped(world: CollectorWorld) -> None:
    command = world.send_command("web")
    # Given failures arriving for hours, each batch after the cooldown
    for n in range(10):
        handle(notifications_event(invocation(command, instance_id(n), "Failed")), world.collector)
        world.clock.advance(901)

    # Then MaxAlertsPerCommand messages, the last saying so, and every failure still recorded
    alerts = world.alerts()
    assert len(alerts) == 4
    assert "No further alerts will be sent" in alerts[-1]["Message"]
    assert len([i for i in world.table.invocations(command) if i["status"] == "Failed"]) == 10
    assert (world.command_item(command) or {})["alert_count"] == 4


def test_a_command_with_1000_failing_instances_alerts_a_bounded_number_of_times(
    world: CollectorWorld,
) -> None:
    # Given a command whose 1,000 instances all fail, delivered as SQS batches of 100
    command = world.send_command("web")
    instances = [instance_id(n) for n in range(1000)]
    batches = [
        notifications_event(*(invocation(command, i, "Failed") for i in instances[start : start + 100]))
        for start in range(0, 1000, 100)
    ]

    # When the batches are handled a few seconds apart, then the due flush arrives
    for event in batches:
        assert failures_of(handle(event, world.collector)) == []
        world.clock.advance(5)
    batch_calls = world.log.count("dynamodb")
    world.clock.advance(900)
    handle(world.deliver_flushes(), world.collector)
    flush_calls = world.log.count("dynamodb")

    # Then 1,019 DynamoDB calls in all (benchmarks/collector_calls.py prints the same): one record
    # write per notification, one merge per batch, the group read, claim + mark for the first alert
    # and its Scan of group names, the flush's due time, and the flush's read + claim + mark and
    # a second Scan (the names cached by the first alert are older than 5 minutes by then)
    assert (batch_calls, flush_calls) == (1000 + 10 + 1 + 2 + 1 + 1, 3 + 1)
    # And two messages in all: the first failures at once, a digest of the rest after the cooldown
    alerts = world.alerts()
    assert len(alerts) == 2 <= world.config.max_alerts_per_command + 1
    assert (
        alerts[0]["Subject"]
        == f"TagPatch tagpatch-test: 100 instances Failed in group web (command {command[:8]})"
    )
    assert (
        alerts[1]["Subject"]
        == f"TagPatch tagpatch-test: 900 instances Failed in group web (command {command[:8]})"
    )
    assert "... and 875 more" in alerts[1]["Message"]
    assert "Failed so far: 1000 instances" in alerts[1]["Message"]
    assert all(len(a["Message"].encode()) < 32_000 for a in alerts)
    # And the table has every instance
    records = world.table.invocations(command)
    assert sorted(r["instance_id"] for r in records) == instances
    assert {r["status"] for r in records} == {"Failed"}
    assert (world.command_item(command) or {})["count_Failed"] == 1000


def test_the_same_failure_seen_by_concurrent_batches_is_listed_once(world: CollectorWorld) -> None:
    command = world.send_command("web")
    failure = notifications_event(invocation(command, instance_id(1), "Failed"))
    other_container = world.make_collector()

    handle(failure, world.collector)
    handle(failure, other_container)
    world.clock.advance(900)
    handle(world.deliver_flushes(), world.collector)

    assert len(world.alerts()) == 1


def test_a_lost_alert_claim_holds_the_failures_for_the_digest(world: CollectorWorld) -> None:
    # Given another batch claims the command's next alert between our read and our claim
    command = world.send_command("web")
    original = world.table.claim_alert

    def raced(command_id: str, *, seen_count: int, now: float, lease_until: float) -> Any:
        # the other batch (its lease is live) ...
        assert original(command_id, seen_count=seen_count, now=now, lease_until=lease_until) is not None
        return original(command_id, seen_count=seen_count, now=now, lease_until=lease_until)  # ... ours

    world.table.claim_alert = raced  # type: ignore[method-assign]
    handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)
    world.table.claim_alert = original  # type: ignore[method-assign]

    # Then we publish nothing and schedule the digest instead
    assert world.alerts() == []
    assert len(world.pending_flushes()) == 1
    world.clock.advance(900)
    handle(world.deliver_flushes(), world.collector)
    assert len(world.alerts()) == 1


def test_a_publish_failure_uses_no_alert_slot_and_the_redelivery_sends_it(world: CollectorWorld) -> None:
    command = world.send_command("web")
    event = notifications_event(invocation(command, instance_id(1), "Failed"))
    publish = world.collector.alerts.publish

    def down(alert: Any) -> None:
        raise RuntimeError("SNS unavailable")

    # Given SNS fails once
    world.collector.alerts.publish = down  # type: ignore[method-assign]
    response = handle(event, world.collector)
    world.collector.alerts.publish = publish  # type: ignore[method-assign]

    # Then the command's records are reported failed (SQS redelivers them), no slot is used and
    # the claim is given back
    assert failures_of(response) == [event["Records"][0]["messageId"]]
    item = world.command_item(command) or {}
    assert "alert_count" not in item and "alert_lease" not in item and "last_alert_at" not in item
    # When redelivered, the alert goes out at once, as the command's first
    assert failures_of(handle(event, world.collector)) == []
    (alert,) = world.alerts()
    assert instance_id(1) in alert["Message"] and "This is alert 1 of at most 4" in alert["Message"]
    assert "may repeat" not in alert["Message"]
    assert (world.command_item(command) or {})["alert_count"] == 1


def test_failures_beyond_the_tracked_limit_are_counted(
    world: CollectorWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands_adapter, "MAX_TRACKED_FAILURES", 3)
    command = world.send_command("web")

    handle(
        notifications_event(*(invocation(command, instance_id(n), "Failed") for n in range(3))),
        world.collector,
    )
    handle(
        notifications_event(*(invocation(command, instance_id(n), "Failed") for n in range(3, 5))),
        world.collector,
    )

    summary = world.command_item(command) or {}
    assert len(summary["failed_Failed"]) == 3
    assert summary["untracked_failures"] == 2
    assert summary["count_Failed"] == 5
    assert len(world.alerts()) == 1


# --------------------------------------------------------------------------------------------
# Command notifications
# --------------------------------------------------------------------------------------------
def test_command_success_is_recorded_on_the_command_item(world: CollectorWorld, load_event: Loader) -> None:
    response = handle(load_event("collector-command-success.json"), world.collector)

    assert failures_of(response) == []
    summary = world.command_item(SAMPLE_COMMAND_ID) or {}
    assert (summary["status"], summary["group"], summary["instance_count"]) == ("Success", "web", 2)
    assert summary["instance_ids"] == set(SAMPLE_INSTANCES)
    assert summary["output_bucket"] == BUCKET
    assert world.alerts() == []
    assert world.log.count("ssm") == 0  # the Command notification carries the prefix


def test_tag_targeted_command_notifications_are_recorded(world: CollectorWorld) -> None:
    # instanceIds [] and no output location, as in the SSM sample for tag targeting
    message = command_summary(SAMPLE_COMMAND_ID, "InProgress", prefix="", bucket="")

    assert failures_of(handle(notifications_event(message), world.collector)) == []
    # An empty prefix is no answer: the command is looked up (SSM does not know this sample's id)
    assert world.log.ops("ssm")["ListCommands"] == 1

    summary = world.command_item(SAMPLE_COMMAND_ID) or {}
    assert (summary["status"], summary["instance_count"]) == ("InProgress", 0)
    assert "group" not in summary and "instance_ids" not in summary
    # and the item is not marked resolved, so another container may still find its group
    assert "output_prefix" not in summary


def test_a_tag_targeted_command_notification_takes_its_group_from_ssm(world: CollectorWorld) -> None:
    # Given a window's command of group web, whose Command notification carries an empty prefix
    command = world.send_command("web")
    message = command_summary(command, "InProgress", "2025-06-15T03:00:05Z", prefix="", bucket="")

    # When it is delivered
    assert failures_of(handle(notifications_event(message), world.collector)) == []

    # Then the group and output location come from ListCommands, once, and are kept on the item
    assert world.log.ops("ssm")["ListCommands"] == 1
    summary = world.command_item(command) or {}
    assert (summary["group"], summary["output_prefix"], summary["output_bucket"]) == (
        "web",
        "patch-output/web",
        BUCKET,
    )


def test_a_failed_command_sends_one_final_summary(world: CollectorWorld) -> None:
    command = world.send_command("web")
    targets = [instance_id(1), instance_id(2)]
    failed = notifications_event(command_summary(command, "Failed", instances=targets))

    handle(
        notifications_event(command_summary(command, "InProgress", "2025-06-15T03:00:05Z")), world.collector
    )
    handle(failed, world.collector)
    handle(failed, world.collector)
    handle(
        notifications_event(command_summary(command, "InProgress", "2025-06-15T03:31:00Z")), world.collector
    )

    (alert,) = world.alerts()
    assert (
        alert["Subject"] == f"TagPatch tagpatch-test: patch run Failed in group web (command {command[:8]})"
    )
    assert f"Targeted instances (2): {targets[0]}, {targets[1]}" in alert["Message"]
    assert (world.command_item(command) or {})["status"] == "Failed"


def test_a_final_summary_includes_held_instance_failures(world: CollectorWorld) -> None:
    command = world.send_command("web")
    handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)
    handle(notifications_event(invocation(command, instance_id(2), "Failed")), world.collector)

    handle(notifications_event(command_summary(command, "Failed")), world.collector)

    alerts = world.alerts()
    assert len(alerts) == 2
    assert "patch run Failed" in alerts[1]["Subject"]
    assert f"  {instance_id(2)}  Failed" in alerts[1]["Message"]
    assert f"  {instance_id(1)}  Failed" not in alerts[1]["Message"]


def test_a_final_summary_whose_sender_died_is_sent_after_the_lease(world: CollectorWorld) -> None:
    command = world.send_command("web")
    failed = notifications_event(command_summary(command, "TimedOut"))
    publish = world.collector.alerts.publish

    class Crash(BaseException):
        """The Lambda process stops (timeout, out of memory): no handler runs."""

    def crash(alert: Any) -> None:
        raise Crash

    world.collector.alerts.publish = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        handle(failed, world.collector)
    world.collector.alerts.publish = publish  # type: ignore[method-assign]

    # While the claim's lease runs, a redelivery does not send it twice
    handle(failed, world.collector)
    assert world.alerts() == []
    # After the lease, the redelivery sends it
    world.clock.advance(121)
    handle(failed, world.collector)
    (alert,) = world.alerts()
    assert "patch run TimedOut" in alert["Subject"]
    # marked: the dead sender may have published it before it stopped
    assert "This alert may repeat one sent a few minutes ago" in alert["Message"]


def test_a_final_summary_whose_publish_failed_is_sent_by_the_next_delivery(world: CollectorWorld) -> None:
    command = world.send_command("web")
    failed = notifications_event(command_summary(command, "Failed"))
    publish = world.collector.alerts.publish

    def down(alert: Any) -> None:
        raise RuntimeError("SNS unavailable")

    # Given SNS fails for the final summary: its messages fail and the claim is given back
    world.collector.alerts.publish = down  # type: ignore[method-assign]
    assert failures_of(handle(failed, world.collector)) != []
    world.collector.alerts.publish = publish  # type: ignore[method-assign]
    assert "command_alert_lease" not in (world.command_item(command) or {})

    # When redelivered (before any lease would have run out), it is sent, once, not as a repeat
    handle(failed, world.collector)
    handle(failed, world.collector)
    (alert,) = world.alerts()
    assert "patch run Failed" in alert["Subject"] and "may repeat" not in alert["Message"]


# --------------------------------------------------------------------------------------------
# Lambda entry point
# --------------------------------------------------------------------------------------------
def test_lambda_entry_point_builds_from_its_environment(
    world: CollectorWorld,
    load_event: Loader,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tagpatch.adapters import clients
    from tagpatch.handlers import collector as entry

    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    clients.client.cache_clear()
    entry.default_collector.cache_clear()
    command = world.send_command("web")

    response = entry.handler(with_command(load_event("collector-mixed-batch.json"), command), lambda_context)

    assert failures_of(response) == ["9d6a2c1b-7e3f-4a5b-8c6d-000000000004"]
    assert len(world.alerts()) == 1
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"InvocationsRecorded", "MalformedMessages", "AlertsPublished", "RecordFailures"} <= names
    entry.default_collector.cache_clear()
    clients.client.cache_clear()


def test_lambda_entry_point_fails_clearly_on_a_missing_setting(
    aws: None, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tagpatch.handlers import collector as entry
    from tagpatch.models.environment import ConfigError

    for name, value in COLLECTOR_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COMMAND_STATUS_TABLE_NAME")
    entry.default_collector.cache_clear()
    with pytest.raises(ConfigError, match="COMMAND_STATUS_TABLE_NAME is not set"):
        entry.handler({"Records": []}, lambda_context)
    entry.default_collector.cache_clear()


# --------------------------------------------------------------------------------------------
# The store's condition is the domain's rule; concurrent containers
# --------------------------------------------------------------------------------------------
_STATUSES = ["Pending", "InProgress", "Delayed", "Cancelling", "Success", "Failed", "TimedOut", "Canceled"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_STATUSES), st.integers(min_value=0, max_value=5)), min_size=1, max_size=8
    )
)
def test_the_table_applies_exactly_the_supersedes_rule(events: list[tuple[str, int]]) -> None:
    from datetime import UTC, datetime, timedelta

    from tagpatch.models.run_status import normalise_status, stamp, supersedes

    with mock_aws():
        world = CollectorWorld()
        base = datetime(2025, 6, 15, 3, tzinfo=UTC)
        expected: tuple[Any, Any] = (None, None)
        for raw, second in events:
            # Given any sequence of notifications for one instance, in any order, with repeats
            at = base + timedelta(seconds=second)
            handle(
                notifications_event(invocation(SAMPLE_COMMAND_ID, instance_id(1), raw, at.isoformat())),
                world.collector,
            )
            status = normalise_status(raw)
            if supersedes(status, stamp(at), *expected):
                expected = (status, stamp(at))
        # Then the stored record is what the pure rule says
        item = world.instance_item(SAMPLE_COMMAND_ID, instance_id(1)) or {}
        assert (item.get("status"), item.get("event_time")) == (expected[0].value, expected[1])


def test_concurrent_containers_alert_each_failure_once_and_boundedly(world: CollectorWorld) -> None:
    from concurrent.futures import ThreadPoolExecutor

    make_dynamodb_writes_atomic()
    command = world.send_command("web")
    instances = [instance_id(n) for n in range(200)]
    batches = [
        notifications_event(*(invocation(command, i, "Failed") for i in instances[start : start + 25]))
        for start in range(0, 200, 25)
    ]
    containers = [world.make_collector() for _ in batches]

    # When eight containers handle eight batches of one command at the same time
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(handle, batches, containers))
    world.clock.advance(900)
    handle(world.deliver_flushes(), world.collector)

    # Then nothing failed, at most 2 messages went out, and each failure was listed exactly once
    assert all(failures_of(r) == [] for r in responses)
    alerts = world.alerts()
    assert 1 <= len(alerts) <= 2
    counts = [int(a["Subject"].split(": ")[1].split(" ")[0]) for a in alerts]
    assert sum(counts) == 200
    assert set((world.command_item(command) or {})["alerted_ids"]) == set(instances)


# --------------------------------------------------------------------------------------------
# SSM lookup failures
# --------------------------------------------------------------------------------------------
def test_a_throttled_lookup_is_retried_and_a_denied_one_fails_only_its_record(world: CollectorWorld) -> None:
    from emulator import fake_ssm

    web, db = world.send_command("web"), world.send_command("db")
    # Given ListCommands throttles once (the client retries), then is denied for the next command
    fake_ssm.inject_faults("ListCommands", ["ThrottlingException"])
    first = handle(notifications_event(invocation(web, instance_id(1), "Success")), world.collector)
    fake_ssm.inject_faults("ListCommands", ["AccessDeniedException"])
    event = notifications_event(
        invocation(db, instance_id(1), "Success"), invocation(web, instance_id(2), "Success")
    )
    second = handle(event, world.collector)

    # Then the throttled lookup succeeded, and only the denied command's record failed (to retry)
    assert failures_of(first) == []
    assert (world.instance_item(web, instance_id(1)) or {})["group"] == "web"
    assert failures_of(second) == [event["Records"][0]["messageId"]]
    assert world.instance_item(db, instance_id(1)) is None
    assert world.instance_item(web, instance_id(2)) is not None


def test_a_lookup_that_finds_no_command_gives_no_group() -> None:
    import boto3
    from botocore.stub import Stubber

    from tagpatch.adapters.ssm_commands import SsmCommandLookup

    ssm = boto3.client("ssm")
    with Stubber(ssm) as stub:
        stub.add_response("list_commands", {"Commands": []}, {"CommandId": SAMPLE_COMMAND_ID})
        assert SsmCommandLookup(ssm).describe(SAMPLE_COMMAND_ID) is None


def test_a_command_summary_with_many_targets_lists_a_few(world: CollectorWorld) -> None:
    targets = [instance_id(n) for n in range(40)]

    handle(
        notifications_event(command_summary(SAMPLE_COMMAND_ID, "Failed", instances=targets)), world.collector
    )

    (alert,) = world.alerts()
    assert "Targeted instances (40): " in alert["Message"]
    assert "  ... and 15 more" in alert["Message"]


def test_a_table_error_fails_the_records_for_redelivery(world: CollectorWorld) -> None:
    # Given the table is gone (or DynamoDB keeps failing beyond the client's retries)
    command = world.send_command("web")
    world.ddb.delete_table(TableName=world.config.table_name)
    event = notifications_event(
        invocation(command, instance_id(1), "Failed"), command_summary(command, "Failed")
    )

    # Then every record is reported failed and nothing is alerted
    assert failures_of(handle(event, world.collector)) == [r["messageId"] for r in event["Records"]]
    assert world.alerts() == []


def test_a_looked_up_group_is_saved_even_if_the_first_record_failed(world: CollectorWorld) -> None:
    command = world.send_command("web")
    original = world.table.record_invocation
    calls = {"n": 0}

    def first_fails(record: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("throttled beyond retries")
        return original(record, **kwargs)

    world.table.record_invocation = first_fails  # type: ignore[method-assign]
    event = notifications_event(
        invocation(command, instance_id(1), "Success"), invocation(command, instance_id(2), "Success")
    )
    assert failures_of(handle(event, world.collector)) == [event["Records"][0]["messageId"]]

    assert (world.command_item(command) or {}).get("group") == "web"
    assert world.collector.unpersisted == set()


def test_a_flush_that_arrives_early_schedules_the_next_one(world: CollectorWorld) -> None:
    command = world.send_command("web")
    handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)
    handle(notifications_event(invocation(command, instance_id(2), "Failed")), world.collector)

    # When the flush is delivered 10 seconds before the cooldown ends (clocks differ)
    world.clock.advance(890)
    handle(world.deliver_flushes(), world.collector)

    # Then it sends nothing yet but schedules another flush for the remaining time
    assert len(world.alerts()) == 1
    ((_, delay),) = world.pending_flushes()
    assert delay == 10
    world.clock.advance(10)
    handle(world.deliver_flushes(), world.collector)
    assert len(world.alerts()) == 2


# --------------------------------------------------------------------------------------------
# Run Result re-checks beside alert flushes
# --------------------------------------------------------------------------------------------
class _Sink:
    """A member-event sink that keeps what it is given (docs/events.md)."""

    def __init__(self) -> None:
        from tagpatch.models.member_events import Origin

        self.origin = Origin("123456789012", "us-east-1", "tagpatch-test")
        self.enabled = True
        self.details: list[dict[str, Any]] = []

    def publish(self, details: Any) -> None:
        self.details.extend({"type": d.detail_type, **d.detail()} for d in details)


def test_a_run_result_re_check_leaves_the_held_failures_to_their_own_flush(world: CollectorWorld) -> None:
    # Given a command on three instances: one failure alerted, then, within the cooldown, its other
    # two instances ended (one more failure, held) while ListCommands still said InProgress
    sink = _Sink()
    world.collector.events = sink
    command = world.send_command("web")
    world.set_progress(command, "InProgress", targets=3, completed=1)
    started = [invocation(command, instance_id(n), "InProgress", "2025-06-15T03:01:00Z") for n in (1, 2, 3)]
    handle(notifications_event(*started), world.collector)
    handle(notifications_event(invocation(command, instance_id(1), "Failed")), world.collector)
    world.clock.advance(60)
    handle(
        notifications_event(
            invocation(command, instance_id(2), "Failed"), invocation(command, instance_id(3), "Success")
        ),
        world.collector,
    )
    assert len(world.alerts()) == 1
    pending = sorted(world.pending_flushes(), key=lambda flush: flush[1])
    assert [(json.loads(body).get("check"), delay) for body, delay in pending] == [
        ("run-result", 60),
        (None, 900 - 60),
    ]
    assert sink.details == []

    # When only the run-result check arrives, SSM having caught up
    world.set_progress(command, "Failed", targets=3)
    world.clock.advance(60)
    bodies = [record["body"] for record in world.deliver_flushes()["Records"]]
    world.log.reset()
    check = [body for body in bodies if json.loads(body).get("check") == "run-result"]
    response = handle(sqs_event(*check), world.collector)

    # Then one Run Result is published (one consistent read, one ListCommands, claim and record),
    # the held failure stays held and no second alert flush is scheduled
    assert failures_of(response) == []
    # (and a Scan of the group names: "web" is in no GroupsTable item here, so it is looked for again)
    assert world.log.ops("dynamodb") == {"GetItem": 1, "UpdateItem": 2, "Scan": 1}
    assert world.log.ops("ssm") == {"ListCommands": 1}
    assert world.log.count("sqs") == 0
    ((detail,),) = [[d for d in sink.details if d["type"] == "Run Result"]]
    assert (detail["status"], detail["instances"], detail["failedInstances"]) == (
        "Failed",
        {"Failed": 2, "Success": 1},
        2,
    )
    assert len(world.alerts()) == 1
