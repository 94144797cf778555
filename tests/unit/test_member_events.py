"""Member events (docs/events.md): the detail models, their samples in events/, and the PutEvents
adapter (batching, a failed entry retried once, failures logged and counted, never raised)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.scenarios.aws import CallLog
from tagpatch import __version__
from tagpatch.adapters.member_events import (
    ACCOUNT_ENV,
    FAILED_METRIC,
    MAX_REQUEST_BYTES,
    PUBLISH_ENV,
    STACK_ENV,
    MemberEvents,
    batches,
    default_sink,
    entry_size,
    publish_built,
)
from tagpatch.models.member_events import (
    DETAIL_MODELS,
    ComplianceSnapshot,
    GroupReconciled,
    GroupRefused,
    MemberEventDetail,
    MemberHeartbeat,
    NoEvents,
    Origin,
    compliance_event,
    heartbeat_event,
    parse_detail,
    reconcile_event,
    run_result_event,
)
from tagpatch.observability import metrics
from tests.conftest import EVENTS_DIR, REPO_ROOT

ORIGIN = Origin("123456789012", "us-east-1", "tagpatch-test")


def _failed_metric() -> list[float]:
    return list(metrics.metric_set.get(FAILED_METRIC, {}).get("Value", []))


# --- the models and their samples --------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(EVENTS_DIR.glob("member-*.json")), ids=lambda p: p.name)
def test_every_sample_is_a_valid_member_event(path: Any) -> None:
    event = json.loads(path.read_text())

    detail = parse_detail(event["detail-type"], event["detail"])

    assert event["source"] == "tagpatch"
    assert detail.detail() == event["detail"]
    assert detail.schema_version == "1"
    assert detail.tagpatch_version == __version__ == event["detail"]["tagpatchVersion"]
    assert event["detail"]["account"] == event["account"]
    assert event["detail"]["region"] == event["region"]


def test_there_is_a_sample_of_every_detail_type() -> None:
    types = {json.loads(p.read_text())["detail-type"] for p in EVENTS_DIR.glob("member-*.json")}
    assert (
        types
        == set(DETAIL_MODELS)
        == {
            "Group Reconciled",
            "Group Refused",
            "Run Result",
            "Compliance Snapshot",
            "Member Heartbeat",
        }
    )


def test_a_consumer_of_version_1_ignores_fields_it_does_not_know() -> None:
    sample = json.loads((EVENTS_DIR / "member-group-refused.json").read_text())["detail"]
    detail = parse_detail("Group Refused", {**sample, "addedLater": {"x": 1}})
    assert detail.detail() == sample


def test_a_converged_group_is_reconciled_with_its_windows() -> None:
    detail = reconcile_event(
        ORIGIN,
        "web",
        "converged",
        actions=3,
        windows={
            "scan": {"window_id": "mw-0000000000000000b", "place": "daily-01"},
            "install": {"window_id": "mw-0000000000000000a", "place": "", "task_id": "t"},
        },
    )

    assert isinstance(detail, GroupReconciled)
    assert detail.detail() == {
        "schemaVersion": "1",
        "tagpatchVersion": __version__,
        "account": "123456789012",
        "region": "us-east-1",
        "stack": "tagpatch-test",
        "group": "web",
        "status": "converged",
        "actions": 3,
        "windows": [
            {"role": "install", "windowId": "mw-0000000000000000a", "place": ""},
            {"role": "scan", "windowId": "mw-0000000000000000b", "place": "daily-01"},
        ],
    }


@pytest.mark.parametrize("status", ["refused", "rejected", "unplaced"])
def test_a_group_not_reconciled_for_a_reason_is_refused_with_it(status: str) -> None:
    detail = reconcile_event(ORIGIN, "db", status, reasons=["why"])
    assert isinstance(detail, GroupRefused)
    assert (detail.status, detail.reasons, detail.group) == (status, ["why"], "db")


@pytest.mark.parametrize(
    "status", ["planned", "deferred", "handed_on", "not_reached", "failed", "empty", "deleted", "skipped"]
)
def test_other_outcomes_are_not_published(status: str) -> None:
    assert reconcile_event(ORIGIN, "web", status) is None


def test_run_result_and_snapshot_figures() -> None:
    run = run_result_event(
        ORIGIN,
        "web",
        command_id="c-1",
        status="Failed",
        instances={"Success": 3, "Failed": 1, "Pending": 0},
        failed=1,
    )
    snapshot = compliance_event(
        ORIGIN, "web", "2026-12-02T03:00:00Z", instances=4, compliant=3, percent=Decimal("75")
    )
    empty = compliance_event(ORIGIN, "web", "s", instances=0, compliant=0, percent=None)

    assert run.detail()["instances"] == {"Failed": 1, "Success": 3}
    assert (run.detail()["commandId"], run.detail()["failedInstances"]) == ("c-1", 1)
    assert isinstance(snapshot, ComplianceSnapshot)
    assert snapshot.detail()["nonCompliantInstances"] == 1
    assert snapshot.detail()["compliancePercent"] == 75.0
    assert empty.detail()["compliancePercent"] is None


def test_the_version_is_the_release_pyproject_names() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert __version__ == pyproject["project"]["version"]


def test_a_detail_of_a_member_older_than_tagpatch_version_reads_as_an_empty_version() -> None:
    sample = json.loads((EVENTS_DIR / "member-run-result.json").read_text())["detail"]
    old = {key: value for key, value in sample.items() if key != "tagpatchVersion"}

    detail = parse_detail("Run Result", old)

    assert detail.tagpatch_version == ""


def test_a_heartbeat_names_no_group_and_counts_the_groups_per_status() -> None:
    beat = heartbeat_event(ORIGIN, {"converged": 3, "refused": 1, "new": 0})

    assert isinstance(beat, MemberHeartbeat)
    assert beat.detail() == {
        "schemaVersion": "1",
        "tagpatchVersion": __version__,
        "account": "123456789012",
        "region": "us-east-1",
        "stack": "tagpatch-test",
        "groups": 4,
        "groupsByStatus": {"converged": 3, "refused": 1},
    }
    assert "group" not in beat.detail()


def test_an_account_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="account"):
        reconcile_event(Origin("acct", "us-east-1", "s"), "web", "unchanged")


# --- batching ----------------------------------------------------------------------------------
def _entry(size: int = 10) -> dict[str, Any]:
    return {"Source": "tagpatch", "DetailType": "Run Result", "Detail": "x" * size}


def test_an_entry_is_sized_as_putevents_sizes_it() -> None:
    assert entry_size({"Source": "tagpatch", "DetailType": "Run Result", "Detail": "{}"}) == 8 + 10 + 2
    assert entry_size({"Source": "é", "DetailType": "", "Detail": "", "Time": "t"}) == 14 + 2


def test_batches_hold_at_most_ten_entries_and_256_kib() -> None:
    assert [len(b) for b in batches([_entry() for _ in range(25)])] == [10, 10, 5]
    big = _entry(100 * 1024)
    assert [len(b) for b in batches([big, big, big, _entry()])] == [2, 2]
    too_big = _entry(MAX_REQUEST_BYTES)
    assert batches([too_big]) == []


# --- the adapter on moto -----------------------------------------------------------------------
@pytest.fixture
def bus(aws: None) -> Iterator[tuple[Any, str, CallLog]]:
    """The default bus with a rule for source tagpatch delivering to a queue."""
    log = CallLog()
    events = log.attach(boto3.client("events"))
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="member-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tagpatch-events", EventPattern=json.dumps({"source": ["tagpatch"]}))
    events.put_targets(Rule="tagpatch-events", Targets=[{"Id": "queue", "Arn": arn}])
    log.reset()
    yield events, url, log


def _received(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(message["Body"]) for message in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return out


def test_events_reach_a_rule_on_the_default_bus_ten_per_request(bus: tuple[Any, str, CallLog]) -> None:
    events, url, log = bus
    details: list[MemberEventDetail] = [
        compliance_event(ORIGIN, f"g{i:02}", "s-1", instances=2, compliant=1, percent=50) for i in range(12)
    ]

    MemberEvents(ORIGIN, events).publish(details)

    assert log.ops("events") == {"PutEvents": 2}
    received = _received(url)
    assert sorted(event["detail"]["group"] for event in received) == [f"g{i:02}" for i in range(12)]
    assert {(event["source"], event["detail-type"]) for event in received} == {
        ("tagpatch", "Compliance Snapshot")
    }
    assert received[0]["detail"]["schemaVersion"] == "1"
    assert _failed_metric() == []


def test_nothing_to_publish_calls_nothing(bus: tuple[Any, str, CallLog]) -> None:
    events, _, log = bus
    MemberEvents(ORIGIN, events).publish([])
    assert log.calls == []


# --- failures: retried once, then logged and counted, never raised ------------------------------
class FlakyEvents:
    """PutEvents answering with the first ``fail`` entries of each of the first ``times`` calls failed."""

    def __init__(self, fail: int, times: int) -> None:
        self.fail, self.times = fail, times
        self.requests: list[list[dict[str, Any]]] = []

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests.append(Entries)
        failing = self.fail if len(self.requests) <= self.times else 0
        results = [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
            if i < failing
            else {"EventId": str(i)}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": min(failing, len(Entries)), "Entries": results}


def _details(n: int) -> Sequence[MemberEventDetail]:
    return [
        run_result_event(ORIGIN, "web", command_id=f"c-{i}", status="Success", instances={}, failed=0)
        for i in range(n)
    ]


def test_failed_entries_are_sent_once_more_and_only_they() -> None:
    client = FlakyEvents(fail=2, times=1)

    MemberEvents(ORIGIN, client).publish(_details(3))

    assert [len(request) for request in client.requests] == [3, 2]
    assert client.requests[1] == client.requests[0][:2]
    assert _failed_metric() == []


def test_entries_failing_twice_are_counted_not_raised() -> None:
    client = FlakyEvents(fail=2, times=2)

    MemberEvents(ORIGIN, client).publish(_details(3))

    assert [len(request) for request in client.requests] == [3, 2]
    assert _failed_metric() == [2.0]


def test_a_request_that_raises_counts_every_event_and_raises_nothing() -> None:
    class Denied:
        def put_events(self, **_: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")

    MemberEvents(ORIGIN, Denied()).publish(_details(4))

    assert _failed_metric() == [4.0]


def test_an_event_that_cannot_be_built_is_counted_and_the_rest_goes_on() -> None:
    client = FlakyEvents(fail=0, times=0)

    def build(_: Any) -> list[MemberEventDetail]:
        raise ValueError("bad figures")

    publish_built(MemberEvents(ORIGIN, client), build)
    publish_built(NoEvents(), build)  # a disabled sink does not even build them

    assert client.requests == []
    assert _failed_metric() == [1.0]


# --- the switch --------------------------------------------------------------------------------
def test_the_stack_parameter_switches_publishing() -> None:
    env = {ACCOUNT_ENV: "123456789012", "AWS_REGION": "us-east-1", STACK_ENV: "tagpatch"}

    on = default_sink({**env, PUBLISH_ENV: "true"})
    off = default_sink({**env, PUBLISH_ENV: "false"})
    unset = default_sink(env)

    assert isinstance(on, MemberEvents)
    assert on.origin == Origin("123456789012", "us-east-1", "tagpatch")
    assert (off.enabled, unset.enabled) == (False, False)
