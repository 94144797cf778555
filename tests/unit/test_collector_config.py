"""The status collector's configuration: its pydantic model, setting by setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emulator.scenarios.collector import COLLECTOR_ENV
from tagpatch.collector.config import ConfigError, load_collector_config


def test_the_environment_is_read_into_typed_frozen_settings() -> None:
    config = load_collector_config(
        {
            **COLLECTOR_ENV,
            "COMMAND_HISTORY_DAYS": " 30 ",
            "ALERT_COOLDOWN_SECONDS": "60",
            "MAX_ALERTS_PER_COMMAND": "1_0",
        }
    )

    assert (config.history_days, config.alert_cooldown_seconds, config.max_alerts_per_command) == (30, 60, 10)
    assert config.status_queue_url == COLLECTOR_ENV["STATUS_QUEUE_URL"]
    with pytest.raises(ValidationError, match="frozen"):
        config.history_days = 1  # type: ignore[misc]


@pytest.mark.parametrize("empty", [None, ""])
def test_the_optional_variables_default(empty: str | None) -> None:
    optional = ("COMMAND_HISTORY_DAYS", "ALERT_COOLDOWN_SECONDS", "MAX_ALERTS_PER_COMMAND")
    environ = {k: v for k, v in COLLECTOR_ENV.items() if k not in optional}
    if empty is not None:
        environ.update(dict.fromkeys(optional, empty))

    config = load_collector_config(environ)

    assert (config.history_days, config.alert_cooldown_seconds, config.max_alerts_per_command) == (90, 900, 4)


@pytest.mark.parametrize(
    "variable",
    [
        "STACK_NAME",
        "AWS_REGION",
        "COMMAND_STATUS_TABLE_NAME",
        "GROUPS_TABLE_NAME",
        "ALERT_TOPIC_ARN",
        "STATUS_QUEUE_URL",
    ],
)
def test_each_required_variable_is_required(variable: str) -> None:
    environ = {k: v for k, v in COLLECTOR_ENV.items() if k != variable}

    with pytest.raises(ConfigError, match=f"^environment variable {variable} is not set$"):
        load_collector_config(environ)


TOPIC = "arn:aws:sns:us-east-1:123456789012:tagpatch-AlertTopic"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/tagpatch-StatusQueue"


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("STACK_NAME", "s" * 129, "stack_name"),
        ("AWS_REGION", "us-east", "region"),
        ("AWS_REGION", "US-EAST-1", "region"),
        ("AWS_REGION", "us-east-1\n", "region"),
        ("COMMAND_STATUS_TABLE_NAME", "ab", "table_name"),
        ("COMMAND_STATUS_TABLE_NAME", "t" * 256, "table_name"),
        ("GROUPS_TABLE_NAME", "ab", "groups_table_name"),
        ("GROUPS_TABLE_NAME", "t" * 256, "groups_table_name"),
        ("ALERT_TOPIC_ARN", "not-an-arn", "alert_topic_arn"),
        ("ALERT_TOPIC_ARN", TOPIC.replace("123456789012", "1234"), "alert_topic_arn"),
        ("ALERT_TOPIC_ARN", TOPIC + ".fifo", "alert_topic_arn"),
        ("ALERT_TOPIC_ARN", TOPIC + "\n", "alert_topic_arn"),
        ("STATUS_QUEUE_URL", QUEUE.replace("https", "http"), "status_queue_url"),
        ("STATUS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/tagpatch-StatusQueue", "status_queue_url"),
        ("STATUS_QUEUE_URL", QUEUE + " x", "status_queue_url"),
        ("COMMAND_HISTORY_DAYS", "0", "history_days"),
        ("COMMAND_HISTORY_DAYS", "36501", "history_days"),
        ("COMMAND_HISTORY_DAYS", "ninety", "history_days"),
        ("COMMAND_HISTORY_DAYS", "90.5", "history_days"),
        ("ALERT_COOLDOWN_SECONDS", "59", "alert_cooldown_seconds"),
        ("ALERT_COOLDOWN_SECONDS", "3600", "alert_cooldown_seconds"),
        ("MAX_ALERTS_PER_COMMAND", "0", "max_alerts_per_command"),
        ("MAX_ALERTS_PER_COMMAND", "101", "max_alerts_per_command"),
    ],
)
def test_each_bad_value_is_one_error_naming_the_setting_and_its_variable(
    variable: str, value: str, field: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_collector_config({**COLLECTOR_ENV, variable: value})

    assert str(refused.value).startswith(f"status collector environment is invalid: {field} ({variable}=")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STACK_NAME", "s"),
        ("STACK_NAME", "s" * 128),
        ("AWS_REGION", "us-gov-west-1"),
        ("COMMAND_STATUS_TABLE_NAME", "abc"),
        ("GROUPS_TABLE_NAME", "t" * 255),
        ("ALERT_TOPIC_ARN", "arn:aws-cn:sns:cn-north-1:123456789012:t"),
        ("COMMAND_HISTORY_DAYS", "1"),
        ("COMMAND_HISTORY_DAYS", "36500"),
        ("COMMAND_HISTORY_DAYS", "90.0"),
        ("ALERT_COOLDOWN_SECONDS", "900"),
        ("MAX_ALERTS_PER_COMMAND", "100"),
    ],
)
def test_the_boundaries_are_accepted(variable: str, value: str) -> None:
    load_collector_config({**COLLECTOR_ENV, variable: value})


def test_every_bad_setting_is_in_the_one_error() -> None:
    with pytest.raises(ConfigError) as refused:
        load_collector_config({**COLLECTOR_ENV, "AWS_REGION": "nowhere", "MAX_ALERTS_PER_COMMAND": "0"})

    assert "region (AWS_REGION='nowhere'): String should match pattern" in str(refused.value)
    assert (
        "max_alerts_per_command (MAX_ALERTS_PER_COMMAND='0'): Input should be greater than or equal to 1"
        in str(refused.value)
    )
