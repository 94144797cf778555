"""A reconciler that dies between any two steps: the rerun converges, with no duplicates."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, get_args

import pytest

from emulator.scenarios.aws import World
from emulator.template import load_sam
from tagpatch.adapters.groups import LEASE_SECONDS
from tagpatch.handlers.reconciler import handle
from tagpatch.reconciler.core import START_RESERVE_SECONDS, WINDOW_LEASE_SECONDS, LeaseExpiring, Reconciler
from tagpatch.reconciler.plan import ActionKind
from tests.conftest import REPO_ROOT
from tests.reliability.test_faults import tag_event
from tests.support.clock import slow_reconciler

Loader = Callable[[str], Any]

# Every planned action kind is one SsmGateway write method of the same name.
SSM_WRITES = get_args(ActionKind)
NEW_GROUP_WRITES = 3  # window, target, task (benchmarks/reconciler_calls.py)


class Crash(BaseException):
    """The process dies: nothing after this point runs, not even the reconciler's error handling."""


def crash_at(reconciler: Reconciler, write: int, *, after: bool) -> list[str]:
    """Make the reconciler die just before (or just after) its ``write``-th SSM write."""
    done: list[str] = []
    for name in SSM_WRITES:
        original = getattr(reconciler.ssm, name)

        def wrapped(*args: Any, __name: str = name, __original: Any = original) -> Any:
            if len(done) + 1 == write and not after:
                raise Crash(f"before {__name}")
            result = __original(*args)
            done.append(__name)
            if len(done) == write and after:
                raise Crash(f"after {__name}")
            return result

        setattr(reconciler.ssm, name, wrapped)
    return done


def assert_converged_once(world: World) -> None:
    assert len(world.windows()) == 1, world.windows()
    window = world.window_of("web")
    assert window["Name"] == world.shared_window_name()
    assert len(world.targets(window["WindowId"])) == 1
    tasks = world.tasks(window["WindowId"])
    assert len(tasks) == 1
    assert world.record("web")["status"] == "converged"
    assert "lock_owner" not in world.record("web")
    placement = world.placement()  # one place, its window recorded, no making lease left
    place = world.record("web")["windows"]["install"]["place"]
    assert placement["windows"] == 1 and placement["p:install:web"] == place
    assert placement[f"w:{place}"] == window["WindowId"]
    assert not [name for name in placement if name.startswith(("l:", "lo:", "o:"))]


STEPS = [(n, False) for n in range(1, NEW_GROUP_WRITES + 1)] + [(NEW_GROUP_WRITES, True)]


@pytest.mark.parametrize(
    ("write", "after"), STEPS, ids=[f"{'after' if a else 'before'}-write-{n}" for n, a in STEPS]
)
def test_a_crash_between_steps_then_a_rerun_converges_without_duplicates(
    world: World, load_event: Loader, write: int, after: bool
) -> None:
    # Given a new group whose reconciler dies before write N (after the last write, that is
    # between the SSM writes and the DynamoDB release), leaving the lease held
    world.launch("web")
    crashing = world.make_reconciler()
    done = crash_at(crashing, write, after=after)
    with pytest.raises(Crash):
        handle(tag_event(load_event, "web"), crashing)
    assert len(done) == (write if after else write - 1)
    assert "lock_owner" in world.record("web")

    # When the event is redelivered before the lease expires, the rerun defers to the holder
    deferred = handle(tag_event(load_event, "web"), world.make_reconciler())
    assert deferred["groups"][0]["status"] == "deferred"

    # And once the dead holder's lease has expired, the scheduled reconcile (or a redelivery)
    # of a fresh container takes over
    rerun = world.make_reconciler()
    rerun.clock = lambda: time.time() + LEASE_SECONDS + 1
    result = handle(tag_event(load_event, "web"), rerun)
    scheduled = handle(load_event("reconciler-scheduled.json"), rerun)

    # Then the group is converged with exactly one window, target and task
    assert result["groups"][0]["status"] == "converged", result
    assert scheduled["groups"][0]["status"] == "converged", scheduled
    assert_converged_once(world)


def test_a_crash_after_every_write_of_each_run_still_converges(world: World, load_event: Loader) -> None:
    # Given a reconciler that dies after one more write on each run
    world.launch("web")
    later = 0
    for _ in range(NEW_GROUP_WRITES):
        reconciler = world.make_reconciler()
        later += LEASE_SECONDS + 1
        reconciler.clock = lambda offset=later: time.time() + offset  # type: ignore[misc]
        crash_at(reconciler, 1, after=True)
        # When each run crashes after its first write
        with pytest.raises(Crash):
            handle(tag_event(load_event, "web"), reconciler)
    # Then a final uninterrupted run converges, with no duplicate made along the way
    final = world.make_reconciler()
    final.clock = lambda: time.time() + later + LEASE_SECONDS + 1
    assert handle(tag_event(load_event, "web"), final)["groups"][0]["status"] == "converged"
    assert_converged_once(world)


# --- issue 12 #4: an invocation that outlives its lease ---------------------------------------


def test_a_reconcile_that_outlives_its_lease_writes_nothing_more(world: World, load_event: Loader) -> None:
    # Given a reconcile of a new group slowed (botocore retrying, say) past its lease, while
    # another invocation took the expired lease over and converged the group
    world.launch("web")
    slow = world.make_reconciler()
    late = [0.0]
    slow.clock = lambda: time.time() + late[0]
    find_windows = slow.ssm.find_windows

    def find_windows_slowly(name: str) -> list[dict[str, Any]]:
        found = find_windows(name)
        late[0] = LEASE_SECONDS + 1
        other = world.make_reconciler()
        other.clock = lambda: time.time() + LEASE_SECONDS + 1
        assert handle(tag_event(load_event, "web"), other)["groups"][0]["status"] == "converged"
        return found

    slow.ssm.find_windows = find_windows_slowly  # type: ignore[method-assign]

    # When the slow reconcile comes back to make the window it found missing
    # Then it stops before writing (no second window), leaving the other's record as it is
    with pytest.raises(LeaseExpiring):
        handle(tag_event(load_event, "web"), slow)
    assert_converged_once(world)


def test_the_lease_outlasts_the_reconciler_timeout() -> None:
    # An invocation must not be able to outlive its lease (template.yaml: ReconcilerFunction)
    function = load_sam(REPO_ROOT / "template.yaml")["Resources"]["ReconcilerFunction"]
    assert function["Properties"]["Timeout"] + 60 <= LEASE_SECONDS


def test_a_window_maker_that_outlives_its_making_lease_leaves_no_second_window(
    world: World, load_event: Loader
) -> None:
    # Given web's reconcile making the shared window slowed (botocore retrying, say) past the
    # window's making lease, though not past its group's lease, while db (same schedule) took the
    # expired making lease over and made the window
    world.launch("web")
    world.launch("db")
    slow = world.make_reconciler()
    late = [0.0]
    slow.clock = lambda: time.time() + late[0]
    find_windows = slow.ssm.find_windows

    def find_windows_slowly(name: str) -> list[dict[str, Any]]:
        found = find_windows(name)
        late[0] = WINDOW_LEASE_SECONDS + 1
        other = world.make_reconciler()
        other.clock = lambda: time.time() + WINDOW_LEASE_SECONDS + 1
        assert handle(tag_event(load_event, "db"), other)["groups"][0]["status"] == "converged"
        return found

    slow.ssm.find_windows = find_windows_slowly  # type: ignore[method-assign]
    with contextlib.suppress(Exception):  # stopping is fine: what it leaves behind is the point
        handle(tag_event(load_event, "web"), slow)

    # When the scheduled verify runs
    result = handle(load_event("reconciler-scheduled.json"), world.make_reconciler())

    # Then both groups are in the one shared window, and no second window with its name is left
    assert {g["group"]: g["status"] for g in result["groups"]} == {"db": "converged", "web": "converged"}
    assert [w["Name"] for w in world.windows()] == [world.shared_window_name()]
    assert world.window_of("web") == world.window_of("db")


# --- issue 12 #5: a lost wake-up ------------------------------------------------------------------


def test_a_deferred_event_whose_holder_died_is_retried_by_the_sweep(world: World, load_event: Loader) -> None:
    # Given a holder that died before its first write, and the only other event for the group
    # deferred to it (and answered as a success)
    world.launch("web")
    crashing = world.make_reconciler()
    crash_at(crashing, 1, after=False)
    with pytest.raises(Crash):
        handle(tag_event(load_event, "web"), crashing)
    deferred = handle(tag_event(load_event, "web"), world.make_reconciler())
    assert deferred["groups"][0]["status"] == "deferred"
    assert world.record("web")["pending"] is True

    # When the sweep runs while the dead holder's lease still holds, it leaves the group alone
    assert handle({"sweep": True}, world.make_reconciler()) == {"ok": True, "groups": []}

    # Then the first sweep after the lease expired converges the group, and nothing is left pending
    sweeper = world.make_reconciler()
    sweeper.clock = lambda: time.time() + LEASE_SECONDS + 1
    swept = handle({"sweep": True}, sweeper)
    assert [g["status"] for g in swept["groups"]] == ["converged"], swept
    assert_converged_once(world)
    assert "pending" not in world.record("web")
    assert handle({"sweep": True}, sweeper)["groups"] == []


# --- issue 12 #8: a scheduled run longer than the invocation -----------------------------------


def test_a_full_reconcile_out_of_time_hands_the_rest_on_to_the_sweep(world: World) -> None:
    # Given four groups, each taking 80 s to reconcile, and a 300 s limit (the CLI's full reconcile;
    # the scheduled run only plans and queues: tests/integration/test_reconcile_queue.py)
    for group in ("a", "b", "c", "d"):
        world.launch(group)
    reconciler = slow_reconciler(world, 80)
    reconciler.deadline = reconciler.clock() + 300

    # When every group is reconciled
    outcomes = reconciler.reconcile_all()

    # Then it starts no group with less than START_RESERVE_SECONDS left: the last is queued for
    # the sweep, said in the outcome, not silently skipped
    statuses = {outcome.group: outcome.status for outcome in outcomes}
    assert statuses == {"a": "converged", "b": "converged", "c": "converged", "d": "handed_on"}
    assert 240 + START_RESERVE_SECONDS > 300  # d would have started with 60 s left
    assert world.record("d")["pending"] is True
    assert "windows" not in world.record("d") or world.record("d")["windows"] == {}
    [window] = world.windows()
    assert "TagPatch-d-target" not in [t["Name"] for t in world.targets(window["WindowId"])]

    # And the next sweep reconciles it
    swept = handle({"sweep": True}, world.make_reconciler())
    assert [(g["group"], g["status"]) for g in swept["groups"]] == [("d", "converged")]
    assert [w["WindowId"] for w in world.windows()] == [window["WindowId"]]  # one schedule
    assert len(world.tasks(window["WindowId"])) == 4 and len(world.targets(window["WindowId"])) == 4


def test_groups_a_run_could_not_even_queue_are_reported_not_reached(world: World) -> None:
    # Given four groups of 80 s each and 250 s: after three, 10 s are left, too little even to
    # queue the fourth for the sweep
    for group in ("a", "b", "c", "d"):
        world.launch(group)
    reconciler = slow_reconciler(world, 80)
    reconciler.deadline = reconciler.clock() + 250

    # When every group is reconciled
    outcomes = reconciler.reconcile_all()

    # Then the fourth is reported not reached
    assert [(outcome.group, outcome.status) for outcome in outcomes][-1] == ("d", "not_reached")
