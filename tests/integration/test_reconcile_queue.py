"""ReconcileQueue against moto: the scheduled run and the sweep planned and queued, the consumer's
records each carried out or reported alone, and the adapter's SendMessageBatch within SQS's limits."""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.scenarios.aws import World
from emulator.scenarios.collector import sqs_record
from emulator.scenarios.settings import RECONCILE_QUEUE
from tagpatch.adapters.reconcile_queue import ATTEMPTS, QueueSendFailed, SqsReconcileQueue
from tagpatch.handlers.reconciler import RECORD_START_RESERVE_SECONDS, handle
from tagpatch.models.reconciler_events import MAX_MESSAGE_GROUPS, parse_message
from tagpatch.observability import metrics
from tagpatch.reconciler.core import BATCH_GROUPS
from tests.conftest import FakeLambdaContext
from tests.support.clock import slow_reconciler

Loader = Callable[[str], Any]
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:tagpatch-test-ReconcileQueue"


@pytest.fixture
def world(aws: None) -> Iterator[World]:
    yield World(MAX_GROUPS="50")


@pytest.fixture
def sqs(aws: None, world: World) -> Any:
    client = world.log.attach(boto3.client("sqs"))
    client.create_queue(QueueName=RECONCILE_QUEUE.rsplit("/", 1)[-1])
    return client


@pytest.fixture
def queue(sqs: Any) -> SqsReconcileQueue:
    return SqsReconcileQueue(RECONCILE_QUEUE, sqs)


def tag_event(load_event: Loader, group: str) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(load_event("reconciler-tag-added.json"))
    event["detail"]["tags"]["PatchGroup"] = group
    return event


def batch(*bodies: Any, receive_count: int = 1) -> dict[str, Any]:
    """A Lambda SQS event of ReconcileQueue: one record per body (dicts as JSON), ids m0, m1, ..."""
    records = []
    for index, body in enumerate(bodies):
        text = body if isinstance(body, str) else json.dumps(body)
        record = sqs_record(text, message_id=f"m{index}", receive_count=receive_count)
        records.append({**record, "eventSourceARN": QUEUE_ARN})
    return {"Records": records}


def received(sqs: Any) -> list[dict[str, Any]]:
    """Every message on the reconcile queue, in order, removed from it."""
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=RECONCILE_QUEUE, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=RECONCILE_QUEUE, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def failed_ids(result: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in result["batchItemFailures"]]


# --- the scheduled run, the sweep, {} ----------------------------------------------------------------
def test_the_scheduled_run_queues_its_groups_in_batches_and_verifies_none_itself(
    world: World, sqs: Any, queue: SqsReconcileQueue, load_event: Loader
) -> None:
    # Given 41 groups on instances, none reconciled yet
    groups = [f"g{index:02}" for index in range(41)]
    for group in groups:
        world.launch(group)
    world.log.reset()

    # When the schedule fires
    result = handle(load_event("reconciler-scheduled.json"), world.reconciler, queue=queue)

    # Then it planned with three reads and queued ceil(41/20) messages in one SendMessageBatch,
    # without a single SSM write or group reconciled
    assert result == {
        "ok": True,
        "groups": [],
        "queued": {"messages": math.ceil(41 / BATCH_GROUPS), "groups": 41},
    }
    assert world.log.ops("ssm") == {"GetParametersByPath": 1}
    assert world.log.ops("ec2") == {"DescribeInstances": 1}
    # the placement item, read once to delete windows left behind and count start collisions
    assert world.log.ops("dynamodb") == {"Scan": 1, "GetItem": 1}
    assert world.log.ops("sqs") == {"SendMessageBatch": 1}
    assert world.windows() == []
    assert metrics.metric_set["ReconcileMessagesQueued"]["Value"] == [3.0]

    # When the queue's consumer gets the three messages (one batch)
    messages = received(sqs)
    drained = handle(batch(*messages), world.reconciler)

    # Then every group was verified from its message, each message valid for the consumer
    assert [sorted(m["groups"]) for m in messages] == [groups[0:20], groups[20:40], groups[40:]]
    assert all(parse_message(message).model_dump() == message for message in messages)
    assert drained == {"batchItemFailures": []}
    assert world.task_names() == {f"TagPatch-{group}-patch" for group in groups}
    assert len(world.windows()) == 3  # 41 groups of one schedule: 20 + 20 + 1
    assert metrics.metric_set["GroupsConverged"]["Value"] == [1.0] * 41


def test_the_planned_batch_always_fits_what_the_consumer_takes() -> None:
    # The planner (core.BATCH_GROUPS) and the consumer's bound must agree, or every scheduled run
    # would be refused; oversized plans are split by the handler to this bound anyway.
    assert BATCH_GROUPS <= MAX_MESSAGE_GROUPS


def test_the_sweep_queues_only_the_pending_groups_and_nothing_when_none_is(
    world: World, sqs: Any, queue: SqsReconcileQueue
) -> None:
    # Given two groups, none pending
    world.launch("web")
    world.launch("db")
    world.log.reset()

    # When the sweep runs, then it costs one Scan and sends nothing
    assert handle({"sweep": True}, world.reconciler, queue=queue) == {
        "ok": True,
        "groups": [],
        "queued": {"messages": 0, "groups": 0},
    }
    assert world.log.calls == [("dynamodb", "Scan")]

    # When web is left pending (a deferred event whose lease holder died) and the sweep runs again
    world.reconciler.groups.queue("web")
    result = handle({"sweep": True}, world.reconciler, queue=queue)

    # Then exactly web is queued, for a full verify
    assert result["queued"] == {"messages": 1, "groups": 1}
    ((message),) = received(sqs)
    assert message == {"kind": "verify", "groups": {"web": 1}, "empty": [], "overrides": {}, "legacy": {}}


def test_a_direct_request_for_every_group_is_queued_and_one_group_is_answered_at_once(
    world: World, sqs: Any, queue: SqsReconcileQueue
) -> None:
    world.launch("web")
    world.launch("db")

    everything = handle({}, world.reconciler, queue=queue)
    one = handle({"group": "web"}, world.reconciler, queue=queue)

    assert everything == {"ok": True, "groups": [], "queued": {"messages": 1, "groups": 2}}
    assert [(g["group"], g["status"]) for g in one["groups"]] == [("web", "converged")]
    assert [sorted(message["groups"]) for message in received(sqs)] == [["db", "web"]]


def test_a_run_whose_messages_cannot_be_sent_fails_so_lambda_retries_it(
    world: World, sqs: Any, load_event: Loader
) -> None:
    # Given a queue that no longer exists (deleted by hand)
    world.launch("web")
    gone = SqsReconcileQueue(RECONCILE_QUEUE.replace("ReconcileQueue", "Gone"), sqs)

    # Then the scheduled run raises: the asynchronous invocation is retried, then dead-lettered
    with pytest.raises(ClientError, match=r"NonExistentQueue|does not exist"):
        handle(load_event("reconciler-scheduled.json"), world.reconciler, queue=gone)


# --- the consumer ------------------------------------------------------------------------------------
def test_each_record_is_carried_out_or_reported_alone(
    world: World, load_event: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a batch of a tag event, four records that are not ours, and one of our messages
    world.launch("web")
    world.launch("db")
    scheduled = load_event("reconciler-scheduled.json")
    event = batch(
        tag_event(load_event, "web"),
        "not json",
        scheduled,
        {"kind": "verify"},
        ["a list"],
        {"kind": "group", "group": "db"},
    )

    # When the consumer gets it
    with caplog.at_level(logging.ERROR):
        result = handle(event, world.reconciler)

    # Then exactly the four bad records are reported (SQS retries them, then dead-letters them), each
    # with its reason in the log, and the two good ones were reconciled
    assert failed_ids(result) == ["m1", "m2", "m3", "m4"]
    refusals = [r for r in caplog.records if r.getMessage().startswith("record refused")]
    reasons = [str(getattr(r, "reason", "")) for r in refusals]
    assert [getattr(r, "messageId", None) for r in refusals] == ["m1", "m2", "m3", "m4"]
    assert "not JSON" in reasons[0]
    assert "'aws.events' do not come through the reconcile queue" in reasons[1]
    assert "names no group" in reasons[2]
    assert "not a JSON object" in reasons[3]
    assert world.task_names() == {"TagPatch-web-patch", "TagPatch-db-patch"}
    assert metrics.metric_set["ReconcileRecordFailures"]["Value"] == [4.0]
    assert metrics.metric_set["GroupsConverged"]["Value"] == [1.0, 1.0]


def test_a_record_whose_group_failed_is_retried_and_the_rest_of_the_batch_goes_on(
    world: World, load_event: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    # Given SSM refusing to create the window of "bad", and a batch: a verify message of "bad" and
    # "good", a tag event of "bad" and a tag event of "other"
    for group in ("bad", "good", "other"):
        world.launch(group)
    register_task = world.reconciler.ssm.register_task

    def refuse_bad(params: dict[str, Any]) -> str:
        if params["Name"] == "TagPatch-bad-patch":
            raise RuntimeError("SSM is unavailable")
        return register_task(params)

    world.reconciler.ssm.register_task = refuse_bad  # type: ignore[method-assign]
    verify = {"kind": "verify", "groups": {"bad": 1, "good": 1}, "empty": [], "overrides": {}, "legacy": {}}

    # When the consumer gets the batch
    with caplog.at_level(logging.ERROR):
        result = handle(
            batch(verify, tag_event(load_event, "bad"), tag_event(load_event, "other")), world.reconciler
        )

    # Then the verify message (one group failed) and the tag event (its reconcile raised) are
    # reported; every group that could be was reconciled, "good" by the failed message too
    assert failed_ids(result) == ["m0", "m1"]
    assert world.task_names() == {"TagPatch-good-patch", "TagPatch-other-patch"}
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("record failed: groups not reconciled") for m in messages)
    assert any(m.startswith("record failed; SQS delivers it again") for m in messages)
    assert metrics.metric_set["GroupsFailed"]["Value"] == [1.0]


def test_a_record_is_not_started_without_the_time_to_finish_it(
    world: World, lambda_context: FakeLambdaContext
) -> None:
    # Given four one-group records of 80 s each and a 300 s invocation
    for group in ("a", "b", "c", "d"):
        world.launch(group)
    reconciler = slow_reconciler(world, 80)
    lambda_context.remaining_time_in_millis = 300_000
    event = batch(*({"kind": "group", "group": group} for group in ("a", "b", "c", "d")))

    # When the consumer gets them
    result = handle(event, reconciler, lambda_context)

    # Then the fourth, which would start with 60 s left, is not started but reported: SQS
    # delivers it again, to an invocation with the time for it
    assert 3 * 80 + RECORD_START_RESERVE_SECONDS > 300
    assert failed_ids(result) == ["m3"]
    assert world.task_names() == {"TagPatch-a-patch", "TagPatch-b-patch", "TagPatch-c-patch"}
    again = handle(batch({"kind": "group", "group": "d"}, receive_count=2), world.make_reconciler())
    assert again == {"batchItemFailures": []}
    assert len(world.task_names()) == 4


def test_a_settings_change_through_the_queue_verifies_the_group(world: World, load_event: Loader) -> None:
    # Given a converged group whose window was edited by hand
    world.launch("web")
    handle(batch(tag_event(load_event, "web")), world.reconciler)
    window_id = world.window_of("web")["WindowId"]
    world.ssm.update_maintenance_window(WindowId=window_id, Schedule="cron(0 5 ? * MON *)")
    event = copy.deepcopy(load_event("reconciler-settings-change.json"))
    event["detail"]["name"] = f"{world.reconciler.config.group_settings_prefix}web"

    # When its settings change event arrives through the queue
    result = handle(batch(event), world.reconciler)

    # Then the group was verified (the drift repaired)
    assert result == {"batchItemFailures": []}
    assert world.window_of("web")["Schedule"] == "cron(0 3 ? * SUN *)"


# --- the adapter ---------------------------------------------------------------------------------------
def test_messages_go_ten_per_call_in_order(world: World, sqs: Any, queue: SqsReconcileQueue) -> None:
    bodies = [{"kind": "group", "group": f"g{index}"} for index in range(23)]
    world.log.reset()

    assert queue.send(bodies) == 23

    assert world.log.ops("sqs") == {"SendMessageBatch": 3}
    assert received(sqs) == bodies


def test_a_call_carries_at_most_256_kib(world: World, sqs: Any, queue: SqsReconcileQueue) -> None:
    # Given three messages of about 100 KB: two fit one call, the third needs another
    bodies = [{"kind": "group", "group": f"g{index}", "pad": "x" * 100_000} for index in range(3)]
    world.log.reset()

    queue.send(bodies)

    assert world.log.ops("sqs") == {"SendMessageBatch": 2}
    assert [body["group"] for body in received(sqs)] == ["g0", "g1", "g2"]


def test_a_message_over_256_kib_is_refused_before_anything_is_sent(
    world: World, sqs: Any, queue: SqsReconcileQueue
) -> None:
    world.log.reset()

    with pytest.raises(ValueError, match="over SQS's 262144"):
        queue.send([{"kind": "group", "group": "a"}, {"kind": "group", "group": "x" * 262_144}])

    assert world.log.ops("sqs") == {}


class FlakySqs:
    """The moto client, but SQS answers the first ``flaky`` calls with a failure for entry "0"."""

    def __init__(self, sqs: Any, *, flaky: int, sender_fault: bool = False) -> None:
        self.sqs = sqs
        self.flaky = flaky
        self.sender_fault = sender_fault
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([entry["Id"] for entry in Entries])
        if len(self.calls) > self.flaky:
            return dict(self.sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries))
        rest = [entry for entry in Entries if entry["Id"] != "0"]
        response = dict(self.sqs.send_message_batch(QueueUrl=QueueUrl, Entries=rest)) if rest else {}
        failure = {
            "Id": "0",
            "SenderFault": self.sender_fault,
            "Code": "ServiceUnavailable",
            "Message": "try again",
        }
        return {**response, "Failed": [failure]}


def test_entries_sqs_could_not_take_are_sent_again_alone(sqs: Any) -> None:
    flaky = FlakySqs(sqs, flaky=1)
    bodies = [{"kind": "group", "group": name} for name in ("a", "b", "c")]

    assert SqsReconcileQueue(RECONCILE_QUEUE, flaky).send(bodies) == 3

    assert flaky.calls == [["0", "1", "2"], ["0"]]
    assert sorted(body["group"] for body in received(sqs)) == ["a", "b", "c"]


def test_entries_still_failing_after_the_attempts_raise(sqs: Any) -> None:
    flaky = FlakySqs(sqs, flaky=ATTEMPTS)

    with pytest.raises(
        QueueSendFailed, match=r"1 message\(s\) not sent after 3 attempts: ServiceUnavailable"
    ):
        SqsReconcileQueue(RECONCILE_QUEUE, flaky).send([{"kind": "group", "group": "a"}])

    assert flaky.calls == [["0"]] * ATTEMPTS


def test_an_entry_refused_as_the_sender_s_fault_is_not_sent_again(sqs: Any) -> None:
    flaky = FlakySqs(sqs, flaky=1, sender_fault=True)

    with pytest.raises(QueueSendFailed, match=r"SQS refused 1 message\(s\)"):
        SqsReconcileQueue(RECONCILE_QUEUE, flaky).send([{"kind": "group", "group": "a"}])

    assert flaky.calls == [["0"]]


def test_the_entry_point_queues_to_the_queue_its_environment_names(
    world: World, sqs: Any, load_event: Loader, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployed environment (RECONCILE_QUEUE_URL included) and nothing injected
    from tagpatch.adapters import clients
    from tagpatch.handlers import reconciler as entry

    world.launch("web")
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    clients.client.cache_clear()
    entry.default_reconciler.cache_clear()
    entry.default_queue.cache_clear()
    try:
        # When Lambda calls the handler for the schedule
        result = entry.handler(load_event("reconciler-scheduled.json"), lambda_context)
    finally:
        entry.default_reconciler.cache_clear()
        entry.default_queue.cache_clear()
        clients.client.cache_clear()

    # Then the run is on the queue the environment names
    assert result["queued"] == {"messages": 1, "groups": 1}
    assert [message["groups"] for message in received(sqs)] == [{"web": 1}]
