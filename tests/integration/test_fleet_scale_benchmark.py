"""benchmarks/fleet_scale.py keeps measuring what it says, at its floors (small fleets here)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from moto import mock_aws

from benchmarks import fleet_scale
from benchmarks.fleet_scale import (
    Recorder,
    burst,
    burst_rows,
    fleet,
    fleet_floor,
    fleet_rows,
    makespan,
    ops,
    seconds_of,
)


def test_makespan_gives_each_job_to_the_first_free_consumer() -> None:
    # Given jobs taken in order by consumers, each the next job when it is free
    assert makespan([3.0, 1.0, 1.0, 1.0], 2) == 3.0  # one consumer has the long job, the other three
    assert makespan([2.0, 2.0, 2.0], 2) == 4.0
    assert makespan([1.0, 1.0, 1.0], 1) == 3.0
    assert makespan([], 2) == 0.0


def test_seconds_of_adds_each_call_at_its_service_latency_and_the_waits() -> None:
    calls = [("ssm", "GetMaintenanceWindow"), ("dynamodb", "UpdateItem"), ("ec2", "DescribeInstances")]

    assert seconds_of(calls, waits=1.0) == pytest.approx(0.05 + 0.01 + 0.05 + 1.0)


def test_row_ratio_is_ours_over_the_floor() -> None:
    assert fleet_scale._row("m", 3, 2, "")["ratio"] == 1.5
    assert fleet_scale._row("m", 0, 0, "")["ratio"] == 1.0  # none made, none needed
    assert fleet_scale._row("m", 2, 0, "")["ratio"] == float("inf")
    assert fleet_scale._row("m", 2.0, None, "")["ratio"] is None
    assert fleet_scale._row("m", None, 500, "")["ratio"] is None


def test_recorder_counts_each_call_for_the_job_its_thread_runs() -> None:
    with mock_aws():
        ssm = boto3.client("ssm")
        recorder = Recorder()
        recorder.attach(ssm)
        ssm.describe_maintenance_windows()  # outside any job: not recorded

        def job(key: str, calls: int) -> None:
            with recorder.job(key):
                for _ in range(calls):
                    ssm.describe_maintenance_windows()

        threads = [threading.Thread(target=job, args=(key, n)) for key, n in (("a", 3), ("b", 2))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert {key: len(calls) for key, calls in recorder.jobs.items()} == {"a": 3, "b": 2}
    assert ops(recorder.calls(["a"]), "ssm") == {"DescribeMaintenanceWindows": 3}


def _all(run: dict[str, Any]) -> list[tuple[str, str]]:
    return list(run["plan"]) + [call for message in run["per_message"] for call in message]


def test_a_small_fleet_uses_the_fewest_windows_and_verifies_at_the_floor() -> None:
    # Given 60 groups on 3 schedules, MaxGroups 60 and MaxWindows the minimum (3)
    result = fleet(groups=60, schedules=3)

    # Then the first run made one window per 20 groups of a schedule, and each group's target and task
    assert result["windows"] == result["floor_windows"] == 3
    assert result["windows_per_key"] == [1, 1, 1]
    assert result["problems"] == []
    assert {op: n for op, n in ops(_all(result["first"]), "ssm").items() if op[0] in "CR"} == {
        "CreateMaintenanceWindow": 3,
        "RegisterTargetWithMaintenanceWindow": 60,
        "RegisterTaskWithMaintenanceWindow": 60,
    }
    # And the second run, one message per window, read each window once and wrote nothing
    second = _all(result["second"])
    assert [len(body["groups"]) for body in result["second"]["messages"]] == [20, 20, 20]
    floor = fleet_floor(result)
    assert floor == {
        "GetMaintenanceWindow": 3,
        "DescribeMaintenanceWindowTargets": 3,
        "DescribeMaintenanceWindowTasks": 3,
        "GetMaintenanceWindowTask": 60,
        "GetParametersByPath": 6,
        "DescribeInstances": 1,
    }
    assert ops(second, "ssm") == {
        **{op: n for op, n in floor.items() if op != "DescribeInstances"},
        # moto answers a full last page with a NextToken: one empty page more than the floor
        "GetParametersByPath": 7,
    }
    assert ops(second, "ec2") == {"DescribeInstances": 1}
    # the lease per group; per message the placement before and again before cleaning, and once
    # by the planner (windows left behind, start collisions)
    assert ops(second, "dynamodb") == {"GetItem": 7, "Scan": 1, "UpdateItem": 120}
    assert {o.status for o in result["second"]["outcomes"]} == {"converged"}
    # And the account is full: the next group is refused by MaxGroups, one with a new schedule by
    # the windows quota, and no window was made for either
    assert result["extra"].status == "rejected"
    assert "MaxGroups is 60" in result["extra"].reasons[0]
    assert result["newkey"].status == "unplaced"
    assert "3 of MaxWindows=3" in result["newkey"].reasons[0]
    assert result["windows_after"] == 3

    rows = {row["measure"]: row for row in fleet_rows(result)}
    assert rows["second scheduled run: SSM writes"]["ours"] == 0
    assert rows["fleet: windows for 60 groups on 3 schedules"]["ratio"] == 1.0
    assert rows["fleet: first scheduled run (new fleet): SSM writes"]["ratio"] == 1.0


@pytest.mark.parametrize("workers", [2, 8])
def test_a_burst_of_new_groups_makes_one_window_per_twenty_and_converges_them_all(workers: int) -> None:
    result = burst(workers, groups=40)

    assert result["windows"] == 2
    assert result["problems"] == []
    assert result["statuses"] == {"converged": 40}
    assert result["rounds"] == 1
    assert {op: n for op, n in ops(result["calls"], "ssm").items() if op[0] in "CR"} == {
        "CreateMaintenanceWindow": 2,
        "RegisterTargetWithMaintenanceWindow": 40,
        "RegisterTaskWithMaintenanceWindow": 40,
    }
    assert result["projected"] > 0
    rows = {row["measure"].split(": ", 1)[1]: row for row in burst_rows(result)}
    assert rows["windows made"]["ratio"] == rows["SSM writes"]["ratio"] == 1.0


def test_main_prints_the_table_and_the_rates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [fleet_scale._row("windows", 50, 50, "a note"), fleet_scale._row("wall (s)", 12.34, None, "")]
    monkeypatch.setattr(fleet_scale, "run_fleet_scale", lambda: rows)

    fleet_scale.main()

    out = capsys.readouterr().out
    assert "| windows | 50 | 50 | 1.00x | a note |" in out
    assert "| wall (s) | 12.3 | - | - |  |" in out
    assert "40 TPS" in out


def test_atomic_requests_serves_requests_and_puts_moto_back_as_it_was() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.ssm.responses import SimpleSystemManagerResponse

    before = (
        DynamoHandler.__dict__.get("call_action"),
        SimpleSystemManagerResponse.__dict__.get("call_action"),
    )
    with mock_aws(), fleet_scale.atomic_requests():
        assert DynamoHandler.__dict__.get("call_action") is not before[0]
        assert boto3.client("dynamodb").list_tables()["TableNames"] == []
        assert boto3.client("ssm").describe_maintenance_windows()["WindowIdentities"] == []

    assert (
        DynamoHandler.__dict__.get("call_action"),
        SimpleSystemManagerResponse.__dict__.get("call_action"),
    ) == before
