"""Attacks and faults on what the reconciler admits (issue 12, items 1, 2, 3, 9, 21).

Each test drives the reconciler through its handler against the emulated account and checks that
the hostile or broken input is refused with a reason, touches nothing it must not, and never ends
in a failed group or a dead-lettered event.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from emulator import fake_ssm
from emulator.scenarios.aws import World
from emulator.scenarios.settings import PREFIX, STACK
from tagpatch import naming
from tagpatch.handlers.reconciler import handle
from tagpatch.observability import metrics
from tests.integration.test_reconciler import assert_single_bundle, put_override, settings_event
from tests.reliability.legacy import old_reconciler, old_tagpatch
from tests.reliability.test_faults import tag_event

Loader = Any


# --- item 9: overrides that break the JSON parser --------------------------------------------


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ('{"priority": ' + "7" * 5000 + "}", "override is not usable JSON"),
        ('{"comment": ' + "[" * 3000 + "]" * 3000 + "}", "override nests 3001 levels deep"),
    ],
    ids=["5000-digit integer", "3000 levels of nesting"],
)
def test_an_override_the_json_parser_chokes_on_is_refused_not_failed(
    world: World, load_event: Loader, override: str, reason: str
) -> None:
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    before = assert_single_bundle(world)
    name = put_override(world, "web", "{}")
    world.ssm.put_parameter(Name=name, Value=override, Type="String", Tier="Advanced", Overwrite=True)
    world.log.reset()
    # Before the fix: ValueError / RecursionError escaped, the group was marked failed and the
    # event went to the DLQ after Lambda's retries.
    result = handle(settings_event(load_event, name), world.reconciler)
    [outcome] = result["groups"]
    assert outcome["status"] == "refused", outcome
    assert any(reason in r for r in outcome["reasons"])
    assert world.log.count("ssm", writes=True) == 0
    assert assert_single_bundle(world) == before
    assert world.record("web")["status"] == "refused"
    # the scheduled run refuses it the same way instead of failing the group
    scheduled = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert scheduled["ok"] and scheduled["groups"][0]["status"] == "refused"


# --- item 21: a patch baseline given as an ARN -----------------------------------------------


def test_a_baseline_given_as_an_arn_is_registered_once_not_on_every_run(
    world: World, load_event: Loader
) -> None:
    baseline = world.ssm.create_patch_baseline(Name="base", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    arn = f"arn:aws:ssm:us-east-1:123456789012:patchbaseline/{baseline}"
    put_override(world, "web", {"patchBaselineId": arn})
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    mappings = world.ssm.describe_patch_groups()["Mappings"]
    assert [(m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in mappings] == [("web", baseline)]
    assert world.record("web")["baseline_id"] == baseline
    # Before the fix the ARN never equalled DescribePatchGroups' BaselineId: registered every run.
    for _ in range(2):
        world.log.reset()
        result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
        assert result["groups"][0]["status"] == "converged"
        assert world.log.count("ssm", writes=True) == 0, world.log.ops("ssm")


# --- item 3: names SSM rejects ----------------------------------------------------------------

REJECTED_BY_PATCH_GROUP_RULE = [
    "tab\there",
    "nul\x00",
    "bell\x07",
    "web#1",
    "100%",
    'say "hi"',
    "it's",
    "<script>",
    "back\\slash",
    "zero\u200bwidth",
    "rtl\u200fmark",
    "ltr\u200eembed",
    "bom\ufeff",
    "emoji\U0001f600",
    "semi;colon",
    "pipe|",
    "star*",
]
ACCEPTED = ["web prod", "Ünïcödé", "日本語", "a/b:c=d+e@f", "x" * 256, "٣٤"]


def baseline_world() -> tuple[World, str]:
    ssm = boto3.client("ssm")
    baseline = ssm.create_patch_baseline(Name="base", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    return World(DEFAULT_PATCH_BASELINE_ID=baseline), baseline


@pytest.mark.parametrize("group", REJECTED_BY_PATCH_GROUP_RULE, ids=ascii)
def test_with_a_baseline_a_name_the_patch_group_api_refuses_is_refused_before_any_write(
    aws: None, load_event: Loader, group: str
) -> None:
    world, _ = baseline_world()
    # Before the fix: window, target and task were made, then RegisterPatchBaselineForPatchGroup
    # failed, the group patched with the default baseline and the event went to the DLQ.
    result = handle(tag_event(load_event, group), world.reconciler)
    [outcome] = result["groups"]
    assert outcome["status"] == "refused", outcome
    assert any("RegisterPatchBaselineForPatchGroup refuses" in r for r in outcome["reasons"])
    assert world.log.count("ssm", writes=True) == 0
    assert world.windows() == []
    assert world.record(group)["status"] == "refused"


@pytest.mark.parametrize("group", ACCEPTED, ids=ascii)
def test_with_a_baseline_every_name_ssm_accepts_gets_its_window_and_baseline(
    aws: None, load_event: Loader, group: str
) -> None:
    world, baseline = baseline_world()
    world.launch(group)
    result = handle(tag_event(load_event, group), world.reconciler)
    assert result["groups"][0]["status"] == "converged", result
    assert len(world.windows()) == 1
    mappings = world.ssm.describe_patch_groups()["Mappings"]
    assert [(m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in mappings] == [(group, baseline)]


def test_without_a_baseline_odd_names_still_get_their_window(world: World, load_event: Loader) -> None:
    odd = ("web#1", "100%", "zero\u200bwidth")
    for group in odd:
        world.launch(group)
        assert handle(tag_event(load_event, group), world.reconciler)["groups"][0]["status"] == "converged"
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]  # one schedule
    for group in odd:
        assert world.group_target(group)["Targets"] == [{"Key": "tag:PatchGroup", "Values": [group]}]
        target_id = world.group_target(group)["WindowTargetId"]
        assert world.group_task(group)["Targets"][0]["Values"] == [target_id]


# --- item 1: a crafted tag value takes over another group's window ---------------------------

VICTIM, ATTACKER = "Prod DB!", "Prod-DB-90a2e279c2"  # the attacker's value was the victim's slug
# Two values whose 40-bit slug hashes collide (found by a birthday search over CJK suffixes, which
# the ASCII fold drops, so both read "web"): only the slug claim tells them apart.
COLLIDING = ("web \u8ff2\u4e09", "web \u9250\u4e2f")


def own_bundle(world: World, name: str) -> dict[str, Any]:
    """An older TagPatch's window of one group, by name, with its one target and one task."""
    window = world.window_named(name)
    targets, tasks = world.targets(window["WindowId"]), world.tasks(window["WindowId"])
    assert len(targets) == 1 and len(tasks) == 1, (targets, tasks)
    return {"window": window, "target": targets[0], "task": tasks[0]}


def test_a_value_equal_to_another_groups_slug_gets_its_own_target_task_and_settings_path(
    aws: None, no_backoff: None, load_event: Loader
) -> None:
    world = World(DELETE_EMPTY_GROUP_WINDOWS="true")
    [victim_instance] = world.launch(VICTIM)
    handle(tag_event(load_event, VICTIM), world.reconciler)
    victim_target = world.group_target(VICTIM)
    # The attacker tags one instance with the victim's slug
    [attacker_instance] = world.launch(ATTACKER)
    handle(tag_event(load_event, ATTACKER), world.reconciler)
    # Before the fix both groups owned the victim's window and flipped its target on every run.
    for run in range(2):
        result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
        assert {g["status"] for g in result["groups"]} == {"converged"}
        if run:  # nothing flips back and forth
            assert not [g for g in result["groups"] if g["actions"]]
    # One schedule, so one shared window, with each group's own target and task
    [window] = world.windows()
    assert len(world.targets(window["WindowId"])) == 2 and len(world.tasks(window["WindowId"])) == 2
    assert world.group_target(VICTIM)["Targets"] == [{"Key": "tag:PatchGroup", "Values": [VICTIM]}]
    assert victim_target["Targets"] == [{"Key": "tag:PatchGroup", "Values": [VICTIM]}]
    assert world.group_target(ATTACKER)["Targets"] == [{"Key": "tag:PatchGroup", "Values": [ATTACKER]}]
    attacker_slug = world.record(ATTACKER)["slug"]
    assert attacker_slug != world.record(VICTIM)["slug"]
    assert world.reconciler.override_name(ATTACKER) != world.reconciler.override_name(VICTIM)
    # Removing the attacker's tag takes out the attacker's target and task only
    world.ec2.terminate_instances(InstanceIds=[attacker_instance])
    result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert {(g["group"], g["status"]) for g in result["groups"]} == {
        (VICTIM, "converged"),
        (ATTACKER, "deleted"),
    }
    assert [w["WindowId"] for w in world.windows()] == [window["WindowId"]]
    victim = assert_single_bundle(world, VICTIM)
    assert victim["target"]["Targets"] == [{"Key": "tag:PatchGroup", "Values": [VICTIM]}]
    assert victim_instance


def test_a_new_group_named_like_another_groups_old_slug_never_takes_its_target_or_task(
    world: World, load_event: Loader
) -> None:
    # Given the victim converged in its shared window
    world.launch(VICTIM)
    handle(tag_event(load_event, VICTIM), world.reconciler)
    victim = assert_single_bundle(world, VICTIM)
    # When a group named like the victim's slug under naming rule 1 joins the same window
    world.launch(ATTACKER)
    [outcome] = handle(tag_event(load_event, ATTACKER), world.reconciler)["groups"]
    assert outcome["status"] == "converged"
    # Then it registers a target and task of its own: the victim's (named as the attacker's
    # names were under rule 1) are not renamed, re-pointed or re-targeted as the attacker's
    assert [action.split()[0] for action in outcome["actions"]] == ["register_target", "register_task"]
    assert world.group_target(VICTIM) == victim["target"]
    assert world.group_task(VICTIM) == victim["task"]
    assert world.group_target(ATTACKER)["Targets"] == [{"Key": "tag:PatchGroup", "Values": [ATTACKER]}]


def test_two_values_whose_slugs_collide_never_share_a_window(world: World, load_event: Loader) -> None:
    first, second = COLLIDING
    assert naming.group_slug(first) == naming.group_slug(second)
    world.launch(first)
    world.launch(second)
    assert handle(tag_event(load_event, first), world.reconciler)["groups"][0]["status"] == "converged"
    world.log.reset()
    result = handle(tag_event(load_event, second), world.reconciler)
    [outcome] = result["groups"]
    assert outcome["status"] == "rejected"
    assert outcome["reasons"] == [f"its slug 'web-6fae671c64' is claimed by patch group {first!r}"]
    assert world.log.count("ssm", writes=True) == 0
    assert result["ok"]  # a refusal with its reason, not a failure retried into the DLQ
    scheduled = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert {(g["group"], g["status"]) for g in scheduled["groups"]} == {
        (first, "converged"),
        (second, "rejected"),
    }
    [window] = world.windows()
    assert world.targets(window["WindowId"])[0]["Targets"][0]["Values"] == [first]


def test_a_window_tagged_for_another_group_or_stack_is_never_adopted(
    world: World, load_event: Loader
) -> None:
    # Given a group recorded by the TagPatch before shared windows, whose recorded window has
    # since been tagged as another group's (so it is not the group's own to adopt or delete)
    world.launch("web")
    with old_tagpatch() as old:
        assert old_reconciler(old, world).reconcile_group("web", verify=False).status == "converged"
    [recorded] = [w["WindowId"] for w in world.windows()]
    world.ssm.add_tags_to_resource(
        ResourceType="MaintenanceWindow",
        ResourceId=recorded,
        Tags=[{"Key": "tagpatch:group", "Value": "someone-else"}],
    )
    # and a window with the shared window's name and tags, but of another stack
    shared = world.shared_window_name()
    tags = {"tagpatch:window": "install", "tagpatch:key": shared.split("-")[2], "tagpatch:sibling": "0"}
    planted = world.plant_window(shared, {"tagpatch:stack": "another-stack", **tags})
    # When the scheduled run converges the group
    result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert result["groups"][0]["status"] == "converged", result
    # Then it got a shared window of its own making, and neither is adopted, changed or deleted
    made = world.window_of("web")["WindowId"]
    assert made not in (recorded, planted) and len(world.windows()) == 3
    assert world.window_named("TagPatch-web")["WindowId"] == recorded
    assert world.window_tags(recorded)["tagpatch:group"] == "someone-else"
    assert world.ssm.get_maintenance_window(WindowId=planted)["Schedule"] == "rate(1 day)"
    assert world.targets(planted) == []
    assert_single_bundle(world)


def test_a_table_written_before_slug_claims_keeps_working(world: World, load_event: Loader) -> None:
    # Given a converged group whose record has no claim (as today's code writes it)
    world.launch("web")
    handle(tag_event(load_event, "web"), world.reconciler)
    made = assert_single_bundle(world)
    world.ddb.update_item(
        TableName="tagpatch-groups", Key={"group": {"S": "web"}}, UpdateExpression="REMOVE admitted_slug"
    )
    world.ddb.delete_item(TableName="tagpatch-groups", Key={"group": {"S": "#tagpatch:claims"}})
    # and a MaxGroups it already exceeds
    world.env["MAX_GROUPS"] = "1"
    world.launch("db")
    world.reconciler = world.make_reconciler()
    handle(tag_event(load_event, "db"), world.reconciler)
    # When the schedule runs, the existing group claims its slug whatever the limit, keeps its
    # window, target and task
    result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    statuses = {g["group"]: g["status"] for g in result["groups"]}
    assert statuses["web"] == "converged"
    assert world.window_of("web") == made["window"]
    assert (world.group_target("web"), world.group_task("web")) == (made["target"], made["task"])
    assert world.record("web")["admitted_slug"] == "web"


# --- item 2: tag storms and the account's maintenance-window quota ---------------------------


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every metric the reconciler handler adds, by name."""
    counts: Counter[str] = Counter()

    def add_metric(name: str, unit: Any, value: float) -> None:
        counts[name] += int(value)

    monkeypatch.setattr(metrics, "add_metric", add_metric)
    return counts


def test_a_tag_storm_is_bounded_by_max_groups_and_empty_groups_free_their_place(
    aws: None, no_backoff: None, load_event: Loader, emitted: Counter[str]
) -> None:
    world = World(MAX_GROUPS="20", EMPTY_GROUP_WINDOW_DAYS="30")
    [instance] = world.launch(None)
    # 70 re-tags of one instance: every value a new group (before: 50 windows, then quota errors)
    outcomes = []
    for n in range(70):
        world.ec2.create_tags(Resources=[instance], Tags=[{"Key": "PatchGroup", "Value": f"storm-{n}"}])
        world.log.reset()
        result = handle(tag_event(load_event, f"storm-{n}"), world.reconciler)
        assert result["ok"]
        [outcome] = result["groups"]
        outcomes.append(outcome["status"])
        if outcome["status"] == "rejected":
            assert outcome["reasons"] == [
                "20 patch groups are managed already and the stack's MaxGroups is 20"
            ]
            assert world.log.count("ssm", writes=True) == 0  # no SSM resource touched
    assert outcomes == ["converged"] * 20 + ["rejected"] * 50
    # one schedule: the 20 admitted groups fill one shared window (20 tasks, SSM's quota)
    [window] = world.windows()
    assert len(world.tasks(window["WindowId"])) == 20 and len(world.targets(window["WindowId"])) == 20
    assert emitted["GroupsRejected"] == 50 and emitted["GroupsConverged"] == 20
    # A real group now waits for a place: rejected with the reason, not a quota error
    world.launch("web")
    assert handle(tag_event(load_event, "web"), world.reconciler)["groups"][0]["status"] == "rejected"
    # The storm's groups are reported empty, and their windows kept for EmptyGroupWindowDays ...
    result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    statuses = Counter(g["status"] for g in result["groups"])
    # (storm-0..19 were admitted; the instance now carries storm-69, which was rejected)
    assert statuses["empty"] == 69 and [w["WindowId"] for w in world.windows()] == [window["WindowId"]]
    # ... after which they are removed, their places freed, and the real group gets its window
    world.reconciler.clock = lambda: time.time() + 31 * 86400
    result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert Counter(g["status"] for g in result["groups"])["deleted"] == 69
    assert world.windows() == []
    result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    by_group = {g["group"]: g["status"] for g in result["groups"]}
    assert by_group["web"] == "converged" and by_group["storm-69"] == "converged"
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    assert world.window_of("web") == world.window_of("storm-69")
    assert world.placement()["windows"] == 1


def test_ssm_quota_exhausted_is_a_refusal_with_its_reason_not_a_retry_storm(
    world: World, load_event: Loader, emitted: Counter[str]
) -> None:
    # Another team's windows fill the account's quota (3 here; 50 by default) but one place, and
    # db's schedule differs from web's, so it needs a window of its own
    fake_ssm.set_window_quota(3)
    for n in range(2):
        world.plant_window(f"other-team-{n}")
    put_override(world, "db", {"schedule": "cron(0 4 ? * SUN *)"})
    world.launch("web")
    world.launch("db")
    assert handle(tag_event(load_event, "web"), world.reconciler)["groups"][0]["status"] == "converged"
    fake_ssm.reset_calls()
    world.log.reset()
    # Before the fix: ResourceLimitExceededException escaped, Lambda retried the event, then the DLQ.
    result = handle(tag_event(load_event, "db"), world.reconciler)
    assert result["ok"]
    [outcome] = result["groups"]
    assert outcome["status"] == "rejected"
    assert "ResourceLimitExceededException" in outcome["reasons"][0]
    assert fake_ssm.CALLS.count("CreateMaintenanceWindow") == 1  # not retried
    assert world.log.count("ssm", writes=True) == 1  # the refused create, nothing else
    assert world.record("db")["status"] == "rejected"
    assert emitted["GroupsRejected"] == 1
    # The scheduled run tries once more per group, and refuses again the same way
    fake_ssm.reset_calls()
    scheduled = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert {g["group"]: g["status"] for g in scheduled["groups"]} == {"db": "rejected", "web": "converged"}
    assert fake_ssm.CALLS.count("CreateMaintenanceWindow") == 1


def test_a_name_outside_the_allow_list_is_rejected_before_any_call(
    aws: None, no_backoff: None, load_event: Loader, emitted: Counter[str]
) -> None:
    world = World(GROUP_NAME_PATTERN="(web|db)(-[a-z0-9]+)?")
    world.log.reset()
    result = handle(tag_event(load_event, "storm-1"), world.reconciler)
    [outcome] = result["groups"]
    assert outcome["status"] == "rejected"
    assert outcome["reasons"] == [
        "PatchGroup value does not match the stack's GroupNamePattern '(web|db)(-[a-z0-9]+)?'"
    ]
    assert world.log.calls == []
    assert emitted["GroupsRejected"] == 1
    world.launch("web-1")
    assert handle(tag_event(load_event, "web-1"), world.reconciler)["groups"][0]["status"] == "converged"


def test_a_claim_retried_after_a_lost_answer_is_counted_once(world: World) -> None:
    groups = world.make_reconciler().groups
    assert groups.claim("web", "web", 2) is None
    assert groups.claim("web", "web", 2) is None  # the retry: ours already, not counted again
    assert groups.claim("db", "db", 2) is None
    assert (
        groups.claim("app", "app", 2) == "2 patch groups are managed already and the stack's MaxGroups is 2"
    )
    assert groups.claim("impostor", "web", None) == "its slug 'web' is claimed by patch group 'web'"
    groups.unclaim("impostor", "web")  # not the holder: nothing given up
    groups.unclaim("db", "db")
    groups.unclaim("db", "db")  # twice: still one place freed
    assert groups.claim("app", "app", 2) is None
    assert [record.group for record in groups.all()] == []  # the claims item is no group


# --- upgrade: groups whose slug changed when names ending like a hashed slug got hashed too ---

DATED = "web-2024061501"  # safe, so its own slug under naming rule 1; ends like a hashed slug
DATED_OVERRIDE = {"schedule": "cron(0 2 ? * TUE#2 *)", "scanSchedule": "cron(0 1 ? * SAT *)"}


@contextmanager
def rule_1_tagpatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The TagPatch before shared windows with naming rule 1 (as 789e50b named and tagged): its
    reconciler, writing this test's account."""
    with old_tagpatch() as old, monkeypatch.context() as patch:
        patch.setattr(old.naming, "group_slug", old.naming.legacy_group_slug)
        patch.setattr(old.naming, "group_tag_value", old.naming.legacy_group_tag_value)
        yield old


def strip_to_rule_1_record(world: World, group: str) -> None:
    """The record as 789e50b wrote it: no slug claim, no naming rule version, no legacy slug."""
    world.ddb.update_item(
        TableName="tagpatch-groups",
        Key={"group": {"S": group}},
        UpdateExpression="REMOVE admitted_slug, #names, legacy_slug",
        ExpressionAttributeNames={"#names": "names"},
    )
    world.ddb.delete_item(TableName="tagpatch-groups", Key={"group": {"S": "#tagpatch:claims"}})


def write_state_of_rule_1(world: World, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """GroupsTable and SSM as TagPatch at 789e50b left them for DATED and its override: its
    reconcile by the TagPatch before shared windows with that commit's naming rule, then the
    record stripped to that commit's shape."""
    legacy_path = put_override(world, DATED, DATED_OVERRIDE)  # at <prefix>web-2024061501
    world.launch(DATED)
    with rule_1_tagpatch(monkeypatch) as old:
        assert old_reconciler(old, world).reconcile_group(DATED, verify=False).status == "converged"
    strip_to_rule_1_record(world, DATED)
    # What 789e50b wrote: names, tags and record slug all the bare group name
    ids = {}
    for role, suffix, task in (("install", "", "patch"), ("scan", "-scan", "scan")):
        made = own_bundle(world, f"TagPatch-{DATED}{suffix}")
        window_id = made["window"]["WindowId"]
        assert world.window_tags(window_id) == {
            "tagpatch:stack": STACK,
            "tagpatch:group": DATED,
            "tagpatch:window": role,
        }
        assert made["target"]["Name"] == f"TagPatch-{DATED}-target{suffix}"
        assert made["task"]["Name"] == f"TagPatch-{DATED}-{task}"
        ids[role] = window_id
    record = world.record(DATED)
    assert record["slug"] == DATED and {r: w["window_id"] for r, w in record["windows"].items()} == ids
    assert not [ids for ids in record["windows"].values() if "place" in ids]
    assert "admitted_slug" not in record and "names" not in record
    ids["legacy_path"] = legacy_path
    return ids


def assert_migrated(world: World, old: dict[str, str] | None, **settings: str) -> None:
    """One shared window per role, with the group's target and task named by today's slug.
    ``old``: the old windows, which must be the shared ones now (adopted: renamed, re-tagged)."""
    settings = settings or DATED_OVERRIDE
    slug = naming.group_slug(DATED)
    assert slug != DATED and slug == world.record(DATED)["slug"]
    assert len(world.windows()) == 2
    for role, suffix, task in (("install", "", "patch"), ("scan", "-scan", "scan")):
        made = assert_single_bundle(world, DATED, role)
        window_id = made["window"]["WindowId"]
        name = world.shared_window_name(role, **settings)
        assert made["window"]["Name"] == name
        if old is not None:
            assert window_id == old[role]  # adopted, not made again
        assert world.window_tags(window_id) == {  # a shared window's tags: no group's
            "tagpatch:stack": STACK,
            "tagpatch:window": role,
            "tagpatch:key": name.split("-")[2],
            "tagpatch:sibling": "0",
        }
        assert made["target"]["Name"] == f"TagPatch-{slug}-target{suffix}"
        assert made["target"]["Targets"] == [{"Key": "tag:PatchGroup", "Values": [DATED]}]
        assert made["task"]["Name"] == f"TagPatch-{slug}-{task}"
    assert world.window_of(DATED)["Schedule"] == settings["schedule"]
    assert world.window_of(DATED, "scan")["Schedule"] == settings["scanSchedule"]


def legacy_reason(world: World) -> str:
    return (
        f"settings read from the legacy path {PREFIX}{DATED}; move them to "
        f"{world.reconciler.override_name(DATED)} (docs/parameters.md)"
    )


@pytest.mark.parametrize("trigger", ["tag event", "scheduled run"])
def test_a_group_whose_slug_changed_keeps_its_windows_and_settings_on_upgrade(
    world: World, load_event: Loader, monkeypatch: pytest.MonkeyPatch, trigger: str
) -> None:
    old = write_state_of_rule_1(world, monkeypatch)
    world.log.reset()
    # Before the fix: a second pair of windows named TagPatch-web-2024061501-43f424716d with the
    # stack's default schedule, next to the old pair; both patched (and rebooted) the instances.
    event = (
        tag_event(load_event, DATED) if trigger == "tag event" else load_event("reconciler-scheduled.json")
    )
    [outcome] = handle(event, world.reconciler)["groups"]
    assert outcome["status"] == "converged", outcome
    assert_migrated(world, old)
    assert outcome["reasons"] == [legacy_reason(world)]
    ops = world.log.ops("ssm")
    # The one-time migration: each window adopted as its key's shared window (its tags set, its
    # group tag removed, renamed), the group's target and task in it renamed; no window, target
    # or task made, none deleted
    assert ops["AddTagsToResource"] == 2 and ops["RemoveTagsFromResource"] == 2
    assert ops["UpdateMaintenanceWindow"] == 2
    assert ops["UpdateMaintenanceWindowTarget"] == 2 and ops["UpdateMaintenanceWindowTask"] == 2
    assert world.log.count("ssm", writes=True) == 10
    assert not {"CreateMaintenanceWindow", "DeleteMaintenanceWindow"} & set(ops)
    record = world.record(DATED)
    assert (record["names"], record["legacy_slug"]) == (naming.NAMES_VERSION, DATED)
    # Converged since: nothing written on either trigger, the override still applied and reported
    for again in (tag_event(load_event, DATED), load_event("reconciler-scheduled.json")):
        world.log.reset()
        [outcome] = handle(again, world.reconciler)["groups"]
        assert outcome["status"] in {"unchanged", "converged"}
        assert outcome["reasons"] == [legacy_reason(world)]
        assert world.log.count("ssm", writes=True) == 0
    assert_migrated(world, old)
    # An edit at the legacy path still applies (its event names the group): the group moves to
    # the shared window of its new schedule, the one it leaves (now empty) is deleted
    schedule = "cron(0 4 ? * WED *)"
    put_override(world, DATED, {**DATED_OVERRIDE, "schedule": schedule})
    [outcome] = handle(settings_event(load_event, old["legacy_path"]), world.reconciler)["groups"]
    assert outcome["status"] == "converged"
    assert_migrated(world, None, **{**DATED_OVERRIDE, "schedule": schedule})
    assert world.window_of(DATED, "scan")["WindowId"] == old["scan"]
    # Moved as docs/parameters.md says: the new path wins, the legacy one is no longer read
    moved = put_override(world, naming.group_slug(DATED), DATED_OVERRIDE)
    world.ssm.delete_parameter(Name=old["legacy_path"])
    [outcome] = handle(settings_event(load_event, moved), world.reconciler)["groups"]
    assert (outcome["status"], outcome["reasons"]) == ("converged", [])
    assert world.record(DATED)["legacy_slug"] == ""
    assert_migrated(world, None)
    world.log.reset()
    handle(tag_event(load_event, DATED), world.reconciler)
    assert world.log.ops("ssm") == {"GetParameter": 1}  # the converged tag event's budget again


@pytest.mark.parametrize("stop_before", ["untag_window", "update_window"])
def test_an_upgrade_stopped_between_retag_and_rename_converges_on_the_next_run(
    world: World, load_event: Loader, monkeypatch: pytest.MonkeyPatch, stop_before: str
) -> None:
    old = write_state_of_rule_1(world, monkeypatch)
    gateway = world.reconciler.ssm

    def crash(*args: Any) -> None:
        raise RuntimeError("Lambda timed out")

    with monkeypatch.context() as patch:
        patch.setattr(gateway, stop_before, crash)
        with pytest.raises(RuntimeError, match="Lambda timed out"):  # the event is retried by Lambda
            handle(tag_event(load_event, DATED), world.reconciler)
    assert world.record(DATED)["status"] == "failed"
    # the install window now carries the shared window's tags but its old name
    assert "tagpatch:key" in world.window_tags(old["install"])
    assert world.ssm.get_maintenance_window(WindowId=old["install"])["Name"] == f"TagPatch-{DATED}"
    [outcome] = handle(load_event("reconciler-scheduled.json"), world.reconciler)["groups"]
    assert outcome["status"] == "converged", outcome
    assert_migrated(world, old)


def test_an_attacker_named_like_an_old_slug_gets_no_window_or_settings_of_the_victim(
    world: World, load_event: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The victim's windows and override were made by 789e50b under the legacy slug
    ``Prod-DB-90a2e279c2``; after the upgrade the attacker tags an instance with that value."""
    victim_schedule = {"schedule": "cron(0 2 ? * TUE#2 *)"}
    put_override(world, naming.legacy_group_slug(VICTIM), victim_schedule)
    world.launch(VICTIM)
    with rule_1_tagpatch(monkeypatch) as old:
        assert old_reconciler(old, world).reconcile_group(VICTIM, verify=False).status == "converged"
    [victim_window] = [w["WindowId"] for w in world.windows()]
    strip_to_rule_1_record(world, VICTIM)
    assert naming.legacy_group_slug(ATTACKER) == naming.legacy_group_slug(VICTIM)
    assert naming.legacy_group_tag_value(ATTACKER) == naming.legacy_group_tag_value(VICTIM)
    world.launch(ATTACKER)
    [outcome] = handle(tag_event(load_event, ATTACKER), world.reconciler)["groups"]
    assert (outcome["status"], outcome["reasons"]) == ("converged", [])
    attacker = assert_single_bundle(world, ATTACKER)
    assert attacker["window"]["WindowId"] != victim_window
    assert attacker["window"]["Schedule"] == "cron(0 3 ? * SUN *)"  # the stack default, not the victim's
    assert attacker["target"]["Targets"] == [{"Key": "tag:PatchGroup", "Values": [ATTACKER]}]
    for _ in range(2):
        result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
        assert {g["group"]: g["status"] for g in result["groups"]} == {
            VICTIM: "converged",
            ATTACKER: "converged",
        }
    victim = assert_single_bundle(world, VICTIM)
    assert victim["window"]["WindowId"] == victim_window  # adopted as its schedule's shared window
    assert victim["window"]["Name"] == world.shared_window_name(**victim_schedule)
    assert victim["window"]["Schedule"] == "cron(0 2 ? * TUE#2 *)"
    assert victim["target"]["Targets"] == [{"Key": "tag:PatchGroup", "Values": [VICTIM]}]
    assert assert_single_bundle(world, ATTACKER) == attacker
    assert len(world.windows()) == 2


def test_a_group_whose_tag_changed_but_not_its_slug_is_re_tagged_on_upgrade(
    world: World, load_event: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = "web prod-2024061501"  # hashed under both rules; tagged as is by rule 1 only
    assert naming.legacy_group_slug(group) == naming.group_slug(group)
    [instance] = world.launch(group)
    with rule_1_tagpatch(monkeypatch) as old:
        assert old_reconciler(old, world).reconcile_group(group, verify=False).status == "converged"
    strip_to_rule_1_record(world, group)
    [window] = [w["WindowId"] for w in world.windows()]
    assert world.window_tags(window)["tagpatch:group"] == group
    # Before the fix the window was kept by name with rule 1's tag, which no later check accepts:
    # emptied, the group could not delete it.
    assert (
        handle(load_event("reconciler-scheduled.json"), world.reconciler)["groups"][0]["status"]
        == "converged"
    )
    assert [w["WindowId"] for w in world.windows()] == [window]  # adopted as the shared window
    assert "tagpatch:group" not in world.window_tags(window)
    assert world.window_tags(window)["tagpatch:key"] == world.shared_window_name().split("-")[2]
    assert world.record(group)["names"] == naming.NAMES_VERSION
    assert_single_bundle(world, group)
    # and emptied, the group's window is deleted with it
    world.env["DELETE_EMPTY_GROUP_WINDOWS"] = "true"
    world.reconciler = world.make_reconciler()
    world.ec2.terminate_instances(InstanceIds=[instance])
    result = handle(load_event("reconciler-scheduled.json"), world.reconciler)
    assert [(g["group"], g["status"]) for g in result["groups"]] == [(group, "deleted")]
    assert world.windows() == []
