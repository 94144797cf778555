"""The emulator's organization machinery on its own, without TagPatch's stacks: account views,
Organizations for a delegated administrator, EventBridge between accounts under a bus policy, the
StackSets driver's targets. One small organization for the module (a few seconds)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import bus_policy
from emulator.moto_ext import BUS_OUTBOX, JOURNAL, events_clock
from emulator.org import Organization, create_organization
from emulator.server import Emulator


@pytest.fixture(scope="module")
def org() -> Iterator[Organization]:
    with Emulator() as emulator:
        yield create_organization(
            emulator,
            ous=("Workloads", "Security"),
            accounts={"hub": "Security", "member-a": "Workloads", "spare": "root"},
        )


def _bus(org: Organization, name: str, *, condition: dict[str, Any] | None) -> str:
    """A bus in the hub account whose policy admits PutEvents under ``condition`` (None: no policy)."""
    events = org.view("hub", "us-east-1").client("events")
    arn = str(events.create_event_bus(Name=name)["EventBusArn"])
    if condition is not None:
        statement = {
            "Sid": "Admit",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": arn,
            "Condition": condition,
        }
        events.put_permission(
            EventBusName=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        )
    return arn


def _put(org: Organization, account: str, bus_arn: str) -> dict[str, Any]:
    entry = {"Source": "tagpatch", "DetailType": "Probe", "Detail": "{}", "EventBusName": bus_arn}
    return dict(org.view(account, "us-east-1").client("events").put_events(Entries=[entry]))


def test_each_account_view_acts_in_its_own_account_and_region(org: Organization) -> None:
    # When each account's admin asks who it is and makes a queue in eu-west-1
    for name in ("hub", "member-a", org.outsider):
        view = org.view(name, "eu-west-1")
        identity = view.client("sts").get_caller_identity()
        url = view.client("sqs").create_queue(QueueName="probe")["QueueUrl"]

        # Then it is that account (a role session for members, a user for the outsider), and the
        # queue is that account's
        assert identity["Account"] == view.account_id == org.accounts.get(name, name)
        assert f"/{view.account_id}/probe" in url
    assert ":assumed-role/OrganizationAccountAccessRole/" in org.credentials("member-a").principal
    assert org.credentials(org.outsider).principal.endswith(":user/tagpatch-emulator-outsider-admin")


def test_the_delegated_administrator_reads_the_organization_and_a_member_does_not(org: Organization) -> None:
    # Given the hub account, registered as StackSets' delegated administrator
    member = org.accounts["member-a"]

    # When the hub asks Organizations for a member's parent and its OU
    hub = org.view("hub", "us-east-1").client("organizations")
    (parent,) = hub.list_parents(ChildId=member)["Parents"]
    unit = hub.describe_organizational_unit(OrganizationalUnitId=parent["Id"])["OrganizationalUnit"]

    # Then it gets the management account's answer; a plain member account gets none
    assert (parent["Id"], unit["Name"]) == (org.ous["Workloads"], "Workloads")
    with pytest.raises(ClientError):
        org.view("member-a", "us-east-1").client("organizations").list_parents(ChildId=member)


def test_stack_set_targets_are_the_accounts_of_the_ou_and_follow_moves(org: Organization) -> None:
    workloads = org.ous["Workloads"]
    assert org.accounts_in([workloads]) == [org.accounts["member-a"]]
    org.move_account("spare", "Workloads")
    try:
        assert org.accounts_in([workloads]) == sorted([org.accounts["member-a"], org.accounts["spare"]])
    finally:
        org.move_account("spare", "root")
    assert org.accounts_in([workloads]) == [org.accounts["member-a"]]


def test_put_events_on_another_accounts_bus_is_decided_by_its_policy(org: Organization) -> None:
    # Given a hub bus admitting the organization, and one with no policy
    admitting = _bus(org, "org-only", condition={"StringEquals": {"aws:PrincipalOrgID": org.id}})
    closed = _bus(org, "closed", condition=None)
    BUS_OUTBOX.clear()

    # When a member of the organization and the outsider put an event on each
    taken = _put(org, "member-a", admitting)
    refusals = []
    for account, bus in ((org.outsider, admitting), ("member-a", closed)):
        with pytest.raises(ClientError) as raised:
            _put(org, account, bus)
        refusals.append(raised.value.response["Error"])

    # Then only the member's event on the admitting bus is taken, with the sender's own envelope
    ((arrival),) = BUS_OUTBOX.take()
    assert taken["FailedEntryCount"] == 0 and arrival.bus_arn == admitting
    assert arrival.event["id"] == taken["Entries"][0]["EventId"]
    assert (arrival.event["account"], arrival.event["region"]) == (org.accounts["member-a"], "us-east-1")
    assert all(error["Code"] == "AccessDeniedException" for error in refusals)
    assert "aws:PrincipalOrgID none" in refusals[0]["Message"]
    assert "has no resource policy" in refusals[1]["Message"]
    denied = [a for a in JOURNAL.entries() if a.implied_by == "bus policy" and not a.allowed]
    assert {a.resource for a in denied} == {admitting, closed}


def test_a_rule_with_a_bus_target_keeps_the_event_for_delivery_with_its_envelope(org: Organization) -> None:
    # Given a member rule forwarding source probe to a hub bus
    bus = _bus(org, "forwarded", condition={"StringEquals": {"aws:PrincipalOrgID": org.id}})
    events = org.view("member-a", "eu-west-1").client("events")
    events.put_rule(Name="forward", EventPattern=json.dumps({"source": ["probe"]}))
    events.put_targets(
        Rule="forward", Targets=[{"Id": "hub", "Arn": bus, "RoleArn": "arn:aws:iam::1:role/x"}]
    )
    BUS_OUTBOX.clear()

    # When the member puts a matching and an unmatched event on its default bus, 2 hours ago
    with events_clock(-7200):
        put = events.put_events(
            Entries=[
                {"Source": "probe", "DetailType": "Probe", "Detail": '{"n": 1}'},
                {"Source": "other", "DetailType": "Probe", "Detail": '{"n": 2}'},
            ]
        )

    # Then moto did not re-put it on the hub bus: the matched event waits, as put, for EventBridge
    ((arrival),) = BUS_OUTBOX.take()
    assert arrival.bus_arn == bus and arrival.rule_arn.endswith(":rule/forward")
    assert arrival.target is not None and arrival.target["RoleArn"] == "arn:aws:iam::1:role/x"
    assert arrival.event["id"] == put["Entries"][0]["EventId"]
    assert (arrival.event["account"], arrival.event["region"]) == (org.accounts["member-a"], "eu-west-1")
    assert arrival.event["detail"] == {"n": 1}
    when = datetime.strptime(arrival.event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - when).total_seconds() - 7200) < 120


@pytest.mark.parametrize(
    ("statement", "account_in_org", "refused"),
    [
        (
            {"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-aaaaaaaaaa"}}},
            True,
            False,
        ),
        (
            {"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-bbbbbbbbbb"}}},
            True,
            True,
        ),
        ({"Principal": {"AWS": "111111111111"}}, False, False),
        ({"Principal": {"AWS": "arn:aws:iam::222222222222:root"}}, False, True),
        ({"Principal": "*", "Effect": "Deny"}, True, True),
    ],
)
def test_bus_policy_statements(
    statement: dict[str, Any], account_in_org: bool, refused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        bus_policy, "organization_of", lambda _account: "o-aaaaaaaaaa" if account_in_org else ""
    )
    bus = "arn:aws:events:us-east-1:999999999999:event-bus/hub"
    document = {
        "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus, **statement}]
    }
    reason = bus_policy.refusal(
        document,
        bus_arn=bus,
        caller_arn="arn:aws:sts::111111111111:assumed-role/Forward/events",
        account_id="111111111111",
    )
    assert bool(reason) is refused
