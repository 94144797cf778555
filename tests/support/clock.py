"""A reconciler whose time passes as it works (for tests of running out of time)."""

from __future__ import annotations

import time
from typing import Any

from emulator.scenarios.aws import World
from tagpatch.reconciler.core import Reconciler


def slow_reconciler(world: World, seconds_per_group: float) -> Reconciler:
    """A reconciler whose clock moves ``seconds_per_group`` for every group it reconciles."""
    reconciler = world.make_reconciler()
    start, elapsed = time.time(), [0.0]
    reconciler.clock = lambda: start + elapsed[0]
    reconcile_group = reconciler.reconcile_group

    def slowly(*args: Any, **kwargs: Any) -> Any:
        outcome = reconcile_group(*args, **kwargs)
        elapsed[0] += seconds_per_group
        return outcome

    reconciler.reconcile_group = slowly  # type: ignore[method-assign]
    return reconciler
