"""A compliance run of 100,000 instances in 1,000 groups, fanned out through the report queue.

Run alone with ``make bench-report-scale`` (``PYTHONPATH=src:. python -m benchmarks.reporter_scale``;
``--instances N --groups G`` for other sizes); ``run_reporter_scale()`` returns the rows for
``make bench``. Everything runs in-process against moto and the shared SSM fake
(emulator/fake_ssm.py): the planner's invocation, then every report-queue message handed to the
reporter one per invocation (``ReporterWorld.deliver``, as the stack's BatchSize 1) until the
queue holds only the run's deadline. No operator action: the last batch sends the digest.

Measures, each against its floor:

* **SSM reads**: floor = ceil(mappings / 100) DescribePatchGroups pages + per group 1
  DescribePatchGroupState and ceil(n / 100) DescribeInstancePatchStatesForPatchGroup pages (as
  benchmarks/reporter_calls.py). The fan-out adds none: the planner lists, the workers read.
* **BatchWriteItem**: floor = ceil(items / 25), items = one row per instance + per group its
  totals (SNAP#) and LATEST. Batches fill BatchWriteItem calls within a message, not across
  messages, so each message may leave one call part-full, and the plan adds ceil(batches / 25).
* **all API calls**: floor = the two floors above + 1 Publish. Ours adds per message one
  BatchGetItem (LATEST + run record), one PutItem (the batch's report) and one UpdateItem (its
  done mark), and the planner's few calls, the run ledger's Query and the SQS sends.
* **wall on the emulator**: ours = the planner's and every worker's invocation, one after the other;
  floor = the time the floor's own calls took inside that run (SSM reads, BatchWriteItem calls
  scaled to the floor's count, the Publish): what any reporter writing these rows spends on this
  emulator. **CPU on the emulator**: the same in this process's CPU seconds (moto runs in the
  process): what other processes on a shared machine do not inflate. Seeding is not timed (each
  group's first state of a kind goes through the fake's validated helpers, the rest are copies).
  Two emulator costs that AWS does not have grow with the fleet and are taken out for the run
  (both sides alike): moto re-sums an item's size on every attribute it sets (quadratic per
  item), and the SSM fake scans every seeded state for each call; :func:`_faster_emulator` keeps
  the same checks and answers, computed incrementally / indexed.
* **projected wall on AWS**: SSM documents no request rate for DescribePatchGroupState or
  DescribeInstancePatchStatesForPatchGroup (the Systems Manager quotas page,
  https://docs.aws.amazon.com/general/latest/gr/ssm.html, gives throughput for Parameter Store
  and a few other APIs only), so we assume :data:`SSM_RATE` requests a second for the account,
  a quarter of Parameter Store's documented default GetParameter throughput (40 per second), and
  the latencies of :data:`LATENCY` (the 100-250 ms per SSM page and 10-30 ms per DynamoDB call of
  src/tagpatch/reporter/core.py). Each message's time is its calls times their latency; with
  :data:`CONCURRENCY` workers (the event source's MaximumConcurrency) the run takes the planner
  plus the longest of: the messages' time spread over the workers, the SSM reads at the rate, the
  longest message. Floor = the floor's SSM reads at the rate (no reporter reads them faster).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TagPatch")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
import boto3
from moto import mock_aws
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.utilities import bytesize
from moto.ssm.models import ssm_backends

from benchmarks.reporter_calls import SSM_READS, group_sizes
from emulator import fake_ssm
from emulator.scenarios.compliance import DAY1, ReporterWorld, instance_id, scheduled_event
from tagpatch.handlers.reporter import handle

SSM_RATE = 10.0  # requests a second for the account: an assumption, see the module docstring
CONCURRENCY = 2  # template.yaml: ComplianceReporterFunction's Queue event, MaximumConcurrency
LATENCY = {"ssm": 0.15, "dynamodb": 0.02, "sqs": 0.02, "sns": 0.05}  # seconds a call

Row = dict[str, Any]
SNAPSHOT_ID = DAY1.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Timer:
    """Per (service, operation): seconds (wall, and this process's CPU) spent inside its calls."""

    def __init__(self) -> None:
        self.seconds: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.cpu: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._started: dict[int, tuple[float, float]] = {}

    def attach(self, client: Any) -> None:
        # From the parameters given (validated and serialized next) to the response parsed.
        client.meta.events.register("provide-client-params.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)

    def _before(self, model: Any, context: Any, **_: Any) -> None:
        self._started[id(context)] = (time.perf_counter(), time.process_time())

    def _after(self, model: Any, context: Any, **_: Any) -> None:
        began = self._started.pop(id(context), None)
        if began is not None:
            key = (model.service_model.service_name, model.name)
            self.seconds[key] += time.perf_counter() - began[0]
            self.cpu[key] += time.process_time() - began[1]


@contextlib.contextmanager
def _faster_emulator() -> Iterator[None]:
    """The two emulator costs that grow with the fleet and that AWS does not have, computed
    incrementally (same 400 KB item check) and indexed (same states, same order)."""
    limited = dynamo_type.LimitedSizeDict
    original_setitem = limited.__setitem__

    def measured(value: Any) -> int:
        return int(value.size()) if type(value) is dynamo_type.DynamoType else bytesize(str(value))

    def setitem(self: Any, key: str, value: Any) -> None:
        # moto's check: the item's current size (old value included) plus the new attribute
        current: int | None = getattr(self, "_tagpatch_size", None)
        if current is None:
            current = sum(measured(item) for item in (*self.keys(), *self.values()))
        added = bytesize(key) + measured(value)
        if current + added > 405000:
            raise ItemSizeTooLarge
        replaced = bytesize(key) + measured(dict.__getitem__(self, key)) if key in self else 0
        dict.__setitem__(self, key, value)
        self._tagpatch_size = current + added - replaced

    original_group_states = fake_ssm._group_states
    index: dict[int, tuple[int, dict[str, list[dict[str, Any]]]]] = {}

    def group_states(backend: Any, patch_group: str) -> list[dict[str, Any]]:
        states = fake_ssm._patch_states(backend)
        cached = index.get(id(backend))
        if cached is None or cached[0] != len(states):
            by_group: dict[str, list[dict[str, Any]]] = {}
            for state in states.values():
                by_group.setdefault(state["PatchGroup"], []).append(state)
            cached = index[id(backend)] = (len(states), by_group)
        return list(cached[1].get(patch_group, []))

    limited.__setitem__ = setitem  # type: ignore[method-assign]
    fake_ssm._group_states = group_states
    try:
        yield
    finally:
        limited.__setitem__ = original_setitem  # type: ignore[method-assign]
        fake_ssm._group_states = original_group_states


def _seed(world: ReporterWorld, names: list[str], sizes: list[int]) -> None:
    """60 % of the groups managed (their size in the groups table), 40 % registered with a
    baseline only (size unknown to the planner), a third of every third group not compliant."""
    managed = names[: len(names) * 6 // 10]
    world.manage(*managed)
    for name, size in zip(managed, sizes, strict=False):
        world.set_size(name, size)
    for name in names[len(managed) :]:
        world.register(name)
    for index, (name, size) in enumerate(zip(names, sizes, strict=True)):
        sick = size // 3 if index % 3 == 0 else 0
        _seed_states(world, name, size - sick, group_index=index)
        if sick:
            _seed_states(world, name, sick, group_index=index, start=size - sick, missing=2, critical=1)


def _seed_states(world: ReporterWorld, group: str, count: int, *, group_index: int, **kwargs: Any) -> None:
    """``ReporterWorld.seed`` for a fleet: the first state through the fake's validated helpers,
    the others (the same but their InstanceId) stored beside it as the helper stores them."""
    start = int(kwargs.pop("start", 0))
    if count <= 0:
        return
    (first,) = world.seed(group, 1, group_index=group_index, start=start, **kwargs)
    states = fake_ssm._patch_states(ssm_backends[fake_ssm.DEFAULT_ACCOUNT_ID]["us-east-1"])
    stored = states[first]
    for offset in range(1, count):
        iid = instance_id(group_index, start + offset)
        states[iid] = {**stored, "InstanceId": iid}


def _recorded(world: ReporterWorld, names: list[str]) -> int:
    """Groups whose LATEST names the run's snapshot (BatchGetItem, 100 keys a call)."""
    table = world.env["COMPLIANCE_TABLE_NAME"]
    ddb = boto3.client("dynamodb")  # not the reporter's: its calls are not counted
    found = 0
    for start in range(0, len(names), 100):
        keys = [{"pk": {"S": f"GROUP#{name}"}, "sk": {"S": "LATEST"}} for name in names[start : start + 100]]
        request: dict[str, Any] = {table: {"Keys": keys, "ProjectionExpression": "snapshot_id"}}
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            found += sum(
                1 for item in response["Responses"][table] if item["snapshot_id"]["S"] == SNAPSHOT_ID
            )
            request = response.get("UnprocessedKeys") or {}
    return found


def _calls(world: ReporterWorld) -> Counter[tuple[str, str]]:
    return Counter(world.log.calls)


def _seconds(calls: Counter[tuple[str, str]]) -> float:
    return sum(LATENCY[service] * count for (service, _), count in calls.items())


def measure(instances: int = 100_000, groups: int = 1_000) -> dict[str, Any]:
    """Plan and carry out one run; every figure the rows are made of."""
    sizes = group_sizes(instances, groups)
    names = [f"group-{i:04d}" for i in range(groups)]
    with mock_aws(), _faster_emulator():
        fake_ssm.reset()
        seeding = time.perf_counter()
        world = ReporterWorld(fanout=True)
        _seed(world, names, sizes)
        seeding = time.perf_counter() - seeding
        timer = _Timer()
        for client in (world.ssm, world.ddb, world.sns, world.report_sqs):
            timer.attach(client)
        world.log.reset()

        # the planner (the schedule's invocation)
        started, cpu_started = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            planned = handle(scheduled_event(DAY1), world.reporter)["planned"]
        plan_wall = time.perf_counter() - started
        plan_calls = _calls(world)

        # the workers: one message per invocation until only the deadline is left
        messages: list[tuple[Counter[tuple[str, str]], float]] = []
        failed = 0
        before = _calls(world)
        while True:
            tick = time.perf_counter()
            delivered = world.deliver(("batch",), limit=1)
            if not delivered:
                break
            seconds = time.perf_counter() - tick
            now = _calls(world)
            messages.append((now - before, seconds))
            failed += sum(delivery.failed for delivery in delivered)
            before = now
        wall = plan_wall + sum(seconds for _, seconds in messages)
        cpu = time.process_time() - cpu_started
        total = _calls(world)
        digests = len(world.digests())
        recorded = _recorded(world, names)

    mappings = groups - groups * 6 // 10
    ssm_floor = math.ceil(mappings / 100) + groups + sum(math.ceil(n / 100) for n in sizes)
    items = instances + 2 * groups
    write_floor = math.ceil(items / 25)
    ssm = sum(count for (service, op), count in total.items() if service == "ssm" and op in SSM_READS)
    writes = total[("dynamodb", "BatchWriteItem")]
    plan_writes = plan_calls[("dynamodb", "BatchWriteItem")]

    def floor_of(spent: defaultdict[tuple[str, str], float]) -> float:
        """The floor's own calls' share of ``spent`` (BatchWriteItem scaled to the floor's count)."""
        reads = sum(seconds for (svc, op), seconds in spent.items() if svc == "ssm" and op in SSM_READS)
        return (
            reads
            + spent[("dynamodb", "BatchWriteItem")] * write_floor / max(writes, 1)
            + spent[("sns", "Publish")]
        )

    per_message = [_seconds(calls) for calls, _ in messages]
    projected = _seconds(plan_calls) + max(
        sum(per_message) / CONCURRENCY, ssm / SSM_RATE, max(per_message, default=0.0)
    )
    return {
        "instances": instances,
        "groups": groups,
        "planned": planned,
        "messages": len(messages),
        "failed_messages": failed,
        "recorded": recorded,
        "digests": digests,
        "ssm": ssm,
        "ssm_floor": ssm_floor,
        "writes": writes,
        "plan_writes": plan_writes,
        "write_floor": write_floor,
        "calls": sum(total.values()),
        "call_floor": ssm_floor + write_floor + 1,
        "by_operation": {f"{service}:{op}": count for (service, op), count in sorted(total.items())},
        "wall": wall,
        "floor_wall": floor_of(timer.seconds),
        "cpu": cpu,
        "floor_cpu": floor_of(timer.cpu),
        "projected": projected,
        "projected_floor": ssm_floor / SSM_RATE,
        "seeding": seeding,
    }


def _row(measure: str, ours: float, floor: float) -> Row:
    return {
        "measure": measure,
        "ours": ours,
        "floor": floor,
        "ratio": round(ours / floor, 3) if floor else None,
    }


def rows(figures: dict[str, Any]) -> list[Row]:
    size = f"{figures['instances']:,} instances in {figures['groups']:,} groups"
    return [
        _row(
            f"reporter fan-out {size}: groups recorded without operator action",
            figures["recorded"],
            figures["groups"],
        ),
        _row("reporter fan-out: digests sent", figures["digests"], 1),
        _row("reporter fan-out: SSM reads", figures["ssm"], figures["ssm_floor"]),
        _row("reporter fan-out: DynamoDB BatchWriteItem", figures["writes"], figures["write_floor"]),
        _row("reporter fan-out: all API calls", figures["calls"], figures["call_floor"]),
        _row(
            "reporter fan-out: wall on the emulator (s)",
            round(figures["wall"], 1),
            round(figures["floor_wall"], 1),
        ),
        _row(
            "reporter fan-out: CPU on the emulator (s)",
            round(figures["cpu"], 1),
            round(figures["floor_cpu"], 1),
        ),
        _row(
            f"reporter fan-out: projected wall on AWS (s; SSM {SSM_RATE:g} req/s, {CONCURRENCY} workers)",
            round(figures["projected"], 1),
            round(figures["projected_floor"], 1),
        ),
    ]


def run_reporter_scale(instances: int = 100_000, groups: int = 1_000) -> list[Row]:
    """The rows of ``make bench``: ``{"measure", "ours", "floor", "ratio"}`` each."""
    return rows(measure(instances, groups))


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    args = parser.parse_args(argv)
    figures = measure(args.instances, args.groups)
    planned = figures["planned"]
    out(
        f"Compliance run of {args.instances:,} instances in {args.groups:,} groups, fanned out (moto + "
        f"emulator/fake_ssm.py, in-process; seeding took {figures['seeding']:.1f} s)\n"
        f"planned {planned['groups']} groups in {planned['batches']} batches; {figures['messages']} messages "
        f"carried out, {figures['failed_messages']} failed; {figures['recorded']} groups recorded; "
        f"{figures['digests']} digest\n"
    )
    out(f"{'measure':78} {'ours':>9} {'floor':>9} {'ratio':>6}")
    for row in rows(figures):
        out(f"{row['measure'][:78]:78} {row['ours']:>9} {row['floor']:>9} {row['ratio']!s:>6}")
    out("\ncalls by operation: " + ", ".join(f"{op} {n}" for op, n in figures["by_operation"].items()))


if __name__ == "__main__":
    main()
