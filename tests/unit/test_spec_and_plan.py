"""Settings -> desired window (spec), and desired vs actual -> plan, with no AWS at all."""

from typing import Any

from emulator.scenarios.settings import BUCKET, NOTIFY_ROLE, STACK, TOPIC, WINDOW_ROLE
from tagpatch import naming
from tagpatch.reconciler.plan import plan_target, plan_task, plan_window
from tagpatch.reconciler.spec import GroupSpec, WindowBundle, WindowSpec, build_spec
from tests.support.settings import default_settings

CAPACITY = 20  # SSM's 20 tasks per window (and 100 targets): groups per shared window


def spec_for(group: str = "web", **override: Any) -> GroupSpec:
    return build_spec(group, default_settings(**override), tag_key="PatchGroup", stack_name=STACK)


def window_of(bundle: WindowBundle, sibling: int = 0) -> WindowSpec:
    """The ``sibling``-th shared window of the bundle's key, as the reconciler makes it."""
    return bundle.key.window(STACK, sibling, CAPACITY)


def as_reported(spec: GroupSpec, window_id: str = "mw-0123456789abcdef0") -> dict[str, Any]:
    return {**window_of(spec.install).expected(), "WindowId": window_id}


def test_every_seed_field_reaches_the_requests() -> None:
    spec = spec_for(
        scheduleTimezone="Europe/Berlin",
        scheduleOffset=2,
        maxConcurrency="2",
        maxErrors="0",
        operation="Scan",
        rebootOption="NoReboot",
        comment="Patch Tuesday",
        timeoutSeconds=7200,
        notificationEvents=["Failed", "TimedOut"],
        notificationType="Command",
    )
    window = window_of(spec.install).create_params("token")
    key_id = spec.install.key.key_id(STACK)
    assert window["Name"] == f"TagPatch-install-{key_id}-0"
    assert len(key_id) == 10 and int(key_id, 16) >= 0
    assert (window["Schedule"], window["ScheduleTimezone"], window["ScheduleOffset"]) == (
        "cron(0 3 ? * SUN *)",
        "Europe/Berlin",
        2,
    )
    assert (window["Duration"], window["Cutoff"], window["AllowUnassociatedTargets"]) == (4, 1, False)
    assert window["Tags"] == [  # a shared window: no group's tag, its key and sibling instead
        {"Key": "tagpatch:stack", "Value": STACK},
        {"Key": "tagpatch:window", "Value": "install"},
        {"Key": "tagpatch:key", "Value": key_id},
        {"Key": "tagpatch:sibling", "Value": "0"},
    ]
    target = spec.install.target.register_params("mw-0123456789abcdef0", "token")
    assert target["Name"] == "TagPatch-web-target"
    assert target["Targets"] == [{"Key": "tag:PatchGroup", "Values": ["web"]}]
    assert target["OwnerInformation"] == "TagPatch"
    task = spec.install.task.register_params("mw-0123456789abcdef0", "target-id", "token")
    assert task["TaskArn"] == "AWS-RunPatchBaseline"
    assert task["Name"] == "TagPatch-web-patch"
    assert task["Targets"] == [{"Key": "WindowTargetIds", "Values": ["target-id"]}]
    assert (task["Priority"], task["MaxConcurrency"], task["MaxErrors"]) == (1, "2", "0")
    assert task["ServiceRoleArn"] == WINDOW_ROLE
    run = task["TaskInvocationParameters"]["RunCommand"]
    assert run["Parameters"] == {"Operation": ["Scan"], "RebootOption": ["NoReboot"]}
    assert (run["Comment"], run["TimeoutSeconds"]) == ("Patch Tuesday", 7200)
    assert (run["OutputS3BucketName"], run["OutputS3KeyPrefix"]) == (BUCKET, "patch-output/web")
    assert run["NotificationConfig"] == {
        "NotificationArn": TOPIC,
        "NotificationEvents": ["Failed", "TimedOut"],
        "NotificationType": "Command",
    }
    assert run["ServiceRoleArn"] == NOTIFY_ROLE


def test_scan_schedule_adds_a_scan_only_window() -> None:
    spec = spec_for(scanSchedule="cron(0 12 ? * * *)")
    assert spec.scan is not None
    key_id = spec.scan.key.key_id(STACK)
    assert key_id != spec.install.key.key_id(STACK)
    assert window_of(spec.scan, 1).name == f"TagPatch-scan-{key_id}-1"
    assert (spec.scan.target.name, spec.scan.task.name) == ("TagPatch-web-target-scan", "TagPatch-web-scan")
    assert spec.scan.task.run_command["Parameters"] == {"Operation": ["Scan"], "RebootOption": ["NoReboot"]}
    assert window_of(spec.scan).schedule == "cron(0 12 ? * * *)"
    assert spec_for().scan is None


def test_groups_share_a_window_key_exactly_when_their_window_settings_are_equal() -> None:
    key = spec_for().install.key
    # task-level settings and the group itself do not split windows
    for group, override in (
        ("db", {}),
        ("web", {"maxConcurrency": "1", "comment": "x", "description": "mine", "priority": 3}),
        ("web", {"operation": "Scan", "rebootOption": "NoReboot", "timeoutSeconds": 60}),
    ):
        assert spec_for(group, **override).install.key == key, (group, override)
    # every window-level setting does
    for override in (
        {"schedule": "cron(0 4 ? * SUN *)"},
        {"scheduleTimezone": "Europe/Berlin"},
        {"scheduleOffset": 2, "schedule": "cron(0 3 ? * TUE#2 *)"},
        {"duration": 5},
        {"cutoff": 2},
        {"enabled": False},
    ):
        other = spec_for(**override).install.key
        assert other != key and other.key_id(STACK) != key.key_id(STACK), override
    # a stack's key ids are its own
    assert key.key_id("another-stack") != key.key_id(STACK)


def test_the_description_setting_goes_to_the_groups_task_not_the_shared_window() -> None:
    spec = spec_for(description="Web servers, patched on Sundays")
    assert spec.install.task.description == "Web servers, patched on Sundays"
    assert "Web servers" not in window_of(spec.install).description
    assert spec_for().install.task.description == "AWS-RunPatchBaseline Install for web"


def test_fingerprint_follows_every_setting() -> None:
    base = spec_for().fingerprint
    assert spec_for().fingerprint == base
    for override in (
        {"duration": 5},
        {"comment": "x"},
        {"maxErrors": "1"},
        {"scanSchedule": "rate(1 day)"},
        {"patchBaselineId": "pb-0123456789abcdef0"},
        {"enabled": False},
    ):
        assert spec_for(**override).fingerprint != base, override
    assert spec_for("db").fingerprint != base


def test_group_tag_value_falls_back_to_the_slug_when_ssm_would_refuse_it() -> None:
    # The tagpatch:group tag is only read now, on an older TagPatch's window per group (migration)
    assert naming.group_tag_value("web prod") == "web prod"
    assert naming.group_tag_value("web#prod").startswith("web-prod-")
    # and a shared window carries no group's tag at all, whatever the group's name
    assert "tagpatch:group" not in dict(window_of(spec_for("web#prod").install).tags)


def test_plan_creates_what_is_missing() -> None:
    spec = spec_for()
    assert [a.kind for a in plan_window(window_of(spec.install), "install", [], None).actions] == [
        "create_window"
    ]
    assert [a.kind for a in plan_target(spec.install.target, "install", []).actions] == ["register_target"]
    assert [a.kind for a in plan_task(spec.install.task, "install", [], None).actions] == ["register_task"]


def test_plan_is_empty_when_converged() -> None:
    spec = spec_for()
    window = plan_window(window_of(spec.install), "install", [as_reported(spec)], "mw-0123456789abcdef0")
    assert window.actions == () and window.keep_id == "mw-0123456789abcdef0"
    target = {**spec.install.target.expected(), "WindowTargetId": "t-1"}
    assert plan_target(spec.install.target, "install", [target]).actions == ()
    task = {**spec.install.task.expected("t-1"), "WindowTaskId": "k-1"}
    assert plan_task(spec.install.task, "install", [task], "t-1").actions == ()


def test_plan_updates_drift_and_names_the_fields() -> None:
    spec = spec_for()
    drifted = {**as_reported(spec), "Schedule": "cron(0 4 ? * MON *)", "Enabled": False}
    step = plan_window(window_of(spec.install), "install", [drifted], None)
    assert [(a.kind, a.drift) for a in step.actions] == [("update_window", ("Enabled", "Schedule"))]
    task = {**spec.install.task.expected("t-1"), "WindowTaskId": "k-1", "MaxConcurrency": "100%"}
    task["TaskInvocationParameters"] = {"RunCommand": {**spec.install.task.run_command, "TimeoutSeconds": 60}}
    step = plan_task(spec.install.task, "install", [task], "t-1")
    assert step.actions[0].drift == ("MaxConcurrency", "RunCommand.TimeoutSeconds")


def test_parameter_lists_compare_without_order() -> None:
    spec = spec_for(notificationEvents=["Failed", "TimedOut"])
    run = {**spec.install.task.run_command}
    run["NotificationConfig"] = {**run["NotificationConfig"], "NotificationEvents": ["TimedOut", "Failed"]}
    task = {
        **spec.install.task.expected("t-1"),
        "WindowTaskId": "k-1",
        "TaskInvocationParameters": {"RunCommand": run},
    }
    assert plan_task(spec.install.task, "install", [task], "t-1").actions == ()


def test_plan_removes_duplicates_and_foreign_parts_keeping_the_recorded_window() -> None:
    spec = spec_for()
    windows = [as_reported(spec, "mw-0000000000000000b"), as_reported(spec, "mw-0000000000000000a")]
    step = plan_window(window_of(spec.install), "install", windows, "mw-0000000000000000b")
    assert step.keep_id == "mw-0000000000000000b"
    assert [(a.kind, a.resource_id) for a in step.actions] == [("delete_window", "mw-0000000000000000a")]
    mine = {**spec.install.target.expected(), "WindowTargetId": "t-2"}
    targets = [mine, {**mine, "WindowTargetId": "t-3"}, {**mine, "Name": "by-hand", "WindowTargetId": "t-1"}]
    step = plan_target(spec.install.target, "install", targets)
    assert step.keep_id == "t-2"
    assert sorted((a.kind, a.resource_id) for a in step.actions) == [
        ("deregister_target", "t-1"),
        ("deregister_target", "t-3"),
    ]


def test_task_pointing_at_a_target_about_to_be_made_is_updated() -> None:
    spec = spec_for()
    task = {**spec.install.task.expected("old-target"), "WindowTaskId": "k-1"}
    step = plan_task(spec.install.task, "install", [task], None)
    assert [(a.kind, a.drift) for a in step.actions] == [("update_task", ("Targets",))]


def as_ssm_reports_it(spec: GroupSpec, **run_extra: Any) -> dict[str, Any]:
    """The task as GetMaintenanceWindowTask answers it on AWS: what was sent plus defaults for
    what was not (aws-cli's published get-maintenance-window-task sample: ``"Comment": ""``,
    unset document parameters as ``[""]``, ``"TaskParameters": {}``)."""
    run = spec.install.task.run_command
    reported = {
        **run,
        "Comment": run.get("Comment", ""),
        "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
        "Parameters": {**run["Parameters"], "SnapshotId": [""], "InstallOverrideList": [""]},
        **run_extra,
    }
    return {
        **spec.install.task.expected("t-1"),
        "WindowTaskId": "k-1",
        "TaskParameters": {},
        "TaskInvocationParameters": {"RunCommand": reported},
    }


def test_defaults_ssm_reports_for_unset_fields_are_not_drift() -> None:
    # Issue 12 #19: otherwise every scheduled run updates every task of a real account
    for spec in (spec_for(), spec_for(comment="")):
        step = plan_task(spec.install.task, "install", [as_ssm_reports_it(spec)], "t-1")
        assert step.actions == ()


def test_a_value_someone_else_set_in_a_field_tagpatch_manages_is_drift() -> None:
    spec = spec_for()
    reported = as_ssm_reports_it(spec)
    parameters = reported["TaskInvocationParameters"]["RunCommand"]["Parameters"]
    parameters["InstallOverrideList"] = ["s3://bucket/extra-patches.yaml"]
    step = plan_task(spec.install.task, "install", [reported], "t-1")
    assert [action.drift for action in step.actions] == [("RunCommand.Parameters",)]
    uncommented = spec_for(comment="")  # TagPatch sets no comment: one set in the console is drift
    reported = as_ssm_reports_it(uncommented, Comment="set in the console")
    step = plan_task(uncommented.install.task, "install", [reported], "t-1")
    assert [action.drift for action in step.actions] == [("RunCommand.Comment",)]


def test_a_target_and_task_named_by_naming_rule_1_are_renamed_not_made_again() -> None:
    spec = spec_for("web-2024061501")
    target = {
        **spec.install.target.expected(),
        "WindowTargetId": "t-1",
        "Name": "TagPatch-web-2024061501-target",
    }
    task = {
        **spec.install.task.expected("t-1"),
        "WindowTaskId": "k-1",
        "Name": "TagPatch-web-2024061501-patch",
    }
    # Without the legacy name (before the fix): not ours, deregistered and registered again
    assert [a.kind for a in plan_target(spec.install.target, "install", [target]).actions] == [
        "deregister_target",
        "register_target",
    ]
    step = plan_target(spec.install.target, "install", [target], "TagPatch-web-2024061501-target")
    assert step.keep_id == "t-1"
    assert [(a.kind, a.drift) for a in step.actions] == [("update_target", ("Name",))]
    step = plan_task(spec.install.task, "install", [task], "t-1", "TagPatch-web-2024061501-patch")
    assert step.keep_id == "k-1"
    assert [(a.kind, a.drift) for a in step.actions] == [("update_task", ("Name",))]
    # Both names present (a stopped attempt registered the new one): today's is kept
    current = {**target, "WindowTargetId": "t-0", "Name": spec.install.target.name}
    step = plan_target(spec.install.target, "install", [target, current], "TagPatch-web-2024061501-target")
    assert step.keep_id == "t-0"
    assert [(a.kind, a.resource_id) for a in step.actions] == [("deregister_target", "t-1")]
