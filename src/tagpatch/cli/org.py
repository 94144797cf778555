"""The organization's commands, against a hub stack's tables (:mod:`tagpatch.hub.records`).

``report --org``, ``runs --org`` and ``accounts``. The state table is read once (one paginated Scan:
every member and group), the history table once per UTC day in range (one paginated Query of that
day's partition); everything else (filters, latest rows, series per day) is computed here.

Filters: ``--ou`` (a member's OU id or name, as the hub resolved them), ``--account``,
``--member-region`` (``--region`` is the AWS region the hub stack is in) and ``--group``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TextIO

from tagpatch.adapters.hub_reads import HubState, days, iso
from tagpatch.cli import views
from tagpatch.cli.common import (
    EXIT_OK,
    FAILED_STATUSES,
    Context,
    NotFound,
    NothingRecorded,
    duration,
    parse_since,
)
from tagpatch.hub.records import RUN, SNAPSHOT, GroupState, HistoryRow, MemberState, RunFacet

#: "now" for every org command (tests and the docs' example set it)
clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731

BY_ACCOUNT = "account"
BY_GROUP = "group"
DEFAULT_REPORT_SINCE = "30d"
DEFAULT_RUNS_SINCE = "7d"
DEFAULT_SILENT_AFTER = "24h"
#: options that only mean something with --org on ``report`` and ``runs``
ORG_OPTIONS = ("by", "ou", "account", "member_region")


def percent(compliant: int, instances: int, places: int = 2) -> Decimal | None:
    """Compliance % rounded once to ``places`` (a table's 1 place is not a rounding of the 2)."""
    if instances <= 0:
        return None
    exact = Decimal(compliant) * 100 / Decimal(instances)
    return exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    ou: str | None = None
    account: str | None = None
    region: str | None = None
    group: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> Filters:
        return cls(
            getattr(args, "ou", None),
            getattr(args, "account", None),
            getattr(args, "member_region", None),
            getattr(args, "group", None),
        )

    def __str__(self) -> str:
        named = [
            f"{name} {value!r}"
            for name, value in (
                ("OU", self.ou),
                ("account", self.account),
                ("region", self.region),
                ("group", self.group),
            )
            if value
        ]
        return ", ".join(named) or "no filter"

    def check_known(self, state: HubState) -> None:
        """NotFound naming the first filter that matches nothing in the whole organization."""
        ous = {m.ou_id for m in state.members} | {m.ou_name for m in state.members}
        if self.ou is not None and not ous - {""}:
            raise NotFound(
                f"unknown OU {self.ou!r}: no member has an OU recorded (the hub resolves them when its "
                "ResolveOrganizationalUnits parameter is true)"
            )
        accounts = {m.account for m in state.members} | {g.account for g in state.groups}
        regions = {m.region for m in state.members} | {g.region for g in state.groups}
        groups = {g.group for g in state.groups}
        for what, value, known in (
            ("OU", self.ou, ous - {""}),
            ("account", self.account, accounts),
            ("region", self.region, regions),
            ("group", self.group, groups),
        ):
            if value is not None and value not in known:
                raise NotFound(
                    f"unknown {what} {value!r}: no member of the hub has it (see `tagpatch accounts`)"
                )

    def member_ok(self, member: MemberState) -> bool:
        return (
            (self.ou is None or self.ou in (member.ou_id, member.ou_name))
            and (self.account is None or member.account == self.account)
            and (self.region is None or member.region == self.region)
        )

    def where_ok(self, account: str, region: str, members: dict[tuple[str, str], MemberState]) -> bool:
        member = members.get((account, region)) or MemberState(account, region)
        return self.member_ok(member)

    def group_ok(self, group: str) -> bool:
        return self.group is None or group == self.group


def members_by_key(state: HubState) -> dict[tuple[str, str], MemberState]:
    """Every member stack, those known only by their groups' items too (with nothing but a key)."""
    members = {(m.account, m.region): m for m in state.members}
    for group in state.groups:
        members.setdefault((group.account, group.region), MemberState(group.account, group.region))
    return members


def ou_of(member: MemberState) -> str:
    return member.ou_name or member.ou_id


# --------------------------------------------------------------------------------------------
# report --org
# --------------------------------------------------------------------------------------------
@dataclass
class OrgRow:
    """One account (its member stacks in every region) or one group name (across accounts)."""

    key: str
    ou: str = ""
    members: set[tuple[str, str]] = field(default_factory=set)
    groups: int = 0
    instances: int = 0
    compliant: int = 0
    non_compliant_since: str = ""
    last_run: tuple[RunFacet, str, str, str] | None = None  # the run, its account, region, group
    trend: views.GroupTrend | None = None

    @property
    def percent(self) -> Decimal | None:
        return percent(self.compliant, self.instances)

    def add(self, group: GroupState) -> None:
        self.members.add((group.account, group.region))
        self.groups += 1
        if group.compliance is not None:
            self.instances += group.compliance.instances
            self.compliant += group.compliance.compliant
        since = group.non_compliant_since
        if since and (not self.non_compliant_since or since < self.non_compliant_since):
            self.non_compliant_since = since
        if group.run is not None and (self.last_run is None or group.run.at > self.last_run[0].at):
            self.last_run = (group.run, group.account, group.region, group.group)


def _key(by: str, account: str, group: str) -> str:
    return account if by == BY_ACCOUNT else group


def latest_rows(
    state: HubState, filters: Filters, by: str, members: dict[tuple[str, str], MemberState]
) -> dict[str, OrgRow]:
    rows: dict[str, OrgRow] = {}
    for group in state.groups:
        if not (filters.group_ok(group.group) and filters.where_ok(group.account, group.region, members)):
            continue
        key = _key(by, group.account, group.group)
        row = rows.setdefault(key, OrgRow(key))
        if by == BY_ACCOUNT and not row.ou:
            row.ou = ou_of(members[(group.account, group.region)])
        row.add(group)
    return rows


def daily_series(
    history: Iterable[tuple[date, Sequence[HistoryRow]]],
    filters: Filters,
    by: str,
    members: dict[tuple[str, str], MemberState],
) -> dict[str, list[views.Point]]:
    """Per row key, one point per day: the sum of each of its groups' last snapshot of that day."""
    series: dict[str, list[views.Point]] = {}
    for day, snapshots in history:
        last: dict[tuple[str, str, str], HistoryRow] = {}
        for row in snapshots:
            where = (row.account, row.region, row.group)
            if where in last and last[where].at >= row.at:
                continue
            if filters.group_ok(row.group) and filters.where_ok(row.account, row.region, members):
                last[where] = row
        totals: dict[str, list[int]] = {}
        for (account, _, group), row in last.items():
            total = totals.setdefault(_key(by, account, group), [0, 0])
            total[0] += row.instances
            total[1] += row.compliant
        for key, (instances, compliant) in totals.items():
            series.setdefault(key, []).append(
                views.Point(day.isoformat(), instances, compliant, percent(compliant, instances))
            )
    return series


def _worst_first(row: OrgRow) -> tuple[bool, Decimal, str]:
    value = row.percent
    return (value is None, value if value is not None else Decimal(0), row.key)


def last_run_text(row: OrgRow, by: str) -> str | None:
    if row.last_run is None:
        return None
    run, account, region, group = row.last_run
    where = f"{group} in {region}" if by == BY_ACCOUNT else f"{account} {region}"
    failed = f", {run.failed} failed" if run.failed else ""
    return f"{run.at[:16]} {run.status or '?'}{failed} ({where})"


def report_header(by: str) -> tuple[str, ...]:
    if by == BY_ACCOUNT:
        return ("ACCOUNT", "OU", "REGIONS", "GROUPS", *_FIGURES)
    return ("GROUP", "MEMBERS", *_FIGURES)


_FIGURES = ("INSTANCES", "COMPLIANT", "COMPLIANCE %", "CHANGE", "NON-COMPLIANT SINCE", "LAST RUN")


def report_cells(rows: Sequence[OrgRow], by: str) -> list[list[views.Cell]]:
    cells: list[list[views.Cell]] = []
    for row in rows:
        change = row.trend.change if row.trend is not None else None
        figures: list[views.Cell] = [
            row.instances,
            row.compliant,
            percent(row.compliant, row.instances, 1),
            None if change is None else f"{float(change):+.1f}",
            row.non_compliant_since[:16] or None,
            last_run_text(row, by),
        ]
        if by == BY_ACCOUNT:
            regions = len({region for _, region in row.members})
            cells.append([row.key, row.ou or None, regions, row.groups, *figures])
        else:
            cells.append([row.key, len(row.members), *figures])
    return cells


def _point(p: views.Point) -> dict[str, Any]:
    return {
        "day": p.snapshot_id,
        "instances": p.instances,
        "compliantInstances": p.compliant_instances,
        "compliancePercent": p.compliance_percent,
    }


def report_document(
    rows: Sequence[OrgRow], by: str, *, since: datetime, generated_at: datetime
) -> dict[str, Any]:
    instances = sum(row.instances for row in rows)
    compliant = sum(row.compliant for row in rows)
    entries = []
    for row in rows:
        entry: dict[str, Any] = {by: row.key}
        if by == BY_ACCOUNT:
            entry["ou"] = row.ou
            entry["regions"] = sorted({region for _, region in row.members})
        else:
            entry["members"] = [f"{account}/{region}" for account, region in sorted(row.members)]
        run = None
        if row.last_run is not None:
            facet, account, region, group = row.last_run
            run = {
                "at": facet.at,
                "account": account,
                "region": region,
                "group": group,
                "commandId": facet.command_id,
                "status": facet.status,
                "failed": facet.failed,
            }
        entry.update(
            groups=row.groups,
            instances=row.instances,
            compliantInstances=row.compliant,
            compliancePercent=row.percent,
            change=None if row.trend is None else row.trend.change,
            nonCompliantSince=row.non_compliant_since or None,
            lastRun=run,
            series=[_point(p) for p in (row.trend.points if row.trend else [])],
        )
        entries.append(entry)
    return {
        "by": by,
        "since": iso(since),
        "generatedAt": iso(generated_at),
        "organization": {
            "instances": instances,
            "compliantInstances": compliant,
            "compliancePercent": percent(compliant, instances),
        },
        "rows": entries,
    }


def report_csv(rows: Sequence[OrgRow], by: str) -> str:
    cells: list[list[views.Cell]] = [
        [row.key, p.snapshot_id, p.instances, p.compliant_instances, p.compliance_percent]
        for row in rows
        for p in (row.trend.points if row.trend else [])
    ]
    return views.to_csv((by, "day", "instances", "compliant_instances", "compliance_percent"), cells)


def _since(args: argparse.Namespace, default: str, now: datetime) -> datetime:
    return parse_since(args.since or default, now)


def cmd_report_org(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    now = clock()
    since = _since(args, DEFAULT_REPORT_SINCE, now)
    by = args.by or BY_ACCOUNT
    filters = Filters.of(args)
    hub = ctx.hub()
    ctx.progress("reading the hub's state table...")
    state = hub.state()
    if state.empty:
        raise NothingRecorded("nothing recorded in the hub yet: no member has sent an event")
    filters.check_known(state)
    members = members_by_key(state)
    rows = latest_rows(state, filters, by, members)
    if not rows:
        raise NothingRecorded(f"no group in the hub matches {filters}")
    if not any(row.instances for row in rows.values()):
        raise NothingRecorded(f"no compliance snapshot recorded in the hub yet ({filters})")
    ctx.progress(
        f"{len(state.members)} members, {len(state.groups)} groups; reading snapshots since "
        f"{since:%Y-%m-%d %H:%M} UTC..."
    )
    history = []
    count = len(days(since, now))
    for index, (day, snapshots) in enumerate(hub.history(SNAPSHOT, since, now), start=1):
        ctx.progress(f"[{index}/{count}] {day.isoformat()}: {len(snapshots)} snapshots")
        history.append((day, snapshots))
    series = daily_series(history, filters, by, members)
    for key, row in rows.items():
        row.trend = views.GroupTrend(key, series.get(key, []))
    ordered = sorted(rows.values(), key=_worst_first)
    document = report_document(ordered, by, since=since, generated_at=now)
    total = document["organization"]
    shown = views.text(percent(total["compliantInstances"], total["instances"], 1))
    ctx.progress(
        f"organization: {shown} % compliant "
        f"({total['compliantInstances']} of {total['instances']} instances; {filters})"
    )
    if args.format == "csv":
        out.write(report_csv(ordered, by))
    elif args.format == "json":
        out.write(views.to_json(document))
    elif args.format == "html":
        trends = [row.trend for row in ordered if row.trend is not None]
        out.write(
            views.html_page(
                f"TagPatch organization compliance - {ctx.stack.name}",
                generated_at=now.strftime("%Y-%m-%d %H:%M UTC"),
                trends=trends,
                series=by,
                table_title=f"Latest per {by}, worst first",
                header=report_header(by),
                rows=report_cells(ordered, by),
                notes=[
                    f"{total['compliantInstances']} of {total['instances']} instances compliant "
                    f"({shown} %); {filters}; one point per day "
                    f"since {since:%Y-%m-%d %H:%M} UTC."
                ],
            )
        )
    else:
        out.write(views.table(report_header(by), report_cells(ordered, by)))
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# runs --org
# --------------------------------------------------------------------------------------------
ORG_RUNS_HEADER = ("TIME", "ACCOUNT", "REGION", "GROUP", "COMMAND", "STATUS", "FAILED", "INSTANCES")


def run_failed(row: HistoryRow) -> bool:
    return row.status in FAILED_STATUSES or row.failed > 0


def cmd_runs_org(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    now = clock()
    since = _since(args, DEFAULT_RUNS_SINCE, now)
    filters = Filters.of(args)
    hub = ctx.hub()
    members: dict[tuple[str, str], MemberState] = {}
    if filters.ou is not None:  # the OU is on the member items: the state table is needed
        ctx.progress("reading the hub's state table (for the OUs)...")
        state = hub.state()
        filters.check_known(state)
        members = members_by_key(state)
    ctx.progress(f"reading runs since {since:%Y-%m-%d %H:%M} UTC...")
    runs = [
        row
        for _, rows in hub.history(RUN, since, now)
        for row in rows
        if filters.group_ok(row.group) and filters.where_ok(row.account, row.region, members)
    ]
    if not runs:
        raise NothingRecorded(f"no runs recorded in the hub since {since:%Y-%m-%d %H:%M} UTC ({filters})")
    runs.sort(key=lambda row: row.at, reverse=True)
    runs.sort(key=lambda row: not run_failed(row))  # stable: failures first, newest first in each
    cells: list[list[views.Cell]] = [
        [row.at[:19], row.account, row.region, row.group, row.fact_id, row.status, row.failed, row.instances]
        for row in runs
    ]
    out.write(views.table(ORG_RUNS_HEADER, cells))
    failed = sum(1 for row in runs if run_failed(row))
    ctx.progress(f"{len(runs)} runs, {failed} failed")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# accounts
# --------------------------------------------------------------------------------------------
ACCOUNTS_HEADER = (
    "ACCOUNT",
    "REGION",
    "OU",
    "VERSION",
    "LAST EVENT",
    "AGO",
    "SILENT",
    "GROUPS",
    "COMPLIANCE %",
)

ACCOUNTS_CSV_HEADER = tuple(
    name.lower().replace(" %", "_percent").replace(" ", "_") for name in ACCOUNTS_HEADER
)


def ago(moment: str, now: datetime) -> timedelta | None:
    try:
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    return now - (when if when.tzinfo else when.replace(tzinfo=UTC))


def ago_text(delta: timedelta | None) -> str | None:
    if delta is None:
        return None
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // (24 * 60)}d"


@dataclass(frozen=True)
class AccountRow:
    member: MemberState
    groups: int
    instances: int
    compliant: int
    since_last_event: timedelta | None
    silent: bool

    @property
    def percent(self) -> Decimal | None:
        return percent(self.compliant, self.instances)


def account_rows(
    state: HubState, filters: Filters, now: datetime, silent_after: timedelta
) -> list[AccountRow]:
    members = members_by_key(state)
    by_member: dict[tuple[str, str], list[GroupState]] = {}
    for group in state.groups:
        by_member.setdefault((group.account, group.region), []).append(group)
    rows = []
    for key, member in sorted(members.items()):
        groups = by_member.get(key, [])
        if not filters.member_ok(member):
            continue
        if filters.group is not None and all(g.group != filters.group for g in groups):
            continue
        facets = [g.compliance for g in groups if g.compliance is not None]
        since = ago(member.last_event_at, now) if member.last_event_at else None
        rows.append(
            AccountRow(
                member,
                member.groups if member.groups is not None else len(groups),
                sum(f.instances for f in facets),
                sum(f.compliant for f in facets),
                since,
                since is None or since > silent_after,
            )
        )
    return rows


def _account_record(row: AccountRow) -> dict[str, Any]:
    m = row.member
    return {
        "account": m.account,
        "region": m.region,
        "ouId": m.ou_id,
        "ouName": m.ou_name,
        "version": m.version,
        "stack": m.stack,
        "lastEventAt": m.last_event_at or None,
        "lastEventType": m.last_event_type or None,
        "secondsSinceLastEvent": None
        if row.since_last_event is None
        else int(row.since_last_event.total_seconds()),
        "silent": row.silent,
        "groups": row.groups,
        "instances": row.instances,
        "compliantInstances": row.compliant,
        "compliancePercent": row.percent,
    }


def cmd_accounts(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    now = clock()
    silent_after: timedelta = args.silent_after
    filters = Filters.of(args)
    hub = ctx.hub()
    ctx.progress("reading the hub's state table...")
    state = hub.state()
    if state.empty:
        raise NothingRecorded("no member recorded in the hub yet: no member has sent an event")
    filters.check_known(state)
    rows = account_rows(state, filters, now, silent_after)
    if not rows:
        raise NothingRecorded(f"no member matches ({filters})")
    if args.format == "json":
        out.write(
            views.to_json(
                {
                    "generatedAt": iso(now),
                    "silentAfterSeconds": int(silent_after.total_seconds()),
                    "members": [_account_record(row) for row in rows],
                }
            )
        )
    else:
        cells: list[list[views.Cell]] = [
            [
                row.member.account,
                row.member.region,
                ou_of(row.member) or None,
                row.member.version or None,
                row.member.last_event_at[:19] or None,
                ago_text(row.since_last_event),
                "SILENT" if row.silent else None,
                row.groups,
                row.percent if args.format == "csv" else percent(row.compliant, row.instances, 1),
            ]
            for row in rows
        ]
        if args.format == "csv":
            header = tuple(
                name.lower().replace(" %", "_percent").replace(" ", "_") for name in ACCOUNTS_HEADER
            )
            out.write(views.to_csv(header, cells))
        else:
            out.write(views.table(ACCOUNTS_HEADER, cells))
    silent = sum(1 for row in rows if row.silent)
    ctx.progress(f"{len(rows)} members, {silent} silent (no event for more than {ago_text(silent_after)})")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------
def add_filters(parser: argparse.ArgumentParser, *, group: bool = True, prefix: str = "") -> None:
    """--ou, --account, --member-region and (``group``) --group; ``prefix`` starts each help."""
    parser.add_argument(
        "--ou", help=f"{prefix}members of this organizational unit only (its id ou-... or name)"
    )
    parser.add_argument("--account", help=f"{prefix}this member account only (12 digits)")
    parser.add_argument(
        "--member-region",
        metavar="REGION",
        help=f"{prefix}members in this region only (--region is the region of the hub stack)",
    )
    if group:
        parser.add_argument("--group", help="this group only (its name, in every account)")


def silent_after(value: str) -> timedelta:
    return duration(value, "--silent-after")


def check_org_options(args: argparse.Namespace) -> str | None:
    """The usage error of org-only options given to ``report``/``runs`` without ``--org``."""
    if args.command not in ("report", "runs") or getattr(args, "org", False):
        return None
    given = [name for name in ORG_OPTIONS if getattr(args, name, None) is not None]
    if args.command == "report" and getattr(args, "since", None) is not None:
        given.append("since")
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        return f"{options} only with --org (the organization, from a hub stack)"
    return None
