"""API calls the status collector makes per notification, and the alerts a 1,000-failure command sends.

Run with ``PYTHONPATH=src:. python -m benchmarks.collector_calls``. Counts are exact and
deterministic (moto, a fixed clock); tests/integration/test_collector.py asserts the same numbers.
"""

from __future__ import annotations

import os

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TagPatch")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
from typing import Any

from moto import mock_aws

from emulator.scenarios.collector import (
    CollectorWorld,
    command_summary,
    instance_id,
    invocation,
    notifications_event,
)
from tagpatch.handlers.collector import handle

Row = tuple[str, int, float, int, int, int]


def measure_cases() -> list[Row]:
    rows: list[Row] = []
    with mock_aws():
        world = CollectorWorld()
        command = world.send_command("web")

        def run(label: str, event: dict[str, Any]) -> None:
            world.log.reset()
            response = handle(event, world.collector)
            assert response == {"batchItemFailures": []}, response
            count = len(event["Records"])
            rows.append(
                (
                    label,
                    count,
                    world.log.count("dynamodb") / count,
                    world.log.count("ssm"),
                    world.log.ops("sns")["Publish"],
                    world.log.ops("sqs")["SendMessage"],
                )
            )

        def one(*args: Any) -> dict[str, Any]:
            return notifications_event(invocation(command, *args))

        run(
            "Invocation, first of its command (cold)",
            one(instance_id(1), "InProgress", "2025-06-15T03:01:00Z"),
        )
        run("Invocation, new status", one(instance_id(1), "Success", "2025-06-15T03:02:00Z"))
        run("Invocation, duplicate", one(instance_id(1), "Success", "2025-06-15T03:02:00Z"))
        run("Invocation, late (superseded)", one(instance_id(1), "InProgress", "2025-06-15T03:01:30Z"))
        run("Invocation, new failure -> alert", one(instance_id(2), "Failed", "2025-06-15T03:03:00Z"))
        run("Invocation, failure in cooldown -> flush", one(instance_id(3), "Failed", "2025-06-15T03:04:00Z"))
        run("Invocation, failure in cooldown (held)", one(instance_id(4), "Failed", "2025-06-15T03:05:00Z"))
        run("Invocation, redelivered failure", one(instance_id(2), "Failed", "2025-06-15T03:03:00Z"))
        run(
            "Invocation x100, one batch",
            notifications_event(
                *(
                    invocation(command, instance_id(100 + n), "Success", "2025-06-15T03:06:00Z")
                    for n in range(100)
                )
            ),
        )
        world.clock.advance(900)
        run("alert flush -> digest", world.deliver_flushes())
        run(
            "Command, status change",
            notifications_event(command_summary(command, "InProgress", "2025-06-15T03:00:05Z")),
        )
        run("Command, failed -> final summary", notifications_event(command_summary(command, "Failed")))
        run("Command, duplicate failed", notifications_event(command_summary(command, "Failed")))
    return rows


def measure_thousand_failures(batch_size: int = 100) -> dict[str, Any]:
    """1,000 instances of one command fail; Lambda gets them in batches a few seconds apart, then
    the flush that the cooldown scheduled arrives."""
    with mock_aws():
        world = CollectorWorld()
        command = world.send_command("web")
        instances = [instance_id(n) for n in range(1000)]
        events = [
            notifications_event(
                *(invocation(command, i, "Failed") for i in instances[start : start + batch_size])
            )
            for start in range(0, len(instances), batch_size)
        ]
        totals = {"dynamodb": 0, "ssm": 0, "sns": 0, "sqs": 0}

        def run(event: dict[str, Any]) -> None:
            world.log.reset()
            assert handle(event, world.collector) == {"batchItemFailures": []}
            for service in totals:
                totals[service] += world.log.count(service)

        for event in events:
            run(event)
            world.clock.advance(5)
        world.clock.advance(world.config.alert_cooldown_seconds)
        run(world.deliver_flushes())
        alerts = world.alerts()
        return {
            "batches": len(events),
            **totals,
            "alerts": len(alerts),
            "subjects": [alert["Subject"] for alert in alerts],
            "recorded": len(world.table.invocations(command)),
            "bound": world.config.max_alerts_per_command + 1,
        }


def main() -> None:
    print(f"{'case':44} {'notifs':>6} {'DynamoDB/notif':>14} {'SSM':>4} {'SNS':>4} {'SQS':>4}")
    for label, count, ddb, ssm, sns, sqs in measure_cases():
        print(f"{label:44} {count:>6} {ddb:>14.2f} {ssm:>4} {sns:>4} {sqs:>4}")
    print("(SNS = alert messages published; SQS = delayed flush messages scheduled)")
    print()
    result = measure_thousand_failures()
    print(
        f"1,000 failing instances of one command, {result['batches']} batches of 100 + the flush: "
        f"{result['dynamodb']} DynamoDB calls ({result['dynamodb'] / 1000:.3f} per notification), "
        f"{result['ssm']} SSM, {result['sqs']} SQS, "
        f"{result['alerts']} alert messages (bound {result['bound']}), {result['recorded']} instance records"
    )
    for subject in result["subjects"]:
        print(f"  {subject}")


if __name__ == "__main__":
    main()
