"""Typed models of every event that reaches the reconciler.

The EventBridge events' common fields are those of :class:`tagpatch.models.envelopes.EventBridgeEvent`
(as the reporter's); unknown fields are ignored except in :class:`OnDemandRequest`, which we define
ourselves. A refusal is an :class:`Invalid` listing every problem with its field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from tagpatch.models.base import Invalid, Model, StrictModel
from tagpatch.models.eventbridge import EventBridgeEvent, ScheduledEventBase

__all__ = [
    "Invalid",
    "OnDemandRequest",
    "ParameterChangeDetail",
    "ParameterChangeEvent",
    "ScheduledEvent",
    "TagChangeDetail",
    "TagChangeEvent",
]


class TagChangeDetail(Model):
    """``detail`` of "Tag Change on Resource": ``tags`` is the full current set; a deleted key is
    listed in ``changed-tag-keys`` but absent from ``tags``."""

    changed_tag_keys: list[str] = Field(alias="changed-tag-keys")
    service: str
    resource_type: str = Field(alias="resource-type")
    tags: dict[str, str]


class TagChangeEvent(EventBridgeEvent):
    source: Literal["aws.tag"]
    detail_type: Literal["Tag Change on Resource"] = Field(alias="detail-type")
    detail: TagChangeDetail


class ScheduledEvent(ScheduledEventBase):
    """The schedule's event (a rule's or EventBridge Scheduler's)."""


class ParameterChangeDetail(Model):
    operation: str
    name: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class ParameterChangeEvent(EventBridgeEvent):
    source: Literal["aws.ssm"]
    detail_type: Literal["Parameter Store Change"] = Field(alias="detail-type")
    detail: ParameterChangeDetail


class OnDemandRequest(StrictModel):
    """A direct invocation (the CLI, an operator): one group or all, applied or only planned;
    ``dryRun`` may also be spelt ``dry_run``."""

    model_config = ConfigDict(populate_by_name=True)

    group: Annotated[str, StringConstraints(max_length=256)] | None = None
    dry_run: bool = Field(default=False, alias="dryRun")
    # The sweep (a 5-minute schedule): reconcile the groups left pending.
    sweep: bool = False
