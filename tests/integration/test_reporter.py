"""The compliance reporter against moto + the shared SSM fake (emulator/fake_ssm.py), through the handler."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from emulator.fake_ssm import CALLS, inject_faults
from emulator.scenarios.compliance import DAY1, ReporterWorld, instance_id, scheduled_event
from tagpatch.adapters.compliance_store import ReadFailed
from tagpatch.handlers.reporter import InvalidEvent, handle
from tests.support.compliance import count_items

Loader = Callable[[str], Any]
SNAP1 = "2025-06-01T06:00:00Z"
TTL_DAY1 = int((DAY1 + timedelta(days=400)).timestamp())


@pytest.fixture
def world(aws: None) -> Iterator[ReporterWorld]:
    yield ReporterWorld()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


def day(n: int) -> datetime:
    return DAY1 + timedelta(days=n - 1)


def run_day(world: ReporterWorld, n: int) -> dict[str, Any]:
    world.now = day(n)
    return handle(scheduled_event(day(n)), world.reporter)


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {entry["group"]: entry["status"] for entry in result["groups"]}


# --------------------------------------------------------------------------------------------
# Snapshot contents
# --------------------------------------------------------------------------------------------
def test_snapshot_records_totals_instance_rows_and_latest(world: ReporterWorld, load_event: Loader) -> None:
    # Given managed groups web and both, registered groups both (two OSes) and db
    world.manage("web", "both")
    world.register("both")
    world.register("both", "WINDOWS")
    world.register("db")
    ok, sick, reboot, failing = (instance_id(1, i) for i in range(4))
    world.seed_state(ok, "web")
    world.seed_state(sick, "web", missing=3, critical=1, security=1, end_time=DAY1 - timedelta(hours=3))
    world.seed_state(reboot, "web", pending_reboot=1)
    world.seed_state(failing, "web", failed=2)
    world.seed("db", 2, group_index=2)
    world.seed("both", 1, group_index=3, rejected=1)

    # When the scheduled event arrives
    result = handle(load_event("reporter-scheduled.json"), world.reporter)

    # Then every group is recorded exactly once
    assert result["ok"] is True
    assert result["snapshotId"] == SNAP1
    assert [g["group"] for g in result["groups"]] == ["both", "db", "web"]
    assert set(statuses(result).values()) == {"recorded"}

    # And web's totals follow the documented definition (a pending reboot is not compliant)
    totals = world.item("GROUP#web", f"SNAP#{SNAP1}")
    assert totals is not None
    assert totals["instances"] == 4
    assert totals["compliant_instances"] == 1
    assert totals["non_compliant_instances"] == 3
    assert str(totals["compliance_percent"]) == "25.00"
    assert totals["pending_reboot_instances"] == 1
    assert (totals["missing_patches"], totals["failed_patches"]) == (3, 2)
    assert (totals["critical_instances"], totals["critical_non_compliant_patches"]) == (1, 1)
    assert totals["oldest_non_compliant_since"] == "2025-06-01T03:00:00Z"
    assert totals["managed"] is True
    assert totals["ttl"] == TTL_DAY1
    # And it holds every field DescribePatchGroupState returned, verbatim
    expected_state = world.ssm.describe_patch_group_state(PatchGroup="web")
    expected_state.pop("ResponseMetadata")
    assert totals["group_state"] == expected_state
    assert totals["group_state"]["InstancesWithInstalledPendingRebootPatches"] == 1

    # And one row per instance, with its counts, last operation and since-dates
    rows = {row["instance_id"]: row for row in world.items("GROUP#web") if row["sk"].startswith("INST#")}
    assert set(rows) == {ok, sick, reboot, failing}
    row = rows[sick]
    assert row["sk"] == f"INST#{SNAP1}#{sick}"
    assert (row["missing"], row["critical_non_compliant"], row["security_non_compliant"]) == (3, 1, 1)
    assert (row["installed"], row["installed_other"], row["not_applicable"]) == (10, 0, 0)
    assert row["operation"] == "Install"
    assert (row["operation_start_time"], row["operation_end_time"]) == (
        "2025-06-01T02:50:00Z",
        "2025-06-01T03:00:00Z",
    )
    assert row["baseline_id"] == "pb-0123456789abcdef0"
    assert row["reboot_option"] == "RebootIfNeeded"
    assert row["compliant"] is False
    assert row["non_compliant_since"] == row["critical_missing_since"] == "2025-06-01T03:00:00Z"
    assert row["ttl"] == TTL_DAY1
    assert rows[ok]["compliant"] is True and "non_compliant_since" not in rows[ok]
    assert rows[reboot]["compliant"] is False

    # And LATEST is a copy of the newest totals
    latest = world.item("GROUP#web", "LATEST")
    assert latest is not None
    assert {k: v for k, v in latest.items() if k != "sk"} == {k: v for k, v in totals.items() if k != "sk"}

    # And the groups SSM registered carry their baselines; the run is recorded
    both = world.item("GROUP#both", "LATEST")
    db = world.item("GROUP#db", "LATEST")
    assert both is not None and db is not None
    assert len(both["baselines"]) == 2 and both["managed"] is True
    assert db["managed"] is False and str(db["compliance_percent"]) == "100.00"
    run = world.item("RUN", f"SNAP#{SNAP1}")
    assert run is not None
    assert run["digest_message_id"] == result["digestMessageId"]
    assert (run["groups"], run["groups_recorded"], run["groups_failed"]) == (3, 3, 0)
    assert len(world.items()) == (4 + 2) + (2 + 2) + (1 + 2) + 1


def test_a_state_without_optional_counts_and_a_group_without_instances(world: ReporterWorld) -> None:
    # Given a registered group with no instances and a managed group whose only state has no counts
    world.register("empty")
    world.manage("sparse")
    from emulator.fake_ssm import seed_instance_patch_state

    seed_instance_patch_state(
        {
            "InstanceId": instance_id(1, 1),
            "PatchGroup": "sparse",
            "BaselineId": "pb-0123456789abcdef0",
            "OperationStartTime": DAY1 - timedelta(hours=2),
            "OperationEndTime": DAY1 - timedelta(hours=1),
            "Operation": "Scan",
        }
    )

    # When the run happens
    result = run_day(world, 1)

    # Then the empty group has no percentage and the sparse instance counts as compliant
    by_group = {g["group"]: g for g in result["groups"]}
    assert by_group["empty"]["instances"] == 0
    assert by_group["empty"]["compliancePercent"] is None
    assert by_group["sparse"]["compliancePercent"] == 100.0
    sparse_row = next(r for r in world.items("GROUP#sparse") if r["sk"].startswith("INST#"))
    assert "missing" not in sparse_row and sparse_row["compliant"] is True
    assert "compliance_percent" not in (world.item("GROUP#empty", "LATEST") or {"compliance_percent": 1})


# --------------------------------------------------------------------------------------------
# Pagination and call counts
# --------------------------------------------------------------------------------------------
SIZES = [250, 150, 100, 100, 99, 101, 50, 50, 50, 50]  # 1,000 instances in 10 groups


def test_1000_instances_in_10_groups_page_100_at_a_time_with_exact_call_counts(world: ReporterWorld) -> None:
    # Given 10 registered groups holding 1,000 instances; the odd groups all compliant
    page_sizes: list[int] = []
    world.ssm.meta.events.register(
        "provide-client-params.ssm.DescribeInstancePatchStatesForPatchGroup",
        lambda params, **_: page_sizes.append(params["MaxResults"]),
    )
    for g, size in enumerate(SIZES):
        world.register(f"group-{g:02d}")
        world.seed(f"group-{g:02d}", size, group_index=g, missing=1 if g % 2 == 0 else 0)
    world.log.reset()

    # When the first run happens
    result = run_day(world, 1)

    # Then every instance is recorded
    assert result["ok"] is True
    assert sum(g["instances"] for g in result["groups"]) == 1000

    # And the SSM reads are exactly the floor: 1 listing page, per group 1 state + ceil(n/100) pages
    pages = sum(math.ceil(n / 100) for n in SIZES)
    assert pages == 14
    assert world.log.ops("ssm") == {
        "DescribePatchGroups": 1,
        "DescribePatchGroupState": 10,
        "DescribeInstancePatchStatesForPatchGroup": pages,
    }
    assert page_sizes == [100] * pages
    # And DynamoDB: 1 Scan (managed groups), 1 BatchGetItem (LATEST + run record), no Query on a
    # first run, 1,020 items (1,000 rows + 10 totals + 10 LATEST) in 42 BatchWriteItem calls:
    # floor ceil(1020/25) = 41, +1 because LATEST follows its rows and 10 groups cannot fill a
    # last call of 20 with LATEST items only; 1 UpdateItem (the conditional claim of the digest),
    # 1 PutItem (the run record)
    assert world.log.ops("dynamodb") == {
        "Scan": 1,
        "BatchGetItem": 1,
        "BatchWriteItem": 42,
        "UpdateItem": 1,
        "PutItem": 1,
    }
    assert world.log.ops("sns") == {"Publish": 1}
    assert count_items(world.items(), "INST#") == 1000

    # When the next day's run happens
    world.log.reset()
    run_day(world, 2)

    # Then only the 5 groups with non-compliant instances read their previous rows (1 Query each)
    assert world.log.ops("dynamodb")["Query"] == 5
    assert world.log.count("ssm") == 1 + 10 + pages


# --------------------------------------------------------------------------------------------
# Failures and retries
# --------------------------------------------------------------------------------------------
def test_a_failing_group_is_reported_while_the_others_still_snapshot(world: ReporterWorld) -> None:
    # Given three registered groups, one managed group whose name SSM refuses, and SSM denying
    # the first group's DescribePatchGroupState (groups run in name order)
    for group in ("a-broken", "b", "c"):
        world.register(group)
        world.seed(group, 3, group_index=ord(group[0]), missing=1)
    world.manage("web#1")
    inject_faults("DescribePatchGroupState", ["AccessDeniedException"])

    # When the run happens
    result = run_day(world, 1)

    # Then the failures are reported and the other groups recorded
    assert result["ok"] is False
    assert statuses(result) == {"a-broken": "failed", "b": "recorded", "c": "recorded", "web#1": "failed"}
    errors = {g["group"]: g.get("error", "") for g in result["groups"]}
    assert "AccessDeniedException" in errors["a-broken"]
    assert "not a valid SSM patch group name" in errors["web#1"]
    assert world.items("GROUP#a-broken") == []
    assert world.item("GROUP#b", "LATEST") is not None
    # And SSM was never asked about the invalid name
    assert CALLS.count("DescribePatchGroupState") == 3
    # And the digest names both failures
    (digest,) = world.digests()
    assert "2 groups failed" in digest["subject"]
    assert "  a-broken: " in digest["body"] and '  "web#1": not a valid' in digest["body"]

    # When the same event is delivered again (SSM answers now)
    CALLS.clear()
    again = run_day(world, 1)

    # Then only the failed group is read and recorded; the others are not touched again
    assert statuses(again) == {
        "a-broken": "recorded",
        "b": "already-recorded",
        "c": "already-recorded",
        "web#1": "failed",
    }
    assert CALLS.count("DescribePatchGroupState") == 1
    assert world.item("GROUP#a-broken", "LATEST") is not None
    # And since something new was recorded, a complete digest goes out again, the worst
    # instances of the groups recorded before included
    (second,) = world.digests()
    assert "1 group failed" in second["subject"]
    assert "a-broken" in second["body"].split("Failed groups")[0]
    assert f"  {instance_id(ord('b'), 0)} (b): " in second["body"]


def test_throttling_is_retried_with_backoff(world: ReporterWorld, no_backoff: None) -> None:
    # Given one group and SSM throttling the first attempts of both per-group reads
    world.register("web")
    world.seed("web", 120, group_index=1, missing=1)
    inject_faults("DescribePatchGroupState", ["ThrottlingException", "ThrottlingException"])
    inject_faults("DescribeInstancePatchStatesForPatchGroup", ["ThrottlingException"])

    # When the run happens
    result = run_day(world, 1)

    # Then the group is recorded complete after botocore's standard-mode retries
    assert statuses(result) == {"web": "recorded"}
    assert result["groups"][0]["instances"] == 120
    assert CALLS.count("DescribePatchGroupState") == 3  # 2 throttled attempts + 1 success
    assert CALLS.count("DescribeInstancePatchStatesForPatchGroup") == 3  # 1 throttled + 2 pages
    assert world.log.ops("ssm")["DescribePatchGroupState"] == 1  # one API call, three attempts


def test_throttling_past_the_retry_budget_fails_only_that_group(
    world: ReporterWorld, no_backoff: None
) -> None:
    # Given SSM throttling every attempt (1 + 8 retries) of the first group's instance listing
    for group in ("a", "b"):
        world.register(group)
        world.seed(group, 2, group_index=ord(group), missing=1)
    inject_faults("DescribeInstancePatchStatesForPatchGroup", ["ThrottlingException"] * 9)

    result = run_day(world, 1)

    assert statuses(result) == {"a": "failed", "b": "recorded"}
    assert "ThrottlingException" in result["groups"][0]["error"]


def _unprocessed_hooks(world: ReporterWorld, held_calls: int | None) -> list[int]:
    """Make BatchWriteItem leave the last 3 items of a call unprocessed, as DynamoDB does under
    load: they are not written and come back in UnprocessedItems. ``held_calls`` limits this to
    the first N calls carrying more than 3 items; None means every call, forever (a call of 3
    or fewer items is then sent, as a request cannot be empty, and still reported unprocessed).
    Returns a list that grows by one per call."""
    table = world.env["COMPLIANCE_TABLE_NAME"]
    held: list[Any] = []
    calls: list[int] = []
    holds: list[int] = []

    def before(params: dict[str, Any], **_: Any) -> None:
        calls.append(1)
        requests = params["RequestItems"][table]
        held.clear()
        if held_calls is None or (len(requests) > 3 and len(holds) < held_calls):
            holds.append(1)
            held.extend(requests[-3:])
            if len(requests) > 3:  # a request cannot be empty: a retry of 3 is sent, then refused
                del requests[-3:]

    def after(parsed: dict[str, Any], **_: Any) -> None:
        if held:
            parsed["UnprocessedItems"] = {table: list(held)}

    world.ddb.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", before)
    world.ddb.meta.events.register("after-call.dynamodb.BatchWriteItem", after)
    return calls


def test_unprocessed_items_are_retried_until_written(world: ReporterWorld) -> None:
    # Given DynamoDB leaving 3 items unprocessed in the first 3 BatchWriteItem calls
    world.register("web")
    world.seed("web", 60, group_index=1, missing=1)
    calls = _unprocessed_hooks(world, held_calls=3)

    # When the run happens
    result = run_day(world, 1)

    # Then every item is written: 61 items in calls of 25 + 25 + 11, then LATEST alone (one group:
    # nothing else can share its call), and each of the first three calls retried once
    assert statuses(result) == {"web": "recorded"}
    assert count_items(world.items("GROUP#web"), "INST#") == 60
    assert world.item("GROUP#web", f"SNAP#{SNAP1}") is not None
    assert world.item("GROUP#web", "LATEST") is not None
    assert len(calls) == 4 + 3


def test_items_unprocessed_after_every_retry_fail_the_group_without_latest(world: ReporterWorld) -> None:
    # Given DynamoDB never processing the last 3 items of any call
    world.register("web")
    world.seed("web", 30, group_index=1, missing=1)
    calls = _unprocessed_hooks(world, held_calls=None)

    result = run_day(world, 1)

    # Then the group is failed, and no LATEST claims the incomplete snapshot
    assert statuses(result) == {"web": "failed"}
    assert "unprocessed" in result["groups"][0]["error"]
    assert world.item("GROUP#web", "LATEST") is None
    assert len(calls) == 8  # MAX_ATTEMPTS for the first batch, then the group's items are dropped


def test_unprocessed_keys_are_retried_and_a_read_that_never_completes_fails_the_run(
    world: ReporterWorld,
) -> None:
    world.register("web")
    world.seed("web", 2, group_index=1, missing=1)
    run_day(world, 1)
    seen: list[int] = []
    table = world.env["COMPLIANCE_TABLE_NAME"]

    def after(parsed: dict[str, Any], **_: Any) -> None:
        seen.append(1)
        if len(seen) <= limit[0]:
            parsed["Responses"] = {table: []}
            parsed["UnprocessedKeys"] = {table: {"Keys": [{"pk": {"S": "GROUP#web"}, "sk": {"S": "LATEST"}}]}}

    limit = [2]
    world.ddb.meta.events.register("after-call.dynamodb.BatchGetItem", after)

    # When BatchGetItem leaves keys unprocessed twice, the LATEST entry is still read
    latest, _ = world.store.latest(["web"], "2025-06-02T06:00:00Z")
    assert latest["web"].snapshot_id == SNAP1
    assert len(seen) == 3

    # And when it never completes, the run fails (so the event is retried, then dead-lettered)
    limit[0] = 10_000
    with pytest.raises(ReadFailed):
        run_day(world, 2)


def test_a_failed_digest_fails_the_run_and_the_retry_sends_it(world: ReporterWorld) -> None:
    # Given a topic that does not exist
    world.register("web")
    world.seed("web", 2, group_index=1)
    good_topic = world.env["ALERT_TOPIC_ARN"]
    world.env["ALERT_TOPIC_ARN"] = good_topic + "-gone"
    broken = world.make_reporter()

    # When the run publishes, it fails after recording the snapshot
    with pytest.raises(Exception, match=r"NotFound|does not exist"):
        handle(scheduled_event(DAY1), broken)
    assert world.item("GROUP#web", "LATEST") is not None
    # (the run record says no digest went out, and holds no claim that would delay the retry)
    run = world.item("RUN", f"SNAP#{SNAP1}") or {}
    assert "digest_message_id" not in run and "digest_lease" not in run

    # And the retry of the same event sends the digest without writing the snapshot again
    world.log.reset()
    result = handle(scheduled_event(DAY1), world.reporter)
    assert statuses(result) == {"web": "already-recorded"}
    assert len(world.digests()) == 1
    assert world.log.ops("dynamodb").get("BatchWriteItem", 0) == 0


def test_a_digest_retry_goes_out_even_if_the_recorded_rows_cannot_be_read(world: ReporterWorld) -> None:
    # Given day 1 recorded but its digest lost (the topic was missing)
    world.register("web")
    world.seed("web", 2, group_index=1, missing=1)
    world.env["ALERT_TOPIC_ARN"] += "-gone"
    with pytest.raises(Exception, match=r"NotFound|does not exist"):
        handle(scheduled_event(DAY1), world.make_reporter())
    world.env["ALERT_TOPIC_ARN"] = world.env["ALERT_TOPIC_ARN"].removesuffix("-gone")

    # When the retry cannot read the recorded rows (DynamoDB refuses the Query)
    def refuse(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "Query"
        )

    world.ddb.meta.events.register("provide-client-params.dynamodb.Query", refuse)
    result = handle(scheduled_event(DAY1), world.reporter)

    # Then the digest still goes out, with the group's totals but no instance list
    assert statuses(result) == {"web": "already-recorded"}
    (digest,) = world.digests()
    assert "0.00%" in digest["body"]
    assert "Worst instances (0 of 2 non-compliant)" in digest["body"]


def test_groups_are_not_started_when_the_invocation_is_nearly_out_of_time(world: ReporterWorld) -> None:
    # Given two groups and an invocation that is out of time after the first
    for group in ("a", "b"):
        world.register(group)
        world.seed(group, 2, group_index=ord(group), missing=1)
    left = iter([120_000, 30_000])

    result = handle(scheduled_event(DAY1), world.reporter, remaining_ms=lambda: next(left))

    # Then the first is recorded and the second reported as not started
    assert statuses(result) == {"a": "recorded", "b": "failed"}
    assert "not started" in result["groups"][1]["error"]
    assert "b: not started" in world.digests()[0]["body"]


# --------------------------------------------------------------------------------------------
# Idempotency
# --------------------------------------------------------------------------------------------
def test_the_same_scheduled_event_twice_makes_one_snapshot(world: ReporterWorld, load_event: Loader) -> None:
    # Given two groups and the scheduled event
    world.manage("web")
    world.register("db")
    world.seed("web", 30, group_index=1, missing=1)
    world.seed("db", 5, group_index=2)
    event = load_event("reporter-scheduled.json")
    handle(event, world.reporter)
    before = world.items()
    assert len(world.digests()) == 1

    # When the same event is delivered again
    world.log.reset()
    CALLS.clear()
    result = handle(event, world.reporter)

    # Then nothing is read from SSM per group, nothing is written, no second digest goes out
    assert statuses(result) == {"db": "already-recorded", "web": "already-recorded"}
    assert world.log.ops("dynamodb") == {"Scan": 1, "BatchGetItem": 1}
    assert world.items() == before
    assert count_items(before, "SNAP#") == 2 + 1  # two groups + the run record
    assert len(before) == (30 + 2) + (5 + 2) + 1
    assert "DescribePatchGroupState" not in CALLS
    assert "DescribeInstancePatchStatesForPatchGroup" not in CALLS
    assert world.digests() == []


def test_a_late_older_event_is_recorded_without_moving_latest(world: ReporterWorld) -> None:
    # Given day 2's snapshot taken, then day 1's event delivered late
    world.register("web")
    world.seed("web", 3, group_index=1, missing=1)
    run_day(world, 2)
    world.log.reset()
    result = handle(scheduled_event(day(1)), world.reporter)

    # Then day 1's snapshot exists, LATEST stays on day 2
    assert statuses(result) == {"web": "recorded"}
    assert world.item("GROUP#web", f"SNAP#{SNAP1}") is not None
    latest = world.item("GROUP#web", "LATEST")
    assert latest is not None and latest["snapshot_id"] == "2025-06-02T06:00:00Z"
    assert [t.snapshot_id for t in world.store.trend("web")] == [SNAP1, "2025-06-02T06:00:00Z"]

    # And delivered once more, it is recognised with one Query and not written again
    world.log.reset()
    again = handle(scheduled_event(day(1)), world.reporter)
    assert statuses(again) == {"web": "already-recorded"}
    assert world.log.ops("dynamodb").get("BatchWriteItem", 0) == 0
    assert world.log.ops("dynamodb")["Query"] == 1  # the existence check
    assert len(world.digests()) == 1 + 1  # day 2's and day 1's; not a third


# --------------------------------------------------------------------------------------------
# History: trend and carry-over
# --------------------------------------------------------------------------------------------
def test_trend_is_one_query_returning_totals_only(world: ReporterWorld) -> None:
    # Given four instances fixed one per day over three days
    world.register("web")
    ids = world.seed("web", 4, group_index=1, missing=1)
    run_day(world, 1)
    for n, fixed in ((2, ids[:1]), (3, ids[:2])):
        for iid in fixed:
            world.seed_state(iid, "web", end_time=day(n) - timedelta(hours=1))
        run_day(world, n)

    # When the trend is read
    world.log.reset()
    trend = world.store.trend("web")

    # Then it is one Query, oldest first, with the percentage and the change per snapshot
    assert world.log.ops("dynamodb") == {"Query": 1}
    assert [t.snapshot_id for t in trend] == [SNAP1, "2025-06-02T06:00:00Z", "2025-06-03T06:00:00Z"]
    assert [str(t.compliance_percent) for t in trend] == ["0.00", "25.00", "50.00"]
    assert [None if t.compliance_change is None else str(t.compliance_change) for t in trend] == [
        None,
        "25.00",
        "25.00",
    ]
    assert [t.instances for t in trend] == [4, 4, 4]
    # And a window of it is one Query too
    world.log.reset()
    window = world.store.trend("web", start="2025-06-02T00:00:00Z", end="2025-06-03T23:59:59Z")
    assert [t.snapshot_id[:10] for t in window] == ["2025-06-02", "2025-06-03"]
    assert world.log.ops("dynamodb") == {"Query": 1}


def test_non_compliant_since_is_carried_across_snapshots(world: ReporterWorld) -> None:
    world.register("web")
    flappy, steady, critical = instance_id(1, 1), instance_id(1, 2), instance_id(1, 3)

    def scan(n: int, **states: dict[str, int]) -> None:
        for iid, counts in states.items():
            world.seed_state(iid, "web", end_time=day(n) - timedelta(hours=1), **counts)

    def row(n: int, iid: str) -> dict[str, Any]:
        found = world.item("GROUP#web", f"INST#{day(n).strftime('%Y-%m-%dT%H:%M:%SZ')}#{iid}")
        assert found is not None
        return found

    # Day 1: flappy misses a patch, steady is compliant, critical misses a critical patch
    scan(1, **{flappy: {"missing": 1}, steady: {}, critical: {"missing": 1, "critical": 1}})
    run_day(world, 1)
    assert row(1, flappy)["non_compliant_since"] == "2025-06-01T05:00:00Z"
    assert "non_compliant_since" not in row(1, steady)

    # Day 2: a new scan still finds flappy non-compliant: the date carries over; steady fails
    scan(2, **{flappy: {"missing": 2}, steady: {"failed": 1}})
    run_day(world, 2)
    assert row(2, flappy)["non_compliant_since"] == "2025-06-01T05:00:00Z"
    assert row(2, steady)["non_compliant_since"] == "2025-06-02T05:00:00Z"

    # Day 3: flappy is compliant: its date is cleared
    scan(3, **{flappy: {}})
    run_day(world, 3)
    assert "non_compliant_since" not in row(3, flappy)
    assert row(3, steady)["non_compliant_since"] == "2025-06-02T05:00:00Z"

    # Day 4: flappy is non-compliant again: the clock starts again
    scan(4, **{flappy: {"pending_reboot": 1}})
    run_day(world, 4)
    assert row(4, flappy)["non_compliant_since"] == "2025-06-04T05:00:00Z"

    # Day 7: the critical patch has been missing for 6 days: within the SLA
    run_day(world, 7)
    day7 = world.item("GROUP#web", "SNAP#2025-06-07T06:00:00Z")
    assert day7 is not None and day7["critical_sla_breaches"] == 0
    # Day 8: missing for 7 days and 1 hour (since the day 1 scan): the SLA is breached
    run_day(world, 8)
    assert row(8, critical)["critical_missing_since"] == "2025-06-01T05:00:00Z"
    day8 = world.item("GROUP#web", "SNAP#2025-06-08T06:00:00Z")
    assert day8 is not None and day8["critical_sla_breaches"] == 1


# --------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------
def test_digest_lists_groups_changes_and_worst_instances(world: ReporterWorld) -> None:
    # Given web improving from 50% to 75% and db unchanged at 100%
    world.manage("web")
    world.register("db")
    ids = world.seed("web", 4, group_index=1, missing=1)
    world.seed_state(ids[0], "web")
    world.seed_state(ids[1], "web")
    world.seed_state(ids[3], "web", missing=4, critical=2, security=1, end_time=DAY1 - timedelta(days=3))
    world.seed("db", 2, group_index=2)
    run_day(world, 1)
    world.digests()
    world.seed_state(ids[2], "web", end_time=day(2) - timedelta(hours=1))

    # When the next day's run publishes its digest
    run_day(world, 2)
    (digest,) = world.digests()
    lines = digest["body"].splitlines()

    # Then the subject is one short line with the overall compliance
    assert digest["subject"] == "TagPatch compliance 2025-06-02: 83.33%, 1 non-compliant"
    assert len(digest["subject"]) < 100
    # And every group is listed with instances, compliance % and change since the last snapshot
    table = {
        line.split()[0]: line.split()
        for line in lines
        if line.startswith("  web ") or line.startswith("  db ")
    }
    assert table["web"][1:4] == ["4", "75.00%", "+25.00"]
    assert table["db"][1:4] == ["2", "100.00%", "+0.00"]
    # And the worst instance is named with its counts and how long it has been non-compliant
    worst = [line for line in lines if line.startswith(f"  {ids[3]} (web)")]
    assert worst == [
        f"  {ids[3]} (web): 2 critical, 1 security, 4 missing, 0 failed; "
        "non-compliant for 4 days (since 2025-05-29)"
    ]
    assert "Overall: 83.33% compliant (5 of 6 instances) in 2 groups." in lines


# --------------------------------------------------------------------------------------------
# On demand, events, entry point
# --------------------------------------------------------------------------------------------
def test_on_demand_snapshots_one_group(world: ReporterWorld, load_event: Loader) -> None:
    # Given two groups
    world.manage("web", "db")
    world.seed("web", 3, group_index=1, missing=1)
    world.seed("db", 3, group_index=2)
    at = datetime(2025, 6, 1, 14, 30, 5, tzinfo=DAY1.tzinfo)

    # When an operator asks for web only
    result = handle(load_event("reporter-on-demand.json"), world.reporter, now=lambda: at)

    # Then only web is read and recorded, under a snapshot named after the request time
    assert result["source"] == "on-demand"
    assert result["snapshotId"] == "2025-06-01T14:30:05Z"
    assert statuses(result) == {"web": "recorded"}
    assert world.items("GROUP#db") == []
    totals = world.item("GROUP#web", "SNAP#2025-06-01T14:30:05Z")
    assert totals is not None and totals["source"] == "on-demand" and totals["managed"] is True
    assert len(world.digests()) == 1
    # And {} means every group
    assert set(statuses(handle({}, world.reporter, now=lambda: at + timedelta(minutes=1)))) == {"db", "web"}


@pytest.mark.parametrize("request_body", [{"group": ""}, {"group": "web", "bogus": 1}, {"group": "x" * 257}])
def test_bad_on_demand_requests_are_refused(world: ReporterWorld, request_body: dict[str, Any]) -> None:
    result = handle(request_body, world.reporter)

    assert result["ok"] is False
    assert result["error"].startswith("invalid request")
    assert world.items() == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.__setitem__("source", "aws.s3"),
        lambda e: e.__setitem__("detail-type", "Something else"),
        lambda e: e.pop("time"),
    ],
)
def test_malformed_events_are_refused_so_they_reach_the_dlq(
    world: ReporterWorld, load_event: Loader, mutate: Callable[[dict[str, Any]], Any]
) -> None:
    event = load_event("reporter-scheduled.json")
    mutate(event)

    with pytest.raises(InvalidEvent):
        handle(event, world.reporter)
    assert world.items() == []


def test_batch_write_takes_at_most_25_items(world: ReporterWorld) -> None:
    world.store.batch_write([])
    assert world.log.ops("dynamodb") == {}
    with pytest.raises(ValueError, match="at most 25"):
        world.store.batch_write([{"pk": {"S": "x"}, "sk": {"S": str(i)}} for i in range(26)])


def test_lambda_entry_point_builds_from_its_environment_and_emits_metrics(
    aws: None,
    load_event: Loader,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the deployed environment and nothing injected
    import json

    from tagpatch.adapters import clients
    from tagpatch.handlers import reporter as entry

    world = ReporterWorld()
    world.manage("web")
    world.register("db")
    world.seed("web", 4, group_index=1, missing=2)
    world.seed("web", 1, group_index=1, start=4)
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    clients.client.cache_clear()
    entry.default_reporter.cache_clear()

    # When Lambda calls the handler with the scheduled event
    result = entry.handler(load_event("reporter-scheduled.json"), lambda_context)

    # Then the snapshot is recorded and one EMF document per group carries its metrics
    assert statuses(result) == {"db": "recorded", "web": "recorded"}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    per_group = {doc["PatchGroup"]: doc for doc in emf if "PatchGroup" in doc}
    assert set(per_group) == {"web", "db"}
    web = per_group["web"]
    assert web["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TagPatch"
    assert web["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["PatchGroup", "service"]]
    assert {m["Name"]: m["Unit"] for m in web["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
        "CompliancePercent": "Percent",
        "NonCompliantInstances": "Count",
        "MissingPatches": "Count",
        "FailedPatches": "Count",
    }
    assert (web["CompliancePercent"], web["NonCompliantInstances"], web["MissingPatches"]) == (
        [20.0],
        [4.0],
        [8.0],
    )
    assert "CompliancePercent" not in per_group["db"]  # no instances, no percentage
    run_doc = next(doc for doc in emf if "ComplianceGroupsRecorded" in doc)
    assert "PatchGroup" not in run_doc
    assert (run_doc["ComplianceGroupsRecorded"], run_doc["ComplianceGroupsFailed"]) == ([2.0], [0.0])
    entry.default_reporter.cache_clear()
    clients.client.cache_clear()


def test_lambda_entry_point_fails_clearly_on_a_missing_setting(
    aws: None, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emulator.scenarios.compliance import REPORTER_ENV
    from tagpatch.handlers import reporter as entry
    from tagpatch.models.environment import ConfigError
    from tagpatch.reporter.config import load_reporter_config

    for name, value in REPORTER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COMPLIANCE_TABLE_NAME")
    entry.default_reporter.cache_clear()
    with pytest.raises(ConfigError, match="COMPLIANCE_TABLE_NAME is not set"):
        entry.handler({}, lambda_context)
    entry.default_reporter.cache_clear()
    env = {**REPORTER_ENV, "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts"}
    assert load_reporter_config(env).history_days == 400
    with pytest.raises(ConfigError, match="history_days"):
        load_reporter_config({**env, "COMPLIANCE_HISTORY_DAYS": "0"})
    with pytest.raises(ConfigError, match="alert_topic_arn"):
        load_reporter_config({**env, "ALERT_TOPIC_ARN": "not-an-arn"})
