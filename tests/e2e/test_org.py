"""End to end across an organization: the hub deployed in the delegated administrator account, the
member stacks by its StackSet in every account of the Workloads OU x two regions, member events
forwarded to the hub's bus and stored by the hub's function, read back by the ``tagpatch`` CLI.

One organization for the module (``scenario``, :func:`emulator.orgstack.play`): three member
accounts x us-east-1 and eu-west-1, each driven through its deployed wiring (tag changes, a window
run, a compliance snapshot), the last one a day ago (silent now); an outsider account not in the
organization deploys template.yaml itself pointing at the hub's bus and also puts an event there
directly. Run with ``--dist loadfile`` (as ``make test``) so the module's organization is built once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from emulator.moto_ext import BusArrival
from emulator.orgstack import (
    MEMBER_REGIONS,
    SILENT_HOURS,
    SPARE,
    WORKLOADS,
    OrgStack,
    Scenario,
    deploy_organization,
    drive_member,
    play,
    run_cli,
)
from emulator.permissions import role_usage
from emulator.server import Emulator
from emulator.stacksets import parameters_of

_DESERIALIZER = TypeDeserializer()


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    with Emulator() as emulator:
        organization = deploy_organization(emulator)
        yield play(organization, join=False)


def _active(scenario: Scenario) -> list[tuple[str, str]]:
    """The members other than the silent one (a test that drives one must not wake it up)."""
    return [key for key in sorted(scenario.org.members) if key != scenario.silent]


def _state(org: OrgStack) -> list[dict[str, Any]]:
    ddb = org.hub.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=org.hub.deployment.outputs["HubStateTableName"]):
        items.extend({k: _DESERIALIZER.deserialize(v) for k, v in item.items()} for item in page["Items"])
    return items


def _history(org: OrgStack, kind: str, day: str) -> list[dict[str, Any]]:
    ddb = org.hub.client("dynamodb")
    pages = ddb.get_paginator("query").paginate(
        TableName=org.hub.deployment.outputs["HubHistoryTableName"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{kind}#{day}"}},
    )
    return [
        {k: _DESERIALIZER.deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]
    ]


# --------------------------------------------------------------------------------------------
# StackSets
# --------------------------------------------------------------------------------------------


def test_the_stack_set_deploys_a_member_in_every_account_of_the_ou_and_region(scenario: Scenario) -> None:
    # Given the organization: three accounts in Workloads, the hub in Security, a spare in the root
    org = scenario.org
    workloads = org.org.accounts_in([org.org.ous[WORKLOADS]])

    # When the StackSets driver has synced the hub's MemberStackSet
    instances = {(account, region) for _, account, region in org.stacksets.instances}

    # Then every Workloads account has a member stack in both regions, and nothing else has one
    assert len(workloads) == 3
    assert instances == {(account, region) for account in workloads for region in MEMBER_REGIONS}
    assert org.org.accounts["hub"] not in workloads
    assert org.org.accounts[SPARE] not in workloads
    for account, region in instances:
        stack = org.members[(account, region)]
        status = stack.client("cloudformation").describe_stacks(StackName=stack.deployment.stack_id)
        assert status["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        assert stack.deployment.stack_name.startswith("StackSet-tagpatch-hub-members-")


def test_the_stack_set_parameters_reach_every_member(scenario: Scenario) -> None:
    # Given the hub's bus and the stack set the hub created through CloudFormation
    org = scenario.org
    bus_arn = org.hub.deployment.outputs["HubEventBusArn"]
    stack_set = org.stacksets.stack_sets["tagpatch-hub-members"]

    # When each member stack's parameters and forwarding rule are read in its own account
    for instance in org.stacksets.instances.values():
        parameters = parameters_of(instance)
        rule = instance.deployment.physical_id("HubForwardRule")
        (target,) = instance.view.client("events").list_targets_by_rule(Rule=rule)["Targets"]

        # Then HubEventBusArn is the hub bus (the StackSet's Parameters, !GetAtt HubBus.Arn), and
        # the member's rule forwards to it with its own role and dead-letter queue
        assert parameters["HubEventBusArn"] == bus_arn == stack_set.parameters["HubEventBusArn"]
        assert target["Arn"] == bus_arn
        assert target["RoleArn"].endswith(instance.deployment.physical_id("HubForwardRole"))
        assert target["DeadLetterConfig"]["Arn"].endswith(
            instance.deployment.physical_id("HubForwardDLQ").rsplit("/", 1)[-1]
        )
    assert stack_set.auto_deployment and not stack_set.retain_on_removal


# --------------------------------------------------------------------------------------------
# Forwarding and the bus policy
# --------------------------------------------------------------------------------------------


def test_every_member_event_reaches_the_hub_and_is_stored(scenario: Scenario) -> None:
    # Given what the members forwarded
    org = scenario.org
    members = {(stack.account, stack.region) for stack in org.members.values()}
    delivered = [d for d in scenario.forwarded if (d.sender_account, d.sender_region) in members]

    # Then every event passed the role, its policy and the bus policy, kept its own envelope and
    # went to HubQueue under its queue policy; the store function took every batch
    assert delivered and all(not d.refused for d in delivered)
    assert all(
        [(x.queue, bool(x.message_id), x.refused) for x in d.deliveries] == [("HubQueue", True, "")]
        for d in delivered
    )
    assert all(
        (d.event["account"], d.event["region"]) == (d.sender_account, d.sender_region) for d in delivered
    )
    assert {d.event["detail-type"] for d in delivered} == {
        "Group Reconciled",
        "Run Result",
        "Compliance Snapshot",
        "Member Heartbeat",
    }
    assert all(batch.invocation.ok and not batch.failed_ids for batch in scenario.hub_batches)
    assert org.hub.flows.queue_depth("HubQueue") == 0
    assert org.hub.flows.queue_depth("HubDLQ") == 0
    # ... and the hub holds each member and each of its groups, in the OU it resolved
    state = _state(org)
    member_items = {item["pk"]: item for item in state if item["sk"] == "#member"}
    assert set(member_items) == {f"{account}#{region}" for account, region in members}
    assert {item["ouName"] for item in member_items.values()} == {WORKLOADS}
    for activity in scenario.activities:
        pk = f"{activity.stack.account}#{activity.stack.region}"
        groups = {item["sk"] for item in state if item["pk"] == pk and item["sk"] != "#member"}
        assert groups == {f"group#{group}" for group in activity.groups}


def test_a_member_outside_the_organization_is_refused_by_the_bus_policy(scenario: Scenario) -> None:
    # Given the outsider's own stack (template.yaml with HubEventBusArn = the hub's bus)
    org = scenario.org
    outsider = scenario.outsider
    assert outsider is not None
    refused = [d for d in scenario.forwarded if d.sender_account == org.org.outsider]

    # Then its events passed its own role but not the hub's bus policy (aws:PrincipalOrgID): each
    # went to its HubForwardDLQ with EventBridge's error attributes, none reached the hub
    assert refused and all("aws:PrincipalOrgID none" in d.refused for d in refused)
    assert all(d.dead_letter == "HubForwardDLQ" and not d.deliveries for d in refused)
    sqs = outsider.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=outsider.deployment.physical_id("HubForwardDLQ"),
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
    )["Messages"]
    assert len(messages) == len(refused)
    attributes = messages[0]["MessageAttributes"]
    assert attributes["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"
    assert attributes["RULE_ARN"]["StringValue"].endswith(outsider.deployment.physical_id("HubForwardRule"))
    assert json.loads(messages[0]["Body"])["account"] == org.org.outsider
    assert not [item for item in _state(org) if item["pk"].startswith(org.org.outsider)]
    # ... and its admin's own PutEvents on the hub's bus is refused as well
    assert scenario.outsider_direct.startswith("AccessDeniedException:")
    assert "no resource-based policy allows the events:PutEvents action" in scenario.outsider_direct


def test_no_request_of_a_hub_or_member_role_was_denied(scenario: Scenario) -> None:
    # Given every role that acted: the hub's store function, each member's functions and the
    # role EventBridge assumed to forward to the hub
    org = scenario.org
    invoked = {invocation.function for invocation in org.hub.runtime.invocations}
    usages = [role_usage(org.hub.view, f, org.hub.runtime.role_name(f)) for f in sorted(invoked)]
    for stack in org.members.values():
        for function in sorted({invocation.function for invocation in stack.runtime.invocations}):
            usages.append(role_usage(stack.view, function, stack.runtime.role_name(function)))
        usages.append(
            role_usage(stack.view, "HubForwardRole", stack.deployment.physical_id("HubForwardRole"))
        )

    # Then none was denied anything (before the next test takes a forwarding role's policy away),
    # and the forwarding role used exactly what it is granted
    assert "HubStoreFunction" in invoked
    assert not [access for usage in usages for access in usage.denied]
    forward = [usage for usage in usages if usage.label == "HubForwardRole"]
    assert len(forward) == len(org.members)
    assert all(usage.used["events:PutEvents"] >= 1 and not usage.unused for usage in forward)


def test_a_member_role_without_put_events_on_the_bus_is_refused_before_the_bus(scenario: Scenario) -> None:
    # Given a member whose forwarding role lost its policy
    org = scenario.org
    member = org.members[_active(scenario)[0]]
    role = member.deployment.physical_id("HubForwardRole")
    iam = member.client("iam")
    (policy,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    iam.delete_role_policy(RoleName=role, PolicyName=policy)
    try:
        # When one of its events is forwarded
        drive_member(member, {"lost-role": 1})
        deliveries = org.forward()
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=policy, PolicyDocument=json.dumps(document))

    # Then EventBridge could not put it with the role: it is in the member's DLQ, not at the hub
    assert deliveries and all("may not events:PutEvents" in d.refused for d in deliveries)
    assert all(d.dead_letter == "HubForwardDLQ" for d in deliveries)
    assert member.flows.queue_depth("HubForwardDLQ") == len(deliveries)


# --------------------------------------------------------------------------------------------
# Idempotent hub
# --------------------------------------------------------------------------------------------


def test_duplicates_and_reordering_of_forwarded_events_leave_one_row(scenario: Scenario) -> None:
    # Given a member's new group whose events (reconciled, run, snapshot) are waiting for delivery
    org = scenario.org
    member = org.members[_active(scenario)[1]]
    # (a snapshot a minute later than the scenario's: the reporter runs once per minute slot)
    later = datetime.now(UTC) + timedelta(minutes=1)
    activity = drive_member(member, {"dup": 2}, missing={"dup": 1}, snapshot_at=later)
    arrivals: list[BusArrival] = org.orgflows.pending()
    snapshots = [
        a.event
        for a in arrivals
        if a.event["detail-type"] == "Compliance Snapshot" and a.event["detail"]["group"] == "dup"
    ]
    assert len(snapshots) == 1 and arrivals

    # When EventBridge delivers them twice, the second time in reverse order, and the store drains
    org.orgflows.forward([*arrivals, *reversed(arrivals)])
    batches = org.drain_hub()

    # Then the hub has one item for the group, its facets from the newest facts, and one history row
    assert all(batch.invocation.ok and not batch.failed_ids for batch in batches)
    pk = f"{member.account}#{member.region}"
    rows = [item for item in _state(org) if item["pk"] == pk and item["sk"] == "group#dup"]
    assert len(rows) == 1
    (row,) = rows
    snapshot = snapshots[0]["detail"]
    assert row["compliance"]["snapshotId"] == snapshot["snapshotId"]
    assert int(row["compliance"]["instances"]) == len(activity.groups["dup"]) == 2
    history = [
        item for item in _history(org, "snapshot", snapshots[0]["time"][:10]) if f"#{pk}#dup#" in item["sk"]
    ]
    assert len(history) == 1


# --------------------------------------------------------------------------------------------
# Silent members, the CLI
# --------------------------------------------------------------------------------------------


def test_a_member_that_went_silent_is_flagged_by_accounts(scenario: Scenario) -> None:
    # Given a member whose last events are SILENT_HOURS old (more than SilentAfterHours, 24)
    org = scenario.org
    silent_account, silent_region = scenario.silent

    # When the operator lists the organization's accounts from the hub
    code, out, err = run_cli(org.hub.view, ["accounts", "--format", "json"])

    # Then that member, and only that one, is silent
    assert code == 0, err
    members = json.loads(out)
    rows = members["members"] if isinstance(members, dict) else members
    silent = {(row["account"], row["region"]) for row in rows if row["silent"]}
    assert silent == {(silent_account, silent_region)}
    (row,) = [r for r in rows if (r["account"], r["region"]) == (silent_account, silent_region)]
    assert row["secondsSinceLastEvent"] >= (SILENT_HOURS - 1) * 3600


def test_the_hourly_check_counts_the_silent_member_in_its_metrics(scenario: Scenario) -> None:
    # When HubCheckSchedule fires the digest function (metrics only)
    org = scenario.org
    (delivery,) = org.hub.flows.fire_schedule("HubDigestFunction", rule="HubCheckSchedule")
    assert delivery.outcome is not None and delivery.outcome.ok

    # Then its EMF metrics (namespace TagPatchHub, what SilentMembersAlarm watches) count one silent
    # member among them all
    metrics = [
        json.loads(line)
        for line in delivery.outcome.last.log_lines
        if line.startswith("{") and '"_aws"' in line
    ]
    (figures,) = [m for m in metrics if "SilentMembers" in m]
    namespaces = {d["Namespace"] for d in figures["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"TagPatchHub"}
    assert figures["SilentMembers"] in (1, [1])
    assert figures["Members"] in (len(org.members), [len(org.members)])


def test_report_and_runs_show_every_member_account(scenario: Scenario) -> None:
    org = scenario.org
    workloads = org.org.accounts_in([org.org.ous[WORKLOADS]])

    code, report, err = run_cli(org.hub.view, ["report", "--org", "--format", "csv"])
    assert code == 0, err
    assert all(account in report for account in workloads)

    code, runs, err = run_cli(org.hub.view, ["runs", "--org"])
    assert code == 0, err
    assert all(account in runs for account in workloads)
    assert "Failed" in runs  # the second member's db run


# --------------------------------------------------------------------------------------------
# Automatic deployment (last: it changes the organization)
# --------------------------------------------------------------------------------------------


def test_an_account_that_joins_the_ou_gets_the_member_stack_and_loses_it_when_it_leaves(
    scenario: Scenario,
) -> None:
    # Given the spare account, in the root: no member stack
    org = scenario.org
    spare = org.org.accounts[SPARE]
    assert not [key for key in org.members if key[0] == spare]

    # When it is moved into Workloads (organizations:MoveAccount, nothing else) and StackSets reacts
    org.org.move_account(SPARE, WORKLOADS)
    joined = org.sync()

    # Then it has a member stack in both regions, forwarding to the hub like the others
    assert sorted((i.account, i.region) for i in joined.created) == [
        (spare, r) for r in sorted(MEMBER_REGIONS)
    ]
    stack = org.members[(spare, "eu-west-1")]
    drive_member(stack, {"web": 1})
    deliveries = org.forward()
    assert deliveries and all(not d.refused and d.deliveries for d in deliveries)
    org.drain_hub()
    assert any(item["pk"] == f"{spare}#eu-west-1" for item in _state(org))

    # When it leaves the OU again, its stacks are deleted (RetainStacksOnAccountRemoval false)
    org.org.move_account(SPARE, "root")
    left = org.sync()
    assert sorted(left.deleted) == [("tagpatch-hub-members", spare, r) for r in sorted(MEMBER_REGIONS)]
    cloudformation = stack.client("cloudformation")
    status = cloudformation.describe_stacks(StackName=stack.deployment.stack_id)["Stacks"][0]["StackStatus"]
    assert status == "DELETE_COMPLETE"
    assert not [key for key in org.members if key[0] == spare]
