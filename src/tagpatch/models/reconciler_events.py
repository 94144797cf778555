"""Typed models of every event that reaches the reconciler."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tagpatch.models.eventbridge import EventBridgeModel


class TagChangeDetail(BaseModel):
    """``detail`` of "Tag Change on Resource": ``tags`` is the full current set; a deleted key is
    listed in ``changed-tag-keys`` but absent from ``tags``."""

    changed_tag_keys: list[str] = Field(alias="changed-tag-keys")
    service: str
    resource_type: str = Field(alias="resource-type")
    tags: dict[str, str]


class TagChangeEvent(EventBridgeModel):
    source: Literal["aws.tag"]
    detail_type: Literal["Tag Change on Resource"] = Field(alias="detail-type")
    detail: TagChangeDetail


class ScheduledEvent(EventBridgeModel):
    source: Literal["aws.events", "aws.scheduler"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")


class ParameterChangeDetail(BaseModel):
    operation: str
    name: str = Field(min_length=1, max_length=2048)


class ParameterChangeEvent(EventBridgeModel):
    source: Literal["aws.ssm"]
    detail_type: Literal["Parameter Store Change"] = Field(alias="detail-type")
    detail: ParameterChangeDetail


class OnDemandRequest(BaseModel):
    """A direct invocation (the CLI, an operator): one group or all, applied or only planned."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    group: str | None = Field(None, max_length=256)
    dry_run: bool = Field(False, alias="dryRun")
