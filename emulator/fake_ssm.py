"""One shared fake that extends moto 5.2's SSM emulator with the APIs it lacks.

moto dispatches an SSM action ``Foo`` to ``SimpleSystemManagerResponse.foo`` (snake case). This
module attaches methods to that class (and keeps extra state on moto's backend/window/task
objects), so the additions work both under in-process ``moto.mock_aws`` and under
``moto.server.ThreadedMotoServer`` running in the same process.

Added: ``UpdateMaintenanceWindow``, ``GetMaintenanceWindowTask``, ``UpdateMaintenanceWindowTask``,
``UpdateMaintenanceWindowTarget``, ``DescribePatchGroups``, ``DescribePatchGroupState``,
``DescribeInstancePatchStatesForPatchGroup``.

Fixed (moto 5.2 behaviour -> real API behaviour):

* ``CreateMaintenanceWindow`` keeps ``AllowUnassociatedTargets``, ``ClientToken`` idempotency and
  creation time; rejects ``Cutoff >= Duration`` and ``ScheduleOffset`` on non-cron schedules; and
  enforces the per-account quota of maintenance windows (50 by default, :func:`set_window_quota`)
  with SSM's ``ResourceLimitExceededException`` (moto had no quota at all).
* ``RegisterTaskWithMaintenanceWindow``/``RegisterTargetWithMaintenanceWindow`` enforce the
  per-window quotas of tasks (20, :func:`set_task_quota`) and targets (100,
  :func:`set_target_quota`), and both it and ``UpdateMaintenanceWindowTask`` the quota of targets
  per task (10, :func:`set_targets_per_task_quota`), with ``ResourceLimitExceededException``
  (moto had none).
* ``GetMaintenanceWindow`` returns ``AllowUnassociatedTargets``, the real ``Enabled``,
  ``CreatedDate`` and ``ModifiedDate``.
* ``DescribeMaintenanceWindows``/``Targets``/``Tasks`` page with ``MaxResults`` (10-100, default 50)
  and ``NextToken`` and apply the documented filters (moto returned nothing for any filter).
  ``DescribeMaintenanceWindowTasks`` returns ``Type`` (moto returned none) and no
  ``TaskInvocationParameters``; ``DescribeMaintenanceWindowTargets`` returns the registered
  ``OwnerInformation`` (moto returned ``""``).
* ``RegisterTaskWithMaintenanceWindow`` keeps ``AlarmConfiguration`` (moto read a misspelt
  parameter) and requires ``MaxConcurrency``/``MaxErrors`` for tasks with targets.
* ``DeregisterTargetFromMaintenanceWindow``/``DeregisterTaskFromMaintenanceWindow`` raise
  ``DoesNotExistException`` for unknown ids (moto raised ``KeyError`` -> HTTP 500), honour ``Safe``
  and return the real output shape.
* ``RegisterPatchBaselineForPatchGroup`` allows one custom baseline per operating system per group
  (moto refused a second OS), ``DeregisterPatchBaselineForPatchGroup`` really deregisters; both
  take a baseline's ARN as well as its id.

Test helpers: :func:`seed_instance_patch_state`, :func:`make_instance_patch_state`,
:func:`clear_patch_states`, :func:`set_command_progress`, :func:`inject_faults`, :func:`clear_faults`,
:data:`CALLS`, :func:`reset_calls`, :func:`set_window_quota`, :func:`set_task_quota`,
:func:`set_target_quota`, :func:`set_targets_per_task_quota`, :func:`install`, :func:`reset`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import botocore.session
from botocore.utils import parse_to_aware_datetime
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.ssm.exceptions import SSMException, ValidationException
from moto.ssm.models import (
    FakeMaintenanceWindow,
    FakeMaintenanceWindowTarget,
    FakeMaintenanceWindowTask,
    FakePatchGroup,
    SimpleSystemManagerBackend,
    ssm_backends,
)
from moto.ssm.responses import SimpleSystemManagerResponse

from emulator.strict_validation import validate_shape

__all__ = [
    "CALLS",
    "DEFAULT_ACCOUNT_ID",
    "PATCH_STATE_FILTER_KEYS",
    "clear_faults",
    "clear_patch_states",
    "inject_faults",
    "install",
    "make_instance_patch_state",
    "reset",
    "reset_calls",
    "seed_instance_patch_state",
    "set_groups_per_baseline_quota",
    "set_target_quota",
    "set_targets_per_task_quota",
    "set_task_quota",
    "set_window_quota",
]

_SSM_MODEL = botocore.session.get_session().get_service_model("ssm")

#: Filter keys accepted by DescribeInstancePatchStatesForPatchGroup (API reference).
PATCH_STATE_FILTER_KEYS: Final = (
    "InstalledCount",
    "InstalledOtherCount",
    "InstalledPendingRebootCount",
    "InstalledRejectedCount",
    "MissingCount",
    "FailedCount",
    "UnreportedNotApplicableCount",
    "NotApplicableCount",
)

#: HTTP status used for injected faults; anything not listed is a 400 (client) error.
FAULT_STATUS: Final[dict[str, int]] = {
    "InternalServerError": 500,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
}


#: "Maintenance windows per AWS account: 50" (Systems Manager endpoints and quotas,
#: https://docs.aws.amazon.com/general/latest/gr/ssm.html#limits_ssm), adjustable per account.
DEFAULT_WINDOW_QUOTA: Final = 50

#: Per-window quotas, same page, "Service quotas for Maintenance Windows" table
#: (https://docs.aws.amazon.com/general/latest/gr/ssm.html#maintenance-windows):
#: "Tasks per maintenance window: 20", "Targets per maintenance window: 100",
#: "Targets per task: 10".
DEFAULT_TASK_QUOTA: Final = 20
DEFAULT_TARGET_QUOTA: Final = 100
DEFAULT_TARGETS_PER_TASK_QUOTA: Final = 10
#: Same page, Patch Manager table: "Patch groups per patch baseline: 25".
DEFAULT_GROUPS_PER_BASELINE_QUOTA: Final = 25


class _SharedState:
    """State shared by every import of this module (kept on the moto response class)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calls: list[str] = []
        self.faults: dict[str, deque[str]] = {}
        self.seeded_backends: list[SimpleSystemManagerBackend] = []
        self.window_quota = DEFAULT_WINDOW_QUOTA
        self.task_quota = DEFAULT_TASK_QUOTA
        self.target_quota = DEFAULT_TARGET_QUOTA
        self.targets_per_task_quota = DEFAULT_TARGETS_PER_TASK_QUOTA
        self.groups_per_baseline_quota = DEFAULT_GROUPS_PER_BASELINE_QUOTA
        self.installed = False


def _shared() -> _SharedState:
    state = SimpleSystemManagerResponse.__dict__.get("_tagpatch_fake_state")
    if state is None:
        state = _SharedState()
        SimpleSystemManagerResponse._tagpatch_fake_state = state  # type: ignore[attr-defined]
    return state


_STATE: Final = _shared()

#: Every SSM action dispatched through moto (native and added), in order, including faulted attempts.
CALLS: Final[list[str]] = _STATE.calls


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _error(code: str, message: str) -> SSMException:
    return SSMException(code, message)


def _window_missing(window_id: str) -> SSMException:
    return _error("DoesNotExistException", f"Maintenance window {window_id} does not exist")


def _invalid(message: str) -> ValidationException:
    return ValidationException(message)


class _ResourceLimitExceeded(SSMException):
    """SSM's ``ResourceLimitExceededException``: HTTP 400, body ``{"__type", "Message"}`` as its shape
    in botocore's model (a structure with one member, ``Message``); the API reference: "Error
    returned when the caller has exceeded the default resource quotas. For example, too many
    maintenance windows or patch baselines have been created."
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateMaintenanceWindow.html)
    """

    def __init__(self, message: str) -> None:
        super().__init__("ResourceLimitExceededException", message)
        self.description = json.dumps({"__type": "ResourceLimitExceededException", "Message": message})


def set_window_quota(quota: int) -> None:
    """Let each account (backend) hold at most ``quota`` maintenance windows; :func:`reset` restores
    :data:`DEFAULT_WINDOW_QUOTA`."""
    with _STATE.lock:
        _STATE.window_quota = quota


def set_task_quota(quota: int) -> None:
    """Let each maintenance window hold at most ``quota`` tasks; :func:`reset` restores
    :data:`DEFAULT_TASK_QUOTA`."""
    with _STATE.lock:
        _STATE.task_quota = quota


def set_target_quota(quota: int) -> None:
    """Let each maintenance window hold at most ``quota`` registered targets; :func:`reset` restores
    :data:`DEFAULT_TARGET_QUOTA`."""
    with _STATE.lock:
        _STATE.target_quota = quota


def set_groups_per_baseline_quota(quota: int) -> None:
    """Let each patch baseline have at most ``quota`` patch groups registered; :func:`reset`
    restores :data:`DEFAULT_GROUPS_PER_BASELINE_QUOTA`."""
    with _STATE.lock:
        _STATE.groups_per_baseline_quota = quota


def set_targets_per_task_quota(quota: int) -> None:
    """Let each task refer to at most ``quota`` targets; :func:`reset` restores
    :data:`DEFAULT_TARGETS_PER_TASK_QUOTA`."""
    with _STATE.lock:
        _STATE.targets_per_task_quota = quota


def _check_task_quota(window: FakeMaintenanceWindow) -> None:
    if len(window.tasks) >= _STATE.task_quota:
        raise _ResourceLimitExceeded(
            f"Tasks per maintenance window limit exceeded: maintenance window {window.id} has "
            f"{len(window.tasks)} tasks, the maximum allowed is {_STATE.task_quota}."
        )


def _check_target_quota(window: FakeMaintenanceWindow) -> None:
    if len(window.targets) >= _STATE.target_quota:
        raise _ResourceLimitExceeded(
            f"Targets per maintenance window limit exceeded: maintenance window {window.id} has "
            f"{len(window.targets)} targets, the maximum allowed is {_STATE.target_quota}."
        )


def _check_targets_per_task(targets: Any) -> None:
    """A task's targets are the values of its ``Targets`` entries (window target ids or instance
    ids). botocore's model caps the entries at 5 (``Targets``: max 5), so the quota of 10 counts
    the values, not the entries."""
    count = sum(len(entry.get("Values") or []) for entry in targets or [])
    if count > _STATE.targets_per_task_quota:
        raise _ResourceLimitExceeded(
            f"Targets per task limit exceeded: the task refers to {count} targets, the maximum "
            f"allowed is {_STATE.targets_per_task_quota}."
        )


# --------------------------------------------------------------------------------------------
# Helpers on moto objects
# --------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _params(self: SimpleSystemManagerResponse) -> dict[str, Any]:
    body = self.body
    if not body:
        return {}
    loaded = json.loads(body)
    return loaded if isinstance(loaded, dict) else {}


def _backend(self: SimpleSystemManagerResponse) -> SimpleSystemManagerBackend:
    return self.ssm_backend


def _window(backend: SimpleSystemManagerBackend, window_id: str) -> FakeMaintenanceWindow:
    window = backend.windows.get(window_id)
    if window is None:
        raise _window_missing(window_id)
    _window_defaults(window)
    return window


def _window_defaults(window: FakeMaintenanceWindow) -> None:
    if not hasattr(window, "tagpatch_created"):
        created = _now()
        window.tagpatch_created = created  # type: ignore[attr-defined]
        window.tagpatch_modified = created  # type: ignore[attr-defined]
        window.tagpatch_enabled = True  # type: ignore[attr-defined]
        window.tagpatch_allow_unassociated_targets = False  # type: ignore[attr-defined]


def _task(window: FakeMaintenanceWindow, task_id: str) -> FakeMaintenanceWindowTask:
    task = window.tasks.get(task_id)
    if task is None:
        raise _error("DoesNotExistException", f"Maintenance window task {task_id} does not exist")
    return task


def _target(window: FakeMaintenanceWindow, target_id: str) -> FakeMaintenanceWindowTarget:
    target = window.targets.get(target_id)
    if target is None:
        raise _error("DoesNotExistException", f"Maintenance window target {target_id} does not exist")
    return target


def _drop_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _check_cutoff(duration: Any, cutoff: Any) -> None:
    if duration is not None and cutoff is not None and int(cutoff) >= int(duration):
        raise _invalid(f"The cutoff ({cutoff}) must be less than the duration ({duration}).")


def _check_offset(schedule: Any, offset: Any) -> None:
    if offset is not None and not str(schedule or "").startswith("cron("):
        raise _invalid("ScheduleOffset is only supported for cron expressions.")


def _check_rate_control(task_id_or_arn: str, targets: Any, max_concurrency: Any, max_errors: Any) -> None:
    if targets and (max_concurrency is None or max_errors is None):
        raise _invalid(
            f"MaxConcurrency and MaxErrors are required for task {task_id_or_arn} because it has targets."
        )


# --------------------------------------------------------------------------------------------
# Paging
# --------------------------------------------------------------------------------------------


def _encode_token(operation: str, offset: int) -> str:
    raw = json.dumps({"op": operation, "offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(operation: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["op"] != operation or not isinstance(data["offset"], int) or data["offset"] < 0:
            raise ValueError(token)
        return int(data["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _error("InvalidNextToken", "The specified token isn't valid.") from exc


def _page(
    operation: str,
    params: Mapping[str, Any],
    items: list[Any],
    *,
    default: int,
    lo: int,
    hi: int,
) -> tuple[list[Any], str | None]:
    max_results = params.get("MaxResults")
    if max_results is None:
        size = default
    else:
        size = int(max_results)
        if not lo <= size <= hi:
            raise _invalid(
                f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy "
                f"constraint: Member must have value between {lo} and {hi}"
            )
    start = _decode_token(operation, params.get("NextToken"))
    chunk = items[start : start + size]
    more = start + size < len(items)
    return chunk, (_encode_token(operation, start + size) if more else None)


def _filters(params: Mapping[str, Any], allowed: Iterable[str]) -> list[tuple[str, list[str]]]:
    allowed = tuple(allowed)
    result: list[tuple[str, list[str]]] = []
    for item in params.get("Filters") or []:
        key = item.get("Key")
        if key not in allowed:
            raise _invalid(f"Invalid filter key {key!r}; supported keys: {', '.join(allowed)}")
        result.append((key, [str(v) for v in item.get("Values") or []]))
    return result


# --------------------------------------------------------------------------------------------
# Maintenance windows
# --------------------------------------------------------------------------------------------

_ORIGINALS: dict[str, Callable[..., Any]] = {}

_WINDOW_FIELDS: Final = {
    "Name": "name",
    "Description": "description",
    "StartDate": "start_date",
    "EndDate": "end_date",
    "Schedule": "schedule",
    "ScheduleTimezone": "schedule_timezone",
    "ScheduleOffset": "schedule_offset",
    "Duration": "duration",
    "Cutoff": "cutoff",
    "AllowUnassociatedTargets": "tagpatch_allow_unassociated_targets",
    "Enabled": "tagpatch_enabled",
}
_WINDOW_REPLACE_REQUIRED: Final = ("Name", "Schedule", "Duration", "Cutoff", "AllowUnassociatedTargets")


def _window_fields(window: FakeMaintenanceWindow) -> dict[str, Any]:
    _window_defaults(window)
    data: dict[str, Any] = {"WindowId": window.id}
    data.update({name: getattr(window, attr, None) for name, attr in _WINDOW_FIELDS.items()})
    return _drop_none(data)


def _create_maintenance_window(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    backend = _backend(self)
    _check_cutoff(params.get("Duration"), params.get("Cutoff"))
    _check_offset(params.get("Schedule"), params.get("ScheduleOffset"))
    tokens: dict[str, str] = backend.__dict__.setdefault("tagpatch_client_tokens", {})
    token = params.get("ClientToken")
    if token and tokens.get(token) in backend.windows:
        return ActionResult({"WindowId": tokens[token]})
    if len(backend.windows) >= _STATE.window_quota:
        raise _ResourceLimitExceeded(
            f"Maintenance window limit exceeded: this account has {len(backend.windows)} maintenance "
            f"windows, the maximum allowed is {_STATE.window_quota}."
        )
    result = _ORIGINALS["create_maintenance_window"](self)
    window_id = result.result["WindowId"]
    window = backend.windows[window_id]
    _window_defaults(window)
    window.tagpatch_allow_unassociated_targets = bool(params.get("AllowUnassociatedTargets", False))  # type: ignore[attr-defined]
    if token:
        tokens[token] = window_id
    return result  # type: ignore[no-any-return]


def _get_maintenance_window(self: SimpleSystemManagerResponse) -> ActionResult:
    window = _window(_backend(self), _params(self).get("WindowId", ""))
    data = _window_fields(window)
    data["CreatedDate"] = window.tagpatch_created  # type: ignore[attr-defined]
    data["ModifiedDate"] = window.tagpatch_modified  # type: ignore[attr-defined]
    return ActionResult(data)


def _update_maintenance_window(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    replace = bool(params.get("Replace", False))
    if replace:
        missing = [name for name in _WINDOW_REPLACE_REQUIRED if params.get(name) is None]
        if missing:
            raise _invalid(f"Replace=true requires {', '.join(missing)}.")
    new = {name: getattr(window, attr, None) for name, attr in _WINDOW_FIELDS.items()}
    for name in _WINDOW_FIELDS:
        if name in params and params[name] is not None:
            new[name] = params[name]
        elif replace:
            new[name] = True if name == "Enabled" else None
    _check_cutoff(new["Duration"], new["Cutoff"])
    _check_offset(new["Schedule"], new["ScheduleOffset"])
    for name, attr in _WINDOW_FIELDS.items():
        setattr(window, attr, new[name])
    window.tagpatch_modified = _now()  # type: ignore[attr-defined]
    return ActionResult(_window_fields(window))


def _window_identity(window: FakeMaintenanceWindow) -> dict[str, Any]:
    data = _window_fields(window)
    data.pop("AllowUnassociatedTargets", None)
    return data


def _describe_maintenance_windows(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    windows = list(_backend(self).windows.values())
    for window in windows:
        _window_defaults(window)
    for key, values in _filters(params, ("Name", "Enabled")):
        if key == "Name":
            windows = [w for w in windows if w.name in values]
        else:
            wanted = {v.lower() for v in values}
            windows = [w for w in windows if str(w.tagpatch_enabled).lower() in wanted]  # type: ignore[attr-defined]
    chunk, token = _page("DescribeMaintenanceWindows", params, windows, default=50, lo=10, hi=100)
    return ActionResult(
        _drop_none({"WindowIdentities": [_window_identity(w) for w in chunk], "NextToken": token})
    )


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------

_TARGET_FIELDS: Final = {
    "Targets": "targets",
    "OwnerInformation": "owner_information",
    "Name": "name",
    "Description": "description",
}


def _target_fields(target: FakeMaintenanceWindowTarget) -> dict[str, Any]:
    data: dict[str, Any] = {"WindowId": target.window_id, "WindowTargetId": target.window_target_id}
    data.update({name: getattr(target, attr, None) for name, attr in _TARGET_FIELDS.items()})
    return _drop_none(data)


def _describe_maintenance_window_targets(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    targets = list(window.targets.values())
    for key, values in _filters(params, ("Type", "WindowTargetId", "OwnerInformation")):
        if key == "Type":
            targets = [t for t in targets if t.resource_type in values]
        elif key == "WindowTargetId":
            targets = [t for t in targets if t.window_target_id in values]
        else:
            targets = [t for t in targets if t.owner_information in values]
    chunk, token = _page("DescribeMaintenanceWindowTargets", params, targets, default=50, lo=10, hi=100)
    items = [{**_target_fields(t), "ResourceType": t.resource_type} for t in chunk]
    return ActionResult(_drop_none({"Targets": items, "NextToken": token}))


def _update_maintenance_window_target(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    target = _target(window, params.get("WindowTargetId", ""))
    replace = bool(params.get("Replace", False))
    if replace and params.get("Targets") is None:
        raise _invalid("Replace=true requires Targets.")
    for name, attr in _TARGET_FIELDS.items():
        if name in params and params[name] is not None:
            setattr(target, attr, params[name])
        elif replace:
            setattr(target, attr, None)
    return ActionResult(_target_fields(target))


def _register_target_with_maintenance_window(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    _check_target_quota(_window(_backend(self), params.get("WindowId", "")))
    return _ORIGINALS["register_target_with_maintenance_window"](self)  # type: ignore[no-any-return]


def _targets_referencing(window: FakeMaintenanceWindow, target_id: str) -> list[str]:
    users = []
    for task in window.tasks.values():
        for target in task.targets or []:
            if target.get("Key") == "WindowTargetIds" and target_id in (target.get("Values") or []):
                users.append(task.window_task_id)
    return users


def _deregister_target_from_maintenance_window(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    target_id = params.get("WindowTargetId", "")
    _target(window, target_id)
    users = _targets_referencing(window, target_id)
    if params.get("Safe") and users:
        raise _error(
            "TargetInUseException",
            f"Target {target_id} is referenced by task(s) {', '.join(users)}.",
        )
    del window.targets[target_id]
    return ActionResult({"WindowId": window.id, "WindowTargetId": target_id})


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------

_TASK_FIELDS: Final = {
    "Targets": "targets",
    "TaskArn": "task_arn",
    "ServiceRoleArn": "service_role_arn",
    "TaskParameters": "task_parameters",
    "TaskInvocationParameters": "task_invocation_parameters",
    "Priority": "priority",
    "MaxConcurrency": "max_concurrency",
    "MaxErrors": "max_errors",
    "LoggingInfo": "logging_info",
    "Name": "name",
    "Description": "description",
    "CutoffBehavior": "cutoff_behavior",
    "AlarmConfiguration": "tagpatch_alarm_configuration",
}
_TASK_SUMMARY_FIELDS: Final = tuple(name for name in _TASK_FIELDS if name != "TaskInvocationParameters")


def _task_fields(task: FakeMaintenanceWindowTask, names: Iterable[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"WindowId": task.window_id, "WindowTaskId": task.window_task_id}
    data.update({name: getattr(task, _TASK_FIELDS[name], None) for name in names})
    return _drop_none(data)


def _register_task_with_maintenance_window(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    _check_rate_control(
        str(params.get("TaskArn")),
        params.get("Targets"),
        params.get("MaxConcurrency"),
        params.get("MaxErrors"),
    )
    _check_task_quota(window)
    _check_targets_per_task(params.get("Targets"))
    result = _ORIGINALS["register_task_with_maintenance_window"](self)
    task = window.tasks[result.result["WindowTaskId"]]
    task.tagpatch_alarm_configuration = params.get("AlarmConfiguration")  # type: ignore[attr-defined]
    return result  # type: ignore[no-any-return]


def _get_maintenance_window_task(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    task = _task(window, params.get("WindowTaskId", ""))
    data = _task_fields(task, _TASK_FIELDS)
    data["TaskType"] = task.task_type
    return ActionResult(_echo_task_defaults(data))


# AWS-RunPatchBaseline's parameters besides Operation and RebootOption (the document has five:
# https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-about-aws-runpatchbaseline.html).
_RUN_PATCH_BASELINE_UNSET = ("SnapshotId", "InstallOverrideList", "BaselineOverride")


def _echo_task_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """The task as GetMaintenanceWindowTask reports it: with defaults for what nobody set.

    AWS's published sample (aws-cli, awscli/examples/ssm/get-maintenance-window-task.rst, shown
    on https://docs.aws.amazon.com/cli/latest/reference/ssm/get-maintenance-window-task.html)
    answers ``"TaskParameters": {}``, ``"Comment": ""`` and the document's other parameters as
    ``[""]``; Run Command answers ``CloudWatchOutputConfig`` as ``CloudWatchOutputEnabled: false``
    when none was given (the ListCommandInvocations sample of the SSM API reference). moto echoed
    exactly what was sent, which hid drift checks that would never settle on a real account.
    """
    data = copy.deepcopy(data)
    data.setdefault("TaskParameters", {})
    run = data.get("TaskInvocationParameters", {}).get("RunCommand")
    if run is None:
        return data
    run.setdefault("Comment", "")
    run.setdefault("CloudWatchOutputConfig", {"CloudWatchOutputEnabled": False})
    if data.get("TaskArn") == "AWS-RunPatchBaseline":
        parameters = run.setdefault("Parameters", {})
        for name in _RUN_PATCH_BASELINE_UNSET:
            parameters.setdefault(name, [""])
    return data


def _update_maintenance_window_task(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    task = _task(window, params.get("WindowTaskId", ""))
    replace = bool(params.get("Replace", False))
    if replace and params.get("TaskArn") is None:
        raise _invalid("Replace=true requires TaskArn.")
    new = {name: getattr(task, attr, None) for name, attr in _TASK_FIELDS.items()}
    for name in _TASK_FIELDS:
        if name in params and params[name] is not None:
            new[name] = params[name]
        elif replace:
            new[name] = None
    _check_rate_control(task.window_task_id, new["Targets"], new["MaxConcurrency"], new["MaxErrors"])
    # botocore's model lists only DoesNotExistException and InternalServerError for
    # UpdateMaintenanceWindowTask; the quota still binds (a task can never refer to more targets
    # than the quota), so the fake refuses with the service's quota error, which every botocore
    # client parses as ``ResourceLimitExceededException`` (the service's exceptions are shared).
    _check_targets_per_task(new["Targets"])
    for name, attr in _TASK_FIELDS.items():
        setattr(task, attr, new[name])
    return ActionResult(_task_fields(task, _TASK_FIELDS))


def _describe_maintenance_window_tasks(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    tasks = list(window.tasks.values())
    for key, values in _filters(params, ("WindowTaskId", "TaskArn", "Priority", "TaskType")):
        if key == "WindowTaskId":
            tasks = [t for t in tasks if t.window_task_id in values]
        elif key == "TaskArn":
            tasks = [t for t in tasks if t.task_arn in values]
        elif key == "Priority":
            tasks = [t for t in tasks if str(t.priority) in values]
        else:
            tasks = [t for t in tasks if t.task_type in values]
    chunk, token = _page("DescribeMaintenanceWindowTasks", params, tasks, default=50, lo=10, hi=100)
    items = [{**_task_fields(t, _TASK_SUMMARY_FIELDS), "Type": t.task_type} for t in chunk]
    return ActionResult(_drop_none({"Tasks": items, "NextToken": token}))


def _deregister_task_from_maintenance_window(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    window = _window(_backend(self), params.get("WindowId", ""))
    task_id = params.get("WindowTaskId", "")
    _task(window, task_id)
    del window.tasks[task_id]
    return ActionResult({"WindowId": window.id, "WindowTaskId": task_id})


# --------------------------------------------------------------------------------------------
# Patch groups and patch state
# --------------------------------------------------------------------------------------------


def _default_baseline_for(region: str, operating_system: str) -> str | None:
    defaults: dict[str, str] = FakePatchGroup("default", region).default_associations
    return defaults.get(operating_system)


def _baseline_id(value: str) -> str:
    """A baseline's id from its id or ARN (``arn:aws:ssm:<region>:<account>:patchbaseline/<id>``).

    SSM accepts either in ``BaselineId`` (the API reference's pattern allows ``:`` and ``/``, and
    GetPatchBaseline asks for the ARN of AWS managed baselines:
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetPatchBaseline.html),
    while DescribePatchGroups reports the id only.
    """
    head, _, tail = value.rpartition(":patchbaseline/")
    return tail if head.startswith("arn:") else value


def _register_patch_baseline_for_patch_group(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    backend = _backend(self)
    baseline_id = _baseline_id(params.get("BaselineId", ""))
    patch_group = params.get("PatchGroup", "")
    baseline = backend.baselines.get(baseline_id)
    if baseline is None:
        raise _error("DoesNotExistException", f"Patch baseline {baseline_id} does not exist")
    group = backend.patch_groups.get(patch_group)
    if group is None:
        group = FakePatchGroup(patch_group, backend.region_name)
        backend.patch_groups[patch_group] = group
    current = group.associations.get(baseline.operating_system)
    if current in backend.baselines and current != baseline_id:
        raise _error(
            "AlreadyExistsException",
            f"Patch group {patch_group} is already registered with baseline {current} "
            f"for {baseline.operating_system}",
        )
    registered = _groups_of(backend, baseline_id)
    if patch_group not in registered and len(registered) >= _STATE.groups_per_baseline_quota:
        raise _ResourceLimitExceeded(
            f"Patch baseline {baseline_id} already has {len(registered)} patch groups, the maximum "
            f"allowed is {_STATE.groups_per_baseline_quota}."
        )
    group.associations[baseline.operating_system] = baseline_id
    return ActionResult({"BaselineId": baseline_id, "PatchGroup": patch_group})


def _groups_of(backend: SimpleSystemManagerBackend, baseline_id: str) -> list[str]:
    return sorted(
        name for name, group in backend.patch_groups.items() if baseline_id in group.associations.values()
    )


def _get_patch_baseline(self: SimpleSystemManagerResponse) -> ActionResult:
    """GetPatchBaseline (moto has none): the baseline's fields, with the ``PatchGroups`` registered
    with it, as the API reference's response syntax lists them."""
    backend = _backend(self)
    baseline_id = _baseline_id(_params(self).get("BaselineId", ""))
    baseline = backend.baselines.get(baseline_id)
    if baseline is None:
        raise _error("DoesNotExistException", f"Patch baseline {baseline_id} does not exist")
    return ActionResult(
        _drop_none(
            {
                "BaselineId": baseline.id,
                "Name": baseline.name,
                "OperatingSystem": baseline.operating_system,
                "Description": baseline.description or None,
                "PatchGroups": _groups_of(backend, baseline.id),
            }
        )
    )


def _deregister_patch_baseline_for_patch_group(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    backend = _backend(self)
    baseline_id = _baseline_id(params.get("BaselineId", ""))
    patch_group = params.get("PatchGroup", "")
    baseline = backend.baselines.get(baseline_id)
    group = backend.patch_groups.get(patch_group)
    if baseline is None or group is None or group.associations.get(baseline.operating_system) != baseline_id:
        raise _error(
            "InvalidResourceId",
            f"Patch baseline {baseline_id} is not registered with patch group {patch_group}",
        )
    default = _default_baseline_for(backend.region_name, baseline.operating_system)
    if default is None:
        group.associations.pop(baseline.operating_system, None)
    else:
        group.associations[baseline.operating_system] = default
    return ActionResult({"BaselineId": baseline_id, "PatchGroup": patch_group})


def _mappings(backend: SimpleSystemManagerBackend) -> list[dict[str, Any]]:
    mappings: list[dict[str, Any]] = []
    for name in sorted(backend.patch_groups):
        group = backend.patch_groups[name]
        for operating_system in sorted(group.associations):
            baseline = backend.baselines.get(group.associations[operating_system])
            if baseline is None:  # an AWS default association, not a registration
                continue
            identity = {
                "BaselineId": baseline.id,
                "BaselineName": baseline.name,
                "OperatingSystem": baseline.operating_system,
                "BaselineDescription": baseline.description or None,
                "DefaultBaseline": bool(baseline.default_baseline),
            }
            mappings.append({"PatchGroup": name, "BaselineIdentity": _drop_none(identity)})
    return mappings


def _describe_patch_groups(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    mappings = _mappings(_backend(self))
    for key, values in _filters(params, ("NAME_PREFIX", "OPERATING_SYSTEM")):
        if key == "NAME_PREFIX":
            mappings = [m for m in mappings if any(m["PatchGroup"].startswith(v) for v in values)]
        else:
            mappings = [m for m in mappings if m["BaselineIdentity"]["OperatingSystem"] in values]
    chunk, token = _page("DescribePatchGroups", params, mappings, default=100, lo=1, hi=100)
    return ActionResult(_drop_none({"Mappings": chunk, "NextToken": token}))


def _patch_states(backend: SimpleSystemManagerBackend) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = backend.__dict__.setdefault("tagpatch_patch_states", {})
    return states


def _group_states(backend: SimpleSystemManagerBackend, patch_group: str) -> list[dict[str, Any]]:
    return [s for s in _patch_states(backend).values() if s["PatchGroup"] == patch_group]


#: DescribePatchGroupState output member -> InstancePatchState count it is derived from (> 0).
_GROUP_STATE_COUNTS: Final = {
    "InstancesWithInstalledPatches": "InstalledCount",
    "InstancesWithInstalledOtherPatches": "InstalledOtherCount",
    "InstancesWithInstalledPendingRebootPatches": "InstalledPendingRebootCount",
    "InstancesWithInstalledRejectedPatches": "InstalledRejectedCount",
    "InstancesWithMissingPatches": "MissingCount",
    "InstancesWithFailedPatches": "FailedCount",
    "InstancesWithNotApplicablePatches": "NotApplicableCount",
    "InstancesWithUnreportedNotApplicablePatches": "UnreportedNotApplicableCount",
    "InstancesWithCriticalNonCompliantPatches": "CriticalNonCompliantCount",
    "InstancesWithSecurityNonCompliantPatches": "SecurityNonCompliantCount",
    "InstancesWithOtherNonCompliantPatches": "OtherNonCompliantCount",
    "InstancesWithAvailableSecurityUpdates": "AvailableSecurityUpdateCount",
}


def _describe_patch_group_state(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    patch_group = params.get("PatchGroup")
    if not patch_group:
        raise _invalid("PatchGroup is required.")
    states = _group_states(_backend(self), patch_group)
    result: dict[str, int] = {"Instances": len(states)}
    for member, count in _GROUP_STATE_COUNTS.items():
        result[member] = sum(1 for s in states if int(s.get(count) or 0) > 0)
    return ActionResult(result)


_COMPARATORS: Final[dict[str, Callable[[int, int], bool]]] = {
    "Equal": lambda a, b: a == b,
    "NotEqual": lambda a, b: a != b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
}


def _patch_state_filters(params: Mapping[str, Any]) -> list[tuple[str, Callable[[int, int], bool], int]]:
    raw = params.get("Filters") or []
    if len(raw) > 4:
        raise _invalid("Filters can contain at most 4 items.")
    parsed: list[tuple[str, Callable[[int, int], bool], int]] = []
    for item in raw:
        key, kind, values = item.get("Key"), item.get("Type"), item.get("Values") or []
        if key not in PATCH_STATE_FILTER_KEYS:
            raise _error("InvalidFilter", f"Invalid filter key {key!r}.")
        if kind not in _COMPARATORS:
            raise _error("InvalidFilter", f"Invalid filter type {kind!r} for key {key}.")
        if len(values) != 1 or not str(values[0]).isdigit():
            raise _error(
                "InvalidFilter", f"Filter {key} needs exactly one integer value >= 0, got {values!r}."
            )
        parsed.append((key, _COMPARATORS[kind], int(values[0])))
    return parsed


def _describe_instance_patch_states_for_patch_group(self: SimpleSystemManagerResponse) -> ActionResult:
    params = _params(self)
    patch_group = params.get("PatchGroup")
    if not patch_group:
        raise _invalid("PatchGroup is required.")
    filters = _patch_state_filters(params)
    states = [
        s
        for s in _group_states(_backend(self), patch_group)
        if all(compare(int(s.get(key) or 0), value) for key, compare, value in filters)
    ]
    chunk, token = _page(
        "DescribeInstancePatchStatesForPatchGroup", params, states, default=50, lo=10, hi=100
    )
    result: dict[str, Any] = {}
    if chunk:
        result["InstancePatchStates"] = [dict(s) for s in chunk]
    if token:
        result["NextToken"] = token
    return ActionResult(result)


# --------------------------------------------------------------------------------------------
# Seeding helpers (plain Python, no HTTP)
# --------------------------------------------------------------------------------------------

_TIMESTAMP_FIELDS: Final = ("OperationStartTime", "OperationEndTime", "LastNoRebootInstallOperationTime")


def seed_instance_patch_state(
    state: Mapping[str, Any], region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT_ID
) -> dict[str, Any]:
    """Store one ``InstancePatchState`` in the moto SSM backend of ``account_id``/``region``.

    ``state`` must satisfy the model's ``InstancePatchState`` shape (required members, types,
    ranges, patterns, enums); ``OwnerInformation: ""`` is tolerated as the real service returns
    it. Timestamps may be datetimes (naive = UTC) or ISO-8601 strings. A later state for the
    same ``InstanceId`` replaces the earlier one. Seed inside ``mock_aws`` (starting ``mock_aws``
    resets moto's backends). Returns the stored copy.
    """
    shape = _SSM_MODEL.shape_for("InstancePatchState")
    checked = {k: v for k, v in state.items() if not (k == "OwnerInformation" and v == "")}
    problems = validate_shape(shape, checked, "InstancePatchState")
    if problems:
        raise ValueError("invalid InstancePatchState:\n  " + "\n  ".join(problems))
    stored = dict(state)
    for name in _TIMESTAMP_FIELDS:
        if stored.get(name) is not None:
            stored[name] = parse_to_aware_datetime(stored[name])
    backend = ssm_backends[account_id][region]
    with _STATE.lock:
        _patch_states(backend)[stored["InstanceId"]] = stored
        if not any(b is backend for b in _STATE.seeded_backends):
            _STATE.seeded_backends.append(backend)
    return dict(stored)


def set_command_progress(
    command_id: str,
    status: str,
    *,
    completed: int,
    account_id: str = DEFAULT_ACCOUNT_ID,
    region: str = "us-east-1",
) -> None:
    """What ``ListCommands`` reports of a sent command from now on: its ``Status`` and
    ``CompletedCount`` (moto's commands are ``Success`` with every target completed as soon as they
    are sent; Run Command's are ``InProgress`` until their invocations end)."""
    command = ssm_backends[account_id][region].get_command_by_id(command_id)
    command.status = status
    command.completed_count = completed


def clear_patch_states() -> None:
    """Forget every seeded instance patch state in every backend."""
    with _STATE.lock:
        for backend in _STATE.seeded_backends:
            backend.__dict__.pop("tagpatch_patch_states", None)
        _STATE.seeded_backends.clear()


def make_instance_patch_state(
    instance_id: str,
    patch_group: str,
    *,
    missing: int = 0,
    failed: int = 0,
    installed: int = 10,
    installed_other: int = 0,
    pending_reboot: int = 0,
    rejected: int = 0,
    not_applicable: int = 0,
    unreported_not_applicable: int = 0,
    available_security_updates: int = 0,
    critical: int = 0,
    security: int = 0,
    other: int = 0,
    operation: str = "Install",
    end_time: datetime | None = None,
    baseline_id: str = "pb-0123456789abcdef0",
    reboot_option: str | None = "RebootIfNeeded",
) -> dict[str, Any]:
    """Build a valid ``InstancePatchState`` dict (the operation took 10 minutes, ending at ``end_time``)."""
    if end_time is None:
        end = _now().replace(microsecond=0)
    else:  # as parse_to_aware_datetime treats a datetime: naive means UTC
        end = end_time if end_time.tzinfo is not None else end_time.replace(tzinfo=UTC)
    state: dict[str, Any] = {
        "InstanceId": instance_id,
        "PatchGroup": patch_group,
        "BaselineId": baseline_id,
        "OperationStartTime": end - timedelta(minutes=10),
        "OperationEndTime": end,
        "Operation": operation,
        "InstalledCount": installed,
        "InstalledOtherCount": installed_other,
        "InstalledPendingRebootCount": pending_reboot,
        "InstalledRejectedCount": rejected,
        "MissingCount": missing,
        "FailedCount": failed,
        "UnreportedNotApplicableCount": unreported_not_applicable,
        "NotApplicableCount": not_applicable,
        "AvailableSecurityUpdateCount": available_security_updates,
        "CriticalNonCompliantCount": critical,
        "SecurityNonCompliantCount": security,
        "OtherNonCompliantCount": other,
    }
    if reboot_option is not None:
        state["RebootOption"] = reboot_option
    problems = validate_shape(_SSM_MODEL.shape_for("InstancePatchState"), state, "InstancePatchState")
    if problems:
        raise ValueError("invalid InstancePatchState:\n  " + "\n  ".join(problems))
    return state


# --------------------------------------------------------------------------------------------
# Fault injection and call log
# --------------------------------------------------------------------------------------------


def _action_name(operation_name: str) -> str:
    if "_" in operation_name or operation_name[:1].islower():
        return "".join(part[:1].upper() + part[1:] for part in operation_name.split("_"))
    return operation_name


def inject_faults(operation_name: str, errors: list[str]) -> None:
    """Make the next ``len(errors)`` calls of ``operation_name`` fail with these error codes, in order.

    ``operation_name`` is the API name (``"DescribePatchGroupState"``; the boto3 snake-case name
    works too). ``ThrottlingException`` and other codes are HTTP 400; ``InternalServerError`` is
    500 (see :data:`FAULT_STATUS`). Afterwards the operation behaves normally.
    """
    action = _action_name(operation_name)
    with _STATE.lock:
        _STATE.faults.setdefault(action, deque()).extend(errors)


def clear_faults() -> None:
    """Drop every pending injected fault."""
    with _STATE.lock:
        _STATE.faults.clear()


def reset_calls() -> None:
    """Empty :data:`CALLS` (in place)."""
    with _STATE.lock:
        _STATE.calls.clear()


def _fault_response(self: SimpleSystemManagerResponse, action: str, code: str) -> Any:
    status = FAULT_STATUS.get(code, 400)
    body = json.dumps({"__type": code, "message": f"Injected {code} for {action} (emulator.fake_ssm)"})
    headers = dict(self.response_headers)
    headers.update(
        {"Content-Type": "application/x-amz-json-1.1", "X-Amzn-Errortype": code, "status": str(status)}
    )
    return status, headers, body


def _call_action(self: SimpleSystemManagerResponse) -> Any:
    action = self._get_action()
    with _STATE.lock:
        _STATE.calls.append(action)
        pending = _STATE.faults.get(action)
        code = pending.popleft() if pending else None
    if code is not None:
        return _fault_response(self, action, code)
    return _ORIGINALS["call_action"](self)


# --------------------------------------------------------------------------------------------
# Install / reset
# --------------------------------------------------------------------------------------------

_WRAPPED: Final[dict[str, Callable[..., Any]]] = {
    "call_action": _call_action,
    "create_maintenance_window": _create_maintenance_window,
    "register_task_with_maintenance_window": _register_task_with_maintenance_window,
    "register_target_with_maintenance_window": _register_target_with_maintenance_window,
}
_REPLACED: Final[dict[str, Callable[..., Any]]] = {
    "get_maintenance_window": _get_maintenance_window,
    "update_maintenance_window": _update_maintenance_window,
    "describe_maintenance_windows": _describe_maintenance_windows,
    "describe_maintenance_window_targets": _describe_maintenance_window_targets,
    "update_maintenance_window_target": _update_maintenance_window_target,
    "deregister_target_from_maintenance_window": _deregister_target_from_maintenance_window,
    "get_maintenance_window_task": _get_maintenance_window_task,
    "update_maintenance_window_task": _update_maintenance_window_task,
    "describe_maintenance_window_tasks": _describe_maintenance_window_tasks,
    "deregister_task_from_maintenance_window": _deregister_task_from_maintenance_window,
    "register_patch_baseline_for_patch_group": _register_patch_baseline_for_patch_group,
    "get_patch_baseline": _get_patch_baseline,
    "deregister_patch_baseline_for_patch_group": _deregister_patch_baseline_for_patch_group,
    "describe_patch_groups": _describe_patch_groups,
    "describe_patch_group_state": _describe_patch_group_state,
    "describe_instance_patch_states_for_patch_group": _describe_instance_patch_states_for_patch_group,
}


def install() -> None:
    """Attach the added/fixed operations to moto's SSM response class. Idempotent."""
    cls = SimpleSystemManagerResponse
    with _STATE.lock:
        if _STATE.installed:
            return
        for name, func in _WRAPPED.items():
            _ORIGINALS[name] = getattr(cls, name)
            setattr(cls, name, func)
        for name, func in _REPLACED.items():
            setattr(cls, name, func)
        _STATE.installed = True


def reset() -> None:
    """Clear seeded patch states, pending faults and the call log; restore AWS's default quotas."""
    clear_patch_states()
    clear_faults()
    reset_calls()
    set_window_quota(DEFAULT_WINDOW_QUOTA)
    set_task_quota(DEFAULT_TASK_QUOTA)
    set_target_quota(DEFAULT_TARGET_QUOTA)
    set_targets_per_task_quota(DEFAULT_TARGETS_PER_TASK_QUOTA)
    set_groups_per_baseline_quota(DEFAULT_GROUPS_PER_BASELINE_QUOTA)
