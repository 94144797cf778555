"""A moto-backed world for the compliance reporter: tables, alert topic, seeded patch states."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from emulator.fake_ssm import make_instance_patch_state, seed_instance_patch_state
from emulator.scenarios.aws import CallLog
from tagpatch.adapters.clients import RETRY_CONFIG
from tagpatch.adapters.compliance_store import ComplianceStore
from tagpatch.adapters.digest_topic import DigestTopic
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.patch_states import PatchStateGateway
from tagpatch.reporter.config import load_reporter_config
from tagpatch.reporter.core import ComplianceReporter

REPORTER_ENV: dict[str, str] = {
    "TAG_KEY": "PatchGroup",
    "GROUPS_TABLE_NAME": "tagpatch-groups",
    "COMPLIANCE_TABLE_NAME": "tagpatch-compliance",
    "ALERT_TOPIC_ARN": "",  # filled in once the topic exists
    "COMPLIANCE_HISTORY_DAYS": "400",
}
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


class ReporterWorld:
    """An emulated account with the groups and compliance tables, the alert topic (an SQS queue
    subscribed to it so tests read the digests) and a reporter wired to them."""

    def __init__(self, *, clock: datetime = DAY1, **env: str) -> None:
        self.log = CallLog()
        self.ssm = self.log.attach(boto3.client("ssm", config=RETRY_CONFIG))
        self.ddb = self.log.attach(boto3.client("dynamodb", config=RETRY_CONFIG))
        self.sns = self.log.attach(boto3.client("sns", config=RETRY_CONFIG))
        self.sqs = boto3.client("sqs")
        self.now = clock
        topic_arn = self.sns.create_topic(Name="tagpatch-AlertTopic")["TopicArn"]
        self.env = {**REPORTER_ENV, "ALERT_TOPIC_ARN": topic_arn, **env}
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

    def register(self, group: str, operating_system: str = "AMAZON_LINUX_2") -> None:
        """Register a custom patch baseline for ``group`` (so DescribePatchGroups lists it)."""
        baseline_id = self._baseline_ids.get(operating_system)
        if baseline_id is None:
            baseline_id = self.ssm.create_patch_baseline(
                Name=f"TagPatch-{operating_system}", OperatingSystem=operating_system
            )["BaselineId"]
            self._baseline_ids[operating_system] = baseline_id
        self.ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group)

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


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}
