"""Run Command status collection: notifications become per-instance records and bounded alerts.

Every SSM Run Command status notification that the maintenance windows publish ends here, one
SQS batch at a time. This module is the domain of that flow; it calls AWS only through the ports
it is given (``CommandStore``, ``AlertSink``, ``FlushScheduler``, ``CommandLookup``).

Statuses
    ``normalise_status`` maps every spelling SSM uses (``Canceled``/``Cancelled``,
    ``In Progress``/``InProgress``) to one :class:`RunStatus`. Ranks order them: Pending <
    InProgress/Delayed < Cancelling < terminal. A record moves only forward (:func:`supersedes`):
    a newer ``eventTime`` of an equal or higher rank, or any terminal status over a non-terminal
    one. So a late ``InProgress`` never overwrites ``Success`` and a duplicate changes nothing.

Group
    A command's patch group is the last segment of its ``OutputS3KeyPrefix`` (the reconciler sets
    ``<outputPrefix>/<slug>``). Command notifications carry the prefix; Invocation notifications
    do not, so the group of a command is looked up once (the command item, else ListCommands),
    cached per container and persisted on the command item.

Alerts (storm control)
    * at most one message per command per batch;
    * a failure is alerted once: the command item holds the failed instance ids per status and the
      ids already alerted; only the difference is ever listed (so a redelivered failure, or one
      seen by two concurrent batches, is listed once);
    * per command, at most ``max_alerts_per_command`` messages, at least ``alert_cooldown_seconds``
      apart. Failures that arrive during the cooldown are held on the command item and one delayed
      "flush" message to the status queue makes a digest of them when the cooldown ends;
    * a Command-level terminal failure (NotificationType Command) sends one final summary,
      outside the cooldown and the cap, exactly once per command.
    A command with any number of failing instances therefore produces at most
    ``max_alerts_per_command + 1`` messages, while the table keeps every instance's record.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from tagpatch.observability import logger

if TYPE_CHECKING:
    from tagpatch.collector_config import CollectorConfig
    from tagpatch.models.notifications import (
        AlertFlush,
        CommandNotification,
        InvocationNotification,
    )


# --------------------------------------------------------------------------------------------
# Statuses
# --------------------------------------------------------------------------------------------
class RunStatus(StrEnum):
    """Run Command statuses (CommandStatus and CommandInvocationStatus) and the invocation status
    details SSM may report, in the API's spelling."""

    PENDING = "Pending"
    DELAYED = "Delayed"
    IN_PROGRESS = "InProgress"
    CANCELLING = "Cancelling"
    SUCCESS = "Success"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELLED = "Cancelled"
    UNDELIVERABLE = "Undeliverable"
    DELIVERY_TIMED_OUT = "DeliveryTimedOut"
    EXECUTION_TIMED_OUT = "ExecutionTimedOut"
    TERMINATED = "Terminated"
    INVALID_PLATFORM = "InvalidPlatform"
    ACCESS_DENIED = "AccessDenied"


class UnknownStatus(ValueError):
    """A status that is none of the Run Command statuses."""


# The SSM user guide and EventBridge reference spell these with one "l"; the API with two.
_SPELLINGS = {"Canceled": RunStatus.CANCELLED, "Canceling": RunStatus.CANCELLING}
_BY_VALUE = {status.value: status for status in RunStatus}

TERMINAL_RANK = 3
RANK: dict[RunStatus, int] = {
    RunStatus.PENDING: 0,
    RunStatus.DELAYED: 1,
    RunStatus.IN_PROGRESS: 1,
    RunStatus.CANCELLING: 2,
    **{
        status: TERMINAL_RANK
        for status in (
            RunStatus.SUCCESS,
            RunStatus.FAILED,
            RunStatus.TIMED_OUT,
            RunStatus.CANCELLED,
            RunStatus.UNDELIVERABLE,
            RunStatus.DELIVERY_TIMED_OUT,
            RunStatus.EXECUTION_TIMED_OUT,
            RunStatus.TERMINATED,
            RunStatus.INVALID_PLATFORM,
            RunStatus.ACCESS_DENIED,
        )
    },
}
TERMINAL = frozenset(status for status, rank in RANK.items() if rank == TERMINAL_RANK)
ALERTING = TERMINAL - {RunStatus.SUCCESS}


def normalise_status(raw: str) -> RunStatus:
    """The :class:`RunStatus` of ``raw`` (``Canceled`` -> ``Cancelled``, ``Timed Out`` -> ``TimedOut``)."""
    compact = "".join(str(raw).split())
    status = _SPELLINGS.get(compact) or _BY_VALUE.get(compact)
    if status is None:
        raise UnknownStatus(f"unknown Run Command status {raw!r}")
    return status


def supersedes(
    new_status: RunStatus, new_time: str, old_status: RunStatus | None, old_time: str | None
) -> bool:
    """Whether a record at (``old_status``, ``old_time``) moves to (``new_status``, ``new_time``).

    Times are :func:`stamp` strings (they sort chronologically). The store applies the same rule
    as a DynamoDB condition; this function is its specification.
    """
    if old_status is None or old_time is None:
        return True
    if RANK[new_status] == TERMINAL_RANK:
        return RANK[old_status] < TERMINAL_RANK
    return RANK[old_status] <= RANK[new_status] and old_time < new_time


def stamp(moment: datetime) -> str:
    """``moment`` in UTC with microseconds, e.g. ``2019-04-25T17:57:09.170000Z``: fixed width, so
    string order is time order (SSM's own ``...09.17Z``/``...09.236Z`` are not)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def group_from_prefix(prefix: str) -> str | None:
    """The patch group slug in a TagPatch ``OutputS3KeyPrefix`` (its last segment), if any."""
    segments = [segment for segment in prefix.split("/") if segment]
    return segments[-1] if segments else None


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandContext:
    """What the collector knows about a command without asking SSM again."""

    command_id: str
    group: str | None = None
    output_bucket: str = ""
    output_prefix: str = ""

    def output_key_prefix(self, instance_id: str | None = None) -> str:
        """``<prefix>/<commandId>/[<instanceId>/]``: where Run Command writes the output."""
        parts = [self.output_prefix.strip("/"), self.command_id, instance_id or ""]
        return "/".join(part for part in parts if part) + "/"

    def output_uri(self, instance_id: str | None = None) -> str:
        if not self.output_bucket:
            return ""
        return f"s3://{self.output_bucket}/{self.output_key_prefix(instance_id)}"


@dataclass(frozen=True)
class InvocationRecord:
    """The (command, instance) item an Invocation notification writes; what the command's
    instances share (document, request time, output location) goes to the command item."""

    command_id: str
    instance_id: str
    status: RunStatus
    event_time: str
    group: str | None


@dataclass(frozen=True)
class CommandRecord:
    """The command item a Command notification writes."""

    command_id: str
    status: RunStatus
    event_time: str
    requested_at: str
    expires_after: str
    document_name: str
    context: CommandContext
    instance_ids: tuple[str, ...]


@dataclass
class CommandState:
    """The command item as the store returns it."""

    command_id: str
    group: str | None = None
    output_bucket: str = ""
    output_prefix: str = ""
    resolved: bool = False  # group lookup done (output_prefix stored, possibly empty)
    document_name: str = ""
    requested_at: str = ""
    status: RunStatus | None = None
    status_time: str | None = None
    instance_ids: frozenset[str] = frozenset()
    counts: dict[RunStatus, int] = field(default_factory=dict)
    failed: dict[RunStatus, frozenset[str]] = field(default_factory=dict)
    alerted: frozenset[str] = frozenset()
    untracked_failures: int = 0
    alert_count: int = 0
    last_alert_at: float | None = None
    flush_at: float | None = None
    command_alert_sent: bool = False
    command_alert_lease: float | None = None

    @property
    def context(self) -> CommandContext:
        return CommandContext(self.command_id, self.group, self.output_bucket, self.output_prefix)

    @property
    def failed_total(self) -> int:
        return sum(len(ids) for ids in self.failed.values()) + self.untracked_failures

    def unalerted(self) -> list[FailedInstance]:
        """Failures recorded on the command but not yet listed in any alert, in a stable order."""
        return sorted(
            FailedInstance(instance_id, status)
            for status, ids in self.failed.items()
            for instance_id in ids - self.alerted
        )


@dataclass(frozen=True, order=True)
class FailedInstance:
    instance_id: str
    status: RunStatus


@dataclass(frozen=True)
class WriteOutcome:
    """Result of a conditional record write: ``applied``, and the status stored before it
    (the replaced one when applied, the one that won when not)."""

    applied: bool
    previous: RunStatus | None


@dataclass(frozen=True)
class CommandWrite:
    applied: bool
    state: CommandState


@dataclass
class BatchMerge:
    """What one batch adds to a command item: status count changes and failed instances."""

    command_id: str
    document_name: str = ""
    requested_at: str = ""
    context: CommandContext | None = None  # set when the group was looked up and must be persisted
    deltas: Counter[RunStatus] = field(default_factory=Counter)
    failures: dict[RunStatus, set[str]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Ports (implemented in tagpatch.adapters)
# --------------------------------------------------------------------------------------------
class CommandStore(Protocol):
    def get_command(self, command_id: str, *, consistent: bool = False) -> CommandState | None: ...

    def record_invocation(self, record: InvocationRecord, *, expires_at: int) -> WriteOutcome: ...

    def record_command(
        self, record: CommandRecord, *, now: float, expires_at: int, lease_until: float | None
    ) -> CommandWrite: ...

    def merge_batch(self, merge: BatchMerge, *, now: float, expires_at: int) -> CommandState: ...

    def claim_alert(self, command_id: str, *, seen_count: int, now: float) -> bool: ...

    def claim_command_alert(self, command_id: str, *, now: float, lease_until: float) -> bool: ...

    def mark_alerted(self, command_id: str, instance_ids: Iterable[str], *, command_alert: bool) -> None: ...

    def set_flush(self, command_id: str, *, due: float) -> None: ...


class AlertSink(Protocol):
    def publish(self, alert: Alert) -> None: ...


class FlushScheduler(Protocol):
    def schedule(self, command_id: str, *, delay_seconds: int) -> None: ...


class CommandLookup(Protocol):
    def describe(self, command_id: str) -> CommandContext | None: ...


class GroupNameLookup(Protocol):
    def name_of(self, slug: str) -> str | None: ...


# --------------------------------------------------------------------------------------------
# Alert composition
# --------------------------------------------------------------------------------------------
SUBJECT_MAX = 99  # SNS: "less than 100 characters", no line breaks or control characters
MAX_LISTED = 25  # instances listed in one message; the rest are counted
MAX_FLUSH_DELAY = 900  # SQS DelaySeconds maximum


@dataclass(frozen=True)
class Alert:
    command_id: str
    subject: str
    message: str
    instance_ids: tuple[str, ...]  # the failures this message covers


@dataclass(frozen=True)
class AlertRequest:
    context: CommandContext
    region: str
    stack_name: str
    table_name: str
    document_name: str
    requested_at: str
    failures: tuple[FailedInstance, ...]
    failed_total: int
    succeeded: int = 0
    command_status: RunStatus | None = None  # a Command-level terminal failure
    command_instance_ids: tuple[str, ...] = ()
    alert_number: int = 0  # n of max_alerts; 0 for the Command-level summary
    max_alerts: int = 0
    cooldown_seconds: int = 0
    group_name: str | None = None  # the tag value, when it differs from the slug in ``context``


def run_command_console_url(region: str, command_id: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/systems-manager/run-command/"
        f"{quote(command_id, safe='')}?region={region}"
    )


def s3_console_url(region: str, bucket: str, key_prefix: str) -> str:
    return (
        f"https://s3.console.aws.amazon.com/s3/buckets/{quote(bucket, safe='')}"
        f"?region={region}&prefix={quote(key_prefix, safe='/')}&showversions=false"
    )


def _ascii(text: str) -> str:
    """``text`` as one line of printable ASCII (anything else becomes ``?``, runs of blanks one)."""
    return " ".join("".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text).split())


def alert_subject(stack_name: str, group: str | None, summary: str, command_id: str) -> str:
    """``TagPatch <stack>: <summary> in group <group> (command <8 chars>)``: ASCII, under 100
    characters; the group is shortened first, the stack name is cut at 24 characters."""
    stack = _ascii(stack_name)[:24].strip()
    head = f"TagPatch {stack}: {_ascii(summary)}" if stack else f"TagPatch: {_ascii(summary)}"
    tail = f" (command {_ascii(command_id[:8])})"
    where = f" in group {_ascii(group)}" if group and _ascii(group) else ""
    room = SUBJECT_MAX - len(head) - len(tail)
    if len(where) > room:
        where = where[: room - 3].rstrip() + "..." if room > len(" in group ...") else ""
    return (head + where + tail)[:SUBJECT_MAX]


def _readable(moment: str) -> str:
    """A :func:`stamp` as ``2025-06-15 03:00:00 UTC``."""
    return f"{moment[:10]} {moment[11:19]} UTC" if len(moment) >= 19 else moment


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def compose_alert(request: AlertRequest) -> Alert:
    """The e-mail for one command: what failed, where, and where to look."""
    ctx = request.context
    group = request.group_name or ctx.group
    listed = request.failures[:MAX_LISTED]
    if request.command_status is not None:
        summary = f"patch run {request.command_status.value}"
    else:
        statuses = {failure.status.value for failure in request.failures}
        verb = statuses.pop() if len(statuses) == 1 else "failed"
        summary = f"{_plural(len(request.failures), 'instance')} {verb}"
    subject = alert_subject(request.stack_name, group, summary, ctx.command_id)

    lines = [
        "TagPatch patch run " + ("result" if request.command_status else "failures"),
        "",
        f"Stack:         {request.stack_name} ({request.region})",
        f"Patch group:   {group or 'unknown (the command has no TagPatch output prefix)'}"
        + (f" (slug {ctx.group})" if group and ctx.group and group != ctx.group else ""),
        f"Command:       {ctx.command_id} ({request.document_name or 'unknown document'})",
    ]
    if request.requested_at:
        lines.append(f"Requested:     {_readable(request.requested_at)}")
    if request.command_status is not None:
        lines.append(f"Command status: {request.command_status.value}")
    lines.append(
        f"Failed so far: {_plural(request.failed_total, 'instance')}"
        + (f", {request.succeeded} succeeded" if request.succeeded else "")
    )
    lines.append("")
    if request.failures:
        lines.append(
            f"Failed instances not reported before ({len(request.failures)}"
            + (f", first {len(listed)} listed" if len(listed) < len(request.failures) else "")
            + "):"
        )
        for failure in listed:
            lines.append(f"  {failure.instance_id}  {failure.status.value}")
            if ctx.output_bucket:
                key = ctx.output_key_prefix(failure.instance_id)
                lines.append(f"    output: {s3_console_url(request.region, ctx.output_bucket, key)}")
        if len(listed) < len(request.failures):
            lines.append(f"  ... and {len(request.failures) - len(listed)} more (see below)")
        lines.append("")
    elif request.command_instance_ids:
        shown = request.command_instance_ids[:MAX_LISTED]
        lines.append(f"Targeted instances ({len(request.command_instance_ids)}): " + ", ".join(shown))
        if len(shown) < len(request.command_instance_ids):
            lines.append(f"  ... and {len(request.command_instance_ids) - len(shown)} more")
        lines.append("")
    lines += [
        "Where to look:",
        f"  Run Command console: {run_command_console_url(request.region, ctx.command_id)}",
    ]
    if ctx.output_bucket:
        command_output = s3_console_url(request.region, ctx.output_bucket, ctx.output_key_prefix())
        lines += [
            f"  Command output:      {ctx.output_uri()}",
            f"                       {command_output}",
        ]
    lines += [
        f"  Every instance's record: DynamoDB table {request.table_name}, key pk = CMD#{ctx.command_id}",
        "",
    ]
    if request.command_status is None and request.max_alerts:
        lines.append(
            f"This is alert {request.alert_number} of at most {request.max_alerts} for this command; "
            f"alerts are at least {request.cooldown_seconds // 60} minutes apart."
        )
        if request.alert_number >= request.max_alerts:
            lines.append(
                "No further alerts will be sent for this command: "
                "later failures are only recorded in the table."
            )
        else:
            lines.append("Failures that arrive meanwhile are summarised in the next alert.")
    return Alert(
        command_id=ctx.command_id,
        subject=subject,
        message="\n".join(lines) + "\n",
        instance_ids=tuple(failure.instance_id for failure in request.failures),
    )


class Gate(StrEnum):
    SEND = "send"
    HOLD = "hold"
    CAPPED = "capped"


def alert_gate(*, alert_count: int, last_alert_at: float | None, now: float, cooldown: int, cap: int) -> Gate:
    """Whether a command may alert now, must wait for its cooldown, or has used all its alerts."""
    if alert_count >= cap:
        return Gate.CAPPED
    if last_alert_at is not None and now - last_alert_at < cooldown:
        return Gate.HOLD
    return Gate.SEND


# --------------------------------------------------------------------------------------------
# The collector
# --------------------------------------------------------------------------------------------
COMMAND_ALERT_LEASE = 120  # seconds a claimed Command-level alert stays claimed if publishing dies


@dataclass
class _CommandEntry:
    command_id: str
    message_ids: list[str] = field(default_factory=list)
    merge: BatchMerge | None = None
    state: CommandState | None = None  # the item as a Command notification left it
    command_alert: tuple[RunStatus, tuple[str, ...]] | None = None
    flush: bool = False


@dataclass
class BatchReport:
    failed_message_ids: list[str] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)


class StatusCollector:
    """Records notifications and sends bounded alerts; one :class:`CollectorBatch` per SQS batch."""

    def __init__(
        self,
        config: CollectorConfig,
        store: CommandStore,
        alerts: AlertSink,
        flushes: FlushScheduler,
        lookup: CommandLookup,
        *,
        names: GroupNameLookup | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.alerts = alerts
        self.flushes = flushes
        self.lookup = lookup
        self.names = names
        self.clock = clock
        self._contexts: dict[str, CommandContext] = {}  # per container: command id -> context
        self.unpersisted: set[str] = set()  # looked up in SSM, not yet saved on the command item

    def start_batch(self) -> CollectorBatch:
        return CollectorBatch(self)

    def expires_at(self, now: float) -> int:
        return int(now) + self.config.history_days * 86_400

    def context_for(self, command_id: str) -> CommandContext:
        """The command's context: from this container's cache, else the command item, else SSM
        (then it is in :attr:`unpersisted` until a batch saves it on the command item)."""
        cached = self._contexts.get(command_id)
        if cached is not None:
            return cached
        state = self.store.get_command(command_id)
        if state is not None and state.resolved:
            self._contexts[command_id] = state.context
            return state.context
        found = self.lookup.describe(command_id)
        logger.info(
            "command looked up", extra={"commandId": command_id, "group": found.group if found else None}
        )
        # An unknown command (older than ListCommands' 30 days, or not ours) is not persisted, so
        # another container may still find it; this container asks once.
        self._contexts[command_id] = found or CommandContext(command_id)
        if found is not None:
            self.unpersisted.add(command_id)
        return found or CommandContext(command_id)

    def remember(self, context: CommandContext) -> None:
        self._contexts[context.command_id] = context

    def group_name(self, slug: str | None) -> str | None:
        """The tag value behind a group slug, for an alert; None when unknown (the slug is shown)."""
        if not slug or self.names is None:
            return None
        name = self.names.name_of(slug)
        return name if name != slug else None


class CollectorBatch:
    """One SQS batch: records are written as they come (``add_*``), alerts are decided at the end
    (:meth:`finish`) so that a command gets at most one message per batch."""

    def __init__(self, collector: StatusCollector) -> None:
        self.c = collector
        self.now = collector.clock()
        self.entries: dict[str, _CommandEntry] = {}
        self.report = BatchReport()

    def _entry(self, command_id: str) -> _CommandEntry:
        return self.entries.setdefault(command_id, _CommandEntry(command_id))

    # -- per record ------------------------------------------------------------------------
    def add_invocation(self, message_id: str, notification: InvocationNotification) -> None:
        command_id = notification.command_id
        context = self.c.context_for(command_id)
        record = InvocationRecord(
            command_id=command_id,
            instance_id=notification.instance_id,
            status=notification.status,
            event_time=stamp(notification.event_time),
            group=context.group,
        )
        outcome = self.c.store.record_invocation(record, expires_at=self.c.expires_at(self.now))
        entry = self._entry(command_id)
        entry.message_ids.append(message_id)
        merge = entry.merge or BatchMerge(
            command_id, notification.document_name, stamp(notification.requested_date_time)
        )
        entry.merge = merge
        if command_id in self.c.unpersisted:
            merge.context = context
        if outcome.applied:
            self.report.counters["InvocationsRecorded"] += 1
            merge.deltas[record.status] += 1
            if outcome.previous is not None:
                merge.deltas[outcome.previous] -= 1
        else:
            self.report.counters["InvocationsUnchanged"] += 1
        # A duplicate of a recorded failure stays a candidate: the command item knows whether it
        # was alerted already (a crash between the two writes must not lose the alert).
        if record.status in ALERTING and (outcome.applied or outcome.previous == record.status):
            merge.failures.setdefault(record.status, set()).add(record.instance_id)

    def add_command(self, message_id: str, notification: CommandNotification) -> None:
        command_id = notification.command_id
        prefix = notification.output_s3_key_prefix
        context = CommandContext(
            command_id, group_from_prefix(prefix), notification.output_s3_bucket_name, prefix
        )
        self.c.remember(context)
        record = CommandRecord(
            command_id=command_id,
            status=notification.status,
            event_time=stamp(notification.event_time),
            requested_at=stamp(notification.requested_date_time),
            expires_after=stamp(notification.expires_after),
            document_name=notification.document_name,
            context=context,
            instance_ids=tuple(notification.instance_ids),
        )
        alerting = record.status in ALERTING
        lease_until = self.now + COMMAND_ALERT_LEASE
        write = self.c.store.record_command(
            record,
            now=self.now,
            expires_at=self.c.expires_at(self.now),
            lease_until=lease_until if alerting else None,
        )
        entry = self._entry(command_id)
        entry.message_ids.append(message_id)
        entry.state = write.state
        self.report.counters["CommandsRecorded" if write.applied else "CommandsUnchanged"] += 1
        if not alerting:
            return
        claimed = write.applied or (
            write.state.status == record.status
            and not write.state.command_alert_sent
            and self.c.store.claim_command_alert(command_id, now=self.now, lease_until=lease_until)
        )
        if claimed:
            entry.command_alert = (record.status, record.instance_ids)

    def add_flush(self, message_id: str, flush: AlertFlush) -> None:
        entry = self._entry(flush.command_id)
        entry.message_ids.append(message_id)
        entry.flush = True

    # -- per batch -------------------------------------------------------------------------
    def finish(self) -> BatchReport:
        for entry in self.entries.values():
            try:
                self._finish_command(entry)
            except Exception:
                # Its records were written; redelivery repeats them as no-ops and retries this step.
                logger.exception(
                    "command step failed; its messages will be retried",
                    extra={"commandId": entry.command_id},
                )
                self.report.failed_message_ids.extend(entry.message_ids)
                self.report.counters["CommandStepsFailed"] += 1
        return self.report

    def _finish_command(self, entry: _CommandEntry) -> None:
        store = self.c.store
        state = entry.state
        merge = entry.merge
        if merge is not None and (merge.context is not None or merge.failures or any(merge.deltas.values())):
            state = store.merge_batch(merge, now=self.now, expires_at=self.c.expires_at(self.now))
            self.c.unpersisted.discard(entry.command_id)
        if state is None and entry.flush:
            state = store.get_command(entry.command_id, consistent=True)
        if state is None:
            return
        if state.context.group is not None or state.resolved:
            self.c.remember(state.context)
        held = state.unalerted()
        if entry.command_alert is not None:
            status, instance_ids = entry.command_alert
            self._publish(state, held, command_status=status, instance_ids=instance_ids)
            store.mark_alerted(entry.command_id, [f.instance_id for f in held], command_alert=True)
            self.report.counters["CommandAlertsPublished"] += 1
            return
        if not held:
            return
        config = self.c.config
        gate = alert_gate(
            alert_count=state.alert_count,
            last_alert_at=state.last_alert_at,
            now=self.now,
            cooldown=config.alert_cooldown_seconds,
            cap=config.max_alerts_per_command,
        )
        if gate is Gate.CAPPED:
            self.report.counters["AlertsCapped"] += 1
            logger.info(
                "alert cap reached; failures only recorded",
                extra={"commandId": entry.command_id, "failures": len(held)},
            )
            return
        claimed = gate is Gate.SEND and store.claim_alert(
            entry.command_id, seen_count=state.alert_count, now=self.now
        )
        if claimed:
            self._publish(state, held, alert_number=state.alert_count + 1)
            store.mark_alerted(entry.command_id, [f.instance_id for f in held], command_alert=False)
            self.report.counters["AlertsPublished"] += 1
            return
        # Cooldown (or another batch claimed the alert just now): hold, and make sure one delayed
        # flush will turn the held failures into a digest when the cooldown ends.
        self.report.counters["AlertsHeld"] += 1
        # One flush is enough while it is due; a flush that itself arrived early schedules the next.
        if not entry.flush and state.flush_at is not None and state.flush_at > self.now:
            return
        last = state.last_alert_at if state.last_alert_at is not None else self.now
        delay = min(MAX_FLUSH_DELAY, max(1, math.ceil(last + config.alert_cooldown_seconds - self.now)))
        self.c.flushes.schedule(entry.command_id, delay_seconds=delay)
        store.set_flush(entry.command_id, due=self.now + delay)
        self.report.counters["FlushesScheduled"] += 1

    def _publish(
        self,
        state: CommandState,
        held: list[FailedInstance],
        *,
        alert_number: int = 0,
        command_status: RunStatus | None = None,
        instance_ids: tuple[str, ...] = (),
    ) -> None:
        config = self.c.config
        alert = compose_alert(
            AlertRequest(
                context=state.context,
                region=config.region,
                stack_name=config.stack_name,
                table_name=config.table_name,
                document_name=state.document_name,
                requested_at=state.requested_at,
                failures=tuple(held),
                failed_total=state.failed_total,
                succeeded=state.counts.get(RunStatus.SUCCESS, 0),
                command_status=command_status,
                command_instance_ids=instance_ids,
                alert_number=alert_number,
                max_alerts=config.max_alerts_per_command,
                cooldown_seconds=config.alert_cooldown_seconds,
                group_name=self.c.group_name(state.context.group),
            )
        )
        self.c.alerts.publish(alert)
        logger.info(
            "alert published",
            extra={"commandId": state.command_id, "subject": alert.subject, "instances": len(held)},
        )
