"""``python -m emulator.operator``: the ``tagpatch`` CLI against the demo stack on the local emulator.

Deploys ``template.yaml`` into the emulator, drives the demo's flows (tags, reconcile, one window
run per group, patch states) plus two compliance snapshots a week apart, then runs each CLI
command the way an operator would (``--endpoint-url``, the admin user's keys in the environment)
and prints the command lines and their output: the README's "Operator CLI" section shows it.
The html report goes to ``build/tagpatch-report.html`` in the repository (ignored by git).
"""

from __future__ import annotations

import io
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

from emulator import demo, strict_validation
from emulator.deploy import deploy
from emulator.fake_ssm import make_instance_patch_state
from emulator.flows import Flows
from emulator.runtime import LambdaRuntime
from emulator.server import Emulator
from tagpatch.cli.app import main as tagpatch

#: Patch states a week before the demo's: more instances missing patches, so the trend rises.
EARLIER_STATES: Final[dict[str, dict[str, Any]]] = {
    "web-1": {"missing": 3, "security": 1},
    "db-1": {"missing": 1},
    "db-2": {"missing": 6, "failed": 1, "critical": 2},
    "batch-1": {"missing": 2},
    "batch-2": {"missing": 1},
}
_SESSION_TOKENS: Final = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")  # the admin's keys are long-term
DRIFTED_SCHEDULE: Final = "cron(0 9 ? * MON *)"
REPORT_FILE: Final = Path(__file__).resolve().parent.parent / "build" / "tagpatch-report.html"
#: (arguments, expected exit code): what the README shows.
COMMANDS: Final = (
    (["groups"], 0),
    (["runs", "--since", "1d"], 0),
    (["report"], 0),
    (["report", "--format", "csv"], 0),
    (["report", "--format", "html", "--output", "{report}"], 0),
    (["drift"], 0),  # not a command: someone edits web's window schedule in the console
    (["reconcile", "--dry-run"], 0),
    (["reconcile", "--group", "web"], 0),
    (["groups", "--group", "nope"], 4),
)


@dataclass
class OperatorStack:
    emulator: Emulator
    flows: Flows
    result: demo.DemoResult

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    def environment(self) -> dict[str, str]:
        """The standard AWS settings an operator's shell would carry for this emulator."""
        admin = self.emulator.admin
        return {
            "AWS_ACCESS_KEY_ID": admin.access_key_id,
            "AWS_SECRET_ACCESS_KEY": admin.secret_access_key,
            "AWS_DEFAULT_REGION": self.emulator.region,
            "AWS_REGION": self.emulator.region,
        }


def _seed(flows: Flows, result: demo.DemoResult, states: dict[str, dict[str, Any]]) -> None:
    flows.seed_patch_states(
        [
            make_instance_patch_state(instance_id, group, **states.get(result.fleet[instance_id], {}))
            for group, ids in result.groups.items()
            for instance_id in ids
        ]
    )


@contextmanager
def operator_stack(now: datetime | None = None) -> Iterator[OperatorStack]:
    """The demo stack with a week of compliance history, on a running emulator."""
    moment = now or datetime.now(UTC)
    printer = demo.Printer(io.StringIO())
    with Emulator() as emulator:
        fleet, groups = demo._launch_fleet(emulator)
        deployment = deploy(emulator, parameters={"AlertEmail": demo.ALERT_EMAIL})
        result = demo.DemoResult(deployment, fleet, groups)
        runtime = LambdaRuntime(emulator, deployment)
        flows = Flows(emulator, deployment, runtime)
        demo._reconcile(printer, flows, deployment, groups)
        demo._window_runs(printer, flows, result)
        _seed(flows, result, EARLIER_STATES)
        flows.fire_schedule("ComplianceReporterFunction", at=moment - timedelta(days=7))
        flows.poll("ComplianceReporterFunction")  # the run's batches, through ReportQueue
        _seed(flows, result, demo.PATCH_STATES)
        flows.fire_schedule("ComplianceReporterFunction", at=moment)
        flows.poll("ComplianceReporterFunction")
        result.failed_invocations = [inv for inv in runtime.invocations if not inv.ok]
        yield OperatorStack(emulator, flows, result)


def run_cli(stack: OperatorStack, argv: Sequence[str]) -> tuple[int, str, str]:
    """``tagpatch --endpoint-url <emulator> <argv>`` with the admin's keys: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    saved = {name: os.environ.get(name) for name in (*stack.environment(), *_SESSION_TOKENS)}
    for name in _SESSION_TOKENS:
        os.environ.pop(name, None)
    os.environ.update(stack.environment())
    try:
        code = tagpatch(["--endpoint-url", stack.endpoint_url, *argv], out=out, err=err)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return code, out.getvalue(), err.getvalue()


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is under it (``build/...`` from ``make``)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def run(out: TextIO = sys.stdout, report: Path = REPORT_FILE) -> int:
    strict_validation.install()
    report.parent.mkdir(parents=True, exist_ok=True)
    unexpected = 0
    with operator_stack() as stack:
        for template, expected in COMMANDS:
            if template == ["drift"]:
                window_id = stack.flows.group_record("web")["windows"]["install"]["window_id"]
                stack.emulator.client("ssm").update_maintenance_window(
                    WindowId=window_id, Schedule=DRIFTED_SCHEDULE
                )
                print(f"# web's window schedule edited by hand to {DRIFTED_SCHEDULE} (drift)\n", file=out)
                continue
            argv = [arg.replace("{report}", str(_shown(report))) for arg in template]
            code, stdout, stderr = run_cli(stack, argv)
            unexpected += code != expected
            print(f"$ tagpatch {shlex.join(argv)}", file=out)
            for line in stderr.splitlines():
                print(f"(stderr) {line}", file=out)
            print(stdout, end="", file=out)
            print(f"(exit {code})\n", file=out)
    print(f"# the html report is {_shown(report)}: open it in a browser", file=out)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(run())
