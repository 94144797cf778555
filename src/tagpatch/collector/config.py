"""The status collector's environment, validated once at cold start into typed settings.

Apart from :mod:`tagpatch.config` and without pydantic, with the checks of :mod:`tagpatch.envconfig`:
a bad environment is one :class:`ConfigError` naming every bad setting and its variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tagpatch.models.environment import (
    SNS_TOPIC_ARN,
    TABLE_NAME,
    ConfigError,
    EnvFields,
    integer,
    load_fields,
    text,
)

__all__ = ["CollectorConfig", "ConfigError", "load_collector_config"]

_FIELDS: EnvFields = {
    "stack_name": ("STACK_NAME", text(1, 128), None),
    "region": ("AWS_REGION", text(pattern=r"^[a-z]{2}(-[a-z]+)+-\d\Z"), None),
    "table_name": ("COMMAND_STATUS_TABLE_NAME", TABLE_NAME, None),
    "groups_table_name": ("GROUPS_TABLE_NAME", TABLE_NAME, None),
    "alert_topic_arn": ("ALERT_TOPIC_ARN", text(pattern=SNS_TOPIC_ARN), None),
    "status_queue_url": ("STATUS_QUEUE_URL", text(pattern=r"^https://\S+/\d{12}/\S+\Z"), None),
    "history_days": ("COMMAND_HISTORY_DAYS", integer(1, 36500), "90"),
    # a flush is an SQS delay: at most 900 s
    "alert_cooldown_seconds": ("ALERT_COOLDOWN_SECONDS", integer(60, 900), "900"),
    "max_alerts_per_command": ("MAX_ALERTS_PER_COMMAND", integer(1, 100), "4"),
}


@dataclass(frozen=True, kw_only=True)
class CollectorConfig:
    """Status collector: Run Command notifications -> CommandStatusTable, AlertTopic."""

    stack_name: str
    region: str
    table_name: str
    groups_table_name: str
    alert_topic_arn: str
    status_queue_url: str
    history_days: int = 90
    alert_cooldown_seconds: int = 900
    max_alerts_per_command: int = 4


def load_collector_config(environ: Mapping[str, str]) -> CollectorConfig:
    return CollectorConfig(**load_fields(environ, _FIELDS, "status collector"))
