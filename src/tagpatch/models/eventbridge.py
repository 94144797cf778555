"""The EventBridge envelope every reconciler and reporter event arrives in: the fields every event
has, as Powertools' ``EventBridgeModel`` reads them (tests/unit/test_envelopes.py compares the
verdicts); the events narrow ``source``, ``detail-type`` and ``detail``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from tagpatch.models.base import Model


class EventBridgeEvent(Model):
    """The fields every EventBridge event has, as Powertools' ``EventBridgeModel`` reads them;
    subclasses narrow ``source`` and ``detail_type`` and add ``detail``. ``detail-type`` may also
    be spelt ``detail_type`` (the alias wins when both are there)."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")

    @field_validator("detail", mode="before", check_fields=False)
    @classmethod
    def _scheduler_detail(cls, value: Any, info: ValidationInfo) -> Any:
        # EventBridge Scheduler sends the detail as the string "{}" when there is no payload (as
        # Powertools' model, for every subclass's ``detail``).
        return {} if value == "{}" and info.data.get("source") == "aws.scheduler" else value


class ScheduledEventBase(EventBridgeEvent):
    """A "Scheduled Event" of an EventBridge rule or of EventBridge Scheduler."""

    source: Literal["aws.events", "aws.scheduler"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    detail: dict[str, Any]
