"""Status collector world: moto clients, the table as the template makes it, SQS events.

Notification bodies are built the way SSM -> SNS -> SQS (raw delivery off) delivers them, from
the AWS samples in /work/shared/aws-samples (``composed-sqs-lambda-event-sns-nonraw-ssm-invocation.json``):
the SQS record's ``body`` is the SNS notification JSON, whose ``Message`` is the SSM JSON.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from moto.sqs.models import Message, sqs_backends
from moto.ssm.models import ssm_backends

from emulator.scenarios.aws import CallLog
from tagpatch import naming
from tagpatch.adapters.alerts import AlertPublisher, FlushQueue
from tagpatch.adapters.commands import CommandStatusTable
from tagpatch.adapters.group_names import GroupNames
from tagpatch.adapters.ssm_commands import SsmCommandLookup
from tagpatch.collector.config import load_collector_config
from tagpatch.collector.core import StatusCollector

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "tagpatch-test"
TABLE = "tagpatch-command-status"
BUCKET = "tagpatch-output-123456789012"
NOTIFICATION_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:tagpatch-NotificationTopic"
DOCUMENT = "AWS-RunPatchBaseline"
T0 = 1_750_000_000.0  # the test clock's start (2025-06-15T15:06:40Z)

COLLECTOR_ENV = {
    "STACK_NAME": STACK,
    "AWS_REGION": REGION,
    "COMMAND_STATUS_TABLE_NAME": TABLE,
    "GROUPS_TABLE_NAME": "tagpatch-groups",
    "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:tagpatch-AlertTopic",
    "STATUS_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/tagpatch-StatusQueue",
    "COMMAND_HISTORY_DAYS": "90",
    "ALERT_COOLDOWN_SECONDS": "900",
    "MAX_ALERTS_PER_COMMAND": "4",
}

# The CommandStatusTable definition, as template.yaml declares it (tests/unit/test_template.py
# checks that the two agree).
TABLE_KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
TABLE_ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
    {"AttributeName": "instance_id", "AttributeType": "S"},
    {"AttributeName": "group", "AttributeType": "S"},
    {"AttributeName": "event_time", "AttributeType": "S"},
]
TABLE_INDEXES = [
    {
        "IndexName": "ByInstance",
        "KeySchema": [
            {"AttributeName": "instance_id", "KeyType": "HASH"},
            {"AttributeName": "event_time", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
    {
        "IndexName": "ByGroup",
        "KeySchema": [
            {"AttributeName": "group", "KeyType": "HASH"},
            {"AttributeName": "event_time", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
]


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------
def instance_id(number: int) -> str:
    return f"i-{number:017x}"


def invocation(
    command_id: str,
    instance: str,
    status: str,
    event_time: str = "2025-06-15T03:10:00.000Z",
    *,
    requested: str = "2025-06-15T03:00:00.000Z",
) -> dict[str, Any]:
    """An SSM Invocation notification, fields as in ``ssm-sns-message-invocation.json``."""
    return {
        "commandId": command_id,
        "documentName": DOCUMENT,
        "instanceId": instance,
        "requestedDateTime": requested,
        "status": status,
        "eventTime": event_time,
    }


def command_summary(
    command_id: str,
    status: str,
    event_time: str = "2025-06-15T03:30:00.000Z",
    *,
    instances: Iterable[str] = (),
    prefix: str = "patch-output/web",
    bucket: str = BUCKET,
) -> dict[str, Any]:
    """An SSM Command notification, fields as in ``ssm-sns-message-command-*.json``."""
    return {
        "commandId": command_id,
        "documentName": DOCUMENT,
        "instanceIds": list(instances),
        "requestedDateTime": "2025-06-15T03:00:00.000Z",
        "expiresAfter": "2025-06-15T05:00:00.000Z",
        "outputS3BucketName": bucket,
        "outputS3KeyPrefix": prefix,
        "status": status,
        "eventTime": event_time,
    }


def sns_body(message: dict[str, Any] | str, *, message_id: str | None = None) -> str:
    """The SQS body SNS delivers with raw message delivery off (the sample's keys and order)."""
    envelope = {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": NOTIFICATION_TOPIC_ARN,
        "Message": message if isinstance(message, str) else json.dumps(message, separators=(",", ":")),
        "Timestamp": message.get("eventTime", "2025-06-15T03:10:00.120Z")
        if isinstance(message, dict)
        else "2025-06-15T03:10:00.120Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEnTrFPa3...",
        "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-010a507c1833636cd94bdb98bd93083a.pem",
        "UnsubscribeURL": (
            f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
            f"{NOTIFICATION_TOPIC_ARN}:e1039402-24e7-40a3-a0d4-797da162b297"
        ),
    }
    return json.dumps(envelope, indent=2)


def sqs_record(body: str, *, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    """One record of the Lambda SQS event (``sqs-lambda-event-generic-standard-queue.json``)."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1749957000120",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1749957000125",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:tagpatch-StatusQueue",
        "awsRegion": REGION,
    }


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [sqs_record(body) for body in bodies]}


def notifications_event(*messages: dict[str, Any]) -> dict[str, Any]:
    return sqs_event(*(sns_body(message) for message in messages))


# --------------------------------------------------------------------------------------------
# World
# --------------------------------------------------------------------------------------------
@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CollectorWorld:
    """The collector wired to moto: table, alert topic (captured by a queue), status queue, SSM."""

    def __init__(self, **env: str) -> None:
        self.env = {**COLLECTOR_ENV, **env}
        self.log = CallLog()
        self.ddb = self.log.attach(boto3.client("dynamodb"))
        self.sns = self.log.attach(boto3.client("sns"))
        self.sqs = self.log.attach(boto3.client("sqs"))
        self.ssm = self.log.attach(boto3.client("ssm"))
        create_command_table(self.ddb)
        self.ddb.create_table(  # GroupsTable as template.yaml declares it: the alerts' group names
            TableName=self.env["GROUPS_TABLE_NAME"],
            KeySchema=[{"AttributeName": "group", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "group", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        topic = self.sns.create_topic(Name="tagpatch-AlertTopic")["TopicArn"]
        self.status_queue_url = self.sqs.create_queue(QueueName="tagpatch-StatusQueue")["QueueUrl"]
        self.capture_url = self.sqs.create_queue(QueueName="alert-capture")["QueueUrl"]
        capture_arn = self.sqs.get_queue_attributes(QueueUrl=self.capture_url, AttributeNames=["QueueArn"])
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=capture_arn["Attributes"]["QueueArn"])
        self.env.update(ALERT_TOPIC_ARN=topic, STATUS_QUEUE_URL=self.status_queue_url)
        self.clock = Clock()
        self.config = load_collector_config(self.env)
        self.table = CommandStatusTable(self.config.table_name, self.ddb)
        self.collector = self.make_collector()
        self._alerts: list[dict[str, str]] = []
        self.log.reset()

    def make_collector(self) -> StatusCollector:
        """A fresh collector: a new Lambda container (empty per-container cache)."""
        return StatusCollector(
            self.config,
            self.table,
            AlertPublisher(self.config.alert_topic_arn, self.sns),
            FlushQueue(self.config.status_queue_url, self.sqs),
            SsmCommandLookup(self.ssm),
            names=GroupNames(self.config.groups_table_name, self.ddb, clock=self.clock),
            clock=self.clock,
        )

    def record_group(self, group: str) -> str:
        """The reconciler's GroupsTable item for ``group`` (its tag value); its slug."""
        slug = naming.group_slug(group)
        self.ddb.put_item(
            TableName=self.config.groups_table_name,
            Item={"group": {"S": group}, "slug": {"S": slug}, "status": {"S": "converged"}},
        )
        self.log.reset()
        return slug

    def send_command(self, group: str = "web", prefix: str = "patch-output") -> str:
        """A Run Command command as a TagPatch window task sends it; its id."""
        command = self.ssm.send_command(
            DocumentName=DOCUMENT,
            Targets=[{"Key": "tag:PatchGroup", "Values": [group]}],
            OutputS3BucketName=BUCKET,
            OutputS3KeyPrefix=f"{prefix}/{group}",
            Parameters={"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]},
        )["Command"]
        self.log.reset()
        return str(command["CommandId"])

    def set_progress(
        self, command_id: str, status: str, *, targets: int, completed: int | None = None
    ) -> None:
        """What ListCommands reports of the command from now on: its ``Status``, ``TargetCount`` and
        ``CompletedCount`` (moto's own is Success, counting the instances its targets matched)."""
        command = ssm_backends[ACCOUNT][REGION].get_command_by_id(command_id)
        command.status = status
        command.target_count = targets
        command.completed_count = targets if completed is None else completed

    def alerts(self) -> list[dict[str, str]]:
        """Every alert published so far: ``{"Subject": ..., "Message": ...}``."""
        while True:
            response = self.sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                body = json.loads(message["Body"])
                self._alerts.append({"Subject": body.get("Subject", ""), "Message": body["Message"]})
                self.sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=message["ReceiptHandle"])
        self.log.reset()
        return list(self._alerts)

    def pending_flushes(self) -> list[tuple[str, int]]:
        """(body, DelaySeconds) of every message the collector put on the status queue."""
        queue = sqs_backends[ACCOUNT][REGION].queues["tagpatch-StatusQueue"]
        return [(message.body, _delay_seconds(message)) for message in queue._messages]

    def deliver_flushes(self) -> dict[str, Any]:
        """The status queue's pending flush messages as a Lambda SQS event (and empty the queue)."""
        queue = sqs_backends[ACCOUNT][REGION].queues["tagpatch-StatusQueue"]
        bodies = [message.body for message in queue._messages]
        queue._messages.clear()  # PurgeQueue is limited to once a minute, even in moto
        self.log.reset()
        return sqs_event(*bodies)

    def item(self, command_id: str, sort_key: str) -> dict[str, Any] | None:
        response = self.ddb.get_item(
            TableName=TABLE,
            Key={"pk": {"S": f"CMD#{command_id}"}, "sk": {"S": sort_key}},
            ConsistentRead=True,
        )
        self.log.reset()
        if "Item" not in response:
            return None
        return {key: TypeDeserializer().deserialize(value) for key, value in response["Item"].items()}

    def instance_item(self, command_id: str, instance: str) -> dict[str, Any] | None:
        return self.item(command_id, f"INST#{instance}")

    def command_item(self, command_id: str) -> dict[str, Any] | None:
        return self.item(command_id, "COMMAND")


def _delay_seconds(message: Message) -> int:
    """The DelaySeconds a queued message was sent with (moto keeps when it was sent, in ms)."""
    assert message.sent_timestamp is not None, "a queued message has been sent"
    return round((message.delayed_until - message.sent_timestamp) / 1000)


def create_command_table(ddb: Any, name: str = TABLE) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=TABLE_KEY_SCHEMA,
        AttributeDefinitions=TABLE_ATTRIBUTES,
        GlobalSecondaryIndexes=TABLE_INDEXES,
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"AttributeName": "ttl", "Enabled": True})
