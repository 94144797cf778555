"""``tagpatch report --org`` on an organization of 200 accounts x 2 regions x 20 groups (8,000 groups).

Run with ``PYTHONPATH=src:. python -m benchmarks.org_report`` (``--accounts``, ``--regions``,
``--groups``, ``--days`` for other sizes). Everything runs in-process against moto: a hub stack (its
two tables made by CloudFormation, as :mod:`tagpatch.hub.records` lays them out, with the hub's
Outputs) seeded straight with BatchWriteItem: one member item per account x region, one state item
per group, and one snapshot per group per day in the history table (8,000 x 30 = 240,000 items).

The CLI (json and table, ``--by account`` and ``--by group``) is timed against a floor measured in
the same run: one paginated Scan of the state table and one paginated Query per day in range, each
reading only the attributes the report needs, and nothing else (no parsing, no aggregation).
API calls are counted with botocore's ``before-call`` event (one per request, retries excluded).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer

from tagpatch.adapters.hub_reads import HISTORY_ATTRIBUTES, STATE_ATTRIBUTES, days, iso
from tagpatch.hub.records import (
    MEMBER_SK,
    SNAPSHOT,
    group_sk,
    history_pk,
    history_sk,
    member_pk,
)

HUB_STACK = "tagpatch-hub"
REGIONS = ("eu-west-1", "us-east-1", "eu-central-1", "ap-southeast-2")
GROUP_NAMES = ("web", "db", "batch", "cache", "api", "queue", "search", "auth", "etl", "ml")
SEED_BUDGET_SECONDS = 120.0  # fewer days are seeded when all of them would take longer on moto
READ_BUDGET_SECONDS = 900.0  # the six report passes (floor twice, CLI four times) together
_SERIALIZER = TypeSerializer()

Item = dict[str, Any]


# --------------------------------------------------------------------------------------------
# A hub stack on moto and its items (shared with tests/integration/test_cli_org.py)
# --------------------------------------------------------------------------------------------
def hub_template() -> str:
    """The hub's two tables as hub/template.yaml declares them (keys of records.py) and its Outputs."""

    def table(ttl: bool) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if ttl:
            properties["TimeToLiveSpecification"] = {"AttributeName": "expiresAt", "Enabled": True}
        return {"Type": "AWS::DynamoDB::Table", "Properties": properties}

    outputs = {
        "HubStateTableName": {"Value": {"Ref": "HubStateTable"}},
        "HubHistoryTableName": {"Value": {"Ref": "HubHistoryTable"}},
        "HubEventBusArn": {"Value": "arn:aws:events:us-east-1:123456789012:event-bus/tagpatch-hub"},
    }
    return json.dumps(
        {"Resources": {"HubStateTable": table(False), "HubHistoryTable": table(True)}, "Outputs": outputs}
    )


def create_hub_stack(cloudformation: Any, name: str = HUB_STACK) -> tuple[str, str]:
    """A hub stack's tables, made by CloudFormation; their names (the stack's Outputs)."""
    cloudformation.create_stack(StackName=name, TemplateBody=hub_template())
    outputs = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    found = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    return found["HubStateTableName"], found["HubHistoryTableName"]


def _item(plain: dict[str, Any]) -> Item:
    return {k: _SERIALIZER.serialize(v) for k, v in plain.items() if v is not None}


def _percent(compliant: int, instances: int) -> Decimal | None:
    return None if instances == 0 else (Decimal(compliant) * 100 / instances).quantize(Decimal("0.01"))


def member_item(
    account: str,
    region: str,
    *,
    last_event_at: str,
    version: str = "1.4.0",
    ou_id: str = "",
    ou_name: str = "",
    groups: int | None = None,
    last_event_type: str = "Compliance Snapshot",
) -> Item:
    return _item(
        {
            "pk": member_pk(account, region),
            "sk": MEMBER_SK,
            "stack": "tagpatch",
            "version": version,
            "schemaVersion": "1",
            "firstSeenAt": "2026-10-01T00:00:00Z",
            "lastEventAt": last_event_at,
            "lastEventType": last_event_type,
            "groups": groups,
            "ouId": ou_id or None,
            "ouName": ou_name or None,
        }
    )


def group_item(
    account: str,
    region: str,
    group: str,
    *,
    at: str,
    instances: int,
    compliant: int,
    non_compliant_since: str = "",
    run: dict[str, Any] | None = None,
) -> Item:
    compliance = {
        "at": at,
        "snapshotId": at,
        "instances": instances,
        "compliant": compliant,
        "nonCompliant": instances - compliant,
        "percent": _percent(compliant, instances),
    }
    return _item(
        {
            "pk": member_pk(account, region),
            "sk": group_sk(group),
            "compliance": {k: v for k, v in compliance.items() if v is not None},
            "run": run,
            "reconcile": {"at": at, "status": "unchanged", "reasons": []},
            "nonCompliantSince": non_compliant_since or None,
        }
    )


def run_facet(
    at: str, command_id: str, status: str, failed: int, instances: dict[str, int]
) -> dict[str, Any]:
    return {"at": at, "commandId": command_id, "status": status, "failed": failed, "instances": instances}


def snapshot_item(at: str, account: str, region: str, group: str, *, instances: int, compliant: int) -> Item:
    return _item(
        {
            "pk": history_pk(SNAPSHOT, at),
            "sk": history_sk(at, account, region, group, at),
            "instances": instances,
            "compliant": compliant,
            "nonCompliant": instances - compliant,
            "percent": _percent(compliant, instances),
            "expiresAt": 2_000_000_000,
        }
    )


def run_item(
    at: str,
    account: str,
    region: str,
    group: str,
    *,
    command_id: str,
    status: str,
    failed: int,
    instances: int,
) -> Item:
    return _item(
        {
            "pk": history_pk("run", at),
            "sk": history_sk(at, account, region, group, command_id),
            "status": status,
            "failed": failed,
            "instances": {"Success": instances - failed, "Failed": failed}
            if failed
            else {"Success": instances},
            "expiresAt": 2_000_000_000,
        }
    )


def batch_write(dynamodb: Any, table: str, items: Sequence[Item]) -> int:
    """Every item, 25 per BatchWriteItem, unprocessed ones sent again; the number of calls."""
    calls = 0
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        while requests:
            calls += 1
            answer = dynamodb.batch_write_item(RequestItems={table: requests})
            requests = answer.get("UnprocessedItems", {}).get(table, [])
    return calls


# --------------------------------------------------------------------------------------------
# The organization
# --------------------------------------------------------------------------------------------
def account_id(index: int) -> str:
    return f"{100000000000 + index:012d}"


def group_name(index: int) -> str:
    base = GROUP_NAMES[index % len(GROUP_NAMES)]
    return base if index < len(GROUP_NAMES) else f"{base}-{index // len(GROUP_NAMES)}"


@dataclass(frozen=True)
class Organization:
    accounts: int = 200
    regions: int = 2
    groups: int = 20
    days: int = 30

    @property
    def group_count(self) -> int:
        return self.accounts * self.regions * self.groups

    def where(self) -> Iterator[tuple[int, str, str, int, str]]:
        """(account index, account, region, group index, group) for every group."""
        for a in range(self.accounts):
            for region in REGIONS[: self.regions]:
                for g in range(self.groups):
                    yield a, account_id(a), region, g, group_name(g)


def _size(a: int, g: int) -> int:
    return 5 + (a * 7 + g * 3) % 20


def _compliant(a: int, g: int, day: int, size: int) -> int:
    """Deterministic: a few groups lag, most converge as the days pass."""
    lag = (a + g + day) % 9
    return size if lag > 2 else max(0, size - lag - 1)


def _midnight(day: date) -> str:
    return iso(datetime.combine(day, datetime.min.time(), UTC))


def seed_state(dynamodb: Any, state_table: str, org: Organization, now: datetime) -> int:
    """A member item per account x region and a group item per group; the BatchWriteItem calls."""
    state: list[Item] = []
    for a in range(org.accounts):
        for r, region in enumerate(REGIONS[: org.regions]):
            state.append(
                member_item(
                    account_id(a),
                    region,
                    last_event_at=iso(now - timedelta(minutes=10 + a + r)),
                    ou_id=f"ou-root-{a % 4:08d}",
                    ou_name=("Prod", "Dev", "Sandbox", "Shared")[a % 4],
                    groups=org.groups,
                )
            )
    at = _midnight(now.date())
    for a, account, region, g, group in org.where():
        size = _size(a, g)
        compliant = _compliant(a, g, 0, size)
        status = "Success" if compliant == size else "Failed"
        state.append(
            group_item(
                account,
                region,
                group,
                at=at,
                instances=size,
                compliant=compliant,
                non_compliant_since="" if compliant == size else at,
                run=run_facet(at, f"cmd-{a}-{g}", status, size - compliant, {status: size}),
            )
        )
    return batch_write(dynamodb, state_table, state)


def seed_day(dynamodb: Any, history_table: str, org: Organization, day: date, back: int) -> int:
    """One snapshot per group at ``day``'s midnight (``back`` days before today); the calls."""
    at = _midnight(day)
    items = [
        snapshot_item(
            at, account, region, group, instances=_size(a, g), compliant=_compliant(a, g, back, _size(a, g))
        )
        for a, account, region, g, group in org.where()
    ]
    return batch_write(dynamodb, history_table, items)


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------
class CallCounter:
    """API calls of every client made from sessions it is installed on (botocore ``before-call``)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1

    def install(self, session: Any) -> None:
        session.events.register("before-call", self)


@contextlib.contextmanager
def counted_sessions(counter: CallCounter) -> Iterator[None]:
    """Every boto3.Session created inside counts its clients' calls in ``counter`` (the CLI's too)."""
    original = boto3.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        counter.install(self)

    boto3.Session.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        boto3.Session.__init__ = original  # type: ignore[method-assign]


def floor_scan(dynamodb: Any, state_table: str) -> int:
    """The state table in one paginated Scan of the attributes the report needs; the calls."""
    calls = 0
    names = {f"#a{i}": n for i, n in enumerate(STATE_ATTRIBUTES)}
    request: dict[str, Any] = {
        "TableName": state_table,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    while True:
        calls += 1
        page = dynamodb.scan(**request)
        if "LastEvaluatedKey" not in page:
            return calls
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def floor_query(dynamodb: Any, history_table: str, day: date, since: datetime | None) -> int:
    """One day's snapshots in one paginated Query of the attributes the report needs; the calls."""
    calls = 0
    wanted = HISTORY_ATTRIBUTES[SNAPSHOT]
    names = {"#pk": "pk", **{f"#a{i}": n for i, n in enumerate(wanted)}}
    values: dict[str, Any] = {":pk": {"S": f"{SNAPSHOT}#{day.isoformat()}"}}
    condition = "#pk = :pk"
    if since is not None:
        names["#sk"] = "sk"
        values[":since"] = {"S": iso(since)}
        condition += " AND #sk >= :since"
    request: dict[str, Any] = {
        "TableName": history_table,
        "KeyConditionExpression": condition,
        "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(wanted))),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    while True:
        calls += 1
        page = dynamodb.query(**request)
        if "LastEvaluatedKey" not in page:
            return calls
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def floor_read(
    dynamodb: Any, state_table: str, history_table: str, since: datetime, now: datetime
) -> Counter[str]:
    """The least a report can do: one Scan and one Query per day, paginated, the needed attributes."""
    calls: Counter[str] = Counter()
    calls["Scan"] = floor_scan(dynamodb, state_table)
    for index, day in enumerate(days(since, now)):
        calls["Query"] += floor_query(dynamodb, history_table, day, since if index == 0 else None)
    return calls


@contextlib.contextmanager
def partition_queries() -> Iterator[None]:
    """moto's Query looks at the queried partition only, as DynamoDB does.

    moto 5.2's ``Table.query`` walks and sorts every item of the table for each page (every day of
    history for one day's page), which makes a 30-day report quadratic in the days on moto only.
    Here a Query on the table's key (no index) sees its partition's items; results, order and pages
    are moto's own. It applies alike to the floor and to the CLI.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.query = original  # type: ignore[method-assign]


def measure(
    org: Organization | None = None,
    now: datetime | None = None,
    *,
    seed_budget: float = SEED_BUDGET_SECONDS,
    read_budget: float = READ_BUDGET_SECONDS,
) -> dict[str, Any]:
    """Seed, choose the days (as asked, or fewer when moto would take longer than the budgets), then
    the floor, the four CLI runs and the floor again (the floor's wall is the faster of the two)."""
    from moto import mock_aws

    from tagpatch.cli import app
    from tagpatch.cli import org as org_cli

    org = org or Organization()
    now = now or datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    figures: dict[str, Any] = {}
    with mock_aws(), partition_queries():
        session = boto3.Session(region_name="us-east-1")
        dynamodb = session.client("dynamodb")
        state_table, history_table = create_hub_stack(session.client("cloudformation"))
        tick = time.perf_counter()
        writes = seed_state(dynamodb, state_table, org, now)
        writes += seed_day(dynamodb, history_table, org, today, 0)
        seed_first = time.perf_counter() - tick
        # seeding and reading measured on the state and one day: how many days fit the budgets
        tick = time.perf_counter()
        floor_scan(dynamodb, state_table)
        scan_cost = time.perf_counter() - tick
        probes = []
        for _ in range(2):
            tick = time.perf_counter()
            floor_query(dynamodb, history_table, today, None)
            probes.append(time.perf_counter() - tick)
        day_cost = min(probes)
        passes = 2 + 4  # the floor twice, the CLI four times
        seed_day_cost = seed_first * org.group_count / (org.group_count + _state_items(org))
        fit_seed = 1 + int(max(0.0, seed_budget - seed_first) / max(seed_day_cost, 1e-3))
        fit_read = max(1, int((read_budget / passes - scan_cost) / max(day_cost, 1e-3)))
        chosen = max(1, min(org.days, fit_seed, fit_read))
        for back in range(1, chosen):
            writes += seed_day(dynamodb, history_table, org, today - timedelta(days=back), back)
        figures["seed"] = {
            "state_items": _state_items(org),
            "history_items": chosen * org.group_count,
            "days_asked": org.days,
            "days_seeded": chosen,
            "limited_by": None
            if chosen == org.days
            else ("seeding budget" if fit_seed <= fit_read else "read budget"),
            "batch_write_calls": writes,
            "seconds": time.perf_counter() - tick + seed_first,
            "one_day_read_seconds": round(day_cost, 2),
        }
        since = _start(today - timedelta(days=chosen - 1))
        since_arg = since.date().isoformat()  # from the oldest seeded day's midnight: every seeded day
        figures["since"] = since_arg
        figures["days_read"] = len(days(since, now))
        runs: list[dict[str, Any]] = []
        floors: list[tuple[Counter[str], float]] = []
        saved_clock = org_cli.clock
        org_cli.clock = lambda: now
        try:
            floors.append(_timed_floor(dynamodb, state_table, history_table, since, now))
            for by in ("account", "group"):
                for fmt in ("json", "table"):
                    runs.append(_timed_cli(app.main, by, fmt, since_arg))
            floors.append(_timed_floor(dynamodb, state_table, history_table, since, now))
        finally:
            org_cli.clock = saved_clock
    floor_calls, _ = floors[0]
    figures["floor"] = {
        "calls": dict(floor_calls),
        "seconds": min(seconds for _, seconds in floors),
        "runs_seconds": [round(seconds, 2) for _, seconds in floors],
    }
    figures["runs"] = runs
    return figures


def _start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def _state_items(org: Organization) -> int:
    return org.accounts * org.regions * (1 + org.groups)


def _timed_floor(
    dynamodb: Any, state_table: str, history_table: str, since: datetime, now: datetime
) -> tuple[Counter[str], float]:
    tick = time.perf_counter()
    calls = floor_read(dynamodb, state_table, history_table, since, now)
    return calls, time.perf_counter() - tick


def _timed_cli(main: Callable[..., int], by: str, fmt: str, since: str) -> dict[str, Any]:
    counter = CallCounter()
    out, err = io.StringIO(), io.StringIO()
    argv = ["--stack", HUB_STACK, "report", "--org", "--by", by, "--since", since, "--format", fmt]
    with counted_sessions(counter):
        tick = time.perf_counter()
        code = main(argv, out=out, err=err)
        seconds = time.perf_counter() - tick
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {code}: {err.getvalue()}")
    return {
        "by": by,
        "format": fmt,
        "calls": {op: n for op, n in counter.calls.items() if op != "DescribeStacks"},
        "describe_stacks": counter.calls["DescribeStacks"],
        "seconds": seconds,
        "rows": _rows(out.getvalue(), fmt),
        "bytes": len(out.getvalue()),
    }


def _rows(text: str, fmt: str) -> int:
    return len(json.loads(text)["rows"]) if fmt == "json" else max(0, len(text.splitlines()) - 2)


def rows(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per CLI run: its calls and wall time against the floor's."""
    floor = figures["floor"]
    floor_calls = sum(floor["calls"].values())
    lines = []
    for run in figures["runs"]:
        calls = sum(run["calls"].values())
        lines.append(
            {
                "measure": f"report --org --by {run['by']} --format {run['format']} ({run['rows']} rows)",
                "calls": calls,
                "floor_calls": floor_calls,
                "calls_ratio": round(calls / floor_calls, 2) if floor_calls else None,
                "seconds": round(run["seconds"], 2),
                "floor_seconds": round(floor["seconds"], 2),
                "wall_ratio": round(run["seconds"] / floor["seconds"], 2) if floor["seconds"] else None,
            }
        )
    return lines


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--regions", type=int, default=2, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--seed-budget", type=float, default=SEED_BUDGET_SECONDS, help="seconds of seeding at most"
    )
    parser.add_argument(
        "--read-budget",
        type=float,
        default=READ_BUDGET_SECONDS,
        help="seconds for the six report passes together at most (fewer days otherwise)",
    )
    args = parser.parse_args(argv)
    org = Organization(args.accounts, args.regions, args.groups, args.days)
    figures = measure(org, seed_budget=args.seed_budget, read_budget=args.read_budget)
    seeded = figures["seed"]
    out(
        f"report --org: {org.accounts} accounts x {org.regions} regions x {org.groups} groups = "
        f"{org.group_count:,} groups; {seeded['days_seeded']} of {org.days} days of snapshots seeded "
        f"({seeded['history_items']:,} history items, {seeded['state_items']:,} state items, "
        f"{seeded['batch_write_calls']:,} BatchWriteItem in {seeded['seconds']:.1f} s; moto, in-process)"
    )
    if seeded["limited_by"]:
        budget = args.seed_budget if seeded["limited_by"] == "seeding budget" else args.read_budget
        out(
            f"NOTE: {seeded['days_seeded']} day(s), not {org.days}: moto reads one day of "
            f"{org.group_count:,} snapshots in {seeded['one_day_read_seconds']} s, so {org.days} days "
            f"would exceed the {seeded['limited_by']} of {budget:.0f} s "
            "(--days/--seed-budget/--read-budget to change)"
        )
    out(
        f"--since {figures['since']}: {figures['days_read']} daily partitions read; floor = one paginated "
        f"Scan (projected) + one paginated Query per day (projected): "
        + ", ".join(f"{op} {n}" for op, n in sorted(figures["floor"]["calls"].items()))
        + f"; floor wall the faster of {figures['floor']['runs_seconds']} s (before and after the CLI)\n"
    )
    out(f"{'measure':58} {'calls':>6} {'floor':>6} {'ratio':>6} {'wall s':>7} {'floor s':>7} {'ratio':>6}")
    for line in rows(figures):
        out(
            f"{line['measure'][:58]:58} {line['calls']:>6} {line['floor_calls']:>6} "
            f"{line['calls_ratio']!s:>6} "
            f"{line['seconds']:>7} {line['floor_seconds']:>7} {line['wall_ratio']!s:>6}"
        )
    describe = {run["describe_stacks"] for run in figures["runs"]}
    out(
        f"\n(plus DescribeStacks per CLI run: {', '.join(map(str, sorted(describe)))}; "
        "the floor knows the tables)"
    )
    figures["rows"] = rows(figures)
    figures["organization"] = dataclasses.asdict(org)
    return figures


if __name__ == "__main__":
    main()
