"""Environment of each function, validated once at cold start into typed settings.

A missing or bad variable is one clear error naming the variable, not a KeyError deep inside a
handler. Nothing here reads ``os.environ`` at import time: handlers call the loaders lazily.

Each function uses one of these models, so they are built (``defer_build``) by their loader, the
only code that validates them, rather than at import: a function's cold start does not build the
other functions' configuration. For the same reason the group settings (a module and a large model
that only the reconciler uses) are imported by the reconciler's loader, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from tagpatch.settings import GroupSettings

_M = TypeVar("_M", bound=BaseModel)


class ConfigError(RuntimeError):
    """The function's environment is incomplete or invalid."""


# Stack Parameter -> environment variable -> settings field (camelCase alias).
DEFAULT_SETTINGS_ENV: dict[str, str] = {
    "DEFAULT_SCHEDULE": "schedule",
    "DEFAULT_SCHEDULE_TIMEZONE": "scheduleTimezone",
    "DEFAULT_SCHEDULE_OFFSET": "scheduleOffset",
    "DEFAULT_DURATION": "duration",
    "DEFAULT_CUTOFF": "cutoff",
    "DEFAULT_PRIORITY": "priority",
    "DEFAULT_MAX_CONCURRENCY": "maxConcurrency",
    "DEFAULT_MAX_ERRORS": "maxErrors",
    "DEFAULT_OPERATION": "operation",
    "DEFAULT_REBOOT_OPTION": "rebootOption",
    "DEFAULT_TIMEOUT_SECONDS": "timeoutSeconds",
    "DEFAULT_COMMENT": "comment",
    "DEFAULT_TARGET_OWNER_INFORMATION": "targetOwnerInformation",
    "DEFAULT_OUTPUT_PREFIX": "outputPrefix",
    "DEFAULT_NOTIFICATION_EVENTS": "notificationEvents",
    "DEFAULT_NOTIFICATION_TYPE": "notificationType",
    "DEFAULT_SCAN_SCHEDULE": "scanSchedule",
    "DEFAULT_PATCH_BASELINE_ID": "patchBaselineId",
    "MAINTENANCE_WINDOW_ROLE_ARN": "serviceRoleArn",
    "OUTPUT_BUCKET": "outputBucket",
    "NOTIFICATION_TOPIC_ARN": "notificationTopicArn",
    "NOTIFICATION_ROLE_ARN": "notificationRoleArn",
}
_OPTIONAL_ENV = {
    "DEFAULT_SCHEDULE_OFFSET",
    "DEFAULT_COMMENT",
    "DEFAULT_SCAN_SCHEDULE",
    "DEFAULT_PATCH_BASELINE_ID",
}


class ReconcilerConfig(BaseModel):
    # Completed by load_reconciler_config, which imports GroupSettings.
    model_config = ConfigDict(frozen=True, defer_build=True)

    stack_name: str = Field(min_length=1, max_length=128)
    tag_key: str = Field(min_length=1, max_length=128)
    groups_table_name: str = Field(min_length=3, max_length=255)
    group_settings_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]+/$")
    delete_empty_group_windows: bool = False
    defaults: GroupSettings


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def _validated(model: type[_M], values: dict[str, Any], what: str) -> _M:
    """``values`` as ``model``, or one :class:`ConfigError` naming the function and every problem."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ConfigError(f"{what} environment is invalid: {error}") from error


def load_reconciler_config(environ: Mapping[str, str]) -> ReconcilerConfig:
    # The reconciler's modules have imported the settings at cold start already: this is a lookup.
    from tagpatch.settings import GroupSettings, InvalidSettings, parse_settings  # noqa: PLC0415

    ReconcilerConfig.model_rebuild(_types_namespace={"GroupSettings": GroupSettings})
    raw: dict[str, Any] = {}
    for variable, field in DEFAULT_SETTINGS_ENV.items():
        if variable in _OPTIONAL_ENV:
            if environ.get(variable, ""):
                raw[field] = environ[variable]
        else:
            raw[field] = _require(environ, variable)
    try:
        defaults = parse_settings(raw)
    except InvalidSettings as error:
        raise ConfigError(f"stack defaults are invalid: {error}") from error
    values = {
        "stack_name": _require(environ, "STACK_NAME"),
        "tag_key": _require(environ, "TAG_KEY"),
        "groups_table_name": _require(environ, "GROUPS_TABLE_NAME"),
        "group_settings_prefix": _require(environ, "GROUP_SETTINGS_PREFIX"),
        "delete_empty_group_windows": environ.get("DELETE_EMPTY_GROUP_WINDOWS", "false").lower() == "true",
        "defaults": defaults,
    }
    return _validated(ReconcilerConfig, values, "reconciler")


# --- Compliance reporter --------------------------------------------------------------------
class ReporterConfig(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    tag_key: str = Field(min_length=1, max_length=128)
    groups_table_name: str = Field(min_length=3, max_length=255)
    compliance_table_name: str = Field(min_length=3, max_length=255)
    alert_topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
    history_days: int = Field(400, ge=1, le=36500)


def load_reporter_config(environ: Mapping[str, str]) -> ReporterConfig:
    return _validated(
        ReporterConfig,
        {
            "tag_key": _require(environ, "TAG_KEY"),
            "groups_table_name": _require(environ, "GROUPS_TABLE_NAME"),
            "compliance_table_name": _require(environ, "COMPLIANCE_TABLE_NAME"),
            "alert_topic_arn": _require(environ, "ALERT_TOPIC_ARN"),
            "history_days": environ.get("COMPLIANCE_HISTORY_DAYS", "") or 400,
        },
        "compliance reporter",
    )


class CollectorConfig(BaseModel):
    """Status collector: Run Command notifications -> CommandStatusTable, AlertTopic."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    stack_name: str = Field(min_length=1, max_length=128)
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    table_name: str = Field(min_length=3, max_length=255)
    groups_table_name: str = Field(min_length=3, max_length=255)
    alert_topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
    status_queue_url: str = Field(pattern=r"^https://\S+/\d{12}/\S+$")
    history_days: int = Field(90, ge=1, le=36500)
    alert_cooldown_seconds: int = Field(900, ge=60, le=900)  # a flush is an SQS delay: at most 900 s
    max_alerts_per_command: int = Field(4, ge=1, le=100)


def load_collector_config(environ: Mapping[str, str]) -> CollectorConfig:
    return _validated(
        CollectorConfig,
        {
            "stack_name": _require(environ, "STACK_NAME"),
            "region": _require(environ, "AWS_REGION"),
            "table_name": _require(environ, "COMMAND_STATUS_TABLE_NAME"),
            "groups_table_name": _require(environ, "GROUPS_TABLE_NAME"),
            "alert_topic_arn": _require(environ, "ALERT_TOPIC_ARN"),
            "status_queue_url": _require(environ, "STATUS_QUEUE_URL"),
            "history_days": environ.get("COMMAND_HISTORY_DAYS", "") or 90,
            "alert_cooldown_seconds": environ.get("ALERT_COOLDOWN_SECONDS", "") or 900,
            "max_alerts_per_command": environ.get("MAX_ALERTS_PER_COMMAND", "") or 4,
        },
        "status collector",
    )
