"""The report queue's consumer against hypothesis-generated events and message bodies: each record
is carried out or reported as a batch item failure (SQS redelivers it, then dead-letters it to
ReportDLQ); an event that is not an SQS event at all is refused with ``InvalidEvent``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.scenarios.compliance import DAY1, ReporterWorld, report_record, scheduled_event
from tagpatch.handlers import reporter as reporter_handler
from tests.reliability.test_malformed import SETTINGS, assert_refused_or_answered, json_values, mutated

_WORLD: dict[str, ReporterWorld] = {}


def _world() -> ReporterWorld:
    """A fan-out world with one planned run (its messages are the samples), per test."""
    if "world" not in _WORLD:
        world = ReporterWorld(fanout=True)
        world.register("web")
        world.seed("web", 3, group_index=1, missing=1)
        reporter_handler.handle(scheduled_event(DAY1), world.reporter)
        _WORLD["world"] = world
    return _WORLD["world"]


@pytest.fixture(autouse=True)
def _fresh_world() -> Iterator[None]:
    _WORLD.clear()
    yield
    _WORLD.clear()


SAMPLE_BATCH = {
    "type": "batch",
    "snapshotId": "2025-06-01T06:00:00Z",
    "source": "scheduled",
    "batch": 0,
    "attempt": 1,
    "groups": [{"name": "web", "managed": False, "baselines": []}],
}
SAMPLE_DEADLINE = {
    "type": "deadline",
    "snapshotId": "2025-06-01T06:00:00Z",
    "deadline": "2025-06-01T09:00:00Z",
}


@st.composite
def report_events(draw: st.DrawFn) -> Any:
    """An SQS event of the report queue whose body, record or event is mutated (or not)."""
    body = draw(st.one_of(st.just(SAMPLE_BATCH), st.just(SAMPLE_DEADLINE), mutated(SAMPLE_BATCH)))
    body = draw(st.one_of(st.just(body), mutated(SAMPLE_DEADLINE), json_values))
    record = report_record(json.dumps(body))
    event = {"Records": [record]}
    return draw(st.one_of(st.just(event), st.just(event), mutated(event)))


@SETTINGS
@given(event=report_events())
def test_the_report_consumer_carries_out_reports_or_refuses_any_event(aws: None, event: Any) -> None:
    world = _world()

    def call(e: Any) -> dict[str, Any]:
        result = reporter_handler.handle(e, world.reporter)
        if isinstance(e, dict) and "Records" in e:  # else a mutation made it another request
            failures = result["batchItemFailures"]
            ids = {r["messageId"] for r in e["Records"]}
            assert isinstance(failures, list) and all(f["itemIdentifier"] in ids for f in failures)
        return result

    assert_refused_or_answered(call, event, reporter_handler.InvalidEvent)
