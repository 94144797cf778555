"""The reconciler against moto (plus the shared SSM fake), driven through the handler with events/."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulator.scenarios.aws import World
from emulator.scenarios.settings import PREFIX, STACK
from tagpatch.adapters.groups import LeaseLost
from tagpatch.handlers.reconciler import InvalidEvent, handle

Loader = Callable[[str], Any]


@pytest.fixture
def world(aws: None) -> Iterator[World]:
    yield World()


def tag_event(
    load_event: Loader, group: str | None, instance_id: str = "i-0123456789abcdef0"
) -> dict[str, Any]:
    """The sample "Tag Change on Resource" event for one instance, with PatchGroup set or deleted."""
    event = copy.deepcopy(load_event("reconciler-tag-added.json"))
    event["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"]
    tags = {k: v for k, v in event["detail"]["tags"].items() if k != "PatchGroup"}
    if group is not None:
        tags["PatchGroup"] = group
    event["detail"]["tags"] = tags
    event["detail"]["changed-tag-keys"] = ["PatchGroup"]
    return event


def settings_event(load_event: Loader, name: str, operation: str = "Update") -> dict[str, Any]:
    event = copy.deepcopy(load_event("reconciler-settings-change.json"))
    event["detail"]["name"] = name
    event["detail"]["operation"] = operation
    return event


def assert_single_bundle(world: World, group: str = "web", role: str = "install") -> dict[str, Any]:
    """The shared window ``group``'s ``role`` is in, holding just its one target and one task (the
    group is alone in its window in these tests)."""
    window = world.window_of(group, role)
    targets = world.targets(window["WindowId"])
    tasks = world.tasks(window["WindowId"])
    assert len(targets) == 1, targets
    assert len(tasks) == 1, tasks
    assert tasks[0]["Targets"] == [{"Key": "WindowTargetIds", "Values": [targets[0]["WindowTargetId"]]}]
    return {"window": window, "target": targets[0], "task": tasks[0]}


# --- new group, converged group, duplicates ----------------------------------------------------


def test_new_group_gets_one_window_target_and_task_as_the_seed_guide_configures(
    world: World, load_event: Loader
) -> None:
    # Given an instance tagged PatchGroup=web
    world.launch("web")
    # When its tag event arrives
    result = handle(tag_event(load_event, "web"), world.reconciler)
    # Then the group is converged with one shared window holding its one target and one task
    assert result["groups"][0]["status"] == "converged"
    made = assert_single_bundle(world)
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    window, target, task = made["window"], made["target"], made["task"]
    assert (window["Schedule"], window["ScheduleTimezone"], window["Duration"], window["Cutoff"]) == (
        "cron(0 3 ? * SUN *)",
        "UTC",
        4,
        1,
    )
    assert window["AllowUnassociatedTargets"] is False
    key_id = world.shared_window_name().split("-")[2]
    assert world.window_tags(window["WindowId"]) == {  # a shared window: no group's tag
        "tagpatch:stack": STACK,
        "tagpatch:window": "install",
        "tagpatch:key": key_id,
        "tagpatch:sibling": "0",
    }
    assert (target["Name"], task["Name"]) == ("TagPatch-web-target", "TagPatch-web-patch")
    assert target["Targets"] == [{"Key": "tag:PatchGroup", "Values": ["web"]}]
    assert target["OwnerInformation"] == "TagPatch"
    assert (task["TaskArn"], task["TaskType"], task["MaxConcurrency"], task["MaxErrors"]) == (
        "AWS-RunPatchBaseline",
        "RUN_COMMAND",
        "10%",
        "10%",
    )
    run = task["TaskInvocationParameters"]["RunCommand"]
    set_by_tagpatch = {k: v for k, v in run["Parameters"].items() if v != [""]}  # [""]: SSM's default echo
    assert set_by_tagpatch == {"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]}
    assert run["OutputS3KeyPrefix"] == "patch-output/web"
    record = world.record("web")
    assert record["status"] == "converged"
    assert record["windows"]["install"] == {
        "window_id": window["WindowId"],
        "target_id": target["WindowTargetId"],
        "task_id": task["WindowTaskId"],
        "place": f"{key_id}:0",
        "schedule": "cron(0 3 ? * SUN *)",
        "timezone": "UTC",
        "offset": "0",
        "enabled": "true",
    }
    placement = world.placement()
    assert (placement["p:install:web"], placement[f"c:{key_id}:0"], placement["windows"]) == (
        f"{key_id}:0",
        1,
        1,
    )
    assert placement[f"w:{key_id}:0"] == window["WindowId"]


def test_call_budget_new_converged_and_drifted(world: World, load_event: Loader) -> None:
    world.launch("web")
    event = tag_event(load_event, "web")
    # new group
    handle(event, world.reconciler)
    new = (
        world.log.count("ssm", writes=False),
        world.log.count("ssm", writes=True),
        world.log.count("dynamodb"),
    )
    # The group's settings; the window's name listed under the window's making lease (one left by
    # a crashed maker is adopted). A window made by this very reconcile is empty and as its spec
    # says, so nothing of it is read back.
    assert world.log.ops("ssm") == {
        "GetParameter": 1,
        "DescribeMaintenanceWindows": 1,
        "CreateMaintenanceWindow": 1,
        "RegisterTargetWithMaintenanceWindow": 1,
        "RegisterTaskWithMaintenanceWindow": 1,
    }
    assert new == (2, 3, 8)
    # GetItem: the record (fast-path check), the placement item; UpdateItem: lease, slug claim,
    # the place, the window's making lease, the window's id recorded, save (and release)
    assert world.log.ops("dynamodb") == {"GetItem": 2, "UpdateItem": 6}
    # converged group, tag event: no SSM write, no window read at all
    world.log.reset()
    handle(event, world.reconciler)
    assert world.log.ops("ssm") == {"GetParameter": 1}
    assert world.log.ops("dynamodb") == {"GetItem": 1}
    # converged group, full verification (scheduled run): reads only; the shared window's id comes
    # from the placement item (no listing by name: only its making lease's holder makes it)
    world.log.reset()
    handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert world.log.count("ssm", writes=True) == 0
    assert world.log.ops("ssm") == {
        "GetParametersByPath": 1,
        "GetMaintenanceWindow": 1,
        "DescribeMaintenanceWindowTargets": 1,
        "DescribeMaintenanceWindowTasks": 1,
        "GetMaintenanceWindowTask": 1,
    }
    # Scan: every record; GetItem: the placement item, by the planner (windows left behind, start
    # collisions), by the message, and again after the window is listed (its cleanup); UpdateItem:
    # lease, save
    assert world.log.ops("dynamodb") == {"Scan": 1, "GetItem": 3, "UpdateItem": 2}
    # drifted group: the schedule was changed in the console
    window_id = world.window_of("web")["WindowId"]
    world.ssm.update_maintenance_window(WindowId=window_id, Schedule="cron(0 5 ? * MON *)")
    world.log.reset()
    handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert world.log.ops("ssm")["UpdateMaintenanceWindow"] == 1
    assert world.log.count("ssm", writes=True) == 1
    assert world.window_of("web")["Schedule"] == "cron(0 3 ? * SUN *)"


def test_same_event_twice_leaves_one_of_each(world: World, load_event: Loader) -> None:
    world.launch("web")
    event = tag_event(load_event, "web")
    handle(event, world.reconciler)
    second = handle(event, world.reconciler)
    assert second["groups"][0]["status"] == "unchanged"
    assert len(world.windows()) == 1
    assert_single_bundle(world)


def test_burst_of_200_events_for_one_new_group_makes_exactly_one_window(
    world: World, load_event: Loader
) -> None:
    # Given 200 instances that joined "web" at once, each with its own reconciler (own Lambda container)
    ids = world.launch("web", count=50) * 4
    reconcilers = [world.make_reconciler() for _ in range(8)]
    events = [tag_event(load_event, "web", instance_id) for instance_id in ids]
    # When all 200 events are handled concurrently
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda pair: handle(pair[1], reconcilers[pair[0] % 8]), enumerate(events)))
    # Then exactly one window, target and task exist, and every event was accounted for
    statuses = [r["groups"][0]["status"] for r in results]
    assert set(statuses) <= {"converged", "unchanged", "deferred"}
    assert statuses.count("converged") >= 1
    assert len(world.windows()) == 1
    assert_single_bundle(world)
    assert world.log.ops("ssm")["CreateMaintenanceWindow"] == 1
    record = world.record("web")
    assert "lock_owner" not in record and "pending" not in record


# --- half-made states and drift ---------------------------------------------------------------


def converge(world: World, load_event: Loader) -> dict[str, Any]:
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    return assert_single_bundle(world)


def scheduled(world: World, load_event: Loader) -> dict[str, Any]:
    world.log.reset()
    return handle(load_event("reconciler-scheduled.json"), world.reconciler)


def test_missing_target_is_registered_and_the_task_repointed(world: World, load_event: Loader) -> None:
    made = converge(world, load_event)
    world.ssm.deregister_target_from_maintenance_window(
        WindowId=made["window"]["WindowId"], WindowTargetId=made["target"]["WindowTargetId"], Safe=False
    )
    scheduled(world, load_event)
    after = assert_single_bundle(world)
    assert after["window"]["WindowId"] == made["window"]["WindowId"]
    assert world.log.count("ssm", writes=True) == 2  # register target, update task's target


def test_task_deleted_by_hand_is_registered_again(world: World, load_event: Loader) -> None:
    made = converge(world, load_event)
    world.ssm.deregister_task_from_maintenance_window(
        WindowId=made["window"]["WindowId"], WindowTaskId=made["task"]["WindowTaskId"]
    )
    scheduled(world, load_event)
    assert_single_bundle(world)
    assert world.log.ops("ssm")["RegisterTaskWithMaintenanceWindow"] == 1
    assert world.log.count("ssm", writes=True) == 1


def test_window_deleted_by_hand_is_made_again(world: World, load_event: Loader) -> None:
    made = converge(world, load_event)
    world.ssm.delete_maintenance_window(WindowId=made["window"]["WindowId"])
    scheduled(world, load_event)
    after = assert_single_bundle(world)
    assert after["window"]["WindowId"] != made["window"]["WindowId"]
    assert world.record("web")["windows"]["install"]["window_id"] == after["window"]["WindowId"]
    place = world.record("web")["windows"]["install"]["place"]
    assert world.placement()[f"w:{place}"] == after["window"]["WindowId"]
    assert after["window"]["Name"] == world.shared_window_name()


def forget_window_id(world: World, place: str, lease_expired_at: int) -> None:
    """The placement item as a maker that died after CreateMaintenanceWindow leaves it: the window's
    id never recorded, its making lease held until ``lease_expired_at``."""
    world.ddb.update_item(
        TableName="tagpatch-groups",
        Key={"group": {"S": "#tagpatch:placement"}},
        UpdateExpression="REMOVE #w SET #l = :expires, #lo = :owner",
        ExpressionAttributeNames={"#w": f"w:{place}", "#l": f"l:{place}", "#lo": f"lo:{place}"},
        ExpressionAttributeValues={":expires": {"N": str(lease_expired_at)}, ":owner": {"S": "dead"}},
    )


def test_crash_after_window_creation_adopts_it_without_duplicate(world: World, load_event: Loader) -> None:
    # Given a shared window this stack made whose id never reached the placement item nor the
    # group's record (the Lambda died before recording either), its making lease since expired
    made = converge(world, load_event)
    place = world.record("web")["windows"]["install"]["place"]
    forget_window_id(world, place, int(world.reconciler.clock()) - 1)
    world.ddb.delete_item(TableName="tagpatch-groups", Key={"group": {"S": "web"}})
    world.ssm.deregister_task_from_maintenance_window(
        WindowId=made["window"]["WindowId"], WindowTaskId=made["task"]["WindowTaskId"]
    )
    # When the next event arrives
    world.log.reset()
    handle(tag_event(load_event, "web"), world.reconciler)
    # Then the window is found by its name and tags and adopted, not duplicated
    assert world.log.ops("ssm")["CreateMaintenanceWindow"] == 0
    assert len(world.windows()) == 1
    assert assert_single_bundle(world)["window"]["WindowId"] == made["window"]["WindowId"]
    placement = world.placement()
    assert placement[f"w:{place}"] == made["window"]["WindowId"]
    assert f"l:{place}" not in placement and f"lo:{place}" not in placement


def test_duplicate_windows_left_by_a_crashed_maker_are_removed_when_the_window_is_made(
    world: World, load_event: Loader
) -> None:
    # Given two windows with the shared window's name and tags (two makers died after
    # CreateMaintenanceWindow), neither recorded, the making lease expired
    made = converge(world, load_event)
    place = world.record("web")["windows"]["install"]["place"]
    tags = world.window_tags(made["window"]["WindowId"])
    spare = world.plant_window(world.shared_window_name(), tags)
    forget_window_id(world, place, int(world.reconciler.clock()) - 1)
    # When the scheduled run verifies the group
    scheduled(world, load_event)
    # Then one of them is kept (the lowest id) and the other deleted, never both kept
    [kept] = world.windows()
    assert kept["WindowId"] == min(made["window"]["WindowId"], spare)
    assert world.log.ops("ssm")["DeleteMaintenanceWindow"] == 1
    assert world.placement()[f"w:{place}"] == kept["WindowId"]
    assert_single_bundle(world)


def test_foreign_tasks_and_targets_in_a_shared_window_go_in_the_scheduled_verify_only(
    world: World, load_event: Loader
) -> None:
    # Given a task and a target registered by hand in the group's shared window
    made = converge(world, load_event)
    window_id = made["window"]["WindowId"]
    by_hand = world.ssm.register_target_with_maintenance_window(
        WindowId=window_id,
        ResourceType="INSTANCE",
        Targets=[{"Key": "tag:Role", "Values": ["db"]}],
        Name="by-hand-target",
    )["WindowTargetId"]
    world.ssm.register_task_with_maintenance_window(
        WindowId=window_id,
        TaskArn="AWS-RunShellScript",
        TaskType="RUN_COMMAND",
        Name="by-hand",
        Targets=[{"Key": "WindowTargetIds", "Values": [by_hand]}],
        MaxConcurrency="1",
        MaxErrors="0",
    )
    # When a settings change verifies the group, they are left alone (only its own are read)
    name = put_override(world, "web", {"maxConcurrency": "2"})
    world.log.reset()
    handle(settings_event(load_event, name), world.reconciler)
    assert world.log.ops("ssm")["UpdateMaintenanceWindowTask"] == 1
    assert world.log.count("ssm", writes=True) == 1
    assert len(world.tasks(window_id)) == 2 and len(world.targets(window_id)) == 2
    # Then the scheduled verify takes out what belongs to no group placed in the window
    scheduled(world, load_event)
    # the window's targets and tasks listed for the cleanup, and again for the group's own after
    # the cleanup's writes (a write forgets what was read of its window)
    assert world.log.ops("ssm") == {
        "GetParametersByPath": 1,
        "GetMaintenanceWindow": 1,
        "DescribeMaintenanceWindowTargets": 2,
        "DescribeMaintenanceWindowTasks": 2,
        "DeregisterTaskFromMaintenanceWindow": 1,
        "DeregisterTargetFromMaintenanceWindow": 1,
        "GetMaintenanceWindowTask": 1,
    }
    assert world.log.count("ssm", writes=True) == 2
    after = assert_single_bundle(world)
    assert (after["target"]["Name"], after["task"]["Name"]) == ("TagPatch-web-target", "TagPatch-web-patch")


def test_window_of_another_owner_with_our_name_is_left_alone(world: World, load_event: Loader) -> None:
    foreign = world.ssm.create_maintenance_window(
        Name=world.shared_window_name(),
        Schedule="rate(1 day)",
        Duration=2,
        Cutoff=1,
        AllowUnassociatedTargets=True,
    )["WindowId"]
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    assert foreign in [w["WindowId"] for w in world.windows()]
    assert len(world.windows()) == 2
    assert world.ssm.get_maintenance_window(WindowId=foreign)["Schedule"] == "rate(1 day)"
    assert world.window_of("web")["WindowId"] != foreign
    assert world.targets(foreign) == []


def test_task_settings_changed_in_console_are_repaired(world: World, load_event: Loader) -> None:
    made = converge(world, load_event)
    world.ssm.update_maintenance_window_task(
        WindowId=made["window"]["WindowId"],
        WindowTaskId=made["task"]["WindowTaskId"],
        MaxConcurrency="100%",
        TaskInvocationParameters={
            "RunCommand": {"Parameters": {"Operation": ["Scan"]}, "TimeoutSeconds": 60}
        },
    )
    scheduled(world, load_event)
    task = assert_single_bundle(world)["task"]
    assert task["MaxConcurrency"] == "10%"
    assert task["TaskInvocationParameters"]["RunCommand"]["Parameters"]["Operation"] == ["Install"]
    assert world.log.ops("ssm")["UpdateMaintenanceWindowTask"] == 1


# --- odd tag values ---------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["web prod", "Ünïcödé", "日本語", "x" * 256, "a/b:c=d+e@f", "web#1"])
def test_odd_tag_values_map_to_valid_windows(world: World, load_event: Loader, group: str) -> None:
    world.launch(group)
    result = handle(tag_event(load_event, group), world.reconciler)
    assert result["groups"][0]["status"] == "converged"
    [window] = world.windows()
    targets = world.targets(window["WindowId"])
    assert targets[0]["Targets"] == [{"Key": "tag:PatchGroup", "Values": [group]}]


def test_empty_tag_value_is_refused_with_a_reason_and_nothing_made(world: World, load_event: Loader) -> None:
    result = handle(tag_event(load_event, ""), world.reconciler)
    assert result["groups"][0]["status"] == "skipped"
    assert "empty PatchGroup value" in result["groups"][0]["reasons"][0]
    assert world.windows() == []


# --- overrides --------------------------------------------------------------------------------


def put_override(world: World, group_slug: str, value: Any) -> str:
    name = f"{PREFIX}{group_slug}"
    text = value if isinstance(value, str) else json.dumps(value)
    world.ssm.put_parameter(Name=name, Value=text, Type="String", Overwrite=True)
    return name


def test_valid_override_changes_the_window(world: World, load_event: Loader) -> None:
    before = converge(world, load_event)
    override = {
        "schedule": "cron(0 2 ? * TUE#2 *)",
        "scheduleOffset": 2,
        "scheduleTimezone": "Europe/Berlin",
        "maxConcurrency": "2",
    }
    name = put_override(world, "web", override)
    result = handle(settings_event(load_event, name), world.reconciler)
    assert result["groups"][0]["status"] == "converged"
    # The group moved to the shared window of its new schedule; the old one, now empty, is gone
    made = assert_single_bundle(world)
    assert made["window"]["Name"] == world.shared_window_name(**override)
    assert (made["window"]["Schedule"], made["window"]["ScheduleOffset"]) == ("cron(0 2 ? * TUE#2 *)", 2)
    assert made["window"]["ScheduleTimezone"] == "Europe/Berlin"
    assert made["task"]["MaxConcurrency"] == "2"
    assert [w["WindowId"] for w in world.windows()] == [made["window"]["WindowId"]]
    assert made["window"]["WindowId"] != before["window"]["WindowId"]


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"duration": 25}, "duration"),
        ({"cutoff": 4}, "cutoff (4h) must be less than duration"),
        ({"schedule": "cron(0 3 * * * *)"}, "day-of-month"),
        ({"maxConcurrency": "0"}, "maxConcurrency"),
        ("not json", "override is not JSON"),
    ],
)
def test_invalid_override_is_refused_and_the_last_good_window_stays(
    world: World, load_event: Loader, override: Any, reason: str
) -> None:
    before = converge(world, load_event)
    name = put_override(world, "web", override)
    world.log.reset()
    result = handle(settings_event(load_event, name), world.reconciler)
    outcome = result["groups"][0]
    assert outcome["status"] == "refused"
    assert any(reason in r for r in outcome["reasons"])
    assert world.log.count("ssm", writes=True) == 0
    assert assert_single_bundle(world) == before
    record = world.record("web")
    assert record["status"] == "refused" and any(reason in r for r in record["reasons"])
    # and the scheduled run keeps refusing without touching the window
    scheduled(world, load_event)
    assert world.log.count("ssm", writes=True) == 0


def test_removing_the_override_returns_the_group_to_stack_defaults(world: World, load_event: Loader) -> None:
    converge(world, load_event)
    name = put_override(world, "web", {"duration": 6})
    handle(settings_event(load_event, name), world.reconciler)
    assert world.window_of("web")["Duration"] == 6
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name(duration=6)]
    world.ssm.delete_parameter(Name=name)
    handle(settings_event(load_event, name, "Delete"), world.reconciler)
    assert world.window_of("web")["Duration"] == 4
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    assert_single_bundle(world)


def test_settings_change_for_unknown_group_does_nothing(world: World, load_event: Loader) -> None:
    name = put_override(world, "nobody", {"duration": 6})
    assert handle(settings_event(load_event, name), world.reconciler)["groups"] == []
    assert world.windows() == []


def test_scan_window_is_added_and_removed_with_its_setting(world: World, load_event: Loader) -> None:
    converge(world, load_event)
    name = put_override(world, "web", {"scanSchedule": "cron(0 12 ? * * *)"})
    handle(settings_event(load_event, name), world.reconciler)
    scan = assert_single_bundle(world, "web", "scan")
    assert scan["window"]["Name"] == world.shared_window_name("scan", scanSchedule="cron(0 12 ? * * *)")
    assert (scan["target"]["Name"], scan["task"]["Name"]) == ("TagPatch-web-target-scan", "TagPatch-web-scan")
    assert_single_bundle(world, "web", "install")
    parameters = scan["task"]["TaskInvocationParameters"]["RunCommand"]["Parameters"]
    assert {k: v for k, v in parameters.items() if v != [""]} == {  # [""]: SSM's default echo
        "Operation": ["Scan"],
        "RebootOption": ["NoReboot"],
    }
    put_override(world, "web", {})
    handle(settings_event(load_event, name), world.reconciler)
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    assert set(world.record("web")["windows"]) == {"install"}
    assert "p:scan:web" not in world.placement()


def test_paused_group_window_is_disabled(world: World, load_event: Loader) -> None:
    put_override(world, "web", {"enabled": False})
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    window = world.window_of("web")
    assert window["Enabled"] is False
    assert window["Name"] == world.shared_window_name(enabled=False)  # not shared with enabled groups


def test_patch_baseline_is_registered_and_switched(world: World, load_event: Loader) -> None:
    ids = [
        world.ssm.create_patch_baseline(Name=f"base{i}", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
        for i in (1, 2)
    ]
    converge(world, load_event)
    name = put_override(world, "web", {"patchBaselineId": ids[0]})
    handle(settings_event(load_event, name), world.reconciler)
    groups = world.ssm.describe_patch_groups()["Mappings"]
    assert [(m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in groups] == [("web", ids[0])]
    put_override(world, "web", {"patchBaselineId": ids[1]})
    handle(settings_event(load_event, name), world.reconciler)
    groups = world.ssm.describe_patch_groups()["Mappings"]
    assert [(m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in groups] == [("web", ids[1])]


# --- schedule, membership ---------------------------------------------------------------------


def test_scheduled_run_backfills_groups_tagged_before_the_stack(world: World, load_event: Loader) -> None:
    world.launch("web", count=3)
    world.launch("db")
    world.launch(None)
    result = scheduled(world, load_event)
    assert sorted((g["group"], g["status"]) for g in result["groups"]) == [
        ("db", "converged"),
        ("web", "converged"),
    ]
    # one schedule: one shared window, with each group's target and task
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    for group in ("db", "web"):
        assert world.window_of(group)["Name"] == world.shared_window_name()
        assert world.group_task(group)["Targets"] == [
            {"Key": "WindowTargetIds", "Values": [world.group_target(group)["WindowTargetId"]]}
        ]
    assert world.record("web")["instance_count"] == 3


def test_group_whose_last_instance_left_is_reported_and_kept(world: World, load_event: Loader) -> None:
    converge(world, load_event)
    [instance] = [
        i["InstanceId"] for r in world.ec2.describe_instances()["Reservations"] for i in r["Instances"]
    ]
    world.ec2.delete_tags(Resources=[instance], Tags=[{"Key": "PatchGroup"}])
    assert handle(tag_event(load_event, None, instance), world.reconciler)["groups"] == []
    result = scheduled(world, load_event)
    assert [(g["group"], g["status"]) for g in result["groups"]] == [("web", "empty")]
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    assert_single_bundle(world)
    assert world.record("web")["empty_since"]
    # reported once, not at every run
    assert scheduled(world, load_event)["groups"] == []


def test_empty_group_window_is_deleted_when_the_parameter_says_so(aws: None, load_event: Loader) -> None:
    world = World(DELETE_EMPTY_GROUP_WINDOWS="true")
    converge(world, load_event)
    world.ec2.terminate_instances(
        InstanceIds=[
            i["InstanceId"] for r in world.ec2.describe_instances()["Reservations"] for i in r["Instances"]
        ]
    )
    result = scheduled(world, load_event)
    assert [(g["group"], g["status"]) for g in result["groups"]] == [("web", "deleted")]
    assert world.windows() == []
    placement = world.placement()  # its place, and the window's share of MaxWindows, are free
    assert placement["windows"] == 0 and "p:install:web" not in placement
    assert not [name for name in placement if name.startswith(("c:", "w:"))]


# --- the handler's edges ----------------------------------------------------------------------


def test_tag_change_of_other_keys_does_nothing(world: World, load_event: Loader) -> None:
    event = tag_event(load_event, "web")
    event["detail"]["changed-tag-keys"] = ["Name"]
    assert handle(event, world.reconciler)["groups"] == []
    assert world.log.calls == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.__setitem__("source", "aws.s3"),
        lambda e: e["detail"].pop("tags"),
        lambda e: e.__setitem__("detail-type", "Something else"),
    ],
)
def test_malformed_events_are_refused_so_they_reach_the_dlq(
    world: World, load_event: Loader, mutate: Callable[[dict[str, Any]], None]
) -> None:
    event = tag_event(load_event, "web")
    mutate(event)
    with pytest.raises(InvalidEvent):
        handle(event, world.reconciler)
    assert world.windows() == []


def test_on_demand_dry_run_plans_without_writing(world: World, load_event: Loader) -> None:
    world.launch("web")
    result = handle({"group": "web", "dryRun": True}, world.reconciler)
    assert result["groups"][0]["status"] == "planned"
    assert [a.split()[0] for a in result["groups"][0]["actions"]] == [
        "create_window",
        "register_target",
        "register_task",
    ]
    assert world.windows() == []
    assert world.log.count("ssm", writes=True) == 0 and world.log.count("dynamodb", writes=True) == 0


def test_on_demand_applies_and_refuses_bad_requests(world: World) -> None:
    world.launch("web")
    assert handle({"group": "web"}, world.reconciler)["groups"][0]["status"] == "converged"
    assert handle({}, world.reconciler)["ok"] is True
    refused = handle({"group": "web", "bogus": 1}, world.reconciler)
    assert refused["ok"] is False and "bogus" in refused["error"]
    assert handle({"dryRun": True}, world.reconciler) == {"ok": False, "error": "dryRun needs a group"}


def test_lambda_entry_point_builds_from_its_environment_and_emits_metrics(
    aws: None,
    load_event: Loader,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the deployed environment and nothing injected
    from tagpatch.adapters import clients
    from tagpatch.handlers import reconciler as entry

    world = World()
    world.launch("web")
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    clients.client.cache_clear()
    entry.default_reconciler.cache_clear()
    entry.default_queue.cache_clear()
    # When Lambda calls the handler
    result = entry.handler(tag_event(load_event, "web"), lambda_context)
    # Then the window exists and the run's metrics were printed as EMF
    assert result["groups"][0]["status"] == "converged"
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"GroupsConverged", "SsmWrites"} <= names
    entry.default_reconciler.cache_clear()
    entry.default_queue.cache_clear()
    clients.client.cache_clear()


def test_lambda_entry_point_fails_clearly_on_a_missing_setting(
    aws: None, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tagpatch.handlers import reconciler as entry
    from tagpatch.models.environment import ConfigError

    monkeypatch.delenv("GROUPS_TABLE_NAME", raising=False)
    entry.default_reconciler.cache_clear()
    with pytest.raises(ConfigError, match="is not set"):
        entry.handler({"group": "web"}, lambda_context)
    entry.default_reconciler.cache_clear()


# --- failures, reruns, leases -----------------------------------------------------------------


def test_failed_reconcile_records_the_reason_releases_the_lease_and_the_retry_converges(
    world: World, load_event: Loader
) -> None:
    from botocore.exceptions import ClientError

    from emulator import fake_ssm

    # Given SSM refuses the window once with an error botocore does not retry
    world.launch("web")
    fake_ssm.inject_faults("CreateMaintenanceWindow", ["ValidationException"])
    # When the event is handled, the error propagates (so Lambda retries, then dead-letters)
    with pytest.raises(ClientError, match="ValidationException"):
        handle(tag_event(load_event, "web"), world.reconciler)
    record = world.record("web")
    assert record["status"] == "failed" and "ValidationException" in record["reasons"][0]
    assert "lock_owner" not in record
    # Then Lambda's retry of the same event converges with one window
    assert handle(tag_event(load_event, "web"), world.reconciler)["groups"][0]["status"] == "converged"
    assert_single_bundle(world)


def test_throttling_is_retried_with_backoff_and_converges(world: World, load_event: Loader) -> None:
    from emulator import fake_ssm

    world.launch("web")
    fake_ssm.inject_faults(
        "RegisterTaskWithMaintenanceWindow", ["ThrottlingException", "InternalServerError"]
    )
    result = handle(tag_event(load_event, "web"), world.reconciler)
    assert result["groups"][0]["status"] == "converged"
    assert fake_ssm.CALLS.count("RegisterTaskWithMaintenanceWindow") == 3
    assert_single_bundle(world)


def test_a_rerun_requested_mid_reconcile_is_honoured_before_the_lease_is_released(
    world: World, load_event: Loader
) -> None:
    # Given another invocation asks for a rerun while this one creates the window
    world.launch("web")
    gateway = world.reconciler.ssm
    original = gateway.create_window

    def create_and_get_interrupted(params: dict[str, Any]) -> str:
        assert world.reconciler.groups.mark_pending("web", int(world.reconciler.clock()))
        return original(params)

    gateway.create_window = create_and_get_interrupted  # type: ignore[method-assign]
    # When the reconcile finishes
    result = handle(tag_event(load_event, "web"), world.reconciler)
    # Then it ran a second, verifying pass before letting go, and nothing is duplicated
    assert result["groups"][0]["status"] == "converged"
    assert world.log.ops("ssm")["GetParameter"] == 2
    # the window was made by this reconcile, so the second pass reads nothing of it back
    assert world.log.ops("ssm").get("GetMaintenanceWindow", 0) == 0
    assert_single_bundle(world)
    assert "pending" not in world.record("web") and "lock_owner" not in world.record("web")


def test_held_lease_defers_and_an_expired_one_is_taken_over(world: World, load_event: Loader) -> None:
    from tagpatch.adapters.groups import LEASE_SECONDS

    world.launch("web")
    now = int(world.reconciler.clock())
    assert world.reconciler.groups.acquire("web", "crashed-invocation", now) is not None
    # while the crashed holder's lease runs, events are deferred to it
    assert handle(tag_event(load_event, "web"), world.reconciler)["groups"][0]["status"] == "deferred"
    assert world.record("web")["pending"] is True
    assert world.windows() == []
    # once it has expired, the next reconcile takes the group over
    world.reconciler.clock = lambda: now + LEASE_SECONDS + 1
    assert handle(tag_event(load_event, "web"), world.reconciler)["groups"][0]["status"] == "converged"
    assert_single_bundle(world)


def test_one_failing_group_does_not_stop_the_scheduled_run(world: World, load_event: Loader) -> None:
    from emulator import fake_ssm

    world.launch("db")
    world.launch("web")
    fake_ssm.inject_faults("CreateMaintenanceWindow", ["ValidationException"])  # the first group, "db"
    result = scheduled(world, load_event)
    assert result["ok"] is False
    assert [(g["group"], g["status"]) for g in result["groups"]] == [("db", "failed"), ("web", "converged")]
    # db's failure released the window's making lease: web made the shared window at once
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    assert_single_bundle(world, "web")
    # and the next run puts db in it too
    result = scheduled(world, load_event)
    assert sorted((g["group"], g["status"]) for g in result["groups"]) == [
        ("db", "converged"),
        ("web", "converged"),
    ]
    assert world.window_of("db")["WindowId"] == world.window_of("web")["WindowId"]
    assert len(world.windows()) == 1


def test_refused_new_group_gets_no_window_but_a_recorded_reason(world: World, load_event: Loader) -> None:
    put_override(world, "web", {"cutoff": 9})
    world.launch("web")
    result = handle(tag_event(load_event, "web"), world.reconciler)
    assert result["groups"][0]["status"] == "refused"
    assert world.windows() == []
    assert world.record("web")["status"] == "refused"


def test_gateway_treats_vanished_resources_as_gone(world: World) -> None:
    from botocore.exceptions import ClientError

    from tagpatch.adapters.ssm import SsmGateway

    gateway = SsmGateway(world.ssm)
    missing = "mw-0123456789abcdef0"
    assert gateway.get_window(missing) is None
    gateway.delete_window(missing)
    window = world.ssm.create_maintenance_window(
        Name="TagPatch-x", Schedule="rate(1 day)", Duration=2, Cutoff=1, AllowUnassociatedTargets=False
    )["WindowId"]
    assert gateway.get_task(window, "00000000-0000-4000-8000-000000000000") is None
    gateway.deregister_task(window, "00000000-0000-4000-8000-000000000000")
    gateway.deregister_target(window, "00000000-0000-4000-8000-000000000000")
    gateway.deregister_baseline("pb-0123456789abcdef0", "nobody")
    assert gateway.get_parameter("/tagpatch/none") is None
    with pytest.raises(ClientError):
        gateway.update_window({"WindowId": missing, "Duration": 3})


def test_lease_writes_retried_after_a_lost_response_are_not_mistaken_for_contention(world: World) -> None:
    # botocore retries a request whose response was lost (timeout, 5xx) with the same
    # parameters; by then DynamoDB may already have applied it. Both lease writes must accept
    # finding their own earlier write.
    groups = world.reconciler.groups
    now = int(world.reconciler.clock())
    first = groups.acquire("web", "owner-1", now)
    retried = groups.acquire("web", "owner-1", now)  # the same request again
    assert first is not None and retried is not None
    assert groups.acquire("web", "owner-2", now) is None  # still exclusive to others
    retried.status, retried.updated_at = "converged", "2026-11-26T00:00:00+00:00"
    assert groups.release(retried, "owner-1") is True
    assert groups.release(retried, "owner-1") is True  # the retried release finds its own save
    assert "lock_owner" not in world.record("web")
    # but a release by someone whose state was never saved is still refused
    other = world.reconciler.groups.get("web")
    assert other is not None
    other.status = "failed"
    with pytest.raises(LeaseLost):
        groups.release(other, "owner-2", force=True)
