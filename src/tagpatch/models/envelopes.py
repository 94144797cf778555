"""The envelopes of the status collector's messages: the SQS record and the SNS notification.

They accept and refuse what Powertools' parser models (``SqsRecordModel`` with its attributes,
``SnsNotificationModel``; ``aws_lambda_powertools.utilities.parser.models``) do for every field
those models require, with the same types (tests/unit/test_envelopes.py compares the verdicts).
They are plain frozen dataclasses checked by explicit functions, not pydantic models: importing
pydantic and building the first model is ~50 ms of the collector's cold start, and the collector
needs none of it. Optional fields that nothing here reads are not declared, so they are ignored
rather than checked; unknown fields are ignored, as in Powertools.

The checks here (:class:`Fields` and the ``check`` functions) are shared with
:mod:`tagpatch.models.notifications`; a refusal is an :class:`Invalid` listing every problem with
its location, as pydantic would (``eventTime: Field required``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

T = TypeVar("T")
Loc = tuple[str | int, ...]


class Invalid(ValueError):
    """Data that does not have the expected shape: every problem, each with where it is."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{'.'.join(str(part) for part in loc) or '(root)'}: {msg}" for loc, msg in problems)
        )

    @property
    def locations(self) -> list[Loc]:
        return [loc for loc, _ in self.problems]


class Fields:
    """Reads the fields of one JSON object, collecting every problem before :meth:`done` refuses."""

    def __init__(self, data: Any, loc: Loc = ()) -> None:
        if not isinstance(data, Mapping):
            raise Invalid([(loc, "Input should be a valid dictionary or object")])
        self.data: Mapping[str, Any] = data
        self.loc = loc
        self.problems: list[tuple[Loc, str]] = []

    def get(self, key: str, check: Callable[[Any], T]) -> T:
        """``check(data[key])``; a problem is recorded (and the value is not to be used) if it fails."""
        if key not in self.data:
            self.problems.append(((*self.loc, key), "Field required"))
            return cast(T, None)
        return self.value(key, self.data[key], check)

    def optional(self, key: str, check: Callable[[Any], T]) -> T | None:
        """As :meth:`get`, but an absent field (or null) is None."""
        value = self.data.get(key)
        return None if value is None else self.value(key, value, check)

    def value(self, key: str | int, value: Any, check: Callable[[Any], T]) -> T:
        try:
            return check(value)
        except Invalid as error:
            self.problems += [((*self.loc, key, *loc), msg) for loc, msg in error.problems]
        except (ValueError, TypeError) as error:
            self.problems.append(((*self.loc, key), str(error)))
        return cast(T, None)

    def forbid_extra(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.problems.append(((*self.loc, key), "Extra inputs are not permitted"))

    def done(self) -> None:
        if self.problems:
            raise Invalid(self.problems)


# --- checks: each returns the value as its type, or raises ValueError saying what is wrong -----
def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    return value


def bounded_text(
    min_length: int = 0, max_length: int | None = None, pattern: str | None = None, *, noun: str = "String"
) -> Callable[[Any], str]:
    """A string check with pydantic's ``min_length``/``max_length``/``pattern`` (searched, as ``re``)."""
    compiled = re.compile(pattern) if pattern is not None else None

    subject = f"{noun} should" if noun else "should"

    def check(value: Any) -> str:
        string = text(value)
        if len(string) < min_length:
            raise ValueError(f"{subject} have at least {min_length} characters")
        if max_length is not None and len(string) > max_length:
            raise ValueError(f"{subject} have at most {max_length} characters")
        if compiled is not None and compiled.search(string) is None:
            raise ValueError(f"{subject} match pattern '{pattern}'")
        return string

    return check


def literal(expected: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value != expected or not isinstance(value, str):
            raise ValueError(f"Input should be '{expected}'")
        return value

    return check


def text_list(item: Callable[[Any], str]) -> Callable[[Any], list[str]]:
    def check(value: Any) -> list[str]:
        if not isinstance(value, list | tuple):
            raise ValueError("Input should be a valid list")
        items = Fields({})
        checked = [items.value(index, element, item) for index, element in enumerate(value)]
        items.done()
        return checked

    return check


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_WATERSHED = 20_000_000_000  # as pydantic: a larger number of seconds is milliseconds
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_ISO_8601 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt ](?P<h>[0-9]{2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<frac>[0-9]+))?)?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):?(?P<om>[0-9]{2}))?)?"
)


def _from_epoch(number: float) -> datetime:
    if not math.isfinite(number):
        raise ValueError("Input should be a valid datetime")
    seconds = number / 1000 if abs(number) > _MS_WATERSHED else number
    try:
        return _EPOCH + timedelta(microseconds=round(seconds * 1_000_000))
    except OverflowError:
        raise ValueError("Input should be a valid datetime, dates after 9999 are not supported") from None


def timestamp(value: Any) -> datetime:
    """A datetime as pydantic's lax mode reads one from JSON: seconds or milliseconds since the epoch
    (a number, or a string of one; UTC), or ISO 8601 ``YYYY-MM-DD[Thh:mm[:ss[.f]][Z|±hh[:]mm]]``."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value)
    if not isinstance(value, str):
        raise ValueError("Input should be a valid datetime")
    if _NUMBER.fullmatch(value):
        return _from_epoch(float(value))
    match = _ISO_8601.fullmatch(value)
    if match is None:
        raise ValueError("Input should be a valid datetime or date, invalid character or format")
    parts = match.groupdict()
    tzinfo: timezone | None = None
    if parts["z"]:
        tzinfo = UTC
    elif parts["sign"]:
        offset = timedelta(hours=int(parts["oh"]), minutes=int(parts["om"]))
        if offset >= timedelta(days=1):
            raise ValueError("Input should be a valid datetime, timezone offset out of range")
        tzinfo = timezone(-offset if parts["sign"] == "-" else offset)
    try:
        day = datetime.strptime(parts["date"], "%Y-%m-%d")  # its zone is set below
        return day.replace(
            hour=int(parts["h"] or 0),
            minute=int(parts["m"] or 0),
            second=int(parts["s"] or 0),
            microsecond=int((parts["frac"] or "0")[:6].ljust(6, "0")),
            tzinfo=tzinfo,
        )
    except ValueError:
        raise ValueError("Input should be a valid datetime or date, a field is out of range") from None


def aware_timestamp(value: Any) -> datetime:
    """:func:`timestamp`, refused without a time zone (pydantic's ``AwareDatetime``)."""
    moment = timestamp(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("Input should have timezone info")
    return moment


def http_url(value: Any) -> str:
    """An absolute http(s) URL with a host (pydantic's ``HttpUrl``), kept as sent."""
    if not isinstance(value, str):
        raise ValueError("URL input should be a string or URL")
    if not value or len(value) > 2083 or any(char.isspace() or ord(char) < 32 for char in value):
        raise ValueError("Input should be a valid URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise ValueError("Input should be a valid URL") from None
    if not parts.scheme or not value[len(parts.scheme) :].startswith("://"):
        raise ValueError("Input should be a valid URL, relative URL without a base")
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("URL scheme should be 'http' or 'https'")
    if not parts.hostname:
        raise ValueError("Input should be a valid URL, empty host")
    return value


def one_of(*expected: str) -> Callable[[Any], str]:
    """A string that is one of ``expected`` (pydantic's ``Literal``), with pydantic's message."""
    quoted = [f"'{value}'" for value in expected]
    message = "Input should be " + (
        f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
    )

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in expected:
            raise ValueError(message)
        return value

    return check


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("Input should be a valid dictionary or object")
    return dict(value)


def _scheduler_detail(value: Any) -> dict[str, Any]:
    # EventBridge Scheduler sends the detail as the string "{}" when there is no payload.
    return {} if value == "{}" else json_object(value)


# --- the envelopes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventBridgeEvent:
    """The fields every EventBridge event has, as the reconciler's former pydantic ``EventBridgeModel``
    (Powertools' model, with ``populate_by_name``) read them; subclasses narrow ``source`` and
    ``detail_type`` and add ``detail``. Unknown fields (and ``replay-name``) are ignored."""

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str

    @staticmethod
    def read(fields: Fields, source: Callable[[Any], str], detail_type: str) -> dict[str, Any]:
        """The common fields of ``fields`` in pydantic's order (the caller reads ``detail`` next);
        ``detail-type`` may also be spelt ``detail_type`` (the alias wins when both are there)."""
        type_key = (
            "detail_type"
            if "detail-type" not in fields.data and "detail_type" in fields.data
            else "detail-type"
        )
        return {
            "version": fields.get("version", text),
            "id": fields.get("id", text),
            "source": fields.get("source", source),
            "account": fields.get("account", text),
            "time": fields.get("time", timestamp),
            "region": fields.get("region", text),
            "resources": fields.get("resources", text_list(text)),
            "detail_type": fields.get(type_key, literal(detail_type)),
        }

    @staticmethod
    def object_detail(source: str | None) -> Callable[[Any], dict[str, Any]]:
        """The check of a ``detail`` that is any JSON object: from EventBridge Scheduler (a valid
        ``source``), the string "{}" is also an empty detail."""
        return _scheduler_detail if source == "aws.scheduler" else json_object


@dataclass(frozen=True)
class SqsAttributesModel:
    ApproximateReceiveCount: str
    ApproximateFirstReceiveTimestamp: datetime
    SenderId: str
    SentTimestamp: datetime

    @classmethod
    def parse(cls, data: Any) -> SqsAttributesModel:
        fields = Fields(data)
        attributes = cls(
            ApproximateReceiveCount=fields.get("ApproximateReceiveCount", text),
            ApproximateFirstReceiveTimestamp=fields.get("ApproximateFirstReceiveTimestamp", timestamp),
            SenderId=fields.get("SenderId", text),
            SentTimestamp=fields.get("SentTimestamp", timestamp),
        )
        fields.done()
        return attributes


@dataclass(frozen=True)
class SqsMessageAttributeModel:
    dataType: str

    @classmethod
    def parse(cls, data: Any) -> SqsMessageAttributeModel:
        fields = Fields(data)
        attribute = cls(dataType=fields.get("dataType", text))
        fields.done()
        return attribute


def _message_attributes(value: Any) -> dict[str, SqsMessageAttributeModel]:
    items = Fields(value)
    parsed = {key: items.value(key, item, SqsMessageAttributeModel.parse) for key, item in items.data.items()}
    items.done()
    return parsed


def _body(value: Any) -> str | dict[str, Any]:
    # As Powertools (``str | BaseModel``): a JSON object is accepted, but it is not the text of a body.
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return dict(value)
    raise ValueError("Input should be a valid string, or a valid dictionary or object")


@dataclass(frozen=True)
class SqsRecordModel:
    """One record of an SQS event."""

    messageId: str
    receiptHandle: str
    body: str | dict[str, Any]
    attributes: SqsAttributesModel
    messageAttributes: dict[str, SqsMessageAttributeModel]
    md5OfBody: str
    eventSource: Literal["aws:sqs"]
    eventSourceARN: str
    awsRegion: str

    @classmethod
    def parse(cls, data: Any) -> SqsRecordModel:
        """``data`` as an SQS record, or :class:`Invalid`."""
        fields = Fields(data)
        record = cls(
            messageId=fields.get("messageId", text),
            receiptHandle=fields.get("receiptHandle", text),
            body=fields.get("body", _body),
            attributes=fields.get("attributes", SqsAttributesModel.parse),
            messageAttributes=fields.get("messageAttributes", _message_attributes),
            md5OfBody=fields.get("md5OfBody", text),
            eventSource=cast(Literal["aws:sqs"], fields.get("eventSource", literal("aws:sqs"))),
            eventSourceARN=fields.get("eventSourceARN", text),
            awsRegion=fields.get("awsRegion", text),
        )
        fields.done()
        return record


@dataclass(frozen=True)
class SnsNotificationModel:
    """An SNS notification as SNS delivers it (to Lambda, or to SQS without raw message delivery)."""

    TopicArn: str
    UnsubscribeUrl: str
    Type: Literal["Notification"]
    Message: str
    MessageId: str
    Timestamp: datetime
    SigningCertUrl: str | None = None

    @classmethod
    def parse(cls, data: Any) -> SnsNotificationModel:
        """``data`` as an SNS notification, or :class:`Invalid`."""
        if isinstance(data, Mapping) and ("UnsubscribeURL" in data or "SigningCertURL" in data):
            # Delivered through SQS the URL keys are spelt ...URL; both are then taken from those
            # spellings only (a missing UnsubscribeURL fails as a missing URL, as in Powertools).
            data = {
                **{k: v for k, v in data.items() if k not in ("UnsubscribeURL", "SigningCertURL")},
                "UnsubscribeUrl": data.get("UnsubscribeURL"),
                "SigningCertUrl": data.get("SigningCertURL"),
            }
        fields = Fields(data)
        notification = cls(
            TopicArn=fields.get("TopicArn", text),
            UnsubscribeUrl=fields.get("UnsubscribeUrl", http_url),
            Type=cast(Literal["Notification"], fields.get("Type", literal("Notification"))),
            Message=fields.get("Message", text),
            MessageId=fields.get("MessageId", text),
            Timestamp=fields.get("Timestamp", timestamp),
            SigningCertUrl=fields.optional("SigningCertUrl", http_url),
        )
        fields.done()
        return notification
