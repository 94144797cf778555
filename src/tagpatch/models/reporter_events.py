"""Typed models of the events that reach the compliance reporter."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tagpatch.models.eventbridge import EventBridgeModel


class ReporterScheduledEvent(EventBridgeModel):
    """The schedule's "Scheduled Event"; its ``time`` (the scheduled time) names the snapshot."""

    source: Literal["aws.events", "aws.scheduler"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")


class OnDemandReport(BaseModel):
    """A direct invocation: ``{"group": "web"}`` snapshots one group, ``{}`` every group."""

    model_config = ConfigDict(extra="forbid")

    group: str | None = Field(None, min_length=1, max_length=256)
