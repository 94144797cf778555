"""API calls and DynamoDB writes of a compliance snapshot of 10,000 instances in 100 groups.

Run with ``PYTHONPATH=src:. python -m benchmarks.reporter_calls`` (add ``--instances N --groups G``
for other sizes). Everything runs in-process against moto + the shared SSM fake
(emulator/fake_ssm.py), so counts are exact and deterministic; wall times are the emulator's, not
AWS's.

Floors:

* SSM: ceil(mappings / 100) DescribePatchGroups pages + per group 1 DescribePatchGroupState and
  ceil(n / 100) DescribeInstancePatchStatesForPatchGroup pages;
* DynamoDB writes: ceil(items / 25) BatchWriteItem, items = one row per instance + per group its
  totals (SNAP#) and its LATEST entry.

Three runs: day 1 (no history), day 2 (reads the previous rows of groups that had non-compliant
instances, to carry ``non_compliant_since`` over) and day 2's event delivered again (idempotent:
no per-group read, no write, no second digest).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import time
from dataclasses import dataclass
from datetime import timedelta

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TagPatch")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
from moto import mock_aws

from emulator.fake_ssm import CALLS
from emulator.scenarios.compliance import DAY1, ReporterWorld, scheduled_event
from tagpatch.handlers.reporter import handle

SSM_READS = ("DescribePatchGroups", "DescribePatchGroupState", "DescribeInstancePatchStatesForPatchGroup")


def group_sizes(instances: int, groups: int) -> list[int]:
    """Uneven but deterministic sizes summing to ``instances`` (some groups need 2-3 pages)."""
    weights = [1 + (i * 37) % 5 for i in range(groups)]
    sizes = [instances * w // sum(weights) for w in weights]
    sizes[0] += instances - sum(sizes)
    return sizes


@dataclass
class RunFigures:
    label: str
    ssm: dict[str, int]
    ssm_floor: dict[str, int]
    ssm_attempts: int
    dynamodb: dict[str, int]
    items_written: int
    write_floor: int
    publishes: int
    seconds: float
    recorded: int
    skipped: int
    failed: int
    emf_documents: int


def measure(instances: int = 10_000, groups: int = 100) -> tuple[list[RunFigures], dict[str, float]]:
    sizes = group_sizes(instances, groups)
    names = [f"group-{i:03d}" for i in range(groups)]
    managed = names[: groups * 6 // 10]
    dual_os = names[: groups * 4 // 10]
    timings: dict[str, float] = {}
    runs: list[RunFigures] = []
    with mock_aws():
        started = time.perf_counter()
        world = ReporterWorld()
        world.manage(*managed)
        for name in names:
            world.register(name)
        for name in dual_os:
            world.register(name, "WINDOWS")
        for index, (name, size) in enumerate(zip(names, sizes, strict=True)):
            sick = size // 3 if index % 3 == 0 else 0  # a third of every third group
            world.seed(name, size - sick, group_index=index)
            if sick:
                world.seed(name, sick, group_index=index, start=size - sick, missing=2, critical=1)
        timings["seed"] = time.perf_counter() - started
        mappings = groups + len(dual_os)
        ssm_floor = {
            "DescribePatchGroups": math.ceil(mappings / 100),
            "DescribePatchGroupState": groups,
            "DescribeInstancePatchStatesForPatchGroup": sum(math.ceil(n / 100) for n in sizes),
        }

        put_requests: list[int] = []
        world.ddb.meta.events.register(
            "provide-client-params.dynamodb.BatchWriteItem",
            lambda params, **_: put_requests.append(sum(len(r) for r in params["RequestItems"].values())),
        )

        def run(label: str, day: int, *, redelivery: bool = False) -> None:
            world.log.reset()
            CALLS.clear()
            put_requests.clear()
            world.now = DAY1 + timedelta(days=day - 1)
            emf = io.StringIO()
            tick = time.perf_counter()
            with contextlib.redirect_stdout(emf):  # one EMF document per recorded group
                result = handle(scheduled_event(world.now), world.reporter)
            seconds = time.perf_counter() - tick
            statuses = [g["status"] for g in result["groups"]]
            items = sum(put_requests)
            floor = dict(ssm_floor)
            if redelivery:  # the listing is needed to know the groups; nothing per group
                floor.update(DescribePatchGroupState=0, DescribeInstancePatchStatesForPatchGroup=0)
            runs.append(
                RunFigures(
                    label=label,
                    ssm={op: world.log.ops("ssm")[op] for op in SSM_READS},
                    ssm_floor=floor,
                    ssm_attempts=sum(1 for call in CALLS if call in SSM_READS),
                    dynamodb=dict(world.log.ops("dynamodb")),
                    items_written=items,
                    write_floor=math.ceil(items / 25),
                    publishes=world.log.ops("sns")["Publish"],
                    seconds=seconds,
                    recorded=statuses.count("recorded"),
                    skipped=statuses.count("already-recorded"),
                    failed=statuses.count("failed"),
                    emf_documents=emf.getvalue().count('"_aws"'),
                )
            )

        run("day 1 (first snapshot)", 1)
        run("day 2 (carry-over reads)", 2)
        run("day 2 event delivered again", 2, redelivery=True)
    return runs, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=100)
    args = parser.parse_args()
    runs, timings = measure(args.instances, args.groups)
    print(
        f"Compliance snapshot of {args.instances:,} instances in {args.groups} groups "
        f"(moto + emulator/fake_ssm.py, in-process; seeding took {timings['seed']:.1f} s)\n"
    )
    for figures in runs:
        print(
            f"== {figures.label}: {figures.recorded} recorded, {figures.skipped} already recorded, "
            f"{figures.failed} failed; {figures.seconds:.1f} s wall"
        )
        print(f"   {'SSM call':44} {'made':>6} {'floor':>6}")
        for op in SSM_READS:
            print(f"   {op:44} {figures.ssm[op]:>6} {figures.ssm_floor[op]:>6}")
        print(f"   {'(SSM HTTP attempts, retries included)':44} {figures.ssm_attempts:>6}")
        writes = figures.dynamodb.get("BatchWriteItem", 0)
        print(
            f"   {'DynamoDB BatchWriteItem':44} {writes:>6} {figures.write_floor:>6}"
            f"   ({figures.items_written:,} items: rows + SNAP# + LATEST per group)"
        )
        others = {op: n for op, n in sorted(figures.dynamodb.items()) if op != "BatchWriteItem"}
        print(f"   {'DynamoDB other calls':44} {sum(others.values()):>6}          {others}")
        print(f"   {'SNS Publish (digest)':44} {figures.publishes:>6}")
        print(f"   {'EMF documents (one per recorded group)':44} {figures.emf_documents:>6}")
        print()


if __name__ == "__main__":
    main()
