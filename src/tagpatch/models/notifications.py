"""Typed models of what reaches the status collector, and the parser that refuses the rest.

An SQS record's body is one of:

* the SNS notification JSON (raw message delivery off, as the template subscribes the queue),
  whose ``Message`` is the SSM Run Command notification;
* the SSM notification itself (raw delivery on; tolerated so a subscription change loses nothing);
* an :class:`AlertFlush` the collector sent itself to summarise held failures.

The SSM notification is an Invocation (one instance: ``instanceId``) or a Command summary
(``instanceIds``, empty for tag targeting, and the output location). Required fields are
required, unknown fields are ignored. Anything else raises :class:`MalformedMessage` with a reason:
``not JSON``, ``wrong shape``, ``unknown status`` or ``oversized``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from tagpatch.models.envelopes import (
    Fields,
    Invalid,
    SnsNotificationModel,
    SqsRecordModel,
    aware_timestamp,
    bounded_text,
    literal,
    text_list,
)
from tagpatch.models.run_status import RunStatus, UnknownStatus, normalise_status

# SNS refuses to publish more than 256 KiB by default (the stack's topics keep the default), so a
# larger Message did not come from SSM through our topic. The SQS body adds the envelope and JSON
# escaping (at most doubling the Message).
MAX_SNS_MESSAGE_BYTES = 262_144
MAX_BODY_BYTES = 2 * MAX_SNS_MESSAGE_BYTES + 16_384

# Searched with ``re`` (so, as pydantic's python-re engine did, ``$`` also matches before a final
# newline: an instance id with one is accepted, a command id is then 37 characters and refused).
COMMAND_ID = bounded_text(36, 36, r"^[0-9A-Za-z-]{36}$")
INSTANCE_ID = bounded_text(pattern=r"(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)")
DOCUMENT_NAME = bounded_text(1, 1024)
BUCKET_NAME = bounded_text(max_length=63)
KEY_PREFIX = bounded_text(max_length=500)


def run_status(value: Any) -> RunStatus:
    """The run status, normalised (``Canceled`` is ``Cancelled``); :class:`UnknownStatus` otherwise."""
    if not isinstance(value, str):
        raise ValueError("status must be a string")
    return normalise_status(value)


@dataclass(frozen=True, kw_only=True)
class _SsmNotification:
    command_id: str
    document_name: str
    requested_date_time: datetime
    status: RunStatus
    event_time: datetime

    @staticmethod
    def _common(fields: Fields) -> dict[str, Any]:
        return {
            "command_id": fields.get("commandId", COMMAND_ID),
            "document_name": fields.get("documentName", DOCUMENT_NAME),
            "requested_date_time": fields.get("requestedDateTime", aware_timestamp),
            "status": fields.get("status", run_status),
            "event_time": fields.get("eventTime", aware_timestamp),
        }


@dataclass(frozen=True, kw_only=True)
class InvocationNotification(_SsmNotification):
    """NotificationType Invocation: one managed node's status changed."""

    instance_id: str

    @classmethod
    def parse(cls, data: Any) -> InvocationNotification:
        """``data`` (camelCase keys; unknown keys ignored) as an Invocation, or :class:`Invalid`."""
        fields = Fields(data)
        notification = cls(**cls._common(fields), instance_id=fields.get("instanceId", INSTANCE_ID))
        fields.done()
        return notification


@dataclass(frozen=True, kw_only=True)
class CommandNotification(_SsmNotification):
    """NotificationType Command: the command's overall status changed."""

    instance_ids: list[str]
    expires_after: datetime
    output_s3_bucket_name: str
    output_s3_key_prefix: str

    @classmethod
    def parse(cls, data: Any) -> CommandNotification:
        """``data`` (camelCase keys; unknown keys ignored) as a Command summary, or :class:`Invalid`."""
        fields = Fields(data)
        notification = cls(
            **cls._common(fields),
            instance_ids=fields.get("instanceIds", text_list(INSTANCE_ID)),
            expires_after=fields.get("expiresAfter", aware_timestamp),
            output_s3_bucket_name=fields.get("outputS3BucketName", BUCKET_NAME),
            output_s3_key_prefix=fields.get("outputS3KeyPrefix", KEY_PREFIX),
        )
        fields.done()
        return notification


@dataclass(frozen=True, kw_only=True)
class AlertFlush:
    """Sent by the collector to the status queue with a delay: "summarise this command's held
    failures now that its alert cooldown is over"."""

    tagpatch: Literal["alert-flush"] = field(default="alert-flush")
    command_id: str

    def __post_init__(self) -> None:
        AlertFlush._checked(self._json())  # a flush is built only if it would be accepted

    def _json(self) -> dict[str, str]:
        return {"tagpatch": self.tagpatch, "commandId": self.command_id}

    @staticmethod
    def _checked(data: Any) -> str:
        """The command id of the flush in ``data`` (unknown keys refused), or :class:`Invalid`."""
        fields = Fields(data)
        fields.forbid_extra({"tagpatch", "commandId"})
        if "tagpatch" in fields.data:  # optional, and then exactly "alert-flush"
            fields.get("tagpatch", literal("alert-flush"))
        identity = fields.get("commandId", COMMAND_ID)
        fields.done()
        return identity

    @classmethod
    def parse(cls, data: Any) -> AlertFlush:
        """``data`` as a flush, or :class:`Invalid`."""
        return cls(command_id=cls._checked(data))

    def body(self) -> str:
        return json.dumps(self._json(), separators=(",", ":"))


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
