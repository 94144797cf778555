"""The envelopes of the status collector's messages, as pydantic models of our own: the SQS record
and the SNS notification.

Powertools' parser package builds about a hundred models when it is imported, for the envelopes
these functions receive. Ours accept what Powertools' parser models (``SqsRecordModel``,
``SnsNotificationModel``) accept for every field those models require, with the same types
(tests/unit/test_envelopes.py compares the verdicts). Optional fields that nothing here reads are
not declared, so they are ignored rather than checked; unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import HttpUrl, model_validator

from tagpatch.models.base import Model


# --- SQS ------------------------------------------------------------------------------------
class SqsAttributesModel(Model):
    ApproximateReceiveCount: str
    ApproximateFirstReceiveTimestamp: datetime
    SenderId: str
    SentTimestamp: datetime


class SqsMessageAttributeModel(Model):
    dataType: str


class SqsRecordModel(Model):
    """One record of an SQS event."""

    messageId: str
    receiptHandle: str
    # As Powertools (``str | BaseModel``): a JSON object is accepted, but it is not the text of a body.
    body: str | dict[str, Any]
    attributes: SqsAttributesModel
    messageAttributes: dict[str, SqsMessageAttributeModel]
    md5OfBody: str
    eventSource: Literal["aws:sqs"]
    eventSourceARN: str
    awsRegion: str


# --- SNS ------------------------------------------------------------------------------------
class SnsNotificationModel(Model):
    """An SNS notification as SNS delivers it (to Lambda, or to SQS without raw message delivery)."""

    TopicArn: str
    UnsubscribeUrl: HttpUrl
    Type: Literal["Notification"]
    Message: str
    MessageId: str
    Timestamp: datetime
    SigningCertUrl: HttpUrl | None = None

    @model_validator(mode="before")
    @classmethod
    def _url_spelling(cls, data: Any) -> Any:
        # Delivered through SQS the URL keys are spelt ...URL; both are then taken from those
        # spellings only (a missing UnsubscribeURL fails as a missing URL, as in Powertools).
        if isinstance(data, Mapping) and ("UnsubscribeURL" in data or "SigningCertURL" in data):
            return {
                **{k: v for k, v in data.items() if k not in ("UnsubscribeURL", "SigningCertURL")},
                "UnsubscribeUrl": data.get("UnsubscribeURL"),
                "SigningCertUrl": data.get("SigningCertURL"),
            }
        return data
