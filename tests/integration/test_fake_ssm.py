"""The shared SSM fake (emulator/fake_ssm.py): APIs moto 5.2 lacks, paging, filters, faults, call log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from emulator import fake_ssm
from emulator.fake_ssm import CALLS, inject_faults, make_instance_patch_state, seed_instance_patch_state

REGION = "us-east-1"
UNKNOWN_WINDOW = "mw-0123456789abcdef0"
UNKNOWN_UUID = "01234567-89ab-cdef-0123-456789abcdef"

RUN_COMMAND_PARAMS: dict[str, Any] = {
    "RunCommand": {
        "Comment": "TagPatch web",
        "Parameters": {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]},
        "OutputS3BucketName": "tagpatch-output-123456789012",
        "OutputS3KeyPrefix": "run-command/web/",
        "TimeoutSeconds": 3600,
        "ServiceRoleArn": "arn:aws:iam::123456789012:role/tagpatch-sns",
        "NotificationConfig": {
            "NotificationArn": "arn:aws:sns:us-east-1:123456789012:tagpatch-status",
            "NotificationEvents": ["All"],
            "NotificationType": "Command",
        },
    }
}


@pytest.fixture
def ssm(aws: None) -> Iterator[Any]:
    yield boto3.client("ssm", region_name=REGION)


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def _window(ssm: Any, name: str = "patch-web", **extra: Any) -> str:
    params: dict[str, Any] = {
        "Name": name,
        "Schedule": "cron(0 2 ? * SUN *)",
        "Duration": 3,
        "Cutoff": 1,
        "AllowUnassociatedTargets": True,
        **extra,
    }
    return str(ssm.create_maintenance_window(**params)["WindowId"])


def _target(ssm: Any, window_id: str, owner: str = "team-web") -> str:
    return str(
        ssm.register_target_with_maintenance_window(
            WindowId=window_id,
            ResourceType="INSTANCE",
            Targets=[{"Key": "tag:PatchGroup", "Values": ["web"]}],
            OwnerInformation=owner,
            Name="web-instances",
        )["WindowTargetId"]
    )


def _task(ssm: Any, window_id: str, target_id: str, **extra: Any) -> str:
    params: dict[str, Any] = {
        "WindowId": window_id,
        "Targets": [{"Key": "WindowTargetIds", "Values": [target_id]}],
        "TaskArn": "AWS-RunPatchBaseline",
        "TaskType": "RUN_COMMAND",
        "ServiceRoleArn": "arn:aws:iam::123456789012:role/tagpatch-maintenance",
        "TaskInvocationParameters": RUN_COMMAND_PARAMS,
        "Priority": 1,
        "MaxConcurrency": "10%",
        "MaxErrors": "1",
        "Name": "RunPatchBaseline",
        "Description": "Install patches",
        "CutoffBehavior": "CANCEL_TASK",
        **extra,
    }
    return str(ssm.register_task_with_maintenance_window(**params)["WindowTaskId"])


# ---------------------------------------------------------------------------- windows


def test_update_maintenance_window_changes_schedule_and_get_returns_all_fields(ssm: Any) -> None:
    window_id = _window(ssm, Description="web group")
    before = ssm.get_maintenance_window(WindowId=window_id)
    assert before["AllowUnassociatedTargets"] is True
    assert before["Enabled"] is True
    assert isinstance(before["CreatedDate"], datetime)
    assert before["ModifiedDate"] == before["CreatedDate"]

    updated = ssm.update_maintenance_window(
        WindowId=window_id, Schedule="cron(0 4 ? * SAT *)", ScheduleTimezone="Europe/Berlin", Enabled=False
    )
    assert updated["Schedule"] == "cron(0 4 ? * SAT *)"
    assert updated["Name"] == "patch-web"  # untouched fields come back too
    assert updated["Enabled"] is False
    after = ssm.get_maintenance_window(WindowId=window_id)
    assert after["Schedule"] == "cron(0 4 ? * SAT *)"
    assert after["ScheduleTimezone"] == "Europe/Berlin"
    assert after["Description"] == "web group"
    assert after["Enabled"] is False
    assert after["ModifiedDate"] >= before["ModifiedDate"]
    assert after["CreatedDate"] == before["CreatedDate"]


def test_update_window_with_replace(ssm: Any) -> None:
    window_id = _window(ssm, Description="web group", ScheduleTimezone="UTC")
    with pytest.raises(ClientError) as err:
        ssm.update_maintenance_window(WindowId=window_id, Replace=True, Duration=4)
    assert _code(err) == "ValidationException"
    ssm.update_maintenance_window(
        WindowId=window_id,
        Replace=True,
        Name="patch-web-2",
        Schedule="rate(7 days)",
        Duration=4,
        Cutoff=2,
        AllowUnassociatedTargets=False,
    )
    window = ssm.get_maintenance_window(WindowId=window_id)
    assert window["Name"] == "patch-web-2"
    assert window["AllowUnassociatedTargets"] is False
    assert "Description" not in window
    assert "ScheduleTimezone" not in window
    assert window["Enabled"] is True


def test_window_cross_field_rules(ssm: Any) -> None:
    with pytest.raises(ClientError) as err:
        _window(ssm, Duration=2, Cutoff=2)
    assert _code(err) == "ValidationException"
    with pytest.raises(ClientError) as err:
        _window(ssm, Schedule="rate(1 day)", ScheduleOffset=2)
    assert _code(err) == "ValidationException"
    window_id = _window(ssm)
    with pytest.raises(ClientError) as err:
        ssm.update_maintenance_window(WindowId=window_id, Cutoff=3)
    assert _code(err) == "ValidationException"


def test_create_window_client_token_is_idempotent(ssm: Any) -> None:
    first = _window(ssm, ClientToken="token-1")
    assert _window(ssm, ClientToken="token-1") == first
    assert _window(ssm, ClientToken="token-2") != first
    assert len(ssm.describe_maintenance_windows()["WindowIdentities"]) == 2


def test_describe_windows_name_and_enabled_filters_and_paging(ssm: Any) -> None:
    ids = [_window(ssm, name=f"window-{i:02d}") for i in range(25)]
    ssm.update_maintenance_window(WindowId=ids[3], Enabled=False)

    named = ssm.describe_maintenance_windows(Filters=[{"Key": "Name", "Values": ["window-07", "window-09"]}])
    assert [w["Name"] for w in named["WindowIdentities"]] == ["window-07", "window-09"]
    disabled = ssm.describe_maintenance_windows(Filters=[{"Key": "Enabled", "Values": ["false"]}])
    assert [w["WindowId"] for w in disabled["WindowIdentities"]] == [ids[3]]
    assert disabled["WindowIdentities"][0]["Enabled"] is False
    assert "AllowUnassociatedTargets" not in disabled["WindowIdentities"][0]

    pages = list(
        ssm.get_paginator("describe_maintenance_windows").paginate(PaginationConfig={"PageSize": 10})
    )
    assert [len(p["WindowIdentities"]) for p in pages] == [10, 10, 5]
    assert [w["WindowId"] for p in pages for w in p["WindowIdentities"]] == ids
    assert "NextToken" not in pages[-1]

    with pytest.raises(ClientError) as err:
        ssm.describe_maintenance_windows(NextToken="not-a-token")
    assert _code(err) == "InvalidNextToken"


def test_unknown_ids_raise_does_not_exist(ssm: Any) -> None:
    window_id = _window(ssm)
    calls: list[Callable[[], Any]] = [
        lambda: ssm.get_maintenance_window(WindowId=UNKNOWN_WINDOW),
        lambda: ssm.update_maintenance_window(WindowId=UNKNOWN_WINDOW, Duration=4),
        lambda: ssm.get_maintenance_window_task(WindowId=UNKNOWN_WINDOW, WindowTaskId=UNKNOWN_UUID),
        lambda: ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=UNKNOWN_UUID),
        lambda: ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=UNKNOWN_UUID, Priority=2),
        lambda: ssm.update_maintenance_window_target(
            WindowId=window_id, WindowTargetId=UNKNOWN_UUID, OwnerInformation="x"
        ),
        lambda: ssm.deregister_task_from_maintenance_window(WindowId=window_id, WindowTaskId=UNKNOWN_UUID),
        lambda: ssm.deregister_target_from_maintenance_window(
            WindowId=window_id, WindowTargetId=UNKNOWN_UUID
        ),
        lambda: ssm.describe_maintenance_window_tasks(WindowId=UNKNOWN_WINDOW),
        lambda: ssm.describe_maintenance_window_targets(WindowId=UNKNOWN_WINDOW),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err) == "DoesNotExistException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# ---------------------------------------------------------------------------- targets


def test_targets_owner_information_update_filters_and_safe_deregister(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id, owner="team-web")
    other_id = _target(ssm, window_id, owner="team-db")

    listed = ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]
    assert {t["WindowTargetId"]: t["OwnerInformation"] for t in listed} == {
        target_id: "team-web",
        other_id: "team-db",
    }
    assert listed[0]["ResourceType"] == "INSTANCE"
    by_owner = ssm.describe_maintenance_window_targets(
        WindowId=window_id, Filters=[{"Key": "OwnerInformation", "Values": ["team-db"]}]
    )["Targets"]
    assert [t["WindowTargetId"] for t in by_owner] == [other_id]

    updated = ssm.update_maintenance_window_target(
        WindowId=window_id,
        WindowTargetId=target_id,
        Targets=[{"Key": "tag:PatchGroup", "Values": ["web", "web-2"]}],
        OwnerInformation="team-web-2",
    )
    assert updated["Targets"] == [{"Key": "tag:PatchGroup", "Values": ["web", "web-2"]}]
    assert updated["Name"] == "web-instances"
    assert updated["OwnerInformation"] == "team-web-2"
    replaced = ssm.update_maintenance_window_target(
        WindowId=window_id,
        WindowTargetId=target_id,
        Targets=[{"Key": "tag:PatchGroup", "Values": ["web"]}],
        Replace=True,
    )
    assert "OwnerInformation" not in replaced and "Name" not in replaced

    _task(ssm, window_id, target_id)
    with pytest.raises(ClientError) as err:
        ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=target_id, Safe=True)
    assert _code(err) == "TargetInUseException"
    out = ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=target_id)
    assert out["WindowTargetId"] == target_id
    assert [
        t["WindowTargetId"] for t in ssm.describe_maintenance_window_targets(WindowId=window_id)["Targets"]
    ] == [other_id]


# ---------------------------------------------------------------------------- tasks


def test_task_get_update_and_describe_shape(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    task_id = _task(ssm, window_id, target_id)

    task = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    # what was sent, plus the defaults SSM reports for what was not (see _echo_task_defaults)
    sent = RUN_COMMAND_PARAMS["RunCommand"]
    assert task["TaskInvocationParameters"] == {
        "RunCommand": {
            **sent,
            "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
            "Parameters": {
                **sent["Parameters"],
                "SnapshotId": [""],
                "InstallOverrideList": [""],
                "BaselineOverride": [""],
            },
        }
    }
    assert task["TaskParameters"] == {}
    assert task["Targets"] == [{"Key": "WindowTargetIds", "Values": [target_id]}]
    assert task["TaskType"] == "RUN_COMMAND"
    assert task["TaskArn"] == "AWS-RunPatchBaseline"
    assert (task["Priority"], task["MaxConcurrency"], task["MaxErrors"]) == (1, "10%", "1")
    assert task["ServiceRoleArn"] == "arn:aws:iam::123456789012:role/tagpatch-maintenance"
    assert (task["Name"], task["Description"], task["CutoffBehavior"]) == (
        "RunPatchBaseline",
        "Install patches",
        "CANCEL_TASK",
    )

    updated = ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, MaxConcurrency="5")
    assert updated["MaxConcurrency"] == "5"
    assert updated["TaskInvocationParameters"] == RUN_COMMAND_PARAMS  # partial update keeps the rest
    again = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    assert again["MaxConcurrency"] == "5"
    assert again["MaxErrors"] == "1"

    described = ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    assert len(described) == 1
    assert described[0]["Type"] == "RUN_COMMAND"
    assert "TaskType" not in described[0]
    assert "TaskInvocationParameters" not in described[0]
    assert described[0]["MaxConcurrency"] == "5"
    assert described[0]["CutoffBehavior"] == "CANCEL_TASK"


def test_task_update_replace_nulls_optional_fields(ssm: Any) -> None:
    window_id = _window(ssm)
    task_id = _task(ssm, window_id, _target(ssm, window_id))
    with pytest.raises(ClientError) as err:
        ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Replace=True)
    assert _code(err) == "ValidationException"
    result = ssm.update_maintenance_window_task(
        WindowId=window_id, WindowTaskId=task_id, Replace=True, TaskArn="AWS-RunPatchBaseline"
    )
    for member in ("Targets", "TaskInvocationParameters", "MaxConcurrency", "Name", "Priority"):
        assert member not in result, member
    task = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    assert task["TaskType"] == "RUN_COMMAND"
    assert "TaskInvocationParameters" not in task


def test_task_with_targets_needs_rate_controls(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    with pytest.raises(ClientError) as err:
        ssm.register_task_with_maintenance_window(
            WindowId=window_id,
            Targets=[{"Key": "WindowTargetIds", "Values": [target_id]}],
            TaskArn="AWS-RunPatchBaseline",
            TaskType="RUN_COMMAND",
        )
    assert _code(err) == "ValidationException"


def test_task_filters_alarm_configuration_and_deregister(ssm: Any) -> None:
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    first = _task(ssm, window_id, target_id, Priority=1)
    second = _task(
        ssm,
        window_id,
        target_id,
        Priority=2,
        AlarmConfiguration={"Alarms": [{"Name": "patching-errors"}], "IgnorePollAlarmFailure": True},
    )
    by_priority = ssm.describe_maintenance_window_tasks(
        WindowId=window_id, Filters=[{"Key": "Priority", "Values": ["2"]}]
    )["Tasks"]
    assert [t["WindowTaskId"] for t in by_priority] == [second]
    assert by_priority[0]["AlarmConfiguration"]["Alarms"] == [{"Name": "patching-errors"}]
    out = ssm.deregister_task_from_maintenance_window(WindowId=window_id, WindowTaskId=first)
    assert out == {"WindowId": window_id, "WindowTaskId": first, "ResponseMetadata": out["ResponseMetadata"]}
    assert [
        t["WindowTaskId"] for t in ssm.describe_maintenance_window_tasks(WindowId=window_id)["Tasks"]
    ] == [second]


# ---------------------------------------------------------------------------- patch state


def _instance(n: int) -> str:
    return f"i-{n:017x}"


def test_250_instances_paginate_in_three_pages(ssm: Any) -> None:
    for n in range(250):
        seed_instance_patch_state(make_instance_patch_state(_instance(n), "web", missing=n % 3))
    seed_instance_patch_state(make_instance_patch_state(_instance(999), "db"))

    paginator = ssm.get_paginator("describe_instance_patch_states_for_patch_group")
    pages = list(paginator.paginate(PatchGroup="web", PaginationConfig={"PageSize": 100}))
    assert [len(p["InstancePatchStates"]) for p in pages] == [100, 100, 50]
    ids = [s["InstanceId"] for p in pages for s in p["InstancePatchStates"]]
    assert ids == [_instance(n) for n in range(250)]
    assert "NextToken" in pages[0] and "NextToken" not in pages[-1]
    first = pages[0]["InstancePatchStates"][0]
    assert first["PatchGroup"] == "web"
    assert first["BaselineId"] == "pb-0123456789abcdef0"
    assert isinstance(first["OperationEndTime"], datetime)
    assert first["OperationEndTime"].tzinfo is not None

    default_page = ssm.describe_instance_patch_states_for_patch_group(PatchGroup="web")
    assert len(default_page["InstancePatchStates"]) == 50


def test_patch_state_filters(ssm: Any) -> None:
    for n in range(30):
        seed_instance_patch_state(
            make_instance_patch_state(_instance(n), "web", missing=n % 3, failed=int(n % 5 == 0))
        )

    def ids(*filters: dict[str, Any]) -> list[str]:
        response = ssm.describe_instance_patch_states_for_patch_group(
            PatchGroup="web", Filters=list(filters), MaxResults=100
        )
        return [s["InstanceId"] for s in response.get("InstancePatchStates", [])]

    assert ids({"Key": "MissingCount", "Type": "GreaterThan", "Values": ["1"]}) == [
        _instance(n) for n in range(30) if n % 3 == 2
    ]
    assert ids({"Key": "MissingCount", "Type": "Equal", "Values": ["0"]}) == [
        _instance(n) for n in range(30) if n % 3 == 0
    ]
    assert ids(
        {"Key": "MissingCount", "Type": "NotEqual", "Values": ["0"]},
        {"Key": "FailedCount", "Type": "GreaterThan", "Values": ["0"]},
    ) == [_instance(n) for n in range(30) if n % 3 != 0 and n % 5 == 0]
    assert ids({"Key": "InstalledCount", "Type": "LessThan", "Values": ["10"]}) == []

    empty = ssm.describe_instance_patch_states_for_patch_group(
        PatchGroup="web", Filters=[{"Key": "FailedCount", "Type": "GreaterThan", "Values": ["100"]}]
    )
    assert "InstancePatchStates" not in empty and "NextToken" not in empty
    with pytest.raises(ClientError) as err:
        ids({"Key": "Bogus", "Type": "Equal", "Values": ["1"]})
    assert _code(err) == "InvalidFilter"
    with pytest.raises(ClientError) as err:
        ids({"Key": "MissingCount", "Type": "Equal", "Values": ["many"]})
    assert _code(err) == "InvalidFilter"
    with pytest.raises(ClientError) as err:
        ssm.describe_instance_patch_states_for_patch_group(PatchGroup="web", NextToken="garbage")
    assert _code(err) == "InvalidNextToken"


def test_patch_group_state_counts(ssm: Any) -> None:
    states = [
        make_instance_patch_state(_instance(1), "web", installed=3, missing=2, critical=1, security=2),
        make_instance_patch_state(_instance(2), "web", installed=0, failed=1, other=1, pending_reboot=2),
        make_instance_patch_state(
            _instance(3), "web", installed=5, installed_other=1, rejected=1, available_security_updates=4
        ),
        make_instance_patch_state(
            _instance(4), "web", installed=1, not_applicable=7, unreported_not_applicable=2
        ),
        make_instance_patch_state(_instance(5), "db", installed=1, missing=9, failed=9),
    ]
    for state in states:
        seed_instance_patch_state(state)
    result = ssm.describe_patch_group_state(PatchGroup="web")
    result.pop("ResponseMetadata")
    assert result == {
        "Instances": 4,
        "InstancesWithInstalledPatches": 3,
        "InstancesWithInstalledOtherPatches": 1,
        "InstancesWithInstalledPendingRebootPatches": 1,
        "InstancesWithInstalledRejectedPatches": 1,
        "InstancesWithMissingPatches": 1,
        "InstancesWithFailedPatches": 1,
        "InstancesWithNotApplicablePatches": 1,
        "InstancesWithUnreportedNotApplicablePatches": 1,
        "InstancesWithCriticalNonCompliantPatches": 1,
        "InstancesWithSecurityNonCompliantPatches": 1,
        "InstancesWithOtherNonCompliantPatches": 1,
        "InstancesWithAvailableSecurityUpdates": 1,
    }
    empty = ssm.describe_patch_group_state(PatchGroup="nobody")
    assert empty["Instances"] == 0 and empty["InstancesWithMissingPatches"] == 0


def test_seeding_validates_against_the_model(aws: None) -> None:
    good = make_instance_patch_state("i-0123456789abcdef0", "web", end_time=datetime(2024, 5, 1, 3, 0))
    stored = seed_instance_patch_state({**good, "OwnerInformation": ""})
    assert stored["OperationEndTime"] == datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    bad = dict(good)
    del bad["Operation"]
    with pytest.raises(ValueError, match="Operation: required member is missing"):
        seed_instance_patch_state(bad)
    with pytest.raises(ValueError, match="InstanceId"):
        seed_instance_patch_state({**good, "InstanceId": "web-1"})
    with pytest.raises(ValueError, match="RebootOption"):
        make_instance_patch_state("i-0123456789abcdef0", "web", reboot_option="Sometimes")
    fake_ssm.clear_patch_states()
    assert boto3.client("ssm").describe_patch_group_state(PatchGroup="web")["Instances"] == 0


def test_describe_patch_groups(ssm: Any) -> None:
    linux = ssm.create_patch_baseline(
        Name="tagpatch-linux", OperatingSystem="AMAZON_LINUX_2", Description="Linux baseline"
    )["BaselineId"]
    windows = ssm.create_patch_baseline(Name="tagpatch-windows", OperatingSystem="WINDOWS")["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=linux, PatchGroup="web")
    ssm.register_patch_baseline_for_patch_group(BaselineId=windows, PatchGroup="web")  # second OS: allowed
    ssm.register_patch_baseline_for_patch_group(BaselineId=linux, PatchGroup="db")
    ssm.register_patch_baseline_for_patch_group(BaselineId=windows, PatchGroup="ad")

    mappings = ssm.describe_patch_groups()["Mappings"]
    assert {(m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in mappings} == {
        ("web", linux),
        ("web", windows),
        ("db", linux),
        ("ad", windows),
    }
    web_linux = next(
        m for m in mappings if m["PatchGroup"] == "web" and m["BaselineIdentity"]["BaselineId"] == linux
    )
    assert web_linux["BaselineIdentity"] == {
        "BaselineId": linux,
        "BaselineName": "tagpatch-linux",
        "OperatingSystem": "AMAZON_LINUX_2",
        "BaselineDescription": "Linux baseline",
        "DefaultBaseline": False,
    }

    prefixed = ssm.describe_patch_groups(Filters=[{"Key": "NAME_PREFIX", "Values": ["w"]}])["Mappings"]
    assert {m["PatchGroup"] for m in prefixed} == {"web"}
    by_os = ssm.describe_patch_groups(Filters=[{"Key": "OPERATING_SYSTEM", "Values": ["WINDOWS"]}])[
        "Mappings"
    ]
    assert {m["PatchGroup"] for m in by_os} == {"web", "ad"}

    pages = list(ssm.get_paginator("describe_patch_groups").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["Mappings"]) for p in pages] == [3, 1]

    other_linux = ssm.create_patch_baseline(Name="other-linux", OperatingSystem="AMAZON_LINUX_2")[
        "BaselineId"
    ]
    with pytest.raises(ClientError) as err:
        ssm.register_patch_baseline_for_patch_group(BaselineId=other_linux, PatchGroup="web")
    assert _code(err) == "AlreadyExistsException"
    ssm.deregister_patch_baseline_for_patch_group(BaselineId=linux, PatchGroup="web")
    assert {
        (m["PatchGroup"], m["BaselineIdentity"]["BaselineId"])
        for m in ssm.describe_patch_groups()["Mappings"]
    } == {("web", windows), ("db", linux), ("ad", windows)}
    ssm.register_patch_baseline_for_patch_group(BaselineId=other_linux, PatchGroup="web")  # free again


def test_get_patch_baseline_lists_its_patch_groups(ssm: Any) -> None:
    linux = ssm.create_patch_baseline(
        Name="tagpatch-linux", OperatingSystem="AMAZON_LINUX_2", Description="Linux baseline"
    )["BaselineId"]
    other = ssm.create_patch_baseline(Name="other", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    for group in ("web", "db"):
        ssm.register_patch_baseline_for_patch_group(BaselineId=linux, PatchGroup=group)
    ssm.register_patch_baseline_for_patch_group(BaselineId=other, PatchGroup="ad")

    got = ssm.get_patch_baseline(BaselineId=linux)
    assert (got["BaselineId"], got["Name"], got["OperatingSystem"], got["Description"]) == (
        linux,
        "tagpatch-linux",
        "AMAZON_LINUX_2",
        "Linux baseline",
    )
    assert got["PatchGroups"] == ["db", "web"]  # its own groups only, not "ad"
    arn = f"arn:aws:ssm:{REGION}:123456789012:patchbaseline/{linux}"
    assert ssm.get_patch_baseline(BaselineId=arn)["PatchGroups"] == ["db", "web"]  # by ARN too
    ssm.deregister_patch_baseline_for_patch_group(BaselineId=linux, PatchGroup="web")
    assert ssm.get_patch_baseline(BaselineId=linux)["PatchGroups"] == ["db"]
    assert ssm.get_patch_baseline(BaselineId=other)["PatchGroups"] == ["ad"]
    unused = ssm.create_patch_baseline(Name="unused", OperatingSystem="WINDOWS")["BaselineId"]
    assert ssm.get_patch_baseline(BaselineId=unused)["PatchGroups"] == []
    with pytest.raises(ClientError) as err:
        ssm.get_patch_baseline(BaselineId="pb-0123456789abcdef0")
    assert _code(err) == "DoesNotExistException"


def test_the_groups_per_baseline_quota_is_25_by_default_and_can_be_set(ssm: Any) -> None:
    baseline = ssm.create_patch_baseline(Name="base", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    for n in range(25):
        ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup=f"g{n:02d}")
    with pytest.raises(ssm.exceptions.ResourceLimitExceededException) as err:
        ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup="g25")
    _refused(err, f"Patch baseline {baseline} already has 25 patch groups", 25)
    # the refusal registered nothing
    assert len(ssm.get_patch_baseline(BaselineId=baseline)["PatchGroups"]) == 25
    mapped = {m["PatchGroup"] for m in ssm.describe_patch_groups(MaxResults=100)["Mappings"]}
    assert "g25" not in mapped and len(mapped) == 25
    # the quota is per baseline, and deregistering a group frees its place
    other = ssm.create_patch_baseline(Name="other", OperatingSystem="WINDOWS")["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=other, PatchGroup="g25")
    ssm.deregister_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup="g00")
    ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup="g26")
    # set lower, it holds for the next registration
    fake_ssm.set_groups_per_baseline_quota(1)
    with pytest.raises(ClientError) as err:
        ssm.register_patch_baseline_for_patch_group(BaselineId=other, PatchGroup="g27")
    _refused(err, f"Patch baseline {other} already has 1 patch groups", 1)
    fake_ssm.set_groups_per_baseline_quota(2)
    ssm.register_patch_baseline_for_patch_group(BaselineId=other, PatchGroup="g27")
    assert ssm.get_patch_baseline(BaselineId=other)["PatchGroups"] == ["g25", "g27"]


# ---------------------------------------------------------------------------- faults and call log


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


def test_throttling_is_retried_by_botocore(aws: None, no_backoff: None) -> None:
    client = boto3.client("ssm", config=Config(retries={"mode": "standard", "max_attempts": 3}))
    seed_instance_patch_state(make_instance_patch_state(_instance(1), "web", missing=1))
    inject_faults("DescribePatchGroupState", ["ThrottlingException", "ThrottlingException"])
    result = client.describe_patch_group_state(PatchGroup="web")
    assert result["InstancesWithMissingPatches"] == 1
    assert result["ResponseMetadata"]["RetryAttempts"] == 2
    assert CALLS == ["DescribePatchGroupState"] * 3


def test_faults_beyond_max_attempts_surface_and_500_is_used_for_internal_errors(
    aws: None, no_backoff: None
) -> None:
    # botocore's retries["max_attempts"] counts retries; total_max_attempts counts every attempt.
    client = boto3.client("ssm", config=Config(retries={"mode": "standard", "total_max_attempts": 2}))
    inject_faults(
        "describe_maintenance_windows", ["InternalServerError", "InternalServerError", "ThrottlingException"]
    )
    with pytest.raises(ClientError) as err:
        client.describe_maintenance_windows()
    assert _code(err) == "InternalServerError"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    with pytest.raises(ClientError) as err:
        boto3.client(
            "ssm", config=Config(retries={"mode": "standard", "total_max_attempts": 1})
        ).describe_maintenance_windows()
    assert _code(err) == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert client.describe_maintenance_windows()["WindowIdentities"] == []
    assert CALLS == ["DescribeMaintenanceWindows"] * 4

    inject_faults("GetMaintenanceWindow", ["ThrottlingException"])
    fake_ssm.clear_faults()
    with pytest.raises(ClientError) as err:
        client.get_maintenance_window(WindowId=UNKNOWN_WINDOW)
    assert _code(err) == "DoesNotExistException"


def test_call_log_records_native_and_added_actions(ssm: Any) -> None:
    window_id = _window(ssm)
    ssm.update_maintenance_window(WindowId=window_id, Duration=4)
    ssm.get_maintenance_window(WindowId=window_id)
    ssm.put_parameter(Name="/tagpatch/x", Value="1", Type="String")
    assert CALLS == [
        "CreateMaintenanceWindow",
        "UpdateMaintenanceWindow",
        "GetMaintenanceWindow",
        "PutParameter",
    ]
    fake_ssm.reset_calls()
    assert CALLS == []


def test_install_is_idempotent(ssm: Any) -> None:
    from moto.ssm.responses import SimpleSystemManagerResponse

    before = dict(vars(SimpleSystemManagerResponse))
    fake_ssm.install()
    fake_ssm.install()
    assert dict(vars(SimpleSystemManagerResponse)) == before
    _window(ssm)
    assert CALLS == ["CreateMaintenanceWindow"]  # recorded once, not once per install


def test_works_under_threaded_moto_server(no_backoff: None) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "ssm",
            endpoint_url=f"http://{host}:{port}",
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )
        window_id = _window(client, name="server-window")
        client.update_maintenance_window(WindowId=window_id, Schedule="rate(2 days)")
        assert client.get_maintenance_window(WindowId=window_id)["Schedule"] == "rate(2 days)"
        seed_instance_patch_state(make_instance_patch_state(_instance(7), "server-group", missing=2))
        inject_faults("DescribeInstancePatchStatesForPatchGroup", ["ThrottlingException"])
        states = client.describe_instance_patch_states_for_patch_group(PatchGroup="server-group")
        assert [s["InstanceId"] for s in states["InstancePatchStates"]] == [_instance(7)]
        assert CALLS.count("DescribeInstancePatchStatesForPatchGroup") == 2
        with pytest.raises(ClientError) as err:
            client.get_maintenance_window_task(WindowId=window_id, WindowTaskId=UNKNOWN_UUID)
        assert _code(err) == "DoesNotExistException"
        fake_ssm.set_target_quota(1)  # the per-window quotas answer over HTTP as SSM does
        _target(client, window_id)
        with pytest.raises(client.exceptions.ResourceLimitExceededException) as limit:
            _target(client, window_id)
        _refused(limit, "Targets per maintenance window", 1)
        client.delete_maintenance_window(WindowId=window_id)
    finally:
        server.stop()
        fake_ssm.clear_patch_states()


def test_the_account_window_quota_is_enforced_with_ssms_error(ssm: Any) -> None:
    fake_ssm.set_window_quota(3)
    made = [_window(ssm, f"win{i}", ClientToken=f"token-{i}") for i in range(3)]
    assert _window(ssm, "win0", ClientToken="token-0") == made[0]  # an idempotent retry is no new window
    with pytest.raises(ssm.exceptions.ResourceLimitExceededException) as err:
        _window(ssm, "win3")
    error = err.value.response
    assert error["Error"]["Code"] == "ResourceLimitExceededException"
    assert "maximum allowed is 3" in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    ssm.delete_maintenance_window(WindowId=made[0])
    _window(ssm, "win3")  # deleting one frees its place


def test_the_window_quota_is_50_by_default(ssm: Any) -> None:
    for i in range(50):
        _window(ssm, f"win{i}")
    with pytest.raises(ClientError) as err:
        _window(ssm, "win50")
    assert _code(err) == "ResourceLimitExceededException"


# ---------------------------------------------------------------------------- per-window quotas


def _refused(err: pytest.ExceptionInfo[ClientError], limit: str, quota: int) -> None:
    """SSM's quota error: ResourceLimitExceededException, HTTP 400, a message naming the limit."""
    error = err.value.response
    assert error["Error"]["Code"] == "ResourceLimitExceededException"
    assert limit in error["Error"]["Message"]
    assert f"maximum allowed is {quota}." in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def _task_ids(ssm: Any, window_id: str) -> list[str]:
    tasks = ssm.describe_maintenance_window_tasks(WindowId=window_id, MaxResults=100)["Tasks"]
    return [t["WindowTaskId"] for t in tasks]


def _target_ids(ssm: Any, window_id: str) -> list[str]:
    targets = ssm.describe_maintenance_window_targets(WindowId=window_id, MaxResults=100)["Targets"]
    return [t["WindowTargetId"] for t in targets]


def test_the_tasks_per_window_quota_is_enforced_with_ssms_error(ssm: Any) -> None:
    fake_ssm.set_task_quota(3)
    window_id = _window(ssm)
    target_id = _target(ssm, window_id)
    made = [_task(ssm, window_id, target_id, Priority=i) for i in range(3)]  # the 3rd fits exactly
    with pytest.raises(ssm.exceptions.ResourceLimitExceededException) as err:
        _task(ssm, window_id, target_id, Priority=3)
    _refused(err, "Tasks per maintenance window", 3)
    assert _task_ids(ssm, window_id) == made  # the refusal left nothing behind
    other = _window(ssm, "patch-db")  # the quota is per window
    _task(ssm, other, _target(ssm, other))
    ssm.deregister_task_from_maintenance_window(WindowId=window_id, WindowTaskId=made[0])
    replacement = _task(ssm, window_id, target_id, Priority=3)  # deregistering frees a place
    assert _task_ids(ssm, window_id) == [*made[1:], replacement]


def test_the_targets_per_window_quota_is_enforced_with_ssms_error(ssm: Any) -> None:
    fake_ssm.set_target_quota(3)
    window_id = _window(ssm)
    made = [_target(ssm, window_id, owner=f"team-{i}") for i in range(3)]
    with pytest.raises(ssm.exceptions.ResourceLimitExceededException) as err:
        _target(ssm, window_id, owner="team-3")
    _refused(err, "Targets per maintenance window", 3)
    assert _target_ids(ssm, window_id) == made
    other = _window(ssm, "patch-db")
    _target(ssm, other)
    ssm.deregister_target_from_maintenance_window(WindowId=window_id, WindowTargetId=made[1])
    replacement = _target(ssm, window_id, owner="team-3")
    assert _target_ids(ssm, window_id) == [made[0], made[2], replacement]


def test_the_per_window_quotas_default_to_20_tasks_and_100_targets(ssm: Any) -> None:
    window_id = _window(ssm)
    targets = [_target(ssm, window_id, owner=f"team-{i}") for i in range(100)]
    with pytest.raises(ClientError) as err:
        _target(ssm, window_id, owner="team-100")
    _refused(err, "Targets per maintenance window", 100)
    tasks = [_task(ssm, window_id, targets[i], Priority=i) for i in range(20)]
    with pytest.raises(ClientError) as err:
        _task(ssm, window_id, targets[20], Priority=20)
    _refused(err, "Tasks per maintenance window", 20)
    # Below the quotas moto's own behaviour is unchanged: every registration is listed as sent
    described = ssm.describe_maintenance_window_targets(WindowId=window_id, MaxResults=100)["Targets"]
    assert [(t["WindowTargetId"], t["OwnerInformation"]) for t in described] == [
        (target_id, f"team-{i}") for i, target_id in enumerate(targets)
    ]
    described_tasks = ssm.describe_maintenance_window_tasks(WindowId=window_id, MaxResults=100)["Tasks"]
    assert [(t["WindowTaskId"], t["Priority"], t["Targets"]) for t in described_tasks] == [
        (task_id, i, [{"Key": "WindowTargetIds", "Values": [targets[i]]}]) for i, task_id in enumerate(tasks)
    ]


def _window_targets(ssm: Any, window_id: str, count: int) -> list[dict[str, Any]]:
    ids = [_target(ssm, window_id, owner=f"team-{i}") for i in range(count)]
    return [{"Key": "WindowTargetIds", "Values": ids}]


def test_the_targets_per_task_quota_holds_at_register_and_update(ssm: Any) -> None:
    window_id = _window(ssm)
    ten = _window_targets(ssm, window_id, 10)
    eleven = [{"Key": "WindowTargetIds", "Values": [*ten[0]["Values"], _target(ssm, window_id)]}]
    task_id = _task(ssm, window_id, "unused", Targets=ten)  # 10 by default: the 10th fits
    with pytest.raises(ssm.exceptions.ResourceLimitExceededException) as err:
        _task(ssm, window_id, "unused", Targets=eleven)
    _refused(err, "Targets per task", 10)
    assert _task_ids(ssm, window_id) == [task_id]
    with pytest.raises(ssm.exceptions.ResourceLimitExceededException) as err:
        ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Targets=eleven)
    _refused(err, "Targets per task", 10)
    got = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
    assert got["Targets"] == ten  # the refused update changed nothing
    # Targets are counted across entries, whatever their key
    split = [
        {"Key": "WindowTargetIds", "Values": ten[0]["Values"][:5]},
        {"Key": "InstanceIds", "Values": [_instance(n) for n in range(6)]},
    ]
    with pytest.raises(ClientError) as err:
        _task(ssm, window_id, "unused", Targets=split)
    _refused(err, "Targets per task", 10)
    # Dropping a target frees a place for another one
    nine = [{"Key": "WindowTargetIds", "Values": ten[0]["Values"][:9]}]
    ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Targets=nine)
    other_ten = [{"Key": "WindowTargetIds", "Values": [*nine[0]["Values"], eleven[0]["Values"][10]]}]
    out = ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Targets=other_ten)
    assert out["Targets"] == other_ten


def test_the_targets_per_task_quota_can_be_set(ssm: Any) -> None:
    fake_ssm.set_targets_per_task_quota(2)
    window_id = _window(ssm)
    two = _window_targets(ssm, window_id, 2)
    task_id = _task(ssm, window_id, "unused", Targets=two)
    three = [{"Key": "WindowTargetIds", "Values": [*two[0]["Values"], _target(ssm, window_id)]}]
    with pytest.raises(ClientError) as err:
        ssm.update_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id, Targets=three)
    _refused(err, "Targets per task", 2)


def test_reset_restores_the_default_quotas(ssm: Any) -> None:
    fake_ssm.set_window_quota(1)
    fake_ssm.set_task_quota(1)
    fake_ssm.set_target_quota(1)
    fake_ssm.set_targets_per_task_quota(1)
    fake_ssm.set_groups_per_baseline_quota(1)
    fake_ssm.reset()
    window_id = _window(ssm)
    _window(ssm, "patch-db")
    targets = _window_targets(ssm, window_id, 2)
    _task(ssm, window_id, "unused", Targets=targets)
    _task(ssm, window_id, "unused", Targets=targets)
    baseline = ssm.create_patch_baseline(Name="base", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    for group in ("web", "db"):
        ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup=group)
