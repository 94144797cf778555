"""Run Command status collection: notifications become per-instance records and bounded alerts.

Every SSM Run Command status notification that the maintenance windows publish ends here, one
SQS batch at a time. This module is the domain of that flow; it calls AWS only through the ports
it is given (``CommandStore``, ``AlertSink``, ``FlushScheduler``, ``CommandLookup``).

Statuses
    Records move only forward (:mod:`tagpatch.models.run_status`): a late ``InProgress`` never
    overwrites ``Success`` and a duplicate changes nothing.

Group
    A command's patch group is the last segment of its ``OutputS3KeyPrefix`` (the reconciler sets
    ``<outputPrefix>/<slug>``). Command notifications carry the prefix; Invocation notifications
    do not, so the group of a command is looked up once (the command item, else ListCommands),
    cached per container and persisted on the command item.

Alerts (storm control; composition and the gate are :mod:`tagpatch.collector.alerts`)
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

Run Result (member event; only with an enabled ``events`` port)
    One "Run Result" per command that ended, published before the command's alert, with the
    instance counts as the command item holds them then:

    * Invocation notifications (the stack's default): when a batch leaves a command whose recorded
      invocations are all terminal and whose Run Result is not sent, one ``CommandLookup.progress``
      (ListCommands) asks SSM: a terminal status whose targets (or completed invocations) the
      recorded terminal invocations cover publishes, with SSM's status. Otherwise (SSM lags, or
      notifications are on their way) a delayed flush with ``check: "run-result"`` asks again in
      :data:`RESULT_CHECK_DELAY` s, one due at a time, at most :data:`MAX_RESULT_CHECKS` times;
      then what is recorded makes it (:func:`recorded_status`), logged. No lookup while an
      invocation runs, at most one per command per batch, none once the Run Result is sent.
    * Command notifications: a terminal status on the command item publishes, with that status.

    Exactly once: :meth:`CommandStore.claim_run_result` claims it on the command item (a marker and
    a :data:`RUN_RESULT_LEASE` lease), the publish follows, :meth:`CommandStore.commit_run_result`
    marks it sent. Duplicates, two concurrent batches and both notification types end in one
    event; a redelivered terminal notification re-reads the item, so a container that died after
    its claim leaves a lapsing lease and the redelivery publishes (possibly a repeat, logged). The
    sink never raises (best effort).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tagpatch.collector.alerts import MAX_FLUSH_DELAY, AlertRequest, Gate, alert_gate, compose_alert
from tagpatch.models.member_events import run_result_event
from tagpatch.models.records import (
    BatchMerge,
    CommandContext,
    CommandProgress,
    CommandRecord,
    CommandState,
    FailedInstance,
    InvocationRecord,
    group_from_prefix,
)
from tagpatch.models.run_status import ALERTING, TERMINAL, RunStatus, stamp
from tagpatch.observability import logger

if TYPE_CHECKING:
    from tagpatch.collector.config import CollectorConfig
    from tagpatch.collector.ports import (
        AlertSink,
        CommandLookup,
        CommandStore,
        FlushScheduler,
        GroupNameLookup,
    )
    from tagpatch.models.member_events import EventSink
    from tagpatch.models.notifications import (
        AlertFlush,
        CommandNotification,
        InvocationNotification,
    )


# Seconds a claimed alert stays claimed if its claimant dies between claim and record: more than
# the function's 60 s timeout (template.yaml), so a live claimant is never overtaken, and less than
# the status queue's 360 s visibility timeout, so the redelivery of a dead claimant's messages
# finds the lease lapsed and sends the alert.
ALERT_LEASE = 120
COMMAND_ALERT_LEASE = ALERT_LEASE
RUN_RESULT_LEASE = ALERT_LEASE
# When SSM does not confirm yet that a command whose recorded invocations all ended has ended (its
# status lags, or notifications are still on their way), a delayed flush asks again: this many
# times at most, this many seconds apart; then the Run Result is made of what is recorded.
RESULT_CHECK_DELAY = 60
MAX_RESULT_CHECKS = 5


@dataclass
class _CommandEntry:
    command_id: str
    message_ids: list[str] = field(default_factory=list)
    merge: BatchMerge | None = None
    state: CommandState | None = None  # the item as a Command notification left it
    command_alert: tuple[RunStatus, tuple[str, ...]] | None = None
    command_alert_lease: float = 0.0
    command_alert_repeat: bool = False
    flush: bool = False
    ended: bool = False  # a Command notification found the command terminal: its Run Result is due
    result_check: bool = False  # a delayed re-check of the command's end arrived
    recheck: bool = False  # a terminal invocation came again: a Run Result may be left to publish


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
        events: EventSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.alerts = alerts
        self.flushes = flushes
        self.lookup = lookup
        self.names = names
        self.events = events
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
        # A redelivered terminal invocation changes nothing, but its first delivery may have died
        # before the command's Run Result was published: the command item says.
        if record.status in TERMINAL and not outcome.applied and outcome.previous == record.status:
            entry.recheck = True

    def add_command(self, message_id: str, notification: CommandNotification) -> None:
        command_id = notification.command_id
        prefix = notification.output_s3_key_prefix
        context = CommandContext(
            command_id, group_from_prefix(prefix), notification.output_s3_bucket_name, prefix
        )
        if context.group is not None:
            self.c.remember(context)
        else:
            # No group in the notification: AWS's sample of a tag-targeted command carries
            # ``"outputS3KeyPrefix": ""`` (and an empty bucket). That is not an answer: look the
            # command up as for an Invocation (this container's cache, the command item, else
            # ListCommands) rather than caching "no group" for it.
            context = self.c.context_for(command_id)
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
        if context.output_prefix:
            self.c.unpersisted.discard(command_id)  # the write saved the looked-up location
        entry = self._entry(command_id)
        entry.message_ids.append(message_id)
        entry.state = write.state
        self.report.counters["CommandsRecorded" if write.applied else "CommandsUnchanged"] += 1
        # Applied, or a duplicate of a terminal status whose Run Result is not recorded as sent (the
        # claim on the command item keeps it to one event, whichever path gets there first).
        if record.status in TERMINAL and write.state.status in TERMINAL and not write.state.run_result_sent:
            entry.ended = True
        if not alerting:
            return
        claim = None
        if not write.applied and write.state.status == record.status and not write.state.command_alert_sent:
            claim = self.c.store.claim_command_alert(command_id, now=self.now, lease_until=lease_until)
        if write.applied or claim is not None:
            entry.command_alert = (record.status, record.instance_ids)
            entry.command_alert_lease = lease_until
            entry.command_alert_repeat = claim is not None and claim.lapsed

    def add_flush(self, message_id: str, flush: AlertFlush) -> None:
        entry = self._entry(flush.command_id)
        entry.message_ids.append(message_id)
        if flush.check == "run-result":
            entry.result_check = True
        else:
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
        if state is None and (entry.flush or entry.result_check or (entry.recheck and self._results_on())):
            state = store.get_command(entry.command_id, consistent=True)
        if state is None:
            return
        if state.context.group is not None or state.resolved:
            self.c.remember(state.context)
        self._run_result(entry, state)
        held = state.unalerted()
        if entry.command_alert is not None:
            status, instance_ids = entry.command_alert
            lease = entry.command_alert_lease
            self._publish(
                state,
                held,
                command_status=status,
                instance_ids=instance_ids,
                repeat=entry.command_alert_repeat,
                release=lambda: store.release_command_alert(entry.command_id, lease_until=lease),
            )
            store.commit_command_alert(entry.command_id, [f.instance_id for f in held])
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
        lease = self.now + ALERT_LEASE
        claim = None
        if gate is Gate.SEND:
            claim = store.claim_alert(
                entry.command_id, seen_count=state.alert_count, now=self.now, lease_until=lease
            )
        if claim is not None:
            # The slot counts only once the publish succeeded (commit_alert); a failed publish
            # gives the lease back and fails the messages, so their redelivery tries again.
            self._publish(
                state,
                held,
                alert_number=state.alert_count + 1,
                repeat=claim.lapsed,
                release=lambda: store.release_alert(entry.command_id, lease_until=lease),
            )
            store.commit_alert(entry.command_id, [f.instance_id for f in held], now=self.now)
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

    # -- Run Result ------------------------------------------------------------------------
    def _results_on(self) -> bool:
        sink = self.c.events
        return sink is not None and sink.enabled

    def _run_result(self, entry: _CommandEntry, state: CommandState) -> None:
        """Publish the command's Run Result if it has ended (see the module docstring); at most one
        ListCommands call, only when every recorded invocation of the command is terminal."""
        if not self._results_on() or state.run_result_sent:
            return
        if entry.ended:  # a Command notification: its terminal status is the command's
            entry.ended = False
            if state.status is not None:
                self._claim_result(state, state.status)
            return
        if not state.invocations_ended:
            return
        command_id = entry.command_id
        self.report.counters["CommandStatusLookups"] += 1
        unavailable = False
        progress: CommandProgress | None = None
        try:
            progress = self.c.lookup.progress(command_id)
        except Exception:
            logger.exception(
                "command status not looked up; checked again later", extra={"commandId": command_id}
            )
            unavailable = True
        if progress is not None and progress.ended and progress.covered_by(state.ended_count):
            self._claim_result(state, progress.status)
            return
        if progress is None and not unavailable:
            # SSM does not know the command (past ListCommands' 30 days): the record is all there is.
            self._claim_result(state, recorded_status(state))
            return
        if state.result_checks < MAX_RESULT_CHECKS:
            # One re-check at a time: a re-check that arrives schedules the next (another is sent
            # only if the due one is overdue by a whole delay, as if lost).
            due = state.result_check_at
            if entry.result_check or due is None or due + RESULT_CHECK_DELAY <= self.now:
                self.c.flushes.schedule(command_id, delay_seconds=RESULT_CHECK_DELAY, run_result=True)
                self.c.store.set_result_check(command_id, due=self.now + RESULT_CHECK_DELAY)
                self.report.counters["RunResultChecksScheduled"] += 1
            return
        if progress is not None and not progress.ended and state.ended_count < progress.target_count:
            # Still running with targets to go (a rate-controlled command between waves): their
            # notifications check again.
            return
        status = progress.status if progress is not None and progress.ended else recorded_status(state)
        logger.warning(
            "command end not confirmed by SSM; Run Result made of the recorded invocations",
            extra={
                "commandId": command_id,
                "checks": state.result_checks,
                "ssmStatus": progress.status.value if progress is not None else None,
                "targets": progress.target_count if progress is not None else None,
                "recorded": state.ended_count,
            },
        )
        self.report.counters["RunResultsUnconfirmed"] += 1
        self._claim_result(state, status)

    def _claim_result(self, state: CommandState, status: RunStatus) -> None:
        """Claim the command's Run Result on its item, publish it, record it sent. Another batch's
        (or the other notification type's) claim makes this a no-op; a claimant that died leaves
        a lease that lapses, and the redelivery publishes."""
        store = self.c.store
        claim = store.claim_run_result(
            state.command_id, now=self.now, lease_until=self.now + RUN_RESULT_LEASE
        )
        if claim is None:
            self.report.counters["RunResultsAlreadyClaimed"] += 1
            return
        if claim.lapsed:
            logger.warning("run result claim lapsed; it may repeat", extra={"commandId": state.command_id})
        self._publish_result(state, status)
        store.commit_run_result(state.command_id)

    def _publish_result(self, state: CommandState, status: RunStatus) -> None:
        """The command's "Run Result" member event; best effort (logged, counted, never raised)."""
        sink = self.c.events
        if sink is None or not sink.enabled:
            return
        try:
            slug = state.context.group
            group = self.c.group_name(slug) or slug or "unknown"
            detail = run_result_event(
                sink.origin,
                group,
                command_id=state.command_id,
                status=status.value,
                instances={status.value: count for status, count in state.counts.items()},
                failed=state.failed_total,
            )
        except Exception:
            logger.exception("run result event not built", extra={"commandId": state.command_id})
            self.report.counters["MemberEventsFailed"] += 1
            return
        sink.publish([detail])
        self.report.counters["RunResultsPublished"] += 1

    def _publish(
        self,
        state: CommandState,
        held: list[FailedInstance],
        *,
        alert_number: int = 0,
        command_status: RunStatus | None = None,
        instance_ids: tuple[str, ...] = (),
        repeat: bool = False,
        release: Callable[[], None],
    ) -> None:
        """Publish the alert; when the publish fails, count it (``AlertPublishFailures``, which the
        stack alarms on), give the claim back with ``release`` and raise, so that the messages
        are retried and the slot stays unused. A crash between a publish SNS accepted and the
        record of it is the one window left: the redelivery, after the lease, sends it again,
        marked as a possible repeat (an SNS standard topic cannot de-duplicate)."""
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
                possible_repeat=repeat,
            )
        )
        try:
            self.c.alerts.publish(alert)
        except Exception:
            self.report.counters["AlertPublishFailures"] += 1
            logger.exception(
                "alert publish failed; its slot stays unused and its messages are retried",
                extra={"commandId": state.command_id, "instances": len(held)},
            )
            try:
                release()
            except Exception:  # the lease then lapses on its own
                logger.exception("alert claim not released", extra={"commandId": state.command_id})
            raise
        logger.info(
            "alert published",
            extra={"commandId": state.command_id, "subject": alert.subject, "instances": len(held)},
        )


def recorded_status(state: CommandState) -> RunStatus:
    """The command status its recorded terminal invocations add up to, as Run Command's own: Success
    when all succeeded, else Failed when any failed, else the first other terminal status."""
    ended = {status for status, count in state.counts.items() if status in TERMINAL and count > 0}
    if ended <= {RunStatus.SUCCESS}:
        return RunStatus.SUCCESS
    if RunStatus.FAILED in ended:
        return RunStatus.FAILED
    return sorted(ended - {RunStatus.SUCCESS})[0]
