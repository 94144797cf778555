"""Suite-wide test setup.

At import time (before any test module creates a client or imports TagPatch),
:func:`emulator.sandbox.install`: fake AWS credentials and region, strict request validation on
every botocore client, and the SSM fake for the APIs moto 5.2 lacks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator import sandbox

sandbox.install()

from moto import mock_aws  # noqa: E402  (after the environment is made safe)

from emulator import fake_ssm  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"


@pytest.fixture(autouse=True)
def _reset_fake_ssm() -> Iterator[None]:
    """Every test starts with no seeded patch states, no pending faults and an empty call log."""
    fake_ssm.reset()
    yield
    fake_ssm.reset()


@pytest.fixture(autouse=True)
def _clear_metrics() -> Iterator[None]:
    """Metrics are a module-level singleton: nothing one test adds may leak into the next."""
    from tagpatch.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def aws() -> Iterator[None]:
    """Run the test inside ``moto.mock_aws()`` (fresh, empty emulated AWS account)."""
    with mock_aws():
        yield


@dataclass
class FakeLambdaContext:
    """Enough of ``awslambdaric``'s LambdaContext for handlers, Powertools Logger and Tracer."""

    function_name: str = "tagpatch-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tagpatch-test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/tagpatch-test-function"
    log_stream_name: str = "2024/01/01/[$LATEST]00000000000000000000000000000000"
    remaining_time_in_millis: int = 300_000
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_time_in_millis


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A fake Lambda context object."""
    return FakeLambdaContext()


@pytest.fixture
def load_event() -> Callable[[str], Any]:
    """Return a loader: ``load_event("name.json")`` parses ``events/name.json`` (``.json`` optional)."""

    def _load(name: str) -> Any:
        path = EVENTS_DIR / name
        if not path.exists() and not name.endswith(".json"):
            path = EVENTS_DIR / f"{name}.json"
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)

    return _load
