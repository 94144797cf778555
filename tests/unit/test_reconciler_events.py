"""The reconciler's events: the samples in events/, and each rule with the field it refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from tagpatch.models.reconciler_events import (
    Invalid,
    OnDemandRequest,
    ParameterChangeDetail,
    ParameterChangeEvent,
    ScheduledEvent,
    TagChangeDetail,
    TagChangeEvent,
)
from tests.unit.test_envelopes import (
    ABSENT,
    EventBridgeModel,
    _events,
    _required,
    _with,
)

SAMPLES = _events("reconciler-")
SCHEDULED = SAMPLES["reconciler-scheduled.json"]
SCHEDULER = {**SCHEDULED, "source": "aws.scheduler"}
SETTINGS = SAMPLES["reconciler-settings-change.json"]
TAG_SAMPLES = {name: event for name, event in SAMPLES.items() if name.startswith("reconciler-tag-")}
TAG = TAG_SAMPLES["reconciler-tag-added.json"]
COMMON = [(field,) for field in _required(EventBridgeModel)]

Ours = type[TagChangeEvent | ScheduledEvent | ParameterChangeEvent | OnDemandRequest]

# (the model, a sample, the paths of every required field, detail fields included)
EVENTS: list[tuple[Ours, dict[str, Any], list[tuple[str, ...]]]] = [
    *[
        (
            TagChangeEvent,
            sample,
            COMMON + [("detail", field) for field in _required(TagChangeDetail)],
        )
        for sample in TAG_SAMPLES.values()
    ],
    (ScheduledEvent, SCHEDULED, COMMON),
    (ScheduledEvent, SCHEDULER, COMMON),
    (
        ParameterChangeEvent,
        SETTINGS,
        COMMON + [("detail", field) for field in _required(ParameterChangeDetail)],
    ),
]


def _problems(model: Ours, data: Any) -> list[tuple[Any, str]]:
    with pytest.raises(Invalid) as refused:
        model.parse(data)
    return refused.value.problems


# --------------------------------------------------------------------------------------------
# The samples in events/
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TAG_SAMPLES))
def test_the_tag_change_samples_are_read(name: str) -> None:
    sample = TAG_SAMPLES[name]

    event = TagChangeEvent.parse(sample)

    assert (event.source, event.detail_type, event.resources) == (
        "aws.tag",
        "Tag Change on Resource",
        sample["resources"],
    )
    assert event.time == datetime.fromisoformat(sample["time"])
    assert (event.detail.changed_tag_keys, event.detail.service, event.detail.resource_type) == (
        ["PatchGroup"],
        "ec2",
        "instance",
    )
    assert event.detail.tags == sample["detail"]["tags"]


def test_the_scheduled_and_settings_samples_are_read() -> None:
    scheduled = ScheduledEvent.parse(SCHEDULED)
    settings = ParameterChangeEvent.parse(SETTINGS)

    assert (scheduled.source, scheduled.detail_type, scheduled.detail) == (
        "aws.events",
        "Scheduled Event",
        {},
    )
    assert scheduled.time == datetime(2025, 6, 1, 6, tzinfo=UTC)
    assert (settings.source, settings.detail_type) == ("aws.ssm", "Parameter Store Change")
    assert settings.detail == ParameterChangeDetail(operation="Update", name="/tagpatch/tagpatch/groups/web")


def test_the_on_demand_sample_is_read() -> None:
    assert OnDemandRequest.parse(SAMPLES["reconciler-on-demand.json"]) == OnDemandRequest(
        group="web", dry_run=False
    )


def test_the_events_are_frozen() -> None:
    event = TagChangeEvent.parse(TAG)
    with pytest.raises(ValidationError, match="frozen"):
        event.detail.tags = {}  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        OnDemandRequest.parse({}).dry_run = True  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Each rule, with the field it refuses
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "sample", "path"),
    [(model, sample, path) for model, sample, paths in EVENTS for path in paths],
)
def test_each_required_field_is_required(model: Ours, sample: dict[str, Any], path: tuple[str, ...]) -> None:
    assert _problems(model, _with(sample, path, ABSENT)) == [(path, "Field required")]


@pytest.mark.parametrize(
    ("model", "sample", "path", "value", "message"),
    [
        (TagChangeEvent, TAG, ("version",), 0, "Input should be a valid string"),
        (TagChangeEvent, TAG, ("id",), None, "Input should be a valid string"),
        (TagChangeEvent, TAG, ("account",), 1, "Input should be a valid string"),
        (TagChangeEvent, TAG, ("region",), [], "Input should be a valid string"),
        (TagChangeEvent, TAG, ("resources",), "arn", "Input should be a valid list"),
        (TagChangeEvent, TAG, ("resources",), ["arn", 1], "Input should be a valid string"),
        (
            TagChangeEvent,
            TAG,
            ("time",),
            "soon",
            "Input should be a valid datetime or date, input is too short",
        ),
        (TagChangeEvent, TAG, ("source",), "aws.ssm", "Input should be 'aws.tag'"),
        (
            TagChangeEvent,
            TAG,
            ("detail-type",),
            "Scheduled Event",
            "Input should be 'Tag Change on Resource'",
        ),
        (
            TagChangeEvent,
            TAG,
            ("detail",),
            [],
            "Input should be a valid dictionary or instance of TagChangeDetail",
        ),
        (
            TagChangeEvent,
            TAG,
            ("detail",),
            "{}",
            "Input should be a valid dictionary or instance of TagChangeDetail",
        ),
        (TagChangeEvent, TAG, ("detail", "changed-tag-keys"), "PatchGroup", "Input should be a valid list"),
        (TagChangeEvent, TAG, ("detail", "changed-tag-keys"), [1], "Input should be a valid string"),
        (TagChangeEvent, TAG, ("detail", "service"), 2, "Input should be a valid string"),
        (TagChangeEvent, TAG, ("detail", "resource-type"), None, "Input should be a valid string"),
        (TagChangeEvent, TAG, ("detail", "tags"), [], "Input should be a valid dictionary"),
        (TagChangeEvent, TAG, ("detail", "tags"), {"PatchGroup": 1}, "Input should be a valid string"),
        (
            ScheduledEvent,
            SCHEDULED,
            ("source",),
            "aws.tag",
            "Input should be 'aws.events' or 'aws.scheduler'",
        ),
        (ScheduledEvent, SCHEDULED, ("detail-type",), "scheduled event", "Input should be 'Scheduled Event'"),
        (ScheduledEvent, SCHEDULED, ("detail",), "{}", "Input should be a valid dictionary"),
        (ScheduledEvent, SCHEDULER, ("detail",), "[]", "Input should be a valid dictionary"),
        (ParameterChangeEvent, SETTINGS, ("source",), "aws.tag", "Input should be 'aws.ssm'"),
        (ParameterChangeEvent, SETTINGS, ("detail-type",), "x", "Input should be 'Parameter Store Change'"),
        (
            ParameterChangeEvent,
            SETTINGS,
            ("detail",),
            None,
            "Input should be a valid dictionary or instance of ParameterChangeDetail",
        ),
        (ParameterChangeEvent, SETTINGS, ("detail", "operation"), 1, "Input should be a valid string"),
        (ParameterChangeEvent, SETTINGS, ("detail", "name"), "", "String should have at least 1 character"),
        (
            ParameterChangeEvent,
            SETTINGS,
            ("detail", "name"),
            "/" * 2049,
            "String should have at most 2048 characters",
        ),
    ],
)
def test_each_bad_field_is_refused_naming_it(
    model: Ours, sample: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    problems = _problems(model, _with(sample, path, value))

    assert [msg for _, msg in problems] == [message]
    assert problems[0][0][: len(path)] == path  # a list item or a tag adds its index or key


def test_a_bad_tag_value_and_a_bad_key_are_refused_with_their_key_and_index() -> None:
    assert _problems(TagChangeEvent, _with(TAG, ("detail", "tags", "PatchGroup"), 7)) == [
        (("detail", "tags", "PatchGroup"), "Input should be a valid string")
    ]
    assert _problems(TagChangeEvent, _with(TAG, ("detail", "changed-tag-keys"), ["a", None])) == [
        (("detail", "changed-tag-keys", 1), "Input should be a valid string")
    ]


@pytest.mark.parametrize("name", ["/", "/" * 2048])
def test_the_parameter_name_length_boundaries_are_accepted(name: str) -> None:
    assert ParameterChangeEvent.parse(_with(SETTINGS, ("detail", "name"), name)).detail.name == name


def test_the_detail_type_may_be_spelt_by_its_field_name_and_the_alias_wins() -> None:
    spelt = {key: value for key, value in TAG.items() if key != "detail-type"}

    assert TagChangeEvent.parse({**spelt, "detail_type": "Tag Change on Resource"}).detail_type == (
        "Tag Change on Resource"
    )
    assert _problems(TagChangeEvent, {**spelt, "detail_type": "x"}) == [
        (("detail_type",), "Input should be 'Tag Change on Resource'")
    ]
    assert TagChangeEvent.parse({**TAG, "detail_type": "x"}).detail_type == "Tag Change on Resource"


def test_the_detail_fields_are_read_by_their_aliases_only() -> None:
    detail = {**TAG["detail"], "changed_tag_keys": ["PatchGroup"], "resource_type": "instance"}
    del detail["changed-tag-keys"], detail["resource-type"]

    assert [loc for loc, _ in _problems(TagChangeEvent, {**TAG, "detail": detail})] == [
        ("detail", "changed-tag-keys"),
        ("detail", "resource-type"),
    ]


def test_unknown_fields_of_an_event_are_ignored() -> None:
    event = TagChangeEvent.parse({**TAG, "replay-name": "r", "extra": 1})

    assert event == TagChangeEvent.parse(TAG)


def test_the_scheduler_empty_detail_string_is_an_empty_detail_for_the_scheduler_only() -> None:
    assert ScheduledEvent.parse({**SCHEDULER, "detail": "{}"}).detail == {}
    assert [loc for loc, _ in _problems(ScheduledEvent, {**SCHEDULED, "detail": "{}"})] == [("detail",)]
    assert [
        loc for loc, _ in _problems(TagChangeEvent, {**TAG, "source": "aws.scheduler", "detail": "{}"})
    ] == [
        ("source",),
        ("detail",),
    ]


def test_every_problem_is_in_the_one_error() -> None:
    data = _with(_with(TAG, ("id",), ABSENT), ("detail", "tags"), None)

    with pytest.raises(Invalid) as refused:
        TagChangeEvent.parse({**data, "detail-type": "x", "time": None})

    assert str(refused.value) == (
        "id: Field required; time: Input should be a valid datetime; "
        "detail-type: Input should be 'Tag Change on Resource'; "
        "detail.tags: Input should be a valid dictionary"
    )


@pytest.mark.parametrize("model", [TagChangeEvent, ScheduledEvent, ParameterChangeEvent, OnDemandRequest])
@pytest.mark.parametrize("data", ["not an event", None, []])
def test_data_that_is_not_an_object_is_refused(model: Ours, data: Any) -> None:
    assert _problems(model, data) == [
        ((), f"Input should be a valid dictionary or instance of {model.__name__}")
    ]


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        ({}, OnDemandRequest(group=None, dry_run=False)),
        ({"group": None}, OnDemandRequest(group=None, dry_run=False)),
        ({"group": ""}, OnDemandRequest(group="", dry_run=False)),
        ({"group": "x" * 256}, OnDemandRequest(group="x" * 256, dry_run=False)),
        ({"group": "web", "dryRun": True}, OnDemandRequest(group="web", dry_run=True)),
        ({"group": "web", "dry_run": True}, OnDemandRequest(group="web", dry_run=True)),
        ({"dryRun": "yes"}, OnDemandRequest(group=None, dry_run=True)),
        ({"dryRun": "OFF"}, OnDemandRequest(group=None, dry_run=False)),
        ({"dryRun": 1}, OnDemandRequest(group=None, dry_run=True)),
        ({"dryRun": 0.0}, OnDemandRequest(group=None, dry_run=False)),
    ],
)
def test_on_demand_requests_are_read(request_body: dict[str, Any], expected: OnDemandRequest) -> None:
    assert OnDemandRequest.parse(request_body) == expected


@pytest.mark.parametrize(
    ("request_body", "problems"),
    [
        ({"group": "x" * 257}, [(("group",), "String should have at most 256 characters")]),
        ({"group": 7}, [(("group",), "Input should be a valid string")]),
        ({"group": "web", "bogus": 1}, [(("bogus",), "Extra inputs are not permitted")]),
        ({"bogus": None}, [(("bogus",), "Extra inputs are not permitted")]),
        ({"dryRun": None}, [(("dryRun",), "Input should be a valid boolean")]),
        ({"dry_run": []}, [(("dry_run",), "Input should be a valid boolean")]),
        ({"dryRun": 2}, [(("dryRun",), "Input should be a valid boolean, unable to interpret input")]),
        ({"dryRun": 0.5}, [(("dryRun",), "Input should be a valid boolean")]),
        ({"dryRun": " yes"}, [(("dryRun",), "Input should be a valid boolean, unable to interpret input")]),
        ({"dryRun": True, "dry_run": True}, [(("dry_run",), "Extra inputs are not permitted")]),
        (
            {"group": 1, "dryRun": "x", "z": 0},
            [
                (("group",), "Input should be a valid string"),
                (("dryRun",), "Input should be a valid boolean, unable to interpret input"),
                (("z",), "Extra inputs are not permitted"),
            ],
        ),
    ],
)
def test_bad_on_demand_requests_are_refused_naming_the_field(
    request_body: dict[str, Any], problems: list[tuple[Any, str]]
) -> None:
    assert _problems(OnDemandRequest, request_body) == problems
