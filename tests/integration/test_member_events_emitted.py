"""The handlers publish member events (docs/events.md): the reconciler per outcome that is news,
the collector once per command that ends, the reporter per group recorded."""

from __future__ import annotations

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
from tagpatch.collector.core import StatusCollector
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
    # Given a command of group web whose two instances reported, one failed
    sink = RecordingSink()
    command = world.send_command("web")
    first, second = instance_id(1), instance_id(2)
    collector_handler.handle(
        notifications_event(invocation(command, first, "Success"), invocation(command, second, "Failed")),
        _collector(world, sink),
    )
    assert sink.details() == []  # invocations alone do not end a command

    # When its terminal Command notification arrives, then again (SQS at least once), also to
    # another container
    ended = notifications_event(
        command_summary(command, "Failed", instances=[first, second], prefix="patch-output/web")
    )
    collector_handler.handle(ended, _collector(world, sink))
    collector_handler.handle(ended, _collector(world, sink))

    # Then one Run Result names it with the counts the collector knew
    (detail,) = sink.details()
    assert detail["type"] == "Run Result"
    assert (detail["group"], detail["commandId"], detail["status"]) == ("web", command, "Failed")
    assert detail["instances"] == {"Failed": 1, "Success": 1}
    assert detail["failedInstances"] == 1


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
