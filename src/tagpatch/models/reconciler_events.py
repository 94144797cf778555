"""Typed models of every event that reaches the reconciler.

The EventBridge events' common fields are those of :class:`tagpatch.models.envelopes.EventBridgeEvent`
(as the reporter's); unknown fields are ignored except in :class:`OnDemandRequest` and in the
reconcile-queue messages (:class:`VerifyMessage`, :class:`GroupMessage`), which we define ourselves.
A refusal is an :class:`Invalid` listing every problem with its field.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from tagpatch.models.base import Invalid, Model, StrictModel
from tagpatch.models.eventbridge import EventBridgeEvent, ScheduledEventBase

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_GROUPS",
    "GroupMessage",
    "Invalid",
    "OnDemandRequest",
    "ParameterChangeDetail",
    "ParameterChangeEvent",
    "ScheduledEvent",
    "TagChangeDetail",
    "TagChangeEvent",
    "VerifyMessage",
    "encode_message",
    "parse_message",
    "split_message",
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


# --- the reconcile queue -------------------------------------------------------------------------
#: Most groups (verified and empty together) one reconcile-queue message may name; what the
#: scheduled run plans is split to fit (:func:`split_message`).
MAX_MESSAGE_GROUPS = 100
#: Most UTF-8 bytes of one message body, as :func:`encode_message` writes it (SQS: 256 KiB).
MAX_MESSAGE_BYTES = 262_144

# An EC2 tag value: at most 256 characters, possibly empty (the reconciler skips an empty one
# with its reason; refusing it here would fail every other group of the message with it).
GroupName = Annotated[str, StringConstraints(max_length=256)]
# A group's override as Parameter Store returns it (an advanced parameter holds 8 KB at most).
SettingsText = Annotated[str, StringConstraints(max_length=8192)]


class VerifyMessage(StrictModel):
    """A batch of the scheduled run or of the sweep (``Reconciler.plan_run``): verify ``groups``
    (name -> instances carrying its tag) with the overrides read when the run was planned
    (``overrides`` at today's settings path, ``legacy`` at an older TagPatch's), and deal with
    ``empty`` groups (known, no instance left)."""

    kind: Literal["verify"]
    groups: dict[GroupName, Annotated[StrictInt, Field(ge=0)]] = Field(
        default_factory=dict, max_length=MAX_MESSAGE_GROUPS
    )
    empty: list[GroupName] = Field(default_factory=list, max_length=MAX_MESSAGE_GROUPS)
    overrides: dict[GroupName, SettingsText] = Field(default_factory=dict, max_length=MAX_MESSAGE_GROUPS)
    legacy: dict[GroupName, SettingsText] = Field(default_factory=dict, max_length=MAX_MESSAGE_GROUPS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if not self.groups and not self.empty:
            problems.append("names no group")
        if len(self.groups) + len(self.empty) > MAX_MESSAGE_GROUPS:
            problems.append(f"names more than {MAX_MESSAGE_GROUPS} groups")
        if stray := sorted((set(self.overrides) | set(self.legacy)) - set(self.groups))[:5]:
            problems.append(f"settings for groups it does not verify: {stray}")
        if both := sorted(set(self.groups) & set(self.empty))[:5]:
            problems.append(f"groups both verified and empty: {both}")
        if len(set(self.empty)) != len(self.empty):
            problems.append("an empty group is named twice")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class GroupMessage(StrictModel):
    """One group to reconcile (``verify``: read its window back from SSM, not only the record)."""

    kind: Literal["group"]
    group: GroupName
    verify: StrictBool = True


_MESSAGE: TypeAdapter[VerifyMessage | GroupMessage] = TypeAdapter(
    Annotated[VerifyMessage | GroupMessage, Field(discriminator="kind")]
)


def parse_message(data: Any) -> VerifyMessage | GroupMessage:
    """``data`` (a decoded message body) as one of our messages, or :class:`Invalid`."""
    try:
        return _MESSAGE.validate_python(data)
    except ValidationError as error:
        raise Invalid.of(error) from None


def encode_message(body: dict[str, Any]) -> str:
    """The body as it is sent: compact JSON, non-ASCII kept as it is (its UTF-8 size counts)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _size(body: dict[str, Any]) -> int:
    return len(encode_message(body).encode("utf-8"))


def split_message(
    body: dict[str, Any], *, max_groups: int = MAX_MESSAGE_GROUPS, max_bytes: int = MAX_MESSAGE_BYTES
) -> list[dict[str, Any]]:
    """``body`` (a "verify" message) as messages of at most ``max_groups`` groups and
    ``max_bytes`` bytes each, every group with its own overrides; ``[body]`` when it fits.

    Raises ValueError for one group that cannot fit on its own (its settings texts are bounded
    by :class:`VerifyMessage`, so that is a message no consumer would take either).
    """
    names = [(group, False) for group in body.get("groups", {})] + [(g, True) for g in body.get("empty", [])]
    if len(names) <= max_groups and _size(body) <= max_bytes:
        return [body]
    if len(names) <= 1:
        raise ValueError(f"a message for group {names[0][0] if names else '?'!r} is over {max_bytes} bytes")
    half = min(len(names) // 2, max_groups)
    return [
        part
        for chunk in (names[:half], names[half:])
        for part in split_message(_subset(body, chunk), max_groups=max_groups, max_bytes=max_bytes)
    ]


def _subset(body: dict[str, Any], names: list[tuple[str, bool]]) -> dict[str, Any]:
    verified = [group for group, empty in names if not empty]
    return {
        "kind": body["kind"],
        "groups": {group: body["groups"][group] for group in verified},
        "empty": [group for group, empty in names if empty],
        "overrides": {g: body["overrides"][g] for g in verified if g in body.get("overrides", {})},
        "legacy": {g: body["legacy"][g] for g in verified if g in body.get("legacy", {})},
    }
