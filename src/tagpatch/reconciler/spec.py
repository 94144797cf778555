"""The desired SSM state of one patch group, computed purely from its settings.

Groups whose window-level settings are equal share maintenance windows (:class:`WindowKey`): for
each role (the install window, and optionally a scan-only window) a group has its own target
(``tag:<key>=<group>``) and its own Run Command task in a window of its key. The spec holds the
exact request parameters and the fields as SSM reports them back, so the planner can compare
what is with what should be, field by field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import astuple, dataclass, field
from typing import Any

from tagpatch import naming
from tagpatch.reconciler.settings import GroupSettings

RUN_PATCH_BASELINE = "AWS-RunPatchBaseline"
OWNER_TAG = "tagpatch:stack"
GROUP_TAG = "tagpatch:group"
ROLE_TAG = "tagpatch:window"
#: Tags of a shared window: the id of its :class:`WindowKey` and its index among the key's windows.
KEY_TAG = "tagpatch:key"
SIBLING_TAG = "tagpatch:sibling"
SPEC_VERSION = "2"


def _drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "", [], {})}


@dataclass(frozen=True)
class WindowSpec:
    name: str
    description: str
    schedule: str
    timezone: str
    offset: int
    duration: int
    cutoff: int
    enabled: bool
    tags: tuple[tuple[str, str], ...]

    def expected(self) -> dict[str, Any]:
        """The fields GetMaintenanceWindow returns when the window is as it should be."""
        return {
            "Name": self.name,
            "Description": self.description,
            "Schedule": self.schedule,
            "ScheduleTimezone": self.timezone,
            "ScheduleOffset": self.offset or None,
            "Duration": self.duration,
            "Cutoff": self.cutoff,
            "AllowUnassociatedTargets": False,
            "Enabled": self.enabled,
        }

    def drift(self, actual: dict[str, Any]) -> list[str]:
        return sorted(key for key, value in self.expected().items() if actual.get(key) != value)

    def create_params(self, client_token: str) -> dict[str, Any]:
        params = _drop_empty({**self.expected(), "Enabled": None})
        params["AllowUnassociatedTargets"] = False
        params["ClientToken"] = client_token
        params["Tags"] = [{"Key": key, "Value": value} for key, value in self.tags]
        return params

    def update_params(self, window_id: str) -> dict[str, Any]:
        params = _drop_empty(self.expected())
        params.update(WindowId=window_id, Replace=True, AllowUnassociatedTargets=False, Enabled=self.enabled)
        return params


@dataclass(frozen=True)
class WindowKey:
    """The window-level settings of one role of a group: groups with equal keys share windows.

    (TagPatch offers no start or end date, so those are not part of it.)"""

    role: str  # "install" or "scan"
    schedule: str
    timezone: str
    offset: int
    duration: int
    cutoff: int
    enabled: bool

    def key_id(self, stack_name: str) -> str:
        """10 hex digits naming the key in this stack (window names, tags, the placement item)."""
        material = json.dumps([stack_name, *astuple(self)], separators=(",", ":"))
        return hashlib.sha256(material.encode()).hexdigest()[:10]

    def window(self, stack_name: str, sibling: int, capacity: int) -> WindowSpec:
        """The ``sibling``-th window of this key (siblings share the schedule and spill over)."""
        key_id = self.key_id(stack_name)
        purpose = "scan-only" if self.role == "scan" else "patching"
        shifted = f" +{self.offset}d" if self.offset else ""
        return WindowSpec(
            name=f"{naming.WINDOW_PREFIX}{self.role}-{key_id}-{sibling}",
            description=naming.short_text(
                f"TagPatch {purpose} window {self.schedule} {self.timezone}{shifted}, {self.duration}h "
                f"(cutoff {self.cutoff}h), shared by up to {capacity} patch groups",
                128,
            ),
            schedule=self.schedule,
            timezone=self.timezone,
            offset=self.offset,
            duration=self.duration,
            cutoff=self.cutoff,
            enabled=self.enabled,
            tags=(
                (OWNER_TAG, stack_name),
                (ROLE_TAG, self.role),
                (KEY_TAG, key_id),
                (SIBLING_TAG, str(sibling)),
            ),
        )


@dataclass(frozen=True)
class TargetSpec:
    name: str
    description: str
    owner_information: str
    tag_key: str
    group: str

    def expected(self) -> dict[str, Any]:
        return {
            "ResourceType": "INSTANCE",
            "Targets": [{"Key": f"tag:{self.tag_key}", "Values": [self.group]}],
            "OwnerInformation": self.owner_information,
            "Name": self.name,
            "Description": self.description,
        }

    def drift(self, actual: dict[str, Any]) -> list[str]:
        return sorted(key for key, value in self.expected().items() if actual.get(key) != value)

    def register_params(self, window_id: str, client_token: str) -> dict[str, Any]:
        return {**self.expected(), "WindowId": window_id, "ClientToken": client_token}

    def update_params(self, window_id: str, target_id: str) -> dict[str, Any]:
        params = {**self.expected(), "WindowId": window_id, "WindowTargetId": target_id, "Replace": True}
        del params["ResourceType"]
        return params


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    priority: int
    max_concurrency: str
    max_errors: str
    service_role_arn: str
    run_command: dict[str, Any] = field(hash=False)

    def expected(self, target_id: str) -> dict[str, Any]:
        """The fields GetMaintenanceWindowTask returns when the task is as it should be."""
        return {
            "TaskArn": RUN_PATCH_BASELINE,
            "TaskType": "RUN_COMMAND",
            "Targets": [{"Key": "WindowTargetIds", "Values": [target_id]}],
            "ServiceRoleArn": self.service_role_arn,
            "Priority": self.priority,
            "MaxConcurrency": self.max_concurrency,
            "MaxErrors": self.max_errors,
            "Name": self.name,
            "Description": self.description,
            "TaskInvocationParameters": {"RunCommand": self.run_command},
        }

    def drift(self, actual: dict[str, Any], target_id: str) -> list[str]:
        expected = self.expected(target_id)
        changed = [
            key
            for key, value in expected.items()
            if key != "TaskInvocationParameters" and actual.get(key) != value
        ]
        actual_run = actual.get("TaskInvocationParameters", {}).get("RunCommand", {})
        changed += [
            f"RunCommand.{key}"
            for key in MANAGED_RUN_COMMAND_KEYS
            if _normalise(actual_run.get(key)) != _normalise(self.run_command.get(key))
        ]
        return sorted(changed)

    def register_params(self, window_id: str, target_id: str, client_token: str) -> dict[str, Any]:
        params = self.expected(target_id)
        return {**params, "WindowId": window_id, "ClientToken": client_token}

    def update_params(self, window_id: str, task_id: str, target_id: str) -> dict[str, Any]:
        params = self.expected(target_id)
        del params["TaskType"]
        return {**params, "WindowId": window_id, "WindowTaskId": task_id, "Replace": True}


# The RunCommand fields build_spec may set; drift compares these only. SSM reports fields nobody
# set with their defaults, e.g. (aws-cli's published get-maintenance-window-task sample,
# https://docs.aws.amazon.com/cli/latest/reference/ssm/get-maintenance-window-task.html, source
# awscli/examples/ssm/get-maintenance-window-task.rst) ``"Comment": ""``, the document's other
# parameters as ``[""]`` ("workingDirectory": [""]) and ``"TaskParameters": {}``, and
# ``CloudWatchOutputConfig`` as ``{"CloudWatchOutputEnabled": false}`` (the SSM API reference's
# ListCommandInvocations sample): those must not count as drift, or every scheduled run would
# update every task of a real account.
MANAGED_RUN_COMMAND_KEYS = (
    "Comment",
    "NotificationConfig",
    "OutputS3BucketName",
    "OutputS3KeyPrefix",
    "Parameters",
    "ServiceRoleArn",
    "TimeoutSeconds",
)


def _normalise(value: Any) -> Any:
    """Order-insensitive form of parameter maps and lists of strings, where an empty value (SSM's
    echo of a default nobody set: ``""``, ``[""]``, ``[]``, ``{}``) is the same as no value."""
    if isinstance(value, dict):
        kept = {key: _normalise(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item is not None} or None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return sorted(item for item in value if item) or None
    return value if value not in ("", [], {}) else None


@dataclass(frozen=True)
class WindowBundle:
    """One role of a group: the key of its (shared) window, and its own target and task."""

    role: str  # "install" or "scan"
    key: WindowKey
    target: TargetSpec
    task: TaskSpec


@dataclass(frozen=True)
class GroupSpec:
    group: str
    slug: str
    install: WindowBundle
    scan: WindowBundle | None
    patch_baseline_id: str | None
    fingerprint: str

    @property
    def bundles(self) -> tuple[WindowBundle, ...]:
        return (self.install,) if self.scan is None else (self.install, self.scan)


def build_spec(group: str, settings: GroupSettings, *, tag_key: str, stack_name: str) -> GroupSpec:
    """The complete desired state of ``group``'s windows under ``settings``."""
    slug = naming.group_slug(group)
    shown = naming.short_text(group, 60)
    output_prefix = f"{settings.output_prefix}/{slug}" if settings.output_prefix else slug

    def bundle(role: str, schedule: str, operation: str, reboot_option: str) -> WindowBundle:
        scan = role == "scan"
        run_command = _drop_empty(
            {
                "Comment": settings.comment,
                "OutputS3BucketName": settings.output_bucket,
                "OutputS3KeyPrefix": output_prefix,
                "Parameters": {"Operation": [operation], "RebootOption": [reboot_option]},
                "TimeoutSeconds": settings.timeout_seconds,
                "NotificationConfig": {
                    "NotificationArn": settings.notification_topic_arn,
                    "NotificationEvents": list(settings.notification_events),
                    "NotificationType": settings.notification_type,
                },
                "ServiceRoleArn": settings.notification_role_arn,
            }
        )
        return WindowBundle(
            role=role,
            key=WindowKey(
                role=role,
                schedule=schedule,
                timezone=settings.schedule_timezone,
                offset=settings.schedule_offset if schedule.startswith("cron(") else 0,
                duration=settings.duration,
                cutoff=settings.cutoff,
                enabled=settings.enabled,
            ),
            target=TargetSpec(
                name=naming.target_name(group, scan=scan),
                description=settings.target_description
                or naming.short_text(f"Instances tagged {tag_key}={shown}", 128),
                owner_information=settings.target_owner_information,
                tag_key=tag_key,
                group=group,
            ),
            task=TaskSpec(
                name=naming.task_name(group, scan=scan),
                # The group's own description (a window is shared now) or a generated one.
                description=settings.description
                or naming.short_text(f"{RUN_PATCH_BASELINE} {operation} for {shown}", 128),
                priority=settings.priority,
                max_concurrency=settings.max_concurrency,
                max_errors=settings.max_errors,
                service_role_arn=settings.service_role_arn,
                run_command=run_command,
            ),
        )

    install = bundle("install", settings.schedule, settings.operation, settings.reboot_option)
    scan = bundle("scan", settings.scan_schedule, "Scan", "NoReboot") if settings.scan_schedule else None
    material = {
        "version": SPEC_VERSION,
        "group": group,
        "baseline": settings.patch_baseline_id,
        "bundles": [
            {
                "window": astuple(b.key),
                "target": b.target.expected(),
                "task": b.task.expected("-"),
            }
            for b in ((install,) if scan is None else (install, scan))
        ],
    }
    fingerprint = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
    return GroupSpec(
        group=group,
        slug=slug,
        install=install,
        scan=scan,
        patch_baseline_id=settings.patch_baseline_id,
        fingerprint=fingerprint,
    )
