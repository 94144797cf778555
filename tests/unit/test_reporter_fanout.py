"""The fan-out's pure parts: batching groups by size, assembling a run's outcomes, its messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tagpatch.models.reporter_events import Invalid, ReportBatch, RunDeadline, parse_report_message
from tagpatch.reporter.compliance import GroupOutcome, GroupTotals, InstanceRow
from tagpatch.reporter.fanout import (
    BATCH_GROUPS,
    BATCH_INSTANCES,
    UNKNOWN_INSTANCES,
    BatchReport,
    assemble,
    plan_batches,
)

SNAP = "2025-06-01T06:00:00Z"


def test_a_big_group_goes_alone_largest_first_and_small_ones_fill_batches_in_name_order() -> None:
    sizes = {"huge": 50_000, "big": BATCH_INSTANCES, "a": 1_500, "b": 400, "c": 200, "d": 0}

    batches = plan_batches(["d", "c", "b", "a", "big", "huge", "a"], sizes)

    # 1,500 + 400 fits 2,000; + 200 would not
    assert batches == [["huge"], ["big"], ["a", "b"], ["c", "d"]]


def test_a_batch_holds_at_most_20_groups() -> None:
    groups = [f"g-{i:02d}" for i in range(45)]

    batches = plan_batches(groups, dict.fromkeys(groups, 1))

    assert [len(batch) for batch in batches] == [BATCH_GROUPS, BATCH_GROUPS, 5]
    assert [group for batch in batches for group in batch] == groups


def test_a_group_of_unknown_size_counts_as_a_page() -> None:
    # 21 groups the table does not know (or records as -1) fill one batch of 20 at 100 each
    groups = [f"g-{i:02d}" for i in range(21)]

    batches = plan_batches(groups, {"g-00": -1})

    assert UNKNOWN_INSTANCES * BATCH_GROUPS == BATCH_INSTANCES
    assert [len(batch) for batch in batches] == [20, 1]


def test_no_group_no_batch() -> None:
    assert plan_batches([], {}) == []


def _totals(group: str) -> GroupTotals:
    return GroupTotals(group, SNAP, 2, 1, None)


def _row(instance: str) -> InstanceRow:
    return InstanceRow(instance, "pb-1", "Install", SNAP, SNAP, {"missing": 1}, compliant=False)


def test_assemble_names_missing_groups_of_batches_not_done() -> None:
    # Given three batches: 0 done, 1 not done with one group recorded and one failed, 2 never reported
    planned = {0: ["a", "b"], 1: ["c", "d"], 2: ["e"]}
    reports = {
        0: BatchReport(
            [GroupOutcome("a", "recorded", _totals("a")), GroupOutcome("b", "failed", error="denied")],
            [("a", _row("i-1"))],
        ),
        1: BatchReport(
            [
                GroupOutcome("c", "already-recorded", _totals("c")),
                GroupOutcome("d", "failed", error="throttled"),
            ],
            [("c", _row("i-2"))],
        ),
    }

    run = assemble(planned, reports, [0], refused=["bad#"], refusal="not valid", missing_reason="late")

    # Then done batches keep their failures, recorded groups of an unfinished batch count, the rest
    # are missing (with their last error), refused names are failed
    assert [(o.group, o.status, o.error) for o in run.outcomes] == [
        ("a", "recorded", None),
        ("b", "failed", "denied"),
        ("bad#", "failed", "not valid"),
        ("c", "already-recorded", None),
        ("d", "missing", "late; last error: throttled"),
        ("e", "missing", "late"),
    ]
    assert run.missing == ["d", "e"]
    assert [instance.instance_id for _, instance in run.worst] == ["i-1", "i-2"]


def test_messages_round_trip_and_unknown_fields_are_refused() -> None:
    batch = ReportBatch(snapshot_id=SNAP, source="scheduled", batch=3, groups=[{"name": "web"}])
    deadline = RunDeadline(snapshot_id=SNAP, deadline=datetime(2025, 6, 1, 9, tzinfo=UTC))

    assert parse_report_message(batch.body()) == batch
    assert json.loads(batch.body()) == {
        "type": "batch",
        "snapshotId": SNAP,
        "source": "scheduled",
        "batch": 3,
        "attempt": 1,
        "groups": [{"name": "web", "managed": False, "baselines": []}],
    }
    assert parse_report_message(deadline.body()) == deadline
    with pytest.raises(Invalid, match="Extra inputs are not permitted"):
        parse_report_message(json.dumps({**json.loads(batch.body()), "more": 1}))
    with pytest.raises(Invalid, match="snapshotId"):
        parse_report_message(json.dumps({**json.loads(batch.body()), "snapshotId": "yesterday"}))
    with pytest.raises(Invalid, match="not JSON"):
        parse_report_message("{")
