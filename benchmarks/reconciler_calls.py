"""API calls the reconciler makes per event: a new group, a converged group, a drifted group.

Run with ``make calls`` (or ``python -m benchmarks.reconciler_calls``). Counts are exact and
deterministic; the integration tests assert the same numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TagPatch")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
from moto import mock_aws

from emulator.scenarios.aws import World
from tagpatch.handlers.reconciler import handle

EVENTS = Path(__file__).resolve().parent.parent / "events"


def _event(name: str) -> dict[str, object]:
    return dict(json.loads((EVENTS / name).read_text()))


def measure() -> list[tuple[str, str, int, int, int]]:
    rows = []
    with mock_aws():
        world = World()
        world.launch("web")
        tag, schedule = _event("reconciler-tag-added.json"), _event("reconciler-scheduled.json")

        def run(label: str, trigger: str, event: dict[str, object]) -> None:
            world.log.reset()
            handle(event, world.reconciler)
            rows.append(
                (
                    label,
                    trigger,
                    world.log.count("ssm", writes=False),
                    world.log.count("ssm", writes=True),
                    world.log.count("dynamodb"),
                )
            )

        run("new group", "tag event", tag)
        run("converged group", "tag event", tag)
        run("converged group", "scheduled (full verify)", schedule)
        window_id = world.window_of("web")["WindowId"]
        world.ssm.update_maintenance_window(WindowId=window_id, Schedule="cron(0 5 ? * MON *)")
        run("drifted group (schedule edited)", "scheduled (full verify)", schedule)
        task = world.tasks(window_id)[0]
        world.ssm.deregister_task_from_maintenance_window(
            WindowId=window_id, WindowTaskId=task["WindowTaskId"]
        )
        run("half-made group (task deleted)", "scheduled (full verify)", schedule)
    return rows


def main() -> None:
    print(f"{'case':34} {'trigger':26} {'SSM reads':>9} {'SSM writes':>10} {'DynamoDB':>8}")
    for label, trigger, reads, writes, ddb in measure():
        print(f"{label:34} {trigger:26} {reads:>9} {writes:>10} {ddb:>8}")
    print(
        "(scheduled runs also make 1 EC2 DescribeInstances and 1 GetParametersByPath per run, not per group)"
    )


if __name__ == "__main__":
    main()
