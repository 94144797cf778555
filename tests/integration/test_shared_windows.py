"""Windows shared by schedule (issue 13): groups with equal window settings share maintenance
windows, each group with its own target and task, placed within SSM's quotas (20 tasks and 100
targets per window, 50 windows per account, 25 patch groups per patch baseline)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.ssm.models import ssm_backends

from emulator import fake_ssm
from emulator.scenarios.aws import WRITE_PREFIXES, World
from tagpatch.handlers.reconciler import handle
from tests.integration.test_reconciler import put_override, tag_event
from tests.reliability.legacy import reconcile_with_old_tagpatch

Loader = Callable[[str], Any]
OTHER = {"schedule": "cron(0 4 ? * SAT *)"}  # another schedule: another window key
CAPACITY = 20  # groups per shared window: SSM's 20 tasks per window (of its 100 targets)


@pytest.fixture
def world(aws: None) -> Iterator[World]:
    yield World()


def groups(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:02d}" for n in range(count)]


def launch(world: World, names: list[str], **override: Any) -> None:
    for name in names:
        world.launch(name)
        if override:
            put_override(world, name, override)


def scheduled(world: World, load_event: Loader) -> dict[str, Any]:
    world.log.reset()
    fake_ssm.reset_calls()
    return handle(load_event("reconciler-scheduled.json"), world.reconciler)


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {outcome["group"]: outcome["status"] for outcome in result["groups"]}


def ssm_writes() -> list[str]:
    """The SSM writes that reached the emulated account since the last :func:`fake_ssm.reset_calls`."""
    return [action for action in fake_ssm.CALLS if action.startswith(WRITE_PREFIXES)]


def assert_own_target_and_task(world: World, group: str) -> dict[str, Any]:
    """``group``'s one target (its tag value) and one task (pointing at it) in its shared window."""
    target, task = world.group_target(group), world.group_task(group)
    assert target["Targets"] == [{"Key": "tag:PatchGroup", "Values": [group]}]
    assert task["Targets"] == [{"Key": "WindowTargetIds", "Values": [target["WindowTargetId"]]}]
    return world.window_of(group)


def window_loads(world: World) -> dict[str, tuple[int, int]]:
    """Every window by name: (its tasks, its targets)."""
    return {
        window["Name"]: (len(world.tasks(window["WindowId"])), len(world.targets(window["WindowId"])))
        for window in world.windows()
    }


# --- (a) groups fill their schedule's windows, 20 to a window ---------------------------------


def test_45_groups_on_one_schedule_and_5_on_another_take_3_and_1_windows(
    world: World, load_event: Loader
) -> None:
    # Given 45 groups on the stack's default schedule and 5 on another
    default, other = groups("web", 45), groups("db", 5)
    launch(world, default)
    launch(world, other, **OTHER)

    # When the scheduled run reconciles them all
    result = scheduled(world, load_event)

    # Then every group converged into the fewest windows the quotas allow: ceil(45/20) + ceil(5/20)
    assert set(statuses(result).values()) == {"converged"} and len(result["groups"]) == 50
    assert window_loads(world) == {
        world.shared_window_name(sibling=0): (20, 20),
        world.shared_window_name(sibling=1): (20, 20),
        world.shared_window_name(sibling=2): (5, 5),
        world.shared_window_name(**OTHER): (5, 5),
    }
    assert math.ceil(45 / CAPACITY) + math.ceil(5 / CAPACITY) == 4
    # each group has its own target and task, in a window of its own schedule
    for group in default:
        assert assert_own_target_and_task(world, group)["Schedule"] == "cron(0 3 ? * SUN *)"
    for group in other:
        assert assert_own_target_and_task(world, group)["Schedule"] == OTHER["schedule"]
    placement = world.placement()
    assert placement["windows"] == 4
    assert sorted(count for name, count in placement.items() if name.startswith("c:")) == [5, 5, 20, 20]
    # and the next run finds nothing to change
    again = scheduled(world, load_event)
    assert set(statuses(again).values()) == {"converged"}
    assert ssm_writes() == [] and not [g for g in again["groups"] if g["actions"]]


# --- (b) the window quota ---------------------------------------------------------------------


def test_groups_that_fit_in_no_window_are_unplaced_with_the_reason_and_nothing_written(
    aws: None, load_event: Loader
) -> None:
    # Given an account allowed 2 windows (MaxWindows=2, and SSM's quota as low), 22 groups on the
    # default schedule (20 + 2: both windows) and one on another schedule
    fake_ssm.set_window_quota(2)
    world = World(MAX_WINDOWS="2")
    default = groups("g", 22)
    launch(world, default)
    launch(world, ["z-other"], **OTHER)

    # When the scheduled run reconciles them
    result = scheduled(world, load_event)

    # Then the 22 converged in the two windows, and the other is unplaced, saying why
    outcome = statuses(result)
    assert {group: outcome[group] for group in default} == dict.fromkeys(default, "converged")
    assert outcome["z-other"] == "unplaced"
    [reason] = next(g["reasons"] for g in result["groups"] if g["group"] == "z-other")
    assert "MaxWindows=2" in reason and "2 of MaxWindows=2 maintenance windows are in use" in reason
    assert result["ok"]  # a refusal with its reason: no failure retried into the DLQ
    # nothing was written for it: the run's writes are the 22 groups' own, and no more
    assert Counter(ssm_writes()) == {
        "CreateMaintenanceWindow": 2,
        "RegisterTargetWithMaintenanceWindow": 22,
        "RegisterTaskWithMaintenanceWindow": 22,
    }
    assert sorted(window_loads(world).values()) == [(2, 2), (20, 20)]
    record = world.record("z-other")
    assert (record["status"], record["reasons"], record.get("windows", {})) == ("unplaced", [reason], {})
    assert "p:install:z-other" not in world.placement()
    # and its own reconcile (a tag event) writes nothing to SSM either
    fake_ssm.reset_calls()
    [again] = handle(tag_event(load_event, "z-other"), world.reconciler)["groups"]
    assert (again["status"], again["reasons"]) == ("unplaced", [reason])
    assert ssm_writes() == []


# --- (c) a group that changes schedule --------------------------------------------------------


def test_a_group_moving_to_another_schedule_leaves_its_old_window_which_goes_once_empty(
    world: World, load_event: Loader
) -> None:
    # Given web and db in the default schedule's window
    launch(world, ["db", "web"])
    scheduled(world, load_event)
    old = world.window_of("web")
    old_target, old_task = world.group_target("web"), world.group_task("web")

    # When web's settings move it to another schedule
    put_override(world, "web", OTHER)
    result = scheduled(world, load_event)

    # Then web's new target and task are in the other schedule's window, its old ones are gone,
    # and the old window stays, holding db's alone
    assert statuses(result) == {"db": "converged", "web": "converged"}
    moved = assert_own_target_and_task(world, "web")
    assert moved["Name"] == world.shared_window_name(**OTHER) and moved["WindowId"] != old["WindowId"]
    assert world.window_of("db") == old
    names = {t["Name"] for t in world.targets(old["WindowId"])} | {
        t["Name"] for t in world.tasks(old["WindowId"])
    }
    assert names == {"TagPatch-db-target", "TagPatch-db-patch"}
    assert old_target["Name"] == "TagPatch-web-target" and old_task["Name"] == "TagPatch-web-patch"
    assert world.record("web")["windows"]["install"]["schedule"] == OTHER["schedule"]
    assert world.placement()["windows"] == 2

    # When db follows, the old window (now empty) is deleted and its place freed
    put_override(world, "db", OTHER)
    scheduled(world, load_event)
    assert [w["WindowId"] for w in world.windows()] == [moved["WindowId"]]
    assert Counter(ssm_writes())["DeleteMaintenanceWindow"] == 1
    assert_own_target_and_task(world, "db")
    placement = world.placement()
    assert placement["windows"] == 1
    old_place = f"{world.shared_window_name().split('-')[2]}:0"
    assert f"c:{old_place}" not in placement and f"w:{old_place}" not in placement


# --- (d) the last group leaving a window ------------------------------------------------------


def test_the_last_group_leaving_a_window_deletes_it_and_frees_its_place(
    aws: None, load_event: Loader
) -> None:
    # Given MaxWindows=2 taken by web's and db's schedules, and a third schedule's group unplaced
    world = World(DELETE_EMPTY_GROUP_WINDOWS="true", MAX_WINDOWS="2")
    [web_instance] = world.launch("web")
    launch(world, ["db"], **OTHER)
    launch(world, ["x-app"], schedule="cron(0 5 ? * SAT *)")
    first = scheduled(world, load_event)
    assert statuses(first) == {"web": "converged", "db": "converged", "x-app": "unplaced"}
    assert world.placement()["windows"] == 2
    web_window = world.window_of("web")["WindowId"]

    # When web's last instance is gone
    world.ec2.terminate_instances(InstanceIds=[web_instance])
    result = scheduled(world, load_event)

    # Then web's window is deleted with it, its place (and share of MaxWindows) freed
    assert statuses(result)["web"] == "deleted"
    assert web_window not in [w["WindowId"] for w in world.windows()]
    assert Counter(ssm_writes())["DeleteMaintenanceWindow"] == 1
    assert world.placement()["windows"] == 1
    assert "p:install:web" not in world.placement()
    # so the next run places the group that found no room
    again = scheduled(world, load_event)
    assert statuses(again)["x-app"] == "converged"
    assert world.window_of("x-app")["Name"] == world.shared_window_name(schedule="cron(0 5 ? * SAT *)")
    assert world.placement()["windows"] == 2 and len(world.windows()) == 2


def test_a_group_refused_its_window_by_ssm_frees_its_place_when_deleted(
    aws: None, load_event: Loader
) -> None:
    # Given db placed in a window of its own schedule that SSM refused to make (its quota of 1
    # taken by web's window): db is rejected, holding the place it was given
    fake_ssm.set_window_quota(1)
    world = World(DELETE_EMPTY_GROUP_WINDOWS="true")
    world.launch("web")
    [db_instance] = world.launch("db")
    put_override(world, "db", OTHER)
    assert handle(tag_event(load_event, "web"), world.reconciler)["groups"][0]["status"] == "converged"
    assert handle(tag_event(load_event, "db"), world.reconciler)["groups"][0]["status"] == "rejected"

    # When db's last instance is gone and the schedule deletes the group
    world.ec2.terminate_instances(InstanceIds=[db_instance])
    assert statuses(scheduled(world, load_event))["db"] == "deleted"

    # Then its place is free again: only web's window counts against MaxWindows
    placement = world.placement()
    assert "p:install:db" not in placement
    assert placement["windows"] == 1 == len(world.windows())


# --- (e) the patch baseline quota -------------------------------------------------------------


def test_the_26th_group_of_a_patch_baseline_is_unplaced_before_any_write(
    aws: None, load_event: Loader
) -> None:
    import boto3

    baseline = boto3.client("ssm").create_patch_baseline(Name="base", OperatingSystem="AMAZON_LINUX_2")[
        "BaselineId"
    ]
    world = World(DEFAULT_PATCH_BASELINE_ID=baseline)
    names = groups("g", 26)
    launch(world, names)

    # When the scheduled run reconciles the 26 groups of one patch baseline
    result = scheduled(world, load_event)

    # Then 25 are registered with it, and the 26th is unplaced with the reason, nothing made for it
    outcome = statuses(result)
    assert [group for group in names if outcome[group] == "converged"] == names[:25]
    assert outcome["g25"] == "unplaced"
    [reason] = next(g["reasons"] for g in result["groups"] if g["group"] == "g25")
    assert f"patch baseline {baseline} already has 25 patch groups" in reason
    assert "MaxGroupsPerBaseline" in reason
    patch_groups = world.ssm.get_patch_baseline(BaselineId=baseline)["PatchGroups"]
    assert sorted(patch_groups) == names[:25]
    assert "p:install:g25" not in world.placement()
    targets = {t["Name"] for w in world.windows() for t in world.targets(w["WindowId"])}
    assert "TagPatch-g25-target" not in targets and len(targets) == 25
    writes = Counter(ssm_writes())
    assert writes == {  # the 25 groups' windows (20 + 5), targets, tasks and registrations only
        "CreateMaintenanceWindow": 2,
        "RegisterTargetWithMaintenanceWindow": 25,
        "RegisterTaskWithMaintenanceWindow": 25,
        "RegisterPatchBaselineForPatchGroup": 25,
    }
    # its own reconcile refuses it before any write, without asking SSM to break its quota
    fake_ssm.reset_calls()
    [again] = handle(tag_event(load_event, "g25"), world.reconciler)["groups"]
    assert (again["status"], again["reasons"]) == ("unplaced", [reason])
    assert ssm_writes() == []


# --- (f) one read of a shared window per message ----------------------------------------------


def test_verifying_a_message_of_20_groups_in_one_window_reads_the_window_once(
    world: World, load_event: Loader
) -> None:
    # Given 20 converged groups in one shared window
    names = groups("web", 20)
    launch(world, names)
    scheduled(world, load_event)
    [window] = world.windows()

    # When the scheduled run's one message of them is verified
    [message] = world.reconciler.plan_run()
    assert sorted(message["groups"]) == names
    world.log.reset()
    outcomes = world.reconciler.run_message(message)

    # Then the window's settings, targets and tasks were read once for the 20 groups; each
    # group's own task once (its parameters); no settings read (the message carries them) and
    # nothing written
    assert [outcome.status for outcome in outcomes] == ["converged"] * 20
    assert world.log.ops("ssm") == {
        "GetMaintenanceWindow": 1,
        "DescribeMaintenanceWindowTargets": 1,
        "DescribeMaintenanceWindowTasks": 1,
        "GetMaintenanceWindowTask": 20,
    }
    # the placement item read for the message and again for the window's cleanup; each group's
    # lease taken and given back
    assert world.log.ops("dynamodb") == {"GetItem": 2, "UpdateItem": 40}
    assert window_loads(world) == {window["Name"]: (20, 20)}


# --- (g) the upgrade from one window per group -----------------------------------------------


def tasks_per_group(world: World) -> Counter[str]:
    """Tasks of each group in enabled windows, read from the emulated account's state itself
    (no API call, so no call is counted): a task's group is its target's tag value."""
    backend = ssm_backends["123456789012"]["us-east-1"]
    counts: Counter[str] = Counter()
    for window in list(backend.windows.values()):
        if not getattr(window, "tagpatch_enabled", True):
            continue
        for task in list(window.tasks.values()):
            for target_id in task.targets[0]["Values"]:
                target = window.targets.get(target_id)
                if target is not None:
                    counts[target.targets[0]["Values"][0]] += 1
    return counts


def test_an_account_of_one_window_per_group_converges_to_shared_windows_in_one_run(
    world: World,
) -> None:
    # Given 50 groups (45 on the default schedule, 5 on another) as the TagPatch before shared
    # windows left them: 50 windows, one per group, filling the account's quota of 50 (the
    # emulator's default, as AWS's)
    default, other = groups("g", 45), groups("h", 5)
    names = default + other
    launch(world, default)
    launch(world, other, **OTHER)
    world.env["MAX_GROUPS"] = "50"  # the old TagPatch's default (20) was lower
    assert reconcile_with_old_tagpatch(world) == ["converged"] * 50
    old = {w["WindowId"]: w["Name"] for w in world.windows()}
    assert sorted(old.values()) == [f"TagPatch-{name}" for name in names]
    assert len(old) == fake_ssm.DEFAULT_WINDOW_QUOTA  # the account can make no window more
    assert not [ids for name in names for ids in world.record(name)["windows"].values() if "place" in ids]

    # When today's reconciler runs once, every write followed by a count of each group's tasks
    gateway, reconciler = world.reconciler.ssm, world.reconciler
    current: list[str] = []
    history: list[tuple[str, str, Counter[str]]] = []
    for name in ("create_window", "delete_window", "register_task", "deregister_task", "update_window"):
        write = getattr(gateway, name)

        def counted(*args: Any, __name: str = name, __write: Any = write) -> Any:
            result = __write(*args)
            history.append((current[-1] if current else "", __name, tasks_per_group(world)))
            return result

        setattr(gateway, name, counted)
    reconcile_group = reconciler.reconcile_group

    def reconciling(group: str, **kwargs: Any) -> Any:
        current.append(group)
        try:
            return reconcile_group(group, **kwargs)
        finally:
            assert tasks_per_group(world)[group] == 1, group  # never two once its reconcile ends
            current.append("")

    reconciler.reconcile_group = reconciling  # type: ignore[method-assign]
    world.log.reset()
    outcomes = reconciler.reconcile_all()

    # Then every group converged into shared windows: the fewest the quotas allow, all of them
    # the groups' own old windows adopted (the quota full, no window could be made)
    assert [outcome.status for outcome in outcomes] == ["converged"] * 50
    windows = world.windows()
    assert len(windows) == math.ceil(45 / CAPACITY) + math.ceil(5 / CAPACITY) == 4
    assert world.log.ops("ssm")["CreateMaintenanceWindow"] == 0
    assert {w["WindowId"] for w in windows} <= set(old)
    assert sorted(w["Name"] for w in windows) == sorted(
        [*(world.shared_window_name(sibling=n) for n in range(3)), world.shared_window_name(**OTHER)]
    )
    for window in windows:
        assert "tagpatch:group" not in world.window_tags(window["WindowId"])
    for name in names:
        assert "place" in world.record(name)["windows"]["install"]
        schedule = assert_own_target_and_task(world, name)["Schedule"]
        assert schedule == (OTHER["schedule"] if name in other else "cron(0 3 ? * SUN *)")
    assert world.log.ops("ssm")["DeleteMaintenanceWindow"] == 46  # every old window not adopted
    # and no group was ever without its task, nor had two but within its own reconcile, between
    # registering in its shared window and removing its old window
    assert history
    for group, write, counts in history:
        assert set(counts) == set(names) and min(counts.values()) == 1, (group, write)
        doubled = [name for name, count in counts.items() if count > 1]
        assert doubled in ([], [group]), (group, write, doubled)
        assert max(counts.values()) <= 2
    moved = 0
    for group in names:
        steps = [(write, counts[group]) for owner, write, counts in history if owner == group]
        doubled_at = [index for index, (_, count) in enumerate(steps) if count == 2]
        if doubled_at:
            moved += 1  # one stretch, opened by its registration, closed by the old window's end
            first, last = doubled_at[0], doubled_at[-1]
            assert doubled_at == list(range(first, last + 1)), steps
            assert steps[first][0] == "register_task"
            assert steps[last + 1][0] in ("delete_window", "deregister_task")
    assert moved == 46  # the groups whose own window was not adopted (4 were)
