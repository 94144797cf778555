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

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from emulator.deploy import REPO_ROOT, Deployment, deploy
from emulator.flows import BatchResult, Flows
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
    timings: dict[str, float] = field(default_factory=dict)
    orgflows: OrgFlows = field(init=False)

    def __post_init__(self) -> None:
        self.orgflows = OrgFlows(self.flows_of)

    def flows_of(self, account: str, region: str) -> Flows | None:
        if (account, region) == (self.hub.account, self.hub.region):
            return self.hub.flows
        member = self.members.get((account, region))
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
) -> OrgStack:
    """The organization, the hub and the members (see the module docstring)."""
    from hub.package import package  # noqa: PLC0415 - hub/ is the templates' package, not the emulator's

    timings: dict[str, float] = {}
    started = time.perf_counter()
    placement = {"hub": "Security", **dict.fromkeys(members, WORKLOADS), SPARE: "root"}
    org = create_organization(emulator, ous=(WORKLOADS, "Security"), accounts=placement)
    hub_view = org.view("hub", HUB_REGION)
    timings["organization"] = time.perf_counter() - started

    started = time.perf_counter()
    packaged = package(hub_view.boto3_session(), STAGING_PREFIX, list(regions), org.id, hub_region=HUB_REGION)
    timings["package"] = time.perf_counter() - started

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

    stacksets = StackSets(org)
    stacksets.adopt(hub_view, hub_deployment)
    organization = OrgStack(emulator, org, stack_of(hub_view, hub_deployment), stacksets, packaged)
    started = time.perf_counter()
    organization.sync()
    timings["members"] = time.perf_counter() - started
    organization.timings = timings
    return organization
