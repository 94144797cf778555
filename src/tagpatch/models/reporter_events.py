"""The events that reach the compliance reporter.

:class:`ReporterScheduledEvent` is the schedule's "Scheduled Event" (the reconciler's, narrowed to
the same sources and detail-type); unknown fields are ignored. A refusal is an :class:`Invalid`
listing every problem with its field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from tagpatch.models.base import Invalid, StrictModel
from tagpatch.models.eventbridge import ScheduledEventBase

__all__ = ["Invalid", "OnDemandReport", "ReporterScheduledEvent"]


class ReporterScheduledEvent(ScheduledEventBase):
    """The schedule's "Scheduled Event"; its ``time`` (the scheduled time) names the snapshot."""


class OnDemandReport(StrictModel):
    """A direct invocation: ``{"group": "web"}`` snapshots one group, ``{}`` every group."""

    group: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
