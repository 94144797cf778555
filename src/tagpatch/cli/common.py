"""What every ``tagpatch`` command shares: exit codes, errors, the command context, ``--since``."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import TextIO

from tagpatch.adapters.commands import CommandStatusTable
from tagpatch.adapters.compliance_store import ComplianceStore
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.hub_reads import HubReads
from tagpatch.cli.stack import Stack, StackNotFound
from tagpatch.models.records import GroupRecord

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_CREDENTIALS = 3
EXIT_NOT_FOUND = 4
EXIT_EMPTY = 5

_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
FAILED_STATUSES = frozenset({"Failed", "TimedOut", "Cancelled", "DeliveryTimedOut", "ExecutionTimedOut"})


class NotFound(LookupError):
    """An unknown group."""


class NothingRecorded(LookupError):
    """The tables hold nothing for the request yet."""


class Context:
    def __init__(self, stack: Stack, err: TextIO) -> None:
        self.stack = stack
        self.err = err

    def progress(self, message: str) -> None:
        print(message, file=self.err, flush=True)

    def groups(self) -> GroupsRepository:
        return GroupsRepository(self.stack.output("GroupsTableName"), self.stack.client("dynamodb"))

    def commands(self) -> CommandStatusTable:
        return CommandStatusTable(self.stack.output("CommandStatusTableName"), self.stack.client("dynamodb"))

    def compliance(self) -> ComplianceStore:
        return ComplianceStore(self.stack.output("ComplianceTableName"), self.stack.client("dynamodb"))

    def records(self, group: str | None) -> list[GroupRecord]:
        """The managed groups (one if ``group``), by name; NotFound/NothingRecorded when there are none."""
        return self.select(self.all_records(), group)

    def all_records(self) -> list[GroupRecord]:
        self.progress("reading the groups table...")
        return sorted(self.groups().all(), key=lambda record: record.group)

    def hub(self) -> HubReads:
        """The hub's tables; StackNotFound with a clear message when the stack is not a hub."""
        outputs = ("HubStateTableName", "HubHistoryTableName")
        missing = [name for name in outputs if not self.stack.outputs.get(name)]
        if missing:
            raise StackNotFound(
                f"stack {self.stack.name!r} is not a TagPatch hub (no {' or '.join(missing)} output): "
                "pass --stack <the hub stack's name>"
            )
        state, history = (self.stack.output(name) for name in outputs)
        return HubReads(state, history, self.stack.client("dynamodb"))

    @staticmethod
    def select(records: list[GroupRecord], group: str | None) -> list[GroupRecord]:
        if group is not None:
            records = [record for record in records if group in (record.group, record.slug)]
            if not records:
                raise NotFound(f"unknown group {group!r}: not in the groups table (see `tagpatch groups`)")
        if not records:
            raise NothingRecorded("no groups recorded yet: tag instances, or run `tagpatch reconcile`")
        return records


def parse_since(value: str, now: datetime) -> datetime:
    """``7d``, ``12h``, ``30m`` ago, or an ISO 8601 date/time (UTC when no zone is given)."""
    match = _DURATION.match(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"invalid --since {value!r}: use 7d, 12h, 30m or an ISO date such as 2025-06-01"
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def duration(value: str, option: str) -> timedelta:
    """``24h``, ``2d``, ``90m`` as a timedelta (argparse's usage error otherwise)."""
    match = _DURATION.match(value.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"invalid {option} {value!r}: use 24h, 2d or 90m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
