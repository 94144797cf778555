"""Operator alerts (AlertTopic) and the delayed flush messages that bound them.

SNS limits, enforced here so a publish never fails on them: ``Subject`` is ASCII without line
breaks or control characters and under 100 characters; ``Message`` at most 256 KiB (UTF-8 bytes).
"""

from __future__ import annotations

from typing import Any

from tagpatch.adapters.clients import client
from tagpatch.collector.alerts import MAX_FLUSH_DELAY, SUBJECT_MAX, Alert
from tagpatch.models.notifications import AlertFlush

MAX_MESSAGE_BYTES = 262_144
_TRUNCATED = "\n[... message shortened to the SNS size limit ...]\n"


def safe_subject(subject: str) -> str:
    cleaned = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in subject)
    return " ".join(cleaned.split())[:SUBJECT_MAX] or "TagPatch alert"


def safe_message(message: str) -> str:
    encoded = message.encode("utf-8")
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return message
    room = MAX_MESSAGE_BYTES - len(_TRUNCATED.encode("utf-8"))
    return encoded[:room].decode("utf-8", errors="ignore") + _TRUNCATED


class AlertPublisher:
    def __init__(self, topic_arn: str, sns_client: Any | None = None) -> None:
        self._topic = topic_arn
        self._sns = sns_client or client("sns")

    def publish(self, alert: Alert) -> None:
        self._sns.publish(
            TopicArn=self._topic, Subject=safe_subject(alert.subject), Message=safe_message(alert.message)
        )


class FlushQueue:
    """Schedules an :class:`AlertFlush` on the status queue (SQS delay, at most 15 minutes)."""

    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self._queue = queue_url
        self._sqs = sqs_client or client("sqs")

    def schedule(self, command_id: str, *, delay_seconds: int, run_result: bool = False) -> None:
        flush = AlertFlush(command_id=command_id, check="run-result" if run_result else None)
        self._sqs.send_message(
            QueueUrl=self._queue,
            MessageBody=flush.body(),
            DelaySeconds=max(0, min(MAX_FLUSH_DELAY, delay_seconds)),
        )
