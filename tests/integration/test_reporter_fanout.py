"""A run for every group fanned out through the report queue, against moto + the SSM fake.

The world plays Lambda's poller (``ReporterWorld.deliver``: one record per invocation, as the
stack's batch size 1; a failed record goes back on the queue). Time is the reporter's clock
(``world.now``); SQS delays are skipped by delivering a queued message whenever the test says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from moto import mock_aws

from emulator import fake_ssm
from emulator.fake_ssm import CALLS, inject_faults
from emulator.scenarios.compliance import DAY1, ReporterWorld, instance_id, report_record, scheduled_event
from tagpatch.handlers.reporter import handle
from tagpatch.reporter.core import MAX_ATTEMPTS, RETRY_DELAY_SECONDS, UnknownRun
from tests.support.compliance import count_items

SNAP = "2025-06-01T06:00:00Z"
RUN = ("RUN", f"SNAP#{SNAP}")


@pytest.fixture
def world(aws: None) -> Iterator[ReporterWorld]:
    yield ReporterWorld(fanout=True)


def _fleet(world: ReporterWorld) -> None:
    """big (2,500 instances in the groups table: a batch alone; 150 patch states, 2 pages), 25
    small managed groups of 4 (two batches of at most 20), a registered-only group of 3 (size
    unknown: counted as 100), and a managed group whose name SSM refuses."""
    world.manage("big", *[f"small-{i:02d}" for i in range(25)], "web#1")
    world.set_size("big", 2_500)
    for i in range(25):
        world.set_size(f"small-{i:02d}", 4)
    world.register("big")
    world.register("registered")
    world.seed("big", 150, group_index=1, missing=1)
    for i in range(25):
        sick = {"missing": 2, "critical": 1} if i == 3 else {}
        world.seed(f"small-{i:02d}", 4, group_index=10 + i, **sick)
    world.seed("registered", 3, group_index=99)


def _plan(world: ReporterWorld) -> dict[str, Any]:
    world.log.reset()
    return handle(scheduled_event(DAY1), world.reporter)


def _types(world: ReporterWorld) -> list[str]:
    return [body["type"] for body, _ in world.queued()]


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------
def test_the_schedule_plans_batches_by_size_and_queues_them_with_a_deadline(world: ReporterWorld) -> None:
    # Given big, 25 small groups, one registered-only and one invalid name
    _fleet(world)

    # When the schedule fires
    result = _plan(world)

    # Then the planner's calls are exactly: the listing, the record check, the plan, the run
    # record, one SendMessageBatch
    assert world.log.ops("ssm") == {"DescribePatchGroups": 1}
    assert world.log.ops("dynamodb") == {"GetItem": 1, "Scan": 1, "BatchWriteItem": 1, "PutItem": 1}
    assert world.log.ops("sqs") == {"SendMessageBatch": 1}
    # And it queued four batches (big alone first, then the small ones packed 20 + 6)
    # and the deadline, delayed as long as SQS allows, and refused the invalid name
    assert result["planned"] == {
        "groups": 27,
        "batches": 3,
        "sent": 3,
        "refused": ["web#1"],
        "deadline": "2025-06-01T09:00:00Z",
        "replanned": False,
        "digestSent": False,
    }
    queued = world.queued()
    assert [(body["type"], delay) for body, delay in queued] == [
        ("batch", 0),
        ("batch", 0),
        ("batch", 0),
        ("deadline", 900),
    ]
    groups = [[g["name"] for g in body["groups"]] for body, _ in queued[:3]]
    assert groups[0] == ["big"]
    assert groups[1] == ["registered", *[f"small-{i:02d}" for i in range(19)]]  # 20 groups
    assert groups[2] == [f"small-{i:02d}" for i in range(19, 25)]
    assert queued[0][0]["groups"][0] == {"name": "big", "managed": True, "baselines": [world.baseline_id()]}
    assert queued[3][0] == {"type": "deadline", "snapshotId": SNAP, "deadline": "2025-06-01T09:00:00Z"}
    # And the run record and the plan are stored
    run = world.item(*RUN) or {}
    assert (run["batches"], run["groups"], run["refused"], run["deadline"]) == (
        3,
        27,
        ["web#1"],
        "2025-06-01T09:00:00Z",
    )
    assert [item["sk"] for item in world.items("RUN")] == [
        f"SNAP#{SNAP}",
        *[f"SNAP#{SNAP}#PLAN#{n:05d}" for n in range(3)],
    ]


def test_a_redelivered_schedule_resends_only_the_batches_not_done(world: ReporterWorld) -> None:
    # Given a planned run whose first batch is done
    _fleet(world)
    _plan(world)
    world.deliver(("batch",), limit=1)

    # When the scheduled event is delivered again
    world.log.reset()
    again = handle(scheduled_event(DAY1), world.reporter)

    # Then the stored plan is sent again for the two batches left (no listing, no new plan)
    assert again["planned"]["replanned"] is True
    assert again["planned"]["sent"] == 2
    assert world.log.ops("ssm") == {}
    assert world.log.ops("dynamodb") == {"GetItem": 1, "Query": 1}
    batches = [body["batch"] for body, _ in world.queued() if body["type"] == "batch"]
    assert sorted(batches) == [1, 1, 2, 2]  # the first delivery's and the resent ones

    # When every batch is carried out (duplicates included) and the event comes a third time
    world.drain()
    third = handle(scheduled_event(DAY1), world.reporter)

    # Then one digest went out and the third delivery sent nothing
    assert len(world.digests()) == 1
    assert third["planned"]["digestSent"] is True
    assert third["planned"]["sent"] == 0


def test_a_run_without_groups_sends_its_digest_at_once(world: ReporterWorld) -> None:
    result = _plan(world)

    assert result["planned"]["batches"] == 0
    (digest,) = world.digests()
    assert "(no group recorded)" in digest["body"]
    assert result["digestMessageId"] is not None


# --------------------------------------------------------------------------------------------
# Workers and the one digest
# --------------------------------------------------------------------------------------------
def test_workers_record_every_group_and_the_last_one_sends_the_one_digest(world: ReporterWorld) -> None:
    # Given a planned run
    _fleet(world)
    _plan(world)

    # When Lambda's poller hands each batch to a worker
    world.log.reset()
    deliveries = world.drain()

    # Then every group is recorded as a run in one invocation records it: rows, totals, LATEST
    assert [d.failed for d in deliveries] == [False, False, False]
    items = world.items()
    assert count_items(items, "INST#") == 150 + 25 * 4 + 3
    assert count_items(items, "LATEST") == 27
    assert count_items(items, f"SNAP#{SNAP}") == 27 + 1 + 3 + 3  # totals, run, plan, reports
    # And exactly one digest went out, sent by the worker of the last batch
    (digest,) = world.digests()
    assert [d.response for d in deliveries] == [{"batchItemFailures": []}] * 3
    assert "1 group failed" in digest["subject"]
    assert '"web#1": not a valid SSM patch group name' in digest["body"]
    assert "in 27 groups" in digest["body"]
    run = world.item(*RUN) or {}
    assert run["done_batches"] == {0, 1, 2}
    assert run["digest_message_id"] and "digest_lease" not in run
    assert (run["groups"], run["groups_recorded"], run["groups_failed"], run["groups_missing"]) == (
        28,
        27,
        1,
        0,
    )
    # And the per-group metrics were emitted by the workers; the last one counted no group missing
    assert sum(d.metric("ComplianceGroupsRecorded") or 0 for d in deliveries) == 27
    assert [d.metric("ComplianceGroupsMissing") for d in deliveries] == [None, None, 0]
    # And each worker's SSM reads are the floor: 1 state + ceil(n/100) pages per group, no listing
    assert world.log.ops("ssm") == {
        "DescribePatchGroupState": 27,
        "DescribeInstancePatchStatesForPatchGroup": 2 + 25 + 1,
    }


def test_the_digest_is_the_one_a_run_in_one_invocation_sends() -> None:
    # Given the same fleet snapshotted fanned out, and in one invocation (a fresh account each)
    bodies = {}
    for fanout in (True, False):
        with mock_aws():
            fake_ssm.reset()
            world = ReporterWorld(fanout=fanout)
            _fleet(world)
            handle(scheduled_event(DAY1), world.reporter)
            if fanout:
                world.drain()
            (digest,) = world.digests()
            bodies[fanout] = digest

    # Then the digests are the same, worst instances and all
    assert bodies[True] == bodies[False]
    assert f"  {instance_id(13, 0)} (small-03): 1 critical" in bodies[True]["body"]


def test_a_redelivered_batch_writes_nothing_twice_and_sends_no_second_digest(world: ReporterWorld) -> None:
    # Given a run carried out to its digest
    _fleet(world)
    _plan(world)
    message = next(body for body, _ in world.queued() if body["type"] == "batch" and body["batch"] == 2)
    world.drain()
    assert len(world.digests()) == 1
    items = len(world.items())

    # When SQS delivers a batch again
    world.log.reset()
    CALLS.clear()
    response = handle({"Records": [report_record(json.dumps(message), receive_count=2)]}, world.reporter)

    # Then no group is read from SSM or written again and no digest goes out: one BatchGetItem
    # (LATEST of its groups), the batch's report rewritten as it was, the done batch added again
    assert response == {"batchItemFailures": []}
    assert CALLS == []
    assert world.log.ops("dynamodb") == {"BatchGetItem": 1, "PutItem": 1, "UpdateItem": 1}
    assert len(world.items()) == items
    assert world.digests() == []
    assert (world.item(*RUN) or {})["done_batches"] == {0, 1, 2}


def test_two_simultaneous_completions_send_one_digest(world: ReporterWorld) -> None:
    # Given a run whose last batch is delivered twice at once: the second delivery runs whole
    # between the first's marking of the batch and its claim of the digest
    _fleet(world)
    _plan(world)
    last = world.take("batch", last=True)
    world.drain()
    world.put_back(last)
    mark = world.store.mark_batch_done
    responses = []

    def marking(snapshot_id: str, batch: int) -> dict[str, Any]:
        record = mark(snapshot_id, batch)
        world.store.mark_batch_done = mark  # type: ignore[method-assign]
        responses.append(handle({"Records": [report_record(json.dumps(last))]}, world.reporter))
        return record

    world.store.mark_batch_done = marking  # type: ignore[method-assign]

    # When both deliveries run
    world.deliver(("batch",))

    # Then both succeed and exactly one digest went out
    assert responses == [{"batchItemFailures": []}]
    assert len(world.digests()) == 1
    assert "digest_lease" not in (world.item(*RUN) or {})


# --------------------------------------------------------------------------------------------
# Failures, retries and the deadline
# --------------------------------------------------------------------------------------------
def test_a_failed_group_is_retried_by_a_delayed_batch_then_recorded(world: ReporterWorld) -> None:
    # Given a planned run and SSM denying the first DescribePatchGroupState (big's, first batch)
    _fleet(world)
    _plan(world)
    inject_faults("DescribePatchGroupState", ["AccessDeniedException"])

    # When the batches are delivered once
    first = world.deliver(("batch",))

    # Then big's batch is sent again with attempt 2, a minute later, and nothing failed for good
    assert [d.failed for d in first] == [False, False, False]
    retry = [(body, delay) for body, delay in world.queued() if body["type"] == "batch"]
    assert [(body["groups"][0]["name"], body["attempt"], delay) for body, delay in retry] == [
        ("big", 2, RETRY_DELAY_SECONDS)
    ]
    assert first[0].metric("ComplianceGroupsFailed") == 0
    assert world.digests() == []
    assert (world.item(*RUN) or {})["done_batches"] == {1, 2}

    # When the retry is delivered (SSM answers now)
    world.deliver(("batch",))

    # Then big is recorded and the run's one digest names no failure but the refused name
    (digest,) = world.digests()
    assert "1 group failed" in digest["subject"] and "missing" not in digest["subject"]
    assert world.item("GROUP#big", "LATEST") is not None


def test_a_group_that_fails_every_attempt_is_reported_failed(world: ReporterWorld) -> None:
    # Given a run whose other batches are done, and SSM denying big's DescribePatchGroupState on
    # every attempt
    _fleet(world)
    _plan(world)
    big = world.take("batch")
    world.drain()
    world.put_back(big)
    inject_faults("DescribePatchGroupState", ["AccessDeniedException"] * MAX_ATTEMPTS)

    # When big's batch and its retries are delivered
    deliveries = world.drain()

    # Then big was tried MAX_ATTEMPTS times, then counted failed, and the digest names it
    attempts = [d.body["attempt"] for d in deliveries if d.body["groups"][0]["name"] == "big"]
    assert attempts == list(range(1, MAX_ATTEMPTS + 1))
    assert deliveries[-1].metric("ComplianceGroupsFailed") == 1
    (digest,) = world.digests()
    assert "2 groups failed" in digest["subject"]
    assert "  big: " in digest["body"] and "AccessDeniedException" in digest["body"]


def test_the_deadline_sends_the_digest_naming_the_groups_still_missing(world: ReporterWorld) -> None:
    # Given a planned run whose big batch never arrives (lost until later) and the others done
    _fleet(world)
    _plan(world)
    big = world.take("batch")
    world.drain()
    assert world.digests() == []

    # When the deadline message arrives early (SQS delays 15 minutes at most)
    world.now = DAY1 + timedelta(minutes=170)
    (early,) = world.deliver(("deadline",))

    # Then it is sent again for the time left, and nothing else happens
    assert not early.failed
    assert [(body["type"], delay) for body, delay in world.queued()] == [("deadline", 10 * 60)]

    # When it arrives at the deadline
    world.now = DAY1 + timedelta(hours=3, seconds=1)
    (due,) = world.deliver(("deadline",))

    # Then the digest goes out, naming big as missing, and the missing count is emitted
    (digest,) = world.digests()
    assert "1 group missing" in digest["subject"]
    assert "Missing groups (not recorded by the run's deadline):" in digest["body"]
    assert "  big: not recorded by the run's deadline (2025-06-01T09:00:00Z)" in digest["body"]
    assert "in 26 groups" in digest["body"]
    assert due.metric("ComplianceGroupsMissing") == 1
    run = world.item(*RUN) or {}
    assert (run["groups_missing"], run["completed"]) == (1, False)

    # When the lost batch arrives after all
    world.put_back(big)
    (late,) = world.deliver(("batch",))

    # Then big is recorded, and no second digest goes out
    assert not late.failed
    assert world.item("GROUP#big", "LATEST") is not None
    assert world.digests() == []
    assert late.metric("ComplianceGroupsMissing") is None


def test_the_deadline_sends_the_digest_of_a_complete_run_whose_worker_died(world: ReporterWorld) -> None:
    # Given a run whose last worker marked its batch done, then died before the digest
    _fleet(world)
    _plan(world)
    publish = world.reporter._topic.publish

    def dying(subject: str, body: str) -> str:
        raise RuntimeError("the invocation ended")

    world.reporter._topic.publish = dying  # type: ignore[method-assign]
    world.drain(rounds=1)
    world.reporter._topic.publish = publish  # type: ignore[method-assign]
    world.take("batch")  # its redelivery is not needed for the deadline to send the digest

    # When the deadline is due
    world.now = DAY1 + timedelta(hours=4)
    world.deliver(("deadline",))

    # Then the complete run's digest goes out, nothing missing
    (digest,) = world.digests()
    assert "missing" not in digest["subject"]
    assert (world.item(*RUN) or {})["completed"] is True


# --------------------------------------------------------------------------------------------
# Messages that cannot be used
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not JSON"),
        (json.dumps({"type": "batch", "snapshotId": SNAP, "source": "scheduled", "batch": 0}), "groups"),
        (json.dumps({"type": "deadline", "snapshotId": SNAP, "deadline": "x", "extra": 1}), "extra"),
        (json.dumps({"type": "sweep"}), "type"),
    ],
)
def test_a_malformed_message_fails_its_record_for_the_dlq(
    world: ReporterWorld, body: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    record = report_record(body)

    response = handle({"Records": [record]}, world.reporter)

    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    (refusal,) = [r for r in caplog.records if r.getMessage().startswith("report message refused")]
    assert problem in str(refusal.errors)


def test_a_batch_of_a_run_without_a_record_fails_its_record(world: ReporterWorld) -> None:
    body = {
        "type": "batch",
        "snapshotId": SNAP,
        "source": "scheduled",
        "batch": 0,
        "groups": [{"name": "web"}],
    }
    record = report_record(json.dumps(body))

    response = handle({"Records": [record]}, world.reporter)

    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert world.items() == []


def test_the_sample_queue_events_are_a_batch_and_a_deadline_of_a_planned_run(
    world: ReporterWorld, load_event: Any
) -> None:
    # Given web and db planned in one batch for the sample events' run (the planner's own order)
    world.manage("web")
    world.register("web")
    world.register("db")
    world.seed("web", 2, group_index=1, missing=1)
    world.seed("db", 1, group_index=2)
    _plan(world)
    planned = world.take("batch")
    sample = json.loads(load_event("reporter-queue-batch.json")["Records"][0]["body"])
    assert sorted(g["name"] for g in planned["groups"]) == sorted(g["name"] for g in sample["groups"])

    # When Lambda delivers the sample batch, then the sample deadline (due)
    batch = handle(load_event("reporter-queue-batch.json"), world.reporter)
    world.now = DAY1 + timedelta(hours=3)
    deadline = handle(load_event("reporter-queue-deadline.json"), world.reporter)

    # Then both groups are recorded and the batch sent the one digest; the deadline found it sent
    assert batch == deadline == {"batchItemFailures": []}
    assert world.item("GROUP#web", "LATEST") is not None and world.item("GROUP#db", "LATEST") is not None
    (digest,) = world.digests()
    assert "in 2 groups" in digest["body"]


def test_two_concurrent_plans_of_one_run_make_one_run_and_one_digest(world: ReporterWorld) -> None:
    # Given the scheduled event delivered twice at once: the second delivery plans whole while the
    # first has written the plan but not yet created the run record
    _fleet(world)
    write_plan = world.store.write_plan
    second: list[dict[str, Any]] = []

    def writing(*args: Any, **kwargs: Any) -> None:
        write_plan(*args, **kwargs)
        world.store.write_plan = write_plan  # type: ignore[method-assign]
        second.append(handle(scheduled_event(DAY1), world.reporter))

    world.store.write_plan = writing  # type: ignore[method-assign]

    # When both run
    first = _plan(world)

    # Then the second created the run; the first found it and sent the stored plan again
    assert second[0]["planned"]["replanned"] is False
    assert first["planned"]["replanned"] is True
    assert first["planned"]["batches"] == second[0]["planned"]["batches"] == 3
    assert _types(world).count("batch") == 6 and _types(world).count("deadline") == 2
    # And carried out, the duplicates record nothing twice and one digest goes out
    world.drain()
    assert len(world.digests()) == 1
    assert (world.item(*RUN) or {})["done_batches"] == {0, 1, 2}


def test_a_deadline_without_its_run_record_sends_nothing(world: ReporterWorld, caplog: Any) -> None:
    body = {"type": "deadline", "snapshotId": SNAP, "deadline": "2025-06-01T05:00:00Z"}

    response = handle({"Records": [report_record(json.dumps(body))]}, world.reporter)

    assert response == {"batchItemFailures": []}
    assert world.digests() == [] and world.queued() == []
    assert "deadline of a run without a record" in caplog.text


def test_a_schedule_for_a_run_recorded_in_one_invocation_is_refused(world: ReporterWorld) -> None:
    # Given a run record of the same snapshot written by a run in one invocation
    world.store.record_run(SNAP, {"source": "scheduled", "groups": 0}, 2_000_000_000)

    # Then the planner refuses the event (retried, then dead-lettered) rather than guess a plan
    with pytest.raises(UnknownRun, match="was not planned for the report queue"):
        handle(scheduled_event(DAY1), world.reporter)
    assert world.queued() == []


def test_lambda_entry_point_plans_and_works_with_the_deployed_environment(
    world: ReporterWorld, load_event: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployed environment (REPORT_QUEUE_URL set) and nothing injected
    from tagpatch.adapters import clients
    from tagpatch.handlers import reporter as entry

    world.register("web")
    world.seed("web", 2, group_index=1)
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    clients.client.cache_clear()
    entry.default_reporter.cache_clear()
    try:
        # When Lambda calls the handler with the schedule, then with the batch it queued
        planned = entry.handler(load_event("reporter-scheduled.json"), lambda_context)
        batch = json.dumps(world.take("batch"))
        worked = entry.handler({"Records": [report_record(batch)]}, lambda_context)
    finally:
        entry.default_reporter.cache_clear()
        clients.client.cache_clear()

    # Then the run was planned, the batch recorded and the run's digest sent
    assert planned["planned"]["batches"] == 1
    assert worked == {"batchItemFailures": []}
    assert len(world.digests()) == 1
