"""The envelopes of the status collector's messages: the SQS record and the SNS notification.

They accept and refuse what Powertools' parser models (``SqsRecordModel`` with its attributes,
``SnsNotificationModel``; ``aws_lambda_powertools.utilities.parser.models``) do for every field
those models require, with the same types. Importing Powertools' parser package builds ~100 models
that no function uses (~50 ms of cold start), hence these few. Optional fields that nothing here
reads are not declared, so they are ignored rather than checked; unknown fields are ignored, as in
Powertools. The EventBridge envelope is in :mod:`tagpatch.models.eventbridge`, apart, so that each
function builds only the envelopes it receives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, HttpUrl, model_validator


class SqsAttributesModel(BaseModel):
    ApproximateReceiveCount: str
    ApproximateFirstReceiveTimestamp: datetime
    SenderId: str
    SentTimestamp: datetime


class SqsMessageAttributeModel(BaseModel):
    dataType: str


class SqsRecordModel(BaseModel):
    """One record of an SQS event."""

    messageId: str
    receiptHandle: str
    body: str | BaseModel  # as Powertools: a JSON object becomes an empty model (not text)
    attributes: SqsAttributesModel
    messageAttributes: dict[str, SqsMessageAttributeModel]
    md5OfBody: str
    eventSource: Literal["aws:sqs"]
    eventSourceARN: str
    awsRegion: str


class SnsNotificationModel(BaseModel):
    """An SNS notification as SNS delivers it (to Lambda, or to SQS without raw message delivery)."""

    TopicArn: str
    UnsubscribeUrl: HttpUrl
    Type: Literal["Notification"]
    Message: str
    MessageId: str
    SigningCertUrl: HttpUrl | None = None
    Timestamp: datetime

    @model_validator(mode="before")
    @classmethod
    def _sqs_key_names(cls, values: Any) -> Any:
        # Delivered through SQS the URL keys are spelt ...URL; both are then taken from those
        # spellings only (a missing UnsubscribeURL fails as a missing URL, not as a KeyError).
        if isinstance(values, dict) and ("UnsubscribeURL" in values or "SigningCertURL" in values):
            values = dict(values)
            values["UnsubscribeUrl"] = values.pop("UnsubscribeURL", None)
            values["SigningCertUrl"] = values.pop("SigningCertURL", None)
        return values
