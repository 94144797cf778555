"""ReconcileQueue in template.yaml: who may send, who polls, how failures end, how concurrency is bounded.

Complements tests/unit/test_template.py (encryption, DLQ alarms, wildcard rules) and
tests/unit/test_security.py with what is particular to the reconcile queue.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.test_template import (
    Resources,
    _as_list,
    _identity_policy_statements,
    _is_getatt,
    _is_ref_to,
    _load_template,
    _of_type,
    _props,
)

RULES = ("TagChangeRule", "SettingsChangeRule")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> Resources:
    return dict(template["Resources"])


def test_the_queue_redrives_to_its_dlq_and_outlasts_the_function(resources: Resources) -> None:
    queue = _props(resources["ReconcileQueue"])
    timeout = _props(resources["ReconcilerFunction"])["Timeout"]

    assert queue["SqsManagedSseEnabled"] is True
    # AWS: at least 6 times the function's timeout for an SQS event source
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert _is_getatt(queue["RedrivePolicy"]["deadLetterTargetArn"], "ReconcileDLQ", "Arn")
    # AWS: maxReceiveCount at least 5 for a Lambda event source (throttled receives count too)
    assert 5 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    assert _props(resources["ReconcileDLQ"])["SqsManagedSseEnabled"] is True
    assert _props(resources["ReconcileDLQ"])["MessageRetentionPeriod"] == 1209600


def test_the_concurrency_parameter_bounds_the_event_source(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ReconcileConcurrency"]
    events = _props(template["Resources"]["ReconcilerFunction"])["Events"]
    (queue_event,) = [event for event in events.values() if event["Type"] == "SQS"]

    # SQS event sources allow a MaximumConcurrency of 2 to 1000
    assert (parameter["Type"], parameter["Default"]) == ("Number", 2)
    assert (parameter["MinValue"], parameter["MaxValue"]) == (2, 1000)
    assert "SSM" in parameter["Description"]
    assert _is_ref_to(
        queue_event["Properties"]["ScalingConfig"]["MaximumConcurrency"], "ReconcileConcurrency"
    )


def test_the_reconciler_reads_its_queue_in_small_batches_with_partial_failures(resources: Resources) -> None:
    events = _props(resources["ReconcilerFunction"])["Events"]

    (queue_event,) = [event for event in events.values() if event["Type"] == "SQS"]
    properties = queue_event["Properties"]
    assert _is_getatt(properties["Queue"], "ReconcileQueue", "Arn")
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= properties["BatchSize"] <= 10
    # only the two schedules still invoke the function directly
    assert sorted(event["Type"] for event in events.values()) == ["SQS", "Schedule", "Schedule"]
    assert _is_ref_to(
        _props(resources["ReconcilerFunction"])["Environment"]["Variables"]["RECONCILE_QUEUE_URL"],
        "ReconcileQueue",
    )


@pytest.mark.parametrize("rule", RULES)
def test_tag_and_settings_changes_go_to_the_queue_with_retries_and_a_dlq(
    resources: Resources, rule: str
) -> None:
    props = _props(resources[rule])

    assert resources[rule]["Type"] == "AWS::Events::Rule"
    assert props["State"] == "ENABLED"
    (target,) = props["Targets"]
    assert _is_getatt(target["Arn"], "ReconcileQueue", "Arn")
    assert _is_getatt(target["DeadLetterConfig"]["Arn"], "ReconcileDLQ", "Arn")
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10}
    # the event itself is the message: the consumer parses it as EventBridge sent it
    assert not {"Input", "InputPath", "InputTransformer", "RoleArn"} & set(target)


def test_only_the_stack_rules_may_send_to_the_reconcile_queues(resources: Resources) -> None:
    policy = _props(resources["ReconcileQueuePolicy"])

    assert policy["Queues"] == [{"Ref": "ReconcileQueue"}, {"Ref": "ReconcileDLQ"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["ReconcileQueue", "Arn"]},
        {"Fn::GetAtt": ["ReconcileDLQ", "Arn"]},
    ]
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": [rule, "Arn"]} for rule in RULES]}
    }


def test_every_rule_target_queue_and_dlq_admits_its_rule(resources: Resources) -> None:
    # Given every queue a rule resource sends to (its target or its DLQ)
    policies = _of_type(resources, "AWS::SQS::QueuePolicy").values()
    for rule_id, rule in _of_type(resources, "AWS::Events::Rule").items():
        for target in _props(rule)["Targets"]:
            for arn in (target["Arn"], target["DeadLetterConfig"]["Arn"]):
                if "Fn::GetAtt" not in arn:
                    continue  # HubForwardRule's target: the hub's bus (the HubEventBusArn parameter)
                queue = arn["Fn::GetAtt"][0]
                # Then a policy of that queue lets EventBridge send for this rule
                admitted = [
                    statement
                    for policy in policies
                    if {"Ref": queue} in _props(policy)["Queues"]
                    for statement in _props(policy)["PolicyDocument"]["Statement"]
                    if statement["Principal"] == {"Service": "events.amazonaws.com"}
                    and {"Fn::GetAtt": [rule_id, "Arn"]}
                    in _as_list(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
                ]
                assert admitted, f"{queue} does not admit {rule_id}"


def _grants(resources: Resources, role: str) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for name, statement in _identity_policy_statements(resources):
        if name != role or statement["Effect"] != "Allow":
            continue
        for action in _as_list(statement["Action"]):
            grants.setdefault(action, []).extend(json.dumps(r) for r in _as_list(statement["Resource"]))
    return grants


def test_the_reconciler_polls_and_sends_to_its_queues_only(resources: Resources) -> None:
    grants = {action: sorted(res) for action, res in _grants(resources, "ReconcilerRole").items()}
    queue = json.dumps({"Fn::GetAtt": ["ReconcileQueue", "Arn"]})

    sqs = {action: res for action, res in grants.items() if action.startswith("sqs:")}
    assert sqs == {
        "sqs:ReceiveMessage": [queue],
        "sqs:DeleteMessage": [queue],
        "sqs:GetQueueAttributes": [queue],
        # its batches of groups, and the on-failure destination of its asynchronous invocations
        "sqs:SendMessage": sorted([queue, json.dumps({"Fn::GetAtt": ["ReconcilerDLQ", "Arn"]})]),
    }
    # SQS managed SSE: no KMS key to be granted
    assert not [action for action in grants if action.startswith("kms:")]


def test_the_reconciler_has_its_own_role_without_the_sqs_managed_policy(resources: Resources) -> None:
    # With a SAM-generated role an SQS event attaches AWSLambdaSQSQueueExecutionRole (receive and
    # delete on every queue); ReconcilerRole grants them on ReconcileQueue only.
    function = _props(resources["ReconcilerFunction"])
    assert _is_getatt(function["Role"], "ReconcilerRole", "Arn")
    assert "Policies" not in function
    role = _props(resources["ReconcilerRole"])
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"},
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def test_the_reconcile_dlq_is_alarmed_shown_and_output(
    template: dict[str, Any], resources: Resources
) -> None:
    alarm = _props(resources["ReconcileDLQAlarm"])
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ReconcileDLQ", "QueueName"]}}
    ]
    assert (alarm["Threshold"], alarm["AlarmActions"]) == (1, [{"Ref": "AlertTopic"}])
    dashboard = _props(resources["OperationsDashboard"])["DashboardBody"]["Fn::Sub"]
    assert "${ReconcileDLQ.QueueName}" in dashboard
    assert _is_ref_to(template["Outputs"]["ReconcileQueueUrl"]["Value"], "ReconcileQueue")
    assert _is_ref_to(template["Outputs"]["ReconcileDLQUrl"]["Value"], "ReconcileDLQ")


def test_the_schedules_alone_dead_letter_into_the_reconciler_dlq(resources: Resources) -> None:
    (statement,) = _props(resources["ReconcilerDLQPolicy"])["PolicyDocument"]["Statement"]
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]

    assert sources == [
        {"Fn::GetAtt": ["ReconcilerFunctionReconcile", "Arn"]},
        {"Fn::GetAtt": ["ReconcilerFunctionSweep", "Arn"]},
    ]
