"""benchmarks/reporter_calls.py keeps working and keeps measuring the floors (small sizes here)."""

from __future__ import annotations

import pytest

from benchmarks.reporter_calls import group_sizes, main, measure


def test_group_sizes_are_uneven_and_sum_up() -> None:
    sizes = group_sizes(10_000, 100)

    assert sum(sizes) == 10_000
    assert len(sizes) == 100
    assert max(sizes) > 100 > min(sizes)  # some groups need several pages


def test_measure_reports_calls_at_the_floor() -> None:
    # Given 1,500 instances in 30 groups (enough groups for LATEST items to fill the last call)
    runs, timings = measure(instances=1_500, groups=30)
    first, second, again = runs

    # Then SSM reads and BatchWriteItem calls are at their floors on both days
    for figures in (first, second):
        assert figures.ssm == figures.ssm_floor
        assert figures.items_written == 1_500 + 2 * 30
        assert figures.dynamodb["BatchWriteItem"] == figures.write_floor == 63
        assert figures.recorded == 30
        assert figures.emf_documents == 30
    assert "Query" not in first.dynamodb
    assert second.dynamodb["Query"] == 10  # the groups that had non-compliant instances
    # And the redelivered event reads the listing only and writes nothing
    assert again.ssm == again.ssm_floor
    assert again.items_written == 0
    assert again.skipped == 30
    assert again.publishes == 0
    assert timings["seed"] > 0


def test_main_prints_the_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.argv", ["reporter_calls", "--instances", "60", "--groups", "3"])

    main()

    out = capsys.readouterr().out
    assert "Compliance snapshot of 60 instances in 3 groups" in out
    assert "DescribeInstancePatchStatesForPatchGroup" in out
    assert "day 2 event delivered again: 0 recorded, 3 already recorded" in out
