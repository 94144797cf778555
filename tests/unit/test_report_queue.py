"""The report queue adapter: SendMessageBatch of 10, entries SQS failed sent again, then refused."""

from __future__ import annotations

from typing import Any

import pytest

from tagpatch.adapters.report_queue import MAX_ATTEMPTS, ReportQueue, SendFailed

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/tagpatch-ReportQueue"


class FakeSqs:
    """Answers SendMessageBatch, failing the entries named in ``failing`` (one list per call)."""

    def __init__(self, failing: list[list[str]] | None = None) -> None:
        self.failing = list(failing or [])
        self.calls: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        assert QueueUrl == URL
        self.calls.append(Entries)
        failed = self.failing.pop(0) if self.failing else []
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] not in failed],
            "Failed": [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                for e in Entries
                if e["Id"] in failed
            ],
        }


def test_messages_go_in_batches_of_ten_with_their_delays() -> None:
    sqs = FakeSqs()

    ReportQueue(URL, sqs).send([(f"m{n}", n) for n in range(23)])

    assert [len(call) for call in sqs.calls] == [10, 10, 3]
    assert sqs.calls[2] == [
        {"Id": "0", "MessageBody": "m20", "DelaySeconds": 20},
        {"Id": "1", "MessageBody": "m21", "DelaySeconds": 21},
        {"Id": "2", "MessageBody": "m22", "DelaySeconds": 22},
    ]


def test_failed_entries_are_sent_again_alone() -> None:
    sqs = FakeSqs(failing=[["1", "2"]])

    ReportQueue(URL, sqs).send([("a", 0), ("b", 0), ("c", 900)])

    assert [[e["MessageBody"] for e in call] for call in sqs.calls] == [["a", "b", "c"], ["b", "c"]]


def test_entries_failing_every_attempt_are_refused_with_the_reason() -> None:
    sqs = FakeSqs(failing=[["0"]] * MAX_ATTEMPTS)

    with pytest.raises(SendFailed, match="1 messages not sent after 3 attempts: InternalError: try again"):
        ReportQueue(URL, sqs).send([("a", 0), ("b", 0)])
    assert len(sqs.calls) == MAX_ATTEMPTS
