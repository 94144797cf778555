"""A moto-backed world for the compliance reporter: tables, alert topic, seeded patch states and,
with ``fanout=True``, the report queue and a driver that plays Lambda's poller for it."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from emulator.fake_ssm import make_instance_patch_state, seed_instance_patch_state
from emulator.scenarios.aws import CallLog
from tagpatch.adapters.clients import RETRY_CONFIG
from tagpatch.adapters.compliance_store import ComplianceStore
from tagpatch.adapters.digest_topic import DigestTopic
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.patch_states import PatchStateGateway
from tagpatch.adapters.report_queue import ReportQueue
from tagpatch.handlers.reporter import handle
from tagpatch.observability import metrics
from tagpatch.reporter.config import load_reporter_config
from tagpatch.reporter.core import ComplianceReporter

REPORTER_ENV: dict[str, str] = {
    "TAG_KEY": "PatchGroup",
    "GROUPS_TABLE_NAME": "tagpatch-groups",
    "COMPLIANCE_TABLE_NAME": "tagpatch-compliance",
    "ALERT_TOPIC_ARN": "",  # filled in once the topic exists
    "COMPLIANCE_HISTORY_DAYS": "400",
    "REPORT_QUEUE_URL": "",  # unset: a run for every group runs in the invocation
    "COMPLIANCE_DEADLINE_MINUTES": "180",
}
REPORT_QUEUE = "tagpatch-ReportQueue"
# The ComplianceTable key schema, as template.yaml declares it.
COMPLIANCE_KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
COMPLIANCE_ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]
DAY1 = datetime(2025, 6, 1, 6, 0, tzinfo=UTC)


def scheduled_event(moment: datetime) -> dict[str, Any]:
    """The sample Scheduled Event (events/reporter-scheduled.json shape) for ``moment``."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/tagpatch-ComplianceSnapshot"],
        "detail": {},
    }


def instance_id(group_index: int, index: int) -> str:
    return f"i-{group_index:05x}{index:012x}"


@dataclass(frozen=True)
class Delivery:
    """One report-queue message handed to the reporter as Lambda's poller would (one record)."""

    body: dict[str, Any]
    response: dict[str, Any]
    metrics: list[dict[str, Any]]  # the invocation's EMF documents (per group, then its own)

    @property
    def failed(self) -> bool:
        return bool(self.response.get("batchItemFailures"))

    def metric(self, name: str) -> float | None:
        """The sum of metric ``name`` over the invocation's documents (None: not emitted)."""
        values = [value for doc in self.metrics if name in doc for value in _as_list(doc[name])]
        return sum(values) if values else None


def report_record(body: str, receive_count: int = 1) -> dict[str, Any]:
    """One record of a Lambda SQS event from the report queue."""
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1748757600000",
            "SenderId": "AROAEXAMPLE:tagpatch-reporter",
            "ApproximateFirstReceiveTimestamp": "1748757600001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's checksum, not security
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:{DEFAULT_ACCOUNT_ID}:{REPORT_QUEUE}",
        "awsRegion": "us-east-1",
    }


#: SSM's quota of patch groups per patch baseline (emulator/fake_ssm.py enforces it).
GROUPS_PER_BASELINE = 25


class ReporterWorld:
    """An emulated account with the groups and compliance tables, the alert topic (an SQS queue
    subscribed to it so tests read the digests) and a reporter wired to them; with ``fanout``,
    the report queue too (the reporter then plans a run for every group and queues it)."""

    def __init__(self, *, clock: datetime = DAY1, fanout: bool = False, **env: str) -> None:
        self.log = CallLog()
        self.ssm = self.log.attach(boto3.client("ssm", config=RETRY_CONFIG))
        self.ddb = self.log.attach(boto3.client("dynamodb", config=RETRY_CONFIG))
        self.sns = self.log.attach(boto3.client("sns", config=RETRY_CONFIG))
        self.sqs = boto3.client("sqs")
        self.now = clock
        topic_arn = self.sns.create_topic(Name="tagpatch-AlertTopic")["TopicArn"]
        self.env = {**REPORTER_ENV, "ALERT_TOPIC_ARN": topic_arn, **env}
        self.report_sqs = self.log.attach(boto3.client("sqs", config=RETRY_CONFIG))
        if fanout:
            self.env["REPORT_QUEUE_URL"] = self.sqs.create_queue(QueueName=REPORT_QUEUE)["QueueUrl"]
        self.ddb.create_table(
            TableName=self.env["GROUPS_TABLE_NAME"],
            KeySchema=[{"AttributeName": "group", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "group", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb.create_table(
            TableName=self.env["COMPLIANCE_TABLE_NAME"],
            KeySchema=COMPLIANCE_KEY_SCHEMA,
            AttributeDefinitions=COMPLIANCE_ATTRIBUTES,
            BillingMode="PAY_PER_REQUEST",
        )
        self.queue_url = self.sqs.create_queue(QueueName="digests")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        self._baseline_ids: dict[str, str] = {}
        self._registered: dict[str, int] = {}
        self.store = ComplianceStore(self.env["COMPLIANCE_TABLE_NAME"], self.ddb, sleep=lambda _: None)
        self.reporter = self.make_reporter()
        self.log.reset()

    def make_reporter(self) -> ComplianceReporter:
        config = load_reporter_config(self.env)
        return ComplianceReporter(
            config,
            PatchStateGateway(self.ssm),
            self.store,
            GroupsRepository(config.groups_table_name, self.ddb),
            DigestTopic(config.alert_topic_arn, self.sns),
            queue=ReportQueue(config.report_queue_url, self.report_sqs) if config.report_queue_url else None,
            clock=lambda: self.now,
        )

    # --- seeding ------------------------------------------------------------------------------
    def manage(self, *groups: str) -> None:
        """Put ``groups`` in the groups table, as the reconciler does."""
        for group in groups:
            self.ddb.put_item(
                TableName=self.env["GROUPS_TABLE_NAME"],
                Item={"group": {"S": group}, "status": {"S": "converged"}},
            )

    def set_size(self, group: str, instances: int) -> None:
        """The group's instance count in the groups table, as the reconciler records it."""
        self.ddb.update_item(
            TableName=self.env["GROUPS_TABLE_NAME"],
            Key={"group": {"S": group}},
            UpdateExpression="SET instance_count = :n",
            ExpressionAttributeValues={":n": {"N": str(instances)}},
        )

    def baseline_id(self, operating_system: str = "AMAZON_LINUX_2") -> str:
        return self._baseline_ids[operating_system]

    def register(self, group: str, operating_system: str = "AMAZON_LINUX_2") -> None:
        """Register a custom patch baseline for ``group`` (so DescribePatchGroups lists it)."""
        baseline_id = self._baseline_ids.get(operating_system)
        registered = self._registered.get(operating_system, 0)
        if baseline_id is None or (registered and registered % GROUPS_PER_BASELINE == 0):
            # a new baseline every 25 groups: SSM's quota of patch groups per patch baseline
            baseline_id = self.ssm.create_patch_baseline(
                Name=f"TagPatch-{operating_system}-{registered // GROUPS_PER_BASELINE}",
                OperatingSystem=operating_system,
            )["BaselineId"]
            self._baseline_ids[operating_system] = baseline_id
        self.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group)
        self._registered[operating_system] = registered + 1

    def seed(
        self,
        group: str,
        count: int,
        *,
        group_index: int = 0,
        start: int = 0,
        end_time: datetime | None = None,
        **counts: Any,
    ) -> list[str]:
        """Seed ``count`` instance patch states in ``group`` (the fake's helper, model-validated)."""
        ids = [instance_id(group_index, start + i) for i in range(count)]
        for iid in ids:
            state = make_instance_patch_state(
                iid, group, end_time=end_time or self.now - timedelta(hours=1), **counts
            )
            seed_instance_patch_state(state)
        return ids

    def seed_state(self, iid: str, group: str, **counts: Any) -> None:
        end_time = counts.pop("end_time", None) or self.now - timedelta(hours=1)
        seed_instance_patch_state(make_instance_patch_state(iid, group, end_time=end_time, **counts))

    # --- reading ------------------------------------------------------------------------------
    def items(self, pk: str | None = None) -> list[dict[str, Any]]:
        pages = self.ddb.get_paginator("scan").paginate(TableName=self.env["COMPLIANCE_TABLE_NAME"])
        found = [_plain(item) for page in pages for item in page["Items"]]
        return sorted((i for i in found if pk is None or i["pk"] == pk), key=lambda i: (i["pk"], i["sk"]))

    def item(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.ddb.get_item(
            TableName=self.env["COMPLIANCE_TABLE_NAME"], Key={"pk": {"S": pk}, "sk": {"S": sk}}
        )
        return _plain(response["Item"]) if "Item" in response else None

    def digests(self) -> list[dict[str, str]]:
        """Every digest published so far (subject and body), oldest first."""
        found: list[dict[str, str]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append({"subject": envelope.get("Subject", ""), "body": envelope["Message"]})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # --- the report queue (fanout=True) -----------------------------------------------------------
    def queued(self) -> list[tuple[dict[str, Any], int]]:
        """(body, DelaySeconds) of every message on the report queue, oldest first."""
        found = []
        for message in self._queue()._messages:
            delay = (
                (message.delayed_until - (message.sent_timestamp or 0)) / 1000 if message.delayed_until else 0
            )
            found.append((json.loads(message.body), round(delay)))
        return found

    def _queue(self) -> Any:
        return sqs_backends[DEFAULT_ACCOUNT_ID][self.sqs.meta.region_name].queues[REPORT_QUEUE]

    def take(self, kind: str, *, last: bool = False) -> dict[str, Any]:
        """Take the first (or last) queued message of ``type`` kind off the queue (lost, for now)."""
        found = [message for message in self._queue()._messages if json.loads(message.body)["type"] == kind]
        message = found[-1 if last else 0]
        self._queue()._messages.remove(message)
        return dict(json.loads(message.body))

    def put_back(self, body: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.env["REPORT_QUEUE_URL"], MessageBody=json.dumps(body))

    def deliver(
        self, kinds: Iterable[str] = ("batch", "deadline"), limit: int | None = None
    ) -> list[Delivery]:
        """Hand every queued message (the first ``limit``) of the given ``type`` to the reporter, one
        per invocation (as the stack's batch size 1), delays or not; what it sends meanwhile waits
        for the next call. A message it reports as failed is put back, as SQS would redeliver it."""
        wanted = set(kinds)
        taken = [message for message in self._queue()._messages if json.loads(message.body)["type"] in wanted]
        taken = taken[:limit]
        for message in taken:
            self._queue()._messages.remove(message)
        deliveries = []
        for message in taken:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):  # EMF documents, flushed as the handler's decorator does
                response = handle({"Records": [report_record(message.body)]}, self.reporter)
                metrics.flush_metrics()
            documents = [json.loads(line) for line in out.getvalue().splitlines() if '"_aws"' in line]
            delivery = Delivery(json.loads(message.body), response, documents)
            if delivery.failed:
                self.sqs.send_message(QueueUrl=self.env["REPORT_QUEUE_URL"], MessageBody=message.body)
            deliveries.append(delivery)
        return deliveries

    def drain(self, kinds: Iterable[str] = ("batch",), rounds: int = 10) -> list[Delivery]:
        """:meth:`deliver` until no message of those kinds is left (at most ``rounds`` times)."""
        deliveries: list[Delivery] = []
        for _ in range(rounds):
            delivered = self.deliver(kinds)
            if not delivered:
                break
            deliveries += delivered
        return deliveries


def _as_list(value: Any) -> list[float]:
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}
