"""The hub's two functions' environments (hub/template.yaml sets them; names fixed by the spec)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from tagpatch.models.environment import Environment, SnsTopicArn, TableName, load_environment


class HubStoreConfig(Environment):
    """HubStoreFunction: member events from HubQueue -> HubStateTable and HubHistoryTable."""

    state_table_name: TableName = Field(alias="TAGPATCH_HUB_STATE_TABLE")
    history_table_name: TableName = Field(alias="TAGPATCH_HUB_HISTORY_TABLE")
    history_days: int = Field(default=400, ge=1, le=36500, alias="TAGPATCH_HUB_HISTORY_DAYS")
    #: look up each member account's organizational unit (organizations:ListParents and
    #: DescribeOrganizationalUnit), at most once a day per member
    resolve_ous: bool = Field(default=False, alias="TAGPATCH_HUB_RESOLVE_OUS")


class HubDigestConfig(Environment):
    """HubDigestFunction: a Scan of HubStateTable -> metrics, and the organization digest."""

    state_table_name: TableName = Field(alias="TAGPATCH_HUB_STATE_TABLE")
    #: where the digest goes; a function that only checks (metrics) may run without it
    topic_arn: SnsTopicArn | None = Field(default=None, alias="TAGPATCH_HUB_TOPIC_ARN")
    compliance_threshold: float = Field(default=90, ge=0, le=100, alias="TAGPATCH_HUB_COMPLIANCE_THRESHOLD")
    silent_after_hours: float = Field(default=24, gt=0, le=24 * 366, alias="TAGPATCH_HUB_SILENT_AFTER_HOURS")


def load_hub_store_config(environ: Mapping[str, str]) -> HubStoreConfig:
    return load_environment(HubStoreConfig, environ, "hub store")


def load_hub_digest_config(environ: Mapping[str, str]) -> HubDigestConfig:
    return load_environment(HubDigestConfig, environ, "hub digest")
