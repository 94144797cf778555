"""The StackSets service for service-managed stack sets, played against the emulator's organization.

moto 5.2's ``CreateStackSet`` stores the stack set but ignores ``AutoDeployment``, ``CallAs``,
``ManagedExecution`` and ``Capabilities``; its ``CreateStackInstances`` looks the target OUs up in
the *calling* account's Organizations backend (a delegated administrator's is empty) and creates
"hidden" stacks through moto's CloudFormation, which skips most of TagPatch's resources. So the
emulator does what the service does instead (AWS CloudFormation User Guide, "Manage automatic
deployments for a CloudFormation StackSet with service-managed permissions",
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-manage-auto-deployment.html,
and "Create CloudFormation StackSets with service-managed permissions",
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-associate-stackset-with-org.html):

* :meth:`StackSets.adopt` takes each ``AWS::CloudFormation::StackSet`` a deployment made (the
  stack set itself was created through moto's API by :mod:`emulator.deploy`) with its resolved
  properties: ``StackInstancesGroup`` (``DeploymentTargets.OrganizationalUnitIds`` x ``Regions``),
  ``AutoDeployment`` and the stack set's template and parameters as ``DescribeStackSet`` returns them;
* :meth:`StackSets.sync` makes the stack instances match the organization: every ACTIVE account
  in a target OU or one of its child OUs x every region gets the template deployed with the stack
  set's parameters by :func:`emulator.deploy.deploy_template`, in that account and region, signed
  as that account's ``OrganizationAccountAccessRole``; the management account never does ("StackSets
  doesn't deploy stack instances to the organization's management account, even if the management
  account is in your organization or in an OU in your organization", same page). With automatic
  deployment, an account that left every target OU has its instances deleted (unless
  ``RetainStacksOnAccountRemoval``).

Every difference from the real service is in :attr:`StackSets.notes` (the demo prints them).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError
from samtranslator.yaml_helper import yaml_parse

from emulator.deploy import NOT_REPRODUCED, ApiChange, Deployment, deploy_template
from emulator.org import Organization
from emulator.server import Emulator

STACK_SET_TYPE: Final = "AWS::CloudFormation::StackSet"

NOTES: Final = (
    "moto's CreateStackSet ignores AutoDeployment, CallAs, ManagedExecution and Capabilities: the "
    "emulator's StackSets driver keeps them from the AWS::CloudFormation::StackSet resource's properties",
    "stack instances are deployed by the driver (not moto's CreateStackInstances, which would look the "
    "OUs up in the delegated administrator's empty Organizations backend and skip most resources): "
    "each one is "
    "the stack set's template and parameters deployed like any stack, in the member account and region, "
    "signed as OrganizationAccountAccessRole (on AWS: the StackSets service-linked roles)",
    "automatic deployment runs when the driver syncs after an Organizations change (AWS reacts to the "
    "change by itself); OperationPreferences (concurrency, failure tolerance) are not emulated: instances "
    "are deployed one after another and the first failure stops the sync",
    "ListStackInstances does not list the driver's instances; they are StackSets.instances",
    "deleting an instance deletes its stack (moto deletes what its CloudFormation made) and the resources "
    "the emulator made through their APIs where the API allows (alarms, schedules, maintenance windows, "
    "subscriptions); what the member's functions made at run time stays, as on AWS",
)


@dataclass
class StackInstance:
    stack_set: str  # stack set name
    account: str
    region: str
    deployment: Deployment
    view: Emulator
    seconds: float = 0.0


@dataclass
class ManagedStackSet:
    name: str
    id: str
    admin: Emulator  # the account that owns the stack set (the delegated administrator)
    properties: dict[str, Any]
    template: dict[str, Any]
    parameters: dict[str, str]

    @property
    def targets(self) -> list[tuple[list[str], list[str]]]:
        """(OU ids, regions) per StackInstancesGroup."""
        return [
            (list(group["DeploymentTargets"].get("OrganizationalUnitIds", [])), list(group["Regions"]))
            for group in self.properties.get("StackInstancesGroup", [])
        ]

    @property
    def auto_deployment(self) -> bool:
        return str(self.properties.get("AutoDeployment", {}).get("Enabled", "false")).lower() == "true"

    @property
    def retain_on_removal(self) -> bool:
        value = self.properties.get("AutoDeployment", {}).get("RetainStacksOnAccountRemoval", "false")
        return str(value).lower() == "true"


@dataclass
class SyncResult:
    created: list[StackInstance] = field(default_factory=list)
    deleted: list[tuple[str, str, str]] = field(default_factory=list)  # (stack set, account, region)
    retained: list[tuple[str, str, str]] = field(default_factory=list)


class StackSets:
    """Service-managed stack sets of ``org`` (see the module docstring)."""

    def __init__(self, org: Organization) -> None:
        self.org = org
        self.stack_sets: dict[str, ManagedStackSet] = {}
        self.instances: dict[tuple[str, str, str], StackInstance] = {}
        self.notes: list[str] = list(NOTES)

    def adopt(self, admin: Emulator, deployment: Deployment) -> list[ManagedStackSet]:
        """The stack sets ``deployment`` (made with ``admin``) created; not synced yet."""
        adopted = []
        cloudformation = admin.client("cloudformation")
        for resource in deployment.of_type(STACK_SET_TYPE):
            properties = deployment.properties[resource.logical_id]
            call_as = str(properties.get("CallAs", "SELF"))
            described = cloudformation.describe_stack_set(StackSetName=resource.physical_id, CallAs=call_as)[
                "StackSet"
            ]
            template = yaml_parse(described["TemplateBody"])
            parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
            stack_set = ManagedStackSet(
                str(described["StackSetName"]), resource.physical_id, admin, properties, template, parameters
            )
            self.stack_sets[stack_set.name] = stack_set
            adopted.append(stack_set)
        return adopted

    def desired(self) -> set[tuple[str, str, str]]:
        wanted: set[tuple[str, str, str]] = set()
        for stack_set in self.stack_sets.values():
            for ous, regions in stack_set.targets:
                for account in self.org.accounts_in(ous):
                    if account == self.org.management:
                        continue
                    wanted.update((stack_set.name, account, region) for region in regions)
        return wanted

    def sync(self) -> SyncResult:
        """Deploy the missing instances, delete those of accounts that left (automatic deployment)."""
        result = SyncResult()
        wanted = self.desired()
        for key in sorted(wanted - set(self.instances)):
            result.created.append(self._deploy(*key))
        for key in sorted(set(self.instances) - wanted):
            stack_set = self.stack_sets[key[0]]
            if not stack_set.auto_deployment or stack_set.retain_on_removal:
                result.retained.append(key)
                continue
            self._delete(self.instances.pop(key))
            result.deleted.append(key)
        return result

    def instance(self, account: str, region: str, stack_set: str | None = None) -> StackInstance:
        account_id = self.org.accounts.get(account, account)
        for (name, acct, reg), instance in self.instances.items():
            if acct == account_id and reg == region and stack_set in {None, name}:
                return instance
        raise KeyError(f"no stack instance in {account} {region}")

    # -- internals ------------------------------------------------------------------------------
    def _deploy(self, name: str, account: str, region: str) -> StackInstance:
        stack_set = self.stack_sets[name]
        view = self.org.view(account, region)
        started = time.perf_counter()
        deployment = deploy_template(
            view,
            stack_set.template,
            stack_name=f"StackSet-{name}-{uuid.uuid4()}",
            parameters=stack_set.parameters,
        )
        deployment.api_changes.append(
            ApiChange(
                name,
                STACK_SET_TYPE,
                NOT_REPRODUCED,
                f"stack instance deployed by the emulator's StackSets driver for "
                f"{stack_set.admin.account_id} "
                f"(CreateStack of the stack set's template and parameters, not the StackSets service)",
            )
        )
        instance = StackInstance(name, account, region, deployment, view, time.perf_counter() - started)
        self.instances[(name, account, region)] = instance
        return instance

    def _delete(self, instance: StackInstance) -> None:
        view, deployment = instance.view, instance.deployment
        iam = view.client("iam")
        # What CloudFormation's IAM handlers do before deleting: a role's managed policies (attached
        # through the API, moto's CloudFormation dropped them) detached; a managed policy of the
        # stack detached from the roles outside it (the emulator's instance role, as an operator would).
        for resource in deployment.of_type("AWS::IAM::Role"):
            for policy in iam.list_attached_role_policies(RoleName=resource.physical_id)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=resource.physical_id, PolicyArn=policy["PolicyArn"])
        for resource in deployment.of_type("AWS::IAM::ManagedPolicy"):
            entities = iam.list_entities_for_policy(PolicyArn=resource.physical_id)
            for role in entities.get("PolicyRoles", []):
                iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=resource.physical_id)
        for resource in deployment.resources.values():
            if resource.made_by != "api":
                continue
            try:
                _delete_made_by_api(view, resource.type, resource.physical_id)
            except ClientError:
                continue  # gone with its parent resource
        view.client("cloudformation").delete_stack(StackName=deployment.stack_id)


def _delete_made_by_api(view: Emulator, kind: str, physical_id: str) -> None:
    if kind == "AWS::CloudWatch::Alarm":
        view.client("cloudwatch").delete_alarms(AlarmNames=[physical_id])
    elif kind == "AWS::Scheduler::Schedule":
        view.client("scheduler").delete_schedule(Name=physical_id)
    elif kind == "AWS::SSM::MaintenanceWindow":
        view.client("ssm").delete_maintenance_window(WindowId=physical_id)
    elif kind == "AWS::SNS::Subscription":
        view.client("sns").unsubscribe(SubscriptionArn=physical_id)
    elif kind == "AWS::Lambda::EventInvokeConfig":
        name, _, qualifier = physical_id.partition(":")
        view.client("lambda").delete_function_event_invoke_config(FunctionName=name, Qualifier=qualifier)


def parameters_of(instance: StackInstance) -> dict[str, str]:
    """The parameters the member stack was created with, as CloudFormation describes them."""
    stack = instance.view.client("cloudformation").describe_stacks(StackName=instance.deployment.stack_id)
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Stacks"][0].get("Parameters", [])}


def describe(stack_set: ManagedStackSet) -> str:
    return json.dumps(
        {
            "StackSetName": stack_set.name,
            "Targets": stack_set.targets,
            "AutoDeployment": stack_set.properties.get("AutoDeployment"),
        }
    )
