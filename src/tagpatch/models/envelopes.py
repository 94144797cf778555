"""The envelopes every event arrives in, as pydantic models: EventBridge, the SQS record, the SNS
notification; and the one refusal every model raises.

Each model is small and our own: Powertools' parser package builds about a hundred models when it
is imported, for the three envelopes these functions receive. They accept what Powertools' parser
models (``EventBridgeModel``, ``SqsRecordModel``, ``SnsNotificationModel``) accept for every field
those models require, with the same types (tests/unit/test_envelopes.py compares the verdicts).
Optional fields that nothing here reads are not declared, so they are ignored rather than checked;
unknown fields are ignored.

A refusal is an :class:`Invalid` listing every problem with its location, in pydantic's words
(``eventTime: Field required``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]


class Invalid(ValueError):
    """Data that does not have the expected shape: every problem, each with where it is."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{'.'.join(str(part) for part in loc) or '(root)'}: {msg}" for loc, msg in problems)
        )

    @classmethod
    def of(cls, error: ValidationError) -> Invalid:
        return cls([(tuple(problem["loc"]), message(problem)) for problem in error.errors(include_url=False)])

    @property
    def locations(self) -> list[Loc]:
        return [loc for loc, _ in self.problems]


def message(problem: ErrorDetails) -> str:
    """pydantic's message for one problem, without the "Value error, " it puts before our own."""
    error = problem.get("ctx", {}).get("error")
    return str(error) if problem["type"] == "value_error" and error is not None else problem["msg"]


class Model(BaseModel):
    """Frozen, unknown fields ignored; patterns are searched with Python's ``re`` (as the SSM and
    IAM documentation write them); :meth:`parse` refuses with :class:`Invalid`."""

    model_config = ConfigDict(frozen=True, regex_engine="python-re")

    @classmethod
    def parse(cls, data: Any) -> Self:
        """``data`` as this model, or :class:`Invalid`."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise Invalid.of(error) from None


class StrictModel(Model):
    """A request we define ourselves: an unknown key is a mistake, refused."""

    model_config = ConfigDict(extra="forbid")


# --- EventBridge ----------------------------------------------------------------------------
class EventBridgeEvent(Model):
    """The fields every EventBridge event has, as Powertools' ``EventBridgeModel`` reads them;
    subclasses narrow ``source`` and ``detail_type`` and add ``detail``. ``detail-type`` may also
    be spelt ``detail_type`` (the alias wins when both are there)."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")

    @field_validator("detail", mode="before", check_fields=False)
    @classmethod
    def _scheduler_detail(cls, value: Any, info: ValidationInfo) -> Any:
        # EventBridge Scheduler sends the detail as the string "{}" when there is no payload (as
        # Powertools' model, for every subclass's ``detail``).
        return {} if value == "{}" and info.data.get("source") == "aws.scheduler" else value


class ScheduledEventBase(EventBridgeEvent):
    """A "Scheduled Event" of an EventBridge rule or of EventBridge Scheduler."""

    source: Literal["aws.events", "aws.scheduler"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    detail: dict[str, Any]


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
