"""The ComplianceTable key design and the snapshot writer's batching and ordering (no AWS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from emulator.fake_ssm import make_instance_patch_state
from tagpatch.adapters.compliance_store import (
    BACKOFF_CAP_SECONDS,
    SnapshotWriter,
    WriteFailed,
    backoff_seconds,
    instance_item,
    latest_item,
    run_item,
    totals_item,
)
from tagpatch.reporter.compliance import GroupTotals, build_snapshot

Item = dict[str, Any]


def _item(group: str, sk: str) -> Item:
    return {"pk": {"S": f"GROUP#{group}"}, "sk": {"S": sk}}


class Recorder:
    """A stand-in for ``ComplianceStore.batch_write``: records each batch, fails on request."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[tuple[str, str]]] = []
        self.fail_on = fail_on or set()

    def __call__(self, items: Sequence[Item]) -> None:
        number = len(self.batches)
        self.batches.append([(item["pk"]["S"][6:], item["sk"]["S"]) for item in items])
        if number in self.fail_on:
            raise WriteFailed("3 items stayed unprocessed after 8 BatchWriteItem attempts")

    def written(self) -> list[tuple[str, str]]:
        return [
            key for number, batch in enumerate(self.batches) if number not in self.fail_on for key in batch
        ]


def _fill(writer: SnapshotWriter, groups: int, rows: int) -> None:
    for g in range(groups):
        items = [_item(f"g{g}", f"INST#s#{i}") for i in range(rows)] + [_item(f"g{g}", "SNAP#s")]
        writer.add(f"g{g}", items, [_item(f"g{g}", "LATEST")])


def test_items_are_packed_25_per_call_across_groups_and_latest_comes_last() -> None:
    # Given 30 groups of 100 instance rows + totals, each with a LATEST commit
    recorder = Recorder()
    writer = SnapshotWriter(recorder)
    _fill(writer, groups=30, rows=100)

    # When the writer finishes
    result = writer.finish()

    # Then 3,060 items took the floor, ceil(3060 / 25) = 123 calls, all but one of 25 items
    assert len(recorder.batches) == 123
    assert sorted(len(batch) for batch in recorder.batches)[1:] == [25] * 122
    assert sum(len(batch) for batch in recorder.batches) == 3060
    assert result.committed == {f"g{g}" for g in range(30)}
    assert result.failed == {}
    # And every group's LATEST went in a later call than all of its other items
    for g in range(30):
        group = f"g{g}"
        latest_call = next(n for n, batch in enumerate(recorder.batches) if (group, "LATEST") in batch)
        other_calls = [
            n for n, b in enumerate(recorder.batches) for key in b if key[0] == group and key[1] != "LATEST"
        ]
        assert max(other_calls) < latest_call, group


def test_few_groups_cost_one_call_over_the_floor() -> None:
    # Given 10 groups of 101 items: 1,020 items, floor ceil(1020 / 25) = 41. The last call can
    # hold only LATEST items (at most 10), so 1,010 others need 41 calls before it: 42 is the least.
    recorder = Recorder()
    writer = SnapshotWriter(recorder)
    _fill(writer, groups=10, rows=100)

    writer.finish()

    assert len(recorder.batches) == 42
    assert {sk for _, sk in recorder.batches[-1]} == {"LATEST"}


def test_a_failed_batch_fails_only_its_groups_and_drops_their_commits() -> None:
    # Given three groups whose first call (holding g0's and g1's items) fails for good
    recorder = Recorder(fail_on={0})
    writer = SnapshotWriter(recorder)
    writer.add("g0", [_item("g0", f"INST#s#{i}") for i in range(20)], [_item("g0", "LATEST")])
    writer.add("g1", [_item("g1", f"INST#s#{i}") for i in range(10)], [_item("g1", "LATEST")])
    writer.add("g2", [_item("g2", f"INST#s#{i}") for i in range(30)], [_item("g2", "LATEST")])

    # When it finishes
    result = writer.finish()

    # Then g0 and g1 are failed with the reason, their later items and LATEST never written
    assert set(result.failed) == {"g0", "g1"}
    assert "unprocessed" in result.failed["g0"]
    written = recorder.written()
    assert ("g0", "LATEST") not in written and ("g1", "LATEST") not in written
    assert not any(grp == "g1" for grp, _ in written)
    # And g2 is complete
    assert result.committed == {"g2"}
    assert ("g2", "LATEST") in written
    assert sum(1 for grp, sk in written if grp == "g2" and sk.startswith("INST#")) == 30


def test_a_group_with_nothing_but_its_commit_and_one_without_commit() -> None:
    recorder = Recorder()
    writer = SnapshotWriter(recorder)
    writer.add("only-commit", [], [_item("only-commit", "SNAP#s")])
    writer.add("no-commit", [_item("no-commit", "INST#s#1")], [])

    result = writer.finish()

    assert result.committed == {"only-commit", "no-commit"}
    assert sorted(recorder.batches[0]) == [("no-commit", "INST#s#1"), ("only-commit", "SNAP#s")]
    assert len(recorder.batches) == 1


def test_backoff_is_jittered_and_capped() -> None:
    for attempt in range(1, 12):
        delay = backoff_seconds(attempt)
        assert 0 <= delay <= min(BACKOFF_CAP_SECONDS, 0.05 * 2**attempt)


def test_key_design() -> None:
    # Given a snapshot of one group with one instance
    now = datetime(2025, 6, 1, 6, 0, tzinfo=UTC)
    state = make_instance_patch_state("i-0123456789abcdef0", "web", missing=1, end_time=now)
    snap = build_snapshot("web", now, group_state={"Instances": 1}, states=[state])
    expires = 1_783_317_600

    # Then the four item kinds have these keys, every one a TTL
    assert instance_item("web", snap.totals.snapshot_id, snap.rows[0], expires)["sk"] == {
        "S": "INST#2025-06-01T06:00:00Z#i-0123456789abcdef0"
    }
    totals = totals_item(snap.totals, expires)
    assert (totals["pk"], totals["sk"]) == ({"S": "GROUP#web"}, {"S": "SNAP#2025-06-01T06:00:00Z"})
    latest = latest_item(snap.totals, expires)
    assert latest["sk"] == {"S": "LATEST"}
    assert {k: v for k, v in latest.items() if k != "sk"} == {k: v for k, v in totals.items() if k != "sk"}
    run = run_item("2025-06-01T06:00:00Z", {"groups": 1, "digest_message_id": None}, expires)
    assert (run["pk"], run["sk"]) == ({"S": "RUN"}, {"S": "SNAP#2025-06-01T06:00:00Z"})
    assert "digest_message_id" not in run  # absent values are not stored
    for item in (totals, latest, run):
        assert item["ttl"] == {"N": str(expires)}
    assert totals["compliance_percent"] == {"N": "0.00"}
    assert GroupTotals.from_attributes(
        {"group": "web", "snapshot_id": "x", "compliance_percent": Decimal("0.00")}
    ).compliance_percent == Decimal("0.00")


def test_many_small_groups_write_held_commits_in_full_batches_and_stay_at_the_floor() -> None:
    # Given 120 groups of 4 items: commits pile up faster than the last batches need them
    recorder = Recorder()
    writer = SnapshotWriter(recorder)
    _fill(writer, groups=120, rows=3)

    result = writer.finish()

    # Then 600 items take exactly 24 full calls, some of them made of LATEST items only
    assert [len(batch) for batch in recorder.batches] == [25] * 24
    assert len(result.committed) == 120
    assert any({sk for _, sk in batch} == {"LATEST"} for batch in recorder.batches[:-1])
