"""Compliance reporter: one snapshot of every patch group's compliance, its history and a digest.

A run (the daily schedule, or an on-demand request for one group or all):

1. lists the groups: those in the groups table (the stack manages them) plus every patch group
   registered with a baseline (``DescribePatchGroups``), each once;
2. reads each group's ``LATEST`` entry and the run's record (one BatchGetItem per 100 groups);
3. per group: ``DescribePatchGroupState``, every page of ``DescribeInstancePatchStatesForPatchGroup``
   and - only when the previous snapshot had non-compliant instances - the previous snapshot's
   instance rows (one Query), then builds the snapshot (:mod:`tagpatch.reporter.compliance`) and queues its
   items on the shared writer (BatchWriteItem of 25, filled across groups);
4. publishes one digest and records the run.

Idempotency: the snapshot id is the scheduled event's ``time``, so a redelivered event names
the same snapshot and writes the same keys. A group whose ``LATEST`` already names this snapshot
is complete (``LATEST`` is written last) and is skipped: the same event twice makes one snapshot.
The digest is not sent again when the run record shows it was sent and nothing new was recorded.
A late delivery of an *older* event (``LATEST`` is newer) still records its snapshot, checks its
existence with one Query, and leaves ``LATEST`` alone.

Failures: a group whose reads or writes fail (after botocore's standard-mode retries of
throttling and 5xx) is reported in the result, the digest and the ``ComplianceGroupsFailed``
metric, and the other groups still snapshot. The run as a whole fails (and the event is retried,
then dead-lettered) only when the group listing, the ``LATEST`` read or the digest fails.

Scale: per group the run makes 1 + ceil(n/100) SSM reads and at most 1 Query (none when the
previous snapshot had no non-compliant instance), and its writes share batches of 25 with the
other groups. 10,000 instances in 100 uneven groups (140 pages) measure 242 SSM reads and 408
BatchWriteItem calls, both exactly the floor (``PYTHONPATH=src:. python -m
benchmarks.reporter_calls``). At an assumed 100-250 ms per SSM page and 10-30 ms per DynamoDB
call that is roughly 30-70 s of a 900 s invocation, sequential, which also keeps the SSM request
rate low. The run stops *starting* groups when less than :data:`RESERVE_MS` of the invocation is
left and reports them as not started, so a run never dies half-way without a digest. Past that
(roughly 100,000 instances or a few thousand groups per run, or an SSM throttle budget shared
with other tooling), fan out: one invocation per group - the on-demand request
``{"group": "<name>"}`` is exactly that unit - from an SQS queue or a Step Functions Map state
over ``DescribePatchGroups``, with a final step that builds the digest from the groups'
``LATEST`` entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tagpatch.observability import logger
from tagpatch.reporter.compliance import (
    Digest,
    GroupOutcome,
    GroupTotals,
    InstanceRow,
    Since,
    build_snapshot,
    is_valid_patch_group,
    parse_iso,
    render_digest,
    snapshot_id_for,
    worst_instances,
)
from tagpatch.reporter.config import ReporterConfig

if TYPE_CHECKING:
    from tagpatch.reporter.ports import (
        ComplianceStore,
        DigestSink,
        GroupDirectory,
        PatchStates,
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

    @property
    def ok(self) -> bool:
        return all(outcome.status != "failed" for outcome in self.outcomes)

    def with_status(self, status: str) -> list[GroupOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]


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


class ComplianceReporter:
    def __init__(
        self,
        config: ReporterConfig,
        patch_states: PatchStates,
        store: ComplianceStore,
        groups: GroupDirectory,
        topic: DigestSink,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._ssm = patch_states
        self._store = store
        self._groups = groups
        self._topic = topic
        self._clock = clock

    def run(self, request: ReportRequest, remaining_ms: Callable[[], int] | None = None) -> RunResult:
        snapshot_id = snapshot_id_for(request.snapshot_time)
        snapshot_time = parse_iso(snapshot_id)
        expires_at = int(snapshot_time.timestamp()) + self.config.history_days * SECONDS_PER_DAY
        result = RunResult(snapshot_id=snapshot_id, source=request.source)

        names, managed, baselines = self._list_groups(request.group)
        valid = [name for name in names if is_valid_patch_group(name)]
        latest, run_record = self._store.latest(valid, snapshot_id)
        writer = self._store.writer()
        run = _Run(snapshot_id, snapshot_time, request.source, expires_at, writer)
        outcomes: dict[str, GroupOutcome] = {}
        pending: dict[str, _Pending] = {}
        for group in names:
            if group not in valid:
                outcomes[group] = GroupOutcome(
                    group,
                    "failed",
                    error="not a valid SSM patch group name (1-256 letters, digits, spaces, _.:/=+-@)",
                )
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

        written = writer.finish()
        for group, snap in pending.items():
            if group in written.failed:
                outcomes[group] = GroupOutcome(
                    group, "failed", error=written.failed[group][:ERROR_MAX_LENGTH]
                )
            else:
                outcomes[group] = GroupOutcome(group, "recorded", totals=snap.totals)
        result.outcomes = [outcomes[group] for group in names]

        sent = run_record is not None and run_record.get("digest_message_id") is not None
        if sent and not result.with_status("recorded"):
            logger.info("snapshot already recorded and its digest sent", extra={"snapshot": snapshot_id})
            return result
        worst = [
            pair for group, snap in pending.items() if group not in written.failed for pair in snap.worst
        ]
        for outcome in result.with_status("already-recorded"):
            if outcome.totals is not None and outcome.totals.non_compliant_instances > 0:
                try:
                    rows = self._store.instance_rows(outcome.group, snapshot_id)
                except Exception:  # the digest goes out without this group's worst instances
                    logger.exception("could not read recorded rows", extra={"group": outcome.group})
                    continue
                worst += [(outcome.group, row) for row in worst_of(rows)]
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
        try:
            result.message_id = self._topic.publish(result.digest.subject, result.digest.body)
        except Exception:
            self._release_digest(snapshot_id, run_record, expires_at)
            raise
        self._store.record_run(snapshot_id, self._run_attributes(result), expires_at)
        return result

    def _release_digest(self, snapshot_id: str, run_record: dict[str, Any] | None, expires_at: int) -> None:
        """After a failed publish: put back the run record as it was (without the claim), so the
        retry of the event may send the digest at once; if that fails too, the claim lapses."""
        kept = {k: v for k, v in (run_record or {}).items() if k not in ("pk", "sk", "ttl", "digest_lease")}
        try:
            self._store.record_run(snapshot_id, kept, expires_at)
        except Exception:
            logger.exception("digest claim not released; it lapses", extra={"snapshot": snapshot_id})

    # ---------------------------------------------------------------------------------------
    def _list_groups(self, only: str | None) -> tuple[list[str], set[str], dict[str, list[str]]]:
        """Group names (sorted, each once), the managed ones and each group's baselines."""
        registered = self._ssm.patch_groups()
        if only is not None:
            return [only], ({only} if self._groups.get(only) else set()), registered
        managed = {record.group for record in self._groups.all()}
        return sorted(managed | set(registered)), managed, registered

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


def worst_of(rows: list[InstanceRow]) -> list[InstanceRow]:
    """A group's candidates for the digest's worst instances (kept instead of every row)."""
    return [row for _, row in worst_instances(("", row) for row in rows)]
