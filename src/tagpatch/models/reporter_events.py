"""The events that reach the compliance reporter, read without pydantic (as the collector's envelopes).

:class:`ReporterScheduledEvent` accepts and refuses what the reconciler's pydantic
:class:`tagpatch.models.eventbridge.EventBridgeModel` does for every field it requires, with the
same types (tests/unit/test_reporter_events.py compares the verdicts), narrowed to the schedule's
sources and detail-type; unknown fields are ignored. A refusal is an :class:`Invalid` listing every
problem with its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from tagpatch.models.envelopes import Fields, Invalid, bounded_text, literal, text, text_list, timestamp

__all__ = ["Invalid", "OnDemandReport", "ReporterScheduledEvent"]

Source = Literal["aws.events", "aws.scheduler"]
SOURCES: tuple[Source, ...] = ("aws.events", "aws.scheduler")


def _source(value: Any) -> Source:
    if not isinstance(value, str) or value not in SOURCES:
        raise ValueError("Input should be 'aws.events' or 'aws.scheduler'")
    return value


def _detail(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("Input should be a valid dictionary or object")
    return dict(value)


def _scheduler_detail(value: Any) -> dict[str, Any]:
    # EventBridge Scheduler sends the detail as the string "{}" when there is no payload.
    return {} if value == "{}" else _detail(value)


@dataclass(frozen=True)
class ReporterScheduledEvent:
    """The schedule's "Scheduled Event"; its ``time`` (the scheduled time) names the snapshot."""

    version: str
    id: str
    source: Source
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: Literal["Scheduled Event"]
    detail: dict[str, Any]

    @classmethod
    def parse(cls, data: Any) -> ReporterScheduledEvent:
        """``data`` as the schedule's event, or :class:`Invalid`."""
        fields = Fields(data)
        version, id_ = fields.get("version", text), fields.get("id", text)
        source = fields.get("source", _source)
        event = cls(
            version=version,
            id=id_,
            source=source,
            account=fields.get("account", text),
            time=fields.get("time", timestamp),
            region=fields.get("region", text),
            resources=fields.get("resources", text_list(text)),
            detail_type=cast(
                Literal["Scheduled Event"], fields.get("detail-type", literal("Scheduled Event"))
            ),
            detail=fields.get("detail", _scheduler_detail if source == "aws.scheduler" else _detail),
        )
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
