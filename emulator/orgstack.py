"""TagPatch deployed across an organization on the emulator: the hub, then members by StackSets.

:func:`deploy_organization` is the path ``make demo-org`` and the end-to-end tests share:

1. the organization (:func:`emulator.org.create_organization`): the emulator's account is the
   management account; a ``hub`` account (delegated administrator for StackSets) in OU
   ``Security``; member accounts in OU ``Workloads``; a ``spare`` account in the root (it joins
   ``Workloads`` later, to show automatic deployment); an outsider account in no organization;
2. the member template packaged by ``hub/package.py`` (the same function ``make hub-package``
   runs) into the hub account's staging buckets, one per member region;
3. ``hub/template.yaml`` deployed in the hub account (SAM-translated, ``CreateStack``, what moto
   skipped made through the APIs - including the ``MemberStackSet`` through ``CreateStackSet``);
4. the StackSets driver (:mod:`emulator.stacksets`) deploys the stack set's template with its
   parameters into every account of ``Workloads`` x every member region.

Each stack then has its :class:`~emulator.runtime.LambdaRuntime` and :class:`~emulator.flows.Flows`
in its own account and region, and :class:`~emulator.orgflows.OrgFlows` delivers what members
forward to the hub's bus.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from botocore.exceptions import ClientError

from emulator.deploy import REPO_ROOT, SKIPPED, Deployment, deploy
from emulator.fake_ssm import make_instance_patch_state
from emulator.flows import BatchResult, Flows, WindowRun
from emulator.moto_ext import JOURNAL, events_clock
from emulator.org import Organization, create_organization
from emulator.orgflows import BusDelivery, OrgFlows
from emulator.runtime import LambdaRuntime
from emulator.server import Emulator
from emulator.stacksets import StackInstance, StackSets, SyncResult

HUB_TEMPLATE: Final = REPO_ROOT / "hub" / "template.yaml"
HUB_STACK: Final = "tagpatch-hub"
HUB_REGION: Final = "us-east-1"
MEMBER_REGIONS: Final = ("us-east-1", "eu-west-1")
WORKLOADS: Final = "Workloads"
STAGING_PREFIX: Final = "tagpatch-org-staging"
MEMBERS: Final = ("member-a", "member-b", "member-c")
SPARE: Final = "spare"
TAG_KEY: Final = "PatchGroup"


class Progress(Protocol):
    """Where the steps are told (the demo's printer)."""

    def step(self, text: str) -> None: ...

    def detail(self, text: str) -> None: ...


class _Silent:
    def step(self, text: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass


def describe_deployment(deployment: Deployment) -> str:
    by_cfn = sum(1 for r in deployment.resources.values() if r.made_by == "cloudformation")
    return (
        f"{len(deployment.resources)} resources, {by_cfn} by CloudFormation, "
        f"{len(deployment.changes(SKIPPED))} skipped by moto and made through their APIs"
    )


@dataclass
class Stack:
    """One deployed stack with its runtime and flows."""

    view: Emulator
    deployment: Deployment
    runtime: LambdaRuntime
    flows: Flows

    @property
    def account(self) -> str:
        return self.view.account_id

    @property
    def region(self) -> str:
        return self.view.region

    def client(self, service: str) -> Any:
        return self.view.client(service)


def stack_of(view: Emulator, deployment: Deployment) -> Stack:
    runtime = LambdaRuntime(view, deployment)
    return Stack(view, deployment, runtime, Flows(view, deployment, runtime))


@dataclass
class OrgStack:
    emulator: Emulator
    org: Organization
    hub: Stack
    stacksets: StackSets
    packaged: Any  # hub.package.Packaged
    members: dict[tuple[str, str], Stack] = field(default_factory=dict)
    others: dict[tuple[str, str], Stack] = field(default_factory=dict)  # stand-alone (the outsider's)
    timings: dict[str, float] = field(default_factory=dict)
    orgflows: OrgFlows = field(init=False)

    def __post_init__(self) -> None:
        self.orgflows = OrgFlows(self.flows_of)

    def flows_of(self, account: str, region: str) -> Flows | None:
        if (account, region) == (self.hub.account, self.hub.region):
            return self.hub.flows
        member = self.members.get((account, region)) or self.others.get((account, region))
        return member.flows if member is not None else None

    def member(self, account: str, region: str) -> Stack:
        return self.members[(self.org.accounts.get(account, account), region)]

    def sync(self) -> SyncResult:
        """The StackSets service reacts to the organization (automatic deployment)."""
        result = self.stacksets.sync()
        for instance in result.created:
            self._adopt(instance)
        for _, account, region in result.deleted:
            self.members.pop((account, region), None)
        return result

    def _adopt(self, instance: StackInstance) -> None:
        self.members[(instance.account, instance.region)] = stack_of(instance.view, instance.deployment)

    def forward(self) -> list[BusDelivery]:
        """EventBridge delivers what the members' rules sent to the hub's bus."""
        return self.orgflows.forward()

    def drain_hub(self) -> list[BatchResult]:
        """Lambda's poller drains HubQueue into HubStoreFunction."""
        return self.hub.flows.poll("HubStoreFunction")


def deploy_organization(
    emulator: Emulator,
    *,
    members: Sequence[str] = MEMBERS,
    regions: Sequence[str] = MEMBER_REGIONS,
    hub_parameters: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> OrgStack:
    """The organization, the hub and the members (see the module docstring); each step is told to
    ``progress`` as it ends."""
    say = progress or _Silent()
    from hub.package import package  # noqa: PLC0415 - hub/ is the templates' package, not the emulator's

    timings: dict[str, float] = {}
    started = time.perf_counter()
    placement = {"hub": "Security", **dict.fromkeys(members, WORKLOADS), SPARE: "root"}
    org = create_organization(emulator, ous=(WORKLOADS, "Security"), accounts=placement)
    hub_view = org.view("hub", HUB_REGION)
    timings["organization"] = time.perf_counter() - started
    others = ", ".join(
        f"{name} {org.accounts[name]}" for name in org.accounts if name not in {"management", "hub"}
    )
    say.step(
        f"organization {org.id}: management {org.management}, hub {org.accounts['hub']} (OU Security, "
        f"delegated administrator for StackSets), {others}; outsider {org.outsider} in no organization"
    )

    started = time.perf_counter()
    packaged = package(hub_view.boto3_session(), STAGING_PREFIX, list(regions), org.id, hub_region=HUB_REGION)
    timings["package"] = time.perf_counter() - started
    say.step(
        f"hub/package.py as the hub: member code in {', '.join(sorted(packaged.buckets.values()))}; "
        f"TemplateURL {packaged.template_url}"
    )

    started = time.perf_counter()
    parameters = {
        "OrganizationId": org.id,
        "OrganizationalUnitIds": org.ous[WORKLOADS],
        "MemberRegions": ",".join(regions),
        "MemberTemplateUrl": packaged.template_url,
        **dict(hub_parameters or {}),
    }
    hub_deployment = deploy(hub_view, template_path=HUB_TEMPLATE, stack_name=HUB_STACK, parameters=parameters)
    timings["hub"] = time.perf_counter() - started
    say.step(
        f"hub/template.yaml deployed as stack {HUB_STACK} in {hub_view.account_id} {HUB_REGION}: "
        f"{describe_deployment(hub_deployment)}"
    )

    stacksets = StackSets(org)
    stacksets.adopt(hub_view, hub_deployment)
    organization = OrgStack(emulator, org, stack_of(hub_view, hub_deployment), stacksets, packaged)
    started = time.perf_counter()
    synced = organization.sync()
    timings["members"] = time.perf_counter() - started
    say.step(
        f"StackSets driver: MemberStackSet -> {len(synced.created)} stack instances "
        f"({WORKLOADS} x {', '.join(regions)})"
    )
    for instance in synced.created:
        say.detail(
            f"{org.name_of(instance.account)} {instance.account} {instance.region}: "
            f"{instance.deployment.stack_name} ({describe_deployment(instance.deployment)}, "
            f"{instance.seconds:.1f} s)"
        )
    organization.timings = timings
    return organization


@dataclass
class MemberActivity:
    """What :func:`drive_member` did in one member stack."""

    stack: Stack
    groups: dict[str, list[str]]  # group -> instance ids
    runs: list[WindowRun] = field(default_factory=list)
    failed_invocations: list[str] = field(default_factory=list)
    published: int = 0  # events:PutEvents calls its functions made


def drive_member(
    stack: Stack,
    groups: Mapping[str, int],
    *,
    failed: Mapping[str, int] | None = None,
    missing: Mapping[str, int] | None = None,
    snapshot_at: datetime | None = None,
) -> MemberActivity:
    """In one member, through its deployed wiring: launch ``groups`` (group -> instance count), tag
    them (tag change events -> ReconcileQueue -> the reconciler: "Group Reconciled"), run each
    group's window once with ``failed[group]`` instances failing (Run Command notifications -> the
    collector: "Run Result"), report patch states with ``missing[group]`` instances missing patches
    and run the compliance snapshot at ``snapshot_at`` (default now; the reporter takes one snapshot
    per minute: "Compliance Snapshot", "Member Heartbeat")."""
    failed, missing = dict(failed or {}), dict(missing or {})
    ec2 = stack.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    activity = MemberActivity(stack, {})
    mark = JOURNAL.mark()
    for group, count in groups.items():
        response = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.micro")
        activity.groups[group] = [instance["InstanceId"] for instance in response["Instances"]]
        stack.flows.tag_instances(activity.groups[group], TAG_KEY, group)
    invocations = [batch.invocation for batch in stack.flows.poll("ReconcilerFunction")]
    for group, ids in activity.groups.items():
        outcomes = {instance: "Failed" for instance in ids[: failed.get(group, 0)]}
        activity.runs.append(stack.flows.run_window(group, outcomes))
    invocations += [batch.invocation for batch in stack.flows.poll("StatusCollectorFunction")]
    states = [
        make_instance_patch_state(instance, group, missing=2, security=1)
        if index < missing.get(group, 0)
        else make_instance_patch_state(instance, group)
        for group, ids in activity.groups.items()
        for index, instance in enumerate(ids)
    ]
    stack.flows.seed_patch_states(states)
    for delivery in stack.flows.fire_schedule("ComplianceReporterFunction", at=snapshot_at):
        if delivery.outcome is not None:
            invocations += delivery.outcome.attempts
    invocations += [batch.invocation for batch in stack.flows.poll("ComplianceReporterFunction")]
    activity.failed_invocations = [f"{i.function}: {i.describe_error()}" for i in invocations if not i.ok]
    activity.published = sum(
        1
        for access in JOURNAL.entries(since=mark)
        if access.action == "events:PutEvents" and access.allowed and f":{stack.account}:" in access.principal
    )
    return activity


# --------------------------------------------------------------------------------------------
# The organization scenario the demo prints and the end-to-end tests assert
# --------------------------------------------------------------------------------------------

#: How long ago the silent member's activity happened (more than SilentAfterHours, 24).
SILENT_HOURS: Final = 26


@dataclass(frozen=True)
class Profile:
    """What one member's fleet does: groups (name -> instances), failed runs, missing patches."""

    groups: Mapping[str, int]
    failed: Mapping[str, int] = field(default_factory=dict)
    missing: Mapping[str, int] = field(default_factory=dict)


#: Per member account (the same in each of its regions); the last member goes silent in its last region.
PROFILES: Final = (
    Profile({"web": 2, "db": 1}),
    Profile({"web": 2, "db": 2}, failed={"db": 1}, missing={"web": 1, "db": 1}),
    Profile({"batch": 2}, missing={"batch": 1}),
)


@dataclass
class Scenario:
    org: OrgStack
    activities: list[MemberActivity] = field(default_factory=list)
    silent: tuple[str, str] = ("", "")  # (account, region) whose events are SILENT_HOURS old
    outsider: Stack | None = None
    outsider_direct: str = ""  # what became of the outsider's own PutEvents on the hub bus
    forwarded: list[BusDelivery] = field(default_factory=list)
    hub_batches: list[BatchResult] = field(default_factory=list)
    joined: SyncResult | None = None  # the spare account moved into the OU
    left: SyncResult | None = None  # ... and out again
    timings: dict[str, float] = field(default_factory=dict)


def deploy_outsider(org: OrgStack, region: str = HUB_REGION) -> Stack:
    """template.yaml deployed by the outsider account itself, forwarding to the hub's bus."""
    view = org.org.view(org.org.outsider, region)
    deployment = deploy(view, parameters={"HubEventBusArn": org.hub.deployment.outputs["HubEventBusArn"]})
    stack = org.others[(view.account_id, view.region)] = stack_of(view, deployment)
    return stack


def outsider_put_events(org: OrgStack, region: str = HUB_REGION) -> str:
    """The outsider's admin puts an event straight on the hub's bus: "" if it was taken."""
    events = org.org.view(org.org.outsider, region).client("events")
    entry = {
        "Source": "tagpatch",
        "DetailType": "Compliance Snapshot",
        "Detail": "{}",
        "EventBusName": org.hub.deployment.outputs["HubEventBusArn"],
    }
    try:
        events.put_events(Entries=[entry])
    except ClientError as error:
        return f"{error.response['Error']['Code']}: {error.response['Error']['Message']}"
    return ""


def play(org: OrgStack, *, join: bool = True, progress: Progress | None = None) -> Scenario:
    """Every member driven (one of them a day ago), an outsider trying to join in, the hub fed;
    each step told to ``progress`` as it ends."""
    say = progress or _Silent()
    scenario = Scenario(org)
    started = time.perf_counter()
    members = sorted(org.members, key=lambda key: (org.org.name_of(key[0]), key[1]))
    scenario.silent = members[-1]
    accounts = sorted({key[0] for key in members}, key=org.org.name_of)
    for key in members:
        profile = PROFILES[accounts.index(key[0]) % len(PROFILES)]
        clock: AbstractContextManager[None] = (
            events_clock(-SILENT_HOURS * 3600) if key == scenario.silent else nullcontext()
        )
        with clock:
            activity = drive_member(
                org.members[key], profile.groups, failed=profile.failed, missing=profile.missing
            )
        scenario.activities.append(activity)
        say.detail(
            f"{org.org.name_of(key[0])} {key[1]}: groups "
            + ", ".join(f"{g} x{len(ids)}" for g, ids in activity.groups.items())
            + f"; {activity.published} PutEvents by its functions"
            + (" (played a day ago: silent now)" if key == scenario.silent else "")
        )
    scenario.timings["members driven"] = time.perf_counter() - started
    say.step(
        "members driven through their wiring: tag changes -> reconciler, a window run per group -> "
        "collector, a compliance snapshot -> reporter"
    )

    started = time.perf_counter()
    scenario.outsider = deploy_outsider(org)
    drive_member(scenario.outsider, {"rogue": 1})
    scenario.outsider_direct = outsider_put_events(org)
    scenario.timings["outsider"] = time.perf_counter() - started
    say.step(
        f"outsider {org.org.outsider}: template.yaml deployed by itself with HubEventBusArn = the hub bus, "
        f"driven; its own PutEvents on the hub bus: {scenario.outsider_direct.split(':', 1)[0] or 'taken'}"
    )

    started = time.perf_counter()
    scenario.forwarded = org.forward()
    scenario.hub_batches = org.drain_hub()
    scenario.timings["forwarded and stored"] = time.perf_counter() - started
    refused = [d for d in scenario.forwarded if d.refused]
    say.step(
        f"EventBridge: {len(scenario.forwarded)} member events through HubForwardRule; "
        f"{len(scenario.forwarded) - len(refused)} put on the hub bus and sent to HubQueue, {len(refused)} "
        "refused (the outsider's, by the bus policy) -> its HubForwardDLQ"
    )
    batches = scenario.hub_batches
    say.step(
        f"Lambda's poller drained HubQueue into HubStoreFunction: {len(batches)} batch(es), "
        f"{sum(len(b.message_ids) for b in batches)} records, "
        f"{sum(len(b.failed_ids) for b in batches)} failed"
    )

    if join:
        started = time.perf_counter()
        org.org.move_account(SPARE, WORKLOADS)
        scenario.joined = org.sync()
        for instance in scenario.joined.created:
            scenario.activities.append(
                drive_member(org.members[(instance.account, instance.region)], {"web": 1})
            )
        scenario.forwarded += org.forward()
        scenario.hub_batches += org.drain_hub()
        scenario.timings["spare joined"] = time.perf_counter() - started
        say.step(
            f"organizations:MoveAccount {SPARE} -> {WORKLOADS}; StackSets automatic deployment: "
            f"{len(scenario.joined.created)} stack instances, their events forwarded and stored"
        )
    return scenario


def run_cli(view: Emulator, argv: Sequence[str], stack: str = HUB_STACK) -> tuple[int, str, str]:
    """``tagpatch --endpoint-url <emulator> --stack <stack> <argv>`` as the admin of ``view``'s
    account and region (the keys in the environment, as an operator's shell has them)."""
    from tagpatch.cli.app import main as tagpatch  # noqa: PLC0415 - the operator's CLI, imported when run

    creds = view.admin
    environment = {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_SESSION_TOKEN": creds.session_token or "",
        "AWS_DEFAULT_REGION": view.region,
        "AWS_REGION": view.region,
    }
    saved = {name: os.environ.get(name) for name in (*environment, "AWS_SECURITY_TOKEN")}
    os.environ.pop("AWS_SECURITY_TOKEN", None)
    os.environ.update(environment)
    if not creds.session_token:
        os.environ.pop("AWS_SESSION_TOKEN")
    out, err = io.StringIO(), io.StringIO()
    try:
        code = tagpatch(["--endpoint-url", view.endpoint_url, "--stack", stack, *argv], out=out, err=err)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return code, out.getvalue(), err.getvalue()
