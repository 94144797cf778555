"""The collector's sample events in events/, built from the scenario's message builders."""

from __future__ import annotations

from typing import Any

from emulator.scenarios.collector import command_summary, invocation, sns_body, sqs_record

SAMPLE_COMMAND_ID = "3f8d2c1e-6b7a-4e5d-9c0b-1a2b3c4d5e6f"
SAMPLE_INSTANCES = ("i-0123456789abcdef0", "i-0fedcba9876543210")


def build_sample_events() -> dict[str, dict[str, Any]]:
    """The sample events in events/, as Lambda receives them from StatusQueue (raw delivery off).

    Structure: ``composed-sqs-lambda-event-sns-nonraw-ssm-invocation.json`` (AWS samples). The
    malformed record's Message is the SNS guide's "This is a test message." (not JSON).
    """

    def record(number: int, message: dict[str, Any] | str) -> dict[str, Any]:
        return sqs_record(
            sns_body(message, message_id=f"5c0b8a6e-1d2f-5a3b-9c4d-00000000000{number}"),
            message_id=f"9d6a2c1b-7e3f-4a5b-8c6d-00000000000{number}",
        )

    first, second = SAMPLE_INSTANCES
    return {
        "collector-invocation-failed.json": {
            "Records": [record(1, invocation(SAMPLE_COMMAND_ID, first, "Failed", "2025-06-15T03:12:41.503Z"))]
        },
        "collector-command-success.json": {
            "Records": [
                record(
                    2,
                    command_summary(
                        SAMPLE_COMMAND_ID, "Success", "2025-06-15T03:20:07.331Z", instances=SAMPLE_INSTANCES
                    ),
                )
            ]
        },
        "collector-mixed-batch.json": {
            "Records": [
                record(3, invocation(SAMPLE_COMMAND_ID, first, "Success", "2025-06-15T03:12:41.503Z")),
                record(4, "This is a test message."),
                record(5, invocation(SAMPLE_COMMAND_ID, second, "TimedOut", "2025-06-15T04:00:00.000Z")),
            ]
        },
    }
