"""The events that reach the compliance reporter, read without pydantic (as the collector's envelopes).

:class:`ReporterScheduledEvent` accepts and refuses what the reconciler's former pydantic
``EventBridgeModel`` did for every field it requires, with the same types
(tests/unit/test_reporter_events.py compares the verdicts), narrowed to the schedule's sources and
detail-type; unknown fields are ignored. Its common fields are read by
:class:`tagpatch.models.envelopes.EventBridgeEvent`, shared with the reconciler's events.
A refusal is an :class:`Invalid` listing every problem with its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tagpatch.models.envelopes import EventBridgeEvent, Fields, Invalid, bounded_text, one_of

__all__ = ["Invalid", "OnDemandReport", "ReporterScheduledEvent"]

Source = Literal["aws.events", "aws.scheduler"]
SOURCES: tuple[Source, ...] = ("aws.events", "aws.scheduler")


@dataclass(frozen=True)
class ReporterScheduledEvent(EventBridgeEvent):
    """The schedule's "Scheduled Event"; its ``time`` (the scheduled time) names the snapshot."""

    source: Source
    detail_type: Literal["Scheduled Event"]
    detail: dict[str, Any]

    @classmethod
    def parse(cls, data: Any) -> ReporterScheduledEvent:
        """``data`` as the schedule's event, or :class:`Invalid`."""
        fields = Fields(data)
        common = EventBridgeEvent.read(fields, one_of(*SOURCES), "Scheduled Event")
        event = cls(**common, detail=fields.get("detail", EventBridgeEvent.object_detail(common["source"])))
        fields.done()
        return event


@dataclass(frozen=True)
class OnDemandReport:
    """A direct invocation: ``{"group": "web"}`` snapshots one group, ``{}`` every group."""

    group: str | None = None

    @classmethod
    def parse(cls, data: Any) -> OnDemandReport:
        """``data`` as an on-demand request (no other key), or :class:`Invalid`."""
        fields = Fields(data)
        request = cls(group=fields.optional("group", bounded_text(1, 256)))
        fields.forbid_extra({"group"})
        fields.done()
        return request
