"""The compliance reporter's environment, one model validated at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, StringConstraints

from tagpatch.models.environment import Environment, SnsTopicArn, TableName, load_environment


class ReporterConfig(Environment):
    """Compliance reporter: patch states -> ComplianceTable, the digest on AlertTopic."""

    tag_key: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(alias="TAG_KEY")
    groups_table_name: TableName = Field(alias="GROUPS_TABLE_NAME")
    compliance_table_name: TableName = Field(alias="COMPLIANCE_TABLE_NAME")
    alert_topic_arn: SnsTopicArn = Field(alias="ALERT_TOPIC_ARN")
    history_days: int = Field(default=400, ge=1, le=36500, alias="COMPLIANCE_HISTORY_DAYS")


def load_reporter_config(environ: Mapping[str, str]) -> ReporterConfig:
    return load_environment(ReporterConfig, environ, "compliance reporter")
