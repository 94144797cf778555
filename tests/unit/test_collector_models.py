"""Parsing what reaches the status collector: the AWS samples, events/, and every malformed kind."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from emulator.scenarios.collector import command_summary, invocation, sns_body, sqs_record
from tagpatch.models.notifications import (
    MAX_BODY_BYTES,
    MAX_SNS_MESSAGE_BYTES,
    AlertFlush,
    CommandNotification,
    InvocationNotification,
    MalformedMessage,
    parse_notification,
    parse_record,
)
from tagpatch.models.run_status import RunStatus
from tests.support.collector import SAMPLE_COMMAND_ID, build_sample_events

# Verbatim from the SSM User Guide, "Example Amazon SNS notifications for AWS Systems Manager".
SAMPLE_COMMAND_INSTANCE_IDS = """{
    "commandId": "a8c7e76f-15f1-4c33-9052-0123456789ab",
    "documentName": "AWS-RunPowerShellScript",
    "instanceIds": ["i-1234567890abcdef0", "i-9876543210abcdef0"],
    "requestedDateTime": "2019-04-25T17:57:09.17Z",
    "expiresAfter": "2019-04-25T19:07:09.17Z",
    "outputS3BucketName": "amzn-s3-demo-bucket",
    "outputS3KeyPrefix": "runcommand",
    "status": "InProgress",
    "eventTime": "2019-04-25T17:57:09.236Z"
}"""
SAMPLE_COMMAND_TAGS = """{
    "commandId": "9e92c686-ddc7-4827-b040-0123456789ab",
    "documentName": "AWS-RunPowerShellScript",
    "instanceIds": [],
    "requestedDateTime": "2019-04-25T18:01:03.888Z",
    "expiresAfter": "2019-04-25T19:11:03.888Z",
    "outputS3BucketName": "",
    "outputS3KeyPrefix": "",
    "status": "InProgress",
    "eventTime": "2019-04-25T18:01:05.825Z"
}"""
SAMPLE_INVOCATION = """{
    "commandId": "ceb96b84-16aa-4540-91e3-925a9a278b8c",
    "documentName": "AWS-RunPowerShellScript",
    "instanceId": "i-1234567890abcdef0",
    "requestedDateTime": "2019-04-25T18:06:05.032Z",
    "status": "InProgress",
    "eventTime": "2019-04-25T18:06:05.099Z"
}"""


def test_the_published_ssm_samples_parse() -> None:
    by_ids = parse_notification(json.loads(SAMPLE_COMMAND_INSTANCE_IDS))
    by_tag = parse_notification(json.loads(SAMPLE_COMMAND_TAGS))
    one = parse_notification(json.loads(SAMPLE_INVOCATION))

    assert isinstance(by_ids, CommandNotification)
    assert by_ids.instance_ids == ["i-1234567890abcdef0", "i-9876543210abcdef0"]
    assert (by_ids.output_s3_bucket_name, by_ids.output_s3_key_prefix) == (
        "amzn-s3-demo-bucket",
        "runcommand",
    )
    assert isinstance(by_tag, CommandNotification)
    assert (by_tag.instance_ids, by_tag.output_s3_key_prefix) == ([], "")
    assert isinstance(one, InvocationNotification)
    assert one.instance_id == "i-1234567890abcdef0"
    assert one.status is RunStatus.IN_PROGRESS
    assert one.event_time.isoformat() == "2019-04-25T18:06:05.099000+00:00"


def test_the_composed_sqs_sample_parses_through_both_envelopes() -> None:
    # composed-sqs-lambda-event-sns-nonraw-ssm-invocation.json: SNS JSON (2-space indent) in SQS
    body = json.dumps(
        {
            "Type": "Notification",
            "MessageId": "dc1e94d9-56c5-5e96-808d-cc7f68faa162",
            "TopicArn": "arn:aws:sns:us-east-2:111122223333:ExampleTopic1",
            "Subject": "TestSubject",
            "Message": json.dumps(json.loads(SAMPLE_INVOCATION), separators=(",", ":")),
            "Timestamp": "2021-02-16T21:41:19.978Z",
            "SignatureVersion": "1",
            "Signature": "FMG5tlZhJNHLHUXvZgtZzlk24FzVa7oX0T4P03neeXw8ZEXZx6z35j2FOTuNYShn2h0b==",
            "SigningCertURL": "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-010a507c1833636cd94bdb98bd93083a.pem",
            "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-2:111122223333:ExampleTopic1:e1039402-24e7-40a3-a0d4-797da162b297",
        },
        indent=2,
    )

    nonraw = parse_record(sqs_record(body))
    raw = parse_record(sqs_record(json.dumps(json.loads(SAMPLE_INVOCATION))))  # raw delivery tolerated

    assert nonraw == raw
    assert isinstance(nonraw, InvocationNotification)
    assert nonraw.command_id == "ceb96b84-16aa-4540-91e3-925a9a278b8c"


def test_unknown_fields_are_ignored_and_canceled_is_cancelled() -> None:
    message = {**invocation(SAMPLE_COMMAND_ID, "i-0123456789abcdef0", "Canceled"), "newField": {"x": 1}}

    parsed = parse_record(sqs_record(sns_body(message)))

    assert isinstance(parsed, InvocationNotification)
    assert parsed.status is RunStatus.CANCELLED


def test_the_flush_message_round_trips() -> None:
    flush = AlertFlush(command_id=SAMPLE_COMMAND_ID)

    assert parse_record(sqs_record(flush.body())) == flush
    assert json.loads(flush.body()) == {"tagpatch": "alert-flush", "commandId": SAMPLE_COMMAND_ID}


def test_the_run_result_check_is_a_flush_with_its_check_named() -> None:
    check = AlertFlush(command_id=SAMPLE_COMMAND_ID, check="run-result")

    assert parse_record(sqs_record(check.body())) == check
    assert json.loads(check.body()) == {
        "tagpatch": "alert-flush",
        "commandId": SAMPLE_COMMAND_ID,
        "check": "run-result",
    }


def _without(message: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != key}


INVOCATION = invocation(SAMPLE_COMMAND_ID, "i-0123456789abcdef0", "Failed")
SUMMARY = command_summary(SAMPLE_COMMAND_ID, "Failed")


@pytest.mark.parametrize(
    ("body", "reason", "detail"),
    [
        ("This is a test message.", "not JSON", "the SQS body is not JSON"),
        (sns_body("This is a test message."), "not JSON", "the SNS Message is not JSON"),
        (sns_body("[1, 2]"), "wrong shape", "JSON list"),
        (sns_body({**INVOCATION, "status": "Exploded"}), "unknown status", "'Exploded'"),
        (sns_body({**INVOCATION, "status": 3}), "wrong shape", "status must be a string"),
        (sns_body(_without(INVOCATION, "eventTime")), "wrong shape", "eventTime: Field required"),
        (sns_body(_without(INVOCATION, "instanceId")), "wrong shape", "exactly one of instanceId"),
        (sns_body({**INVOCATION, "instanceIds": []}), "wrong shape", "exactly one of instanceId"),
        (sns_body({**INVOCATION, "instanceId": "web-1"}), "wrong shape", "instanceId"),
        (sns_body({**INVOCATION, "commandId": "abc"}), "wrong shape", "commandId"),
        (sns_body({**INVOCATION, "eventTime": "2025-06-15T03:10:00"}), "wrong shape", "timezone"),
        # Past datetime.max (or before datetime.min) once in UTC: refused, not an OverflowError later
        (sns_body({**INVOCATION, "eventTime": "9999-12-31T23:59:59-05:00"}), "wrong shape", "eventTime"),
        (sns_body({**INVOCATION, "requestedDateTime": "0001-01-01T00:00:00+05:00"}), "wrong shape", "UTC"),
        (sns_body({**SUMMARY, "expiresAfter": "9999-12-31T23:59:59-00:01"}), "wrong shape", "expiresAfter"),
        (sns_body(_without(SUMMARY, "outputS3KeyPrefix")), "wrong shape", "outputS3KeyPrefix"),
        (json.dumps({"Type": "Notification", "Message": "{}"}), "wrong shape", "not an SNS notification"),
        (json.dumps({"tagpatch": "alert-flush"}), "wrong shape", "not a TagPatch alert flush"),
        (json.dumps({"tagpatch": "other", "commandId": SAMPLE_COMMAND_ID}), "wrong shape", "alert flush"),
        (json.dumps({"hello": "world"}), "wrong shape", "exactly one of instanceId"),
        (sns_body("x" * (MAX_SNS_MESSAGE_BYTES + 1)), "oversized", "SNS Message of 262145 bytes"),
        ("x" * (MAX_BODY_BYTES + 1), "oversized", "SQS body of"),
    ],
)
def test_malformed_messages_are_refused_with_their_reason(body: str, reason: str, detail: str) -> None:
    with pytest.raises(MalformedMessage) as refused:
        parse_record(sqs_record(body))

    assert refused.value.reason == reason
    assert detail in refused.value.detail


def test_a_record_that_is_not_an_sqs_record_is_refused() -> None:
    with pytest.raises(MalformedMessage, match="not an SQS record"):
        parse_record({"messageId": "1", "body": "{}"})


# --------------------------------------------------------------------------------------------
# events/collector-*.json
# --------------------------------------------------------------------------------------------
def test_sample_events_are_current(load_event: Callable[[str], Any]) -> None:
    # The files are generated by tests.support.collector.build_sample_events; regenerate with
    #   python -c "import json,tests.conftest;from tests.support.collector import build_sample_events as b;\
    #   [open(f'events/{n}','w').write(json.dumps(e,indent=2)+'\n') for n,e in b().items()]"
    for name, event in build_sample_events().items():
        assert load_event(name) == event, name


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("collector-invocation-failed.json", ["Failed"]),
        ("collector-command-success.json", ["command:Success"]),
        ("collector-mixed-batch.json", ["Success", "not JSON", "TimedOut"]),
    ],
)
def test_sample_events_are_what_lambda_receives_from_the_queue(
    load_event: Callable[[str], Any], name: str, kinds: list[str]
) -> None:
    records = load_event(name)["Records"]
    seen = []
    for record in records:
        # Then each is an SQS record whose MD5 matches its body, holding the SNS JSON (raw delivery off)
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert json.loads(record["body"])["Type"] == "Notification"
        assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:tagpatch-StatusQueue"
        try:
            message = parse_record(record)
        except MalformedMessage as error:
            seen.append(error.reason)
            continue
        if isinstance(message, CommandNotification):
            seen.append(f"command:{message.status.value}")
        else:
            assert isinstance(message, InvocationNotification)
            assert message.document_name == "AWS-RunPatchBaseline"
            seen.append(message.status.value)
    assert seen == kinds


# --------------------------------------------------------------------------------------------
# Every validation rule of the SSM notifications and the flush, one by one
# --------------------------------------------------------------------------------------------
def _refusal(message: Any) -> MalformedMessage:
    with pytest.raises(MalformedMessage) as refused:
        parse_notification(message)
    return refused.value


@pytest.mark.parametrize(
    ("message", "field"),
    [
        *((_without(INVOCATION, key), key) for key in INVOCATION if key != "instanceId"),
        *((_without(SUMMARY, key), key) for key in SUMMARY if key not in ("instanceIds", "status")),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_required_field_is_required(message: dict[str, Any], field: str) -> None:
    refusal = _refusal(message)

    assert (refusal.reason, refusal.detail.split(": ", 1)[1]) == ("wrong shape", f"{field}: Field required")


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("commandId", "a" * 36, True),
        ("commandId", "A-0" * 12, True),
        ("commandId", "a" * 35, False),
        ("commandId", "a" * 37, False),
        ("commandId", "a" * 35 + "_", False),
        ("commandId", "a" * 35 + "\n", False),
        ("commandId", 36, False),
        ("documentName", "", False),
        ("documentName", "d", True),
        ("documentName", "d" * 1024, True),
        ("documentName", "d" * 1025, False),
        ("documentName", None, False),
        ("instanceId", "i-01234567", True),
        ("instanceId", "i-0123456789abcdef0", True),
        ("instanceId", "mi-0123456789abcdef0", True),
        ("instanceId", "i-0123456789abcdef0\n", True),  # as pydantic's python-re engine: $ before \n
        ("instanceId", "i-0123456789", False),
        ("instanceId", "mi-01234567", False),
        ("instanceId", "xi-0123456789abcdef0", False),
        ("instanceId", "i-0123456789abcdef0x", False),
        ("instanceId", "web-1", False),
        ("instanceId", ["i-01234567"], False),
        ("eventTime", "2025-06-15T03:09:30.5Z", True),
        ("eventTime", "2019-04-25T17:57:09.17Z", True),
        ("eventTime", "2025-06-15T03:09:30.1234567+02:00", True),
        ("eventTime", "2025-06-15 03:09:30Z", True),
        ("eventTime", "2025-06-15T03:09:30", False),
        ("eventTime", "2025-06-15", False),
        ("eventTime", "yesterday", False),
        ("eventTime", None, False),
        ("requestedDateTime", "2025-06-15T03:09:30-05:00", True),
        ("requestedDateTime", "2025-06-15T03:09:30", False),
        ("status", "TimedOut", True),
        ("status", "Delivery Timed Out", True),
        ("status", None, False),
    ],
)
def test_each_invocation_field_is_checked(field: str, value: Any, accepted: bool) -> None:
    message = {**INVOCATION, field: value}

    if accepted:
        assert isinstance(parse_notification(message), InvocationNotification)
    else:
        refusal = _refusal(message)
        assert refusal.reason == "wrong shape"
        assert f"{field}: " in refusal.detail


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("instanceIds", [], True),
        ("instanceIds", ["i-01234567", "mi-0123456789abcdef0"], True),
        ("instanceIds", ["i-01234567", "web-1"], False),
        ("instanceIds", "i-01234567", False),
        ("instanceIds", None, False),
        ("outputS3BucketName", "", True),
        ("outputS3BucketName", "b" * 63, True),
        ("outputS3BucketName", "b" * 64, False),
        ("outputS3BucketName", None, False),
        ("outputS3KeyPrefix", "p" * 500, True),
        ("outputS3KeyPrefix", "p" * 501, False),
        ("expiresAfter", "2025-06-15T05:00:00.000Z", True),
        ("expiresAfter", "2025-06-15T05:00:00.000", False),
    ],
)
def test_each_command_summary_field_is_checked(field: str, value: Any, accepted: bool) -> None:
    message = {**SUMMARY, field: value}

    if accepted:
        assert isinstance(parse_notification(message), CommandNotification)
    else:
        refusal = _refusal(message)
        assert refusal.reason == "wrong shape"
        assert refusal.detail.split(": ", 1)[1].startswith(
            f"{field}.1: " if value == ["i-01234567", "web-1"] else f"{field}: "
        )


def test_datetimes_keep_their_zone_and_fraction() -> None:
    parsed = parse_notification(
        {
            **INVOCATION,
            "eventTime": "2025-06-15T03:09:30.5Z",
            "requestedDateTime": "2025-06-15T05:09:30+02:00",
        }
    )

    assert parsed.event_time.isoformat() == "2025-06-15T03:09:30.500000+00:00"
    assert parsed.requested_date_time.isoformat() == "2025-06-15T05:09:30+02:00"


def test_every_problem_of_a_notification_is_named() -> None:
    refusal = _refusal(
        {**INVOCATION, "commandId": "abc", "instanceId": "web-1", "status": 3, "eventTime": "x"}
    )

    assert refusal.detail.startswith("not an SSM InvocationNotification: ")
    for field in ("commandId: ", "status: status must be a string", "eventTime: ", "instanceId: "):
        assert field in refusal.detail


def test_the_parsed_models_are_frozen() -> None:
    parsed = parse_notification(INVOCATION)

    with pytest.raises(ValidationError, match="frozen"):
        parsed.status = RunStatus.SUCCESS  # type: ignore[misc]


@pytest.mark.parametrize(
    ("flush", "detail"),
    [
        ({"tagpatch": "alert-flush", "commandId": SAMPLE_COMMAND_ID, "extra": 1}, "extra: Extra inputs"),
        ({"tagpatch": "other", "commandId": SAMPLE_COMMAND_ID}, "tagpatch: Input should be 'alert-flush'"),
        ({"tagpatch": None, "commandId": SAMPLE_COMMAND_ID}, "tagpatch: "),
        ({"tagpatch": "alert-flush", "commandId": "abc"}, "commandId: "),
        ({"tagpatch": "alert-flush"}, "commandId: Field required"),
        ({"tagpatch": "alert-flush", "commandId": SAMPLE_COMMAND_ID, "check": "other"}, "check: "),
    ],
)
def test_a_flush_is_exactly_its_two_keys(flush: dict[str, Any], detail: str) -> None:
    with pytest.raises(MalformedMessage) as refused:
        parse_record(sqs_record(json.dumps(flush)))

    assert refused.value.reason == "wrong shape"
    assert detail in refused.value.detail


def test_a_flush_without_its_marker_key_is_a_flush_and_bad_ones_cannot_be_built() -> None:
    assert AlertFlush.parse({"commandId": SAMPLE_COMMAND_ID}) == AlertFlush(command_id=SAMPLE_COMMAND_ID)
    with pytest.raises(ValueError, match=r"command_?[iI]d"):
        AlertFlush(command_id="abc")
