"""SSM reads remembered for one reconcile-queue message, so a shared window is read once, not once
per group: its settings, targets and tasks, each task, and each patch baseline's groups.

A write forgets what it could have changed (everything of its window; a baseline's groups), so
what a group reads after another group's write is what SSM holds. What another invocation writes
meanwhile is not seen, which is safe: every group's reads are of its own target and task (its
lease keeps other invocations off them), and the cleanup of a window lists it before it reads the
placement (see ``Reconciler._clean_window``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tagpatch.reconciler.ports import Ssm

T = TypeVar("T")


class CachedSsm:
    """An :class:`~tagpatch.reconciler.ports.Ssm` remembering its reads until a write forgets them."""

    def __init__(self, ssm: Ssm) -> None:
        self._ssm = ssm
        self._memo: dict[tuple[str, ...], Any] = {}

    def _read(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = load()
        value: T = self._memo[key]
        return value

    def _forget(self, window_id: str) -> None:
        """Everything read of ``window_id``, and every lookup of windows by name."""
        for key in [key for key in self._memo if key[0] == "find" or key[1:2] == (window_id,)]:
            del self._memo[key]

    # windows ---------------------------------------------------------------------------------
    def find_windows(self, name: str) -> list[dict[str, Any]]:
        return self._read(("find", name), lambda: self._ssm.find_windows(name))

    def window_tags(self, window_id: str) -> dict[str, str]:
        return self._read(("tags", window_id), lambda: self._ssm.window_tags(window_id))

    def tag_window(self, window_id: str, tags: dict[str, str]) -> None:
        self._forget(window_id)
        self._ssm.tag_window(window_id, tags)

    def untag_window(self, window_id: str, keys: list[str]) -> None:
        self._forget(window_id)
        self._ssm.untag_window(window_id, keys)

    def get_window(self, window_id: str) -> dict[str, Any] | None:
        return self._read(("window", window_id), lambda: self._ssm.get_window(window_id))

    def create_window(self, params: dict[str, Any]) -> str:
        window_id = self._ssm.create_window(params)
        self._forget(window_id)
        return window_id

    def update_window(self, params: dict[str, Any]) -> None:
        self._forget(str(params["WindowId"]))
        self._ssm.update_window(params)

    def delete_window(self, window_id: str) -> None:
        self._forget(window_id)
        self._ssm.delete_window(window_id)

    # targets and tasks -----------------------------------------------------------------------
    def targets(self, window_id: str) -> list[dict[str, Any]]:
        return self._read(("targets", window_id), lambda: self._ssm.targets(window_id))

    def register_target(self, params: dict[str, Any]) -> str:
        self._forget(str(params["WindowId"]))
        return self._ssm.register_target(params)

    def update_target(self, params: dict[str, Any]) -> None:
        self._forget(str(params["WindowId"]))
        self._ssm.update_target(params)

    def deregister_target(self, window_id: str, target_id: str) -> None:
        self._forget(window_id)
        self._ssm.deregister_target(window_id, target_id)

    def tasks(self, window_id: str) -> list[dict[str, Any]]:
        return self._read(("tasks", window_id), lambda: self._ssm.tasks(window_id))

    def get_task(self, window_id: str, task_id: str) -> dict[str, Any] | None:
        return self._read(("task", window_id, task_id), lambda: self._ssm.get_task(window_id, task_id))

    def register_task(self, params: dict[str, Any]) -> str:
        self._forget(str(params["WindowId"]))
        return self._ssm.register_task(params)

    def update_task(self, params: dict[str, Any]) -> None:
        self._forget(str(params["WindowId"]))
        self._ssm.update_task(params)

    def deregister_task(self, window_id: str, task_id: str) -> None:
        self._forget(window_id)
        self._ssm.deregister_task(window_id, task_id)

    # settings and baselines (settings are never remembered: each group reads its own once) ---
    def get_parameter(self, name: str) -> str | None:
        return self._ssm.get_parameter(name)

    def parameters_under(self, path: str) -> dict[str, str]:
        return self._ssm.parameters_under(path)

    def groups_of_baseline(self, baseline_id: str) -> set[str]:
        return self._read(("baseline", baseline_id), lambda: self._ssm.groups_of_baseline(baseline_id))

    def register_baseline(self, baseline_id: str, group: str) -> None:
        self._memo.pop(("baseline", baseline_id), None)
        self._ssm.register_baseline(baseline_id, group)

    def deregister_baseline(self, baseline_id: str, group: str) -> None:
        self._memo.pop(("baseline", baseline_id), None)
        self._ssm.deregister_baseline(baseline_id, group)
