"""The reconciler's environment, validated once at cold start: its own settings and the stack's
defaults for every group's window (validated as a whole, as a group's override is).

A missing or bad variable is one clear error naming the variable, not a KeyError deep inside a
handler. Nothing here reads ``os.environ`` at import time: the handler calls the loader lazily.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from tagpatch.models.environment import ConfigError, Environment, TableName, load_environment
from tagpatch.reconciler.settings import GroupSettings, InvalidSettings, parse_settings

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


class ReconcilerConfig(Environment):
    """Reconciler: its own settings, and the stack's defaults for every group (``DEFAULT_*``)."""

    stack_name: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(alias="STACK_NAME")
    tag_key: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(alias="TAG_KEY")
    groups_table_name: TableName = Field(alias="GROUPS_TABLE_NAME")
    group_settings_prefix: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_.\-/]+/\Z")] = Field(
        alias="GROUP_SETTINGS_PREFIX"
    )
    delete_empty_group_windows: bool = Field(default=False, alias="DELETE_EMPTY_GROUP_WINDOWS")
    # Admission (issue 12 item 2): SSM's default quota is 50 maintenance windows per account and
    # Region, shared with every other team (Service Quotas, "Systems Manager endpoints and
    # quotas": https://docs.aws.amazon.com/general/latest/gr/ssm.html).
    max_groups: int = Field(default=1000, ge=1, le=100_000, alias="MAX_GROUPS")
    # Issue 13: windows are shared by groups with equal window settings, within SSM's quotas
    # (same page): 50 windows per account, 20 tasks and 100 targets per window, 25 patch groups
    # per patch baseline, 5 window executions at once. Stack parameters with AWS's defaults, for
    # an account whose quotas were raised (or that other teams' windows share).
    max_windows: int = Field(default=50, ge=1, le=10_000, alias="MAX_WINDOWS")
    max_tasks_per_window: int = Field(default=20, ge=1, le=1000, alias="MAX_TASKS_PER_WINDOW")
    max_targets_per_window: int = Field(default=100, ge=1, le=10_000, alias="MAX_TARGETS_PER_WINDOW")
    max_groups_per_baseline: int = Field(default=25, ge=1, le=10_000, alias="MAX_GROUPS_PER_BASELINE")
    concurrent_executions: int = Field(default=5, ge=1, le=1000, alias="CONCURRENT_WINDOW_EXECUTIONS")
    stagger_slots: int = Field(default=0, ge=0, le=48, alias="STAGGER_SLOTS")
    group_name_pattern: str = Field(default="", max_length=1024, alias="GROUP_NAME_PATTERN")
    empty_group_window_days: int = Field(default=30, ge=0, le=3650, alias="EMPTY_GROUP_WINDOW_DAYS")
    defaults: GroupSettings

    @property
    def window_capacity(self) -> int:
        """Groups per shared window: each takes one task and one target of it."""
        return min(self.max_tasks_per_window, self.max_targets_per_window)

    @field_validator("group_name_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from error
        return value


def load_reconciler_config(environ: Mapping[str, str]) -> ReconcilerConfig:
    """The reconciler's settings; the ``DEFAULT_*`` variables are validated as one group's settings."""
    missing = [
        variable
        for variable in DEFAULT_SETTINGS_ENV
        if variable not in _OPTIONAL_ENV and not environ.get(variable, "")
    ]
    if missing:
        raise ConfigError(f"environment variable {missing[0]} is not set")
    raw: dict[str, Any] = {
        field: environ[variable]
        for variable, field in DEFAULT_SETTINGS_ENV.items()
        if environ.get(variable, "")
    }
    try:
        defaults = parse_settings(raw)
    except InvalidSettings as error:
        raise ConfigError(f"stack defaults are invalid: {error}") from error
    return load_environment(ReconcilerConfig, environ, "reconciler", defaults=defaults)
