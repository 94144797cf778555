"""The status collector's environment, one model validated at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, StringConstraints

from tagpatch.models.environment import ConfigError, Environment, SnsTopicArn, TableName, load_environment

__all__ = ["CollectorConfig", "ConfigError", "load_collector_config"]


class CollectorConfig(Environment):
    """Status collector: Run Command notifications -> CommandStatusTable, AlertTopic."""

    stack_name: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(alias="STACK_NAME")
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d\Z")] = Field(alias="AWS_REGION")
    table_name: TableName = Field(alias="COMMAND_STATUS_TABLE_NAME")
    groups_table_name: TableName = Field(alias="GROUPS_TABLE_NAME")
    alert_topic_arn: SnsTopicArn = Field(alias="ALERT_TOPIC_ARN")
    status_queue_url: Annotated[str, StringConstraints(pattern=r"^https://\S+/\d{12}/\S+\Z")] = Field(
        alias="STATUS_QUEUE_URL"
    )
    history_days: int = Field(default=90, ge=1, le=36500, alias="COMMAND_HISTORY_DAYS")
    # a flush is an SQS delay: at most 900 s
    alert_cooldown_seconds: int = Field(default=900, ge=60, le=900, alias="ALERT_COOLDOWN_SECONDS")
    max_alerts_per_command: int = Field(default=4, ge=1, le=100, alias="MAX_ALERTS_PER_COMMAND")


def load_collector_config(environ: Mapping[str, str]) -> CollectorConfig:
    return load_environment(CollectorConfig, environ, "status collector")
