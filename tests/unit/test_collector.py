"""The collector's pure domain: statuses, ordering, groups, alert composition and the alert gate."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from emulator.scenarios.collector import COLLECTOR_ENV
from tagpatch.adapters.alerts import MAX_MESSAGE_BYTES, safe_message, safe_subject
from tagpatch.adapters.ssm_commands import SsmCommandLookup
from tagpatch.collector.alerts import (
    MAX_LISTED,
    SUBJECT_MAX,
    AlertRequest,
    Gate,
    alert_gate,
    alert_subject,
    compose_alert,
    run_command_console_url,
    s3_console_url,
)
from tagpatch.collector.config import load_collector_config
from tagpatch.collector.core import recorded_status
from tagpatch.models.environment import ConfigError
from tagpatch.models.records import (
    CommandContext,
    CommandProgress,
    CommandState,
    FailedInstance,
    group_from_prefix,
)
from tagpatch.models.run_status import (
    ALERTING,
    TERMINAL,
    RunStatus,
    UnknownStatus,
    normalise_status,
    stamp,
    supersedes,
)

COMMAND = "a8c7e76f-15f1-4c33-9052-0123456789ab"
CONTEXT = CommandContext(COMMAND, "web", "amzn-s3-demo-bucket", "patch-output/web")


# --------------------------------------------------------------------------------------------
# Statuses
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Canceled", RunStatus.CANCELLED),
        ("Cancelled", RunStatus.CANCELLED),
        ("Canceling", RunStatus.CANCELLING),
        ("Cancelling", RunStatus.CANCELLING),
        ("InProgress", RunStatus.IN_PROGRESS),
        ("In Progress", RunStatus.IN_PROGRESS),
        ("Timed Out", RunStatus.TIMED_OUT),
        ("Delivery Timed Out", RunStatus.DELIVERY_TIMED_OUT),
        ("ExecutionTimedOut", RunStatus.EXECUTION_TIMED_OUT),
        ("Undeliverable", RunStatus.UNDELIVERABLE),
        ("Success", RunStatus.SUCCESS),
    ],
)
def test_every_spelling_ssm_uses_is_one_status(raw: str, expected: RunStatus) -> None:
    assert normalise_status(raw) is expected


@pytest.mark.parametrize("raw", ["", "success", "Done", "FAILED", "Cancel led2"])
def test_unknown_statuses_are_refused(raw: str) -> None:
    with pytest.raises(UnknownStatus, match="unknown Run Command status"):
        normalise_status(raw)


def test_the_issue_s_alerting_statuses_alert_and_success_does_not() -> None:
    named = {
        "Failed",
        "TimedOut",
        "Cancelled",
        "Canceled",
        "Undeliverable",
        "DeliveryTimedOut",
        "ExecutionTimedOut",
    }

    assert {normalise_status(raw) for raw in named} <= ALERTING
    assert RunStatus.SUCCESS in TERMINAL
    assert RunStatus.SUCCESS not in ALERTING
    assert not (
        {RunStatus.PENDING, RunStatus.IN_PROGRESS, RunStatus.DELAYED, RunStatus.CANCELLING} & TERMINAL
    )


T1, T2 = "2025-06-15T03:00:00.000000Z", "2025-06-15T03:05:00.000000Z"


@pytest.mark.parametrize(
    ("new", "new_time", "old", "old_time", "moves"),
    [
        (RunStatus.IN_PROGRESS, T1, None, None, True),  # first sight
        (RunStatus.SUCCESS, T2, RunStatus.IN_PROGRESS, T1, True),  # forward
        (RunStatus.IN_PROGRESS, T1, RunStatus.SUCCESS, T2, False),  # late InProgress
        (RunStatus.IN_PROGRESS, T2, RunStatus.SUCCESS, T1, False),  # terminal is final, whatever the clock
        (RunStatus.SUCCESS, T2, RunStatus.SUCCESS, T2, False),  # duplicate
        (RunStatus.IN_PROGRESS, T1, RunStatus.IN_PROGRESS, T1, False),  # duplicate
        (RunStatus.FAILED, T1, RunStatus.IN_PROGRESS, T2, True),  # terminal beats non-terminal
        (RunStatus.PENDING, T2, RunStatus.IN_PROGRESS, T1, False),  # never backwards in rank
        (RunStatus.DELAYED, T2, RunStatus.IN_PROGRESS, T1, True),  # same rank, newer
        (RunStatus.CANCELLED, T2, RunStatus.FAILED, T1, False),  # one terminal status only
    ],
)
def test_transitions_only_move_forward(
    new: RunStatus, new_time: str, old: RunStatus | None, old_time: str | None, moves: bool
) -> None:
    assert supersedes(new, new_time, old, old_time) is moves


def _fold(events: list[tuple[RunStatus, str]]) -> tuple[RunStatus | None, str | None]:
    status: RunStatus | None = None
    at: str | None = None
    for new, new_time in events:
        if supersedes(new, new_time, status, at):
            status, at = new, new_time
    return status, at


def test_any_delivery_order_of_a_lifecycle_ends_in_its_terminal_status() -> None:
    # Given an instance's lifecycle Pending -> InProgress -> Failed, each delivered twice
    base = datetime(2025, 6, 15, 3, tzinfo=UTC)
    lifecycle = [
        (RunStatus.PENDING, stamp(base)),
        (RunStatus.IN_PROGRESS, stamp(base + timedelta(seconds=1))),
        (RunStatus.FAILED, stamp(base + timedelta(seconds=2))),
    ]
    # When the notifications arrive in every possible order
    for order in itertools.permutations(lifecycle + lifecycle):
        # Then the record always ends at the terminal status and its time
        assert _fold(list(order)) == lifecycle[-1]


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
)
def test_stamps_sort_like_the_times_they_stand_for(first: datetime, second: datetime) -> None:
    assert (stamp(first) < stamp(second)) is (first < second)
    assert len(stamp(first)) == len(stamp(second)) == 27


def test_stamp_fixes_ssm_s_variable_width_times() -> None:
    # SSM writes "09.17Z" and "09.236Z": as strings they would not sort by time with "09Z"
    earlier = datetime.fromisoformat("2019-04-25T17:57:09+00:00")
    later = datetime.fromisoformat("2019-04-25T17:57:09.170+00:00")

    assert stamp(earlier) < stamp(later)
    assert stamp(later) == "2019-04-25T17:57:09.170000Z"


@pytest.mark.parametrize(
    ("prefix", "group"),
    [
        ("patch-output/web", "web"),
        ("patching/output/db-tier-1a2b3c4d5e", "db-tier-1a2b3c4d5e"),
        ("web/", "web"),
        ("runcommand", "runcommand"),
        ("", None),
        ("/", None),
    ],
)
def test_the_group_is_the_last_segment_of_the_output_prefix(prefix: str, group: str | None) -> None:
    assert group_from_prefix(prefix) == group


# --------------------------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------------------------
def test_links_point_at_the_console_pages_of_the_command_and_its_output() -> None:
    assert run_command_console_url("eu-west-1", COMMAND) == (
        f"https://eu-west-1.console.aws.amazon.com/systems-manager/run-command/{COMMAND}?region=eu-west-1"
    )
    key = CONTEXT.output_key_prefix("i-0123456789abcdef0")
    assert key == f"patch-output/web/{COMMAND}/i-0123456789abcdef0/"
    assert CONTEXT.output_uri("i-0123456789abcdef0") == f"s3://amzn-s3-demo-bucket/{key}"
    assert s3_console_url("eu-west-1", "amzn-s3-demo-bucket", key) == (
        "https://s3.console.aws.amazon.com/s3/buckets/amzn-s3-demo-bucket"
        f"?region=eu-west-1&prefix={key}&showversions=false"
    )


def test_no_bucket_means_no_output_link() -> None:
    assert CommandContext(COMMAND).output_uri("i-0123456789abcdef0") == ""
    assert CommandContext(COMMAND, output_prefix="/a/b/").output_key_prefix() == f"a/b/{COMMAND}/"


# --------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------
def _request(count: int, **overrides: object) -> AlertRequest:
    values: dict[str, object] = {
        "context": CONTEXT,
        "region": "us-east-1",
        "stack_name": "tagpatch",
        "table_name": "tagpatch-CommandStatusTable",
        "document_name": "AWS-RunPatchBaseline",
        "requested_at": "2025-06-15T03:00:00.000000Z",
        "failures": tuple(FailedInstance(f"i-{n:017x}", RunStatus.FAILED) for n in range(count)),
        "failed_total": count,
        "alert_number": 1,
        "max_alerts": 4,
        "cooldown_seconds": 900,
    }
    values.update(overrides)
    return AlertRequest(**values)  # type: ignore[arg-type]


def test_an_alert_lists_each_failure_with_its_status_and_output_link() -> None:
    alert = compose_alert(_request(2, succeeded=7))

    assert alert.subject == f"TagPatch tagpatch: 2 instances Failed in group web (command {COMMAND[:8]})"
    assert alert.instance_ids == ("i-00000000000000000", "i-00000000000000001")
    for instance in alert.instance_ids:
        assert f"  {instance}  Failed" in alert.message
        assert s3_console_url("us-east-1", "amzn-s3-demo-bucket", CONTEXT.output_key_prefix(instance)) in (
            alert.message
        )
    assert run_command_console_url("us-east-1", COMMAND) in alert.message
    assert "Patch group:   web" in alert.message
    assert "2 instances, 7 succeeded" in alert.message
    assert "tagpatch-CommandStatusTable" in alert.message
    assert "alert 1 of at most 4" in alert.message


def test_mixed_failure_statuses_read_as_failed() -> None:
    request = _request(
        0, failures=(FailedInstance("i-1", RunStatus.FAILED), FailedInstance("i-2", RunStatus.TIMED_OUT))
    )

    assert compose_alert(request).subject.startswith("TagPatch tagpatch: 2 instances failed in group web")


def test_an_alert_about_many_failures_lists_a_readable_few_and_counts_the_rest() -> None:
    alert = compose_alert(_request(1000))

    listed = [line for line in alert.message.splitlines() if line.startswith("  i-")]
    assert len(listed) == MAX_LISTED
    assert "... and 975 more" in alert.message
    assert len(alert.instance_ids) == 1000  # all of them count as reported
    assert len(alert.message.encode()) < 20_000


def test_the_last_allowed_alert_says_so() -> None:
    assert "No further alerts will be sent" in compose_alert(_request(1, alert_number=4)).message
    assert "summarised in the next alert" in compose_alert(_request(1, alert_number=3)).message


def test_a_command_level_summary_names_the_command_status_and_its_targets() -> None:
    request = _request(
        0, command_status=RunStatus.TIMED_OUT, command_instance_ids=("i-0123456789abcdef0",), alert_number=0
    )

    alert = compose_alert(request)

    assert alert.subject == f"TagPatch tagpatch: patch run TimedOut in group web (command {COMMAND[:8]})"
    assert "Command status: TimedOut" in alert.message
    assert "Targeted instances (1): i-0123456789abcdef0" in alert.message
    assert "alert 1 of" not in alert.message


def test_a_command_without_output_location_still_alerts_with_the_console_link() -> None:
    request = _request(1, context=CommandContext(COMMAND), requested_at="")

    alert = compose_alert(request)

    assert alert.subject == f"TagPatch tagpatch: 1 instance Failed (command {COMMAND[:8]})"
    assert "s3.console" not in alert.message
    assert run_command_console_url("us-east-1", COMMAND) in alert.message


@given(
    stack=st.text(min_size=1, max_size=128),
    group=st.one_of(st.none(), st.text(max_size=300)),
    summary=st.sampled_from(
        ["patch run Cancelled", "1000 instances ExecutionTimedOut", "3 instances failed"]
    ),
)
def test_subjects_always_fit_sns_and_an_inbox(stack: str, group: str | None, summary: str) -> None:
    subject = alert_subject(stack, group, summary, COMMAND)

    assert len(subject) <= SUBJECT_MAX
    assert subject.isascii()
    assert all(32 <= ord(ch) < 127 for ch in subject)
    assert subject.endswith(f"(command {COMMAND[:8]})")
    assert safe_subject(subject) == subject


def test_publisher_guards_subject_and_size() -> None:
    assert safe_subject("Ärger\nim\tPatch") == "rger im Patch"
    assert len(safe_subject("x" * 500)) == SUBJECT_MAX
    assert safe_subject("\n\t") == "TagPatch alert"
    assert safe_message("short") == "short"
    huge = safe_message("é" * MAX_MESSAGE_BYTES)
    assert len(huge.encode()) <= MAX_MESSAGE_BYTES
    assert huge.endswith("shortened to the SNS size limit ...]\n")


# --------------------------------------------------------------------------------------------
# Gate and state
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("count", "last", "now", "gate"),
    [
        (0, None, 100.0, Gate.SEND),
        (1, 100.0, 100.0 + 899, Gate.HOLD),
        (1, 100.0, 100.0 + 900, Gate.SEND),
        (3, 100.0, 10_000.0, Gate.SEND),
        (4, 100.0, 10_000.0, Gate.CAPPED),
        (4, None, 0.0, Gate.CAPPED),
    ],
)
def test_alert_gate(count: int, last: float | None, now: float, gate: Gate) -> None:
    assert alert_gate(alert_count=count, last_alert_at=last, now=now, cooldown=900, cap=4) is gate


def test_unalerted_failures_are_the_recorded_ones_minus_the_alerted_ones() -> None:
    state = CommandState(
        COMMAND,
        failed={RunStatus.FAILED: frozenset({"i-2", "i-1"}), RunStatus.TIMED_OUT: frozenset({"i-3"})},
        alerted=frozenset({"i-1"}),
        untracked_failures=5,
    )

    assert state.unalerted() == [
        FailedInstance("i-2", RunStatus.FAILED),
        FailedInstance("i-3", RunStatus.TIMED_OUT),
    ]
    assert state.failed_total == 8


# --------------------------------------------------------------------------------------------
# Run Result: has the command ended?
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("counts", "ended"),
    [
        ({}, False),  # nothing recorded (a NotificationType Command member)
        ({RunStatus.SUCCESS: 2, RunStatus.FAILED: 1}, True),
        ({RunStatus.SUCCESS: 2, RunStatus.IN_PROGRESS: 1}, False),
        ({RunStatus.SUCCESS: 2, RunStatus.IN_PROGRESS: 0, RunStatus.PENDING: 0}, True),  # moved on
        ({RunStatus.IN_PROGRESS: 0}, False),
    ],
)
def test_a_command_s_invocations_have_ended_when_every_recorded_one_is_terminal(
    counts: dict[RunStatus, int], ended: bool
) -> None:
    assert CommandState(COMMAND, counts=counts).invocations_ended is ended


@pytest.mark.parametrize(
    ("progress", "recorded", "covered"),
    [
        (CommandProgress(RunStatus.FAILED, target_count=3, completed_count=3), 3, True),
        (CommandProgress(RunStatus.FAILED, target_count=3, completed_count=3), 2, False),  # one on its way
        (CommandProgress(RunStatus.FAILED, target_count=5, completed_count=3), 3, True),  # past MaxErrors
        (CommandProgress(RunStatus.SUCCESS, target_count=0, completed_count=0), 0, True),
    ],
)
def test_recorded_invocations_cover_the_command_s_targets(
    progress: CommandProgress, recorded: int, covered: bool
) -> None:
    assert progress.covered_by(recorded) is covered


@pytest.mark.parametrize(
    ("counts", "status"),
    [
        ({RunStatus.SUCCESS: 3}, RunStatus.SUCCESS),
        ({RunStatus.SUCCESS: 2, RunStatus.FAILED: 1, RunStatus.TIMED_OUT: 1}, RunStatus.FAILED),
        ({RunStatus.SUCCESS: 2, RunStatus.TIMED_OUT: 1}, RunStatus.TIMED_OUT),
        ({RunStatus.SUCCESS: 2, RunStatus.FAILED: 0}, RunStatus.SUCCESS),
    ],
)
def test_the_recorded_status_of_a_command_is_run_command_s_rule(
    counts: dict[RunStatus, int], status: RunStatus
) -> None:
    assert recorded_status(CommandState(COMMAND, counts=counts)) is status


def _stubbed_lookup(response: dict[str, object]) -> tuple[SsmCommandLookup, Stubber]:
    ssm = boto3.client("ssm", region_name="us-east-1")
    stubber = Stubber(ssm)  # checks request and response against botocore's model of ListCommands
    stubber.add_response("list_commands", response, {"CommandId": COMMAND})
    stubber.activate()
    return SsmCommandLookup(ssm), stubber


def test_the_command_s_progress_is_one_list_commands_call() -> None:
    lookup, stubber = _stubbed_lookup(
        {
            "Commands": [
                {
                    "CommandId": COMMAND,
                    "Status": "Failed",
                    "TargetCount": 3,
                    "CompletedCount": 3,
                    "ErrorCount": 1,
                    "DeliveryTimedOutCount": 0,
                }
            ]
        }
    )

    assert lookup.progress(COMMAND) == CommandProgress(
        RunStatus.FAILED, target_count=3, completed_count=3, error_count=1
    )
    stubber.assert_no_pending_responses()


def test_an_unknown_command_has_no_progress() -> None:
    lookup, _ = _stubbed_lookup({"Commands": []})
    assert lookup.progress(COMMAND) is None

    ssm = boto3.client("ssm", region_name="us-east-1")
    with Stubber(ssm) as stubber:
        stubber.add_client_error("list_commands", "InvalidCommandId")
        assert SsmCommandLookup(ssm).progress(COMMAND) is None


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
def test_config_reads_the_template_s_variables_with_defaults() -> None:
    minimal = {
        k: v for k, v in COLLECTOR_ENV.items() if not k.startswith(("COMMAND_HISTORY", "ALERT_COOL", "MAX_"))
    }

    config = load_collector_config(minimal)

    assert (config.history_days, config.alert_cooldown_seconds, config.max_alerts_per_command) == (90, 900, 4)
    assert config.region == "us-east-1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"COMMAND_STATUS_TABLE_NAME": ""}, "COMMAND_STATUS_TABLE_NAME is not set"),
        ({"AWS_REGION": ""}, "AWS_REGION is not set"),
        ({"ALERT_COOLDOWN_SECONDS": "3600"}, "alert_cooldown_seconds"),
        ({"ALERT_TOPIC_ARN": "not-an-arn"}, "alert_topic_arn"),
    ],
)
def test_config_errors_are_one_clear_message(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_collector_config({**COLLECTOR_ENV, **change})
