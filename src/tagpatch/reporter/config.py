"""The compliance reporter's environment, one model validated at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, StringConstraints

from tagpatch.models.environment import Environment, SnsTopicArn, TableName, load_environment

QueueUrl = Annotated[str, StringConstraints(pattern=r"^https://\S+/\d{12}/\S+\Z")]


class ReporterConfig(Environment):
    """Compliance reporter: patch states -> ComplianceTable, the digest on AlertTopic.

    With ``REPORT_QUEUE_URL`` (the stack always sets it) a run for every group fans out through the
    report queue; without it (tests, ``benchmarks/reporter_calls.py``) it runs in the invocation.
    """

    tag_key: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(alias="TAG_KEY")
    groups_table_name: TableName = Field(alias="GROUPS_TABLE_NAME")
    compliance_table_name: TableName = Field(alias="COMPLIANCE_TABLE_NAME")
    alert_topic_arn: SnsTopicArn = Field(alias="ALERT_TOPIC_ARN")
    history_days: int = Field(default=400, ge=1, le=36500, alias="COMPLIANCE_HISTORY_DAYS")
    report_queue_url: QueueUrl | None = Field(default=None, alias="REPORT_QUEUE_URL")
    # Below a day, so a run's digest is out before the next daily run plans.
    deadline_minutes: int = Field(default=180, ge=30, le=1380, alias="COMPLIANCE_DEADLINE_MINUTES")


def load_reporter_config(environ: Mapping[str, str]) -> ReporterConfig:
    return load_environment(ReporterConfig, environ, "compliance reporter")
