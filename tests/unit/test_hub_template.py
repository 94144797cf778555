"""Structural rules of hub/template.yaml, the organization hub (docs: the org spec, issue 14).

Read as YAML like test_template.py (no AWS, no SAM CLI). `make validate` lints it, `make security`
runs checkov on it, tests/unit/test_security.py applies its policy rules to both templates and
tests/integration/test_hub_package.py packages the member template the StackSet deploys.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from moto.events.models import EventPattern

from tests.unit.test_template import (
    LAYER_ACCOUNT,
    Resources,
    _as_list,
    _CfnLoader,
    _is_getatt,
    _is_ref_to,
    _of_type,
    _props,
    assert_defaults_satisfy_constraints,
)

ROOT = Path(__file__).resolve().parents[2]
HUB_TEMPLATE = ROOT / "hub" / "template.yaml"
MEMBER_TEMPLATE = ROOT / "template.yaml"
EVENTS_DIR = ROOT / "events"

PARAMETERS = frozenset(
    {
        "OrganizationId",
        "OrganizationalUnitIds",
        "MemberRegions",
        "MemberTemplateUrl",
        "CallAs",
        "MemberAlertEmail",
        "MemberWindowSchedule",
        "ComplianceThreshold",
        "SilentAfterHours",
        "DigestSchedule",
        "DigestEmail",
        "HistoryDays",
        "HubConcurrency",
        "ResolveOrganizationalUnits",
        "LogLevel",
        "LogRetentionDays",
        "PowertoolsLayerVersion",
    }
)
OUTPUTS = {
    "HubEventBusArn": {"Fn::GetAtt": ["HubBus", "Arn"]},
    "HubStateTableName": {"Ref": "HubStateTable"},
    "HubHistoryTableName": {"Ref": "HubHistoryTable"},
    "HubQueueUrl": {"Ref": "HubQueue"},
    "HubDLQUrl": {"Ref": "HubDLQ"},
    "HubTopicArn": {"Ref": "HubTopic"},
    "MemberStackSetId": {"Ref": "MemberStackSet"},
    "HubDashboardName": {"Ref": "HubDashboard"},
}
STORE_ENVIRONMENT = {
    "TAGPATCH_HUB_STATE_TABLE": {"Ref": "HubStateTable"},
    "TAGPATCH_HUB_HISTORY_TABLE": {"Ref": "HubHistoryTable"},
    "TAGPATCH_HUB_HISTORY_DAYS": {"Ref": "HistoryDays"},
    "TAGPATCH_HUB_RESOLVE_OUS": {"Ref": "ResolveOrganizationalUnits"},
}
DIGEST_ENVIRONMENT = {
    "TAGPATCH_HUB_STATE_TABLE": {"Ref": "HubStateTable"},
    "TAGPATCH_HUB_TOPIC_ARN": {"Ref": "HubTopic"},
    "TAGPATCH_HUB_COMPLIANCE_THRESHOLD": {"Ref": "ComplianceThreshold"},
    "TAGPATCH_HUB_SILENT_AFTER_HOURS": {"Ref": "SilentAfterHours"},
}
STORE_METRICS = ("HubEventsStored", "HubEventsDuplicate", "HubEventsRejected", "HubEventsUnsupported")
DIGEST_METRICS = ("OrgCompliancePercent", "SilentMembers", "GroupsBelowThreshold", "Members", "Groups")
BASIC_EXECUTION = [
    {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
    {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"},
]
ORG_ACCOUNTS = {"Fn::Sub": "arn:${AWS::Partition}:organizations::*:account/${OrganizationId}/*"}
ORG_UNITS = {"Fn::Sub": "arn:${AWS::Partition}:organizations::*:ou/${OrganizationId}/ou-*"}


def load_hub_template() -> dict[str, Any]:
    loaded = yaml.load(HUB_TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)
    assert isinstance(loaded, dict)
    return loaded


def _load_member_template() -> dict[str, Any]:
    loaded = yaml.load(MEMBER_TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_hub_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> Resources:
    return dict(template["Resources"])


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def role_statements(resources: Resources, role: str) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(condition, statement) of every statement of ``role``'s inline policies; a statement under
    ``Fn::If [condition, statement, AWS::NoValue]`` comes with its condition."""
    for policy in _props(resources[role]).get("Policies", []):
        for statement in _as_list(policy["PolicyDocument"]["Statement"]):
            if set(statement) == {"Fn::If"}:
                condition, when_true, when_false = statement["Fn::If"]
                assert when_false == {"Ref": "AWS::NoValue"}, role
                yield condition, when_true
            else:
                yield None, statement


def grants(resources: Resources, role: str) -> dict[str, set[str]]:
    """Action -> the resources it is allowed on (JSON), over every statement of the role."""
    granted: dict[str, set[str]] = {}
    for _, statement in role_statements(resources, role):
        assert statement["Effect"] == "Allow", role
        for action in _as_list(statement["Action"]):
            granted.setdefault(action, set()).update(_key(r) for r in _as_list(statement["Resource"]))
    return granted


def _getatt_arn(logical_id: str) -> str:
    return _key({"Fn::GetAtt": [logical_id, "Arn"]})


# --------------------------------------------------------------------------------------------
# Parameters and conditions (names fixed by the spec: the emulator and the CLI use them)
# --------------------------------------------------------------------------------------------
def test_parameters_are_the_fixed_set_and_each_is_described(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]

    assert set(parameters) == PARAMETERS
    for name, parameter in parameters.items():
        assert str(parameter.get("Description", "")).strip(), name
    assert parameters["OrganizationalUnitIds"]["Type"] == "CommaDelimitedList"
    assert parameters["MemberRegions"]["Type"] == "CommaDelimitedList"
    defaults = {name: parameter.get("Default") for name, parameter in parameters.items()}
    assert defaults == {
        "OrganizationId": None,
        "OrganizationalUnitIds": None,
        "MemberRegions": None,
        "MemberTemplateUrl": None,
        "CallAs": "DELEGATED_ADMIN",
        "MemberAlertEmail": "",
        "MemberWindowSchedule": "cron(0 3 ? * SUN *)",
        "ComplianceThreshold": 90,
        "SilentAfterHours": 24,
        "DigestSchedule": "cron(0 7 * * ? *)",
        "DigestEmail": "",
        "HistoryDays": 400,
        "HubConcurrency": 2,
        "ResolveOrganizationalUnits": "true",
        "LogLevel": "INFO",
        "LogRetentionDays": 30,
        "PowertoolsLayerVersion": 37,
    }
    assert sorted(parameters["CallAs"]["AllowedValues"]) == ["DELEGATED_ADMIN", "SELF"]


def test_every_default_satisfies_its_own_constraints(template: dict[str, Any]) -> None:
    assert_defaults_satisfy_constraints(template["Parameters"])


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("OrganizationId", "o-a1b2c3d4e5", True),
        ("OrganizationId", "o-exampleorg1", True),
        ("OrganizationId", "o-short", False),
        ("OrganizationId", "123456789012", False),
        ("OrganizationId", "O-A1B2C3D4E5", False),
        (
            "MemberTemplateUrl",
            "https://acme-eu-west-1.s3.eu-west-1.amazonaws.com/tagpatch/member-1.json",
            True,
        ),
        ("MemberTemplateUrl", "https://s3.amazonaws.com/acme/tagpatch/member.json", True),
        ("MemberTemplateUrl", "http://acme.s3.amazonaws.com/member.json", False),
        ("MemberTemplateUrl", "s3://acme/member.json", False),
        ("MemberTemplateUrl", "https://example.com/member.json", False),
        ("MemberAlertEmail", "", True),
        ("MemberAlertEmail", "ops@example.com", True),
        ("MemberAlertEmail", "ops", False),
        ("DigestSchedule", "rate(1 day)", True),
        ("DigestSchedule", "at(2026-12-02T07:00:00)", False),
    ],
)
def test_parameter_patterns(template: dict[str, Any], parameter: str, value: str, accepted: bool) -> None:
    pattern = template["Parameters"][parameter]["AllowedPattern"]

    assert bool(re.fullmatch(pattern, value)) is accepted


def test_member_parameters_take_the_member_templates_own_constraints(template: dict[str, Any]) -> None:
    # A value the hub accepts must not fail every stack instance of the StackSet
    hub = template["Parameters"]
    member = _load_member_template()["Parameters"]

    assert hub["MemberWindowSchedule"]["Default"] == member["WindowSchedule"]["Default"]
    assert hub["MemberWindowSchedule"]["AllowedPattern"] == member["WindowSchedule"]["AllowedPattern"]
    assert hub["MemberAlertEmail"]["AllowedPattern"] == member["AlertEmail"]["AllowedPattern"]
    assert hub["PowertoolsLayerVersion"]["Default"] == member["PowertoolsLayerVersion"]["Default"]
    assert hub["LogRetentionDays"]["AllowedValues"] == member["LogRetentionDays"]["AllowedValues"]


def test_conditions(template: dict[str, Any], resources: Resources) -> None:
    assert template["Conditions"] == {
        "HasDigestEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DigestEmail"}, ""]}]},
        "ResolveOUs": {"Fn::Equals": [{"Ref": "ResolveOrganizationalUnits"}, "true"]},
    }
    conditional = {name: res["Condition"] for name, res in resources.items() if "Condition" in res}
    assert conditional == {"DigestEmailSubscription": "HasDigestEmail"}
    subscription = _props(resources["DigestEmailSubscription"])
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", {"Ref": "DigestEmail"})
    assert _is_ref_to(subscription["TopicArn"], "HubTopic")


def test_outputs_are_the_fixed_set(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]

    assert {name: output["Value"] for name, output in outputs.items()} == OUTPUTS
    for name, output in outputs.items():
        assert output.get("Description"), name


# --------------------------------------------------------------------------------------------
# Functions: runtime, layer, code, environment, logs
# --------------------------------------------------------------------------------------------
def test_globals_match_the_member_stack_as_service_tagpatch_hub(template: dict[str, Any]) -> None:
    hub = template["Globals"]["Function"]
    member = _load_member_template()["Globals"]["Function"]

    assert hub["Runtime"] == member["Runtime"] == "python3.13"
    assert hub["Architectures"] == member["Architectures"]
    assert hub["Layers"] == member["Layers"]
    assert LAYER_ACCOUNT in hub["Layers"][0]["Fn::Sub"]
    assert hub["Tracing"] == "Active"
    assert hub["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "tagpatch-hub",
        "POWERTOOLS_METRICS_NAMESPACE": "TagPatchHub",
        "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    }


def test_the_two_functions_and_their_code(resources: Resources) -> None:
    functions = _of_type(resources, "AWS::Serverless::Function")

    assert {name: _props(f)["Handler"] for name, f in functions.items()} == {
        "HubStoreFunction": "tagpatch.handlers.hub.handler",
        "HubDigestFunction": "tagpatch.handlers.hub_digest.handler",
    }
    for name, function in functions.items():
        props = _props(function)
        # CodeUri relative to hub/: the repository's src/, with no requirements.txt (sam build
        # then needs no python3.13), as template.yaml's
        assert props["CodeUri"] == "../src/", name
        code = (HUB_TEMPLATE.parent / props["CodeUri"]).resolve()
        assert code == ROOT / "src", name
        assert not (code / "requirements.txt").exists(), name
        assert not {"Runtime", "Architectures", "Policies"} & set(props), name
        assert _is_getatt(props["Role"], name.replace("Function", "Role"), "Arn"), name


@pytest.mark.parametrize("module", ["tagpatch.handlers.hub", "tagpatch.handlers.hub_digest"])
def test_each_handler_module_defines_the_handler(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not on this branch yet (hub-runtime)")
    assert callable(importlib.import_module(module).handler)


def test_environments_are_the_fixed_names_pointing_at_their_resources(resources: Resources) -> None:
    store = _props(resources["HubStoreFunction"])["Environment"]["Variables"]
    digest = _props(resources["HubDigestFunction"])["Environment"]["Variables"]

    assert store == STORE_ENVIRONMENT
    assert digest == DIGEST_ENVIRONMENT


def test_environments_are_exactly_what_the_configs_read() -> None:
    if importlib.util.find_spec("tagpatch.hub.config") is None:
        pytest.skip("tagpatch.hub.config is not on this branch yet (hub-runtime)")
    config = importlib.import_module("tagpatch.hub.config")

    def aliases(model: Any) -> set[str]:
        return {str(field.alias) for field in model.model_fields.values()}

    assert aliases(config.HubStoreConfig) == set(STORE_ENVIRONMENT)
    assert aliases(config.HubDigestConfig) == set(DIGEST_ENVIRONMENT)


def test_every_function_has_a_log_group_with_retention(resources: Resources) -> None:
    log_groups = [_props(res) for res in _of_type(resources, "AWS::Logs::LogGroup").values()]

    assert len(log_groups) == 2
    for function_id in _of_type(resources, "AWS::Serverless::Function"):
        (group,) = [
            g for g in log_groups if g["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"}
        ]
        assert _is_ref_to(group["RetentionInDays"], "LogRetentionDays"), function_id


# --------------------------------------------------------------------------------------------
# Intake: bus, bus policy, rule, queue
# --------------------------------------------------------------------------------------------
def test_the_bus_admits_put_events_from_the_organization_only(resources: Resources) -> None:
    policies = _of_type(resources, "AWS::Events::EventBusPolicy")

    (policy,) = policies.values()
    props = _props(policy)
    assert _is_ref_to(props["EventBusName"], "HubBus")
    assert props["StatementId"]
    assert props["Statement"] == {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "events:PutEvents",
        "Resource": {"Fn::GetAtt": ["HubBus", "Arn"]},
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}},
    }
    assert not {"Principal", "Action", "Condition"} & set(props)  # the legacy form grants per account


def test_the_intake_rule_takes_every_member_event_into_the_queue(template: dict[str, Any]) -> None:
    rule = _props(template["Resources"]["HubIntakeRule"])

    assert _is_ref_to(rule["EventBusName"], "HubBus")
    assert rule["EventPattern"] == {"source": ["tagpatch"]}
    (target,) = rule["Targets"]
    assert _is_getatt(target["Arn"], "HubQueue", "Arn")
    assert _is_getatt(target["DeadLetterConfig"]["Arn"], "HubDLQ", "Arn")
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)  # the store reads the event

    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    samples = sorted(EVENTS_DIR.glob("member-*.json"))
    assert samples
    for path in samples:
        assert pattern.matches_event(cast(Any, json.loads(path.read_text(encoding="utf-8")))), path.name
    other = json.loads((EVENTS_DIR / "reconciler-tag-added.json").read_text(encoding="utf-8"))
    assert not pattern.matches_event(cast(Any, other))


def test_the_queue_redrives_to_its_dlq_and_outlasts_the_store(resources: Resources) -> None:
    queue = _props(resources["HubQueue"])
    timeout = _props(resources["HubStoreFunction"])["Timeout"]

    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["HubDLQ", "Arn"]},
        "maxReceiveCount": 5,
    }


def test_the_store_reads_batches_of_ten_with_partial_failures_at_bounded_concurrency(
    resources: Resources,
) -> None:
    (event,) = _props(resources["HubStoreFunction"])["Events"].values()

    assert event["Type"] == "SQS"
    assert event["Properties"] == {
        "Queue": {"Fn::GetAtt": ["HubQueue", "Arn"]},
        "BatchSize": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": {"Ref": "HubConcurrency"}},
    }


def _queue_policy_for(resources: Resources, queue: str) -> dict[str, Any]:
    (policy,) = [
        _props(p)
        for p in _of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue} in _props(p)["Queues"]
    ]
    return policy


@pytest.mark.parametrize(
    ("queues", "rules"),
    [
        (("HubQueue", "HubDLQ"), ("HubIntakeRule",)),
        (("HubDigestDLQ",), ("HubCheckSchedule", "HubDigestSchedule")),
    ],
)
def test_queue_policies_admit_only_the_stacks_rules(
    resources: Resources, queues: tuple[str, ...], rules: tuple[str, ...]
) -> None:
    policy = _queue_policy_for(resources, queues[0])

    assert policy["Queues"] == [{"Ref": queue} for queue in queues]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert [r["Fn::GetAtt"][0] for r in _as_list(statement["Resource"])] == list(queues)
    source = _as_list(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert source == [{"Fn::GetAtt": [rule, "Arn"]} for rule in rules]
    assert set(statement["Condition"]) == {"ArnEquals"}


# --------------------------------------------------------------------------------------------
# Encryption and retention
# --------------------------------------------------------------------------------------------
def test_every_queue_is_encrypted_and_every_dlq_keeps_14_days(resources: Resources) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")

    assert set(queues) == {"HubQueue", "HubDLQ", "HubDigestDLQ"}
    for name, queue in queues.items():
        assert _props(queue)["SqsManagedSseEnabled"] is True, name
        if name.endswith("DLQ"):
            assert _props(queue)["MessageRetentionPeriod"] == 1209600, name


@pytest.mark.parametrize("table", ["HubStateTable", "HubHistoryTable"])
def test_tables_are_the_records_layout_encrypted_and_recoverable(resources: Resources, table: str) -> None:
    props = _props(resources[table])

    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["AttributeDefinitions"] == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert "GlobalSecondaryIndexes" not in props  # records.py: Scans and Queries on the keys
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # history rows expire after HistoryDays; the digest's claims (state table) after 30 days
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert resources[table]["DeletionPolicy"] == "Retain"


def test_the_topic_uses_a_customer_managed_key_cloudwatch_may_use(resources: Resources) -> None:
    topic = _props(resources["HubTopic"])

    assert _is_ref_to(topic["KmsMasterKeyId"], "HubTopicKey")
    key = _props(resources["HubTopicKey"])
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "Condition" not in cloudwatch
    assert len(statements) == 2  # and the account's own administration (test_security)


# --------------------------------------------------------------------------------------------
# Least privilege: each role grants exactly what its function's code calls, on its resources
# --------------------------------------------------------------------------------------------
STORE_GRANTS = {
    "sqs:ReceiveMessage": {_getatt_arn("HubQueue")},
    "sqs:DeleteMessage": {_getatt_arn("HubQueue")},
    "sqs:GetQueueAttributes": {_getatt_arn("HubQueue")},
    # adapters/hub_store.py: conditional update_item of member and group items (ALL_NEW, and
    # ALL_OLD on a failed condition: no read), conditional put_item of history rows
    "dynamodb:UpdateItem": {_getatt_arn("HubStateTable")},
    "dynamodb:PutItem": {_getatt_arn("HubHistoryTable")},
    # adapters/hub_organizations.py: list_parents(ChildId=account), describe_organizational_unit
    "organizations:ListParents": {_key(ORG_ACCOUNTS)},
    "organizations:DescribeOrganizationalUnit": {_key(ORG_UNITS)},
}
DIGEST_GRANTS = {
    # adapters/hub_store.py: scan; claim (put_item), digest_sent (update_item), release
    # (delete_item); figures in chunks (batch_write_item) and their pointer (put_item)
    "dynamodb:Scan": {_getatt_arn("HubStateTable")},
    "dynamodb:PutItem": {_getatt_arn("HubStateTable")},
    "dynamodb:UpdateItem": {_getatt_arn("HubStateTable")},
    "dynamodb:DeleteItem": {_getatt_arn("HubStateTable")},
    "dynamodb:BatchWriteItem": {_getatt_arn("HubStateTable")},
    "sns:Publish": {_key({"Ref": "HubTopic"})},
    "kms:GenerateDataKey": {_getatt_arn("HubTopicKey")},
    "kms:Decrypt": {_getatt_arn("HubTopicKey")},
    # the schedules' failed invocations (EventInvokeConfig on-failure destination)
    "sqs:SendMessage": {_getatt_arn("HubDigestDLQ")},
}
#: each granted API as the code calls it (boto3's snake_case), in the modules the function uses
CALLS = {
    "HubStoreRole": {
        "dynamodb:UpdateItem": ("adapters/hub_store.py", "update_item("),
        "dynamodb:PutItem": ("adapters/hub_store.py", "put_item("),
        "organizations:ListParents": ("adapters/hub_organizations.py", "list_parents("),
        "organizations:DescribeOrganizationalUnit": (
            "adapters/hub_organizations.py",
            "describe_organizational_unit(",
        ),
    },
    "HubDigestRole": {
        "dynamodb:Scan": ("adapters/hub_store.py", ".scan("),
        "dynamodb:PutItem": ("adapters/hub_store.py", "put_item("),
        "dynamodb:UpdateItem": ("adapters/hub_store.py", "update_item("),
        "dynamodb:DeleteItem": ("adapters/hub_store.py", "delete_item("),
        "dynamodb:BatchWriteItem": ("adapters/hub_store.py", "batch_write_item("),
        "sns:Publish": ("adapters/digest_topic.py", "publish("),
    },
}


@pytest.mark.parametrize(
    ("role", "expected"), [("HubStoreRole", STORE_GRANTS), ("HubDigestRole", DIGEST_GRANTS)]
)
def test_each_role_grants_exactly_what_its_function_calls(
    resources: Resources, role: str, expected: dict[str, set[str]]
) -> None:
    assert grants(resources, role) == expected


@pytest.mark.parametrize("role", ["HubStoreRole", "HubDigestRole"])
def test_each_role_is_a_lambda_execution_role_with_only_logs_and_traces_managed(
    resources: Resources, role: str
) -> None:
    props = _props(resources[role])

    assert props["ManagedPolicyArns"] == BASIC_EXECUTION
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    for _, statement in role_statements(resources, role):
        assert not {"NotAction", "NotResource"} & set(statement), role
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{role}: {action}"
        assert "*" not in _as_list(statement["Resource"]), role


def test_organizations_permissions_exist_only_when_ous_are_resolved(resources: Resources) -> None:
    conditional = {
        action: condition
        for condition, statement in role_statements(resources, "HubStoreRole")
        for action in _as_list(statement["Action"])
        if condition is not None
    }

    assert conditional == {
        "organizations:ListParents": "ResolveOUs",
        "organizations:DescribeOrganizationalUnit": "ResolveOUs",
    }
    # the management account's ID is not known to the hub: only the organization's resources
    for action in conditional:
        (resource,) = grants(resources, "HubStoreRole")[action]
        assert "${OrganizationId}/" in resource, action


@pytest.mark.parametrize("role", sorted(CALLS))
def test_every_granted_api_is_called_by_the_code(resources: Resources, role: str) -> None:
    # Every grant the code uses names the call that needs it (SQS polling, KMS for the topic and the
    # on-failure DLQ are Lambda's and SNS's, asserted above)
    granted = {a for a in grants(resources, role) if a.split(":")[0] in ("dynamodb", "organizations", "sns")}
    assert granted == set(CALLS[role])
    for action, (module, call) in CALLS[role].items():
        path = ROOT / "src" / "tagpatch" / module
        if not path.is_file():
            pytest.skip(f"{module} is not on this branch yet (hub-runtime)")
        assert call in path.read_text(encoding="utf-8"), f"{role}: {action} ({call} in {module})"


# --------------------------------------------------------------------------------------------
# The digest's schedules
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "schedule", "action"),
    [
        ("HubCheckSchedule", "rate(1 hour)", "check"),
        ("HubDigestSchedule", {"Ref": "DigestSchedule"}, "digest"),
    ],
)
def test_each_schedule_invokes_the_digest_with_its_action_retrying_into_its_dlq(
    resources: Resources, rule: str, schedule: Any, action: str
) -> None:
    props = _props(resources[rule])

    assert props["ScheduleExpression"] == schedule
    assert props["State"] == "ENABLED"
    (target,) = props["Targets"]
    assert _is_getatt(target["Arn"], "HubDigestFunction", "Arn")
    assert json.loads(target["Input"]) == {"action": action}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert _is_getatt(target["DeadLetterConfig"]["Arn"], "HubDigestDLQ", "Arn")
    (permission,) = [
        _props(p)
        for p in _of_type(resources, "AWS::Lambda::Permission").values()
        if _props(p)["SourceArn"] == {"Fn::GetAtt": [rule, "Arn"]}
    ]
    assert permission == {
        "FunctionName": {"Ref": "HubDigestFunction"},
        "Action": "lambda:InvokeFunction",
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": [rule, "Arn"]},
    }


def test_failed_digest_invocations_go_to_its_dlq(resources: Resources) -> None:
    config = _props(resources["HubDigestFunction"])["EventInvokeConfig"]

    assert config["MaximumRetryAttempts"] <= 2
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["HubDigestDLQ", "Arn"]},
    }
    assert len(_of_type(resources, "AWS::Lambda::Permission")) == 2


# --------------------------------------------------------------------------------------------
# Alarms and dashboard
# --------------------------------------------------------------------------------------------
def _emitted_dimensions(metric: str) -> list[dict[str, str]]:
    """The dimensions the hub's functions write a metric with: none (the spec), as the code's own
    Metrics object serializes it when it is on this branch (src/tagpatch/hub/metrics.py)."""
    if importlib.util.find_spec("tagpatch.hub.metrics") is None:
        return []
    from aws_lambda_powertools.metrics import MetricUnit

    hub_metrics = importlib.import_module("tagpatch.hub.metrics").hub_metrics
    hub_metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    emf: dict[str, Any] = dict(hub_metrics.serialize_metric_set())
    hub_metrics.clear_metrics()
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "TagPatchHub"
    (names,) = directive["Dimensions"]
    return [{"Name": name, "Value": emf[name]} for name in names]


@pytest.mark.parametrize(
    ("alarm", "metric", "statistic", "threshold", "operator"),
    [
        (
            "OrgComplianceAlarm",
            "OrgCompliancePercent",
            "Minimum",
            {"Ref": "ComplianceThreshold"},
            "LessThanThreshold",
        ),
        ("SilentMembersAlarm", "SilentMembers", "Maximum", 1, "GreaterThanOrEqualToThreshold"),
    ],
)
def test_organization_alarms_watch_the_metric_as_the_digest_emits_it(
    template: dict[str, Any], alarm: str, metric: str, statistic: str, threshold: Any, operator: str
) -> None:
    props = _props(template["Resources"][alarm])

    assert (props["Namespace"], props["MetricName"]) == ("TagPatchHub", metric)
    assert props.get("Dimensions", []) == _emitted_dimensions(metric)
    assert (props["Statistic"], props["Threshold"], props["ComparisonOperator"]) == (
        statistic,
        threshold,
        operator,
    )
    assert props["Period"] == 3600  # the hourly check
    assert props["AlarmActions"] == [{"Ref": "HubTopic"}]


def test_every_dlq_and_function_has_an_alarm_to_the_hub_topic(resources: Resources) -> None:
    alarms = [_props(a) for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()]

    watched = {
        (alarm["Namespace"], alarm["MetricName"], json.dumps(alarm.get("Dimensions", []))) for alarm in alarms
    }
    for queue in ("HubDLQ", "HubDigestDLQ"):
        dimensions = [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", json.dumps(dimensions)) in watched, queue
    for function in ("HubStoreFunction", "HubDigestFunction"):
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": function}}]
        assert ("AWS/Lambda", "Errors", json.dumps(dimensions)) in watched, function
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": "HubTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"
    names = set(_of_type(resources, "AWS::CloudWatch::Alarm"))
    assert {"OrgComplianceAlarm", "SilentMembersAlarm", "HubDLQAlarm", "HubStoreErrorsAlarm"} <= names


def test_the_dashboard_shows_every_hub_metric_queue_and_function(template: dict[str, Any]) -> None:
    body = _props(template["Resources"]["HubDashboard"])["DashboardBody"]["Fn::Sub"]
    # Given the body with its substitutions made (CloudFormation's Fn::Sub)
    rendered = re.sub(r"\$\{([A-Za-z:.]+)\}", lambda m: "90" if m[1] == "ComplianceThreshold" else m[1], body)
    widgets = json.loads(rendered)["widgets"]

    # Then every metric of the two functions is drawn with the dimensions they are emitted with
    metrics = [line for widget in widgets for line in widget["properties"]["metrics"]]
    for metric in (*DIGEST_METRICS, *STORE_METRICS):
        dimensions = _emitted_dimensions(metric)
        expected = ["TagPatchHub", metric] + [part for d in dimensions for part in (d["Name"], d["Value"])]
        # the metric's line: namespace, name, its dimensions, then only the rendering options
        (line,) = [line for line in metrics if line[1] == metric]
        assert line[:-1] == expected, metric
        assert isinstance(line[-1], dict), metric
    for name in ("HubQueue.QueueName", "HubDLQ.QueueName", "HubDigestDLQ.QueueName", "HubStoreFunction"):
        assert name in rendered, name
    assert re.findall(r"\$\{([^}]+)\}", body), "the body names the stack's resources"


# --------------------------------------------------------------------------------------------
# Member stacks: the service-managed StackSet
# --------------------------------------------------------------------------------------------
def test_member_stacks_are_a_service_managed_stack_set_deployed_automatically(resources: Resources) -> None:
    props = _props(resources["MemberStackSet"])

    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert _is_ref_to(props["CallAs"], "CallAs")
    assert props["Capabilities"] == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    assert props["ManagedExecution"] == {"Active": True}
    assert props["OperationPreferences"] == {
        "FailureTolerancePercentage": 10,
        "MaxConcurrentPercentage": 25,
        "RegionConcurrencyType": "PARALLEL",
    }
    assert props["StackInstancesGroup"] == [
        {
            "DeploymentTargets": {"OrganizationalUnitIds": {"Ref": "OrganizationalUnitIds"}},
            "Regions": {"Ref": "MemberRegions"},
        }
    ]
    assert props["StackSetName"] == {"Fn::Sub": "${AWS::StackName}-members"}


def test_the_stack_set_deploys_the_packaged_template_not_one_needing_a_transform(
    template: dict[str, Any], resources: Resources
) -> None:
    props = _props(resources["MemberStackSet"])

    # A service-managed StackSet takes no macro: its template is the packaged one (hub/package.py)
    assert _is_ref_to(props["TemplateURL"], "MemberTemplateUrl")
    assert "TemplateBody" not in props
    assert "hub-package" in template["Parameters"]["MemberTemplateUrl"]["Description"]
    assert "Transform" in _load_member_template()  # which is why it is packaged


def test_the_stack_set_passes_what_members_need_from_the_hub(resources: Resources) -> None:
    parameters = _props(resources["MemberStackSet"])["Parameters"]
    member = _load_member_template()["Parameters"]

    assert {p["ParameterKey"]: p["ParameterValue"] for p in parameters} == {
        "HubEventBusArn": {"Fn::GetAtt": ["HubBus", "Arn"]},
        "AlertEmail": {"Ref": "MemberAlertEmail"},
        "WindowSchedule": {"Ref": "MemberWindowSchedule"},
    }
    for parameter in parameters:
        assert parameter["ParameterKey"] in member, parameter["ParameterKey"]
    # and the bus ARN it passes is one the member's own pattern accepts
    pattern = member["HubEventBusArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "arn:aws:events:eu-west-1:111122223333:event-bus/tagpatch-hub-bus")
    assert _props(resources["HubBus"])["Name"] == {"Fn::Sub": "${AWS::StackName}-bus"}


# --------------------------------------------------------------------------------------------
# samconfig.toml [hub]
# --------------------------------------------------------------------------------------------
def test_samconfig_hub_environment_deploys_this_template_with_valid_examples(
    template: dict[str, Any],
) -> None:
    from samcli.cli.types import CfnParameterOverridesType

    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))["hub"]

    assert config["global"]["parameters"] == {
        "stack_name": "tagpatch-hub",
        "template_file": "hub/template.yaml",
    }
    assert config["build"]["parameters"]["build_dir"] == ".aws-sam/hub-build"
    deploy = config["deploy"]["parameters"]
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}
    assert deploy["confirm_changeset"] is True
    assert "region" not in deploy
    # Each example value, as SAM reads it, is one the template accepts
    overrides = CfnParameterOverridesType().convert(tuple(deploy["parameter_overrides"]), None, None)
    parameters = template["Parameters"]
    assert {name for name, spec in parameters.items() if "Default" not in spec} <= set(overrides)
    for name, value in overrides.items():
        spec = parameters[name]
        values = value.split(",") if spec["Type"] == "CommaDelimitedList" else [value]
        for item in values:
            if "AllowedPattern" in spec:
                assert re.fullmatch(spec["AllowedPattern"], item), name
            if "AllowedValues" in spec:
                assert item in {str(v) for v in spec["AllowedValues"]}, name
    assert overrides["MemberRegions"].split(",") == ["eu-west-1", "us-east-1"]


# --------------------------------------------------------------------------------------------
# As the SAM transform makes it
# --------------------------------------------------------------------------------------------
def test_the_transform_adds_no_role_or_permission_of_its_own() -> None:
    from emulator.template import load_sam, translate

    sam_template = load_sam(HUB_TEMPLATE)
    for resource in sam_template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": "artifacts", "Key": "code.zip"}
    pseudo = {"AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333", "AWS::Partition": "aws"}
    translated = translate(sam_template, {"OrganizationId": "o-a1b2c3d4e5"}, pseudo)
    resources = translated["Resources"]

    # Only the two roles of the template: SAM generated none (with a generated one an SQS event
    # attaches AWSLambdaSQSQueueExecutionRole, receive and delete on every queue)
    assert sorted(_of_type(resources, "AWS::IAM::Role")) == ["HubDigestRole", "HubStoreRole"]
    assert "AWSLambdaSQSQueueExecutionRole" not in json.dumps(translated)
    # The queue's mapping, as written; the schedules' two permissions and no other
    (mapping,) = _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    assert _props(mapping)["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "HubConcurrency"}}
    assert _props(mapping)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sorted(_of_type(resources, "AWS::Lambda::Permission")) == [
        "HubCheckSchedulePermission",
        "HubDigestSchedulePermission",
    ]
    (invoke_config,) = _of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
    assert _props(invoke_config)["FunctionName"] == {"Ref": "HubDigestFunction"}
