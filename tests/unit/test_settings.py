import json

import pytest

from emulator.scenarios.settings import RECONCILER_ENV
from tagpatch.models.environment import ConfigError
from tagpatch.reconciler.config import load_reconciler_config
from tagpatch.reconciler.settings import InvalidSettings, parse_override
from tests.support.settings import default_settings


def test_stack_defaults_load_from_the_environment() -> None:
    config = load_reconciler_config(RECONCILER_ENV)
    assert config.defaults.duration == 4
    assert config.defaults.notification_events == ("All",)
    assert config.defaults.scan_schedule is None
    assert config.defaults.patch_baseline_id is None
    assert config.delete_empty_group_windows is False


def test_missing_variable_is_one_clear_error() -> None:
    env = {k: v for k, v in RECONCILER_ENV.items() if k != "GROUPS_TABLE_NAME"}
    with pytest.raises(ConfigError, match="GROUPS_TABLE_NAME is not set"):
        load_reconciler_config(env)


def test_invalid_stack_default_is_refused_at_cold_start() -> None:
    with pytest.raises(ConfigError, match="stack defaults are invalid: duration"):
        load_reconciler_config({**RECONCILER_ENV, "DEFAULT_DURATION": "25"})


def test_override_replaces_only_what_it_names() -> None:
    settings = default_settings().overridden(
        {"schedule": "cron(0 2 ? * TUE#2 *)", "scheduleOffset": 2, "scheduleTimezone": "Europe/Berlin"}
    )
    assert settings.schedule == "cron(0 2 ? * TUE#2 *)"
    assert settings.schedule_offset == 2
    assert settings.schedule_timezone == "Europe/Berlin"
    assert settings.duration == 4


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"duration": 25}, "duration: Input should be less than or equal to 24"),
        ({"cutoff": 4}, "cutoff (4h) must be less than duration (4h)"),
        ({"duration": 2, "cutoff": 3}, "must be less than duration"),
        ({"schedule": "cron(0 3 * * * *)"}, "schedule: exactly one of day-of-month and day-of-week"),
        ({"maxConcurrency": "0"}, "maxConcurrency: String should match pattern"),
        ({"maxErrors": "101%"}, "maxErrors: String should match pattern"),
        ({"timeoutSeconds": 10}, "timeoutSeconds: Input should be greater than or equal to 30"),
        ({"scheduleTimezone": "Mars/Olympus"}, "is not an IANA time zone name"),
        ({"scheduleOffset": 2, "schedule": "rate(7 days)"}, "scheduleOffset applies to cron schedules only"),
        ({"operation": "Patch"}, "operation: Input should be 'Scan' or 'Install'"),
        ({"notificationEvents": ["All", "Failed"]}, "'All' cannot be combined"),
        ({"notificationEvents": ["Canceled"]}, "notificationEvents.0"),
        ({"comment": "x" * 101}, "comment: String should have at most 100 characters"),
        ({"patchBaselineId": "pb-1"}, "patchBaselineId: String should match pattern"),
        ({"serviceRoleArn": "role"}, "serviceRoleArn: String should match pattern"),
        ({"scanSchedule": "weekly"}, "scanSchedule: 'weekly' is not cron"),
    ],
)
def test_invalid_overrides_are_refused_with_reasons(override: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidSettings) as refused:
        default_settings().overridden(override)
    assert any(reason in item for item in refused.value.reasons), refused.value.reasons


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidSettings) as refused:
        default_settings().overridden({"duration": 30, "maxConcurrency": "0", "operation": "x"})
    assert len(refused.value.reasons) == 3


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "override is not JSON"),
        ("[1, 2]", "override must be a JSON object, got list"),
        ('{"duraton": 3}', "unknown setting 'duraton'"),
        # a bare ValueError from int() before the fix (only JSONDecodeError was caught)
        ('{"duration": ' + "9" * 5000 + "}", "override is not usable JSON"),
        # RecursionError (3.11) or a depth refusal: refused the same way on every Python
        ('{"comment": ' + "[" * 5000 + "]" * 5000 + "}", "override nests 5001 levels deep"),
        ('{"comment": ' + "[" * 8 + "]" * 8 + "}", "override nests 9 levels deep; at most 8"),
    ],
)
def test_override_text_is_checked(text: str, reason: str) -> None:
    with pytest.raises(InvalidSettings, match=reason):
        parse_override(text)


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = json.dumps({"comment": '\\"[[[[[[[[[[[[' + "{" * 20})
    assert parse_override(text) == json.loads(text)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("notificationTopicArn", "arn:aws:sns:us-east-1:123456789012:elsewhere"),
        ("notificationRoleArn", "arn:aws:iam::123456789012:role/other"),
        ("outputBucket", "another-bucket"),
        ("outputPrefix", "elsewhere"),
    ],
)
def test_overrides_the_stack_grants_nothing_for_are_refused(key: str, value: str) -> None:
    # The notification role may publish only to the stack's topic, the topic's policy admits only
    # that role, and instances may write only under the stack's bucket and prefix: such an
    # override would register cleanly and then break every run of the group without a word.
    with pytest.raises(InvalidSettings) as refused:
        parse_override(json.dumps({key: value, "duration": 3}))
    (reason,) = refused.value.reasons
    assert reason.startswith(f"{key}: fixed to the stack's")


def test_unknown_setting_message_does_not_offer_the_stack_only_ones() -> None:
    with pytest.raises(InvalidSettings) as refused:
        parse_override('{"duraton": 3}')
    assert "duration" in refused.value.reasons[0]
    stack_only = ("notificationTopicArn", "notificationRoleArn", "outputBucket", "outputPrefix")
    assert not any(key in refused.value.reasons[0] for key in stack_only)


def test_empty_strings_mean_unset_for_optional_settings() -> None:
    settings = default_settings(scanSchedule="", patchBaselineId="", description="")
    assert (settings.scan_schedule, settings.patch_baseline_id, settings.description) == (None, None, None)


def test_a_baseline_arn_is_kept_as_its_id() -> None:
    arn = "arn:aws:ssm:us-east-2:733109147000:patchbaseline/pb-0e392de35e7c563b7"
    assert default_settings().overridden({"patchBaselineId": arn}).patch_baseline_id == "pb-0e392de35e7c563b7"
    assert default_settings().overridden({"patchBaselineId": "pb-0123456789abcdef0"}).patch_baseline_id == (
        "pb-0123456789abcdef0"
    )
