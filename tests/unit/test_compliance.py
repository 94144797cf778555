"""Compliance maths (tagpatch.reporter.compliance): definition, carry-over, totals, metrics, digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from emulator.fake_ssm import make_instance_patch_state
from tagpatch.reporter.compliance import (
    SLA_DAYS,
    SUBJECT_MAX_LENGTH,
    GroupOutcome,
    GroupTotals,
    InstanceRow,
    InvalidPatchState,
    Since,
    build_snapshot,
    compliance_percent,
    instance_row,
    is_compliant,
    is_valid_patch_group,
    metric_values,
    render_digest,
    snapshot_id_for,
    worst_instances,
)

# aws-cli examples (awscli/examples/ssm/*.rst), verbatim: DescribePatchGroupState has no
# InstancesWithAvailableSecurityUpdates there, and the states carry string timestamps.
CLI_GROUP_STATE: dict[str, int] = {
    "Instances": 21,
    "InstancesWithCriticalNonCompliantPatches": 1,
    "InstancesWithFailedPatches": 2,
    "InstancesWithInstalledOtherPatches": 3,
    "InstancesWithInstalledPatches": 21,
    "InstancesWithInstalledPendingRebootPatches": 2,
    "InstancesWithInstalledRejectedPatches": 1,
    "InstancesWithMissingPatches": 3,
    "InstancesWithNotApplicablePatches": 4,
    "InstancesWithOtherNonCompliantPatches": 1,
    "InstancesWithSecurityNonCompliantPatches": 1,
    "InstancesWithUnreportedNotApplicablePatches": 2,
}
CLI_INSTANCE_STATE: dict[str, Any] = {
    "InstanceId": "i-02573cafcfEXAMPLE",
    "PatchGroup": "Production",
    "BaselineId": "pb-0c10e65780EXAMPLE",
    "SnapshotId": "a3f5ff34-9bc4-4d2c-a665-4d1c1EXAMPLE",
    "OwnerInformation": "",
    "InstalledCount": 32,
    "InstalledOtherCount": 1,
    "InstalledPendingRebootCount": 0,
    "InstalledRejectedCount": 0,
    "MissingCount": 2,
    "FailedCount": 0,
    "UnreportedNotApplicableCount": 2671,
    "NotApplicableCount": 400,
    "OperationStartTime": "2021-08-04T11:03:50.590000-07:00",
    "OperationEndTime": "2021-08-04T11:04:21.555000-07:00",
    "Operation": "Scan",
    "RebootOption": "NoReboot",
    "CriticalNonCompliantCount": 0,
    "SecurityNonCompliantCount": 1,
    "OtherNonCompliantCount": 0,
}
NOW = datetime(2025, 6, 10, 6, 0, tzinfo=UTC)


def state(instance: str = "i-0123456789abcdef0", group: str = "web", **counts: Any) -> dict[str, Any]:
    end_time = counts.pop("end_time", NOW - timedelta(hours=2))
    return make_instance_patch_state(instance, group, end_time=end_time, **counts)


# --------------------------------------------------------------------------------------------
# Compliance definition
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("counts", "compliant"),
    [
        ({}, True),
        ({"installed_other": 3, "not_applicable": 40, "unreported_not_applicable": 7}, True),
        ({"missing": 1}, False),
        ({"failed": 1}, False),
        ({"pending_reboot": 1}, False),  # a pending reboot is not compliant
        ({"rejected": 1}, False),
        ({"critical": 1}, False),
        ({"security": 1}, False),
        ({"other": 1}, False),
        ({"available_security_updates": 2}, True),  # available, not required by the baseline
    ],
)
def test_compliance_definition(counts: dict[str, int], compliant: bool) -> None:
    # Given one instance state with these counts
    row = instance_row(state(**counts), None, NOW)

    # Then it is compliant exactly when no missing/failed/pending-reboot/rejected patch is counted
    assert row.compliant is compliant
    assert (row.non_compliant_since is None) is compliant


def test_absent_counts_count_as_zero_and_stay_absent() -> None:
    # Given a state with only the required members (every count is optional in the model)
    minimal = {
        key: value
        for key, value in state().items()
        if key
        in ("InstanceId", "PatchGroup", "BaselineId", "OperationStartTime", "OperationEndTime", "Operation")
    }

    # When it becomes a row
    row = instance_row(minimal, None, NOW)

    # Then it is compliant and stores no invented counts
    assert row.compliant is True
    assert row.counts == {}
    assert "missing" not in row.attributes()
    assert is_compliant({}) is True


def test_a_state_without_required_members_is_refused() -> None:
    broken = {k: v for k, v in state().items() if k != "BaselineId"}

    with pytest.raises(InvalidPatchState, match="BaselineId"):
        instance_row(broken, None, NOW)


def test_the_aws_cli_sample_states_become_rows() -> None:
    # Given the aws-cli sample response (timestamps as strings, OwnerInformation "")
    # When it becomes a row
    row = instance_row(CLI_INSTANCE_STATE, None, NOW)

    # Then the times are normalised to UTC and every count and detail is kept
    assert row.operation_end_time == "2021-08-04T18:04:21Z"
    assert row.operation_start_time == "2021-08-04T18:03:50Z"
    assert row.count("missing") == 2
    assert row.count("unreported_not_applicable") == 2671
    assert row.details == {
        "patch_snapshot_id": "a3f5ff34-9bc4-4d2c-a665-4d1c1EXAMPLE",
        "reboot_option": "NoReboot",
    }
    assert row.compliant is False
    assert row.non_compliant_since == "2021-08-04T18:04:21Z"  # the scan that reported it


@pytest.mark.parametrize(
    ("compliant", "instances", "expected"),
    [
        (0, 0, None),
        (0, 3, Decimal("0.00")),
        (1, 3, Decimal("33.33")),
        (2, 3, Decimal("66.67")),
        (5, 5, Decimal("100.00")),
    ],
)
def test_compliance_percent(compliant: int, instances: int, expected: Decimal | None) -> None:
    assert compliance_percent(compliant, instances) == expected


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("web", True),
        ("web prod", True),
        ("Ünïcödé", True),
        ("日本語", True),
        ("a/b:c=d+e@f_g.h-i", True),
        ("x" * 256, True),
        ("x" * 257, False),
        ("", False),
        ("web#1", False),
        ("web*", False),
    ],
)
def test_patch_group_names_follow_the_api_pattern(name: str, valid: bool) -> None:
    assert is_valid_patch_group(name) is valid


def test_snapshot_id_is_the_time_in_utc_to_the_second() -> None:
    assert snapshot_id_for(datetime(2025, 6, 1, 8, 0, 0, 123, tzinfo=UTC)) == "2025-06-01T08:00:00Z"
    assert snapshot_id_for(datetime(2025, 6, 1, 8, 0)) == "2025-06-01T08:00:00Z"  # naive = UTC


# --------------------------------------------------------------------------------------------
# Carry-over
# --------------------------------------------------------------------------------------------
def test_non_compliant_since_is_carried_while_non_compliant_and_reset_when_compliant() -> None:
    earlier = "2025-05-20T03:00:00Z"

    # Still non-compliant: the earlier date is kept
    kept = instance_row(state(missing=1, critical=1), Since(earlier, earlier), NOW)
    assert kept.non_compliant_since == earlier
    assert kept.critical_missing_since == earlier

    # Non-compliant but no longer critical: the critical clock stops, the other keeps running
    no_critical = instance_row(state(missing=1), Since(earlier, earlier), NOW)
    assert no_critical.non_compliant_since == earlier
    assert no_critical.critical_missing_since is None

    # Compliant again: both are cleared
    cleared = instance_row(state(), Since(earlier, earlier), NOW)
    assert cleared.non_compliant_since is None
    assert cleared.critical_missing_since is None

    # Newly non-compliant: starts at the operation that reported it, never after the snapshot
    fresh = instance_row(state(failed=1, end_time=NOW - timedelta(hours=5)), Since(), NOW)
    assert fresh.non_compliant_since == "2025-06-10T01:00:00Z"
    future = instance_row(state(failed=1, end_time=NOW + timedelta(hours=1)), None, NOW)
    assert future.non_compliant_since == "2025-06-10T06:00:00Z"


def test_critical_sla_breach_is_counted_after_seven_days() -> None:
    # Given three instances missing a critical patch for 8 days, exactly 7 days and 1 day
    since = {
        "i-00000000000000001": Since("2025-06-02T06:00:00Z", "2025-06-02T06:00:00Z"),
        "i-00000000000000002": Since("2025-06-03T06:00:00Z", "2025-06-03T06:00:00Z"),
        "i-00000000000000003": Since("2025-06-09T06:00:00Z", "2025-06-09T06:00:00Z"),
    }
    states = [state(iid, missing=1, critical=1) for iid in since]

    # When the snapshot is built
    snap = build_snapshot("web", NOW, group_state={}, states=states, previous_rows=since)

    # Then only "more than 7 days" breaches the SLA
    assert SLA_DAYS == 7
    assert snap.totals.critical_instances == 3
    assert snap.totals.critical_sla_breaches == 1
    assert snap.totals.oldest_non_compliant_since == "2025-06-02T06:00:00Z"


# --------------------------------------------------------------------------------------------
# Totals
# --------------------------------------------------------------------------------------------
def test_totals_sum_the_instances_and_keep_the_group_state_verbatim() -> None:
    # Given the aws-cli DescribePatchGroupState sample and four instances
    group_state = CLI_GROUP_STATE
    states = [
        state("i-00000000000000001", missing=2, critical=1, security=1),
        state("i-00000000000000002", failed=1, pending_reboot=2),
        state("i-00000000000000003", rejected=1, installed_other=4),
        state("i-00000000000000004"),
    ]
    previous = GroupTotals("web", "2025-06-09T06:00:00Z", 4, 3, Decimal("75.00"))

    # When the snapshot is built
    snap = build_snapshot(
        "web",
        NOW,
        group_state={**group_state, "ResponseMetadata": {"HTTPStatusCode": 200}},
        states=states,
        previous_totals=previous,
        managed=True,
        baselines=["pb-2", "pb-1", "pb-2"],
    )
    totals = snap.totals

    # Then
    assert totals.snapshot_id == "2025-06-10T06:00:00Z"
    assert (totals.instances, totals.compliant_instances, totals.non_compliant_instances) == (4, 1, 3)
    assert totals.compliance_percent == Decimal("25.00")
    assert totals.compliance_change == Decimal("-50.00")
    assert totals.pending_reboot_instances == 1
    assert dict(totals.patches) == {
        "missing_patches": 2,
        "failed_patches": 1,
        "installed_pending_reboot_patches": 2,
        "installed_rejected_patches": 1,
        "critical_non_compliant_patches": 1,
        "security_non_compliant_patches": 1,
        "other_non_compliant_patches": 0,
    }
    # every field SSM returned, and InstancesWithAvailableSecurityUpdates absent as in the sample
    assert dict(totals.group_state) == group_state
    assert "InstancesWithAvailableSecurityUpdates" not in totals.group_state
    assert totals.baselines == ("pb-1", "pb-2")
    assert totals.managed is True


def test_an_instance_listed_twice_counts_once_with_its_latest_state() -> None:
    # Given a listing that returned one instance twice (paging while SSM updated it)
    old = state("i-00000000000000001", missing=3, end_time=NOW - timedelta(days=1))
    new = state("i-00000000000000001", end_time=NOW - timedelta(hours=1))

    snap = build_snapshot("web", NOW, group_state={}, states=[old, new])

    assert [row.instance_id for row in snap.rows] == ["i-00000000000000001"]
    assert snap.totals.compliant_instances == 1


def test_a_group_without_instances_has_no_percentage() -> None:
    snap = build_snapshot("empty", NOW, group_state={"Instances": 0}, states=[])

    assert snap.totals.instances == 0
    assert snap.totals.compliance_percent is None
    assert snap.totals.compliance_change is None
    assert [name for name, _, _ in metric_values(snap.totals)] == [
        "NonCompliantInstances",
        "MissingPatches",
        "FailedPatches",
    ]


def test_totals_and_rows_round_trip_through_their_stored_attributes() -> None:
    snap = build_snapshot(
        "web",
        NOW,
        group_state={"Instances": 2},
        states=[state("i-00000000000000001", missing=1, critical=1), state("i-00000000000000002")],
        previous_totals=GroupTotals("web", "2025-06-09T06:00:00Z", 2, 2, Decimal("100.00")),
        baselines=["pb-1"],
        source="on-demand",
        taken_at="2025-06-10T06:00:05Z",
    )

    assert GroupTotals.from_attributes(snap.totals.attributes()) == snap.totals
    for row in snap.rows:
        assert InstanceRow.from_attributes(row.attributes()) == row


def test_metric_values() -> None:
    snap = build_snapshot(
        "web",
        NOW,
        group_state={},
        states=[state("i-00000000000000001", missing=4, failed=2), state("i-00000000000000002")],
    )

    assert metric_values(snap.totals) == [
        ("CompliancePercent", "Percent", 50.0),
        ("NonCompliantInstances", "Count", 1.0),
        ("MissingPatches", "Count", 4.0),
        ("FailedPatches", "Count", 2.0),
    ]


# --------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------
def _row(instance: str, **counts: Any) -> InstanceRow:
    since = counts.pop("since", None)
    return instance_row(state(instance, **counts), Since(since, None) if since else None, NOW)


def test_worst_instances_rank_severity_then_age_then_patch_count() -> None:
    rows = [
        ("web", _row("i-00000000000000001", missing=9)),
        ("web", _row("i-00000000000000002", missing=1, critical=1)),
        ("db", _row("i-00000000000000003", missing=1, security=2, since="2025-05-01T00:00:00Z")),
        ("db", _row("i-00000000000000004", missing=1, security=2, since="2025-06-01T00:00:00Z")),
        ("web", _row("i-00000000000000005")),  # compliant: never listed
        ("web", _row("i-00000000000000006", missing=2)),
    ]

    ranked = [row.instance_id[-1] for _, row in worst_instances(rows, limit=10)]

    assert ranked == ["3", "4", "2", "1", "6"]
    assert len(worst_instances(rows, limit=2)) == 2


def test_digest_lists_every_group_failures_and_worst_instances() -> None:
    # Given two recorded groups (one with a previous snapshot), an empty group and a failed one
    web = build_snapshot(
        "web",
        NOW,
        group_state={},
        states=[state("i-00000000000000001", missing=2, critical=1), state("i-00000000000000002")],
        previous_totals=GroupTotals("web", "2025-06-09T06:00:00Z", 2, 2, Decimal("100.00")),
    )
    db = build_snapshot("db", NOW, group_state={}, states=[state("i-00000000000000003")])
    empty = build_snapshot("empty", NOW, group_state={}, states=[])
    outcomes = [
        GroupOutcome("db", "recorded", db.totals),
        GroupOutcome("empty", "recorded", empty.totals),
        GroupOutcome("broken", "failed", error="ThrottlingException: Rate exceeded"),
        GroupOutcome("web", "already-recorded", web.totals),
    ]

    # When the digest is rendered
    digest = render_digest(
        "2025-06-10T06:00:00Z", NOW, "scheduled", outcomes, worst_instances(("web", r) for r in web.rows)
    )
    lines = digest.body.splitlines()

    # Then the subject summarises the run within SNS's limit
    assert digest.subject == "TagPatch compliance 2025-06-10: 66.67%, 1 non-compliant, 1 group failed"
    # And every group appears with instances, compliance and the change, lowest compliance first
    table = [
        line.split() for line in lines if line.startswith("  ") and line.split()[0] in ("web", "db", "empty")
    ]
    assert [(row[0], row[1], row[2], row[3]) for row in table] == [
        ("web", "2", "50.00%", "-50.00"),
        ("db", "1", "100.00%", "new"),
        ("empty", "0", "n/a", "n/a"),
    ]
    # And the failed group, and the worst instance with its age
    assert "  broken: ThrottlingException: Rate exceeded" in lines
    assert any(
        line.startswith("  i-00000000000000001 (web): 1 critical, 0 security, 2 missing, 0 failed;")
        for line in lines
    )
    assert "Overall: 66.67% compliant (2 of 3 instances) in 3 groups; 1 group failed." in lines


def test_digest_subject_stays_short_and_ascii_and_long_names_are_cut() -> None:
    long_name = "Ü" + "x" * 255
    snap = build_snapshot(long_name, NOW, group_state={}, states=[state()])
    outcomes = [GroupOutcome(long_name, "recorded", snap.totals)] + [
        GroupOutcome(f"g{i}", "failed", error="boom") for i in range(1000)
    ]

    digest = render_digest("2025-06-10T06:00:00Z", NOW, "on-demand", outcomes, [])

    assert len(digest.subject) <= SUBJECT_MAX_LENGTH
    assert digest.subject.isascii()
    assert "1000 groups failed" in digest.subject
    assert any(line.strip().startswith('"Üxxx') and "..." in line for line in digest.body.splitlines())
    assert "(every instance is compliant)" in digest.body


def test_digest_body_is_capped_below_the_sns_limit() -> None:
    outcomes = [GroupOutcome(f"group-{i}", "failed", error="e" * 400) for i in range(1000)]

    digest = render_digest("2025-06-10T06:00:00Z", NOW, "scheduled", outcomes, [])

    assert len(digest.body.encode()) <= 250_000
    assert digest.body.endswith("[... truncated]\n")
    assert "(no group recorded)" in digest.body


def test_a_worst_instance_without_a_since_date_is_still_listed() -> None:
    # A row read back from the table without non_compliant_since (written by an older version)
    row = InstanceRow.from_attributes(
        {"instance_id": "i-00000000000000009", "compliant": False, "missing": 1, "operation_end_time": "x"}
    )

    digest = render_digest("2025-06-10T06:00:00Z", NOW, "scheduled", [], [("web", row)])

    assert "  i-00000000000000009 (web): 0 critical, 0 security, 1 missing, 0 failed\n" in digest.body
