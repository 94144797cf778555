"""The compliance reporter's configuration: its pydantic model, setting by setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tagpatch.models.environment import ConfigError
from tagpatch.reporter.config import ReporterConfig, load_reporter_config

TOPIC = "arn:aws:sns:us-east-1:123456789012:tagpatch-AlertTopic"
ENV = {
    "TAG_KEY": "PatchGroup",
    "GROUPS_TABLE_NAME": "tagpatch-groups",
    "COMPLIANCE_TABLE_NAME": "tagpatch-compliance",
    "ALERT_TOPIC_ARN": TOPIC,
    "COMPLIANCE_HISTORY_DAYS": "30",
}


def test_the_environment_is_read_into_typed_frozen_settings() -> None:
    config = load_reporter_config(ENV)

    assert config == ReporterConfig(
        tag_key="PatchGroup",
        groups_table_name="tagpatch-groups",
        compliance_table_name="tagpatch-compliance",
        alert_topic_arn=TOPIC,
        history_days=30,
    )
    with pytest.raises(ValidationError, match="frozen"):
        config.history_days = 1  # type: ignore[misc]


@pytest.mark.parametrize("empty", [None, ""])
def test_history_days_defaults_to_400(empty: str | None) -> None:
    environ = {k: v for k, v in ENV.items() if k != "COMPLIANCE_HISTORY_DAYS"}
    if empty is not None:
        environ["COMPLIANCE_HISTORY_DAYS"] = empty

    assert load_reporter_config(environ).history_days == 400


@pytest.mark.parametrize(
    "variable", ["TAG_KEY", "GROUPS_TABLE_NAME", "COMPLIANCE_TABLE_NAME", "ALERT_TOPIC_ARN"]
)
@pytest.mark.parametrize("empty", [None, ""])
def test_each_required_variable_is_required(variable: str, empty: str | None) -> None:
    environ = {k: v for k, v in ENV.items() if k != variable}
    if empty is not None:
        environ[variable] = empty

    with pytest.raises(ConfigError, match=f"^environment variable {variable} is not set$"):
        load_reporter_config(environ)


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("TAG_KEY", "k" * 129, "tag_key"),
        ("GROUPS_TABLE_NAME", "ab", "groups_table_name"),
        ("GROUPS_TABLE_NAME", "t" * 256, "groups_table_name"),
        ("COMPLIANCE_TABLE_NAME", "ab", "compliance_table_name"),
        ("COMPLIANCE_TABLE_NAME", "t" * 256, "compliance_table_name"),
        ("ALERT_TOPIC_ARN", "not-an-arn", "alert_topic_arn"),
        ("ALERT_TOPIC_ARN", TOPIC.replace("123456789012", "1234"), "alert_topic_arn"),
        ("ALERT_TOPIC_ARN", TOPIC.replace(":sns:", ":sqs:"), "alert_topic_arn"),
        ("ALERT_TOPIC_ARN", TOPIC + ".fifo", "alert_topic_arn"),
        ("ALERT_TOPIC_ARN", TOPIC + "\n", "alert_topic_arn"),
        ("ALERT_TOPIC_ARN", "x" + TOPIC, "alert_topic_arn"),
        ("COMPLIANCE_HISTORY_DAYS", "0", "history_days"),
        ("COMPLIANCE_HISTORY_DAYS", "36501", "history_days"),
        ("COMPLIANCE_HISTORY_DAYS", "four hundred", "history_days"),
        ("COMPLIANCE_HISTORY_DAYS", "400.5", "history_days"),
    ],
)
def test_each_bad_value_is_one_error_naming_the_setting_and_its_variable(
    variable: str, value: str, field: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_reporter_config({**ENV, variable: value})

    assert str(refused.value).startswith(f"compliance reporter environment is invalid: {field} ({variable}=")
    assert ";" not in str(refused.value)  # only that one


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TAG_KEY", "k"),
        ("TAG_KEY", "k" * 128),
        ("GROUPS_TABLE_NAME", "abc"),
        ("GROUPS_TABLE_NAME", "t" * 255),
        ("COMPLIANCE_TABLE_NAME", "abc"),
        ("COMPLIANCE_TABLE_NAME", "t" * 255),
        ("ALERT_TOPIC_ARN", "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t"),
        ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:" + "t" * 256),
        ("COMPLIANCE_HISTORY_DAYS", "1"),
        ("COMPLIANCE_HISTORY_DAYS", "36500"),
        ("COMPLIANCE_HISTORY_DAYS", " 400.0 "),
    ],
)
def test_the_boundaries_are_accepted(variable: str, value: str) -> None:
    config = load_reporter_config({**ENV, variable: value})

    assert config.history_days == (int(float(value)) if variable == "COMPLIANCE_HISTORY_DAYS" else 30)


def test_every_bad_setting_is_in_the_one_error() -> None:
    with pytest.raises(ConfigError) as refused:
        load_reporter_config({**ENV, "TAG_KEY": "k" * 129, "COMPLIANCE_HISTORY_DAYS": "0"})

    assert str(refused.value) == (
        "compliance reporter environment is invalid: "
        f"tag_key (TAG_KEY='{'k' * 129}'): String should have at most 128 characters; "
        "history_days (COMPLIANCE_HISTORY_DAYS='0'): Input should be greater than or equal to 1"
    )
