"""Our EventBridge, SQS record and SNS notification envelopes: the samples in events/, refusals with a
reason, and the same verdict as Powertools' parser models on every required field.

Powertools' models are imported here only, as the reference the handlers no longer import: ours
are small pydantic models of our own, and the parity tests compare their verdicts and values with
Powertools' models.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import models as powertools
from pydantic import (
    AnyUrl,
    BaseModel,
    HttpUrl,
    TypeAdapter,
    ValidationError,
)

from tagpatch.models.base import Invalid, Model
from tagpatch.models.envelopes import SnsNotificationModel, SqsRecordModel
from tagpatch.models.eventbridge import EventBridgeEvent, ScheduledEventBase


class EventBridgeModel(EventBridgeEvent):
    """Any of our EventBridge events, its ``detail`` any JSON object (the events narrow it)."""

    detail: dict[str, Any]


EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"

# Values every required field is tried with: absent, null, each JSON type, a non-URL/time string.
ABSENT = object()
PROBES: tuple[Any, ...] = (ABSENT, None, 0, 1749957000125, "x", "", [], {}, ["x"], {"k": "v"}, True)


def _events(prefix: str) -> dict[str, Any]:
    return {path.name: json.loads(path.read_text()) for path in sorted(EVENTS_DIR.glob(f"{prefix}*.json"))}


EVENTBRIDGE_SAMPLES = {
    name: event
    for name, event in {**_events("reconciler-"), **_events("reporter-")}.items()
    if "source" in event  # not the on-demand requests
}
SQS_RECORDS = {
    f"{name}#{index}": record
    for name, event in _events("collector-").items()
    for index, record in enumerate(event["Records"])
}
SNS_NOTIFICATIONS = {name: json.loads(record["body"]) for name, record in SQS_RECORDS.items()}


class Refused(Exception):
    """Either kind of refusal: the (location, "missing" or the message) of each problem."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def _validate(model: type[BaseModel], data: Any) -> Any:
    """``data`` as ``model`` (ours through its ``parse``, Powertools' directly), or :class:`Refused`."""
    try:
        if issubclass(model, Model):
            return model.parse(data)
        return model.model_validate(data)
    except ValidationError as error:
        raise Refused(
            [(e["loc"], "missing" if e["type"] == "missing" else e["msg"]) for e in error.errors()]
        ) from error
    except Invalid as error:
        raise Refused(
            [(loc, "missing" if msg == "Field required" else msg) for loc, msg in error.problems]
        ) from error


def _accepts(model: type[BaseModel], data: Any) -> Any:
    try:
        return _validate(model, copy.deepcopy(data))  # Powertools' SNS model edits its input
    except Refused:
        return None


def _required(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items() if field.is_required()]


def _with(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    target = changed
    for key in path[:-1]:
        target = target[key]
    if value is ABSENT:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return changed


def _assert_same_values(ours: BaseModel, theirs: BaseModel) -> None:
    for name in type(ours).model_fields:
        mine, reference = getattr(ours, name), getattr(theirs, name)
        if isinstance(mine, BaseModel):
            _assert_same_values(mine, reference)
        elif isinstance(mine, dict) and any(isinstance(value, BaseModel) for value in mine.values()):
            assert mine.keys() == reference.keys(), name
            for key, value in mine.items():
                _assert_same_values(value, reference[key])
        elif isinstance(reference, AnyUrl):  # ours keeps the URL as sent; pydantic normalises it
            assert TypeAdapter(HttpUrl).validate_python(mine) == reference, name
        elif isinstance(reference, BaseModel):  # a JSON object as the SQS body: accepted, not text
            assert isinstance(mine, dict), name
        else:
            assert mine == reference, name


def _variants(sample: dict[str, Any], paths: list[tuple[str, ...]]) -> Iterator[dict[str, Any]]:
    yield sample
    for path in paths:
        for value in PROBES:
            yield _with(sample, path, value)


# --------------------------------------------------------------------------------------------
# The samples in events/
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EVENTBRIDGE_SAMPLES))
def test_the_eventbridge_samples_are_accepted(name: str) -> None:
    # Given an EventBridge event from events/
    event = EVENTBRIDGE_SAMPLES[name]

    # When it is validated
    parsed = EventBridgeModel.model_validate(event)

    # Then every field reads as sent
    assert (parsed.source, parsed.detail_type, parsed.account) == (
        event["source"],
        event["detail-type"],
        event["account"],
    )
    assert parsed.time.isoformat().replace("+00:00", "Z") == event["time"]
    assert parsed.detail == event["detail"]


@pytest.mark.parametrize("name", sorted(SQS_RECORDS))
def test_the_sqs_records_and_their_sns_notifications_are_accepted(name: str) -> None:
    # Given a record of a collector event from events/ (SNS -> SQS, raw message delivery off)
    record = SQS_RECORDS[name]

    # When the record and the SNS notification in its body are validated
    parsed = SqsRecordModel.parse(record)
    assert isinstance(parsed.body, str)
    notification = SnsNotificationModel.parse(json.loads(parsed.body))

    # Then the SQS spelling of the URL keys is read too
    assert parsed.messageId == record["messageId"]
    assert parsed.attributes.ApproximateReceiveCount == record["attributes"]["ApproximateReceiveCount"]
    body = json.loads(record["body"])
    assert notification.Message == body["Message"]
    assert str(notification.UnsubscribeUrl) == body["UnsubscribeURL"]
    assert str(notification.SigningCertUrl) == body["SigningCertURL"]


# --------------------------------------------------------------------------------------------
# Refusals, with the field that is wrong
# --------------------------------------------------------------------------------------------
REFUSAL_SAMPLES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (EventBridgeModel, EVENTBRIDGE_SAMPLES["reconciler-scheduled.json"]),
    (SqsRecordModel, SQS_RECORDS["collector-invocation-failed.json#0"]),
    (SnsNotificationModel, SNS_NOTIFICATIONS["collector-invocation-failed.json#0"]),
]


@pytest.mark.parametrize(
    ("model", "sample", "field"),
    [
        pytest.param(model, sample, field, id=f"{model.__name__}.{field}")
        for model, sample in REFUSAL_SAMPLES
        for field in _required(model)
        if field != "UnsubscribeUrl"  # spelt UnsubscribeURL through SQS: the next tests
    ],
)
def test_a_missing_required_field_is_refused_naming_it(
    model: type[BaseModel], sample: dict[str, Any], field: str
) -> None:
    # Given a sample without one required field
    data = {key: value for key, value in sample.items() if key != field}

    # When it is validated
    with pytest.raises(Refused) as refused:
        _validate(model, data)

    # Then the refusal names the field
    assert refused.value.problems == [((field,), "missing")]


def test_an_sqs_attribute_that_is_missing_is_refused_naming_it() -> None:
    record = copy.deepcopy(SQS_RECORDS["collector-invocation-failed.json#0"])
    del record["attributes"]["SentTimestamp"]

    with pytest.raises(Invalid) as refused:
        SqsRecordModel.parse(record)

    assert refused.value.locations == [("attributes", "SentTimestamp")]
    assert str(refused.value) == "attributes.SentTimestamp: Field required"


def test_an_sns_notification_through_sqs_without_its_unsubscribe_url_is_refused() -> None:
    # Given the SQS spelling of the SNS keys, with UnsubscribeURL missing but the other spelling set
    notification = dict(SNS_NOTIFICATIONS["collector-invocation-failed.json#0"])
    notification["UnsubscribeUrl"] = notification.pop("UnsubscribeURL")

    # When it is validated
    with pytest.raises(Invalid) as refused:
        SnsNotificationModel.parse(notification)

    # Then the URL is missing: the SQS spelling is the only one read once it is used (as Powertools)
    assert refused.value.locations == [("UnsubscribeUrl",)]
    with pytest.raises(ValidationError):
        powertools.SnsNotificationModel.model_validate(copy.deepcopy(notification))


def test_reading_the_sqs_spelling_leaves_the_callers_notification_as_it_was() -> None:
    notification = SNS_NOTIFICATIONS["collector-invocation-failed.json#0"]
    before = copy.deepcopy(notification)

    SnsNotificationModel.parse(notification)

    assert notification == before


def test_the_scheduler_empty_detail_string_is_an_empty_detail_for_the_scheduler_only() -> None:
    event = EVENTBRIDGE_SAMPLES["reconciler-scheduled.json"]

    scheduler = ScheduledEventBase.parse({**event, "source": "aws.scheduler", "detail": "{}"})

    assert scheduler.detail == {}
    with pytest.raises(Invalid):
        ScheduledEventBase.parse({**event, "detail": "{}"})


# --------------------------------------------------------------------------------------------
# The same verdict as Powertools on every required field
# --------------------------------------------------------------------------------------------
def _assert_parity(ours: type[BaseModel], theirs: type[BaseModel], variants: Iterator[dict[str, Any]]) -> int:
    checked = 0
    for data in variants:
        mine, reference = _accepts(ours, data), _accepts(theirs, data)
        assert (mine is None) == (reference is None), data
        if mine is not None and reference is not None:
            _assert_same_values(mine, reference)
        checked += 1
    return checked


@pytest.mark.parametrize("name", sorted(EVENTBRIDGE_SAMPLES))
def test_eventbridge_envelope_agrees_with_powertools(name: str) -> None:
    sample = EVENTBRIDGE_SAMPLES[name]
    paths = [(field,) for field in _required(powertools.EventBridgeModel)]
    scheduler = {**sample, "source": "aws.scheduler"}

    checked = _assert_parity(EventBridgeModel, powertools.EventBridgeModel, _variants(sample, paths))
    checked += _assert_parity(
        EventBridgeModel, powertools.EventBridgeModel, _variants(scheduler, [*paths, ("detail",)])
    )
    checked += _assert_parity(
        EventBridgeModel,
        powertools.EventBridgeModel,
        iter([{**sample, "detail": "{}"}, {**scheduler, "detail": "{}"}, {**scheduler, "detail": "[]"}]),
    )

    assert checked > 2 * len(paths) * len(PROBES)


@pytest.mark.parametrize("name", sorted(SQS_RECORDS))
def test_sqs_record_envelope_agrees_with_powertools(name: str) -> None:
    sample = SQS_RECORDS[name]
    paths = [(field,) for field in _required(powertools.SqsRecordModel)]
    paths += [("attributes", field) for field in _required(powertools.SqsAttributesModel)]
    with_attribute = {**sample, "messageAttributes": {"a": {"dataType": "String", "stringValue": "patch"}}}

    checked = _assert_parity(SqsRecordModel, powertools.SqsRecordModel, _variants(sample, paths))
    checked += _assert_parity(
        SqsRecordModel,
        powertools.SqsRecordModel,
        _variants(with_attribute, [("messageAttributes", "a", "dataType")]),
    )

    assert checked > len(paths) * len(PROBES)


@pytest.mark.parametrize("name", sorted(SNS_NOTIFICATIONS))
def test_sns_notification_envelope_agrees_with_powertools(name: str) -> None:
    sample = SNS_NOTIFICATIONS[name]
    as_lambda = {key.replace("URL", "Url"): value for key, value in sample.items()}  # SNS -> Lambda
    paths = [(field,) for field in _required(powertools.SnsNotificationModel)]
    url_paths = [("UnsubscribeURL",), ("SigningCertURL",)]
    urls = ["https://sns.us-east-1.amazonaws.com/x", "http://example.com", "ftp://example.com", "not a url"]

    checked = _assert_parity(
        SnsNotificationModel, powertools.SnsNotificationModel, _variants(sample, paths + url_paths)
    )
    checked += _assert_parity(
        SnsNotificationModel,
        powertools.SnsNotificationModel,
        _variants(as_lambda, [*paths, ("SigningCertUrl",)]),
    )
    checked += _assert_parity(
        SnsNotificationModel,
        powertools.SnsNotificationModel,
        iter(_with(data, path, url) for data in (sample, as_lambda) for path in url_paths for url in urls),
    )

    assert checked > 2 * len(paths) * len(PROBES)
