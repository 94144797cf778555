"""The hub's store function on moto, in process: member events stored per second and DynamoDB calls
per event, against a floor of one bare conditional PutItem per event, measured side by side in one
run.

N member events (default 2,000: 50 accounts x 2 regions x 10 groups; snapshots, runs, reconciles
and heartbeats, 10% duplicates, shuffled) go through :func:`tagpatch.handlers.hub.handle` in SQS
batches of 10, as HubQueue delivers them. The floor writes one item per event with
``attribute_not_exists(pk)`` into a table of the same keys: the least any idempotent store could do.

    python -m benchmarks.hub_store [events]
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

STATE_TABLE = "hub-state"
HISTORY_TABLE = "hub-history"
FLOOR_TABLE = "hub-floor"
HUB_ENV = {
    "TAGPATCH_HUB_STATE_TABLE": STATE_TABLE,
    "TAGPATCH_HUB_HISTORY_TABLE": HISTORY_TABLE,
    "TAGPATCH_HUB_HISTORY_DAYS": "400",
    "TAGPATCH_HUB_RESOLVE_OUS": "false",
}
START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


def _create_table(ddb: Any, name: str) -> None:
    """An on-demand table keyed ``pk``/``sk`` (strings), as both hub tables and the floor's are."""
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def create_hub_tables(ddb: Any, state: str = STATE_TABLE, history: str = HISTORY_TABLE) -> None:
    """The two tables as :mod:`tagpatch.hub.records` lays them out (``pk``/``sk`` strings; the history
    expires through ``expiresAt``)."""
    for name in (state, history):
        _create_table(ddb, name)
    ddb.update_time_to_live(
        TableName=history, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )


def envelope(
    detail_type: str, detail: dict[str, Any], *, account: str, region: str, at: datetime, event_id: str = ""
) -> dict[str, Any]:
    """An EventBridge event as a rule delivers it to an SQS queue (the body)."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "tagpatch",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }


def member_detail(
    kind: str, account: str, region: str, group: str, n: int, rng: random.Random
) -> dict[str, Any]:
    base = {"schemaVersion": "1", "tagpatchVersion": "0.1.0", "account": account, "region": region}
    base["stack"] = "tagpatch"
    if kind == "Member Heartbeat":
        return {**base, "groups": 10, "groupsByStatus": {"converged": 9, "refused": 1}}
    base["group"] = group
    if kind == "Compliance Snapshot":
        instances = rng.randint(1, 50)
        compliant = rng.randint(0, instances)
        return {
            **base,
            "snapshotId": (START + timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "instances": instances,
            "compliantInstances": compliant,
            "nonCompliantInstances": instances - compliant,
            "compliancePercent": round(100 * compliant / instances, 2),
        }
    if kind == "Run Result":
        failed = rng.randint(0, 3)
        return {
            **base,
            "commandId": str(uuid.UUID(int=rng.getrandbits(128))),
            "status": "Failed" if failed else "Success",
            "instances": {"Success": 10, **({"Failed": failed} if failed else {})},
            "failedInstances": failed,
        }
    return {**base, "status": "converged", "actions": 2, "windows": []}


KINDS = ("Compliance Snapshot", "Compliance Snapshot", "Run Result", "Group Reconciled", "Member Heartbeat")


def workload(events: int = 2_000, seed: int = 14) -> list[dict[str, Any]]:
    """``events`` member events over 50 accounts x 2 regions x 10 groups, mixed kinds, 10% of them
    duplicates (the same event again), shuffled."""
    rng = random.Random(seed)
    accounts = [f"{100000000000 + i:012d}" for i in range(50)]
    regions = ("eu-west-1", "us-east-1")
    unique = events - events // 10
    out = []
    for n in range(unique):
        account, region = rng.choice(accounts), rng.choice(regions)
        group = f"group-{rng.randrange(10):02d}"
        kind = rng.choice(KINDS)
        at = START + timedelta(minutes=n)
        out.append(
            envelope(
                kind,
                member_detail(kind, account, region, group, n, rng),
                account=account,
                region=region,
                at=at,
                event_id=str(uuid.UUID(int=rng.getrandbits(128))),
            )
        )
    out += [rng.choice(out[:unique]) for _ in range(events - unique)]
    rng.shuffle(out)
    return out


def sqs_event(bodies: list[dict[str, Any]], first: int = 0) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{first + i}",
                "receiptHandle": f"r-{first + i}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:HubQueue",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


@contextmanager
def _moto() -> Iterator[None]:
    from emulator import sandbox

    sandbox.install()
    from moto import mock_aws

    with mock_aws():
        yield


def measure(events: int = 2_000, batch: int = 10) -> dict[str, Any]:
    """Both measurements on one moto; the figures."""
    from emulator.scenarios.aws import CallLog
    from tagpatch.adapters.hub_store import HubStore
    from tagpatch.handlers.hub import handle
    from tagpatch.hub.config import load_hub_store_config
    from tagpatch.hub.core import HubRecorder
    from tagpatch.observability import metrics

    bodies = workload(events)
    with _moto():
        log = CallLog()
        ddb = log.attach(boto3.client("dynamodb"))
        create_hub_tables(ddb)
        _create_table(ddb, FLOOR_TABLE)
        config = load_hub_store_config(HUB_ENV)
        recorder = HubRecorder(config, HubStore(STATE_TABLE, HISTORY_TABLE, ddb))
        # The two alternate batch by batch (same moto, same warm-up, same table sizes as they grow):
        # one SQS batch through the hub handler, then the floor's bare conditional PutItem of the
        # same events.
        failures = 0
        hub_seconds = floor_seconds = 0.0
        hub_calls: dict[str, int] = {}
        floor_calls: dict[str, int] = {}
        for start in range(0, len(bodies), batch):
            chunk = bodies[start : start + batch]
            log.reset()
            started = time.perf_counter()
            answer = handle(sqs_event(chunk, start), recorder)
            hub_seconds += time.perf_counter() - started
            metrics.clear_metrics()  # as each invocation flushes its own
            failures += len(answer["batchItemFailures"])
            for op, count in log.ops("dynamodb").items():
                hub_calls[op] = hub_calls.get(op, 0) + count
            log.reset()
            started = time.perf_counter()
            for body in chunk:
                with suppress(ddb.exceptions.ConditionalCheckFailedException):
                    ddb.put_item(
                        TableName=FLOOR_TABLE,
                        Item={"pk": {"S": f"{body['account']}#{body['region']}"}, "sk": {"S": body["id"]}},
                        ConditionExpression="attribute_not_exists(pk)",
                    )
            floor_seconds += time.perf_counter() - started
            for op, count in log.ops("dynamodb").items():
                floor_calls[op] = floor_calls.get(op, 0) + count
    hub_total, floor_total = sum(hub_calls.values()), sum(floor_calls.values())
    return {
        "events": len(bodies),
        "failures": failures,
        "hub": {
            "seconds": round(hub_seconds, 3),
            "events_per_second": round(len(bodies) / hub_seconds, 1),
            "calls_per_event": round(hub_total / len(bodies), 3),
            "calls": dict(sorted(hub_calls.items())),
        },
        "floor": {
            "seconds": round(floor_seconds, 3),
            "events_per_second": round(len(bodies) / floor_seconds, 1),
            "calls_per_event": round(floor_total / len(bodies), 3),
            "calls": dict(sorted(floor_calls.items())),
        },
    }


def render(figures: dict[str, Any]) -> str:
    lines = [
        f"hub store: {figures['events']} member events (moto, in process), batches of 10",
        f"{'':<28}{'events/s':>10}{'DynamoDB calls/event':>24}",
    ]
    for name, label in (("hub", "hub handler"), ("floor", "floor: 1 conditional PutItem")):
        row = figures[name]
        lines.append(f"{label:<28}{row['events_per_second']:>10.1f}{row['calls_per_event']:>24.3f}")
    lines.append(f"hub calls: {figures['hub']['calls']}; failed records: {figures['failures']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = sys.argv[1:] if argv is None else argv
    figures = measure(int(args[0]) if args else 2_000)
    print(render(figures))
    return figures


if __name__ == "__main__":
    main()
