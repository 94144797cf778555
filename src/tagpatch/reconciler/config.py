"""The reconciler's environment, validated once at cold start: its own settings and the stack's
defaults for every group's window (validated as a whole, as a group's override is).

A missing or bad variable is one clear error naming the variable, not a KeyError deep inside a
handler. Nothing here reads ``os.environ`` at import time: the handler calls the loader lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tagpatch.models.environment import ConfigError, require
from tagpatch.reconciler.settings import GroupSettings, InvalidSettings, parse_settings

_M = TypeVar("_M", bound=BaseModel)


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
    model_config = ConfigDict(frozen=True)

    stack_name: str = Field(min_length=1, max_length=128)
    tag_key: str = Field(min_length=1, max_length=128)
    groups_table_name: str = Field(min_length=3, max_length=255)
    group_settings_prefix: str = Field(pattern=r"^/[A-Za-z0-9_.\-/]+/$")
    delete_empty_group_windows: bool = False
    defaults: GroupSettings


def _validated(model: type[_M], values: dict[str, Any], what: str) -> _M:
    """``values`` as ``model``, or one :class:`ConfigError` naming the function and every problem."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ConfigError(f"{what} environment is invalid: {error}") from error


def load_reconciler_config(environ: Mapping[str, str]) -> ReconcilerConfig:
    raw: dict[str, Any] = {}
    for variable, field in DEFAULT_SETTINGS_ENV.items():
        if variable in _OPTIONAL_ENV:
            if environ.get(variable, ""):
                raw[field] = environ[variable]
        else:
            raw[field] = require(environ, variable)
    try:
        defaults = parse_settings(raw)
    except InvalidSettings as error:
        raise ConfigError(f"stack defaults are invalid: {error}") from error
    values = {
        "stack_name": require(environ, "STACK_NAME"),
        "tag_key": require(environ, "TAG_KEY"),
        "groups_table_name": require(environ, "GROUPS_TABLE_NAME"),
        "group_settings_prefix": require(environ, "GROUP_SETTINGS_PREFIX"),
        "delete_empty_group_windows": environ.get("DELETE_EMPTY_GROUP_WINDOWS", "false").lower() == "true",
        "defaults": defaults,
    }
    return _validated(ReconcilerConfig, values, "reconciler")
