"""Which shared window each group's role goes into, within SSM's quotas (pure).

Systems Manager allows 50 maintenance windows per account and Region, 20 tasks and 100 targets
per window and 10 targets per task (AWS General Reference, "Systems Manager endpoints and quotas":
https://docs.aws.amazon.com/general/latest/gr/ssm.html). A group's role takes one target and one
task, so a window holds ``min(tasks, targets)`` groups; groups with the same :class:`WindowKey`
fill its windows in order and spill into a sibling window with the same schedule. The number of
windows is then the sum over keys of ``ceil(groups / capacity)``: the minimum the quotas allow.

The placement lives in one item of the groups table (:mod:`tagpatch.adapters.placements`), changed
by conditional writes only; :class:`Placement` is a read of it. A place is ``"<key id>:<n>"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def place_of(key_id: str, sibling: int) -> str:
    return f"{key_id}:{sibling}"


def split_place(place: str) -> tuple[str, int]:
    key_id, _, sibling = place.rpartition(":")
    return key_id, int(sibling)


def member_of(role: str, slug: str) -> str:
    return f"{role}:{slug}"


@dataclass
class Placement:
    """A read of the placement item."""

    members: dict[str, str] = field(default_factory=dict)  # "role:slug" -> place
    leaving: dict[str, set[str]] = field(default_factory=dict)  # "role:slug" -> places being left
    counts: dict[str, int] = field(default_factory=dict)  # place -> groups in it (or leaving it)
    window_ids: dict[str, str] = field(default_factory=dict)  # place -> maintenance window id
    creating: dict[str, float] = field(default_factory=dict)  # place -> creation lease expiry
    keys: dict[str, str] = field(default_factory=dict)  # key id -> the key, as JSON (for reports)
    windows: int = 0  # places allocated (each is, or is about to be, one window)

    def siblings(self, key_id: str) -> dict[int, int]:
        """The allocated places of ``key_id``: sibling index -> groups."""
        found: dict[int, int] = {}
        for place, count in self.counts.items():
            key, sibling = split_place(place)
            if key == key_id:
                found[sibling] = count
        return found

    def occupants(self, place: str) -> set[str]:
        """Members in ``place`` or still leaving it (their target and task may still be there)."""
        inside = {member for member, where in self.members.items() if where == place}
        return inside | {member for member, places in self.leaving.items() if place in places}

    def retired(self) -> list[str]:
        """Places with a window but no count: their last group left and the window is to go."""
        return sorted(place for place in self.window_ids if place not in self.counts)


@dataclass(frozen=True)
class Choice:
    """Where a member goes: ``place``, and whether the place is new (a window to make)."""

    place: str
    new: bool


class NoRoom(Exception):
    """The group cannot be placed without passing a quota; ``str`` says which."""


def choose(placement: Placement, key_id: str, capacity: int, max_windows: int, describe: str) -> Choice:
    """The first sibling of ``key_id`` with room, else a new sibling if the window quota allows.

    ``describe``: the key as people read it (for the refusal)."""
    siblings = placement.siblings(key_id)
    for sibling in sorted(siblings):
        if siblings[sibling] < capacity:
            return Choice(place_of(key_id, sibling), False)
    if placement.windows >= max_windows:
        raise NoRoom(
            f"no window has room: the {len(siblings)} window(s) of {describe} hold {capacity} "
            f"patch groups each (MaxTasksPerWindow/MaxTargetsPerWindow), and {placement.windows} of "
            f"MaxWindows={max_windows} maintenance windows are in use"
        )
    taken = set(siblings) | {
        split_place(place)[1]
        for place in (*placement.window_ids, *placement.creating)
        if split_place(place)[0] == key_id
    }
    sibling = next(index for index in range(len(taken) + 1) if index not in taken)
    return Choice(place_of(key_id, sibling), True)


def minimum_windows(groups_per_key: dict[str, int], capacity: int) -> int:
    """The fewest windows SSM's quotas allow for these groups: ``ceil(groups / capacity)`` per key."""
    return sum(-(-count // capacity) for count in groups_per_key.values() if count > 0)
