"""A reconciler that dies between any two steps: the rerun converges, with no duplicates."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, get_args

import pytest

from emulator.scenarios.aws import World
from tagpatch.adapters.groups import LEASE_SECONDS
from tagpatch.handlers.reconciler import handle
from tagpatch.reconciler.core import Reconciler
from tagpatch.reconciler.plan import ActionKind
from tests.reliability.test_faults import tag_event

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
    window = world.window_named("TagPatch-web")
    assert len(world.targets(window["WindowId"])) == 1
    tasks = world.tasks(window["WindowId"])
    assert len(tasks) == 1
    assert world.record("web")["status"] == "converged"
    assert "lock_owner" not in world.record("web")


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
