"""The compliance reporter's environment, validated once at cold start into typed settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tagpatch.models.environment import SNS_TOPIC_ARN, TABLE_NAME, EnvFields, integer, load_fields, text

_REPORTER_FIELDS: EnvFields = {
    "tag_key": ("TAG_KEY", text(1, 128), None),
    "groups_table_name": ("GROUPS_TABLE_NAME", TABLE_NAME, None),
    "compliance_table_name": ("COMPLIANCE_TABLE_NAME", TABLE_NAME, None),
    "alert_topic_arn": ("ALERT_TOPIC_ARN", text(pattern=SNS_TOPIC_ARN), None),
    "history_days": ("COMPLIANCE_HISTORY_DAYS", integer(1, 36500), "400"),
}


@dataclass(frozen=True, kw_only=True)
class ReporterConfig:
    """Compliance reporter: patch states -> ComplianceTable, the digest on AlertTopic."""

    tag_key: str
    groups_table_name: str
    compliance_table_name: str
    alert_topic_arn: str
    history_days: int = 400


def load_reporter_config(environ: Mapping[str, str]) -> ReporterConfig:
    return ReporterConfig(**load_fields(environ, _REPORTER_FIELDS, "compliance reporter"))
