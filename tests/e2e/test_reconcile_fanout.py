"""End to end: the reconciler's work through the deployed ReconcileQueue (issue 13 item 4).

The stack is deployed with ``ReconcileConcurrency=3``. EventBridge (:mod:`emulator.flows`) sends
the deployed rules' events to the queue under its policy, and Lambda's poller drains it into the
reconciler with its role, in batches of the deployed event source mapping. Its own emulator and
deployment for the module (moto's backends are shared by everything in the process).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from emulator.flows import reconciled
from emulator.moto_ext import JOURNAL
from tagpatch.reconciler.core import BATCH_GROUPS
from tests.support.stack import TAG_KEY, Stack, deployed_stack

CONCURRENCY = 3
BATCH_SIZE = 5  # template.yaml: the Queue event's BatchSize
MAX_RECEIVES = 5  # template.yaml: ReconcileQueue's maxReceiveCount
BURST = 24


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    parameters = {"ReconcileConcurrency": str(CONCURRENCY), "MaxGroups": "45"}
    with deployed_stack(parameters) as deployed:
        yield deployed


def test_a_burst_of_tag_events_waits_in_the_queue_and_every_group_converges(stack: Stack) -> None:
    # Given 24 instances, each to become a new group
    instances = stack.launch(BURST)
    groups = [f"burst-{index:02}" for index in range(BURST)]
    invocations = len(stack.runtime.invocations)

    # When each is tagged at once (one tag change event each)
    deliveries = [
        d for i, g in zip(instances, groups, strict=True) for d in stack.flows.tag_instances([i], TAG_KEY, g)
    ]

    # Then every event became a message on ReconcileQueue and not one invocation was started
    assert [(d.queue, bool(d.message_id), d.refused) for d in deliveries] == [
        ("ReconcileQueue", True, "")
    ] * BURST
    assert len(stack.runtime.invocations) == invocations
    assert stack.flows.queue_depth("ReconcileQueue") == BURST

    # When Lambda's poller drains the queue
    batches = stack.flows.poll("ReconcilerFunction")

    # Then it gave the function batches of at most 5 records, under the deployed concurrency bound,
    # and every group converged to its window, nothing failed or left on the queue
    assert [len(b.message_ids) for b in batches] == [BATCH_SIZE] * (BURST // BATCH_SIZE) + [
        BURST % BATCH_SIZE
    ]
    assert {b.max_concurrency for b in batches} == {CONCURRENCY}
    assert all(b.invocation.ok and not b.failed_ids for b in batches)
    outcomes = {o["group"]: o["status"] for b in batches for o in reconciled(b.invocation)}
    assert outcomes == dict.fromkeys(groups, "converged")
    ssm = stack.client("ssm")
    windows = ssm.describe_maintenance_windows()["WindowIdentities"]
    names = {
        t["Name"]
        for w in windows
        for t in ssm.describe_maintenance_window_tasks(WindowId=w["WindowId"])["Tasks"]
    }
    assert names == {f"TagPatch-{group}-patch" for group in groups}
    assert len(windows) == math.ceil(BURST / 20)  # shared: 20 groups per window
    assert stack.flows.queue_depth("ReconcileQueue") == 0
    assert stack.flows.queue_depth("ReconcileDLQ") == 0


def test_the_scheduled_run_queues_one_message_per_batch_and_draining_verifies_every_group(
    stack: Stack,
) -> None:
    # Given the groups on instances, one of them drifted (its window's schedule edited by hand)
    (instance,) = stack.launch(1)
    stack.flows.tag_instances([instance], TAG_KEY, "sched-drift")
    stack.flows.poll("ReconcilerFunction")
    window_id = stack.flows.group_record("sched-drift")["windows"]["install"]["window_id"]
    stack.client("ssm").update_maintenance_window(WindowId=window_id, Schedule="cron(0 5 ? * MON *)")
    groups = stack.groups_on_instances()
    mark = JOURNAL.mark()

    # When the scheduled rule fires
    (scheduled,) = stack.flows.fire_schedule("ReconcilerFunction", rule="ReconcilerFunctionReconcile")

    # Then the run planned every group and queued ceil(N/20) messages, verifying none itself
    assert scheduled.outcome is not None and scheduled.outcome.ok, scheduled.outcome
    expected = math.ceil(len(groups) / BATCH_GROUPS)
    assert scheduled.outcome.last.result["queued"] == {"messages": expected, "groups": len(groups)}
    assert stack.flows.queue_depth("ReconcileQueue") == expected
    role = stack.runtime.role_name("ReconcilerFunction")
    planned = [a.action for a in JOURNAL.entries(since=mark, role_name=role) if a.allowed]
    assert not [action for action in planned if action.startswith("ssm:") and "Window" in action]
    assert planned.count("sqs:SendMessage") == math.ceil(expected / 10)  # SendMessageBatch

    # When the poller drains them
    batches = stack.flows.poll("ReconcilerFunction")

    # Then every group was verified once, and the drifted window repaired
    assert sum(len(b.message_ids) for b in batches) == expected
    outcomes = [o for b in batches for o in reconciled(b.invocation)]
    assert sorted(o["group"] for o in outcomes) == sorted(groups)
    assert {o["status"] for o in outcomes} == {"converged"}
    # the window is shared: the first of its groups in the message repairs it, once
    repairs = [a for o in outcomes for a in o["actions"] if a.startswith(f"update_window {window_id} ")]
    assert len(repairs) == 1, repairs
    assert stack.client("ssm").get_maintenance_window(WindowId=window_id)["Schedule"] == "cron(0 3 ? * SUN *)"
    assert all(not b.failed_ids for b in batches)


def test_an_invalid_event_ends_in_the_dlq_after_max_receive_count_receives(stack: Stack) -> None:
    # Given a tag change event the rule matches but whose detail has no tags (not the documented shape)
    event = {
        "version": "0",
        "id": "7e9e8b1c-0000-4000-8000-000000000001",
        "detail-type": "Tag Change on Resource",
        "source": "aws.tag",
        "account": stack.emulator.account_id,
        "time": "2025-06-15T03:00:00Z",
        "region": stack.emulator.region,
        "resources": [],
        "detail": {"changed-tag-keys": [TAG_KEY], "service": "ec2", "resource-type": "instance"},
    }
    (delivery,) = stack.flows.put_event(event)
    assert delivery.queue == "ReconcileQueue" and delivery.message_id

    # When the poller hands it to the reconciler, SQS redelivering it after each visibility timeout
    batches = stack.flows.drain("ReconcilerFunction", redeliveries=MAX_RECEIVES)

    # Then each of the 5 receives reported it as a batch item failure with its reason logged,
    # and SQS then moved it to ReconcileDLQ, unchanged
    assert [(b.message_ids, b.failed_ids) for b in batches] == [
        ([delivery.message_id], [delivery.message_id])
    ] * MAX_RECEIVES
    for b in batches:
        refused = [json.loads(line) for line in b.invocation.log_lines if "record refused" in line]
        assert len(refused) == 1 and "detail.tags" in refused[0]["reason"], b.invocation.log_lines
    assert [
        int(json.loads(line)["receiveCount"])
        for b in batches
        for line in b.invocation.log_lines
        if "record refused" in line
    ] == list(range(1, MAX_RECEIVES + 1))
    assert stack.flows.queue_depth("ReconcileQueue") == 0
    (dead,) = stack.client("sqs").receive_message(QueueUrl=stack.deployment.physical_id("ReconcileDLQ"))[
        "Messages"
    ]
    assert json.loads(dead["Body"]) == event
    stack.client("sqs").delete_message(
        QueueUrl=stack.deployment.physical_id("ReconcileDLQ"), ReceiptHandle=dead["ReceiptHandle"]
    )


def test_the_queue_policy_admits_only_the_stack_rules(stack: Stack) -> None:
    # Given a rule made by hand (not the stack's) that targets ReconcileQueue, dead-lettering to
    # ReconcileDLQ
    events = stack.client("events")
    queue_arn = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.deployment.physical_id("ReconcileQueue"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    dlq_arn = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.deployment.physical_id("ReconcileDLQ"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    events.put_rule(Name="rogue", EventPattern=json.dumps({"source": ["rogue.app"]}), State="ENABLED")
    events.put_targets(
        Rule="rogue", Targets=[{"Id": "q", "Arn": queue_arn, "DeadLetterConfig": {"Arn": dlq_arn}}]
    )
    try:
        # When an event matches it
        (delivery,) = stack.flows.put_event(
            {
                "version": "0",
                "id": "7e9e8b1c-0000-4000-8000-000000000002",
                "detail-type": "Anything",
                "source": "rogue.app",
                "account": stack.emulator.account_id,
                "time": "2025-06-15T03:00:00Z",
                "region": stack.emulator.region,
                "resources": [],
                "detail": {},
            }
        )
    finally:
        events.remove_targets(Rule="rogue", Ids=["q"])
        events.delete_rule(Name="rogue")

    # Then neither the queue nor its DLQ takes it: their policy admits the stack's two rules only
    assert delivery.refused.startswith("no statement of the queue's policy lets events.amazonaws.com send")
    assert (delivery.message_id, delivery.dead_letter) == ("", "")
    assert stack.flows.queue_depth("ReconcileQueue") == 0
    assert stack.flows.queue_depth("ReconcileDLQ") == 0


def test_the_reconciler_role_polls_its_queue_and_no_other(stack: Stack) -> None:
    # Given the reconciler's role session
    sqs = stack.emulator.client("sqs", stack.runtime.credentials("ReconcilerFunction"))

    # Then it may read its own queue, and IAM refuses it the collector's
    sqs.receive_message(QueueUrl=stack.deployment.physical_id("ReconcileQueue"), WaitTimeSeconds=0)
    with pytest.raises(ClientError) as denied:
        sqs.receive_message(QueueUrl=stack.deployment.physical_id("StatusQueue"), WaitTimeSeconds=0)
    assert denied.value.response["Error"]["Code"] in {"AccessDenied", "AccessDeniedException"}
    with pytest.raises(ClientError):
        sqs.send_message(QueueUrl=stack.deployment.physical_id("StatusQueue"), MessageBody="{}")
