"""What the reconciler needs from AWS, as Protocols; :mod:`tagpatch.adapters` implements them and
the handler wires them in, so the reconciler imports neither boto3 nor an adapter."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tagpatch.models.records import GroupRecord
    from tagpatch.reconciler.placement import Placement


class QuotaExceeded(RuntimeError):
    """SSM answered ``ResourceLimitExceededException``: an account quota (50 maintenance windows
    by default) is used up. Raised by the adapter so the reconciler refuses the group with the
    reason instead of failing (and being retried into the same wall)."""


class Ssm(Protocol):
    """Maintenance windows, their targets and tasks, group settings parameters and baselines.
    ``params`` are the SSM API's request parameters, built by :mod:`tagpatch.reconciler.spec`."""

    def find_windows(self, name: str) -> list[dict[str, Any]]: ...

    def window_tags(self, window_id: str) -> dict[str, str]: ...

    def tag_window(self, window_id: str, tags: dict[str, str]) -> None:
        """Set ``tags`` on the window (other tags stay; a given key's value is replaced)."""
        ...

    def untag_window(self, window_id: str, keys: list[str]) -> None: ...

    def get_window(self, window_id: str) -> dict[str, Any] | None: ...

    def create_window(self, params: dict[str, Any]) -> str: ...

    def update_window(self, params: dict[str, Any]) -> None: ...

    def delete_window(self, window_id: str) -> None: ...

    def targets(self, window_id: str) -> list[dict[str, Any]]: ...

    def register_target(self, params: dict[str, Any]) -> str: ...

    def update_target(self, params: dict[str, Any]) -> None: ...

    def deregister_target(self, window_id: str, target_id: str) -> None: ...

    def tasks(self, window_id: str) -> list[dict[str, Any]]:
        """DescribeMaintenanceWindowTasks: each task's id, name and targets (not its parameters)."""
        ...

    def get_task(self, window_id: str, task_id: str) -> dict[str, Any] | None: ...

    def register_task(self, params: dict[str, Any]) -> str: ...

    def update_task(self, params: dict[str, Any]) -> None: ...

    def deregister_task(self, window_id: str, task_id: str) -> None: ...

    def get_parameter(self, name: str) -> str | None: ...

    def parameters_under(self, path: str) -> dict[str, str]: ...

    def groups_of_baseline(self, baseline_id: str) -> set[str]:
        """The patch groups registered with ``baseline_id`` (GetPatchBaseline's PatchGroups)."""
        ...

    def register_baseline(self, baseline_id: str, group: str) -> None: ...

    def deregister_baseline(self, baseline_id: str, group: str) -> None: ...


class Groups(Protocol):
    """The groups table: each group's record and a lease per group."""

    lease_seconds: int  # how long a lease lasts from ``acquire``'s ``now``

    def get(self, group: str) -> GroupRecord | None: ...

    def all(self) -> list[GroupRecord]: ...

    def acquire(self, group: str, owner: str, now: int) -> GroupRecord | None: ...

    def mark_pending(self, group: str, now: int) -> bool: ...

    def release(self, record: GroupRecord, owner: str, *, force: bool = False) -> bool: ...

    def queue(self, group: str) -> None: ...

    def pending(self, now: int) -> list[str]: ...

    def claim(self, group: str, slug: str, limit: int | None) -> str | None:
        """Admit ``group`` under ``slug``: None when it holds the claim (now or already), else why
        not (``slug`` is another group's, or ``limit`` groups are admitted). ``limit`` None: no
        limit (a group that already had windows before claims existed)."""
        ...

    def unclaim(self, group: str, slug: str) -> None:
        """Give up ``group``'s claim on ``slug`` (its windows are gone), freeing its place."""
        ...

    # the placement item (tagpatch.adapters.placements) -----------------------------------------
    def read_placement(self) -> Placement: ...

    def place(
        self,
        member: str,
        place: str,
        *,
        new: bool,
        current: str | None,
        capacity: int,
        max_windows: int,
        key_id: str,
        key: dict[str, Any],
    ) -> bool: ...

    def leave(self, member: str, place: str, *, moved: bool) -> int | None: ...

    def retire(self, place: str, *, has_window: bool) -> bool: ...

    def forget_window(self, place: str) -> None: ...

    def lease_window(self, place: str, owner: str, now: int, seconds: int) -> bool: ...

    def set_window(self, place: str, window_id: str, owner: str) -> bool: ...

    def release_window_lease(self, place: str, owner: str) -> None: ...

    def drop_window(self, place: str, window_id: str) -> None: ...


class Fleet(Protocol):
    """EC2: how many non-terminated instances carry each value of the group tag."""

    def group_sizes(self, tag_key: str) -> Counter[str]: ...
