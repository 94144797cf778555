"""A group's window settings: stack defaults, per-group overrides, and their validation.

Every field the seed guide sets by hand is a field here. The stack's Parameters give the
defaults (through the reconciler's environment); an operator may override any of them for one
group with a JSON object in Parameter Store. The merged result is validated as a whole, so an
invalid override is refused with every reason at once and the last good window stays.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tagpatch.reconciler.schedule import ScheduleError, is_cron, validate_schedule

NotificationEvent = Literal["All", "InProgress", "Success", "TimedOut", "Cancelled", "Failed"]

_MAX_CONCURRENCY = r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$"
_MAX_ERRORS = r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$"
_BASELINE_ID = r"^[a-zA-Z0-9_\-:/]{20,128}$"
# arn:aws:ssm:<region>:<account>:patchbaseline/pb-<17 hex>; the API reference's GetPatchBaseline
# asks for this form for AWS managed baselines, but DescribePatchGroups reports only the id.
_BASELINE_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:patchbaseline/(pb-[0-9a-f]{17})$")
_ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$"
_TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+$"
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_PREFIX = r"^[A-Za-z0-9!_.*'()/-]{0,400}$"
_TZ_NAME = re.compile(r"^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$")


class InvalidSettings(ValueError):
    """Settings that SSM would reject or that make no sense; ``reasons`` lists every problem."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class GroupSettings(BaseModel):
    """Everything a group's maintenance window, target and task are made from."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, alias_generator=None)

    schedule: str
    schedule_timezone: str = Field("UTC", alias="scheduleTimezone")
    schedule_offset: int = Field(0, ge=0, le=6, alias="scheduleOffset")
    duration: int = Field(ge=1, le=24)
    cutoff: int = Field(ge=0, le=23)
    enabled: bool = True
    description: str | None = Field(None, min_length=1, max_length=128)
    target_owner_information: str = Field(alias="targetOwnerInformation", min_length=1, max_length=128)
    target_description: str | None = Field(None, alias="targetDescription", min_length=1, max_length=128)
    priority: int = Field(ge=0, le=1000)
    max_concurrency: str = Field(alias="maxConcurrency", pattern=_MAX_CONCURRENCY)
    max_errors: str = Field(alias="maxErrors", pattern=_MAX_ERRORS)
    service_role_arn: str = Field(alias="serviceRoleArn", pattern=_ROLE_ARN)
    output_bucket: str = Field(alias="outputBucket", pattern=_BUCKET)
    output_prefix: str = Field(alias="outputPrefix", pattern=_PREFIX)
    notification_topic_arn: str = Field(alias="notificationTopicArn", pattern=_TOPIC_ARN)
    notification_role_arn: str = Field(alias="notificationRoleArn", pattern=_ROLE_ARN)
    notification_events: tuple[NotificationEvent, ...] = Field(alias="notificationEvents", min_length=1)
    notification_type: Literal["Command", "Invocation"] = Field(alias="notificationType")
    operation: Literal["Scan", "Install"]
    reboot_option: Literal["RebootIfNeeded", "NoReboot"] = Field(alias="rebootOption")
    comment: str = Field("", max_length=100)
    # Run Command's TimeoutSeconds: the delivery timeout (a command not started on an instance by
    # then does not run there), not a limit on how long patching runs. AWS-RunPatchBaseline's five
    # parameters (Operation, SnapshotId, InstallOverrideList, RebootOption, BaselineOverride)
    # include no execution timeout, so TagPatch offers none.
    timeout_seconds: int = Field(alias="timeoutSeconds", ge=30, le=2_592_000)
    scan_schedule: str | None = Field(None, alias="scanSchedule")
    patch_baseline_id: str | None = Field(None, alias="patchBaselineId", pattern=_BASELINE_ID)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return validate_schedule(value)

    @field_validator("scan_schedule", "patch_baseline_id", "description", "target_description", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("patch_baseline_id")
    @classmethod
    def _baseline_id(cls, value: str | None) -> str | None:
        """A baseline ARN as its id: ``DescribePatchGroups`` answers with the id, so an ARN would
        never match what is registered and be registered again on every run."""
        match = None if value is None else _BASELINE_ARN.match(value)
        return match.group(1) if match else value

    @field_validator("scan_schedule")
    @classmethod
    def _scan_schedule(cls, value: str | None) -> str | None:
        return None if value is None else validate_schedule(value)

    @field_validator("schedule_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return validate_timezone(value)

    @field_validator("notification_events", mode="before")
    @classmethod
    def _split_events(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("output_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    @model_validator(mode="after")
    def _cross_field(self) -> GroupSettings:
        if self.cutoff >= self.duration:
            raise ValueError(
                f"cutoff ({self.cutoff}h) must be less than duration ({self.duration}h), "
                "or no task could ever start"
            )
        if self.schedule_offset and not is_cron(self.schedule):
            raise ValueError("scheduleOffset applies to cron schedules only")
        if "All" in self.notification_events and len(self.notification_events) > 1:
            raise ValueError("notificationEvents: 'All' cannot be combined with other events")
        return self

    def overridden(self, override: dict[str, Any]) -> GroupSettings:
        """These settings with ``override`` (camelCase keys) applied, validated as a whole."""
        merged = self.model_dump(by_alias=True)
        merged.update(override)
        return parse_settings(merged)


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        # Without a tz database nothing can be checked but the form of the name.
        if available_timezones() or not _TZ_NAME.match(name):
            raise ValueError(f"'{name}' is not an IANA time zone name") from error
    return name


def _reason(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    if isinstance(error.get("ctx", {}).get("error"), ScheduleError):
        message = str(error["ctx"]["error"])
    return f"{where}: {message}"


def parse_settings(data: dict[str, Any]) -> GroupSettings:
    """Validate ``data`` into settings, or raise :class:`InvalidSettings` with every reason."""
    try:
        return GroupSettings.model_validate(data)
    except ValidationError as error:
        raise InvalidSettings([_reason(dict(item)) for item in error.errors()]) from error


#: Deepest nesting of arrays/objects an override may have. A valid override is a flat object;
#: the bound makes a deeply nested one a refusal before ``json.loads`` recurses (where 3.11 and
#: 3.13 differ in when they give up and both raise ``RecursionError``, not ``JSONDecodeError``).
MAX_OVERRIDE_DEPTH = 8


def _nesting_depth(text: str) -> int:
    """How deep ``[``/``{`` nest in ``text`` outside JSON strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_override(text: str) -> dict[str, Any]:
    """The override object stored in Parameter Store, or :class:`InvalidSettings`."""
    if (depth := _nesting_depth(text)) > MAX_OVERRIDE_DEPTH:
        raise InvalidSettings(
            [f"override nests {depth} levels deep; at most {MAX_OVERRIDE_DEPTH} are accepted"]
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidSettings([f"override is not JSON: {error.msg} at position {error.pos}"]) from error
    except (ValueError, RecursionError) as error:
        # e.g. an integer of more than sys.get_int_max_str_digits() (4300) digits: int() refuses
        # it with a plain ValueError since Python 3.11 (CVE-2020-10735).
        raise InvalidSettings([f"override is not usable JSON: {str(error)[:200]}"]) from error
    if not isinstance(value, dict):
        raise InvalidSettings([f"override must be a JSON object, got {type(value).__name__}"])
    unknown = sorted(set(value) - _ALIASES)
    if unknown:
        known = ", ".join(sorted(_ALIASES - set(STACK_ONLY)))
        raise InvalidSettings([f"unknown setting {name!r} (known: {known})" for name in unknown])
    fixed = sorted(set(value) & set(STACK_ONLY))
    if fixed:
        raise InvalidSettings([f"{name}: {STACK_ONLY[name]}" for name in fixed])
    return value


_ALIASES = {field.alias or name for name, field in GroupSettings.model_fields.items()}

#: Settings a group may not override, and why: the stack grants exactly what its own values need,
#: so another value would deploy cleanly and then silently break the group's runs.
STACK_ONLY: dict[str, str] = {
    "notificationTopicArn": (
        "fixed to the stack's NotificationTopic: the notification role may publish only there and "
        "only that topic feeds the status collector"
    ),
    "notificationRoleArn": (
        "fixed to the stack's NotificationRole: the topic's policy denies every other publisher"
    ),
    "outputBucket": (
        "fixed to the stack's OutputBucket: InstanceOutputWritePolicy lets instances write only there"
    ),
    "outputPrefix": (
        "fixed to the stack's OutputS3KeyPrefix: InstanceOutputWritePolicy lets instances write "
        "only under it (each group already writes under its own <prefix>/<group>/)"
    ),
}
