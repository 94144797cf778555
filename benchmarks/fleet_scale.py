"""Fleet scale: TagPatch's shared maintenance windows at 1,000 groups and under a burst of new ones.

Run with ``make bench-fleet`` (``PYTHONPATH=src:. python -m benchmarks.fleet_scale``). Everything is
measured in one run against moto (in-process ``mock_aws``) with emulator/fake_ssm.py, which
enforces SSM's quotas (50 windows per account, 20 tasks and 100 targets per window):

1. 1,000 groups across 10 schedules (100 each, set by an override in Parameter Store; one instance
   tagged ``PatchGroup=<group>`` per group) converged by a scheduled run (``plan_run`` and
   ``run_message`` for each message), then a second scheduled run on the converged fleet: windows
   against the quota minimum, and API calls per group against a floor;
2. a burst of 200 new groups (one schedule, the stack's defaults) as 200 tag events, each
   ``reconcile_group(group, verify=False)``, with 2 and with 8 workers (the reconcile queue's
   bounded concurrency, and more);
3. the groups one account can carry with SSM's default quotas.

Wall times on the emulator measure moto's CPU, not AWS. The projected walls replay the calls each
message or event made, in the order they were made, at a per-call latency (:data:`LATENCY`) over
the given number of concurrent consumers; see :data:`RATE_NOTE` for what AWS publishes.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import math
import os
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TagPatch")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # the benchmark reports outcomes itself

from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.responses import DynamoHandler
from moto.ec2.models import ec2_backends
from moto.ssm.responses import SimpleSystemManagerResponse

from emulator import fake_ssm
from emulator.scenarios.aws import WRITE_PREFIXES, World
from emulator.scenarios.settings import PREFIX, RECONCILER_ENV
from tagpatch import naming
from tagpatch.adapters.ec2 import Ec2Gateway
from tagpatch.adapters.groups import CLAIMS_KEY, GroupsRepository
from tagpatch.adapters.placements import PLACEMENT_KEY
from tagpatch.adapters.ssm import SsmGateway
from tagpatch.reconciler.config import load_reconciler_config
from tagpatch.reconciler.core import BATCH_GROUPS, Outcome, Reconciler
from tagpatch.reconciler.placement import minimum_windows

FLEET_GROUPS = 1000
FLEET_SCHEDULES = 10
BURST_GROUPS = 200
BURST_WORKERS = (2, 8)
#: The reconcile queue's consumers (ReconcileConcurrency=2): messages verified at once.
RECONCILE_CONCURRENCY = 2
#: Page sizes TagPatch asks for (adapters/ssm.py, adapters/ec2.py): the floor uses the same.
PARAMETERS_PAGE = 10  # GetParametersByPath's maximum MaxResults
INSTANCES_PAGE = 1000

#: Seconds per call, for the projections. SSM: a typical latency measured in the field for the
#: maintenance-window and Parameter Store APIs from a Lambda function in the same Region (an
#: assumption: AWS publishes no latency). DynamoDB: "single-digit millisecond" (its product page);
#: 10 ms is the round figure used here for a conditional write. EC2 DescribeInstances: as SSM.
LATENCY = {"ssm": 0.050, "dynamodb": 0.010, "ec2": 0.050}
#: Parameter Store's documented default throughput shared by GetParameter, GetParameters and
#: GetParametersByPath (per account and Region), from AWS General Reference, "AWS Systems Manager
#: endpoints and quotas" (https://docs.aws.amazon.com/general/latest/gr/ssm.html, Parameter Store
#: "Max throughput (transactions per second)": default 40; higher throughput 100 for
#: GetParametersByPath). AWS publishes no request rate for the maintenance-window APIs: requests
#: are throttled per account and Region (ThrottlingException, "Rate exceeded") at a rate that is
#: not documented.
PARAMETER_STORE_TPS = 40
RATE_NOTE = (
    "Projection: each message's (or event's) recorded calls replayed at "
    f"{LATENCY['ssm'] * 1000:.0f} ms per SSM call, {LATENCY['dynamodb'] * 1000:.0f} ms per DynamoDB "
    f"call and {LATENCY['ec2'] * 1000:.0f} ms per EC2 call (assumed typical latencies; AWS publishes "
    "none), each consumer one call at a time, plus the 1 s polls a reconcile made while waiting "
    "for a window another was making. Documented throttles: Parameter Store's default throughput is "
    f"{PARAMETER_STORE_TPS} TPS shared by GetParameter/GetParameters/GetParametersByPath (AWS General "
    "Reference, 'AWS Systems Manager endpoints and quotas', "
    "https://docs.aws.amazon.com/general/latest/gr/ssm.html; AWS Knowledge Center "
    "'ssm-parameter-store-rate-exceeded'); EC2 throttles per API with a token bucket "
    "(EC2 developer guide, 'Request throttling for the Amazon EC2 API'); for the maintenance-window "
    "APIs AWS documents throttling per account and Region but publishes no rate, so none is assumed: "
    "at these latencies one consumer issues at most 20 SSM requests per second."
)

Row = dict[str, Any]  # measure, ours, floor, ratio, note


def _row(measure: str, ours: Any, floor: Any, note: str) -> Row:
    ratio: float | None = None
    if isinstance(ours, int | float) and isinstance(floor, int | float) and floor:
        ratio = ours / floor
    elif isinstance(ours, int | float) and floor == 0:
        ratio = 1.0 if ours == 0 else math.inf
    return {"measure": measure, "ours": ours, "floor": floor, "ratio": ratio, "note": note}


# --------------------------------------------------------------------------------------------
# Recording calls per job (a message or a tag event), across threads
# --------------------------------------------------------------------------------------------
@dataclass
class Recorder:
    """Every API call the world's clients make, in order, by the job the calling thread runs."""

    jobs: dict[Any, list[tuple[str, str]]] = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, *clients: Any) -> None:
        for client in clients:
            client.meta.events.register("before-call.*.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        job = getattr(self._local, "job", None)
        if job is None:
            return
        with self._lock:
            self.jobs.setdefault(job, []).append((model.service_model.service_name, model.name))

    @contextlib.contextmanager
    def job(self, key: Any) -> Iterator[None]:
        self._local.job = key
        try:
            yield
        finally:
            self._local.job = None

    def calls(self, keys: Any = None) -> list[tuple[str, str]]:
        chosen = self.jobs if keys is None else {k: self.jobs.get(k, []) for k in keys}
        return [call for calls in chosen.values() for call in calls]


def count(calls: list[tuple[str, str]], service: str, *, writes: bool | None = None) -> int:
    return sum(
        1
        for svc, op in calls
        if svc == service and (writes is None or op.startswith(WRITE_PREFIXES) == writes)
    )


def ops(calls: list[tuple[str, str]], service: str) -> dict[str, int]:
    return dict(sorted(Counter(op for svc, op in calls if svc == service).items()))


def seconds_of(calls: list[tuple[str, str]], waits: float = 0.0) -> float:
    """What ``calls`` take made one after another at :data:`LATENCY`, plus ``waits``."""
    return sum(LATENCY[service] for service, _ in calls) + waits


def makespan(durations: list[float], workers: int) -> float:
    """Wall time of jobs taken in order by ``workers`` consumers, each the next job when free."""
    free = [0.0] * workers
    for duration in durations:
        heapq.heapreplace(free, free[0] + duration)
    return max(free)


# --------------------------------------------------------------------------------------------
# The emulated account
# --------------------------------------------------------------------------------------------
def _launch(world: World, groups: list[str]) -> None:
    """One instance tagged ``PatchGroup=<group>`` per group. One RunInstances, then the tags set in
    moto's backend (a thousand CreateTags calls would cost the run ~5 s of setup, measuring
    nothing)."""
    response = world.ec2.run_instances(
        ImageId=world.image_id, MinCount=len(groups), MaxCount=len(groups), InstanceType="t3.micro"
    )
    backend = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    for instance, group in zip(response["Instances"], groups, strict=True):
        backend.create_tags([instance["InstanceId"]], {"PatchGroup": group})


def _schedule(index: int) -> str:
    return f"cron(0 {index} ? * SUN *)"


def _listed(world: World) -> dict[str, dict[str, Any]]:
    """Every window of the account: its tags' key, its targets and its tasks (as SSM lists them)."""
    found: dict[str, dict[str, Any]] = {}
    for page in world.ssm.get_paginator("describe_maintenance_windows").paginate():
        for window in page["WindowIdentities"]:
            window_id = window["WindowId"]
            targets = [
                target
                for p in world.ssm.get_paginator("describe_maintenance_window_targets").paginate(
                    WindowId=window_id
                )
                for target in p["Targets"]
            ]
            tasks = [
                task
                for p in world.ssm.get_paginator("describe_maintenance_window_tasks").paginate(
                    WindowId=window_id
                )
                for task in p["Tasks"]
            ]
            found[window_id] = {"name": window["Name"], "targets": targets, "tasks": tasks}
    return found


def converged_problems(world: World, groups: list[str]) -> list[str]:
    """Why any of ``groups`` is not converged: its record, and its own target (``tag:PatchGroup``
    = the group) and task (on that target) in the window its record names."""
    windows = _listed(world)
    records = {record.group: record for record in world.reconciler.groups.all()}
    problems: list[str] = []
    for group in groups:
        record = records.get(group)
        if record is None or record.status != "converged":
            problems.append(f"{group}: status {record.status if record else 'no record'}")
            continue
        ids = record.windows.get("install", {})
        window = windows.get(ids.get("window_id", ""))
        if window is None:
            problems.append(f"{group}: window {ids.get('window_id')} not in SSM")
            continue
        target_name, task_name = naming.member_names(naming.group_slug(group))
        targets = [t for t in window["targets"] if t.get("Name") == target_name]
        tasks = [t for t in window["tasks"] if t.get("Name") == task_name]
        if len(targets) != 1 or targets[0]["Targets"] != [{"Key": "tag:PatchGroup", "Values": [group]}]:
            problems.append(f"{group}: {len(targets)} targets named {target_name} in {window['name']}")
        elif len(tasks) != 1 or tasks[0].get("Targets") != [
            {"Key": "WindowTargetIds", "Values": [targets[0]["WindowTargetId"]]}
        ]:
            problems.append(f"{group}: {len(tasks)} tasks named {task_name} on its target")
    for window in windows.values():
        if len(window["tasks"]) > 20 or len(window["targets"]) > 100:
            problems.append(
                f"{window['name']}: {len(window['tasks'])} tasks, {len(window['targets'])} targets"
            )
    return problems


# --------------------------------------------------------------------------------------------
# 1. 1,000 groups across 10 schedules
# --------------------------------------------------------------------------------------------
def scheduled_run(reconciler: Reconciler, recorder: Recorder, label: str) -> dict[str, Any]:
    """One scheduled run as the queue carries it: ``plan_run``, then each message in turn."""
    started = time.perf_counter()
    with recorder.job((label, "plan")):
        messages = reconciler.plan_run()
    outcomes: list[Outcome] = []
    for index, body in enumerate(messages):
        with recorder.job((label, index)):
            outcomes += reconciler.run_message(json.loads(json.dumps(body)))  # as SQS carries it
    return {
        "seconds": time.perf_counter() - started,
        "messages": messages,
        "outcomes": outcomes,
        "plan": recorder.calls([(label, "plan")]),
        "per_message": [recorder.calls([(label, i)]) for i in range(len(messages))],
    }


def fleet(groups: int = FLEET_GROUPS, schedules: int = FLEET_SCHEDULES) -> dict[str, Any]:
    """``groups`` on ``schedules`` schedules, converged, then verified by a second scheduled run.

    MaxGroups is ``groups`` and MaxWindows the quota minimum for them: at the default sizes SSM's
    and the stack's defaults (1,000 and 50), so the account is then full."""
    names = [f"fleet-{i:04d}" for i in range(groups)]
    sizes = Counter(index % schedules for index in range(groups))
    capacity = load_reconciler_config(RECONCILER_ENV).window_capacity
    floor_windows = minimum_windows({str(k): n for k, n in sizes.items()}, capacity)
    fake_ssm.reset()
    with mock_aws():
        world = World(MAX_GROUPS=str(groups), MAX_WINDOWS=str(floor_windows))
        recorder = Recorder()
        recorder.attach(world.ssm, world.ddb, world.ec2)
        _launch(world, names)
        for index, group in enumerate(names):
            _override(world, group, index % schedules)
        reconciler = world.reconciler
        first = scheduled_run(reconciler, recorder, "first")
        windows = world.windows()
        per_key = Counter(w["Name"].rsplit("-", 1)[0] for w in windows)
        problems = converged_problems(world, names)
        second = scheduled_run(reconciler, recorder, "second")
        if count([c for m in second["per_message"] for c in m], "ssm", writes=True):
            problems += [f"after the second run: {p}" for p in converged_problems(world, names)]
        items = {key: _item_bytes(world, key) for key in (PLACEMENT_KEY, CLAIMS_KEY)}

        # One more group, on a schedule the fleet uses: the account is full (MaxGroups, windows) ...
        _launch(world, ["fleet-extra"])
        _override(world, "fleet-extra", 0)
        extra = reconciler.reconcile_group("fleet-extra", verify=False)
        # ... and one on a schedule of its own with MaxGroups raised: no window left for it.
        _launch(world, ["fleet-newkey"])
        _override(world, "fleet-newkey", 23)
        config = load_reconciler_config({**world.env, "MAX_GROUPS": str(groups + 10)})
        raised = Reconciler(
            config,
            SsmGateway(world.ssm),
            GroupsRepository(config.groups_table_name, world.ddb),
            Ec2Gateway(world.ec2),
        )
        newkey = raised.reconcile_group("fleet-newkey", verify=False)
        windows_after = len(world.windows())
    return {
        "groups": groups,
        "schedules": schedules,
        "first": first,
        "second": second,
        "windows": len(windows),
        "windows_per_key": sorted(per_key.values()),
        "floor_windows": floor_windows,
        "capacity": capacity,
        "max_windows": fake_ssm.DEFAULT_WINDOW_QUOTA,
        "problems": problems,
        "items": items,
        "extra": extra,
        "newkey": newkey,
        "windows_after": windows_after,
    }


@contextlib.contextmanager
def atomic_requests() -> Iterator[None]:
    """Answer each DynamoDB and SSM request of the emulator whole, one at a time, as the services
    answer each request atomically. moto renders a response from the live item after its backend
    call returns, and emulator/scenarios/aws.py locks the backend calls only: under threads a
    GetItem of the placement item then met another thread's UpdateItem of it about once in eight
    bursts of 200 ("RuntimeError: dictionary changed size during iteration" in moto's
    dynamodb/models/utilities.py dynamo_to_dict), an emulator failure, not TagPatch's."""
    lock = threading.RLock()
    classes: list[Any] = [DynamoHandler, SimpleSystemManagerResponse]
    patched: list[tuple[Any, Any]] = []
    for cls in classes:
        own = cls.__dict__.get("call_action")
        original = cls.call_action

        def whole(self: Any, __original: Any = original) -> Any:
            with lock:
                return __original(self)

        cls.call_action = whole
        patched.append((cls, own))
    try:
        yield
    finally:
        for cls, own in patched:
            if own is None:
                del cls.call_action  # it was inherited: the parent's is found again
            else:
                cls.call_action = own


def _failure(error: BaseException) -> str:
    """``error`` and where it was raised: the innermost frame in TagPatch or in the emulator."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/site-packages/" not in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    inner = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(error).__name__}: {str(error)[:80]} (raised at {inner}, from {where})"


def _override(world: World, group: str, schedule: int) -> None:
    world.ssm.put_parameter(
        Name=f"{PREFIX}{group}", Value=json.dumps({"schedule": _schedule(schedule)}), Type="String"
    )


def _item_bytes(world: World, key: str) -> int:
    """The size of one groups-table item by DynamoDB's rules (attribute names and values in UTF-8
    bytes, numbers about one byte per two digits plus one)."""
    item = world.ddb.get_item(
        TableName=world.env["GROUPS_TABLE_NAME"], Key={"group": {"S": key}}, ConsistentRead=True
    ).get("Item", {})

    def size(value: dict[str, Any]) -> int:
        ((kind, data),) = value.items()
        if kind == "S":
            return len(data.encode())
        if kind == "N":
            return len(data.lstrip("-").replace(".", "")) // 2 + 1
        if kind in ("SS", "NS"):
            return sum(size({kind[0]: element}) for element in data)
        if kind == "BOOL":
            return 1
        return len(json.dumps(data).encode())

    return sum(len(name.encode()) + size(value) for name, value in item.items())


def fleet_floor(result: dict[str, Any]) -> dict[str, int]:
    """The fewest SSM and EC2 reads any verification of this converged fleet makes: per window one
    GetMaintenanceWindow, one page each of its targets and tasks (<= 100 per page: 20 + 20 here)
    and one GetMaintenanceWindowTask per task (DescribeMaintenanceWindowTasks does not return the
    Run Command parameters a drift check needs); plus the listing of the planner: one
    GetParametersByPath page per 10 overrides and one DescribeInstances page per 1,000 instances."""
    windows, groups = result["windows"], result["groups"]
    return {
        "GetMaintenanceWindow": windows,
        "DescribeMaintenanceWindowTargets": windows,
        "DescribeMaintenanceWindowTasks": windows,
        "GetMaintenanceWindowTask": groups,
        "GetParametersByPath": math.ceil(groups / PARAMETERS_PAGE),
        "DescribeInstances": math.ceil(groups / INSTANCES_PAGE),
    }


# --------------------------------------------------------------------------------------------
# 2. A burst of new groups as tag events
# --------------------------------------------------------------------------------------------
def burst(workers: int, groups: int = BURST_GROUPS) -> dict[str, Any]:
    names = [f"burst-{i:03d}" for i in range(groups)]
    fake_ssm.reset()
    with mock_aws():
        world = World()
        recorder = Recorder()
        recorder.attach(world.ssm, world.ddb, world.ec2)
        _launch(world, names)
        local = threading.local()
        polls: Counter[Any] = Counter()
        races: Counter[Any] = Counter()
        lock = threading.Lock()

        def reconciler() -> Reconciler:
            """One per worker, as one warm container each (a Reconciler is not shared by threads)."""
            if not hasattr(local, "reconciler"):
                made = world.make_reconciler()
                place, sleep = made.groups.place, made.sleep

                def counted_place(*args: Any, **kwargs: Any) -> bool:
                    won = place(*args, **kwargs)
                    if not won:
                        with lock:
                            races[local.job] += 1
                    return won

                def counted_sleep(seconds: float) -> None:
                    with lock:
                        polls[local.job] += 1
                    sleep(seconds)

                made.groups.place = counted_place  # type: ignore[method-assign]
                made.sleep = counted_sleep
                local.reconciler = made
            made_reconciler: Reconciler = local.reconciler
            return made_reconciler

        outcomes: dict[str, list[Outcome]] = {name: [] for name in names}

        def event(job: tuple[int, str]) -> None:
            local.job = job
            with recorder.job(job):
                try:
                    outcome = reconciler().reconcile_group(job[1], verify=False)
                except Exception as error:  # reported, as Lambda would retry the event
                    outcome = Outcome(job[1], "failed", reasons=[_failure(error)])
            outcomes[job[1]].append(outcome)

        started = time.perf_counter()
        pending, rounds, order = list(names), 0, []
        while pending and rounds < 5:
            jobs = [(rounds, name) for name in pending]
            order += jobs
            with atomic_requests(), ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(event, jobs))
            rounds += 1
            pending = [name for name in pending if outcomes[name][-1].status != "converged"]
        seconds = time.perf_counter() - started
        windows = world.windows()
        problems = converged_problems(world, names)
    calls = recorder.calls()
    durations = [seconds_of(recorder.jobs.get(job, []), polls[job] * 1.0) for job in order]
    statuses = Counter(o.status for results in outcomes.values() for o in results)
    failures = Counter(
        o.reasons[0] if o.reasons else o.status
        for results in outcomes.values()
        for o in results
        if o.status != "converged"
    )
    return {
        "workers": workers,
        "groups": groups,
        "windows": len(windows),
        "calls": calls,
        "seconds": seconds,
        "rounds": rounds,
        "statuses": dict(sorted(statuses.items())),
        "failures": dict(failures.most_common(3)),
        "polls": sum(polls.values()),
        "races": sum(races.values()),
        "projected": makespan(durations, workers),
        "problems": problems,
    }


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------
def _fmt_ops(counts: dict[str, int], per: int = 0) -> str:
    return ", ".join(f"{op} {n / per:.3f}" if per else f"{op} {n}" for op, n in counts.items())


def _writes(counts: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in counts.items() if op.startswith(WRITE_PREFIXES)}


def fleet_rows(result: dict[str, Any]) -> list[Row]:
    groups, windows, capacity = result["groups"], result["windows"], result["capacity"]
    first, second, problems = result["first"], result["second"], result["problems"]
    quota = result["max_windows"]
    if windows > min(result["floor_windows"], quota):
        problems = [
            *problems,
            f"{windows} windows: over the minimum {result['floor_windows']} or quota {quota}",
        ]
    checked = (
        f"PROBLEMS ({len(problems)}): {problems[:3]}"
        if problems
        else f"every group's target (tag:PatchGroup=<group>) and task (on that target) found in the window "
        f"its record names: {groups:,}/{groups:,}"
    )
    rows = [
        _row(
            f"fleet: windows for {groups:,} groups on {result['schedules']} schedules",
            windows,
            result["floor_windows"],
            f"floor: the quota minimum (placement.minimum_windows: ceil(groups/{capacity}) per schedule); "
            f"SSM quota {quota}; windows per schedule {result['windows_per_key']}; {checked}",
        )
    ]
    first_calls = first["plan"] + [c for m in first["per_message"] for c in m]
    made = _writes(ops(first_calls, "ssm"))
    rows.append(
        _row(
            "fleet: first scheduled run (new fleet): SSM writes",
            sum(made.values()),
            windows + 2 * groups,
            f"floor {windows} CreateMaintenanceWindow + {groups} RegisterTarget + {groups} RegisterTask; "
            f"made {_fmt_ops(made)}; outcomes {dict(Counter(o.status for o in first['outcomes']))}; "
            f"{len(first['messages'])} messages; {first['seconds']:.1f} s on the emulator",
        )
    )
    second_calls = second["plan"] + [c for m in second["per_message"] for c in m]
    floor = fleet_floor(result)
    ssm_floor = {op: n for op, n in floor.items() if op != "DescribeInstances"}
    ssm_ops = ops(second_calls, "ssm")
    ssm = count(second_calls, "ssm")
    rows.append(
        _row(
            "second scheduled run (converged fleet): SSM calls per group",
            ssm / groups,
            sum(ssm_floor.values()) / groups,
            f"{ssm:,} calls in {len(second['messages'])} messages of <= {BATCH_GROUPS} groups; per group "
            f"{_fmt_ops(ssm_ops, groups)}; floor {sum(ssm_floor.values()):,} = {_fmt_ops(ssm_floor)} "
            f"(per window 1 GetMaintenanceWindow + 1 page of targets + 1 page of tasks + 1 "
            f"GetMaintenanceWindowTask per task, and GetParametersByPath at {PARAMETERS_PAGE} a page); "
            f"outcomes {dict(Counter(o.status for o in second['outcomes']))}",
        )
    )
    writes = _writes(ssm_ops)
    rows.append(
        _row(
            "second scheduled run: SSM writes",
            sum(writes.values()),
            0,
            f"UNEXPECTED: {_fmt_ops(writes)}" if writes else "none, as a converged fleet needs",
        )
    )
    ddb_ops = ops(second_calls, "dynamodb")
    scans = ddb_ops.get("Scan", 0)
    ddb_floor = 2 * groups + len(second["messages"]) + scans
    rows.append(
        _row(
            "second scheduled run: DynamoDB calls per group",
            sum(ddb_ops.values()) / groups,
            ddb_floor / groups,
            f"{sum(ddb_ops.values()):,} calls: {_fmt_ops(ddb_ops)}; floor {ddb_floor:,} = each group's lease "
            f"taken and given back (2 per group) + 1 placement read per message + the planner's {scans} "
            "Scan page(s); TagPatch also reads the placement again before cleaning each window",
        )
    )
    rows.append(
        _row(
            "second scheduled run: EC2 calls",
            count(second_calls, "ec2"),
            floor["DescribeInstances"],
            f"{_fmt_ops(ops(second_calls, 'ec2'))}: the planner's listing, {INSTANCES_PAGE:,} a page",
        )
    )
    rows.append(
        _row(
            "second scheduled run: wall on the emulator (s)",
            second["seconds"],
            None,
            f"plan_run + {len(second['messages'])} messages one after another on in-process moto: moto's "
            f"CPU (one DescribeInstances of {groups:,} instances and each read of the placement item cost "
            "it seconds and tens of ms at 1,000 groups), not AWS's",
        )
    )
    plan = seconds_of(second["plan"])
    projected = plan + makespan([seconds_of(m) for m in second["per_message"]], RECONCILE_CONCURRENCY)
    floor_plan = floor["GetParametersByPath"] * LATENCY["ssm"] + floor["DescribeInstances"] * LATENCY["ec2"]
    per_window = (3 + capacity) * LATENCY["ssm"] + (2 * capacity + 1) * LATENCY["dynamodb"]
    floor_projected = (
        floor_plan + scans * LATENCY["dynamodb"] + makespan([per_window] * windows, RECONCILE_CONCURRENCY)
    )
    pages = ssm_ops.get("GetParametersByPath", 0)
    rows.append(
        _row(
            f"second scheduled run: projected wall at ReconcileConcurrency={RECONCILE_CONCURRENCY} (s)",
            projected,
            floor_projected,
            f"planner {plan:.1f} s (its {pages} GetParametersByPath pages take "
            f"{pages * LATENCY['ssm']:.1f} s one at a time, {pages / PARAMETER_STORE_TPS:.1f} s at the "
            f"documented {PARAMETER_STORE_TPS} TPS: latency-bound), then {len(second['messages'])} messages "
            f"over {RECONCILE_CONCURRENCY} consumers; "
            f"SSM {ssm / projected:.0f} requests/s on average, at most "
            f"{RECONCILE_CONCURRENCY / LATENCY['ssm']:.0f}; floor: the floor calls, one message per window",
        )
    )
    items = result["items"]
    rows.append(
        _row(
            "groups table: placement item size at this fleet (KB)",
            items[PLACEMENT_KEY] / 1000,
            400,
            f"floor column: DynamoDB's 400 KB item limit; {items[PLACEMENT_KEY] / groups:.0f} bytes per "
            f"group; the slug-claims item {items[CLAIMS_KEY] / 1000:.1f} KB; each strongly consistent read "
            f"of the placement item costs {math.ceil(items[PLACEMENT_KEY] / 4096)} RCU (4 KB each)",
        )
    )
    extra, newkey = result["extra"], result["newkey"]
    rows.append(
        _row(
            "groups one account carries, install window only (default quotas: 50 windows x 20)",
            groups - len(result["problems"]),
            result["floor_windows"] * capacity,
            f"measured at MaxWindows={result['floor_windows']}, MaxGroups={groups:,}: {groups:,} groups "
            f"converged in {windows} windows; the next group, on a used "
            f"schedule: {extra.status} ({'; '.join(extra.reasons)[:140]}); one on a schedule of its own "
            f"with MaxGroups raised: {newkey.status} ({'; '.join(newkey.reasons)[:230]}); windows after: "
            f"{result['windows_after']}",
        )
    )
    rows.append(
        _row(
            "groups one account carries with a separate scan schedule (default quotas: 50 x 20 / 2)",
            None,
            quota * capacity // 2,
            f"computed, not measured: each group then takes a task in an install window and one in a scan "
            f"window: {quota} x {capacity} / 2",
        )
    )
    return rows


def burst_rows(result: dict[str, Any]) -> list[Row]:
    groups, workers, calls = result["groups"], result["workers"], result["calls"]
    expected = math.ceil(groups / 20)
    ssm_ops = ops(calls, "ssm")
    writes = _writes(ssm_ops)
    reads = {op: n for op, n in ssm_ops.items() if op not in writes}
    ddb_ops = ops(calls, "dynamodb")
    problems = result["problems"]
    head = f"burst of {groups} new groups, {workers} workers"
    rows = [
        _row(
            f"{head}: windows made",
            result["windows"],
            expected,
            f"ceil({groups}/20)" + (f"; PROBLEMS: {problems[:3]}" if problems else ""),
        ),
        _row(
            f"{head}: SSM writes",
            sum(writes.values()),
            expected + 2 * groups,
            f"floor {expected} CreateMaintenanceWindow + {groups} RegisterTarget + {groups} RegisterTask; "
            f"made {_fmt_ops(writes)}",
        ),
        _row(
            f"{head}: SSM reads per group",
            sum(reads.values()) / groups,
            1,
            f"{_fmt_ops(reads, groups)}; floor: the group's settings (GetParameter), as a tag event carries "
            "none; TagPatch also reads the shared window (GetMaintenanceWindow, though a tag event does "
            "not verify) and lists its targets and tasks (what a crashed attempt registered is found)",
        ),
        _row(
            f"{head}: DynamoDB calls per group",
            sum(ddb_ops.values()) / groups,
            5,
            f"{_fmt_ops(ddb_ops, groups)}; floor: the lease taken and given back, the slug claim, the "
            "placement read and its conditional write (TagPatch also reads the group's record before "
            f"the lease; each window's maker leases and records it); lost placement races {result['races']}",
        ),
        _row(
            f"{head}: time until every group converged, emulator (s)",
            result["seconds"],
            None,
            f"{result['rounds']} round(s) of events (a failed one is sent again, as Lambda retries); "
            f"outcomes {result['statuses']}"
            + (f", first failures {result['failures']}" if result["failures"] else "")
            + f"; 1 s polls for a window another was making: {result['polls']}; "
            + (f"NOT CONVERGED: {problems[:3]}" if problems else f"all {groups} converged")
            + "; moto's CPU under the GIL, so more workers do not shorten it",
        ),
    ]
    per_event = 3 * LATENCY["ssm"] + 5 * LATENCY["dynamodb"]
    floor_projected = makespan([per_event] * groups, workers) + expected * LATENCY["ssm"] / workers
    rows.append(
        _row(
            f"{head}: projected wall (s)",
            result["projected"],
            floor_projected,
            f"each event's recorded calls replayed over {workers} consumers, plus its polls at 1 s; "
            f"SSM {count(calls, 'ssm') / result['projected']:.0f} requests/s on average, at most "
            f"{workers / LATENCY['ssm']:.0f}; floor: the floor calls per event, plus the window creations",
        )
    )
    return rows


def _timed(label: str, step: Callable[[], Any]) -> Any:
    print(f"... {label}", file=sys.stderr, flush=True)
    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):  # Powertools' metric documents
        result = step()
    print(
        f"    {time.perf_counter() - started:.1f} s ({time.process_time() - cpu:.1f} s CPU)",
        file=sys.stderr,
        flush=True,
    )
    return result


def run_fleet_scale(
    fleet_groups: int = FLEET_GROUPS,
    schedules: int = FLEET_SCHEDULES,
    burst_groups: int = BURST_GROUPS,
    burst_workers: tuple[int, ...] = BURST_WORKERS,
) -> list[Row]:
    """Every figure of this module, measured in one run: rows of measure, ours, floor, ratio, note."""
    rows = fleet_rows(
        _timed(f"{fleet_groups:,} groups on {schedules} schedules", lambda: fleet(fleet_groups, schedules))
    )
    for workers in burst_workers:
        result = _timed(
            f"burst of {burst_groups} new groups, {workers} workers",
            lambda w=workers: burst(w, burst_groups),  # type: ignore[misc]
        )
        rows += burst_rows(result)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[Row]) -> str:
    lines = ["| measure | ours | floor | ratio | note |", "|---|---:|---:|---:|---|"]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(
            f"| {row['measure']} | {_cell(row['ours'])} | {_cell(row['floor'])} | {ratio} | {row['note']} |"
        )
    return "\n".join(lines)


def main() -> None:
    started, cpu = time.perf_counter(), time.process_time()
    rows = run_fleet_scale()
    print(table(rows))
    print()
    print(RATE_NOTE)
    print(
        f"\nWhole run: {time.perf_counter() - started:.0f} s ({time.process_time() - cpu:.0f} s CPU), "
        f"{os.cpu_count()} CPUs."
    )


if __name__ == "__main__":
    main()
