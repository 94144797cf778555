"""What a function's cold start loads: each handler module and its dependency builder, imported in a
fresh interpreter as Lambda does, must not load the X-Ray SDK (unless AWS call tracing is switched
on) nor Powertools' parser package (~100 models no function uses).

Deterministic: these tests check which modules are loaded, not how long loading takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emulator.scenarios.collector import COLLECTOR_ENV
from emulator.scenarios.compliance import REPORTER_ENV
from emulator.scenarios.settings import RECONCILER_ENV
from tagpatch.observability import TRACE_AWS_CALLS_ENV, trace_handler

SRC = Path(__file__).resolve().parents[2] / "src"
EXPENSIVE = ("aws_xray_sdk", "aws_lambda_powertools.utilities.parser")
TOPIC = "arn:aws:sns:us-east-1:123456789012:tagpatch-AlertTopic"

# handler module -> (dependency builder, the function's environment)
HANDLERS: dict[str, tuple[str, dict[str, str]]] = {
    "reconciler": ("default_reconciler", RECONCILER_ENV),
    "collector": ("default_collector", COLLECTOR_ENV),
    "reporter": ("default_reporter", {**REPORTER_ENV, "ALERT_TOPIC_ARN": TOPIC}),
}

_PROBE = """
import json, sys
import tagpatch.handlers.{name} as module
module.{builder}()
wrappers, function = [], module.handler
while function is not None:
    wrappers.append(function.__code__.co_filename)
    function = getattr(function, "__wrapped__", None)
print(json.dumps({{
    "loaded": [m for m in {expensive!r} if m in sys.modules],
    "wrappers": wrappers,
    "pydantic": ["pydantic"] if "pydantic" in sys.modules else [],
}}))
"""


def _cold_start(name: str, **extra: str) -> dict[str, list[str]]:
    """Modules of ``EXPENSIVE`` loaded, and the source files of the handler's wrappers (outermost first)."""
    builder, variables = HANDLERS[name]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_", "PYTHON", "MOTO", "TAGPATCH_"))
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "tagpatch",
            "POWERTOOLS_METRICS_NAMESPACE": "TagPatch",
            "PYTHONPATH": str(SRC),
            "PYTHONDONTWRITEBYTECODE": "1",
            **variables,
            **extra,
        }
    )
    probe = textwrap.dedent(_PROBE).format(name=name, builder=builder, expensive=EXPENSIVE)
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _traced(wrappers: list[str]) -> bool:
    return any(Path(path).parts[-2:] == ("tracing", "tracer.py") for path in wrappers)


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_cold_start_loads_neither_the_xray_sdk_nor_the_powertools_parser(name: str) -> None:
    # Given a function deployed with the defaults (TraceAwsCalls false)
    # When a fresh interpreter imports its handler module and builds its dependencies
    cold = _cold_start(name)

    # Then neither expensive package is loaded and the handler is not wrapped by the Tracer
    assert cold["loaded"] == []
    assert not _traced(cold["wrappers"])
    assert cold["wrappers"][-1].endswith(f"handlers/{name}.py")  # the function itself, innermost


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_every_function_validates_with_pydantic_alone(name: str) -> None:
    # Given a fresh interpreter
    # When it imports the handler module and builds the function's dependencies
    cold = _cold_start(name)

    # Then its environment was validated by a pydantic model (one mechanism for every function)
    assert cold["pydantic"] == ["pydantic"]


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_tracing_aws_calls_wraps_the_handler_in_the_powertools_tracer(name: str) -> None:
    # Given a function deployed with TraceAwsCalls true
    # When a fresh interpreter imports its handler module
    cold = _cold_start(name, **{TRACE_AWS_CALLS_ENV: "true"})

    # Then the X-Ray SDK is loaded and the Tracer wraps the handler (still not the parser)
    assert cold["loaded"] == ["aws_xray_sdk"]
    assert _traced(cold["wrappers"])


@pytest.mark.parametrize("value", [None, "false", "", "True", "1", "yes"])
def test_only_the_exact_switch_value_turns_tracing_on(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    # Given any value but "true" (the template's AllowedValues are "true" and "false")
    if value is None:
        monkeypatch.delenv(TRACE_AWS_CALLS_ENV, raising=False)
    else:
        monkeypatch.setenv(TRACE_AWS_CALLS_ENV, value)

    def handler(event: dict[str, str], context: object) -> dict[str, str]:
        return event

    # Then the handler is returned as it is
    assert trace_handler(handler) is handler
