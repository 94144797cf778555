"""Generated ReconcileQueue records: the reconciler fails exactly the records it cannot use, each with
its reason logged, and carries out the others; nothing escapes the batch, nothing is dropped."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.scenarios.aws import World
from emulator.scenarios.collector import sqs_record
from tagpatch.handlers import reconciler as reconciler_handler
from tagpatch.models.reconciler_events import Invalid, ParameterChangeEvent, TagChangeEvent, parse_message
from tests.reliability.test_malformed import HUGE, SETTINGS, json_values, mutated, sample

VERIFY = {"kind": "verify", "groups": {"web": 1}, "empty": ["gone"], "overrides": {}, "legacy": {}}
GROUP = {"kind": "group", "group": "web", "verify": True}

record_bodies = st.one_of(
    st.text(max_size=40),
    st.just(HUGE),
    json_values.map(json.dumps),
    *(
        mutated(original).map(json.dumps)
        for original in (
            VERIFY,
            GROUP,
            sample("reconciler-tag-added.json"),
            sample("reconciler-settings-change.json"),
        )
    ),
)


def usable(body: str) -> bool:
    """Whether the consumer can use ``body``: one of the rules' events or one of our messages."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    try:
        if "source" in data:
            if data["source"] == "aws.tag":
                TagChangeEvent.parse(data)
            elif data["source"] == "aws.ssm":
                ParameterChangeEvent.parse(data)
            else:
                return False
        else:
            parse_message(data)
    except Invalid:
        return False
    return True


_WORLDS: dict[str, World] = {}


@pytest.fixture(autouse=True)
def _fresh_world() -> Any:
    _WORLDS.clear()
    yield
    _WORLDS.clear()


@SETTINGS
@given(bodies=st.lists(record_bodies, min_size=1, max_size=6))
def test_the_reconciler_fails_exactly_the_unusable_records_and_logs_why(
    aws: None, caplog: pytest.LogCaptureFixture, bodies: list[str]
) -> None:
    if "world" not in _WORLDS:
        _WORLDS["world"] = World()
        _WORLDS["world"].launch("web")
    world = _WORLDS["world"]
    caplog.clear()
    records = [sqs_record(body, message_id=f"m{n}") for n, body in enumerate(bodies)]

    # When the batch is processed
    with caplog.at_level(logging.INFO, logger="tagpatch"):
        response = reconciler_handler.handle({"Records": records}, world.reconciler)

    # Then exactly the unusable records are reported, each refusal logged with its reason
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    unusable = {f"m{n}" for n, body in enumerate(bodies) if not usable(body)}
    assert failed == unusable
    refused = {
        getattr(r, "messageId", None): getattr(r, "reason", "")
        for r in caplog.records
        if r.getMessage().startswith("record refused")
    }
    assert set(refused) == unusable
    assert all(refused.values())
