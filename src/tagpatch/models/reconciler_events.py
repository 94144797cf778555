"""Typed models of every event that reaches the reconciler, read without pydantic.

They accept and refuse what the reconciler's former pydantic models did (tests/unit/
test_reconciler_events.py keeps those models and compares the verdicts): the EventBridge events'
common fields are read by :class:`tagpatch.models.envelopes.EventBridgeEvent` (as the reporter's),
unknown fields are ignored except in :class:`OnDemandRequest`. A refusal is an :class:`Invalid`
listing every problem with its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tagpatch.models.envelopes import (
    EventBridgeEvent,
    Fields,
    Invalid,
    bounded_text,
    one_of,
    text,
    text_list,
)

__all__ = [
    "Invalid",
    "OnDemandRequest",
    "ParameterChangeDetail",
    "ParameterChangeEvent",
    "ScheduledEvent",
    "TagChangeDetail",
    "TagChangeEvent",
]


def _tags(value: Any) -> dict[str, str]:
    items = Fields(value)
    tags = {key: items.value(key, tag, text) for key, tag in items.data.items()}
    items.done()
    return tags


@dataclass(frozen=True)
class TagChangeDetail:
    """``detail`` of "Tag Change on Resource": ``tags`` is the full current set; a deleted key is
    listed in ``changed-tag-keys`` but absent from ``tags``."""

    changed_tag_keys: list[str]
    service: str
    resource_type: str
    tags: dict[str, str]

    @classmethod
    def parse(cls, data: Any) -> TagChangeDetail:
        fields = Fields(data)
        detail = cls(
            changed_tag_keys=fields.get("changed-tag-keys", text_list(text)),
            service=fields.get("service", text),
            resource_type=fields.get("resource-type", text),
            tags=fields.get("tags", _tags),
        )
        fields.done()
        return detail


@dataclass(frozen=True)
class TagChangeEvent(EventBridgeEvent):
    source: Literal["aws.tag"]
    detail_type: Literal["Tag Change on Resource"]
    detail: TagChangeDetail

    @classmethod
    def parse(cls, data: Any) -> TagChangeEvent:
        """``data`` as a tag change, or :class:`Invalid`."""
        fields = Fields(data)
        common = EventBridgeEvent.read(fields, one_of("aws.tag"), "Tag Change on Resource")
        event = cls(**common, detail=fields.get("detail", TagChangeDetail.parse))
        fields.done()
        return event


@dataclass(frozen=True)
class ScheduledEvent(EventBridgeEvent):
    source: Literal["aws.events", "aws.scheduler"]
    detail_type: Literal["Scheduled Event"]
    detail: dict[str, Any]

    @classmethod
    def parse(cls, data: Any) -> ScheduledEvent:
        """``data`` as the schedule's event (a rule's or EventBridge Scheduler's), or :class:`Invalid`."""
        fields = Fields(data)
        common = EventBridgeEvent.read(fields, one_of("aws.events", "aws.scheduler"), "Scheduled Event")
        event = cls(**common, detail=fields.get("detail", EventBridgeEvent.object_detail(common["source"])))
        fields.done()
        return event


@dataclass(frozen=True)
class ParameterChangeDetail:
    operation: str
    name: str

    @classmethod
    def parse(cls, data: Any) -> ParameterChangeDetail:
        fields = Fields(data)
        detail = cls(operation=fields.get("operation", text), name=fields.get("name", bounded_text(1, 2048)))
        fields.done()
        return detail


@dataclass(frozen=True)
class ParameterChangeEvent(EventBridgeEvent):
    source: Literal["aws.ssm"]
    detail_type: Literal["Parameter Store Change"]
    detail: ParameterChangeDetail

    @classmethod
    def parse(cls, data: Any) -> ParameterChangeEvent:
        """``data`` as a Parameter Store change, or :class:`Invalid`."""
        fields = Fields(data)
        common = EventBridgeEvent.read(fields, one_of("aws.ssm"), "Parameter Store Change")
        event = cls(**common, detail=fields.get("detail", ParameterChangeDetail.parse))
        fields.done()
        return event


_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _flag(value: Any) -> bool:
    """A boolean as pydantic's lax mode reads one: a bool, 0/1 (int or float), or a word for either."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value in (0, 1):
            return value == 1
        if isinstance(value, int):
            raise ValueError("Input should be a valid boolean, unable to interpret input")
    if isinstance(value, str):
        word = value.lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError("Input should be a valid boolean, unable to interpret input")
    raise ValueError("Input should be a valid boolean")


@dataclass(frozen=True)
class OnDemandRequest:
    """A direct invocation (the CLI, an operator): one group or all, applied or only planned."""

    group: str | None = None
    dry_run: bool = False

    @classmethod
    def parse(cls, data: Any) -> OnDemandRequest:
        """``data`` as a request (``group``, ``dryRun`` or ``dry_run``, no other key), or :class:`Invalid`."""
        fields = Fields(data)
        # the alias wins when both spellings are sent; the other is then an extra key, as in pydantic
        flag_key = "dryRun" if "dryRun" in fields.data or "dry_run" not in fields.data else "dry_run"
        group = fields.optional("group", bounded_text(0, 256))
        dry_run = fields.get(flag_key, _flag) if flag_key in fields.data else False
        request = cls(group=group, dry_run=dry_run)
        fields.forbid_extra({"group", flag_key})
        fields.done()
        return request
