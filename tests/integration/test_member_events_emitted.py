"""The handlers publish member events (docs/events.md): the reconciler per outcome that is news,
the collector once per command that ends, the reporter per group recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest

from emulator.scenarios.collector import (
    CollectorWorld,
    command_summary,
    instance_id,
    invocation,
    notifications_event,
)
from tagpatch import __version__
from tagpatch.collector.core import MAX_RESULT_CHECKS, StatusCollector
from tagpatch.handlers import collector as collector_handler
from tagpatch.handlers import reconciler as reconciler_handler
from tagpatch.handlers import reporter as reporter_handler
from tagpatch.models.member_events import MemberEventDetail, Origin
from tagpatch.reconciler.core import Outcome, Reconciler
from tagpatch.reporter.compliance import GroupOutcome, GroupTotals
from tagpatch.reporter.core import ComplianceReporter, PlanResult, RunResult

ORIGIN = Origin("123456789012", "us-east-1", "tagpatch-test")


@dataclass
class RecordingSink:
    origin: Origin = ORIGIN
    enabled: bool = True
    published: list[list[MemberEventDetail]] = field(default_factory=list)

    def publish(self, details: Sequence[MemberEventDetail]) -> None:
        self.published.append(list(details))

    def details(self) -> list[dict[str, Any]]:
        return [{"type": d.detail_type, **d.detail()} for batch in self.published for d in batch]


# --- reconciler --------------------------------------------------------------------------------
class StubReconciler:
    deadline = None

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def reconcile_group(self, group: str, *, verify: bool, dry_run: bool = False) -> Outcome:
        return self.outcome


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (
            Outcome(
                "web",
                "converged",
                actions=["a", "b"],
                windows={"install": {"window_id": "mw-1", "place": "p"}},
            ),
            {
                "type": "Group Reconciled",
                "status": "converged",
                "actions": 2,
                "windows": [{"role": "install", "windowId": "mw-1", "place": "p"}],
            },
        ),
        (
            Outcome("web", "unplaced", reasons=["no room"]),
            {"type": "Group Refused", "status": "unplaced", "reasons": ["no room"]},
        ),
    ],
)
def test_the_reconciler_publishes_what_a_reconcile_decided(
    outcome: Outcome, expected: dict[str, Any]
) -> None:
    sink = RecordingSink()
    reconciler = cast(Reconciler, StubReconciler(outcome))

    answer = reconciler_handler.handle({"group": "web"}, reconciler, events=sink)

    assert answer["groups"][0]["status"] == outcome.status
    ((detail,),) = sink.published
    got = {"type": detail.detail_type, **detail.detail()}
    assert {key: got[key] for key in expected} == expected
    assert (got["group"], got["account"], got["stack"]) == ("web", "123456789012", "tagpatch-test")


def test_the_reconciler_publishes_nothing_for_a_dry_run_or_without_a_sink() -> None:
    sink = RecordingSink()
    planned = cast(Reconciler, StubReconciler(Outcome("web", "planned", actions=["a"])))
    converged = cast(Reconciler, StubReconciler(Outcome("web", "converged")))

    reconciler_handler.handle({"group": "web", "dryRun": True}, planned, events=sink)
    reconciler_handler.handle({"group": "web"}, converged)  # events=None: not published

    assert sink.details() == []


# --- status collector --------------------------------------------------------------------------
@pytest.fixture
def world(aws: None) -> Iterator[CollectorWorld]:
    yield CollectorWorld()


def _collector(world: CollectorWorld, sink: RecordingSink) -> StatusCollector:
    collector = world.make_collector()
    collector.events = sink
    return collector


def test_a_command_that_ends_is_one_run_result_however_often_it_is_delivered(world: CollectorWorld) -> None:
    # Given a command of group web with three targets, two of which reported, one failed
    sink = RecordingSink()
    command = world.send_command("web")
    world.set_progress(command, "InProgress", targets=3, completed=2)
    first, second = instance_id(1), instance_id(2)
    collector_handler.handle(
        notifications_event(invocation(command, first, "Success"), invocation(command, second, "Failed")),
        _collector(world, sink),
    )
    assert sink.details() == []  # SSM says the command still runs

    # When its terminal Command notification arrives, then again (SQS at least once), also to
    # another container
    ended = notifications_event(
        command_summary(command, "Failed", instances=[first, second], prefix="patch-output/web")
    )
    collector_handler.handle(ended, _collector(world, sink))
    collector_handler.handle(ended, _collector(world, sink))
    # and the re-check the invocations scheduled
    collector_handler.handle(world.deliver_flushes(), _collector(world, sink))

    # Then one Run Result names it with the counts the collector knew
    (detail,) = sink.details()
    assert detail["type"] == "Run Result"
    assert (detail["group"], detail["commandId"], detail["status"]) == ("web", command, "Failed")
    assert detail["instances"] == {"Failed": 1, "Success": 1}
    assert detail["failedInstances"] == 1


def _three_instances(world: CollectorWorld, sink: RecordingSink) -> tuple[str, StatusCollector]:
    """A command on three instances, all InProgress (NotificationType Invocation); its collector."""
    command = world.send_command("web")
    collector = _collector(world, sink)
    collector_handler.handle(
        notifications_event(*(invocation(command, instance_id(n), "InProgress") for n in (1, 2, 3))),
        collector,
    )
    world.alerts()
    return command, collector


def test_invocation_notifications_alone_end_a_command_in_one_run_result(world: CollectorWorld) -> None:
    # Given a command on three instances, as the default NotificationType (Invocation) reports it
    sink = RecordingSink()
    command, collector = _three_instances(world, sink)
    world.set_progress(command, "Failed", targets=3)

    # When two end while the third still runs
    world.log.reset()
    collector_handler.handle(
        notifications_event(
            invocation(command, instance_id(1), "Success", "2025-06-15T03:20:00Z"),
            invocation(command, instance_id(2), "Failed", "2025-06-15T03:21:00Z"),
        ),
        collector,
    )
    # Then SSM is not asked (an invocation still runs) and nothing is published
    assert world.log.count("ssm") == 0
    assert sink.details() == []

    # When the third ends
    world.log.reset()
    collector_handler.handle(
        notifications_event(invocation(command, instance_id(3), "Success", "2025-06-15T03:22:00Z")), collector
    )

    # Then one ListCommands confirms the end and one Run Result has SSM's status and the counts
    assert world.log.ops("ssm") == {"ListCommands": 1}
    # record + merge + claim + commit
    assert world.log.ops("dynamodb") == {"UpdateItem": 4}
    (detail,) = sink.details()
    assert (detail["type"], detail["commandId"], detail["group"]) == ("Run Result", command, "web")
    assert detail["status"] == "Failed"
    assert detail["instances"] == {"Success": 2, "Failed": 1}
    assert detail["failedInstances"] == 1
    assert world.pending_flushes() == []


def test_redelivered_and_duplicate_invocations_are_still_one_run_result(world: CollectorWorld) -> None:
    # Given a command whose three invocations ended and whose Run Result was published
    sink = RecordingSink()
    command, collector = _three_instances(world, sink)
    world.set_progress(command, "Failed", targets=3)
    ends = notifications_event(
        invocation(command, instance_id(1), "Success", "2025-06-15T03:20:00Z"),
        invocation(command, instance_id(2), "Failed", "2025-06-15T03:21:00Z"),
        invocation(command, instance_id(3), "Success", "2025-06-15T03:22:00Z"),
    )
    collector_handler.handle(ends, collector)
    assert len(sink.details()) == 1

    # When the batch is redelivered, to this container and to a new one, and a late InProgress comes
    world.log.reset()
    collector_handler.handle(ends, collector)
    # (three no-op record writes and the merge a repeated failure makes; it says the Run Result was sent)
    assert world.log.ops("dynamodb") == {"UpdateItem": 4}
    world.log.reset()
    collector_handler.handle(notifications_event(invocation(command, instance_id(1), "Success")), collector)
    # (a repeated Success: its no-op write and one consistent read of the command item)
    assert world.log.ops("dynamodb") == {"UpdateItem": 1, "GetItem": 1}
    collector_handler.handle(ends, _collector(world, sink))
    collector_handler.handle(
        notifications_event(invocation(command, instance_id(1), "InProgress")), collector
    )

    # Then SSM is not asked again (the command item says the Run Result was sent) and no second one
    assert world.log.count("ssm") == 0
    assert len(sink.details()) == 1


def test_a_redelivery_publishes_the_run_result_its_first_delivery_died_before(world: CollectorWorld) -> None:
    # Given a batch that ended a command and whose container died after its claim, before publishing
    sink = RecordingSink()
    command, collector = _three_instances(world, sink)
    world.set_progress(command, "Success", targets=3)
    ends = notifications_event(*(invocation(command, instance_id(n), "Success") for n in (1, 2, 3)))
    sink.enabled = False  # the records are written, the Run Result step does not run
    collector_handler.handle(ends, collector)
    sink.enabled = True
    assert world.table.claim_run_result(command, now=world.clock(), lease_until=world.clock() + 120)

    # When the batch is redelivered while the claim is live, then after it lapsed
    collector_handler.handle(ends, _collector(world, sink))
    assert sink.details() == []
    world.clock.advance(121)
    collector_handler.handle(ends, _collector(world, sink))

    # Then the redelivery published it, once
    (detail,) = sink.details()
    assert (detail["status"], detail["instances"]) == ("Success", {"Success": 3})
    collector_handler.handle(ends, _collector(world, sink))
    assert len(sink.details()) == 1


def test_a_command_ssm_still_reports_running_is_checked_again_later(world: CollectorWorld) -> None:
    # Given a command whose three invocations ended while ListCommands still says InProgress
    sink = RecordingSink()
    command, collector = _three_instances(world, sink)
    world.set_progress(command, "InProgress", targets=3, completed=2)
    world.log.reset()
    collector_handler.handle(
        notifications_event(
            invocation(command, instance_id(1), "Success"),
            invocation(command, instance_id(2), "Failed"),
            invocation(command, instance_id(3), "Success"),
        ),
        collector,
    )

    # Then nothing is published yet, and one delayed re-check is on the status queue
    assert sink.details() == []
    assert world.log.ops("ssm") == {"ListCommands": 1}
    assert world.pending_flushes() == [
        (
            json.dumps(
                {"tagpatch": "alert-flush", "commandId": command, "check": "run-result"},
                separators=(",", ":"),
            ),
            60,
        )
    ]

    # When the re-check arrives and SSM has caught up
    world.set_progress(command, "Failed", targets=3)
    world.clock.advance(60)
    world.log.reset()
    collector_handler.handle(world.deliver_flushes(), collector)

    # Then the Run Result is published, with one ListCommands, and no further re-check
    assert world.log.ops("ssm") == {"ListCommands": 1}
    (detail,) = sink.details()
    assert (detail["status"], detail["instances"], detail["failedInstances"]) == (
        "Failed",
        {"Success": 2, "Failed": 1},
        1,
    )
    assert world.pending_flushes() == []


def test_re_checks_are_bounded_then_the_recorded_invocations_make_the_run_result(
    world: CollectorWorld,
) -> None:
    # Given a command whose invocations all ended and that SSM keeps reporting InProgress
    sink = RecordingSink()
    command, collector = _three_instances(world, sink)
    world.set_progress(command, "InProgress", targets=3, completed=0)
    collector_handler.handle(
        notifications_event(
            invocation(command, instance_id(1), "Success"),
            invocation(command, instance_id(2), "TimedOut"),
            invocation(command, instance_id(3), "Success"),
        ),
        collector,
    )

    # When every re-check arrives
    rechecks = 0
    while world.pending_flushes():
        world.clock.advance(60)
        collector_handler.handle(world.deliver_flushes(), collector)
        rechecks += 1

    # Then after the bounded number of re-checks one Run Result is made of what is recorded
    assert rechecks == MAX_RESULT_CHECKS
    (detail,) = sink.details()
    assert (detail["status"], detail["instances"]) == ("TimedOut", {"Success": 2, "TimedOut": 1})


def test_a_live_claim_by_another_batch_is_left_to_it(world: CollectorWorld) -> None:
    # Given another batch that claimed the command's Run Result a moment ago
    sink = RecordingSink()
    command, collector = _three_instances(world, sink)
    world.set_progress(command, "Success", targets=3)
    assert world.table.claim_run_result(command, now=world.clock(), lease_until=world.clock() + 120)

    # When this batch ends the command too
    collector_handler.handle(
        notifications_event(*(invocation(command, instance_id(n), "Success") for n in (1, 2, 3))), collector
    )

    # Then it does not publish a second Run Result
    assert sink.details() == []


@pytest.mark.parametrize("command_first", [False, True])
def test_command_and_invocation_notifications_of_one_command_are_one_run_result(
    world: CollectorWorld, command_first: bool
) -> None:
    # Given a command on three instances notified both per command and per invocation
    sink = RecordingSink()
    command, collector = _three_instances(world, sink)
    world.set_progress(command, "Failed", targets=3)
    ends = notifications_event(
        invocation(command, instance_id(1), "Success", "2025-06-15T03:20:00Z"),
        invocation(command, instance_id(2), "Failed", "2025-06-15T03:21:00Z"),
        invocation(command, instance_id(3), "Success", "2025-06-15T03:22:00Z"),
    )
    summary = notifications_event(
        command_summary(command, "Failed", instances=[instance_id(n) for n in (1, 2, 3)])
    )

    # When both arrive, in either order, each twice
    world.log.reset()
    for event in (summary, ends) if command_first else (ends, summary):
        collector_handler.handle(event, collector)
        collector_handler.handle(event, _collector(world, sink))

    # Then one Run Result
    (detail,) = sink.details()
    assert (detail["commandId"], detail["status"]) == (command, "Failed")
    # and the Command notification spared the ListCommands call when it came first
    assert world.log.count("ssm") == (0 if command_first else 1)


def test_a_command_still_running_is_no_run_result(world: CollectorWorld) -> None:
    sink = RecordingSink()
    command = world.send_command("web")
    collector_handler.handle(
        notifications_event(command_summary(command, "InProgress", prefix="patch-output/web")),
        _collector(world, sink),
    )
    assert sink.details() == []


# --- compliance reporter -----------------------------------------------------------------------
class StubReporter:
    fans_out = False

    def __init__(self, result: RunResult) -> None:
        self.result = result

    def run(self, request: Any, remaining_ms: Any = None) -> RunResult:
        return self.result


def _totals(group: str) -> GroupTotals:
    return GroupTotals(
        group=group, snapshot_id="s-1", instances=4, compliant_instances=3, compliance_percent=Decimal("75")
    )


def test_the_reporter_publishes_each_group_recorded_now() -> None:
    sink = RecordingSink()
    result = RunResult(
        snapshot_id="s-1",
        source="on-demand",
        outcomes=[
            GroupOutcome("web", "recorded", _totals("web")),
            GroupOutcome("db", "already-recorded", _totals("db")),
            GroupOutcome("app", "failed", error="boom"),
        ],
    )
    reporter = cast(ComplianceReporter, StubReporter(result))

    reporter_handler.handle({"group": "web"}, reporter, now=lambda: datetime.now(UTC), events=sink)

    (detail,) = sink.details()
    assert detail == {
        "type": "Compliance Snapshot",
        "schemaVersion": "1",
        "tagpatchVersion": __version__,
        "account": "123456789012",
        "region": "us-east-1",
        "stack": "tagpatch-test",
        "group": "web",
        "snapshotId": "s-1",
        "instances": 4,
        "compliantInstances": 3,
        "nonCompliantInstances": 1,
        "compliancePercent": 75.0,
    }


class StubPlanner:
    fans_out = True

    def __init__(self, planned: PlanResult) -> None:
        self.planned = planned

    def plan(self, request: Any) -> PlanResult:
        return self.planned


SCHEDULED = {
    "version": "0",
    "id": "5c7e0f4e-0000-4000-8000-000000000001",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-12-02T02:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/tagpatch-reporter"],
    "detail": {},
}


def test_a_planned_run_publishes_one_heartbeat_with_the_groups_per_status() -> None:
    sink = RecordingSink()
    planned = PlanResult(snapshot_id="s-1", source="scheduled", group_statuses={"converged": 2, "empty": 1})

    reporter_handler.handle(SCHEDULED, cast(ComplianceReporter, StubPlanner(planned)), events=sink)

    (detail,) = sink.details()
    assert detail["type"] == "Member Heartbeat"
    assert (detail["groups"], detail["groupsByStatus"]) == (3, {"converged": 2, "empty": 1})
    assert detail["tagpatchVersion"] == __version__
    assert "group" not in detail


def test_a_redelivered_schedule_that_finds_the_run_planned_sends_no_second_heartbeat() -> None:
    sink = RecordingSink()
    replanned = PlanResult(snapshot_id="s-1", source="scheduled", replanned=True)

    reporter_handler.handle(SCHEDULED, cast(ComplianceReporter, StubPlanner(replanned)), events=sink)

    assert sink.details() == []


def test_the_real_planner_counts_the_managed_groups_per_status_for_the_heartbeat(aws: None) -> None:
    from emulator.scenarios.compliance import DAY1, ReporterWorld, scheduled_event

    world = ReporterWorld(fanout=True)
    world.manage("web", "db", "app")
    world.register("web")
    sink = RecordingSink()

    reporter_handler.handle(scheduled_event(DAY1), world.reporter, events=sink)
    reporter_handler.handle(scheduled_event(DAY1), world.reporter, events=sink)  # redelivered

    (beat,) = sink.details()
    assert beat["type"] == "Member Heartbeat"
    assert beat["groups"] == 3
    assert sum(beat["groupsByStatus"].values()) == 3
