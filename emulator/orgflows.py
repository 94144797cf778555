"""EventBridge between accounts: member events forwarded to the organization hub's bus.

A member function's ``PutEvents`` on its default bus is matched by moto; an event-bus target of a
matching rule (``HubForwardRule`` -> the hub's bus) is not delivered by moto but kept in
:data:`emulator.moto_ext.BUS_OUTBOX` (as is a cross-account ``PutEvents`` the receiving bus's
policy admitted). :meth:`OrgFlows.forward` then delivers each one as EventBridge does
("Sending and receiving events between AWS accounts in Amazon EventBridge",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html):

1. the target's ``RoleArn`` is assumed as ``events.amazonaws.com``: its trust policy must admit the
   service with ``aws:SourceAccount`` = the rule's account and ``aws:SourceArn`` = the rule
   (the keys EventBridge sends, "Confused deputy prevention",
   https://docs.aws.amazon.com/eventbridge/latest/userguide/cross-service-confused-deputy-prevention.html);
2. the role's identity policy must allow ``events:PutEvents`` on the bus ARN - evaluated with the
   real resource (moto's own check of a signed request would pass ``*``), and journaled as the
   role session's access so :mod:`emulator.permissions` counts it;
3. the receiving bus's resource policy must admit the role session (:mod:`emulator.bus_policy`:
   ``aws:PrincipalOrgID`` from moto's Organizations, ``aws:PrincipalAccount``, ``aws:PrincipalArn``);
4. refused at any step: the event goes to the target's dead-letter queue in the sender's account
   (if that queue's policy admits the rule) with EventBridge's ``ERROR_CODE``/``ERROR_MESSAGE``,
   else it is reported refused; admitted: the event, with its own ``id``, ``time``, ``account``
   and ``region``, is matched against the receiving bus's rules (``TestEventPattern``) and delivered
   to their targets by the receiving account's :class:`~emulator.flows.Flows` (an SQS target under
   its queue policy, as for the default bus).

EventBridge retries a failed delivery for up to 24 hours before the DLQ; the emulator gives up at
once (a refusal here is permanent: a policy, not an outage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from moto.iam.access_control import create_access_key

from emulator import bus_policy, moto_ext
from emulator.flows import Flows, RuleDelivery
from emulator.moto_ext import BUS_OUTBOX, JOURNAL, Access, BusArrival
from emulator.server import Credentials, TrustPolicyError

EVENTS_PRINCIPAL: Final = "events.amazonaws.com"

#: What the emulator's cross-account delivery does differently from EventBridge (the demo prints them).
NOTES: Final = (
    "an event-bus target's event is delivered when the driver forwards (OrgFlows.forward), not as it is put; "
    "a refused delivery goes to the target's DLQ at once (EventBridge retries for up to 24 hours first)",
    "the forwarding role's policy is evaluated for events:PutEvents with the bus ARN as resource and "
    "journaled as the role session's request; the request itself is not signed and sent",
    "the hub bus policy is evaluated by the emulator (moto stores bus policies and never reads them), "
    "with aws:PrincipalOrgID from moto's Organizations",
)


@dataclass
class BusDelivery:
    """What became of one event sent to an event bus of another account."""

    arrival: BusArrival
    sender_account: str
    sender_region: str
    refused: str = ""
    dead_letter: str = ""  # logical id of the sender's DLQ that got the refused event
    deliveries: list[RuleDelivery] = field(default_factory=list)  # on the receiving bus

    @property
    def event(self) -> dict[str, Any]:
        return self.arrival.event


def _arn_parts(arn: str) -> tuple[str, str, str]:
    """(region, account, resource) of an ARN."""
    _, _, _, region, account, resource = arn.split(":", 5)
    return region, account, resource


class OrgFlows:
    """Cross-account event delivery between the deployed stacks of an organization.

    ``flows_of(account, region)`` gives the :class:`~emulator.flows.Flows` of the stack deployed
    there (a member's, or the hub's), or None when that account and region run none.
    """

    def __init__(self, flows_of: Callable[[str, str], Flows | None]) -> None:
        self.flows_of = flows_of
        self.delivered: list[BusDelivery] = []

    def pending(self) -> list[BusArrival]:
        """Take the events waiting for delivery (to deliver them yourself, e.g. twice)."""
        return BUS_OUTBOX.take()

    def forward(self, arrivals: Iterable[BusArrival] | None = None) -> list[BusDelivery]:
        """Deliver ``arrivals`` (default: every pending one), in order."""
        results = [
            self._deliver(arrival) for arrival in (BUS_OUTBOX.take() if arrivals is None else arrivals)
        ]
        self.delivered.extend(results)
        return results

    # -- internals ------------------------------------------------------------------------------
    def _deliver(self, arrival: BusArrival) -> BusDelivery:
        if arrival.rule_arn:
            region, account, _ = _arn_parts(arrival.rule_arn)
        else:
            region, account = str(arrival.event["region"]), str(arrival.event["account"])
        delivery = BusDelivery(arrival, account, region)
        bus_region, bus_account, bus_resource = _arn_parts(arrival.bus_arn)
        receiver = self.flows_of(bus_account, bus_region)
        if arrival.rule_arn:
            sender = self.flows_of(account, region)
            if sender is None:
                raise LookupError(f"no stack deployed in {account} {region} sent {arrival.rule_arn}")
            delivery.refused = self._refusal(sender, arrival, receiver)
            if delivery.refused:
                delivery.dead_letter = sender.dead_letter(
                    arrival.rule_arn, arrival.target or {}, arrival.event, delivery.refused
                )
                return delivery
        if receiver is None:
            delivery.refused = f"no event bus {arrival.bus_arn} in the emulator"
            return delivery
        bus = bus_resource.removeprefix("event-bus/")
        delivery.deliveries = receiver.put_event(arrival.event, bus=bus)
        return delivery

    def _refusal(self, sender: Flows, arrival: BusArrival, receiver: Flows | None) -> str:
        target = arrival.target or {}
        role_arn = str(target.get("RoleArn") or "")
        if not role_arn:
            return f"the target {arrival.bus_arn} has no RoleArn (required for a bus of another account)"
        context = {"aws:SourceAccount": sender.account, "aws:SourceArn": arrival.rule_arn}
        try:
            session = sender.emulator.assume_role_as_service(role_arn, EVENTS_PRINCIPAL, "events", context)
        except TrustPolicyError as error:
            return str(error)
        denied = _identity_refusal(session, arrival.bus_arn)
        if denied:
            return denied
        if receiver is None:
            return f"no event bus {arrival.bus_arn} in the emulator"
        name = _arn_parts(arrival.bus_arn)[2].removeprefix("event-bus/")
        policy = receiver.client("events").describe_event_bus(Name=name).get("Policy")
        refused = bus_policy.refusal(
            policy, bus_arn=arrival.bus_arn, caller_arn=session.principal, account_id=sender.account
        )
        JOURNAL.record(
            Access(session.principal, bus_policy.PUT_EVENTS, arrival.bus_arn, not refused, "bus policy")
        )
        return refused


def _identity_refusal(session: Credentials, bus_arn: str) -> str:
    """Whether the role session's own policies allow events:PutEvents on ``bus_arn`` (journaled)."""
    account = session.principal.split(":")[4]
    key = create_access_key(
        account, "aws", session.access_key_id, {"X-Amz-Security-Token": session.session_token or ""}
    )
    allowed = moto_ext._permitted(key.collect_policies(), bus_policy.PUT_EVENTS, bus_arn, {})
    JOURNAL.record(Access(session.principal, bus_policy.PUT_EVENTS, bus_arn, allowed))
    if allowed:
        return ""
    return (
        f"the role session {session.principal} may not {bus_policy.PUT_EVENTS} on {bus_arn} (identity policy)"
    )
