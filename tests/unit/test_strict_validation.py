"""Strict request validation (emulator/strict_validation.py) against botocore's full service model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ParamValidationError
from botocore.model import StringShape
from botocore.stub import Stubber
from moto import mock_aws

from emulator import fake_ssm, strict_validation
from emulator.strict_validation import StrictValidationError, validate_request

SSM = botocore.session.get_session().get_service_model("ssm")
WINDOW_ID = "mw-0123456789abcdef0"

VALID_WINDOW: dict[str, Any] = {
    "Name": "patch-web.prod",
    "Description": "Patch group web",
    "Schedule": "cron(0 2 ? * SUN *)",
    "ScheduleTimezone": "Europe/Berlin",
    "Duration": 3,
    "Cutoff": 1,
    "AllowUnassociatedTargets": False,
    "Tags": [{"Key": "PatchGroup", "Value": "web"}, {"Key": "Owner", "Value": "Zoë Ørsted 東京"}],
}

VALID_TASK: dict[str, Any] = {
    "WindowId": WINDOW_ID,
    "Targets": [{"Key": "WindowTargetIds", "Values": ["0123abcd-0123-4567-89ab-0123456789ab"]}],
    "TaskArn": "AWS-RunPatchBaseline",
    "TaskType": "RUN_COMMAND",
    "ServiceRoleArn": "arn:aws:iam::123456789012:role/tagpatch-maintenance",
    "Priority": 1,
    "MaxConcurrency": "10%",
    "MaxErrors": "0",
    "Name": "RunPatchBaseline",
    "CutoffBehavior": "CONTINUE_TASK",
    "TaskInvocationParameters": {
        "RunCommand": {
            "Comment": "TagPatch web",
            "Parameters": {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]},
            "OutputS3BucketName": "tagpatch-output-123456789012",
            "OutputS3KeyPrefix": "run-command/web/",
            "TimeoutSeconds": 3600,
            "ServiceRoleArn": "arn:aws:iam::123456789012:role/tagpatch-sns",
            "NotificationConfig": {
                "NotificationArn": "arn:aws:sns:us-east-1:123456789012:tagpatch-status",
                "NotificationEvents": ["Success", "TimedOut", "Cancelled", "Failed"],
                "NotificationType": "Command",
            },
        }
    },
}


def _violations(operation: str, params: dict[str, Any]) -> list[str]:
    return validate_request(SSM.operation_model(operation), params)


@pytest.fixture
def ssm(aws: None) -> Iterator[Any]:
    yield boto3.client("ssm", region_name="us-east-1")


# ---------------------------------------------------------------- pure function


def test_valid_create_and_register_task_have_no_violations() -> None:
    assert _violations("CreateMaintenanceWindow", VALID_WINDOW) == []
    assert _violations("RegisterTaskWithMaintenanceWindow", VALID_TASK) == []


def test_nested_path_and_rule_are_reported() -> None:
    params = {**VALID_TASK, "TaskInvocationParameters": {"RunCommand": {"TimeoutSeconds": 10}}}
    assert _violations("RegisterTaskWithMaintenanceWindow", params) == [
        "TaskInvocationParameters.RunCommand.TimeoutSeconds: value 10 < min 30"
    ]


def test_collects_every_violation() -> None:
    params = {
        "Name": "x",
        "Schedule": "",
        "Duration": 25,
        "Cutoff": 24,
        "Bogus": 1,
        "Tags": [{"Key": "k", "Value": "bad<value>"}],
    }
    found = _violations("CreateMaintenanceWindow", params)
    expected_fragments = [
        "AllowUnassociatedTargets: required member is missing",
        "Bogus: unknown member",
        "Name: length 1 < min 3",
        "Name: value 'x' does not match pattern",
        "Schedule: length 0 < min 1",
        "Duration: value 25 > max 24",
        "Cutoff: value 24 > max 23",
        "Tags[0].Value: value 'bad<value>' does not match pattern",
    ]
    for fragment in expected_fragments:
        assert any(fragment in v for v in found), (fragment, found)
    assert len(found) == len(expected_fragments)


def test_types_of_blob_timestamp_boolean_are_checked_only_for_type() -> None:
    lam = SSM.shape_for("MaintenanceWindowLambdaParameters")
    assert strict_validation.validate_shape(lam, {"Payload": b"x" * 5000}) == []
    assert strict_validation.validate_shape(lam, {"Payload": 5}) == [
        "Payload: expected bytes, str or a file-like object (MaintenanceWindowLambdaPayload), got int"
    ]
    assert _violations("CreateMaintenanceWindow", {**VALID_WINDOW, "AllowUnassociatedTargets": "no"}) == [
        "AllowUnassociatedTargets: expected a bool (MaintenanceWindowAllowUnassociatedTargets), got str"
    ]


def test_map_keys_and_values_are_validated() -> None:
    long_key = "k" * 256
    params = {**VALID_TASK, "TaskParameters": {long_key: {"Values": [""]}}}
    found = _violations("RegisterTaskWithMaintenanceWindow", params)
    assert any("TaskParameters key" in v and "length 256 > max 255" in v for v in found), found
    assert any(f'TaskParameters["{long_key}"].Values[0]: length 0 < min 1' in v for v in found), found


def test_list_max_length() -> None:
    targets = [{"Key": f"tag:K{i}", "Values": ["v"]} for i in range(6)]
    found = _violations(
        "RegisterTargetWithMaintenanceWindow",
        {
            "WindowId": WINDOW_ID,
            "ResourceType": "INSTANCE",
            "Targets": targets,
        },
    )
    assert found == ["Targets: list length 6 > max 5"]


def test_sensitive_values_are_not_echoed() -> None:
    found = _violations(
        "RegisterTargetWithMaintenanceWindow",
        {
            "WindowId": WINDOW_ID,
            "ResourceType": "INSTANCE",
            "Targets": [],
            "Description": "s3cr3t" * 30,
        },
    )
    assert found == ["Description: length 180 > max 128"]
    assert all("s3cr3t" not in v for v in found)


def test_uncompilable_pattern_is_recorded_and_skipped() -> None:
    assert strict_validation._compiled(r"[z-a]") is None
    assert r"[z-a]" in strict_validation.UNCOMPILABLE_PATTERNS
    assert strict_validation._compiled(r"[z-a]") is None  # cached, still no crash
    shape = StringShape("Weird", {"type": "string", "pattern": "[z-a]", "max": 3})
    assert strict_validation.validate_shape(shape, "abc") == []
    assert strict_validation.validate_shape(shape, "abcd") == ["<input>: length 4 > max 3"]


# ---------------------------------------------------------------- real clients under moto


def test_botocore_alone_accepts_what_strict_rejects() -> None:
    strict_validation.uninstall()
    try:
        client = boto3.client("ssm", region_name="us-east-1")
        with Stubber(client) as stub:
            stub.add_response("create_maintenance_window", {"WindowId": WINDOW_ID})
            client.create_maintenance_window(**{**VALID_WINDOW, "Duration": 25})
    finally:
        strict_validation.install()
    assert strict_validation.is_installed()


def test_duration_25_rejected_before_moto_is_called(ssm: Any) -> None:
    with pytest.raises(StrictValidationError) as info:
        ssm.create_maintenance_window(**{**VALID_WINDOW, "Duration": 25})
    message = str(info.value)
    assert "ssm.CreateMaintenanceWindow" in message
    assert "Duration: value 25 > max 24" in message
    assert isinstance(info.value, ParamValidationError)
    assert info.value.operation == "ssm.CreateMaintenanceWindow"
    assert fake_ssm.CALLS == []
    assert ssm.describe_maintenance_windows()["WindowIdentities"] == []


def test_bad_name_rejected_by_pattern(ssm: Any) -> None:
    with pytest.raises(StrictValidationError, match=r"Name: value 'bad name!' does not match pattern"):
        ssm.create_maintenance_window(**{**VALID_WINDOW, "Name": "bad name!"})


def test_max_concurrency_zero_rejected(ssm: Any) -> None:
    with pytest.raises(StrictValidationError, match=r"MaxConcurrency: value '0' does not match pattern"):
        ssm.register_task_with_maintenance_window(**{**VALID_TASK, "MaxConcurrency": "0"})
    assert fake_ssm.CALLS == []


def test_max_errors_zero_is_allowed_but_zero_percent_concurrency_is_not() -> None:
    assert _violations("RegisterTaskWithMaintenanceWindow", {**VALID_TASK, "MaxErrors": "0%"}) == []
    assert _violations("RegisterTaskWithMaintenanceWindow", {**VALID_TASK, "MaxConcurrency": "100%"}) == []
    assert len(_violations("RegisterTaskWithMaintenanceWindow", {**VALID_TASK, "MaxConcurrency": "0%"})) == 1


def test_notification_type_enum_rejected(ssm: Any) -> None:
    params = {**VALID_TASK}
    run = dict(params["TaskInvocationParameters"]["RunCommand"])
    run["NotificationConfig"] = {**run["NotificationConfig"], "NotificationType": "Foo"}
    params["TaskInvocationParameters"] = {"RunCommand": run}
    with pytest.raises(StrictValidationError) as info:
        ssm.register_task_with_maintenance_window(**params)
    assert (
        "TaskInvocationParameters.RunCommand.NotificationConfig.NotificationType: "
        "value 'Foo' not in enum ['Command', 'Invocation']"
    ) in str(info.value)


def test_timeout_seconds_10_rejected(ssm: Any) -> None:
    params = {**VALID_TASK}
    run = {**params["TaskInvocationParameters"]["RunCommand"], "TimeoutSeconds": 10}
    params["TaskInvocationParameters"] = {"RunCommand": run}
    with pytest.raises(StrictValidationError, match=r"RunCommand\.TimeoutSeconds: value 10 < min 30"):
        ssm.register_task_with_maintenance_window(**params)


def test_unicode_tag_value_and_full_valid_requests_accepted(ssm: Any) -> None:
    window_id = ssm.create_maintenance_window(**VALID_WINDOW)["WindowId"]
    task_id = ssm.register_task_with_maintenance_window(**{**VALID_TASK, "WindowId": window_id})[
        "WindowTaskId"
    ]
    assert len(task_id) == 36
    tags = ssm.list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId=window_id)["TagList"]
    assert {"Key": "Owner", "Value": "Zoë Ørsted 東京"} in tags


def test_paginator_max_results_out_of_range_rejected(ssm: Any) -> None:
    paginator = ssm.get_paginator("describe_instance_patch_states_for_patch_group")
    with pytest.raises(StrictValidationError, match=r"MaxResults: value 1000 > max 100"):
        list(paginator.paginate(PatchGroup="web", PaginationConfig={"PageSize": 1000}))


def test_dynamodb_requests_validated(aws: None) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    with pytest.raises(StrictValidationError, match=r"dynamodb\.PutItem[\s\S]*TableName: length 0 < min 1"):
        client.put_item(TableName="", Item={"pk": {"S": "a"}})
    with pytest.raises(StrictValidationError, match=r"TableName: length 1025 > max 1024"):
        client.put_item(TableName="t" * 1025, Item={"pk": {"S": "a"}})
    with pytest.raises(StrictValidationError, match=r"ReturnValues: value 'EVERYTHING' not in enum"):
        client.put_item(TableName="table", Item={"pk": {"S": "a"}}, ReturnValues="EVERYTHING")


def test_dynamodb_resource_params_are_validated_after_boto3_transformation(aws: None) -> None:
    resource = boto3.resource("dynamodb", region_name="us-east-1")
    table = resource.create_table(
        TableName="groups",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table.put_item(Item={"pk": "web", "count": 3, "tags": {"a", "b"}})
    assert table.get_item(Key={"pk": "web"})["Item"]["count"] == 3
    with pytest.raises(StrictValidationError, match=r"ReturnValues: value 'NOPE' not in enum"):
        table.put_item(Item={"pk": "web"}, ReturnValues="NOPE")


def test_sns_requests_validated(aws: None) -> None:
    client = boto3.client("sns", region_name="us-east-1")
    topic = client.create_topic(Name="tagpatch-alerts", Tags=[{"Key": "app", "Value": "tagpatch"}])[
        "TopicArn"
    ]
    with pytest.raises(StrictValidationError, match=r"Tags\[0\]\.Key: length 129 > max 128"):
        client.create_topic(Name="other", Tags=[{"Key": "k" * 129, "Value": "v"}])
    with pytest.raises(StrictValidationError, match=r'MessageAttributes\["a"\]\.Bogus: unknown member'):
        client.publish(
            TopicArn=topic,
            Message="hi",
            MessageAttributes={"a": {"DataType": "String", "StringValue": "x", "Bogus": 1}},
        )
    client.publish(
        TopicArn=topic, Message="hi", MessageAttributes={"a": {"DataType": "String", "StringValue": "x"}}
    )


def test_every_client_creation_path_is_covered(aws: None) -> None:
    bad = {**VALID_WINDOW, "Duration": 25}
    clients = [
        boto3.client("ssm", region_name="us-east-1"),
        boto3.Session(region_name="us-east-1").client("ssm"),
        boto3.Session().client("ssm", config=Config(region_name="us-east-1")),
        botocore.session.get_session().create_client("ssm", region_name="us-east-1"),
        botocore.session.Session().create_client("ssm", region_name="us-east-1"),
    ]
    for client in clients:
        with pytest.raises(StrictValidationError):
            client.create_maintenance_window(**bad)


def test_install_is_idempotent_and_uninstall_restores() -> None:
    strict_validation.install()
    strict_validation.install()
    wrapped = botocore.session.Session.create_client
    assert getattr(wrapped, "__wrapped__", None) is not None
    assert not hasattr(wrapped.__wrapped__, "_tagpatch_strict_validation")  # wrapped exactly once
    strict_validation.uninstall()
    try:
        assert not strict_validation.is_installed()
        assert not hasattr(botocore.session.Session.create_client, "_tagpatch_strict_validation")
        client = boto3.client("ssm", region_name="us-east-1")
        with Stubber(client) as stub:
            stub.add_response("create_maintenance_window", {"WindowId": WINDOW_ID})
            client.create_maintenance_window(**{**VALID_WINDOW, "Duration": 25})
    finally:
        strict_validation.install()
    assert strict_validation.is_installed()


def test_install_on_a_single_session() -> None:
    strict_validation.uninstall()
    try:
        session = boto3.Session(region_name="us-east-1")
        strict_validation.install(session)
        with pytest.raises(StrictValidationError):
            session.client("ssm").create_maintenance_window(**{**VALID_WINDOW, "Duration": 25})
        assert not hasattr(botocore.session.Session.create_client, "_tagpatch_strict_validation")
    finally:
        strict_validation.install()


def test_attach_to_existing_client_and_exemptions() -> None:
    strict_validation.uninstall()
    try:
        client = boto3.client("ssm", region_name="us-east-1")
    finally:
        strict_validation.install()
    strict_validation.attach_to_client(client)
    with pytest.raises(StrictValidationError):
        client.create_maintenance_window(**{**VALID_WINDOW, "Duration": 25})
    strict_validation.EXEMPT_OPERATIONS.add(("ssm", "CreateMaintenanceWindow"))
    try:
        with Stubber(client) as stub:
            stub.add_response("create_maintenance_window", {"WindowId": WINDOW_ID})
            client.create_maintenance_window(**{**VALID_WINDOW, "Duration": 25})
    finally:
        strict_validation.EXEMPT_OPERATIONS.discard(("ssm", "CreateMaintenanceWindow"))


def test_error_is_picklable_and_lists_violations() -> None:
    import pickle

    err = StrictValidationError(
        operation="ssm.X", violations=["A: value 1 > max 0", "B: required member is missing"]
    )
    again = pickle.loads(pickle.dumps(err))
    assert again.violations == err.violations
    assert str(again) == str(err)
    assert "ssm.X" in str(err) and "B: required member is missing" in str(err)


def test_mock_aws_without_fixture_still_validates() -> None:
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1")
        with pytest.raises(StrictValidationError):
            client.describe_maintenance_windows(MaxResults=5000)
