"""Compliance reporter: one snapshot of every patch group's compliance, its history and a digest.

A run for every group (the daily schedule, or the on-demand request ``{}``) fans out through the
report queue (ReportQueue, SQS) when the stack has one (it always has; ``REPORT_QUEUE_URL``):

1. **plan** (:meth:`ComplianceReporter.plan`): list the groups - those in the groups table (the
   stack manages them) plus every patch group registered with a baseline (``DescribePatchGroups``),
   each once - and batch them by size (:mod:`tagpatch.reporter.fanout`); store the plan (one item
   per batch: its message), then create the **run record** (run id = snapshot id; the number of
   batches and groups; a deadline, ``COMPLIANCE_DEADLINE_MINUTES`` after planning) with a
   conditional PutItem; send one :class:`~tagpatch.models.reporter_events.ReportBatch` per batch
   and one :class:`~tagpatch.models.reporter_events.RunDeadline`, delayed;
2. **work** (:meth:`ComplianceReporter.work`, one message per invocation): snapshot the batch's
   groups exactly as a run in the invocation does (below), store what the batch recorded (one item:
   each group's outcome and totals, the batch's worst instances), then add the batch to the run
   record's done batches (UpdateItem ``ADD``: a redelivery adds nothing new). A group that failed is
   retried by sending the batch again, delayed (``attempt`` + 1, at most :data:`MAX_ATTEMPTS`);
   on the last attempt it is recorded as failed and the batch counts as done;
3. **one digest**: the worker whose update completes the run (every batch done) claims the digest
   (``claim_digest``, a conditional write: two simultaneous completions send one), reads the run's
   ledger back (one Query: the plan and every batch's report) and publishes the digest from it;
4. **deadline** (:meth:`ComplianceReporter.check_deadline`): the delayed deadline message (SQS
   delays at most 15 minutes: it is re-sent until due) finds the run incomplete, sends the digest
   anyway, naming the groups still missing (``ComplianceGroupsMissing`` metric and alarm), or
   sends it for a run that completed but whose digest was not sent (its worker died after marking).

Why a delayed message and not a schedule: the deadline travels with the run on the same queue,
DLQ and role, needs no other resource, and is sent again with the plan if the planner's event
is redelivered; the claim makes a deadline and a completion that meet send one digest.

Per group, as a run in the invocation (``{"group": "<name>"}``, or a stack without the queue):

1. read each group's ``LATEST`` entry and the run's record (one BatchGetItem per 100 groups);
2. ``DescribePatchGroupState``, every page of ``DescribeInstancePatchStatesForPatchGroup`` and -
   only when the previous snapshot had non-compliant instances - the previous snapshot's instance
   rows (one Query), then build the snapshot (:mod:`tagpatch.reporter.compliance`) and queue its
   items on the shared writer (BatchWriteItem of 25, filled across the groups of the invocation);
3. in the invocation: publish one digest and record the run.

Idempotency: the snapshot id is the scheduled event's ``time``, so a redelivered event names
the same snapshot and writes the same keys. A group whose ``LATEST`` already names this snapshot
is complete (``LATEST`` is written last) and is skipped: the same event (or message) twice makes
one snapshot. In the invocation, the digest is not sent again when the run record shows it was
sent and nothing new was recorded; a fanned-out run's digest goes out once. A late delivery of an
*older* event (``LATEST`` is newer) still records its snapshot, checks its existence with one
Query, and leaves ``LATEST`` alone.

Failures: a group whose reads or writes fail (after botocore's standard-mode retries of
throttling and 5xx) is reported in the result, the digest and the ``ComplianceGroupsFailed``
metric, and the other groups still snapshot. An invocation fails (its event or message is retried,
then dead-lettered) only when the group listing, a ``LATEST`` read, the run record, the queue or
the digest fails.

Scale: per group 1 + ceil(n/100) SSM reads and at most 1 Query. 10,000 instances in 100 uneven
groups (140 pages) measure 242 SSM reads and 408 BatchWriteItem calls in one invocation, both the
floor (``benchmarks/reporter_calls.py``); 100,000 instances in 1,000 groups fan out into batches
of at most 20 groups / 2,000 instances (``benchmarks/reporter_scale.py``), taken by at most two
workers at a time (the event source's MaximumConcurrency, template.yaml). A run in the invocation
stops *starting* groups when less than :data:`RESERVE_MS` of it is left and reports them as not
started (a worker's batch retries them).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tagpatch.models.reporter_events import QueuedGroup, ReportBatch, RunDeadline, parse_report_message
from tagpatch.observability import logger
from tagpatch.reporter.compliance import (
    Digest,
    GroupOutcome,
    GroupTotals,
    InstanceRow,
    Since,
    build_snapshot,
    is_valid_patch_group,
    iso,
    parse_iso,
    render_digest,
    snapshot_id_for,
    worst_instances,
)
from tagpatch.reporter.config import ReporterConfig
from tagpatch.reporter.fanout import assemble, plan_batches

if TYPE_CHECKING:
    from tagpatch.reporter.ports import (
        ComplianceStore,
        DigestSink,
        GroupDirectory,
        PatchStates,
        ReportQueue,
        SnapshotWriter,
    )

RESERVE_MS = 60_000
# Seconds a claimed digest stays claimed: a live claimant publishes and records within seconds;
# a dead one's event is retried by Lambda no sooner than a minute later, when the claim has lapsed
# (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
DIGEST_LEASE = 60
ERROR_MAX_LENGTH = 400
RUN_RECORD_FAILURES = 100
SECONDS_PER_DAY = 86_400
# A batch whose groups failed is sent again after RETRY_DELAY_SECONDS x its attempt (1, then 2
# minutes: past a throttling burst), at most MAX_ATTEMPTS times in all; then its failures are final.
MAX_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 60
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds
INVALID_NAME = "not a valid SSM patch group name (1-256 letters, digits, spaces, _.:/=+-@)"


class UnknownRun(LookupError):
    """A report-queue message names a run that has no run record (expired, or never planned)."""


@dataclass(frozen=True)
class ReportRequest:
    snapshot_time: datetime
    source: str = "scheduled"  # scheduled | on-demand
    group: str | None = None


@dataclass
class RunResult:
    snapshot_id: str
    source: str
    outcomes: list[GroupOutcome] = field(default_factory=list)
    digest: Digest | None = None
    message_id: str | None = None
    #: a worker's batch: its failed groups are retried by a later message (not final failures)
    retrying: bool = False
    #: the digest went out at the run's deadline, these groups missing
    missing: list[str] | None = None

    @property
    def ok(self) -> bool:
        return all(outcome.status != "failed" for outcome in self.outcomes)

    def with_status(self, status: str) -> list[GroupOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]


@dataclass
class PlanResult:
    """What a planner did: the batches it sent and, for a run with nothing to queue, its digest."""

    snapshot_id: str
    source: str
    groups: int = 0
    batches: int = 0
    sent: int = 0
    refused: list[str] = field(default_factory=list)
    deadline: str = ""
    replanned: bool = False  # the run was planned before (a redelivered event): its plan is resent
    digest_sent: bool = False  # the run's digest was already out: nothing sent
    finished: RunResult | None = None
    #: the managed groups (the groups table) per reconciler status, as this plan listed them; None
    #: when it listed none (a redelivered event finds the run planned)
    group_statuses: dict[str, int] | None = None


@dataclass(frozen=True)
class _Run:
    snapshot_id: str
    snapshot_time: datetime
    source: str
    expires_at: int
    writer: SnapshotWriter


@dataclass(frozen=True)
class _Pending:
    """A group whose snapshot is built and queued for writing."""

    totals: GroupTotals
    worst: list[tuple[str, InstanceRow]]


def _describe(error: Exception) -> str:
    text = f"{type(error).__name__}: {error}" if not str(error).startswith("An error") else str(error)
    return text[:ERROR_MAX_LENGTH]


def _complete(record: dict[str, Any]) -> bool:
    return len(record.get("done_batches") or ()) >= int(record.get("batches", 0))


def _sent(record: dict[str, Any] | None) -> bool:
    return record is not None and record.get("digest_message_id") is not None


class ComplianceReporter:
    def __init__(
        self,
        config: ReporterConfig,
        patch_states: PatchStates,
        store: ComplianceStore,
        groups: GroupDirectory,
        topic: DigestSink,
        *,
        queue: ReportQueue | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._ssm = patch_states
        self._store = store
        self._groups = groups
        self._topic = topic
        self._queue = queue
        self._clock = clock

    @property
    def fans_out(self) -> bool:
        """Whether a run for every group goes through the report queue."""
        return self._queue is not None

    def _expires_at(self, snapshot_time: datetime) -> int:
        return int(snapshot_time.timestamp()) + self.config.history_days * SECONDS_PER_DAY

    # -----------------------------------------------------------------------------------------
    # A run in the invocation
    # -----------------------------------------------------------------------------------------
    def run(self, request: ReportRequest, remaining_ms: Callable[[], int] | None = None) -> RunResult:
        snapshot_id = snapshot_id_for(request.snapshot_time)
        snapshot_time = parse_iso(snapshot_id)
        expires_at = self._expires_at(snapshot_time)
        result = RunResult(snapshot_id=snapshot_id, source=request.source)

        names, managed, baselines, _, _ = self._list_groups(request.group)
        valid = [name for name in names if is_valid_patch_group(name)]
        latest, run_record = self._store.latest(valid, snapshot_id)
        run = _Run(snapshot_id, snapshot_time, request.source, expires_at, self._store.writer())
        result.outcomes, worst = self._snapshot_groups(
            names, run, latest, managed=managed, baselines=baselines, remaining_ms=remaining_ms
        )

        if _sent(run_record) and not result.with_status("recorded"):
            logger.info("snapshot already recorded and its digest sent", extra={"snapshot": snapshot_id})
            return result
        worst += self._recorded_worst(result.with_status("already-recorded"), snapshot_id)
        result.digest = render_digest(
            snapshot_id,
            snapshot_time,
            request.source,
            result.outcomes,
            worst_instances(worst),
            tag_key=self.config.tag_key,
        )
        # One digest per run even when the event is delivered twice at once: the delivery that
        # wins the conditional claim of the run record sends it; the other stops here.
        now = self._clock().timestamp()
        if not self._store.claim_digest(
            snapshot_id, run_record, now=now, lease_until=now + DIGEST_LEASE, expires_at=expires_at
        ):
            logger.info(
                "digest claimed by another delivery of this run; not sent again",
                extra={"snapshot": snapshot_id},
            )
            return result
        result.message_id = self._publish(snapshot_id, result.digest)
        self._store.record_run(snapshot_id, self._run_attributes(result), expires_at)
        return result

    def _publish(self, snapshot_id: str, digest: Digest) -> str:
        """Publish the claimed digest; after a failed publish the claim is dropped, so a retry may
        send it at once (if dropping it fails too, the claim lapses)."""
        try:
            return self._topic.publish(digest.subject, digest.body)
        except Exception:
            try:
                self._store.release_digest(snapshot_id)
            except Exception:
                logger.exception("digest claim not released; it lapses", extra={"snapshot": snapshot_id})
            raise

    # -----------------------------------------------------------------------------------------
    # A fanned-out run: plan, work, deadline
    # -----------------------------------------------------------------------------------------
    def plan(self, request: ReportRequest) -> PlanResult:
        """Plan a run for every group and queue it (module docstring, step 1). A redelivered event
        finds the run record: the batches not done yet are sent again, as planned."""
        queue = self._require_queue()
        snapshot_id = snapshot_id_for(request.snapshot_time)
        expires_at = self._expires_at(parse_iso(snapshot_id))
        result = PlanResult(snapshot_id=snapshot_id, source=request.source)
        record = self._store.run_record(snapshot_id)
        if record is None:
            names, managed, baselines, sizes, result.group_statuses = self._list_groups(None)
            valid = [name for name in names if is_valid_patch_group(name)]
            result.refused = [name for name in names if name not in valid]
            bodies = [
                ReportBatch(
                    snapshot_id=snapshot_id,
                    source=request.source,
                    batch=index,
                    groups=[
                        QueuedGroup(name=group, managed=group in managed, baselines=baselines.get(group, []))
                        for group in batch
                    ],
                ).body()
                for index, batch in enumerate(plan_batches(valid, sizes))
            ]
            deadline = self._clock() + timedelta(minutes=self.config.deadline_minutes)
            attributes: dict[str, Any] = {
                "source": request.source,
                "planned_at": iso(self._clock()),
                "deadline": iso(deadline),
                "batches": len(bodies),
                "groups": len(valid),
                "refused": result.refused or None,
            }
            # The plan first: a planner that dies before the run record leaves a plan that the
            # redelivered event writes again (identical for the same groups) before creating it.
            self._store.write_plan(snapshot_id, bodies, expires_at)
            if self._store.create_run(snapshot_id, attributes, expires_at):
                record = {**attributes, "snapshot_id": snapshot_id}
                plan = dict(enumerate(bodies))
            else:
                record = self._store.run_record(snapshot_id)
                if record is None:  # pragma: no cover - created by another delivery a moment ago
                    raise UnknownRun(f"run {snapshot_id} was created by another delivery but cannot be read")
                result.replanned = True
                plan = self._store.run_ledger(snapshot_id).plan
        else:
            if "batches" not in record:  # e.g. a run in one invocation of the same snapshot id
                raise UnknownRun(f"run {snapshot_id} exists but was not planned for the report queue")
            result.replanned = True
            plan = self._store.run_ledger(snapshot_id).plan if not _sent(record) else {}
        result.deadline = str(record["deadline"])
        result.groups, result.batches = int(record.get("groups", 0)), int(record.get("batches", 0))
        if _sent(record):
            result.digest_sent = True
            logger.info("run already reported; nothing queued", extra={"snapshot": snapshot_id})
            return result
        done = {int(batch) for batch in record.get("done_batches") or ()}
        messages = [(body, 0) for batch, body in sorted(plan.items()) if batch not in done]
        deadline_at = parse_iso(result.deadline)
        messages.append(
            (RunDeadline(snapshot_id=snapshot_id, deadline=deadline_at).body(), self._delay(deadline_at))
        )
        queue.send(messages)
        result.sent = len(messages) - 1
        logger.info(
            "run planned and queued",
            extra={
                "snapshot": snapshot_id,
                "groups": result.groups,
                "batches": result.batches,
                "sent": result.sent,
                "refused": len(result.refused),
                "deadline": result.deadline,
                "replanned": result.replanned,
            },
        )
        if _complete(record):  # nothing to queue: no group (or every batch done before a crash)
            result.finished = self._finish_run(snapshot_id, record, at_deadline=False)
        return result

    def work(self, batch: ReportBatch, remaining_ms: Callable[[], int] | None = None) -> RunResult:
        """Snapshot one batch of a planned run (module docstring, step 2); the digest too, if this
        batch completes the run."""
        queue = self._require_queue()
        snapshot_id = batch.snapshot_id
        snapshot_time = parse_iso(snapshot_id)
        expires_at = self._expires_at(snapshot_time)
        names = [group.name for group in batch.groups]
        latest, record = self._store.latest(names, snapshot_id)
        if record is None:
            raise UnknownRun(f"run {snapshot_id} has no run record (expired, or never planned)")
        run = _Run(snapshot_id, snapshot_time, batch.source, expires_at, self._store.writer())
        outcomes, worst = self._snapshot_groups(
            names,
            run,
            latest,
            managed={group.name for group in batch.groups if group.managed},
            baselines={group.name: list(group.baselines) for group in batch.groups},
            remaining_ms=remaining_ms,
        )
        result = RunResult(snapshot_id=snapshot_id, source=batch.source, outcomes=outcomes)
        worst += self._recorded_worst(result.with_status("already-recorded"), snapshot_id)
        self._store.record_batch(snapshot_id, batch.batch, outcomes, worst_instances(worst), expires_at)
        failed = result.with_status("failed")
        if failed and batch.attempt < MAX_ATTEMPTS:
            retry = batch.model_copy(update={"attempt": batch.attempt + 1})
            queue.send([(retry.body(), RETRY_DELAY_SECONDS * batch.attempt)])
            result.retrying = True
            logger.warning(
                "groups failed; the batch is sent again",
                extra={
                    "snapshot": snapshot_id,
                    "batch": batch.batch,
                    "attempt": batch.attempt,
                    "groups": [outcome.group for outcome in failed],
                },
            )
            return result
        record = self._store.mark_batch_done(snapshot_id, batch.batch)
        if _complete(record) and not _sent(record):
            finished = self._finish_run(snapshot_id, record, at_deadline=False)
            if finished is not None:
                result.digest, result.message_id = finished.digest, finished.message_id
                result.missing = finished.missing
        return result

    def check_deadline(self, message: RunDeadline) -> RunResult | None:
        """The run's deadline message (module docstring, step 4): not due yet, it is sent again;
        due, the digest goes out unless it went out already. The digest's result, if sent."""
        queue = self._require_queue()
        now = self._clock()
        if now < message.deadline:
            queue.send([(message.body(), self._delay(message.deadline))])
            return None
        record = self._store.run_record(message.snapshot_id)
        if record is None:
            logger.warning(
                "deadline of a run without a record; nothing to send", extra={"snapshot": message.snapshot_id}
            )
            return None
        if _sent(record):
            return None
        return self._finish_run(message.snapshot_id, record, at_deadline=not _complete(record))

    def _finish_run(self, snapshot_id: str, record: dict[str, Any], *, at_deadline: bool) -> RunResult | None:
        """Claim, build (from the run's ledger) and publish the run's one digest; None when another
        worker holds the claim or sent it."""
        snapshot_time = parse_iso(snapshot_id)
        expires_at = self._expires_at(snapshot_time)
        source = str(record.get("source", "scheduled"))
        now = self._clock().timestamp()
        if not self._store.claim_digest(
            snapshot_id, record, now=now, lease_until=now + DIGEST_LEASE, expires_at=expires_at
        ):
            logger.info("digest claimed or sent by another worker", extra={"snapshot": snapshot_id})
            return None
        ledger = self._store.run_ledger(snapshot_id)
        planned = {
            batch: [group.name for group in _as_batch(body).groups] for batch, body in ledger.plan.items()
        }
        run = assemble(
            planned,
            ledger.reports,
            (int(batch) for batch in record.get("done_batches") or ()),
            refused=[str(name) for name in record.get("refused") or ()],
            refusal=INVALID_NAME,
            missing_reason=f"not recorded by the run's deadline ({record.get('deadline', '?')})",
        )
        result = RunResult(snapshot_id=snapshot_id, source=source, outcomes=run.outcomes, missing=run.missing)
        result.digest = render_digest(
            snapshot_id,
            snapshot_time,
            source,
            run.outcomes,
            worst_instances(run.worst),
            tag_key=self.config.tag_key,
        )
        result.message_id = self._publish(snapshot_id, result.digest)
        self._store.record_digest(
            snapshot_id,
            {
                **self._run_attributes(result),
                "groups": len(run.outcomes),
                "groups_missing": len(run.missing),
                "completed": not at_deadline,
            },
        )
        logger.info(
            "run digest sent" if not at_deadline else "run deadline passed; digest sent with groups missing",
            extra={"snapshot": snapshot_id, "missing": len(run.missing), "messageId": result.message_id},
        )
        return result

    def _require_queue(self) -> ReportQueue:
        if self._queue is None:
            raise RuntimeError("the report queue is not configured (REPORT_QUEUE_URL)")
        return self._queue

    def _delay(self, until: datetime) -> int:
        return max(0, min(MAX_DELAY_SECONDS, math.ceil((until - self._clock()).total_seconds())))

    # -----------------------------------------------------------------------------------------
    # Per group: the same work in the invocation and in a worker
    # -----------------------------------------------------------------------------------------
    def _list_groups(
        self, only: str | None
    ) -> tuple[list[str], set[str], dict[str, list[str]], dict[str, int], dict[str, int]]:
        """Group names (sorted, each once), the managed ones, each group's baselines, the
        instance counts the groups table records (-1: unknown) and its groups per status."""
        registered = self._ssm.patch_groups()
        if only is not None:
            record = self._groups.get(only)
            return [only], ({only} if record else set()), registered, {}, {}
        records = self._groups.all()
        managed = {record.group for record in records}
        sizes = {record.group: record.instance_count for record in records}
        statuses = Counter(record.status for record in records)
        return sorted(managed | set(registered)), managed, registered, sizes, dict(statuses)

    def _snapshot_groups(
        self,
        names: list[str],
        run: _Run,
        latest: dict[str, GroupTotals],
        *,
        managed: set[str],
        baselines: dict[str, list[str]],
        remaining_ms: Callable[[], int] | None,
    ) -> tuple[list[GroupOutcome], list[tuple[str, InstanceRow]]]:
        """Each group's outcome (in ``names`` order) and the worst-instance candidates of the groups
        recorded now; one group's failure does not stop the others."""
        outcomes: dict[str, GroupOutcome] = {}
        pending: dict[str, _Pending] = {}
        for group in names:
            if not is_valid_patch_group(group):
                outcomes[group] = GroupOutcome(group, "failed", error=INVALID_NAME)
                continue
            if remaining_ms is not None and remaining_ms() < RESERVE_MS:
                outcomes[group] = GroupOutcome(
                    group,
                    "failed",
                    error=f"not started: less than {RESERVE_MS // 1000} s of the invocation left "
                    '(invoke {"group": ...} for it, or fan out per group)',
                )
                continue
            try:
                done = self._snapshot_group(
                    group,
                    latest.get(group),
                    run,
                    managed=group in managed,
                    baselines=baselines.get(group, []),
                )
            except Exception as error:  # one group's failure must not stop the others
                logger.exception("group snapshot failed", extra={"group": group})
                outcomes[group] = GroupOutcome(group, "failed", error=_describe(error))
                continue
            if isinstance(done, GroupOutcome):
                outcomes[group] = done
            else:
                pending[group] = done

        written = run.writer.finish()
        worst: list[tuple[str, InstanceRow]] = []
        for group, snap in pending.items():
            if group in written.failed:
                outcomes[group] = GroupOutcome(
                    group, "failed", error=written.failed[group][:ERROR_MAX_LENGTH]
                )
            else:
                outcomes[group] = GroupOutcome(group, "recorded", totals=snap.totals)
                worst += snap.worst
        return [outcomes[group] for group in names], worst

    def _recorded_worst(
        self, recorded: list[GroupOutcome], snapshot_id: str
    ) -> list[tuple[str, InstanceRow]]:
        """The worst-instance candidates of groups recorded before (their rows, one Query each, for
        the groups that had non-compliant instances); a group whose rows cannot be read is left out."""
        worst: list[tuple[str, InstanceRow]] = []
        for outcome in recorded:
            if outcome.totals is not None and outcome.totals.non_compliant_instances > 0:
                try:
                    rows = self._store.instance_rows(outcome.group, snapshot_id)
                except Exception:  # the digest goes out without this group's worst instances
                    logger.exception("could not read recorded rows", extra={"group": outcome.group})
                    continue
                worst += [(outcome.group, row) for row in worst_of(rows)]
        return worst

    def _snapshot_group(
        self,
        group: str,
        latest: GroupTotals | None,
        run: _Run,
        *,
        managed: bool,
        baselines: list[str],
    ) -> GroupOutcome | _Pending:
        snapshot_id = run.snapshot_id
        previous = latest
        moves_latest = True
        if latest is not None and latest.snapshot_id == snapshot_id:
            return GroupOutcome(group, "already-recorded", totals=latest)
        if latest is not None and latest.snapshot_id > snapshot_id:
            # An older snapshot delivered late: record it, but LATEST stays on the newer one.
            moves_latest = False
            around = self._store.snapshots_up_to(group, snapshot_id)
            if around and around[0].snapshot_id == snapshot_id:
                return GroupOutcome(group, "already-recorded", totals=around[0])
            previous = around[0] if around else None

        group_state = self._ssm.group_state(group)
        states = self._ssm.instance_states(group)
        previous_rows: dict[str, Since] = {}
        if previous is not None and previous.non_compliant_instances > 0:
            previous_rows = {
                row.instance_id: row.since() for row in self._store.instance_rows(group, previous.snapshot_id)
            }
        snap = build_snapshot(
            group,
            run.snapshot_time,
            group_state=group_state,
            states=states,
            previous_rows=previous_rows,
            previous_totals=previous,
            managed=managed,
            baselines=baselines,
            source=run.source,
            taken_at=snapshot_id_for(self._clock()),
        )
        run.writer.write_snapshot(
            group, snapshot_id, snap.rows, snap.totals, moves_latest=moves_latest, expires_at=run.expires_at
        )
        return _Pending(snap.totals, [(group, row) for row in worst_of(snap.rows)])

    def _run_attributes(self, result: RunResult) -> dict[str, Any]:
        failed = result.with_status("failed")
        return {
            "source": result.source,
            "published_at": snapshot_id_for(self._clock()),
            "digest_message_id": result.message_id,
            "groups": len(result.outcomes),
            "groups_recorded": len(result.with_status("recorded")),
            "groups_already_recorded": len(result.with_status("already-recorded")),
            "groups_failed": len(failed),
            "failures": {o.group: o.error or "" for o in failed[:RUN_RECORD_FAILURES]},
        }


def _as_batch(body: str) -> ReportBatch:
    message = parse_report_message(body)
    if not isinstance(message, ReportBatch):  # pragma: no cover - the planner stores batches only
        raise TypeError("a plan item holds a deadline message")
    return message


def worst_of(rows: list[InstanceRow]) -> list[InstanceRow]:
    """A group's candidates for the digest's worst instances (kept instead of every row)."""
    return [row for _, row in worst_instances(("", row) for row in rows)]
