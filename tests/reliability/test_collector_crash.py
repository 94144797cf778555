"""A collector that dies around an alert: each failure is e-mailed once, but for one window.

The alert is an SNS publish and its record a DynamoDB write: no transaction spans the two, and an
SNS standard topic has no de-duplication (MessageDeduplicationId is for FIFO topics, which do not
deliver e-mail). The collector leases the alert (claim), publishes, then records it (commit), so:

* dying after the claim and before the publish: nothing was sent; the redelivery, once the lease
  has lapsed, sends it;
* dying after SNS accepted the publish and before the commit: the one residual window. The
  redelivery cannot tell whether the publish went out; it sends the alert again, marked as a
  possible repeat. Recording first would turn the window into a lost alert instead; the window
  is already as small as it can be: one DynamoDB write after the publish returns (plus a publish
  whose response was lost and which botocore retried).
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.scenarios.collector import CollectorWorld, instance_id, invocation, notifications_event
from tagpatch.collector.core import ALERT_LEASE
from tagpatch.handlers.collector import handle

VISIBILITY_TIMEOUT = 360  # template.yaml StatusQueue: a failed batch's messages come back after it


class Crash(BaseException):
    """The Lambda process stops (timeout, out of memory): no handler runs."""


def _die_once(obj: Any, method: str, *, after: bool) -> None:
    original = getattr(obj, method)

    def dying(*args: Any, **kwargs: Any) -> Any:
        setattr(obj, method, original)
        if after:
            original(*args, **kwargs)
        raise Crash

    setattr(obj, method, dying)


@pytest.mark.parametrize(
    ("where", "sent_before"),
    [
        ("publish", False),  # dies on the publish call: nothing sent
        ("commit", True),  # SNS accepted the publish; dies before the record
    ],
)
def test_a_crash_around_an_alert_sends_it_at_most_twice_and_the_second_says_so(
    aws: None, where: str, sent_before: bool
) -> None:
    # Given a failing instance, and a collector that dies at ``where`` while alerting it
    world = CollectorWorld()
    command = world.send_command("web")
    event = notifications_event(invocation(command, instance_id(1), "Failed"))
    if where == "publish":
        _die_once(world.collector.alerts, "publish", after=False)
    else:
        _die_once(world.table, "commit_alert", after=False)
    with pytest.raises(Crash):
        handle(event, world.collector)
    assert len(world.alerts()) == int(sent_before)

    # When a new container gets the next delivery while the lease is live, then the redelivery of
    # the dead batch (after the visibility timeout, which is longer than the lease)
    fresh = world.make_collector()
    assert handle(event, fresh)["batchItemFailures"] == []
    assert len(world.alerts()) == int(sent_before)  # a live lease is never overtaken
    assert ALERT_LEASE < VISIBILITY_TIMEOUT
    world.clock.advance(VISIBILITY_TIMEOUT)
    assert handle(event, fresh)["batchItemFailures"] == []
    for _ in range(3):  # and any later delivery
        handle(event, fresh)
        handle(world.deliver_flushes(), fresh)

    # Then the failure was e-mailed once more, marked as a possible repeat, and recorded
    alerts = world.alerts()
    assert len(alerts) == int(sent_before) + 1
    assert "This alert may repeat one sent a few minutes ago" in alerts[-1]["Message"]
    item = world.command_item(command) or {}
    assert item["alerted_ids"] == {instance_id(1)}
    assert item["alert_count"] == 1
    assert "alert_lease" not in item
