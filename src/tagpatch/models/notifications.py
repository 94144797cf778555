"""Typed models of what reaches the status collector, and the parser that refuses the rest.

An SQS record's body is one of:

* the SNS notification JSON (raw message delivery off, as the template subscribes the queue),
  whose ``Message`` is the SSM Run Command notification;
* the SSM notification itself (raw delivery on; tolerated so a subscription change loses nothing);
* an :class:`AlertFlush` the collector sent itself to summarise held failures.

The SSM notification is an Invocation (one instance: ``instanceId``) or a Command summary
(``instanceIds``, empty for tag targeting, and the output location). Required fields are
required, unknown fields are ignored. Anything else raises :class:`MalformedMessage` with a reason:
``not JSON``, ``wrong shape`` (including a time with no UTC equivalent, e.g.
``9999-12-31T23:59:59-05:00``), ``unknown status`` or ``oversized``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, Field, StringConstraints

from tagpatch.models.base import Invalid, Model, StrictModel
from tagpatch.models.envelopes import SnsNotificationModel, SqsRecordModel
from tagpatch.models.run_status import RunStatus, UnknownStatus, normalise_status

# SNS refuses to publish more than 256 KiB by default (the stack's topics keep the default), so a
# larger Message did not come from SSM through our topic. The SQS body adds the envelope and JSON
# escaping (at most doubling the Message).
MAX_SNS_MESSAGE_BYTES = 262_144
MAX_BODY_BYTES = 2 * MAX_SNS_MESSAGE_BYTES + 16_384

# Searched with ``re`` (so ``$`` also matches before a final newline: an instance id with one is
# accepted, a command id is then 37 characters and refused).
CommandId = Annotated[str, StringConstraints(min_length=36, max_length=36, pattern=r"^[0-9A-Za-z-]{36}$")]
InstanceId = Annotated[str, StringConstraints(pattern=r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)")]
DocumentName = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
BucketName = Annotated[str, StringConstraints(max_length=63)]
KeyPrefix = Annotated[str, StringConstraints(max_length=500)]


def run_status(value: Any) -> RunStatus:
    """The run status, normalised (``Canceled`` is ``Cancelled``); :class:`UnknownStatus` otherwise."""
    if not isinstance(value, str):
        raise ValueError("status must be a string")
    return normalise_status(value)


Status = Annotated[RunStatus, BeforeValidator(run_status)]


def in_utc_range(value: datetime) -> datetime:
    """``value`` unchanged, if it has a UTC equivalent: ``9999-12-31T23:59:59-05:00`` parses but is
    past ``datetime.max`` in UTC (and so could not be stored as a UTC stamp)."""
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{value.isoformat()} is outside the representable UTC range") from None
    return value


Time = Annotated[AwareDatetime, AfterValidator(in_utc_range)]


class _SsmNotification(Model):
    command_id: CommandId = Field(alias="commandId")
    document_name: DocumentName = Field(alias="documentName")
    requested_date_time: Time = Field(alias="requestedDateTime")
    status: Status
    event_time: Time = Field(alias="eventTime")


class InvocationNotification(_SsmNotification):
    """NotificationType Invocation: one managed node's status changed."""

    instance_id: InstanceId = Field(alias="instanceId")


class CommandNotification(_SsmNotification):
    """NotificationType Command: the command's overall status changed."""

    instance_ids: list[InstanceId] = Field(alias="instanceIds")
    expires_after: Time = Field(alias="expiresAfter")
    output_s3_bucket_name: BucketName = Field(alias="outputS3BucketName")
    output_s3_key_prefix: KeyPrefix = Field(alias="outputS3KeyPrefix")


class AlertFlush(StrictModel):
    """Sent by the collector to the status queue with a delay: "summarise this command's held
    failures now that its alert cooldown is over", or, with ``check: "run-result"``, "ask SSM
    again whether this command has ended, for its Run Result"."""

    model_config = ConfigDict(populate_by_name=True)

    tagpatch: Literal["alert-flush"] = "alert-flush"
    command_id: CommandId = Field(alias="commandId")
    check: Literal["run-result"] | None = None

    def body(self) -> str:
        body = {"tagpatch": self.tagpatch, "commandId": self.command_id}
        if self.check is not None:
            body["check"] = self.check
        return json.dumps(body, separators=(",", ":"))


Notification = InvocationNotification | CommandNotification
ParsedMessage = InvocationNotification | CommandNotification | AlertFlush


class MalformedMessage(ValueError):
    """A record the collector cannot use; it fails, and SQS moves it to the DLQ."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _problems(error: Invalid) -> str:
    return str(error)[:1000]


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise MalformedMessage("not JSON", f"{what} is not JSON ({error})") from error


def parse_notification(payload: Any) -> Notification:
    """The typed SSM notification in ``payload`` (the decoded SNS ``Message``)."""
    if not isinstance(payload, dict):
        raise MalformedMessage("wrong shape", f"the SSM notification is a JSON {type(payload).__name__}")
    status = payload.get("status")
    if isinstance(status, str):
        try:
            normalise_status(status)
        except UnknownStatus as error:
            raise MalformedMessage("unknown status", str(error)) from error
    has_one, has_many = "instanceId" in payload, "instanceIds" in payload
    if has_one and not has_many:
        return _shaped(InvocationNotification.parse, payload, "an SSM InvocationNotification")
    if has_many and not has_one:
        return _shaped(CommandNotification.parse, payload, "an SSM CommandNotification")
    raise MalformedMessage(
        "wrong shape",
        "an SSM notification has exactly one of instanceId (Invocation) or instanceIds (Command)",
    )


_Model = TypeVar("_Model")


def _shaped(parse: Callable[[Any], _Model], data: Any, what: str) -> _Model:
    """``parse(data)``, or a "wrong shape" refusal naming ``what`` it should be."""
    try:
        return parse(data)
    except Invalid as error:
        raise MalformedMessage("wrong shape", f"not {what}: {_problems(error)}") from error


def _within(text: str, limit: int, what: str) -> str:
    """``text``, or an "oversized" refusal when its UTF-8 size exceeds ``limit`` bytes."""
    size = len(text.encode("utf-8"))
    if size > limit:
        raise MalformedMessage("oversized", f"{what} of {size} bytes exceeds {limit}")
    return text


def parse_record(raw: Mapping[str, Any]) -> ParsedMessage:
    """The message in one SQS record of the status queue."""
    record = _shaped(SqsRecordModel.parse, raw, "an SQS record")
    body = _within(record.body if isinstance(record.body, str) else "", MAX_BODY_BYTES, "SQS body")
    data = _json(body, "the SQS body")
    if isinstance(data, dict) and data.get("Type") == "Notification":
        envelope = _shaped(SnsNotificationModel.parse, data, "an SNS notification")
        message = _within(envelope.Message, MAX_SNS_MESSAGE_BYTES, "SNS Message")
        return parse_notification(_json(message, "the SNS Message"))
    if isinstance(data, dict) and "tagpatch" in data:
        return _shaped(AlertFlush.parse, data, "a TagPatch alert flush")
    return parse_notification(data)
