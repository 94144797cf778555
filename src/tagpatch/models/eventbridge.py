"""The EventBridge event envelope of the reconciler's and the reporter's events.

It accepts and refuses what Powertools' ``EventBridgeModel``
(``aws_lambda_powertools.utilities.parser.models``) does for every field that model requires, with
the same types; see :mod:`tagpatch.models.envelopes` for why these are our own. Unknown fields
(and the optional ``replay-name``, which nothing reads) are ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class EventBridgeModel(BaseModel):
    """An EventBridge event; subclasses narrow ``source``, ``detail_type`` and ``detail``."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any] | BaseModel  # subclasses narrow it to their detail model

    @field_validator("detail", mode="before")
    @classmethod
    def _scheduler_detail(cls, value: Any, info: ValidationInfo) -> Any:
        # EventBridge Scheduler sends the detail as the string "{}" when there is no payload.
        return {} if info.data.get("source") == "aws.scheduler" and value == "{}" else value
