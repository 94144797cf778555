"""Pure planning: what must change in SSM so that one window bundle matches its spec.

Each function takes the spec and what SSM reported, and returns the id to keep plus the actions
that converge it. Nothing here calls AWS, so every half-made or drifted state is a unit test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tagpatch.reconciler.spec import TargetSpec, TaskSpec, WindowSpec

ActionKind = Literal[
    "create_window",
    "update_window",
    "tag_window",
    "untag_window",
    "delete_window",
    "register_target",
    "update_target",
    "deregister_target",
    "register_task",
    "update_task",
    "deregister_task",
    "register_baseline",
    "deregister_baseline",
]


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    role: str
    reason: str
    resource_id: str | None = None
    drift: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        where = f" {self.resource_id}" if self.resource_id else ""
        fields = f" [{', '.join(self.drift)}]" if self.drift else ""
        return f"{self.kind}{where} ({self.role}): {self.reason}{fields}"


@dataclass(frozen=True)
class Step:
    """The outcome of planning one resource: the id to use afterwards and the actions to get there."""

    keep_id: str | None
    actions: tuple[Action, ...]


def plan_window(spec: WindowSpec, role: str, owned: list[dict[str, Any]], preferred_id: str | None) -> Step:
    """``owned``: windows of this stack with the spec's name (GetMaintenanceWindow shape)."""
    if not owned:
        return Step(None, (Action("create_window", role, "no window"),))
    ids = sorted(window["WindowId"] for window in owned)
    keep_id = preferred_id if preferred_id in ids else ids[0]
    keep = next(window for window in owned if window["WindowId"] == keep_id)
    actions = [
        Action("delete_window", role, "duplicate window", window_id)
        for window_id in ids
        if window_id != keep_id
    ]
    if drift := spec.drift(keep):
        actions.append(Action("update_window", role, "window drifted", keep_id, tuple(drift)))
    return Step(keep_id, tuple(actions))


def _ours(name: str, legacy_name: str | None) -> Callable[[dict[str, Any]], bool]:
    return lambda resource: resource.get("Name") in (name, legacy_name)


def _current_first(name: str, id_key: str) -> Callable[[dict[str, Any]], tuple[bool, str]]:
    return lambda resource: (resource.get("Name") != name, str(resource[id_key]))


def plan_target(
    spec: TargetSpec, role: str, targets: list[dict[str, Any]], legacy_name: str | None = None
) -> Step:
    """``targets``: everything DescribeMaintenanceWindowTargets returned for the kept window.

    ``legacy_name``: the name an older naming rule gave this target, also ours (renamed as drift).
    """
    ours = _ours(spec.name, legacy_name)
    mine = sorted(filter(ours, targets), key=_current_first(spec.name, "WindowTargetId"))
    others = [t for t in targets if not ours(t)]
    actions = [
        Action("deregister_target", role, "target not made by TagPatch", t["WindowTargetId"]) for t in others
    ]
    if not mine:
        return Step(None, (*actions, Action("register_target", role, "no target")))
    keep = mine[0]
    actions += [Action("deregister_target", role, "duplicate target", t["WindowTargetId"]) for t in mine[1:]]
    if drift := spec.drift(keep):
        actions.append(Action("update_target", role, "target drifted", keep["WindowTargetId"], tuple(drift)))
    return Step(keep["WindowTargetId"], tuple(actions))


def plan_task(
    spec: TaskSpec,
    role: str,
    tasks: list[dict[str, Any]],
    target_id: str | None,
    legacy_name: str | None = None,
) -> Step:
    """``tasks``: GetMaintenanceWindowTask of every task in the kept window.

    ``target_id`` is None when the target is about to be registered; the task then follows it.
    ``legacy_name``: as for :func:`plan_target`.
    """
    ours = _ours(spec.name, legacy_name)
    mine = sorted(filter(ours, tasks), key=_current_first(spec.name, "WindowTaskId"))
    others = [t for t in tasks if not ours(t)]
    actions = [
        Action("deregister_task", role, "task not made by TagPatch", t["WindowTaskId"]) for t in others
    ]
    if not mine:
        return Step(None, (*actions, Action("register_task", role, "no task")))
    keep = mine[0]
    actions += [Action("deregister_task", role, "duplicate task", t["WindowTaskId"]) for t in mine[1:]]
    drift = spec.drift(keep, target_id) if target_id else ["Targets"]
    if drift:
        actions.append(Action("update_task", role, "task drifted", keep["WindowTaskId"], tuple(drift)))
    return Step(keep["WindowTaskId"], tuple(actions))
