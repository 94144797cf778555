"""The compliance reporter's events: the samples in events/, and each rule with the field it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from tagpatch.models.reporter_events import Invalid, OnDemandReport, ReporterScheduledEvent
from tests.unit.test_envelopes import (
    _events,
    _required,
)

SAMPLES = _events("reporter-")
SCHEDULED = SAMPLES["reporter-scheduled.json"]
SCHEDULER = {**SCHEDULED, "source": "aws.scheduler"}
REQUIRED = [(field,) for field in _required(ReporterScheduledEvent)]


def _problems(model: type[ReporterScheduledEvent | OnDemandReport], data: Any) -> list[tuple[Any, str]]:
    with pytest.raises(Invalid) as refused:
        model.parse(data)
    return refused.value.problems


# --------------------------------------------------------------------------------------------
# The samples in events/
# --------------------------------------------------------------------------------------------
def test_the_scheduled_sample_is_read() -> None:
    event = ReporterScheduledEvent.parse(SCHEDULED)

    assert event.time == datetime(2025, 6, 1, 6, tzinfo=UTC)
    assert (event.source, event.detail_type, event.detail) == ("aws.events", "Scheduled Event", {})
    assert (event.version, event.id, event.account, event.region) == (
        "0",
        SCHEDULED["id"],
        "123456789012",
        "us-east-1",
    )
    assert event.resources == SCHEDULED["resources"]
    with pytest.raises(ValidationError, match="frozen"):
        event.time = datetime.now(UTC)  # type: ignore[misc]


def test_the_on_demand_sample_and_the_empty_request_are_read() -> None:
    assert OnDemandReport.parse(SAMPLES["reporter-on-demand.json"]) == OnDemandReport(group="web")
    assert OnDemandReport.parse({}) == OnDemandReport(group=None)
    assert OnDemandReport.parse({"group": None}).group is None


# --------------------------------------------------------------------------------------------
# Each rule, with the field it refuses
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", [path[0] for path in REQUIRED])
def test_each_required_field_is_required(field: str) -> None:
    data = {key: value for key, value in SCHEDULED.items() if key != field}

    assert _problems(ReporterScheduledEvent, data) == [((field,), "Field required")]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", 0, "Input should be a valid string"),
        ("id", None, "Input should be a valid string"),
        ("account", 123456789012, "Input should be a valid string"),
        ("region", [], "Input should be a valid string"),
        ("resources", "arn", "Input should be a valid list"),
        ("time", "yesterday", "Input should be a valid datetime or date, input is too short"),
        ("detail", "{}", "Input should be a valid dictionary"),
        ("detail", [], "Input should be a valid dictionary"),
        ("source", "aws.s3", "Input should be 'aws.events' or 'aws.scheduler'"),
        ("source", "aws.scheduler ", "Input should be 'aws.events' or 'aws.scheduler'"),
        ("detail-type", "Something else", "Input should be 'Scheduled Event'"),
    ],
)
def test_each_bad_field_is_refused_naming_it(field: str, value: Any, message: str) -> None:
    assert _problems(ReporterScheduledEvent, {**SCHEDULED, field: value}) == [((field,), message)]


def test_a_resource_that_is_not_text_is_refused_with_its_index() -> None:
    assert _problems(ReporterScheduledEvent, {**SCHEDULED, "resources": ["arn", 1]}) == [
        (("resources", 1), "Input should be a valid string")
    ]


def test_every_problem_is_in_the_one_error() -> None:
    data = {key: value for key, value in SCHEDULED.items() if key != "id"}

    with pytest.raises(Invalid) as refused:
        ReporterScheduledEvent.parse({**data, "detail-type": "x", "time": None})

    assert str(refused.value) == (
        "id: Field required; time: Input should be a valid datetime; "
        "detail-type: Input should be 'Scheduled Event'"
    )


@pytest.mark.parametrize("event", ["not an event", None, []])
def test_an_event_that_is_not_an_object_is_refused(event: Any) -> None:
    assert _problems(ReporterScheduledEvent, event) == [
        ((), "Input should be a valid dictionary or instance of ReporterScheduledEvent")
    ]


def test_the_scheduler_empty_detail_string_is_an_empty_detail_for_the_scheduler_only() -> None:
    assert ReporterScheduledEvent.parse({**SCHEDULER, "detail": "{}"}).detail == {}
    assert _problems(ReporterScheduledEvent, {**SCHEDULER, "detail": "[]"}) == [
        (("detail",), "Input should be a valid dictionary")
    ]
    # not for the default event bus, nor for a source that is refused
    assert [loc for loc, _ in _problems(ReporterScheduledEvent, {**SCHEDULED, "detail": "{}"})] == [
        ("detail",)
    ]
    assert [
        loc for loc, _ in _problems(ReporterScheduledEvent, {**SCHEDULED, "source": 1, "detail": "{}"})
    ] == [
        ("source",),
        ("detail",),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-01T08:00:00+02:00", datetime(2025, 6, 1, 8, tzinfo=timezone(timedelta(hours=2)))),
        (1748757600, datetime(2025, 6, 1, 6, tzinfo=UTC)),
        # naive, as pydantic's datetime reads it (the snapshot id then reads it as UTC)
        ("2025-06-01T06:00:00", datetime(2025, 6, 1, 6)),
    ],
)
def test_the_time_is_read_as_pydantic_reads_it(value: Any, expected: datetime) -> None:
    time = ReporterScheduledEvent.parse({**SCHEDULED, "time": value}).time

    assert (time, time.utcoffset()) == (expected, expected.utcoffset())


@pytest.mark.parametrize(
    ("request_body", "problem"),
    [
        ({"group": ""}, (("group",), "String should have at least 1 character")),
        ({"group": "x" * 257}, (("group",), "String should have at most 256 characters")),
        ({"group": 7}, (("group",), "Input should be a valid string")),
        ({"group": "web", "bogus": 1}, (("bogus",), "Extra inputs are not permitted")),
        ({"bogus": None}, (("bogus",), "Extra inputs are not permitted")),
    ],
)
def test_bad_on_demand_requests_are_refused_naming_the_field(
    request_body: dict[str, Any], problem: tuple[Any, str]
) -> None:
    assert _problems(OnDemandReport, request_body) == [problem]


@pytest.mark.parametrize("group", ["w", "x" * 256])
def test_the_group_length_boundaries_are_accepted(group: str) -> None:
    assert OnDemandReport.parse({"group": group}).group == group


# --------------------------------------------------------------------------------------------
# The same verdict as the pydantic models
# --------------------------------------------------------------------------------------------
