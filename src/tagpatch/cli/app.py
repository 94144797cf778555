"""``tagpatch``: where patching stands, from the deployed stack's tables, windows and reconciler.

Every command reads the stack's Outputs (``--stack``, default ``tagpatch`` or ``TAGPATCH_STACK``)
through the standard AWS settings. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from tagpatch.adapters.ec2 import Ec2Gateway
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.ssm import SsmGateway
from tagpatch.cli import org, views
from tagpatch.cli.common import (
    EXIT_EMPTY,
    EXIT_FAILED,
    EXIT_NO_CREDENTIALS,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    FAILED_STATUSES,
    Context,
    NotFound,
    NothingRecorded,
    parse_since,
)
from tagpatch.cli.stack import DEFAULT_STACK, Stack, StackNotFound, open_stack
from tagpatch.models.environment import ConfigError
from tagpatch.models.records import GroupRecord
from tagpatch.observability import logger
from tagpatch.reconciler.config import load_reconciler_config
from tagpatch.reconciler.core import Outcome, Reconciler
from tagpatch.reconciler.starts import DEFAULT_CONCURRENT_LIMIT, WindowStart, collisions_by_window

EPILOG = """exit codes:
  0  ok
  1  failures (a group failed to reconcile, an AWS error)
  2  usage error
  3  no AWS credentials (or an unknown profile / no region)
  4  stack, group, account, OU or region not found; a stack that is not a hub (--org, accounts)
  5  nothing recorded yet (empty tables)

AWS settings: --profile/AWS_PROFILE, --region/AWS_REGION (else AWS_DEFAULT_REGION or the
profile's region), --endpoint-url/AWS_ENDPOINT_URL (e.g. the local emulator),
--stack/TAGPATCH_STACK (default tagpatch)."""
NO_REGION = (
    "no AWS region: pass --region (e.g. --region eu-west-1), set AWS_REGION, "
    "or run `aws configure` to give your profile one"
)

# --------------------------------------------------------------------------------------------
# groups
# --------------------------------------------------------------------------------------------
GROUPS_HEADER = (
    "GROUP",
    "STATUS",
    "INSTANCES",
    "SCHEDULE",
    "TIMEZONE",
    "NEXT RUN",
    "LAST RUN",
    "COMPLIANCE %",
    "STARTS",
)


def _offset(text: str) -> int | None:
    try:
        value = Decimal(text or "0")
    except InvalidOperation:
        return None
    whole = value.is_finite() and value == value.to_integral_value() and value >= 0
    return int(value) if whole else None


def window_starts(records: Iterable[GroupRecord]) -> list[WindowStart]:
    """The schedule of every distinct window the records name, where the record has it.

    A record written by a TagPatch older than the schedule facts (no ``schedule`` key) or with an
    unreadable offset contributes nothing: its window's starts are unknown here.
    """
    starts: dict[str, WindowStart] = {}
    for record in records:
        for facts in record.windows.values():
            window_id, schedule = facts.get("window_id", ""), facts.get("schedule", "")
            offset = _offset(facts.get("offset", "0"))
            if not window_id or not schedule or offset is None or window_id in starts:
                continue
            starts[window_id] = WindowStart(
                window_id,
                schedule,
                facts.get("timezone") or "UTC",
                offset,
                enabled=facts.get("enabled", "true").lower() != "false",
            )
    return list(starts.values())


def start_notes(records: Sequence[GroupRecord], limit: int, now: datetime) -> dict[str, str]:
    """Per group, its window's first start collision (SSM runs ``limit`` executions at once)."""
    colliding = collisions_by_window(window_starts(records), limit, now)
    notes: dict[str, str] = {}
    for record in records:
        roles = sorted(record.windows, key=lambda role: (role != "install", role))
        for role in roles:
            note = colliding.get(record.windows[role].get("window_id", ""))
            if note:
                notes[record.group] = note if role == "install" else f"{role} window: {note}"
                break
    return notes


def _last_run(invocations: list[dict[str, Any]]) -> str:
    if not invocations:
        return "-"
    newest = max(invocations, key=lambda item: str(item.get("event_time", "")))
    command_id = str(newest.get("command_id", ""))
    of_command = [item for item in invocations if item.get("command_id") == command_id]
    failed = sum(1 for item in of_command if str(item.get("status")) in FAILED_STATUSES)
    ok = sum(1 for item in of_command if str(item.get("status")) == "Success")
    when = str(newest.get("event_time", ""))[:16]
    verdict = f"{failed} failed" if failed else ("Success" if ok == len(of_command) else "InProgress")
    return f"{when} {verdict} ({ok}/{len(of_command)} ok)"


def cmd_groups(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    every = ctx.all_records()
    records = ctx.select(every, args.group)
    notes = start_notes(every, args.concurrent_limit, datetime.now(UTC))  # every group's windows count
    ctx.progress(f"reading {len(records)} groups: windows, runs, compliance...")
    ssm = SsmGateway(ctx.stack.client("ssm"))
    commands = ctx.commands()
    latest, _ = ctx.compliance().latest([record.group for record in records], "-")
    rows: list[list[views.Cell]] = []
    for record in records:
        ids = record.windows.get("install") or next(iter(record.windows.values()), {})
        window = ssm.get_window(ids["window_id"]) if ids.get("window_id") else None
        totals = latest.get(record.group)
        rows.append(
            [
                record.group,
                record.status,
                record.instance_count if record.instance_count >= 0 else None,
                (window or {}).get("Schedule"),
                (window or {}).get("ScheduleTimezone", "UTC" if window else None),
                (window or {}).get("NextExecutionTime"),
                _last_run(commands.by_group(record.group)),
                None if totals is None else totals.compliance_percent,
                notes.get(record.group),
            ]
        )
    out.write(views.table(GROUPS_HEADER, rows))
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------------
RUNS_HEADER = ("TIME", "GROUP", "COMMAND", "INSTANCE", "STATUS")


def cmd_runs(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    since = parse_since(args.since, datetime.now(UTC))
    records = ctx.records(args.group)
    ctx.progress(f"reading runs of {len(records)} groups since {since:%Y-%m-%d %H:%M} UTC...")
    commands = ctx.commands()
    items = [
        {**item, "group": record.group}  # the table keeps the slug; show the tag value
        for record in records
        for item in commands.by_group(record.group, since=since)
    ]
    if not items:
        raise NothingRecorded(f"no runs recorded since {since:%Y-%m-%d %H:%M} UTC")
    items.sort(key=lambda item: str(item.get("event_time", "")), reverse=True)
    items.sort(key=lambda item: str(item.get("status")) not in FAILED_STATUSES)  # stable: failures first
    rows: list[list[views.Cell]] = [
        [
            str(item.get("event_time", ""))[:19],
            item.get("group"),
            item.get("command_id"),
            item.get("instance_id"),
            item.get("status"),
        ]
        for item in items
    ]
    out.write(views.table(RUNS_HEADER, rows))
    failed = sum(1 for item in items if str(item.get("status")) in FAILED_STATUSES)
    ctx.progress(f"{len(items)} instance results, {failed} failed")
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    records = ctx.records(args.group)
    store = ctx.compliance()
    trends: list[views.GroupTrend] = []
    for index, record in enumerate(records, start=1):
        ctx.progress(f"[{index}/{len(records)}] reading the compliance history of {record.group}...")
        points = [
            views.Point(t.snapshot_id, t.instances, t.compliant_instances, t.compliance_percent)
            for t in store.trend(record.group)
        ]
        trends.append(views.GroupTrend(record.group, points))
    if not any(trend.points for trend in trends):
        raise NothingRecorded("no compliance snapshot recorded yet: invoke the compliance reporter")
    if args.format == "csv":
        out.write(views.report_csv(trends))
    elif args.format == "json":
        out.write(views.report_json(trends))
    elif args.format == "html":
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        out.write(views.report_html(trends, stack=ctx.stack.name, generated_at=generated))
    else:
        out.write(views.report_table(trends))
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# reconcile
# --------------------------------------------------------------------------------------------
RECONCILE_HEADER = ("GROUP", "STATUS", "ACTIONS", "REASONS")


def build_reconciler(stack: Stack) -> Reconciler:
    """The reconciler as deployed (its function's environment), acting with the operator's credentials."""
    name = stack.output("ReconcilerFunctionName")
    configuration = stack.client("lambda").get_function_configuration(FunctionName=name)
    config = load_reconciler_config(configuration.get("Environment", {}).get("Variables", {}))
    return Reconciler(
        config,
        SsmGateway(stack.client("ssm")),
        GroupsRepository(config.groups_table_name, stack.client("dynamodb")),
        Ec2Gateway(stack.client("ec2")),
    )


def cmd_reconcile(args: argparse.Namespace, ctx: Context, out: TextIO) -> int:
    ctx.progress("reading the reconciler's configuration...")
    reconciler = build_reconciler(ctx.stack)
    sizes = reconciler.ec2.group_sizes(reconciler.config.tag_key)
    known = {record.group for record in reconciler.groups.all()}
    verb = "planning" if args.dry_run else "reconciling"
    outcomes: list[Outcome] = []
    if args.group is not None:
        if args.group not in sizes and args.group not in known:
            raise NotFound(f"unknown group {args.group!r}: no instance carries it and it is not managed")
        ctx.progress(f"{verb} {args.group}...")
        outcomes.append(reconciler.reconcile_group(args.group, verify=True, dry_run=args.dry_run))
    elif args.dry_run:
        groups = sorted(set(sizes) | known)
        if not groups:
            raise NothingRecorded(f"no instance carries the {reconciler.config.tag_key} tag")
        for index, group in enumerate(groups, start=1):
            ctx.progress(f"[{index}/{len(groups)}] {verb} {group}...")
            outcomes.append(reconciler.reconcile_group(group, verify=True, dry_run=True))
    else:
        ctx.progress(f"{verb} every group ({len(set(sizes) | known)})...")
        outcomes = reconciler.reconcile_all()
    rows: list[list[views.Cell]] = [
        [o.group, o.status, "; ".join(o.actions) or None, "; ".join(o.reasons) or None] for o in outcomes
    ]
    out.write(views.table(RECONCILE_HEADER, rows))
    failed = [o.group for o in outcomes if o.status == "failed"]
    if failed:
        ctx.progress(f"failed: {', '.join(failed)}")
        return EXIT_FAILED
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# parser and main
# --------------------------------------------------------------------------------------------
def _aws_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: str | None) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--profile", default=default(None), help="AWS profile (default: AWS_PROFILE)")
    parser.add_argument(
        "--region",
        default=default(None),
        help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION or the profile's region)",
    )
    parser.add_argument(
        "--endpoint-url",
        default=default(None),
        help="AWS endpoint, e.g. the local emulator's (default: AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--stack",
        default=default(os.environ.get("TAGPATCH_STACK") or DEFAULT_STACK),
        help="CloudFormation stack name (default: TAGPATCH_STACK or tagpatch)",
    )


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagpatch",
        description="Where TagPatch patching stands: groups, runs, compliance reports, reconcile.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _aws_options(parser, suppress=False)
    parser.add_argument("--verbose", action="store_true", help="also print the reconciler's JSON logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    _aws_options(common, suppress=True)

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=[common],
            help=summary.replace("%", "%%"),  # a help string is %-formatted, a description is not
            description=summary,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    groups = command(
        "groups",
        "Every managed group: window schedule, next run, instances, last run, compliance %, "
        "and start collisions (more windows starting in one minute than SSM runs at once).",
    )
    groups.add_argument("--group", help="one group only")
    groups.add_argument(
        "--concurrent-limit",
        type=_positive,
        default=DEFAULT_CONCURRENT_LIMIT,
        help="maintenance window executions SSM runs at once in the account (its quota; default: "
        f"{DEFAULT_CONCURRENT_LIMIT}); STARTS shows each group whose window starts in a minute with more",
    )
    groups.set_defaults(run=cmd_groups)

    runs = command(
        "runs",
        "Recent Run Command results per instance, failures first; with --org (against a hub stack) "
        "every member's runs, one line per run.",
    )
    runs.add_argument("--org", action="store_true", help="the organization's runs, from the hub stack")
    runs.add_argument("--group", help="one group only (with --org: that group in every account)")
    runs.add_argument("--since", default="7d", help="7d, 12h, 30m or an ISO date/time (default: 7d)")
    org.add_filters(runs, group=False, prefix="with --org: ")
    runs.set_defaults(run=cmd_runs)

    report = command(
        "report",
        "Latest compliance snapshot and trend per group; with --org (against a hub stack) per "
        "account or per group across accounts, one point per day.",
    )
    report.add_argument(
        "--org", action="store_true", help="the organization's compliance, from the hub stack"
    )
    report.add_argument("--group", help="one group only (with --org: that group in every account)")
    report.add_argument(
        "--by",
        choices=(org.BY_ACCOUNT, org.BY_GROUP),
        help="with --org: one row and one series per account or per group name (default: account)",
    )
    org.add_filters(report, group=False, prefix="with --org: ")
    report.add_argument(
        "--since",
        help=f"with --org: the series from 30d, 12h or an ISO date (default: {org.DEFAULT_REPORT_SINCE})",
    )
    report.add_argument(
        "--format",
        choices=("table", "csv", "json", "html"),
        default="table",
        help="table: latest snapshot and change per group; csv, json: every snapshot (the trend); "
        "html: a self-contained page with the trend chart, best with --output (default: table)",
    )
    report.add_argument("--output", "-o", help="write to this file instead of stdout")
    report.set_defaults(run=cmd_report)

    accounts = command(
        "accounts",
        "Every member of the organization (against a hub stack): region, OU, TagPatch version, last "
        "event and how long ago, silent flag, groups, compliance %.",
    )
    org.add_filters(accounts)
    accounts.add_argument(
        "--silent-after",
        type=org.silent_after,
        default=org.silent_after(org.DEFAULT_SILENT_AFTER),
        help=f"flag a member with no event for longer than this (default: {org.DEFAULT_SILENT_AFTER})",
    )
    accounts.add_argument("--format", choices=("table", "csv", "json"), default="table")
    accounts.add_argument("--output", "-o", help="write to this file instead of stdout")
    accounts.set_defaults(run=org.cmd_accounts)

    reconcile = command("reconcile", "Apply (or with --dry-run show) what the reconciler would change.")
    reconcile.add_argument("--group", help="one group (default: every group, as the scheduled reconcile)")
    reconcile.add_argument("--dry-run", action="store_true", help="plan only: change nothing")
    reconcile.set_defaults(run=cmd_reconcile)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    misuse = org.check_org_options(args)
    if misuse:
        print(f"tagpatch {args.command}: error: {misuse}", file=err)
        return EXIT_USAGE
    if args.command in ("runs", "report") and getattr(args, "since", None) is not None:
        try:
            parse_since(args.since, datetime.now(UTC))
        except argparse.ArgumentTypeError as error:
            print(f"tagpatch {args.command}: error: {error}", file=err)
            return EXIT_USAGE
    if getattr(args, "org", False):
        args.run = org.cmd_runs_org if args.command == "runs" else org.cmd_report_org
    saved_level = logger.log_level
    if not args.verbose:
        logger.setLevel(logging.CRITICAL)  # the reconciler's JSON logs stay off the output
    try:
        return _run(args, out, err)
    finally:
        logger.setLevel(saved_level)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        stack = open_stack(
            args.stack, profile=args.profile, region=args.region, endpoint_url=args.endpoint_url
        )
        if getattr(args, "output", None):
            rendered = io.StringIO()
            code = int(args.run(args, Context(stack, err), rendered))
            Path(args.output).write_text(rendered.getvalue(), encoding="utf-8")
            print(f"wrote {args.output}", file=err)
            return code
        return int(args.run(args, Context(stack, err), out))
    except OSError as error:
        print(f"tagpatch: cannot write {args.output}: {error}", file=err)
        return EXIT_FAILED
    except NoRegionError:
        print(f"tagpatch: {NO_REGION}", file=err)
        return EXIT_NO_CREDENTIALS
    except (NoCredentialsError, PartialCredentialsError, ProfileNotFound) as error:
        print(f"tagpatch: no usable AWS credentials: {error}", file=err)
        return EXIT_NO_CREDENTIALS
    except (StackNotFound, NotFound) as error:
        print(f"tagpatch: {error.args[0]}", file=err)
        return EXIT_NOT_FOUND
    except NothingRecorded as error:
        print(f"tagpatch: {error.args[0]}", file=err)
        return EXIT_EMPTY
    except ConfigError as error:
        print(f"tagpatch: the deployed reconciler's configuration is unusable: {error}", file=err)
        return EXIT_FAILED
    except (ClientError, BotoCoreError) as error:
        print(f"tagpatch: AWS error: {error}", file=err)
        return EXIT_FAILED
