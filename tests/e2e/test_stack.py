"""End to end: the real template.yaml deployed into moto's server, driven through its wiring.

One emulator and one deployment for the module (``stack``): moto's server on 127.0.0.1 with IAM
enforced, ``template.yaml`` SAM-translated and created with CloudFormation, what moto skipped made
through the service APIs. Functions run in-process with their deployed configuration and their
execution role's credentials (:mod:`emulator.runtime`); events reach them the way the deployed
rules, topic, queue and event source mapping route them (:mod:`emulator.flows`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.deploy import SKIPPED, Deployment, deploy
from emulator.fake_ssm import make_instance_patch_state
from emulator.flows import SSM_ASSUME_ROLE_CONTEXT, SSM_PRINCIPAL, reconciled
from emulator.moto_ext import JOURNAL
from emulator.permissions import role_usage
from emulator.runtime import LambdaRuntime
from tests.support.stack import TAG_KEY, Stack, deployed_stack

SAMPLE_INVOCATION_KEYS = {
    "commandId",
    "documentName",
    "instanceId",
    "requestedDateTime",
    "status",
    "eventTime",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with deployed_stack({"AlertEmail": "ops@example.com"}, inbox=True) as deployed:
        yield deployed


def _included(deployment: Deployment) -> set[str]:
    # the stack is deployed with an AlertEmail, and stand-alone (no hub bus to forward to)
    conditions = {"HasAlertEmail": True, "ForwardToHub": False}
    return {
        logical_id
        for logical_id, spec in deployment.template["Resources"].items()
        if conditions.get(spec.get("Condition", ""), True)
    }


# --------------------------------------------------------------------------------------------
# Deployment
# --------------------------------------------------------------------------------------------


def test_every_resource_of_the_template_exists_and_the_skipped_ones_were_made_through_their_apis(
    stack: Stack,
) -> None:
    # Given the module's deployment of template.yaml
    deployment = stack.deployment

    # When the stack and its resources are read back
    status = stack.client("cloudformation").describe_stacks(StackName=deployment.stack_id)["Stacks"][0]

    # Then CloudFormation finished, every resource of the translated template exists, and the
    # ones moto's CloudFormation skipped are exactly those made through their APIs
    assert status["StackStatus"] == "CREATE_COMPLETE"
    assert _included(deployment) == set(deployment.resources)
    by_api = {r.logical_id for r in deployment.resources.values() if r.made_by == "api"}
    assert by_api == {change.logical_id for change in deployment.changes(SKIPPED)}
    assert {deployment.resources[r].type for r in by_api} <= {
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::S3::BucketPolicy",
        "AWS::CloudWatch::Alarm",
        "AWS::Scheduler::Schedule",
        "AWS::SSM::MaintenanceWindow",
        "AWS::Lambda::EventInvokeConfig",
    }
    assert {
        "OutputBucketPolicy",
        "ReconcilerDLQPolicy",
        "ReconcilerDLQAlarm",
        "ReconcileQueuePolicy",
        "ReconcileDLQAlarm",
        "AlertEmailSubscription",
    } <= by_api
    assert "ReconcilerFunctionEventInvokeConfig" in by_api


def test_skipped_resources_carry_the_template_properties(stack: Stack) -> None:
    # Given the deployed stack
    deployment = stack.deployment
    dlq_arn = stack.client("sqs").get_queue_attributes(
        QueueUrl=deployment.physical_id("ReconcilerDLQ"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    alert_topic = deployment.physical_id("AlertTopic")

    # When each made-by-API resource is read from its service
    policy = json.loads(
        stack.client("sqs").get_queue_attributes(
            QueueUrl=deployment.physical_id("ReconcilerDLQ"), AttributeNames=["Policy"]
        )["Attributes"]["Policy"]
    )
    bucket_policy = json.loads(
        stack.client("s3").get_bucket_policy(Bucket=deployment.physical_id("OutputBucket"))["Policy"]
    )
    alarms = stack.client("cloudwatch").describe_alarms()["MetricAlarms"]
    invoke_config = stack.client("lambda").get_function_event_invoke_config(
        FunctionName=deployment.functions["ReconcilerFunction"]
    )
    email = stack.client("sns").list_subscriptions_by_topic(TopicArn=alert_topic)["Subscriptions"]

    # Then they hold the template's resolved properties
    assert policy["Statement"][0]["Sid"] == "EventBridgeRuleDeadLetters"
    assert policy["Statement"][0]["Resource"] == dlq_arn
    assert [s["Sid"] for s in bucket_policy["Statement"]] == ["DenyInsecureTransport"]
    reconciler_alarm = next(
        a for a in alarms if a["AlarmName"] == deployment.physical_id("ReconcilerDLQAlarm")
    )
    assert reconciler_alarm["AlarmActions"] == [alert_topic]
    assert reconciler_alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": deployment.physical_id("ReconcilerDLQ").rsplit("/", 1)[-1]}
    ]
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == dlq_arn
    assert ("email", "ops@example.com") in {(s["Protocol"], s["Endpoint"]) for s in email}


def test_status_queue_subscription_and_policy(stack: Stack) -> None:
    stack.require("StatusQueueSubscription", "StatusQueuePolicy")
    # Given the deployed notification topic and status queue
    deployment = stack.deployment
    sqs = stack.client("sqs")
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=deployment.physical_id("StatusQueue"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When the subscription and the queue policy are read back
    attributes = stack.client("sns").get_subscription_attributes(
        SubscriptionArn=deployment.physical_id("StatusQueueSubscription")
    )["Attributes"]
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=deployment.physical_id("StatusQueue"), AttributeNames=["Policy"])[
            "Attributes"
        ]["Policy"]
    )

    # Then SNS delivers the JSON envelope to the queue, with the DLQ as redrive target
    assert attributes["TopicArn"] == deployment.physical_id("NotificationTopic")
    assert attributes["Endpoint"] == queue_arn
    assert attributes["RawMessageDelivery"] == "false"
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(
        deployment.physical_id("StatusDLQ").rsplit("/", 1)[-1]
    )
    assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == deployment.physical_id(
        "NotificationTopic"
    )


def test_dropped_role_properties_are_restored(stack: Stack) -> None:
    # Given the reconciler's execution role
    role = stack.role("ReconcilerFunction")

    # When its attached policies are listed
    attached = stack.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]

    # Then the template's ManagedPolicyArns are there (moto's CloudFormation drops them)
    assert {p["PolicyName"] for p in attached} == {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}


# --------------------------------------------------------------------------------------------
# Reconciler flows
# --------------------------------------------------------------------------------------------


def test_a_tag_change_reaches_the_reconciler_through_the_deployed_rule(stack: Stack) -> None:
    # Given two untagged instances
    instances = stack.launch(2)
    role = stack.role("ReconcilerFunction")
    mark = JOURNAL.mark()

    # When they are tagged PatchGroup=e2e-web (one tag change event each) and Lambda's poller
    # drains the reconcile queue
    deliveries = stack.flows.tag_instances(instances, TAG_KEY, "e2e-web")
    (batch,) = stack.flows.poll("ReconcilerFunction")

    # Then only the deployed TagChangeRule matched and sent each event to ReconcileQueue; the
    # reconciler made the window with its own role's credentials, and the second event found it
    # converged
    assert [(d.rule, d.queue) for d in deliveries] == [
        (stack.deployment.physical_id("TagChangeRule"), "ReconcileQueue")
    ] * 2
    assert all(d.message_id and not d.refused for d in deliveries)
    assert batch.message_ids == [d.message_id for d in deliveries]
    assert (batch.failed_ids, batch.deleted) == ([], 2)
    first, second = reconciled(batch.invocation)
    assert (first["status"], second["status"]) == ("converged", "unchanged")
    windows = stack.client("ssm").describe_maintenance_windows()["WindowIdentities"]
    assert [w["Name"].rsplit("-", 2)[0] for w in windows] == ["TagPatch-install"]  # one shared window
    tasks = stack.client("ssm").describe_maintenance_window_tasks(WindowId=windows[0]["WindowId"])["Tasks"]
    assert [task["Name"] for task in tasks] == ["TagPatch-e2e-web-patch"]
    calls = {(a.action, a.implied_by) for a in JOURNAL.entries(since=mark, role_name=role) if a.allowed}
    assert ("ssm:CreateMaintenanceWindow", "") in calls
    assert ("iam:PassRole", "ssm:RegisterTaskWithMaintenanceWindow") in calls


def test_a_change_of_another_tag_matches_no_rule(stack: Stack) -> None:
    # Given an instance
    (instance,) = stack.launch(1)

    # When a tag other than PatchGroup changes
    deliveries = stack.flows.tag_instances([instance], "Owner", "team-a")

    # Then no deployed rule matches the event
    assert deliveries == []


def test_the_schedule_and_a_direct_invocation_reach_the_reconciler(stack: Stack) -> None:
    # Given an instance tagged before anything listened (no event)
    (instance,) = stack.launch(1)
    stack.client("ec2").create_tags(Resources=[instance], Tags=[{"Key": TAG_KEY, "Value": "e2e-backfill"}])

    # When the scheduled rule fires, Lambda's poller drains what it queued, then an operator asks
    # for a dry run
    (scheduled,) = stack.flows.fire_schedule("ReconcilerFunction", rule="ReconcilerFunctionReconcile")
    batches = stack.flows.poll("ReconcilerFunction")
    plan = stack.runtime.invoke("ReconcilerFunction", {"group": "e2e-backfill", "dryRun": True})

    # Then the scheduled run only planned and queued; the queue's consumer backfilled the group and
    # the plan has nothing left to do
    assert scheduled.rule == stack.deployment.physical_id("ReconcilerFunctionReconcile")
    assert scheduled.outcome is not None and scheduled.outcome.ok
    result = scheduled.outcome.last.result
    assert result["groups"] == [] and result["queued"]["messages"] == len(batches[0].message_ids) >= 1
    statuses = {o["group"]: o["status"] for b in batches for o in reconciled(b.invocation)}
    assert statuses["e2e-backfill"] == "converged"
    assert plan.ok
    assert plan.result["groups"][0]["actions"] == []


def test_the_sweep_schedule_reaches_the_reconciler_under_its_role(stack: Stack) -> None:
    # Issue 12 #5/#8: the 5-minute rule delivers its constant input, and the deployed role lets
    # the reconciler look for pending groups
    (swept,) = stack.flows.fire_schedule("ReconcilerFunction", rule="ReconcilerFunctionSweep")
    assert swept.outcome is not None and swept.outcome.ok
    assert swept.outcome.last.result == {"ok": True, "groups": [], "queued": {"messages": 0, "groups": 0}}


def test_a_function_runs_with_its_deployed_configuration_and_logs_to_its_log_group(stack: Stack) -> None:
    # Given the deployed reconciler
    name = stack.deployment.functions["ReconcilerFunction"]

    # When it is invoked directly
    invocation = stack.runtime.invoke("ReconcilerFunction", {"group": "e2e-nothing", "dryRun": True})

    # Then it ran under its execution role with Lambda's context, and its output is in its log group
    assert invocation.ok, invocation.describe_error()
    assert {a.role_name for a in invocation.accesses} == {stack.role("ReconcilerFunction")}
    logged = [json.loads(line) for line in invocation.log_lines if line.startswith("{")]
    assert logged and all(entry["function_name"] == name for entry in logged)
    events = stack.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    assert any(invocation.request_id in event["message"] for event in events)


# --------------------------------------------------------------------------------------------
# IAM enforcement
# --------------------------------------------------------------------------------------------


def test_a_role_cannot_call_an_action_outside_its_policies(stack: Stack) -> None:
    stack.require("StatusCollectorFunction")
    # Given the status collector's role session
    ssm = stack.emulator.client("ssm", stack.runtime.credentials("StatusCollectorFunction"))

    # When it tries an action only the reconciler is granted
    with pytest.raises(ClientError) as denied:
        ssm.create_maintenance_window(
            Name="not-mine", Schedule="rate(7 days)", Duration=2, Cutoff=1, AllowUnassociatedTargets=False
        )

    # Then IAM refuses it
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "ssm:CreateMaintenanceWindow" in denied.value.response["Error"]["Message"]


def _without_pass_role(template: dict[str, Any]) -> None:
    for policy in template["Resources"]["ReconcilerRole"]["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "PassWindowRoles"]


def test_a_permission_missing_from_the_template_fails_as_on_aws(stack: Stack) -> None:
    # Given a second stack from template.yaml whose reconciler lacks iam:PassRole, and a tagged instance
    variant = deploy(stack.emulator, stack_name="tagpatch-nopass", edit=_without_pass_role)
    runtime = LambdaRuntime(stack.emulator, variant)
    (instance,) = stack.launch(1)
    stack.client("ec2").create_tags(Resources=[instance], Tags=[{"Key": TAG_KEY, "Value": "e2e-denied"}])

    # When that reconciler is invoked asynchronously for the group (as its rules invoke it)
    outcome = runtime.invoke_async("ReconcilerFunction", {"group": "e2e-denied"})

    # Then registering the window's task (which passes the service role) is denied as AWS denies
    # it, every retry of the deployed EventInvokeConfig fails, and the event lands in the DLQ
    assert [invocation.ok for invocation in outcome.attempts] == [False, False, False]
    assert "AccessDeniedException" in outcome.last.describe_error()
    assert {(a.action, a.implied_by) for a in outcome.last.denied} == {
        ("iam:PassRole", "ssm:RegisterTaskWithMaintenanceWindow")
    }
    dlq = variant.physical_id("ReconcilerDLQ")
    assert outcome.destination is not None and outcome.destination.endswith(dlq.rsplit("/", 1)[-1])
    (message,) = stack.client("sqs").receive_message(QueueUrl=dlq)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == {"group": "e2e-denied"}


# --------------------------------------------------------------------------------------------
# Status collector
# --------------------------------------------------------------------------------------------


def test_a_window_run_is_collected_and_its_failure_alerted(stack: Stack) -> None:
    stack.require("StatusCollectorFunction", "CommandStatusTable", "StatusQueueSubscription")
    # Given a group of three instances with its window
    instances = stack.launch(3)
    stack.flows.tag_instances(instances, TAG_KEY, "e2e-db")
    stack.flows.poll("ReconcilerFunction")
    stack.flows.read_inbox()
    collector_role = stack.role("StatusCollectorFunction")
    mark = JOURNAL.mark()

    # When the window runs, one instance fails and one is still running, and Lambda's poller
    # drains the status queue
    run = stack.flows.run_window(
        "e2e-db", {instances[1]: "Failed", instances[2]: "Failed"}, late=[instances[2]]
    )
    batches = stack.flows.poll("StatusCollectorFunction")

    # Then every notification was real-shaped, consumed and deleted, each finished instance has
    # its record, and one alert names the failed instance
    assert len(run.notifications) == 5
    assert all(set(n) == SAMPLE_INVOCATION_KEYS for n in run.notifications)
    assert [(len(b.message_ids), b.failed_ids, b.deleted) for b in batches] == [(5, [], 5)]
    assert stack.flows.queue_depth("StatusQueue") == 0
    items = stack.client("dynamodb").query(
        TableName=stack.deployment.physical_id("CommandStatusTable"),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :inst)",
        ExpressionAttributeValues={":pk": {"S": f"CMD#{run.command_id}"}, ":inst": {"S": "INST#"}},
    )["Items"]
    assert {(i["instance_id"]["S"], i["status"]["S"]) for i in items} == {
        (instances[0], "Success"),
        (instances[1], "Failed"),
        (instances[2], "InProgress"),
    }
    alerts = stack.flows.read_inbox()
    assert len(alerts) == 1
    assert "1 instance Failed in group e2e-db" in alerts[0].subject
    assert instances[1] in alerts[0].message

    # When the late instance fails within the alert cooldown
    stack.flows.finish_late(run)
    (late_batch,) = stack.flows.poll("StatusCollectorFunction")

    # Then it is recorded but held: no second e-mail, and a delayed flush message on the status
    # queue (sent with the collector's own role) will summarise it when the cooldown ends
    assert late_batch.invocation.ok and late_batch.failed_ids == []
    assert stack.flows.read_inbox() == []
    delayed = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.deployment.physical_id("StatusQueue"),
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert delayed == "1"
    used = {a.action for a in JOURNAL.entries(since=mark, role_name=collector_role) if a.allowed}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"} <= used
    assert {"ssm:ListCommands", "sns:Publish", "kms:GenerateDataKey"} <= used


def test_a_malformed_notification_stays_on_the_queue_for_the_dlq(stack: Stack) -> None:
    stack.require("StatusCollectorFunction", "StatusQueueSubscription")
    # Given a message on the notification topic that is no Run Command notification (published
    # as the notification role: the topic's policy denies every other publisher)
    notifier = stack.emulator.assume_role_as_service(
        stack.deployment.outputs["NotificationRoleArn"], SSM_PRINCIPAL, "RunCommand", SSM_ASSUME_ROLE_CONTEXT
    )
    stack.emulator.client("sns", notifier).publish(
        TopicArn=stack.deployment.physical_id("NotificationTopic"), Message="not json"
    )

    # When Lambda's poller hands it to the collector
    (batch,) = stack.flows.poll("StatusCollectorFunction")

    # Then the collector reports it as a batch item failure: it is not deleted (SQS redelivers it
    # and moves it to the DLQ after maxReceiveCount)
    assert batch.invocation.ok
    assert batch.failed_ids == batch.message_ids
    assert batch.deleted == 0
    assert stack.flows.queue_depth("StatusQueue") == 1


# --------------------------------------------------------------------------------------------
# Compliance reporter
# --------------------------------------------------------------------------------------------


def _report(stack: Stack, at: datetime) -> tuple[dict[str, Any], list[Any]]:
    """Fire the compliance schedule at ``at``, then let Lambda's poller drain ReportQueue into the
    reporter: the planner's result and the workers' batches."""
    (planned,) = stack.flows.fire_schedule("ComplianceReporterFunction", at=at)
    assert planned.outcome is not None and planned.outcome.last.ok, planned.refused
    return planned.outcome.last.result, stack.flows.poll("ComplianceReporterFunction")


def _group_latest(stack: Stack, group: str) -> dict[str, Any]:
    return dict(
        stack.client("dynamodb").get_item(
            TableName=stack.deployment.physical_id("ComplianceTable"),
            Key={"pk": {"S": f"GROUP#{group}"}, "sk": {"S": "LATEST"}},
        )["Item"]
    )


def test_the_compliance_snapshot_records_each_group_and_sends_a_digest(stack: Stack) -> None:
    stack.require("ComplianceReporterFunction", "ComplianceTable", "ReportQueue")
    # Given a group of two instances, one missing patches
    instances = stack.launch(2)
    stack.flows.tag_instances(instances, TAG_KEY, "e2e-app")
    stack.flows.poll("ReconcilerFunction")
    stack.flows.seed_patch_states(
        [
            make_instance_patch_state(instances[0], "e2e-app"),
            make_instance_patch_state(instances[1], "e2e-app", missing=3, critical=1),
        ]
    )
    stack.flows.read_inbox()
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)

    # When the snapshot schedule fires today and tomorrow, and ReportQueue is drained each time
    runs = [_report(stack, today), _report(stack, today + timedelta(days=1))]

    # Then each planner queued the groups, the workers recorded them (the second with its trend),
    # and each run sent one digest
    for planned, batches in runs:
        assert planned["planned"]["sent"] == planned["planned"]["batches"] >= 1
        assert batches and all(batch.invocation.ok and not batch.failed_ids for batch in batches)
        assert {len(batch.message_ids) for batch in batches} == {1}  # BatchSize 1
    latest = _group_latest(stack, "e2e-app")
    assert (latest["compliant_instances"]["N"], latest["instances"]["N"]) == ("1", "2")
    assert float(latest["compliance_change"]["N"]) == 0.0
    digests = [email for email in stack.flows.read_inbox() if email.subject.startswith("TagPatch compliance")]
    assert len(digests) == 2
    delayed = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.deployment.physical_id("ReportQueue"),
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert delayed == "2"  # each run's deadline message, not due for 15 minutes

    # When an operator asks for the group alone
    on_demand = stack.runtime.invoke("ComplianceReporterFunction", {"group": "e2e-app"})

    # Then it is snapshotted on its own, in the invocation (the reporter reads the one group record)
    assert on_demand.ok, on_demand.describe_error()
    assert [g["group"] for g in on_demand.result["groups"]] == ["e2e-app"]
    assert "dynamodb:GetItem" in {a.action for a in on_demand.accesses if a.allowed}


def test_50_groups_fan_out_through_the_report_queue_into_one_digest(stack: Stack) -> None:
    stack.require("ComplianceReporterFunction", "ReportQueue")
    # Given 50 patch groups registered with a baseline, 20 instances each, a few not compliant
    ssm = stack.client("ssm")
    # (two baselines: SSM allows 25 patch groups per baseline)
    baselines = [
        ssm.create_patch_baseline(Name=f"e2e-fanout-{n}", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
        for n in range(2)
    ]
    groups = [f"fan-{n:02d}" for n in range(50)]
    states = []
    for n, group in enumerate(groups):
        ssm.register_patch_baseline_for_patch_group(BaselineId=baselines[n % 2], PatchGroup=group)
        for i in range(20):
            missing = 1 if i == 0 and n % 10 == 0 else 0
            states.append(make_instance_patch_state(f"i-{n:05x}{i:012x}", group, missing=missing))
    stack.flows.seed_patch_states(states)
    stack.flows.read_inbox()
    at = datetime.now(UTC).replace(hour=5, minute=0, second=0, microsecond=0) + timedelta(days=7)

    # When the schedule fires and Lambda's poller drains ReportQueue (as the function's role)
    planned, batches = _report(stack, at)

    # Then the planner queued batches of at most 20 groups (their size unknown to the groups
    # table: 100 each), every batch was carried out in its own invocation, and one digest came
    planned_groups = planned["planned"]["groups"]
    assert planned_groups >= 50 and planned["planned"]["batches"] == -(-planned_groups // 20)
    assert len(batches) == planned["planned"]["batches"]
    assert all(batch.invocation.ok and not batch.failed_ids and batch.deleted == 1 for batch in batches)
    for group in groups:
        assert _group_latest(stack, group)["instances"]["N"] == "20"
    (digest,) = [
        email for email in stack.flows.read_inbox() if email.subject.startswith("TagPatch compliance")
    ]
    assert f"in {planned_groups} groups" in digest.message
    assert "fan-00" in digest.message.split("Worst instances")[1]
    # And the workers ran with the reporter's role, within its grants
    worker = batches[-1].invocation
    allowed = {access.action for access in worker.accesses if access.allowed}
    assert {"ssm:DescribeInstancePatchStatesForPatchGroup", "dynamodb:UpdateItem", "sns:Publish"} <= allowed
    assert not [access for access in worker.accesses if not access.allowed]


# --------------------------------------------------------------------------------------------
# Least privilege
# --------------------------------------------------------------------------------------------


def test_granted_but_unused_permissions_are_reported_per_role(stack: Stack) -> None:
    # Given the reconciler has converged a new group
    (instance,) = stack.launch(1)
    stack.flows.tag_instances([instance], TAG_KEY, "e2e-usage")
    stack.flows.poll("ReconcilerFunction")

    # When its role's grants are compared with the journal of what it called
    usage = role_usage(stack.emulator, "ReconcilerFunction", stack.role("ReconcilerFunction"))
    unused = {grant.action: usage.reason(grant) for grant in usage.unused}

    # Then what it called is used, and what it never called is listed, with the known reasons
    assert {"ssm:CreateMaintenanceWindow", "iam:PassRole", "dynamodb:UpdateItem", "logs:PutLogEvents"} <= set(
        usage.used
    )
    # the poller's actions, with the function's role (ReconcilerRole's PollReconcileQueue)
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= set(usage.used)
    assert "ssm:CreateMaintenanceWindow" not in unused
    assert "X-Ray" in unused["xray:PutTraceSegments"]
    assert not usage.denied


# --------------------------------------------------------------------------------------------
# Member events (docs/events.md)
# --------------------------------------------------------------------------------------------


def test_a_rule_for_source_tagpatch_receives_group_reconciled_after_a_tag_change(stack: Stack) -> None:
    # Given a consumer in the account: a rule on the default bus for source tagpatch, to its queue
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="e2e-member-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="e2e-member-events", EventPattern=json.dumps({"source": ["tagpatch"]}))
    events.put_targets(Rule="e2e-member-events", Targets=[{"Id": "queue", "Arn": arn}])

    # When an instance joins a new group and the tag change drains through ReconcileQueue
    (instance,) = stack.launch(1)
    stack.flows.tag_instances([instance], TAG_KEY, "e2e-events")
    batches = stack.flows.poll("ReconcilerFunction")

    # Then the reconciler's role put the event on the default bus, allowed, and the consumer got
    # a "Group Reconciled" naming the group, the account, the region and the stack
    accesses = [access for batch in batches for access in batch.invocation.accesses]
    puts = [access for access in accesses if access.action == "events:PutEvents"]
    assert puts and all(access.allowed for access in puts)
    bodies = [
        json.loads(message["Body"])
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]
    reconciled_events = [
        body
        for body in bodies
        if body["detail-type"] == "Group Reconciled" and body["detail"]["group"] == "e2e-events"
    ]
    (event,) = reconciled_events
    assert event["source"] == "tagpatch"
    detail = event["detail"]
    assert (detail["schemaVersion"], detail["status"]) == ("1", "converged")
    region, account = stack.deployment.stack_id.split(":")[3:5]
    assert (detail["account"], detail["region"], detail["stack"]) == (
        account,
        region,
        stack.deployment.stack_name,
    )
    assert detail["actions"] > 0
    assert detail["windows"] and all(window["windowId"].startswith("mw-") for window in detail["windows"])


def test_a_window_run_notified_per_invocation_is_one_run_result_on_the_bus(stack: Stack) -> None:
    stack.require("StatusCollectorFunction", "StatusQueueSubscription")
    # Given a consumer of source tagpatch and a group of three instances with its window (the
    # default NotificationType: Invocation)
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="e2e-run-results")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="e2e-run-results", EventPattern=json.dumps({"source": ["tagpatch"]}))
    events.put_targets(Rule="e2e-run-results", Targets=[{"Id": "queue", "Arn": arn}])
    instances = stack.launch(3)
    stack.flows.tag_instances(instances, TAG_KEY, "e2e-runs")
    stack.flows.poll("ReconcilerFunction")
    stack.flows.read_inbox()
    sqs.purge_queue(QueueUrl=url)

    # When the window runs (one instance fails) and Lambda's poller drains the status queue
    run = stack.flows.run_window("e2e-runs", {instances[1]: "Failed"})
    batches = stack.flows.poll("StatusCollectorFunction")
    assert all(batch.failed_ids == [] for batch in batches)
    assert all("instanceId" in n for n in run.notifications)

    # Then the consumer got one Run Result of the command: SSM's status and the instance counts
    bodies = [
        json.loads(message["Body"])
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]
    (result,) = [body["detail"] for body in bodies if body["detail-type"] == "Run Result"]
    assert (result["group"], result["commandId"], result["status"]) == ("e2e-runs", run.command_id, "Failed")
    assert (result["instances"], result["failedInstances"]) == ({"Success": 2, "Failed": 1}, 1)
