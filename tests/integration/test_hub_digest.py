"""The hub's digest function on moto: the organization's metrics from one Scan, the digest on the
topic once per schedule event, what changed since the last one, and its figures kept in chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from benchmarks.hub_store import HISTORY_TABLE, HUB_ENV, STATE_TABLE, create_hub_tables, envelope, sqs_event
from emulator.scenarios.aws import CallLog
from tagpatch.adapters import hub_store
from tagpatch.adapters.digest_topic import DigestTopic
from tagpatch.adapters.hub_store import CHUNK_CHARS, HubStore, to_dynamo
from tagpatch.handlers import hub as hub_handler
from tagpatch.handlers import hub_digest
from tagpatch.hub.config import load_hub_digest_config, load_hub_store_config
from tagpatch.hub.core import HubRecorder
from tagpatch.hub.digest import WORST_GROUPS, compute, read_items, remembered
from tagpatch.observability import metrics
from tests.conftest import EVENTS_DIR

NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
CHECK, DIGEST = {"action": "check"}, {"action": "digest"}


@dataclass
class Org:
    log: CallLog
    ddb: Any
    sns: Any
    queue_url: str
    topic_arn: str
    recorder: HubRecorder

    def send(self, *events: dict[str, Any]) -> None:
        for start in range(0, len(events), 10):
            answer = hub_handler.handle(sqs_event(list(events[start : start + 10])), self.recorder)
            assert answer == {"batchItemFailures": []}

    def run(self, event: dict[str, Any], at: datetime = NOW, **env: str) -> dict[str, Any]:
        config = load_hub_digest_config(
            {
                "TAGPATCH_HUB_STATE_TABLE": STATE_TABLE,
                "TAGPATCH_HUB_TOPIC_ARN": self.topic_arn,
                "TAGPATCH_HUB_COMPLIANCE_THRESHOLD": "90",
                "TAGPATCH_HUB_SILENT_AFTER_HOURS": "24",
                **env,
            }
        )
        metrics.clear_metrics()
        return hub_digest.handle(
            event,
            config,
            HubStore(STATE_TABLE, dynamodb_client=self.ddb),
            DigestTopic(self.topic_arn, self.sns),
            lambda: at,
        )

    def digests(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        out = []
        while batch := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return out


@pytest.fixture
def org(aws: None) -> Iterator[Org]:
    log = CallLog()
    ddb = log.attach(boto3.client("dynamodb"))
    sns = log.attach(boto3.client("sns"))
    create_hub_tables(ddb)
    topic = sns.create_topic(Name="hub-topic")["TopicArn"]
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="digest-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    recorder = HubRecorder(load_hub_store_config(HUB_ENV), HubStore(STATE_TABLE, HISTORY_TABLE, ddb))
    log.reset()
    yield Org(log, ddb, sns, url, topic, recorder)


def _snapshot(
    account: str, region: str, group: str, instances: int, compliant: int, at: datetime
) -> dict[str, Any]:
    detail = {
        "schemaVersion": "1",
        "tagpatchVersion": "0.1.0",
        "account": account,
        "region": region,
        "stack": "tagpatch",
        "group": group,
        "snapshotId": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "instances": instances,
        "compliantInstances": compliant,
        "nonCompliantInstances": instances - compliant,
        "compliancePercent": round(100 * compliant / instances, 2) if instances else None,
    }
    return envelope("Compliance Snapshot", detail, account=account, region=region, at=at)


def _heartbeat(account: str, region: str, at: datetime, version: str = "0.1.0") -> dict[str, Any]:
    detail = {
        "schemaVersion": "1",
        "tagpatchVersion": version,
        "account": account,
        "region": region,
        "stack": "tagpatch",
        "groups": 1,
        "groupsByStatus": {"converged": 1},
    }
    return envelope("Member Heartbeat", detail, account=account, region=region, at=at)


def _metrics() -> dict[str, list[float]]:
    return {name: list(entry["Value"]) for name, entry in metrics.metric_set.items()}


A, B, C = "111111111111", "222222222222", "333333333333"


def test_check_emits_the_organizations_metrics_from_one_scan_and_sends_nothing(org: Org) -> None:
    org.send(
        _snapshot(A, "eu-west-1", "web", 10, 10, NOW - timedelta(hours=2)),
        _snapshot(A, "eu-west-1", "db", 10, 5, NOW - timedelta(hours=2)),
        _snapshot(B, "us-east-1", "web", 20, 20, NOW - timedelta(hours=30)),  # B is silent
    )
    org.log.reset()

    summary = org.run(CHECK)

    assert org.log.ops("dynamodb") == {"Scan": 1}
    assert org.log.ops("sns") == {}
    assert _metrics() == {
        "OrgCompliancePercent": [87.5],
        "SilentMembers": [1.0],
        "GroupsBelowThreshold": [1.0],
        "Members": [2.0],
        "Groups": [3.0],
    }
    assert summary["percent"] == 87.5
    assert org.digests() == []


def test_the_digest_lists_the_worst_groups_first_and_the_silent_members(org: Org) -> None:
    org.send(
        _snapshot(A, "eu-west-1", "web", 10, 9, NOW - timedelta(hours=3)),
        _snapshot(A, "eu-west-1", "db", 10, 5, NOW - timedelta(hours=3)),
        _snapshot(A, "eu-west-1", "app", 20, 10, NOW - timedelta(hours=3)),  # 50% too, more non-compliant
        _snapshot(C, "eu-west-1", "web", 4, 4, NOW - timedelta(days=3)),
        _heartbeat(B, "us-east-1", NOW - timedelta(hours=1), version="0.0.9"),
    )

    summary = org.run(DIGEST)

    assert summary["sent"] is True
    (message,) = org.digests()
    # 28 of 44 instances; web at 90% is not below 90%
    assert message["Subject"] == "TagPatch organization: 63.6% compliant, 2 groups below 90%, 1 silent"
    body = message["Message"]
    worst = [line.strip() for line in body.splitlines() if line.startswith("  111111111111")]
    assert worst == [
        "111111111111 eu-west-1 app: 50.0%, 10 of 20 non-compliant, since 2026-12-02T04:00:00Z",
        "111111111111 eu-west-1 db: 50.0%, 5 of 10 non-compliant, since 2026-12-02T04:00:00Z",
        "111111111111 eu-west-1 web: 90.0%, 1 of 10 non-compliant, since 2026-12-02T04:00:00Z",
    ]
    assert "Silent members (no event for more than 24 hours): 1" in body
    assert "  333333333333 eu-west-1: last event 2026-11-29T07:00:00Z" in body
    assert "  0.0.9: 1\n  0.1.0: 2" in body
    assert "this is the first digest" in body


def test_the_next_digest_says_what_changed(org: Org) -> None:
    org.send(
        _snapshot(A, "eu-west-1", "web", 10, 10, NOW - timedelta(hours=3)),
        _snapshot(A, "eu-west-1", "db", 10, 5, NOW - timedelta(hours=3)),
        _snapshot(B, "eu-west-1", "old", 10, 10, NOW - timedelta(hours=3)),
    )
    org.run(DIGEST)
    org.digests()
    # a day later: web breaks, db recovers, a new member and group arrive, B's group is gone
    later = NOW + timedelta(days=1)
    org.send(
        _snapshot(A, "eu-west-1", "web", 10, 8, later - timedelta(hours=1)),
        _snapshot(A, "eu-west-1", "db", 10, 10, later - timedelta(hours=1)),
        _snapshot(C, "us-east-1", "new", 10, 10, later - timedelta(hours=1)),
    )
    org.ddb.delete_item(TableName=STATE_TABLE, Key={"pk": {"S": f"{B}#eu-west-1"}, "sk": {"S": "group#old"}})

    org.run(DIGEST, at=later)

    (message,) = org.digests()
    body = message["Message"]
    assert "Changes since 2026-12-02T07:00:00Z: compliance +10.0 points" in body  # 83.3% -> 93.3%
    assert "Newly non-compliant groups (1):\n  111111111111 / eu-west-1 / web" in body
    assert "Recovered groups (1):\n  111111111111 / eu-west-1 / db" in body
    assert "New groups (1):\n  333333333333 / us-east-1 / new" in body
    assert "Gone groups (1):\n  222222222222 / eu-west-1 / old" in body
    assert "New members (1):\n  333333333333 / us-east-1" in body


def test_a_redelivered_schedule_event_sends_one_digest(org: Org) -> None:
    org.send(_snapshot(A, "eu-west-1", "web", 10, 10, NOW - timedelta(hours=1)))

    first = org.run({**DIGEST, "id": "event-1"})
    again = org.run({**DIGEST, "id": "event-1"}, at=NOW + timedelta(minutes=3))
    slot = org.run(DIGEST)
    slot_again = org.run(DIGEST, at=NOW + timedelta(minutes=20))  # a constant Input: the hour is the claim

    assert (first["sent"], again["sent"], slot["sent"], slot_again["sent"]) == (True, False, True, False)
    assert len(org.digests()) == 2
    assert _metrics()["Members"] == [1.0]  # the metrics still go out


class FailingTopic:
    def publish(self, subject: str, body: str) -> str:
        raise RuntimeError("SNS down")


def test_a_failed_publish_releases_the_claim_so_the_retry_sends(org: Org) -> None:
    org.send(_snapshot(A, "eu-west-1", "web", 10, 10, NOW - timedelta(hours=1)))
    config = load_hub_digest_config(
        {"TAGPATCH_HUB_STATE_TABLE": STATE_TABLE, "TAGPATCH_HUB_TOPIC_ARN": org.topic_arn}
    )

    with pytest.raises(RuntimeError, match="SNS down"):
        hub_digest.handle(
            DIGEST, config, HubStore(STATE_TABLE, dynamodb_client=org.ddb), FailingTopic(), lambda: NOW
        )

    assert org.run(DIGEST)["sent"] is True


def _group_item(n: int) -> dict[str, Any]:
    account = f"{100000000000 + n // 40:012d}"
    return {
        "pk": f"{account}#eu-west-1",
        "sk": f"group#a-rather-long-patch-group-name-{n:05d}",
        "compliance": {
            "order": "2026-12-02T06:00:00Z#x",
            "at": "2026-12-02T06:00:00Z",
            "snapshotId": "s",
            "instances": 10,
            "compliant": 10 - n % 2,
            "nonCompliant": n % 2,
            "percent": 100.0 - 10 * (n % 2),
        },
    }


def test_the_figures_of_8000_groups_make_chunks_far_below_the_item_limit() -> None:
    view = read_items([_group_item(n) for n in range(8_000)])
    figures = remembered(compute(view, NOW, threshold=90, silent_after_hours=24))
    text = json.dumps(figures, separators=(",", ":"), sort_keys=True, ensure_ascii=True)

    chunks = -(-len(text) // CHUNK_CHARS)

    assert chunks >= 2  # one item could not hold them
    assert CHUNK_CHARS + 200 < 400 * 1024  # a chunk item: the data, its keys and names


def test_the_remembered_figures_are_chunked_and_the_old_ones_deleted(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 400 groups seeded straight into the state table (as the store would leave them), chunks of
    # 5,000 characters: the 8,000 groups' case scaled down twenty times
    monkeypatch.setattr(hub_store, "CHUNK_CHARS", 5_000)
    items = [_group_item(n) for n in range(400)]
    table = boto3.resource("dynamodb").Table(STATE_TABLE)
    with table.batch_writer() as writer:
        for item in items:
            writer.put_item(Item=to_dynamo(item))

    org.run(DIGEST)
    org.log.reset()
    later = NOW + timedelta(days=1)
    second = org.run(DIGEST, at=later)

    hub_items = [
        i for i in boto3.client("dynamodb").scan(TableName=STATE_TABLE)["Items"] if i["pk"]["S"] == "#hub"
    ]
    chunks = [i for i in hub_items if i["sk"]["S"].startswith("digest#state#")]
    assert len(chunks) >= 2
    assert all(len(chunk["data"]["S"]) <= 5_000 for chunk in chunks)
    assert {i["sk"]["S"].split("#")[2] for i in chunks} == {
        "slot-2026-12-03T07"
    }  # the old generation deleted
    assert second["sent"] is True
    body = org.digests()[-1]["Message"]
    assert "compliance +0.0 points" in body
    assert "Newly non-compliant" not in body
    worst = [line for line in body.splitlines() if "non-compliant, since" in line]
    assert len(worst) == WORST_GROUPS


def test_an_unknown_action_is_refused(org: Org) -> None:
    with pytest.raises(hub_digest.InvalidEvent):
        org.run({"action": "explode"})


def test_the_lambda_entry_point_runs_the_sample_schedules(
    org: Org, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    monkeypatch.setenv("TAGPATCH_HUB_STATE_TABLE", STATE_TABLE)
    monkeypatch.setenv("TAGPATCH_HUB_TOPIC_ARN", org.topic_arn)
    hub_digest.default_config.cache_clear()
    org.send(_snapshot(A, "eu-west-1", "web", 10, 10, datetime.now(UTC)))
    try:
        check = hub_digest.handler(json.loads((EVENTS_DIR / "hub-check.json").read_text()), lambda_context)
        digest = hub_digest.handler(json.loads((EVENTS_DIR / "hub-digest.json").read_text()), lambda_context)
    finally:
        hub_digest.default_config.cache_clear()

    assert (check["percent"], check["members"], "sent" in check) == (100.0, 1, False)
    assert digest["sent"] is True
    assert len(org.digests()) == 1
