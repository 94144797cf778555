"""Publishing the compliance digest: one SNS message per run to the alert (or a report) topic."""

from __future__ import annotations

from typing import Any

from tagpatch.adapters.clients import client


class DigestTopic:
    def __init__(self, topic_arn: str, sns_client: Any | None = None) -> None:
        self._topic_arn = topic_arn
        self._sns = sns_client or client("sns")

    def publish(self, subject: str, body: str) -> str:
        """Publish one plain-text message; its MessageId."""
        response = self._sns.publish(TopicArn=self._topic_arn, Subject=subject, Message=body)
        return str(response["MessageId"])
