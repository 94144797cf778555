"""Structural rules every resource in template.yaml must keep.

The template is read as YAML (CloudFormation short-form tags become their long form), so these
tests need no AWS access, no SAM CLI and no network. `make validate` runs `sam validate --lint`.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias, cast

import pytest
import yaml
from moto.events.models import EventPattern

Resources: TypeAlias = dict[str, dict[str, Any]]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
EVENTS_DIR = ROOT / "events"

STACK_NAME = "tagpatch"  # the stack name the sample events were written for
LAYER_ACCOUNT = "017000801446"

# Actions allowed with `Resource: "*"` in identity policies: APIs that support no resource-level
# permissions (Service Authorization Reference). Extend only with such actions.
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {
        "ec2:DescribeInstances",
        "ssm:CreateMaintenanceWindow",
        "ssm:DescribeMaintenanceWindows",
        "ssm:DescribePatchGroups",
        "ssm:DescribePatchGroupState",
        "ssm:DescribeInstancePatchStatesForPatchGroup",
        "ssm:ListCommands",
        "ssm:CancelCommand",
        "ssm:ListCommandInvocations",
        "ssm:GetCommandInvocation",
    }
)

RECONCILER_ENVIRONMENT = frozenset(
    {
        "STACK_NAME",
        "TAG_KEY",
        "GROUPS_TABLE_NAME",
        "GROUP_SETTINGS_PREFIX",
        "DELETE_EMPTY_GROUP_WINDOWS",
        "EMPTY_GROUP_WINDOW_DAYS",
        "MAX_GROUPS",
        "MAX_WINDOWS",
        "MAX_TASKS_PER_WINDOW",
        "MAX_TARGETS_PER_WINDOW",
        "MAX_GROUPS_PER_BASELINE",
        "CONCURRENT_WINDOW_EXECUTIONS",
        "STAGGER_SLOTS",
        "GROUP_NAME_PATTERN",
        "MAINTENANCE_WINDOW_ROLE_ARN",
        "OUTPUT_BUCKET",
        "NOTIFICATION_TOPIC_ARN",
        "NOTIFICATION_ROLE_ARN",
        "DEFAULT_SCHEDULE",
        "DEFAULT_SCHEDULE_TIMEZONE",
        "DEFAULT_SCHEDULE_OFFSET",
        "DEFAULT_DURATION",
        "DEFAULT_CUTOFF",
        "DEFAULT_PRIORITY",
        "DEFAULT_MAX_CONCURRENCY",
        "DEFAULT_MAX_ERRORS",
        "DEFAULT_OPERATION",
        "DEFAULT_REBOOT_OPTION",
        "DEFAULT_TIMEOUT_SECONDS",
        "DEFAULT_COMMENT",
        "DEFAULT_TARGET_OWNER_INFORMATION",
        "DEFAULT_OUTPUT_PREFIX",
        "DEFAULT_NOTIFICATION_EVENTS",
        "DEFAULT_NOTIFICATION_TYPE",
        "DEFAULT_SCAN_SCHEDULE",
        "DEFAULT_PATCH_BASELINE_ID",
        "RECONCILE_QUEUE_URL",
    }
)

EXPECTED_OUTPUTS = frozenset(
    {
        "GroupsTableName",
        "OutputBucketName",
        "NotificationTopicArn",
        "AlertTopicArn",
        "ReconcilerFunctionName",
        "ReconcilerFunctionArn",
        "ReconcilerDLQUrl",
        "ReconcileQueueUrl",
        "ReconcileDLQUrl",
        "MaintenanceWindowRoleArn",
        "NotificationRoleArn",
        "InstanceOutputWritePolicyArn",
        "GroupSettingsPrefix",
    }
)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref x` into {"Ref": "x"}, `!GetAtt a.b` into
    {"Fn::GetAtt": ["a", "b"]} and every other `!Fn` into {"Fn::Fn": ...}."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def _load_template() -> dict[str, Any]:
    loaded = yaml.load(TEMPLATE_PATH.read_text(encoding="utf-8"), Loader=_CfnLoader)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> Resources:
    return dict(template["Resources"])


def _of_type(resources: Resources, resource_type: str) -> Resources:
    return {name: res for name, res in resources.items() if res["Type"] == resource_type}


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    return dict(resource.get("Properties", {}))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_ref_to(value: Any, logical_id: str) -> bool:
    return bool(value == {"Ref": logical_id})


def _is_getatt(value: Any, logical_id: str, attribute: str) -> bool:
    return bool(value == {"Fn::GetAtt": [logical_id, attribute]})


def _function_event_sources(resources: Resources) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for function_id, function in _of_type(resources, "AWS::Serverless::Function").items():
        for event_id, event in _props(function).get("Events", {}).items():
            yield function_id, event_id, event


def _identity_policy_statements(resources: Resources) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of a policy attached to an identity (roles, managed policies, functions)."""
    for name, res in resources.items():
        props = _props(res)
        documents: list[Any] = []
        if res["Type"] == "AWS::IAM::Role":
            documents += [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            documents.append(props["PolicyDocument"])
        elif res["Type"] == "AWS::Serverless::Function":
            # Inline documents only; SAM policy templates (e.g. DynamoDBCrudPolicy) are scoped by SAM.
            documents += [
                p for p in _as_list(props.get("Policies", [])) if isinstance(p, dict) and "Statement" in p
            ]
        for document in documents:
            for statement in _as_list(document["Statement"]):
                yield name, statement


def _template_value(value: Any, parameters: dict[str, Any]) -> Any:
    """Resolve `Ref` to parameter defaults and `Fn::Sub` of pseudo parameters, for sample matching."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]["Default"]
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"].replace("${AWS::StackName}", STACK_NAME)
        return {key: _template_value(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [_template_value(item, parameters) for item in value]
    return value


def _load_event(name: str) -> dict[str, Any]:
    loaded = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


# --------------------------------------------------------------------------------------------
# Runtime, layer, build
# --------------------------------------------------------------------------------------------
def test_runtime_is_python313_everywhere(template: dict[str, Any], resources: Resources) -> None:
    # Given the global function settings and every function
    global_function = template["Globals"]["Function"]
    functions = {
        **_of_type(resources, "AWS::Serverless::Function"),
        **_of_type(resources, "AWS::Lambda::Function"),
    }

    # Then the runtime is python3.13, set globally and never overridden with another one
    assert global_function["Runtime"] == "python3.13"
    assert functions
    for name, function in functions.items():
        assert _props(function).get("Runtime", "python3.13") == "python3.13", name


def test_powertools_layer_matches_runtime_and_architecture(template: dict[str, Any]) -> None:
    # Given the global layer and architecture
    global_function = template["Globals"]["Function"]
    (architecture,) = global_function["Architectures"]
    layers = global_function["Layers"]

    # Then the public Powertools v3 layer for python3.13 of that architecture is used, with the
    # version from the PowertoolsLayerVersion parameter
    assert architecture in ("x86_64", "arm64")
    assert len(layers) == 1
    arn = layers[0]["Fn::Sub"]
    assert arn == (
        f"arn:aws:lambda:${{AWS::Region}}:{LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-python313-{architecture}:${{PowertoolsLayerVersion}}"
    )


def test_functions_keep_their_architecture_global(resources: Resources) -> None:
    # A per-function architecture would not match the global (architecture-specific) layer.
    for name, function in _of_type(resources, "AWS::Serverless::Function").items():
        assert "Architectures" not in _props(function), name


def test_powertools_environment_is_global(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]

    assert variables["POWERTOOLS_SERVICE_NAME"] == "tagpatch"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "TagPatch"
    assert _is_ref_to(variables["POWERTOOLS_LOG_LEVEL"], "LogLevel")
    assert template["Globals"]["Function"]["Tracing"] == "Active"


def test_tracing_of_aws_calls_is_opt_in_for_every_function(template: dict[str, Any]) -> None:
    from tagpatch.observability import TRACE_AWS_CALLS_ENV

    # Given the switch that loads the X-Ray SDK (~150 ms of cold start) in the functions
    parameter = template["Parameters"]["TraceAwsCalls"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]

    # Then it is off unless the stack opts in, reaches every function, and the function-level
    # traces of Tracing: Active stay on either way
    assert parameter["Default"] == "false"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]
    assert _is_ref_to(variables[TRACE_AWS_CALLS_ENV], "TraceAwsCalls")
    assert template["Globals"]["Function"]["Tracing"] == "Active"


def test_code_uris_have_no_requirements_file(resources: Resources) -> None:
    # A requirements.txt would make `sam build` need a python3.13 binary on the build machine.
    for name, function in _of_type(resources, "AWS::Serverless::Function").items():
        code_uri = ROOT / _props(function)["CodeUri"]
        assert code_uri.is_dir(), name
        assert not (code_uri / "requirements.txt").exists(), name


# --------------------------------------------------------------------------------------------
# Logs, dead letters, alarms
# --------------------------------------------------------------------------------------------
def test_every_function_has_an_explicit_log_group_with_retention(resources: Resources) -> None:
    log_groups = _of_type(resources, "AWS::Logs::LogGroup")

    for function_id in _of_type(resources, "AWS::Serverless::Function"):
        # Given the log group named after the function
        expected_name = {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"}
        matching = [res for res in log_groups.values() if _props(res).get("LogGroupName") == expected_name]

        # Then it exists exactly once and expires its events
        assert len(matching) == 1, f"{function_id} has no log group named /aws/lambda/<function>"
        assert _is_ref_to(_props(matching[0])["RetentionInDays"], "LogRetentionDays"), function_id


def test_every_queue_is_encrypted(resources: Resources) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")

    assert queues
    for name, queue in queues.items():
        props = _props(queue)
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, name


def _dead_letter_queues(resources: Resources) -> set[str]:
    """Logical IDs of every queue used as a DLQ, an on-failure destination or a redrive target."""
    queue_ids = set(_of_type(resources, "AWS::SQS::Queue"))
    targets: list[Any] = []
    for function in _of_type(resources, "AWS::Serverless::Function").values():
        props = _props(function)
        targets.append(props.get("DeadLetterQueue", {}).get("TargetArn"))
        targets.append(
            props.get("EventInvokeConfig", {})
            .get("DestinationConfig", {})
            .get("OnFailure", {})
            .get("Destination")
        )
    for _, _, event in _function_event_sources(resources):
        targets.append(event.get("Properties", {}).get("DeadLetterConfig", {}).get("Arn"))
    for queue in _of_type(resources, "AWS::SQS::Queue").values():
        targets.append(_props(queue).get("RedrivePolicy", {}).get("deadLetterTargetArn"))
    found = {
        target["Fn::GetAtt"][0] for target in targets if isinstance(target, dict) and "Fn::GetAtt" in target
    }
    return (found & queue_ids) | {queue_id for queue_id in queue_ids if "DLQ" in queue_id}


def test_every_dead_letter_queue_has_an_alarm_to_the_alert_topic(resources: Resources) -> None:
    alarms = _of_type(resources, "AWS::CloudWatch::Alarm").values()
    dead_letter_queues = _dead_letter_queues(resources)

    assert "ReconcilerDLQ" in dead_letter_queues
    for queue_id in dead_letter_queues:
        # Given the alarms watching this queue's visible messages
        watching = [
            _props(alarm)
            for alarm in alarms
            if _props(alarm).get("Namespace") == "AWS/SQS"
            and _props(alarm).get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and any(
                _is_getatt(d.get("Value"), queue_id, "QueueName") for d in _props(alarm).get("Dimensions", [])
            )
        ]

        # Then one fires on the first message and notifies the alert topic
        assert watching, f"dead-letter queue {queue_id} has no alarm"
        for alarm in watching:
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", queue_id
            assert alarm["Threshold"] == 1, queue_id
            assert {"Ref": "AlertTopic"} in alarm["AlarmActions"], queue_id


def test_dead_letter_queues_keep_messages_14_days(resources: Resources) -> None:
    for queue_id in _dead_letter_queues(resources):
        assert _props(resources[queue_id])["MessageRetentionPeriod"] == 1209600, queue_id


def test_every_asynchronous_source_has_retries_and_a_dead_letter_queue(
    resources: Resources,
) -> None:
    for function_id, event_id, event in _function_event_sources(resources):
        if event["Type"] not in ("EventBridgeRule", "Schedule", "CloudWatchEvent"):
            continue
        # Given an EventBridge rule invoking a function (asynchronously)
        properties = event["Properties"]
        on_failure = _props(resources[function_id])["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]

        # Then the rule retries into a DLQ and the function's failed invocations go to a queue too
        assert "RetryPolicy" in properties, f"{function_id}.{event_id}"
        assert "Fn::GetAtt" in properties["DeadLetterConfig"]["Arn"], f"{function_id}.{event_id}"
        assert on_failure["Type"] == "SQS", function_id
        assert _props(resources[function_id])["EventInvokeConfig"]["MaximumRetryAttempts"] <= 2, function_id


def test_rule_dead_letter_queue_policy_admits_the_rules(resources: Resources) -> None:
    # Given the rules that dead-letter into a queue (SAM names them <Function><Event>)
    rules_by_queue: dict[str, set[str]] = {}
    for function_id, event_id, event in _function_event_sources(resources):
        arn = event.get("Properties", {}).get("DeadLetterConfig", {}).get("Arn")
        if isinstance(arn, dict) and "Fn::GetAtt" in arn:
            rules_by_queue.setdefault(arn["Fn::GetAtt"][0], set()).add(function_id + event_id)

    # Then each queue's policy lets EventBridge send exactly those rules' events
    policies = _of_type(resources, "AWS::SQS::QueuePolicy").values()
    for queue_id, rule_ids in rules_by_queue.items():
        statements = [
            statement
            for policy in policies
            if {"Ref": queue_id} in _props(policy)["Queues"]
            for statement in _props(policy)["PolicyDocument"]["Statement"]
            if statement.get("Principal") == {"Service": "events.amazonaws.com"}
        ]
        assert len(statements) == 1, queue_id
        source_arns = _as_list(statements[0]["Condition"]["ArnEquals"]["aws:SourceArn"])
        assert {arn["Fn::GetAtt"][0] for arn in source_arns} == rule_ids


# --------------------------------------------------------------------------------------------
# Encryption and data protection
# --------------------------------------------------------------------------------------------
def test_every_topic_is_encrypted(resources: Resources) -> None:
    topics = _of_type(resources, "AWS::SNS::Topic")

    assert topics
    for name, topic in topics.items():
        assert _props(topic).get("KmsMasterKeyId"), name


def test_topics_alarms_publish_to_use_a_customer_managed_key(resources: Resources) -> None:
    # CloudWatch publishes as a service principal, which the AWS managed key alias/aws/sns refuses.
    alarm_topics = {
        action["Ref"]
        for alarm in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        for action in _props(alarm).get("AlarmActions", [])
        if isinstance(action, dict) and "Ref" in action
    }
    for topic_id in alarm_topics:
        key = _props(resources[topic_id])["KmsMasterKeyId"]
        assert isinstance(key, dict), f"{topic_id} must use a customer managed key"
        key_id = key.get("Ref") or key["Fn::GetAtt"][0]
        key_policy = _props(resources[key_id])["KeyPolicy"]
        principals = [statement.get("Principal", {}) for statement in key_policy["Statement"]]
        assert {"Service": "cloudwatch.amazonaws.com"} in principals, key_id


def test_every_table_is_encrypted_and_recoverable(resources: Resources) -> None:
    tables = _of_type(resources, "AWS::DynamoDB::Table")

    assert tables
    for name, table in tables.items():
        props = _props(table)
        assert props["SSESpecification"]["SSEEnabled"] is True, name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert props["BillingMode"] == "PAY_PER_REQUEST", name


def test_groups_table_shape(resources: Resources) -> None:
    props = _props(resources["GroupsTable"])

    assert props["KeySchema"] == [{"AttributeName": "group", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "group", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_every_bucket_blocks_public_access_and_denies_plain_http(resources: Resources) -> None:
    buckets = _of_type(resources, "AWS::S3::Bucket")
    bucket_policies = _of_type(resources, "AWS::S3::BucketPolicy").values()

    assert buckets
    for name, bucket in buckets.items():
        props = _props(bucket)
        # Then public access is blocked, ACLs are off and objects are encrypted and expire
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}], name
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        assert props["VersioningConfiguration"]["Status"] == "Enabled", name
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("ExpirationInDays" in rule and "NoncurrentVersionExpiration" in rule for rule in rules), (
            name
        )
        assert any("AbortIncompleteMultipartUpload" in rule for rule in rules), name

        # And its bucket policy denies every request not made over TLS
        denies_http = [
            statement
            for policy in bucket_policies
            if _is_ref_to(_props(policy)["Bucket"], name)
            for statement in _props(policy)["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Deny"
            and statement["Action"] in ("s3:*", ["s3:*"])
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(denies_http) == 1, f"{name} has no TLS-only bucket policy"
        assert {"Fn::GetAtt": [name, "Arn"]} in _as_list(denies_http[0]["Resource"]), name


def test_instance_output_policy_writes_only_under_the_output_prefix(resources: Resources) -> None:
    statements = _props(resources["InstanceOutputWritePolicy"])["PolicyDocument"]["Statement"]

    assert {(s["Action"], json.dumps(s["Resource"], sort_keys=True)) for s in statements} == {
        ("s3:PutObject", json.dumps({"Fn::Sub": "${OutputBucket.Arn}/${OutputS3KeyPrefix}/*"})),
        (
            "s3:GetEncryptionConfiguration",
            json.dumps({"Fn::GetAtt": ["OutputBucket", "Arn"]}, sort_keys=True),
        ),
    }


# --------------------------------------------------------------------------------------------
# Least privilege
# --------------------------------------------------------------------------------------------
def test_no_identity_policy_allows_wildcard_actions(resources: Resources) -> None:
    for name, statement in _identity_policy_statements(resources):
        if statement["Effect"] != "Allow":
            continue
        for action in _as_list(statement["Action"]):
            assert action != "*", name
            assert not re.fullmatch(r"[a-z0-9-]+:\*", action), f"{name}: {action}"
        assert "NotAction" not in statement, name
        assert "NotResource" not in statement, name


def test_wildcard_resources_only_for_actions_without_resource_level_permissions(
    resources: Resources,
) -> None:
    for name, statement in _identity_policy_statements(resources):
        if statement["Effect"] == "Allow" and "*" in _as_list(statement["Resource"]):
            actions = set(_as_list(statement["Action"]))
            assert actions <= WILDCARD_RESOURCE_ACTIONS, (
                f"{name}: {sorted(actions - WILDCARD_RESOURCE_ACTIONS)}"
            )


def test_wildcard_allow_list_only_names_actions_without_resource_types() -> None:
    # cfn-lint ships the Service Authorization Reference: an action with resource types there can
    # be scoped, so it does not belong on the allow-list.
    spec_file = importlib.resources.files("cfnlint.data.AdditionalSpecs") / "Policies.json"
    services = json.loads(spec_file.read_text(encoding="utf-8"))
    for action in WILDCARD_RESOURCE_ACTIONS:
        service, name = action.split(":")
        assert services[service]["Actions"][name.lower()].get("Resources", []) == [], action


def test_every_wildcard_resource_carries_a_comment_saying_why() -> None:
    lines = TEMPLATE_PATH.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if not re.search(r"\bResource:\s*\"\*\"", line) or "#" in line:
            continue
        # Walk back to the previous statement's Resource (or the Statement key): a comment between
        # there and here explains this statement.
        explained = False
        for previous in reversed(lines[:number]):
            if previous.strip().startswith("#"):
                explained = True
                break
            if re.search(r"\b(Resource|Statement):", previous):
                break
        assert explained, f'template.yaml:{number + 1}: Resource "*" without a comment'


def test_service_roles_trust_ssm_exactly_as_aws_documents(resources: Resources) -> None:
    # The SSM user guide's trust for a maintenance window service role and for the Run Command
    # notification role is ssm.amazonaws.com with no condition: a condition on a key SSM does not
    # send (aws:SourceAccount) would fail every task or notification on a real account.
    for name in ("MaintenanceWindowRole", "NotificationRole"):
        (statement,) = _props(resources[name])["AssumeRolePolicyDocument"]["Statement"]
        assert statement == {
            "Effect": "Allow",
            "Principal": {"Service": "ssm.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }, name


def test_cloudwatch_key_statement_is_the_documented_one(resources: Resources) -> None:
    # kms:Decrypt and kms:GenerateDataKey* for cloudwatch.amazonaws.com, no condition: the key
    # policy AWS documents for alarm actions on an encrypted topic.
    statements = _props(resources["AlertTopicKey"])["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Effect"] == "Allow"
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "Condition" not in cloudwatch


def _role_grants(resources: Resources, name: str) -> dict[str, list[str]]:
    return {
        action: [json.dumps(r, sort_keys=True) for r in _as_list(statement["Resource"])]
        for role, statement in _identity_policy_statements(resources)
        if role == name and statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
    }


def test_maintenance_window_role_runs_only_aws_run_patch_baseline(resources: Resources) -> None:
    props = _props(resources["MaintenanceWindowRole"])

    # No AWS managed policy: AmazonSSMMaintenanceWindowRole sends any document anywhere.
    assert "ManagedPolicyArns" not in props
    grants = _role_grants(resources, "MaintenanceWindowRole")
    assert set(grants) == {
        "ssm:SendCommand",
        "ssm:CancelCommand",
        "ssm:ListCommands",
        "ssm:ListCommandInvocations",
        "ssm:GetCommandInvocation",
        "iam:PassRole",
    }
    send = [json.loads(r) for r in grants["ssm:SendCommand"]]
    documents = [r["Fn::Sub"] for r in send if ":document/" in json.dumps(r)]
    assert documents == ["arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunPatchBaseline"]
    assert "*" not in grants["ssm:SendCommand"]
    assert grants["iam:PassRole"] == [json.dumps({"Fn::GetAtt": ["NotificationRole", "Arn"]})]
    (pass_role,) = [
        s
        for name, s in _identity_policy_statements(resources)
        if name == "MaintenanceWindowRole" and s["Action"] == "iam:PassRole"
    ]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}


def test_notification_role_publishes_only_to_the_notification_topic(resources: Resources) -> None:
    (policy,) = _props(resources["NotificationRole"])["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]

    assert statement["Action"] == "sns:Publish"
    assert _is_ref_to(statement["Resource"], "NotificationTopic")


def _topic_policy_statements(resources: Resources, topic: str) -> list[dict[str, Any]]:
    policies = [
        _props(res)
        for res in _of_type(resources, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic} in _props(res)["Topics"]
    ]
    assert len(policies) == 1, f"{topic} needs exactly one topic policy"
    return list(policies[0]["PolicyDocument"]["Statement"])


def test_only_the_notification_role_may_publish_run_results(resources: Resources) -> None:
    statements = _topic_policy_statements(resources, "NotificationTopic")

    publish = [s for s in statements if "sns:Publish" in _as_list(s["Action"]) and "Condition" in s]
    assert {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Publish",
        "Resource": {"Ref": "NotificationTopic"},
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["NotificationRole", "Arn"]}}},
    } in [{k: v for k, v in s.items() if k != "Sid"} for s in publish]


def test_only_the_status_queue_may_subscribe_to_run_results(resources: Resources) -> None:
    statements = [
        {k: v for k, v in s.items() if k != "Sid"}
        for s in _topic_policy_statements(resources, "NotificationTopic")
    ]
    base = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Subscribe",
        "Resource": {"Ref": "NotificationTopic"},
    }
    assert {
        **base,
        "Condition": {"StringNotEquals": {"sns:Endpoint": {"Fn::GetAtt": ["StatusQueue", "Arn"]}}},
    } in (statements)
    assert {**base, "Condition": {"StringNotEquals": {"sns:Protocol": "sqs"}}} in statements


def test_run_results_travel_over_tls_only(resources: Resources) -> None:
    statements = _topic_policy_statements(resources, "NotificationTopic")
    (tls,) = [s for s in statements if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert tls["Effect"] == "Deny"
    assert tls["Principal"] == "*"
    assert set(_as_list(tls["Action"])) == {"sns:Publish", "sns:Subscribe"}


def test_reconciler_writes_only_windows_tagged_with_its_stack(resources: Resources) -> None:
    statements = [s for name, s in _identity_policy_statements(resources) if name == "ReconcilerRole"]
    write_actions = {
        "ssm:UpdateMaintenanceWindow",
        "ssm:DeleteMaintenanceWindow",
        "ssm:RegisterTargetWithMaintenanceWindow",
        "ssm:DeregisterTargetFromMaintenanceWindow",
        "ssm:UpdateMaintenanceWindowTarget",
        "ssm:RegisterTaskWithMaintenanceWindow",
        "ssm:DeregisterTaskFromMaintenanceWindow",
        "ssm:UpdateMaintenanceWindowTask",
    }
    owner = {"StringEquals": {"ssm:resourceTag/tagpatch:stack": {"Ref": "AWS::StackName"}}}
    for statement in statements:
        written = write_actions & set(_as_list(statement["Action"]))
        if not written:
            continue
        for resource in _as_list(statement["Resource"]):
            arn = resource["Fn::Sub"]
            # A window is written only under the owner condition; targets and tasks carry no tags,
            # and each action on them also needs the (conditioned) window.
            if ":maintenancewindow/" in arn:
                assert statement.get("Condition") == owner, written
            else:
                assert arn.endswith((":windowtarget/*", ":windowtask/*")), arn
    tagging = [s for s in statements if "ssm:AddTagsToResource" in _as_list(s["Action"])]
    (tag,) = tagging
    assert tag["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:maintenancewindow/*"
    }
    assert tag["Condition"] == {"StringEquals": {"aws:RequestTag/tagpatch:stack": {"Ref": "AWS::StackName"}}}


def test_reconciler_is_granted_no_patch_baseline_tagging(resources: Resources) -> None:
    # The reconciler registers baselines with patch groups; no code path tags or lists their tags.
    for name, statement in _identity_policy_statements(resources):
        if name != "ReconcilerRole":
            continue
        actions = set(_as_list(statement["Action"]))
        if actions & {"ssm:AddTagsToResource", "ssm:ListTagsForResource"}:
            assert "patchbaseline" not in json.dumps(statement["Resource"]), statement


def test_reconciler_passes_only_its_two_roles_and_only_to_ssm(resources: Resources) -> None:
    pass_role = [
        statement
        for name, statement in _identity_policy_statements(resources)
        if name == "ReconcilerRole" and "iam:PassRole" in _as_list(statement["Action"])
    ]

    (statement,) = pass_role
    assert _as_list(statement["Action"]) == ["iam:PassRole"]
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["MaintenanceWindowRole", "Arn"]},
        {"Fn::GetAtt": ["NotificationRole", "Arn"]},
    ]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}


# --------------------------------------------------------------------------------------------
# Parameters, environment, outputs
# --------------------------------------------------------------------------------------------
def test_every_parameter_has_a_description(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        assert str(parameter.get("Description", "")).strip(), name


def assert_defaults_satisfy_constraints(parameters: dict[str, Any]) -> None:
    """Every parameter's Default passes its own AllowedValues, pattern, length and value bounds."""
    for name, parameter in parameters.items():
        default = parameter.get("Default")
        if default is None:
            continue
        text = str(default)
        if "AllowedValues" in parameter:
            assert text in {str(value) for value in parameter["AllowedValues"]}, name
        if "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], text), name
        if "MinLength" in parameter:
            assert len(text) >= parameter["MinLength"], name
        if "MaxLength" in parameter:
            assert len(text) <= parameter["MaxLength"], name
        if "MinValue" in parameter:
            assert float(text) >= parameter["MinValue"], name
        if "MaxValue" in parameter:
            assert float(text) <= parameter["MaxValue"], name


def test_every_parameter_default_satisfies_its_own_constraints(template: dict[str, Any]) -> None:
    assert_defaults_satisfy_constraints(template["Parameters"])


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("MaxConcurrency", "10%", True),
        ("MaxConcurrency", "25", True),
        ("MaxConcurrency", "100%", True),
        ("MaxConcurrency", "0", False),
        ("MaxConcurrency", "101%", False),
        ("MaxErrors", "0", True),
        ("MaxErrors", "0%", True),
        ("MaxErrors", "abc", False),
        ("NotificationEvents", "All", True),
        ("NotificationEvents", "Success,Failed,TimedOut", True),
        ("NotificationEvents", "Success, Failed", False),
        ("NotificationEvents", "Canceled", False),
        ("ScanSchedule", "", True),
        ("ScanSchedule", "cron(0 1 ? * WED *)", True),
        ("ScanSchedule", "daily", False),
        ("PatchBaselineId", "", True),
        ("PatchBaselineId", "pb-0c10e65780EXAMPLE", True),
        ("PatchBaselineId", "pb-1", False),
        ("OutputS3KeyPrefix", "patch-output", True),
        ("OutputS3KeyPrefix", "patching/output", True),
        ("OutputS3KeyPrefix", "/patch-output/", False),
        ("AlertEmail", "", True),
        ("AlertEmail", "ops@example.com", True),
        ("AlertEmail", "ops", False),
    ],
)
def test_parameter_patterns(template: dict[str, Any], parameter: str, value: str, accepted: bool) -> None:
    pattern = template["Parameters"][parameter]["AllowedPattern"]

    assert bool(re.fullmatch(pattern, value)) is accepted


def test_alert_email_subscription_is_conditional(template: dict[str, Any], resources: dict[str, Any]) -> None:
    subscription = resources["AlertEmailSubscription"]

    assert subscription["Condition"] == "HasAlertEmail"
    assert template["Conditions"]["HasAlertEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]
    }


def test_reconciler_environment_is_exactly_the_documented_set(resources: Resources) -> None:
    variables = _props(resources["ReconcilerFunction"])["Environment"]["Variables"]

    assert set(variables) == RECONCILER_ENVIRONMENT


def test_reconciler_function_settings(resources: Resources) -> None:
    props = _props(resources["ReconcilerFunction"])

    assert props["Handler"] == "tagpatch.handlers.reconciler.handler"
    assert props["CodeUri"] == "src/"
    assert props["Timeout"] == 300
    assert props["MemorySize"] == 512
    assert (ROOT / "src" / "tagpatch" / "handlers" / "reconciler.py").is_file()


def test_outputs(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) >= EXPECTED_OUTPUTS
    for name, output in template["Outputs"].items():
        assert output.get("Description"), name


# --------------------------------------------------------------------------------------------
# Event rules against the sample events
# --------------------------------------------------------------------------------------------
def _rule_pattern(template: dict[str, Any], event_id: str) -> EventPattern:
    rule = _props(template["Resources"][f"{event_id}Rule"])  # TagChangeRule, SettingsChangeRule
    pattern = _template_value(rule["EventPattern"], template["Parameters"])
    return EventPattern.load(json.dumps(pattern))


@pytest.mark.parametrize(
    ("event_id", "sample", "matches"),
    [
        ("TagChange", "reconciler-tag-added.json", True),
        ("TagChange", "reconciler-tag-changed.json", True),
        ("TagChange", "reconciler-tag-deleted.json", True),
        ("TagChange", "reconciler-settings-change.json", False),
        ("SettingsChange", "reconciler-settings-change.json", True),
        ("SettingsChange", "reconciler-tag-added.json", False),
    ],
)
def test_rule_patterns_match_the_sample_events(
    template: dict[str, Any], event_id: str, sample: str, matches: bool
) -> None:
    assert _rule_pattern(template, event_id).matches_event(cast(Any, _load_event(sample))) is matches


def test_tag_rule_ignores_changes_to_other_tags(template: dict[str, Any]) -> None:
    # Given a tag change that does not touch the patch group tag
    event = _load_event("reconciler-tag-added.json")
    event["detail"]["changed-tag-keys"] = ["Name"]

    # Then the rule does not fire
    assert _rule_pattern(template, "TagChange").matches_event(cast(Any, event)) is False


def test_settings_rule_ignores_other_stacks_parameters(template: dict[str, Any]) -> None:
    event = _load_event("reconciler-settings-change.json")
    event["detail"]["name"] = "/tagpatch/other-stack/groups/web"

    assert _rule_pattern(template, "SettingsChange").matches_event(cast(Any, event)) is False


def test_schedule_rule_uses_a_rule_not_the_scheduler(resources: Resources) -> None:
    event = _props(resources["ReconcilerFunction"])["Events"]["Reconcile"]

    assert event["Type"] == "Schedule"
    assert _is_ref_to(event["Properties"]["Schedule"], "ReconcileSchedule")
    assert _load_event("reconciler-scheduled.json")["source"] == "aws.events"


def test_sample_events_use_the_documented_identities() -> None:
    for path in sorted(EVENTS_DIR.glob("reconciler-*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        if "detail-type" not in event:
            continue
        assert event["account"] == "123456789012", path.name
        assert event["region"] == "us-east-1", path.name
        for arn in event["resources"]:
            assert arn.startswith("arn:aws:") and ":us-east-1:123456789012:" in arn, path.name
            if ":instance/" in arn:
                assert re.fullmatch(r"i-[0-9a-f]{17}", arn.rsplit("/", 1)[1]), path.name

    assert _load_event("reconciler-on-demand.json") == {"group": "web", "dryRun": False}


# --------------------------------------------------------------------------------------------
# samconfig.toml
# --------------------------------------------------------------------------------------------
def test_samconfig_defaults() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))

    assert config["version"] == 0.1
    assert config["default"]["global"]["parameters"]["stack_name"] == STACK_NAME
    assert config["default"]["validate"]["parameters"]["lint"] is True
    assert config["default"]["build"]["parameters"] == {"cached": True, "parallel": True}
    for environment in ("default", "prod"):
        deploy = config[environment]["deploy"]["parameters"]
        assert "CAPABILITY_IAM" in deploy["capabilities"], environment
        assert deploy["confirm_changeset"] is True, environment
        assert deploy["resolve_s3"] is True, environment
        assert "region" not in deploy, environment


# --------------------------------------------------------------------------------------------
# Status collector
# --------------------------------------------------------------------------------------------
COLLECTOR_ENVIRONMENT = frozenset(
    {
        "STACK_NAME",
        "COMMAND_STATUS_TABLE_NAME",
        "GROUPS_TABLE_NAME",
        "ALERT_TOPIC_ARN",
        "STATUS_QUEUE_URL",
        "COMMAND_HISTORY_DAYS",
        "ALERT_COOLDOWN_SECONDS",
        "MAX_ALERTS_PER_COMMAND",
    }
)


def test_collector_function_settings(resources: Resources) -> None:
    props = _props(resources["StatusCollectorFunction"])

    assert props["Handler"] == "tagpatch.handlers.collector.handler"
    assert props["CodeUri"] == "src/"
    assert props["Timeout"] == 60
    assert (ROOT / "src" / "tagpatch" / "handlers" / "collector.py").is_file()
    # Every variable the function reads is set, and nothing else (AWS_REGION comes from Lambda)
    assert set(props["Environment"]["Variables"]) == COLLECTOR_ENVIRONMENT
    from emulator.scenarios.collector import COLLECTOR_ENV

    assert set(COLLECTOR_ENV) - {"AWS_REGION"} == COLLECTOR_ENVIRONMENT


def test_collector_environment_points_at_its_resources(resources: Resources) -> None:
    variables = _props(resources["StatusCollectorFunction"])["Environment"]["Variables"]

    assert _is_ref_to(variables["COMMAND_STATUS_TABLE_NAME"], "CommandStatusTable")
    assert _is_ref_to(variables["GROUPS_TABLE_NAME"], "GroupsTable")
    assert _is_ref_to(variables["ALERT_TOPIC_ARN"], "AlertTopic")
    assert _is_ref_to(variables["STATUS_QUEUE_URL"], "StatusQueue")
    assert _is_ref_to(variables["COMMAND_HISTORY_DAYS"], "CommandHistoryDays")
    assert _is_ref_to(variables["ALERT_COOLDOWN_SECONDS"], "AlertCooldownSeconds")
    assert _is_ref_to(variables["MAX_ALERTS_PER_COMMAND"], "MaxAlertsPerCommand")


def test_collector_parameters(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]

    assert parameters["CommandHistoryDays"]["Default"] == 90
    # A held failure is flushed by an SQS message delayed by the cooldown: SQS allows 900 s at most.
    assert parameters["AlertCooldownSeconds"]["MaxValue"] <= 900
    assert parameters["AlertCooldownSeconds"]["MinValue"] >= 1
    assert parameters["MaxAlertsPerCommand"]["MinValue"] >= 1


def test_command_status_table_is_the_one_the_tests_create(resources: Resources) -> None:
    from emulator.scenarios.collector import TABLE_ATTRIBUTES, TABLE_INDEXES, TABLE_KEY_SCHEMA

    props = _props(resources["CommandStatusTable"])

    assert props["KeySchema"] == TABLE_KEY_SCHEMA
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(TABLE_ATTRIBUTES, key=str)
    assert props["GlobalSecondaryIndexes"] == TABLE_INDEXES
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert resources["CommandStatusTable"]["DeletionPolicy"] == "Retain"


def test_status_queue_redrives_to_its_dlq_and_outlasts_the_function(resources: Resources) -> None:
    queue = _props(resources["StatusQueue"])
    timeout = _props(resources["StatusCollectorFunction"])["Timeout"]

    assert queue["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert _is_getatt(queue["RedrivePolicy"]["deadLetterTargetArn"], "StatusDLQ", "Arn")
    assert 3 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 5
    assert "StatusDLQ" in _dead_letter_queues(resources)


def test_notification_topic_feeds_the_status_queue_as_sns_json(resources: Resources) -> None:
    subscriptions = [
        _props(res)
        for res in _of_type(resources, "AWS::SNS::Subscription").values()
        if _is_ref_to(_props(res)["TopicArn"], "NotificationTopic")
    ]

    (subscription,) = subscriptions
    assert subscription["Protocol"] == "sqs"
    assert _is_getatt(subscription["Endpoint"], "StatusQueue", "Arn")
    # raw delivery off: the collector parses the SNS envelope (events/collector-*.json)
    assert subscription["RawMessageDelivery"] is False
    assert _is_getatt(subscription["RedrivePolicy"]["deadLetterTargetArn"], "StatusDLQ", "Arn")


def test_status_queues_admit_only_the_notification_topic(resources: Resources) -> None:
    policy = _props(resources["StatusQueuePolicy"])

    assert policy["Queues"] == [{"Ref": "StatusQueue"}, {"Ref": "StatusDLQ"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "NotificationTopic"}}}


def test_collector_reads_the_queue_in_batches_with_partial_failures(resources: Resources) -> None:
    events = _props(resources["StatusCollectorFunction"])["Events"]

    (event,) = events.values()
    assert event["Type"] == "SQS"
    properties = event["Properties"]
    assert _is_getatt(properties["Queue"], "StatusQueue", "Arn")
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= properties["BatchSize"] <= 100
    assert properties["MaximumBatchingWindowInSeconds"] >= 1


def test_collector_policy_is_exactly_what_it_calls(resources: Resources) -> None:
    statements = [
        statement
        for name, statement in _identity_policy_statements(resources)
        if name == "StatusCollectorRole"
    ]
    granted = {
        action: json.dumps(statement["Resource"], sort_keys=True)
        for statement in statements
        for action in _as_list(statement["Action"])
    }

    assert granted == {
        "dynamodb:GetItem": json.dumps({"Fn::GetAtt": ["CommandStatusTable", "Arn"]}),
        "dynamodb:UpdateItem": json.dumps({"Fn::GetAtt": ["CommandStatusTable", "Arn"]}),
        "dynamodb:Scan": json.dumps({"Fn::GetAtt": ["GroupsTable", "Arn"]}),
        "sns:Publish": json.dumps({"Ref": "AlertTopic"}),
        "kms:GenerateDataKey": json.dumps({"Fn::GetAtt": ["AlertTopicKey", "Arn"]}),
        "kms:Decrypt": json.dumps({"Fn::GetAtt": ["AlertTopicKey", "Arn"]}),
        "sqs:SendMessage": json.dumps({"Fn::GetAtt": ["StatusQueue", "Arn"]}),
        "sqs:ReceiveMessage": json.dumps({"Fn::GetAtt": ["StatusQueue", "Arn"]}),
        "sqs:DeleteMessage": json.dumps({"Fn::GetAtt": ["StatusQueue", "Arn"]}),
        "sqs:GetQueueAttributes": json.dumps({"Fn::GetAtt": ["StatusQueue", "Arn"]}),
        "ssm:ListCommands": json.dumps("*"),
        "events:PutEvents": json.dumps({"Fn::Sub": DEFAULT_BUS}),
    }


def test_collector_polls_only_its_queue(resources: Resources) -> None:
    # With a SAM-generated role, an SQS event attaches AWSLambdaSQSQueueExecutionRole (receive and
    # delete on every queue); the collector's own role grants them on StatusQueue only.
    function = _props(resources["StatusCollectorFunction"])
    assert _is_getatt(function.get("Role"), "StatusCollectorRole", "Arn")
    assert "Policies" not in function
    role = _props(resources["StatusCollectorRole"])
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"},
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_collector_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]

    assert _is_ref_to(outputs["CommandStatusTableName"]["Value"], "CommandStatusTable")
    assert _is_ref_to(outputs["StatusQueueUrl"]["Value"], "StatusQueue")
    assert _is_ref_to(outputs["StatusDLQUrl"]["Value"], "StatusDLQ")
    assert _is_ref_to(outputs["StatusCollectorFunctionName"]["Value"], "StatusCollectorFunction")


# --------------------------------------------------------------------------------------------
# Compliance reporter
# --------------------------------------------------------------------------------------------
REPORTER_ENVIRONMENT = frozenset(
    {
        "TAG_KEY",
        "GROUPS_TABLE_NAME",
        "COMPLIANCE_TABLE_NAME",
        "ALERT_TOPIC_ARN",
        "COMPLIANCE_HISTORY_DAYS",
        "REPORT_QUEUE_URL",
        "COMPLIANCE_DEADLINE_MINUTES",
    }
)


def test_reporter_function_settings(resources: Resources) -> None:
    props = _props(resources["ComplianceReporterFunction"])

    assert props["Handler"] == "tagpatch.handlers.reporter.handler"
    assert props["CodeUri"] == "src/"
    assert props["Timeout"] == 900  # the Lambda maximum; the reporter keeps 60 s in reserve
    assert (ROOT / "src" / "tagpatch" / "handlers" / "reporter.py").is_file()
    # Every variable the function reads is set, and nothing else
    assert set(props["Environment"]["Variables"]) == REPORTER_ENVIRONMENT
    from emulator.scenarios.compliance import REPORTER_ENV

    assert set(REPORTER_ENV) == REPORTER_ENVIRONMENT


def test_reporter_environment_points_at_its_resources(resources: Resources) -> None:
    variables = _props(resources["ComplianceReporterFunction"])["Environment"]["Variables"]

    assert _is_ref_to(variables["TAG_KEY"], "PatchGroupTagKey")
    assert _is_ref_to(variables["GROUPS_TABLE_NAME"], "GroupsTable")
    assert _is_ref_to(variables["COMPLIANCE_TABLE_NAME"], "ComplianceTable")
    assert _is_ref_to(variables["ALERT_TOPIC_ARN"], "AlertTopic")
    assert _is_ref_to(variables["COMPLIANCE_HISTORY_DAYS"], "ComplianceHistoryDays")
    assert _is_ref_to(variables["REPORT_QUEUE_URL"], "ReportQueue")
    assert _is_ref_to(variables["COMPLIANCE_DEADLINE_MINUTES"], "ComplianceDeadlineMinutes")


def test_reporter_parameters(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    schedule = parameters["ComplianceSchedule"]

    assert schedule["Default"] == "cron(0 6 * * ? *)"
    for expression, accepted in (
        ("cron(0 6 * * ? *)", True),
        ("rate(12 hours)", True),
        ("daily", False),
        ("at(2025-06-01T06:00:00)", False),  # one-time expressions are for the Scheduler, not rules
    ):
        assert bool(re.fullmatch(schedule["AllowedPattern"], expression)) is accepted, expression
    assert parameters["ComplianceHistoryDays"]["Default"] == 400
    assert parameters["ComplianceHistoryDays"]["MinValue"] >= 1
    # A run's deadline is below a day, so its digest is out before the next daily run plans
    deadline = parameters["ComplianceDeadlineMinutes"]
    assert deadline["Default"] == 180
    assert deadline["MinValue"] >= 30 and deadline["MaxValue"] < 24 * 60


def test_compliance_table_is_the_one_the_tests_create(resources: Resources) -> None:
    from emulator.scenarios.compliance import COMPLIANCE_ATTRIBUTES, COMPLIANCE_KEY_SCHEMA

    props = _props(resources["ComplianceTable"])

    assert props["KeySchema"] == COMPLIANCE_KEY_SCHEMA
    assert props["AttributeDefinitions"] == COMPLIANCE_ATTRIBUTES
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert resources["ComplianceTable"]["DeletionPolicy"] == "Retain"
    assert "GlobalSecondaryIndexes" not in props  # the trend and the rows are Queries on the table


def test_reporter_runs_on_the_compliance_schedule_into_its_dlq(resources: Resources) -> None:
    props = _props(resources["ComplianceReporterFunction"])

    event = props["Events"]["Snapshot"]
    assert event["Type"] == "Schedule"
    assert _is_ref_to(event["Properties"]["Schedule"], "ComplianceSchedule")
    assert _is_getatt(event["Properties"]["DeadLetterConfig"]["Arn"], "ReporterDLQ", "Arn")
    on_failure = props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert _is_getatt(on_failure["Destination"], "ReporterDLQ", "Arn")
    assert "ReporterDLQ" in _dead_letter_queues(resources)
    assert _load_event("reporter-scheduled.json")["source"] == "aws.events"
    assert _load_event("reporter-scheduled.json")["detail-type"] == "Scheduled Event"
    assert _load_event("reporter-on-demand.json") == {"group": "web"}


def test_reporter_policy_is_exactly_what_it_calls(resources: Resources) -> None:
    statements = [
        statement
        for name, statement in _identity_policy_statements(resources)
        if name == "ComplianceReporterRole"
    ]
    granted: dict[str, set[str]] = {}
    for statement in statements:
        for action in _as_list(statement["Action"]):
            granted.setdefault(action, set()).add(json.dumps(statement["Resource"], sort_keys=True))
    compliance_table = {json.dumps({"Fn::GetAtt": ["ComplianceTable", "Arn"]})}
    groups_table = {json.dumps({"Fn::GetAtt": ["GroupsTable", "Arn"]})}
    report_queue = {json.dumps({"Fn::GetAtt": ["ReportQueue", "Arn"]})}

    assert granted == {
        "ssm:DescribePatchGroups": {json.dumps("*")},
        "ssm:DescribePatchGroupState": {json.dumps("*")},
        "ssm:DescribeInstancePatchStatesForPatchGroup": {json.dumps("*")},
        "dynamodb:Scan": groups_table,
        "dynamodb:GetItem": groups_table | compliance_table,
        "dynamodb:BatchGetItem": compliance_table,
        "dynamodb:Query": compliance_table,
        "dynamodb:BatchWriteItem": compliance_table,
        "dynamodb:PutItem": compliance_table,
        "dynamodb:UpdateItem": compliance_table,
        # the planner's and workers' messages, and the on-failure destination of its events
        "sqs:SendMessage": report_queue | {json.dumps({"Fn::GetAtt": ["ReporterDLQ", "Arn"]})},
        "sqs:ReceiveMessage": report_queue,
        "sqs:DeleteMessage": report_queue,
        "sqs:GetQueueAttributes": report_queue,
        "sns:Publish": {json.dumps({"Ref": "AlertTopic"})},
        "kms:GenerateDataKey": {json.dumps({"Fn::GetAtt": ["AlertTopicKey", "Arn"]})},
        "kms:Decrypt": {json.dumps({"Fn::GetAtt": ["AlertTopicKey", "Arn"]})},
        "events:PutEvents": {json.dumps({"Fn::Sub": DEFAULT_BUS})},
    }


def test_reporter_polls_only_its_queue(resources: Resources) -> None:
    # With a SAM-generated role, an SQS event attaches AWSLambdaSQSQueueExecutionRole (receive and
    # delete on every queue); the reporter's own role grants them on ReportQueue only.
    function = _props(resources["ComplianceReporterFunction"])
    assert _is_getatt(function.get("Role"), "ComplianceReporterRole", "Arn")
    assert "Policies" not in function
    role = _props(resources["ComplianceReporterRole"])
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"},
    ]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_report_queue_redrives_to_its_dlq_and_outlasts_the_function(resources: Resources) -> None:
    queue = _props(resources["ReportQueue"])
    timeout = _props(resources["ComplianceReporterFunction"])["Timeout"]

    assert queue["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert _is_getatt(queue["RedrivePolicy"]["deadLetterTargetArn"], "ReportDLQ", "Arn")
    assert 3 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 5
    assert "ReportDLQ" in _dead_letter_queues(resources)


def test_reporter_reads_one_message_at_a_time_with_bounded_concurrency(resources: Resources) -> None:
    event = _props(resources["ComplianceReporterFunction"])["Events"]["Queue"]

    assert event["Type"] == "SQS"
    properties = event["Properties"]
    assert _is_getatt(properties["Queue"], "ReportQueue", "Arn")
    assert properties["BatchSize"] == 1
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Lambda's least (2): SSM's patch-state reads are throttled per account
    assert properties["ScalingConfig"] == {"MaximumConcurrency": 2}


def test_missing_groups_at_a_run_deadline_raise_an_alarm(resources: Resources) -> None:
    alarm = _props(resources["ComplianceGroupsMissingAlarm"])

    assert (alarm["Namespace"], alarm["MetricName"]) == ("TagPatch", "ComplianceGroupsMissing")
    assert alarm["Statistic"] == "Sum"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    assert 'name="ComplianceGroupsMissing"' in (ROOT / "src/tagpatch/handlers/reporter.py").read_text()


def test_reporter_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]

    assert _is_ref_to(outputs["ComplianceTableName"]["Value"], "ComplianceTable")
    assert _is_ref_to(outputs["ComplianceReporterFunctionName"]["Value"], "ComplianceReporterFunction")
    assert _is_ref_to(outputs["ReporterDLQUrl"]["Value"], "ReporterDLQ")
    assert _is_ref_to(outputs["ReportQueueUrl"]["Value"], "ReportQueue")
    assert _is_ref_to(outputs["ReportDLQUrl"]["Value"], "ReportDLQ")


def test_command_timeout_is_described_as_the_delivery_timeout(template: dict[str, Any]) -> None:
    # Issue 12 #20: SSM's TimeoutSeconds is the delivery timeout (a command not started by then
    # does not run); AWS-RunPatchBaseline has no execution-timeout parameter to offer instead.
    description = " ".join(template["Parameters"]["CommandTimeoutSeconds"]["Description"].split())
    assert "delivery timeout" in description
    assert "does not limit how long patching runs" in description
    assert "considered failed" not in description


def test_the_sweep_reconciles_pending_groups_every_five_minutes(template: dict[str, Any]) -> None:
    # Issue 12 #5 and #8: deferred events and groups a run had no time for are not left waiting
    # for the next scheduled run
    event = template["Resources"]["ReconcilerFunction"]["Properties"]["Events"]["Sweep"]
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == "rate(5 minutes)"
    assert json.loads(event["Properties"]["Input"]) == {"sweep": True}
    assert event["Properties"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ReconcilerDLQ", "Arn"]}
    alarm = template["Resources"]["ReconcilerGroupsNotReachedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("TagPatch", "GroupsNotReached")


def test_rejected_groups_raise_an_alarm(resources: Resources) -> None:
    props = _props(resources["GroupsRejectedAlarm"])
    assert (props["Namespace"], props["MetricName"]) == ("TagPatch", "GroupsRejected")
    assert props["Dimensions"] == [{"Name": "service", "Value": "tagpatch"}]
    assert (props["Threshold"], props["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert props["AlarmActions"] == [{"Ref": "AlertTopic"}]
    environment = _props(resources["ReconcilerFunction"])["Environment"]["Variables"]
    assert environment["MAX_GROUPS"] == {"Ref": "MaxGroups"}
    assert environment["GROUP_NAME_PATTERN"] == {"Ref": "GroupNamePattern"}
    assert environment["EMPTY_GROUP_WINDOW_DAYS"] == {"Ref": "EmptyGroupWindowDays"}


# --------------------------------------------------------------------------------------------
# Member events (docs/events.md)
# --------------------------------------------------------------------------------------------
DEFAULT_BUS = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"


def test_member_events_are_put_by_the_three_functions_on_the_default_bus_as_tagpatch_only(
    resources: Resources,
) -> None:
    # Given every identity-policy statement that grants events:PutEvents
    granted = [
        (name, statement)
        for name, statement in _identity_policy_statements(resources)
        if "events:PutEvents" in _as_list(statement["Action"]) and name != "HubForwardRole"
    ]

    # Then the three functions' roles hold one each: that action alone, on the default bus only,
    # for events whose source is tagpatch
    assert sorted(name for name, _ in granted) == [
        "ComplianceReporterRole",
        "ReconcilerRole",
        "StatusCollectorRole",
    ]
    for name, statement in granted:
        assert statement["Effect"] == "Allow", name
        assert _as_list(statement["Action"]) == ["events:PutEvents"], name
        assert statement["Resource"] == {"Fn::Sub": DEFAULT_BUS}, name
        assert statement["Condition"] == {"StringEquals": {"events:source": "tagpatch"}}, name


def test_publishing_member_events_is_a_parameter_that_reaches_every_function(
    template: dict[str, Any],
) -> None:
    from tagpatch.adapters.member_events import ACCOUNT_ENV, PUBLISH_ENV, STACK_ENV

    parameter = template["Parameters"]["PublishEvents"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]

    assert parameter["Default"] == "true"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]
    assert _is_ref_to(variables[PUBLISH_ENV], "PublishEvents")
    assert variables[ACCOUNT_ENV] == {"Ref": "AWS::AccountId"}
    assert variables[STACK_ENV] == {"Ref": "AWS::StackName"}


# --------------------------------------------------------------------------------------------
# Forwarding to the organization hub (hub/template.yaml)
# --------------------------------------------------------------------------------------------
FORWARDING = (
    "HubForwardRule",
    "HubForwardRole",
    "HubForwardDLQ",
    "HubForwardDLQPolicy",
    "HubForwardDLQAlarm",
)


def test_forwarding_exists_only_in_an_organization_deployment_that_publishes(
    template: dict[str, Any],
) -> None:
    # Both switches: publishing events at all, and a hub bus to forward them to
    assert template["Conditions"]["ForwardToHub"] == {
        "Fn::And": [
            {"Fn::Equals": [{"Ref": "PublishEvents"}, "true"]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "HubEventBusArn"}, ""]}]},
        ]
    }
    conditional = {
        name for name, res in template["Resources"].items() if res.get("Condition") == "ForwardToHub"
    }
    assert conditional == set(FORWARDING)
    assert template["Outputs"]["HubForwardDLQUrl"]["Condition"] == "ForwardToHub"
    parameter = template["Parameters"]["HubEventBusArn"]
    assert parameter["Default"] == ""


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("arn:aws:events:eu-west-1:111122223333:event-bus/tagpatch-hub-bus", True),
        ("arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/hub", True),
        ("arn:aws:events:eu-west-1:111122223333:rule/tagpatch-hub-bus", False),
        ("arn:aws:sqs:eu-west-1:111122223333:event-bus/hub", False),
        ("arn:aws:events:eu-west-1:1111:event-bus/hub", False),
        ("tagpatch-hub-bus", False),
    ],
)
def test_hub_event_bus_arn_pattern(template: dict[str, Any], value: str, accepted: bool) -> None:
    pattern = template["Parameters"]["HubEventBusArn"]["AllowedPattern"]

    assert bool(re.fullmatch(pattern, value)) is accepted


def test_every_member_event_is_forwarded_to_the_hub_bus_with_the_role_and_a_dlq(resources: Resources) -> None:
    rule = _props(resources["HubForwardRule"])

    # Given the rule on the default bus (no EventBusName) for source tagpatch, as the event itself
    assert "EventBusName" not in rule
    assert rule["EventPattern"] == {"source": ["tagpatch"]}
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert _is_ref_to(target["Arn"], "HubEventBusArn")
    assert _is_getatt(target["RoleArn"], "HubForwardRole", "Arn")
    assert _is_getatt(target["DeadLetterConfig"]["Arn"], "HubForwardDLQ", "Arn")
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)
    # EventBridge takes no RetryPolicy for an event bus target: the default one (24 h, 185) applies
    assert "RetryPolicy" not in target
    assert "HubForwardDLQ" in _dead_letter_queues(resources)


def test_every_sample_member_event_matches_the_forward_rule(template: dict[str, Any]) -> None:
    pattern = EventPattern.load(json.dumps(_props(template["Resources"]["HubForwardRule"])["EventPattern"]))
    samples = sorted(EVENTS_DIR.glob("member-*.json"))

    assert samples
    for path in samples:
        assert pattern.matches_event(cast(Any, json.loads(path.read_text(encoding="utf-8")))), path.name
    assert not pattern.matches_event(cast(Any, _load_event("reconciler-tag-added.json")))


def test_forward_role_is_trusted_by_eventbridge_of_this_account_and_puts_on_the_hub_bus_only(
    resources: Resources,
) -> None:
    role = _props(resources["HubForwardRole"])

    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }
    assert "ManagedPolicyArns" not in role
    assert _role_grants(resources, "HubForwardRole") == {
        "events:PutEvents": [json.dumps({"Ref": "HubEventBusArn"})]
    }


def test_forward_dlq_admits_only_the_forward_rule(resources: Resources) -> None:
    policy = _props(resources["HubForwardDLQPolicy"])

    assert policy["Queues"] == [{"Ref": "HubForwardDLQ"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert _is_getatt(statement["Resource"], "HubForwardDLQ", "Arn")
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["HubForwardRule", "Arn"]}}
    }
