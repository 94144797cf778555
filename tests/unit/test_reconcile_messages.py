"""The reconcile queue's own messages: what the consumer takes, and how a plan is split to fit SQS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tagpatch.models.reconciler_events import (
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_GROUPS,
    GroupMessage,
    Invalid,
    VerifyMessage,
    encode_message,
    parse_message,
    split_message,
)

# What Reconciler.plan_run returns for one batch (src/tagpatch/reconciler/core.py)
PLANNED: dict[str, Any] = {
    "kind": "verify",
    "groups": {"web": 3, "Batch Jobs": 2, "": 1},
    "empty": ["old"],
    "overrides": {"web": '{"duration": 3}'},
    "legacy": {"Batch Jobs": '{"cutoff": 2}'},
}


def _verify(count: int, *, text: str = "") -> dict[str, Any]:
    groups = {f"g{index:03}": index for index in range(count)}
    return {
        "kind": "verify",
        "groups": groups,
        "empty": [],
        "overrides": dict.fromkeys(groups, text) if text else {},
        "legacy": {},
    }


def test_a_planned_batch_is_taken_as_it_is() -> None:
    message = parse_message(PLANNED)

    assert isinstance(message, VerifyMessage)
    # the dump is what Reconciler.run_message is given: the planned body, unchanged
    assert message.model_dump() == PLANNED


def test_a_group_message_defaults_to_a_verify() -> None:
    message = parse_message({"kind": "group", "group": "web"})

    assert isinstance(message, GroupMessage)
    assert message.model_dump() == {"kind": "group", "group": "web", "verify": True}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"kind": "verify"}, "names no group"),
        ({"kind": "verify", "groups": {"web": 1}, "overrides": {"db": "{}"}}, "settings for groups it does"),
        ({"kind": "verify", "groups": {"web": 1}, "empty": ["web"]}, "both verified and empty"),
        ({"kind": "verify", "empty": ["a", "a"]}, "named twice"),
        ({"kind": "verify", "groups": {"web": True}}, "valid integer"),
        ({"kind": "verify", "groups": {"web": "3"}}, "valid integer"),
        ({"kind": "verify", "groups": {"web": -1}}, "greater than or equal to 0"),
        ({"kind": "verify", "groups": {"x" * 257: 1}}, "at most 256 characters"),
        ({"kind": "verify", "groups": {"web": 1}, "overrides": {"web": "x" * 8193}}, "at most 8192"),
        (_verify(MAX_MESSAGE_GROUPS + 1), f"at most {MAX_MESSAGE_GROUPS} items"),
        ({**_verify(60), "empty": [f"e{i}" for i in range(41)]}, f"more than {MAX_MESSAGE_GROUPS} groups"),
        ({"kind": "verify", "groups": {"web": 1}, "extra": 1}, "Extra inputs are not permitted"),
        ({"kind": "group", "group": "web", "verify": "yes"}, "valid boolean"),
        ({"kind": "group"}, "Field required"),
        ({"kind": "sweep"}, "does not match any of the expected tags"),
        ({"group": "web"}, "Unable to extract tag using discriminator"),
        (["web"], "valid dictionary"),
    ],
)
def test_a_body_that_is_not_one_of_ours_is_refused_with_its_reason(body: Any, problem: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_message(body)

    assert problem in str(refused.value)


def test_a_plan_that_fits_is_one_message() -> None:
    assert split_message(PLANNED) == [PLANNED]


def test_a_plan_over_the_group_limit_is_split_keeping_each_group_with_its_settings() -> None:
    # Given a batch of 250 groups, each with its override, and 3 empty groups
    body = {**_verify(250, text='{"duration": 2}'), "empty": ["e1", "e2", "e3"]}

    # When it is split to at most 100 groups per message
    parts = split_message(body)

    # Then every part is a valid message, no group is lost or repeated, and each override travels
    # with its group
    assert all(len(p["groups"]) + len(p["empty"]) <= MAX_MESSAGE_GROUPS for p in parts)
    assert [parse_message(part).model_dump() for part in parts] == parts
    assert [g for p in parts for g in p["groups"]] == list(body["groups"])
    assert [g for p in parts for g in p["empty"]] == ["e1", "e2", "e3"]
    assert all(set(p["overrides"]) == set(p["groups"]) for p in parts)
    assert {g: n for p in parts for g, n in p["groups"].items()} == body["groups"]


def test_a_plan_over_256_kib_is_split_by_size() -> None:
    # Given 40 groups each with an 8 KB override: 330 KB, under the group limit
    body = _verify(40, text="x" * 8000)
    assert len(encode_message(body).encode()) > MAX_MESSAGE_BYTES

    # When it is split
    parts = split_message(body)

    # Then each part fits SQS and together they carry every group once
    assert len(parts) == 2
    assert all(len(encode_message(part).encode()) <= MAX_MESSAGE_BYTES for part in parts)
    assert sorted(g for p in parts for g in p["groups"]) == sorted(body["groups"])


def test_sizes_are_counted_in_utf8_bytes() -> None:
    # Given groups whose names and overrides are not ASCII (3 bytes per character)
    body = {"kind": "verify", "groups": {"ü": 1}, "empty": [], "overrides": {"ü": "€" * 100}, "legacy": {}}

    # Then the encoded body keeps the characters and the limit is in bytes
    assert "€" in encode_message(body)
    assert json.loads(encode_message(body)) == body
    parts = split_message(
        {**body, "groups": {"ü": 1, "ö": 2}, "overrides": {"ü": "€" * 100, "ö": "€" * 100}}, max_bytes=400
    )
    assert [list(part["groups"]) for part in parts] == [["ü"], ["ö"]]


def test_one_group_too_big_for_a_message_is_an_error_not_a_lost_group() -> None:
    with pytest.raises(ValueError, match="over 100 bytes"):
        split_message(
            {"kind": "verify", "groups": {"web": 1}, "overrides": {"web": "x" * 200}}, max_bytes=100
        )
