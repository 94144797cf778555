"""Placing groups into shared windows within SSM's quotas (pure), and per-message remembered reads."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tagpatch.reconciler.placement import NoRoom, Placement, choose, minimum_windows, place_of
from tagpatch.reconciler.reads import CachedSsm


def view(counts: dict[str, int], windows: int | None = None, **extra: Any) -> Placement:
    return Placement(counts=dict(counts), windows=len(counts) if windows is None else windows, **extra)


def test_a_group_goes_into_the_first_sibling_with_room() -> None:
    placement = view({"k:0": 20, "k:1": 7, "other:0": 3})
    choice = choose(placement, "k", 20, 50, "install cron")
    assert (choice.place, choice.new) == ("k:1", False)


def test_a_full_key_spills_into_a_new_sibling_with_the_lowest_free_index() -> None:
    placement = view({"k:0": 20, "k:2": 20})
    choice = choose(placement, "k", 20, 50, "install cron")
    assert (choice.place, choice.new) == ("k:1", True)


def test_a_sibling_being_made_or_retired_is_not_reused_for_a_new_window() -> None:
    placement = view(
        {"k:0": 20}, windows=3, window_ids={"k:0": "mw-0", "k:1": "mw-retiring"}, creating={"k:2": 9.0}
    )
    choice = choose(placement, "k", 20, 50, "install cron")
    assert (choice.place, choice.new) == ("k:3", True)


def test_no_room_names_the_quota_and_the_key() -> None:
    placement = view({f"k{i}:0": 20 for i in range(50)})
    placement.counts["k:0"] = 20
    placement.windows = 50
    with pytest.raises(NoRoom, match=r"MaxWindows=50.*in use") as caught:
        choose(placement, "k", 20, 50, "install schedule cron(0 3 ? * SUN *) (UTC)")
    assert "install schedule cron(0 3 ? * SUN *)" in str(caught.value)


def test_exactly_the_capacity_fits_and_one_more_does_not_share() -> None:
    assert choose(view({"k:0": 19}), "k", 20, 1, "d").place == "k:0"
    with pytest.raises(NoRoom):
        choose(view({"k:0": 20}), "k", 20, 1, "d")


def test_minimum_windows_is_the_ceiling_per_key() -> None:
    assert minimum_windows({"a": 100, "b": 1, "c": 0, "d": 21}, 20) == 5 + 1 + 0 + 2
    assert minimum_windows({f"s{i}": 100 for i in range(10)}, 20) == 50


def test_occupants_include_members_still_leaving_and_retired_places_have_no_count() -> None:
    placement = Placement(
        members={"install:a": "k:0", "install:b": "j:0"},
        leaving={"install:b": {"k:0"}},
        counts={"k:0": 2, "j:0": 1},
        window_ids={"k:0": "mw-1", "j:0": "mw-2", "x:0": "mw-3"},
    )
    assert placement.occupants("k:0") == {"install:a", "install:b"}
    assert placement.retired() == ["x:0"]
    assert place_of("k", 3) == "k:3"


class CountingSsm:
    """Records every call; answers with one window, its targets and tasks."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> Any:
            self.calls[name] += 1
            if name in ("targets", "tasks", "find_windows"):
                return [{"Name": "x"}]
            if name == "groups_of_baseline":
                return {"g"}
            if name in ("get_window", "get_task"):
                return {"WindowId": args[0]}
            if name == "window_tags":
                return {}
            return "id"

        return call


def test_reads_are_remembered_until_a_write_to_their_window() -> None:
    plain = CountingSsm()
    ssm = CachedSsm(plain)  # type: ignore[arg-type]
    for _ in range(20):
        ssm.get_window("mw-1")
        ssm.targets("mw-1")
        ssm.tasks("mw-1")
        ssm.get_task("mw-1", "t-1")
        ssm.groups_of_baseline("pb-1")
    assert plain.calls == {"get_window": 1, "targets": 1, "tasks": 1, "get_task": 1, "groups_of_baseline": 1}
    ssm.register_target({"WindowId": "mw-1"})
    ssm.targets("mw-1")
    ssm.targets("mw-2")
    ssm.get_window("mw-1")
    assert plain.calls["targets"] == 3 and plain.calls["get_window"] == 2
    ssm.register_baseline("pb-1", "h")
    ssm.groups_of_baseline("pb-1")
    assert plain.calls["groups_of_baseline"] == 2


def test_settings_are_never_remembered() -> None:
    plain = CountingSsm()
    ssm = CachedSsm(plain)  # type: ignore[arg-type]
    ssm.get_parameter("/p")
    ssm.get_parameter("/p")
    assert plain.calls["get_parameter"] == 2


def _reconciler(**env: str) -> Any:
    from emulator.scenarios.settings import RECONCILER_ENV
    from tagpatch.reconciler.config import load_reconciler_config
    from tagpatch.reconciler.core import Reconciler

    config = load_reconciler_config({**RECONCILER_ENV, "AWS_REGION": "us-east-1", **env})
    return Reconciler(config, ssm=None, groups=None, ec2=None)  # type: ignore[arg-type]


def test_stagger_slots_shift_the_default_schedule_by_group_but_never_a_groups_own() -> None:
    off = _reconciler()
    assert off.settings_for("web", None).schedule == "cron(0 3 ? * SUN *)"
    staggered = _reconciler(STAGGER_SLOTS="4")
    schedules = {staggered.settings_for(f"g{i}", None).schedule for i in range(40)}
    assert schedules == {
        "cron(0 3 ? * SUN *)",
        "cron(30 3 ? * SUN *)",
        "cron(0 4 ? * SUN *)",
        "cron(30 4 ? * SUN *)",
    }
    assert staggered.settings_for("g7", None) == staggered.settings_for("g7", None)  # deterministic
    own = '{"schedule": "cron(15 2 ? * MON *)"}'
    assert staggered.settings_for("g7", own).schedule == "cron(15 2 ? * MON *)"


def test_window_capacity_is_the_smaller_per_window_quota() -> None:
    assert _reconciler().config.window_capacity == 20
    assert _reconciler(MAX_TASKS_PER_WINDOW="200", MAX_TARGETS_PER_WINDOW="100").config.window_capacity == 100
