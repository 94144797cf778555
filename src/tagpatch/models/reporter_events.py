"""The events that reach the compliance reporter.

:class:`ReporterScheduledEvent` is the schedule's "Scheduled Event" (the reconciler's, narrowed to
the same sources and detail-type); unknown fields are ignored. :class:`OnDemandReport` is a direct
invocation. The report queue carries the reporter's own messages: a :class:`ReportBatch` (groups to
snapshot for one run) or a :class:`RunDeadline`; being ours, their unknown fields are refused. A
refusal is an :class:`Invalid` listing every problem with its field.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

from tagpatch.models.base import Invalid, Model, StrictModel
from tagpatch.models.eventbridge import ScheduledEventBase

__all__ = [
    "Invalid",
    "OnDemandReport",
    "QueuedGroup",
    "ReportBatch",
    "ReporterScheduledEvent",
    "RunDeadline",
    "parse_report_message",
]


class ReporterScheduledEvent(ScheduledEventBase):
    """The schedule's "Scheduled Event"; its ``time`` (the scheduled time) names the snapshot."""


class OnDemandReport(StrictModel):
    """A direct invocation: ``{"group": "web"}`` snapshots one group, ``{}`` every group."""

    group: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None


# --- the report queue ---------------------------------------------------------------------------
#: An SSM patch group name as the API bounds it (the character rule is checked by the planner).
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
SnapshotId = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")]
BaselineId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class QueuedGroup(StrictModel):
    """One group of a :class:`ReportBatch`, with what the planner listed about it."""

    name: GroupName
    managed: bool = False
    baselines: list[BaselineId] = Field(default_factory=list, max_length=50)


class ReportBatch(StrictModel):
    """A report-queue message: snapshot these groups for run ``snapshotId`` (the planner's batch
    ``batch``; ``attempt`` counts the worker's own delayed retries of groups that failed)."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["batch"] = "batch"
    snapshot_id: SnapshotId = Field(alias="snapshotId")
    source: Literal["scheduled", "on-demand"]
    batch: int = Field(ge=0, le=99_999)
    attempt: int = Field(default=1, ge=1, le=100)
    groups: list[QueuedGroup] = Field(min_length=1, max_length=100)

    def body(self) -> str:
        return self.model_dump_json(by_alias=True)


class RunDeadline(StrictModel):
    """A report-queue message: at ``deadline``, send run ``snapshotId``'s digest if it is still
    incomplete, naming the groups still missing. SQS delays a message 15 minutes at most, so a
    deadline further away is re-sent until it is due."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["deadline"] = "deadline"
    snapshot_id: SnapshotId = Field(alias="snapshotId")
    deadline: AwareDatetime

    def body(self) -> str:
        return self.model_dump_json(by_alias=True)


class _ReportMessage(Model):
    message: ReportBatch | RunDeadline = Field(discriminator="type")


def parse_report_message(body: str) -> ReportBatch | RunDeadline:
    """A report-queue record's body as its message, or :class:`Invalid` naming every problem."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as error:
        raise Invalid([((), f"not JSON: {error}")]) from None
    return _ReportMessage.parse({"message": data}).message
