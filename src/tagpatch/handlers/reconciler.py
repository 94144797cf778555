"""Reconciler Lambda: ReconcileQueue's records, the two schedules and direct requests.

* An SQS batch from ReconcileQueue (its event source runs at most ReconcileConcurrency invocations
  at once): each record is a tag change or a settings change event as its rule delivered it, or
  one of our messages (:mod:`tagpatch.models.reconciler_events`). A record that could not be used
  (invalid, an error, a group failed or not reached) is logged with its reason and reported as a
  batch item failure: SQS delivers it again after the visibility timeout and, after the queue's
  maxReceiveCount, moves it to ReconcileDLQ. The other records of the batch go on.
* The scheduled event plans the run (``Reconciler.plan_run``) and queues it, a batch of groups per
  message; ``{"sweep": true}`` (the 5-minute schedule) does the same for the groups left pending.
* Direct requests (the CLI, an operator): ``{"group": g, "dryRun": b}`` is reconciled here and
  answered with the outcome; ``{}`` queues every group, as the scheduled run does.
* A tag or settings event invoked directly (as the rules did before ReconcileQueue) is reconciled
  here, as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from functools import cache, partial
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.adapters.clients import set_time_left
from tagpatch.adapters.ec2 import Ec2Gateway
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.member_events import default_sink, publish_built
from tagpatch.adapters.reconcile_queue import SqsReconcileQueue
from tagpatch.adapters.ssm import SsmGateway
from tagpatch.models.member_events import EventSink, MemberEventDetail, reconcile_event
from tagpatch.models.reconciler_events import (
    Invalid,
    OnDemandRequest,
    ParameterChangeEvent,
    ScheduledEvent,
    TagChangeEvent,
    parse_message,
    split_message,
)
from tagpatch.observability import logger, metrics, trace_handler
from tagpatch.reconciler.config import load_reconciler_config
from tagpatch.reconciler.core import Outcome, Reconciler

_METRIC_OF_STATUS = {
    "converged": "GroupsConverged",
    "refused": "SettingsRefused",
    "empty": "EmptyGroups",
    "deleted": "EmptyGroupsDeleted",
    "failed": "GroupsFailed",
    "rejected": "GroupsRejected",
    "unplaced": "GroupsUnplaced",
    "deferred": "ReconcilesDeferred",
    "handed_on": "GroupsHandedOn",
    "not_reached": "GroupsNotReached",
}
#: Outcomes that make a record fail (SQS delivers it again), and a direct run not ok.
FAILED_STATUSES = ("failed", "not_reached")
#: A record is not started with less than this left of the invocation: a batch of the scheduled
#: run reconciles its groups one after another, each needing time for its SSM writes.
RECORD_START_RESERVE_SECONDS = 90

# Where this invocation's outcomes are published as member events (handle's ``events``).
_EVENTS: ContextVar[EventSink | None] = ContextVar("tagpatch_reconciler_events", default=None)


class InvalidEvent(ValueError):
    """The event is not one the reconciler understands; raised so that it ends in the DLQ."""


class RecordFailed(RuntimeError):
    """A queue record was not (completely) carried out; reported as a batch item failure."""


class ReconcileQueue(Protocol):
    """Where the scheduled run's and the sweep's messages go (:class:`SqsReconcileQueue`)."""

    def send(self, bodies: Sequence[Mapping[str, Any]]) -> int: ...


@cache
def default_reconciler() -> Reconciler:
    config = load_reconciler_config(os.environ)
    return Reconciler(config, SsmGateway(), GroupsRepository(config.groups_table_name), Ec2Gateway())


@cache
def default_queue() -> ReconcileQueue:
    return SqsReconcileQueue.from_environment()


@cache
def default_events() -> EventSink:
    return default_sink()


def handle(
    event: dict[str, Any],
    reconciler: Reconciler,
    context: LambdaContext | None = None,
    *,
    queue: ReconcileQueue | None = None,
    events: EventSink | None = None,
) -> dict[str, Any]:
    """Route ``event`` to the reconciler; the summary of what was done (for an SQS batch, the
    partial batch response).

    ``queue``: where a planned run goes. None (tests, tools without a queue): its messages are
    carried out here, one after another, as the queue's consumers would.
    ``events``: where the outcomes are published ("Group Reconciled", "Group Refused"); None: not.

    With ``context``, nothing is started that could not finish before the invocation ends: no
    record of a batch, no SSM write, no attempt of any AWS call (retries included).
    """
    token = _EVENTS.set(events)
    try:
        if context is None:
            return _route(event, reconciler, queue)
        left = context.get_remaining_time_in_millis() / 1000
        reconciler.deadline = reconciler.clock() + left
        set_time_left(left)
        try:
            return _route(event, reconciler, queue)
        finally:
            reconciler.deadline = None
            set_time_left(None)
    finally:
        _EVENTS.reset(token)


def _route(event: dict[str, Any], reconciler: Reconciler, queue: ReconcileQueue | None) -> dict[str, Any]:
    if isinstance(event, dict) and "Records" in event:
        return _on_batch(event, reconciler)
    source = event.get("source") if isinstance(event, dict) else None
    try:
        if source == "aws.tag":
            outcomes = _on_tag_change(TagChangeEvent.parse(event), reconciler)
        elif source in ("aws.events", "aws.scheduler"):
            ScheduledEvent.parse(event)
            return _plan(reconciler, queue)
        elif source == "aws.ssm":
            outcomes = _on_settings_change(ParameterChangeEvent.parse(event), reconciler)
        elif source is None:
            return _on_demand(event, reconciler, queue)
        else:
            raise InvalidEvent(f"unexpected event source {source!r}")
    except Invalid as error:
        errors = [{"loc": loc, "msg": msg} for loc, msg in error.problems]
        logger.error("event refused: not the expected shape", extra={"source": source, "errors": errors})
        raise InvalidEvent(f"event from {source!r} does not have the expected shape: {error}") from error
    return _summary(outcomes)


# --- the reconcile queue's records ---------------------------------------------------------------
def _on_batch(event: dict[str, Any], reconciler: Reconciler) -> dict[str, Any]:
    records = event.get("Records")
    outcomes: list[Outcome] = []
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    handler = partial(_on_record, reconciler=reconciler, outcomes=outcomes)
    with processor(records=records if isinstance(records, list) else [], handler=handler):
        processor.process()
    failures: list[dict[str, Any]] = [dict(item) for item in processor.response()["batchItemFailures"]]
    _summary(outcomes)
    if failures:
        metrics.add_metric(name="ReconcileRecordFailures", unit=MetricUnit.Count, value=len(failures))
    logger.info("batch processed", extra={"records": len(processor.records), "failures": len(failures)})
    return {"batchItemFailures": failures}


def _on_record(record: SQSRecord, *, reconciler: Reconciler, outcomes: list[Outcome]) -> None:
    where = {
        "messageId": record.raw_event.get("messageId"),
        "receiveCount": record.raw_event.get("attributes", {}).get("ApproximateReceiveCount"),
    }
    left = None if reconciler.deadline is None else reconciler.deadline - reconciler.clock()
    if left is not None and left < RECORD_START_RESERVE_SECONDS:
        logger.warning(
            "record not started: the invocation ends too soon; SQS delivers it again",
            extra={**where, "secondsLeft": round(left)},
        )
        raise RecordFailed(f"not started with {left:.0f} s left")
    try:
        work = _record_work(record.raw_event.get("body"), reconciler)
    except (Invalid, InvalidEvent) as error:
        logger.error(
            "record refused: not a reconciler event or message; it goes to ReconcileDLQ after the "
            "queue's maxReceiveCount",
            extra={**where, "reason": str(error)},
        )
        raise
    try:
        done = work()
    except Exception:
        logger.exception("record failed; SQS delivers it again, then moves it to ReconcileDLQ", extra=where)
        raise
    outcomes.extend(done)
    failed = [outcome.group for outcome in done if outcome.status in FAILED_STATUSES]
    if failed:
        logger.error(
            "record failed: groups not reconciled; SQS delivers it again, then moves it to ReconcileDLQ",
            extra={**where, "groups": failed[:20]},
        )
        raise RecordFailed(f"{len(failed)} group(s) not reconciled: {failed[:5]}")


def _record_work(body: Any, reconciler: Reconciler) -> Callable[[], list[Outcome]]:
    """What to do for a record's ``body``, once it is known to be ours; or why it is not."""
    if not isinstance(body, str):
        raise InvalidEvent("the record has no body")
    try:
        data = json.loads(body)
    except ValueError as error:
        raise InvalidEvent(f"the body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("the body is not a JSON object")
    if "source" in data:
        source = data["source"]
        if source == "aws.tag":
            return partial(_on_tag_change, TagChangeEvent.parse(data), reconciler)
        if source == "aws.ssm":
            return partial(_on_settings_change, ParameterChangeEvent.parse(data), reconciler)
        raise InvalidEvent(f"events from {source!r} do not come through the reconcile queue")
    return partial(reconciler.run_message, parse_message(data).model_dump())


# --- runs: planned, then queued (or carried out here) ---------------------------------------------
def _plan(
    reconciler: Reconciler, queue: ReconcileQueue | None, only: set[str] | None = None
) -> dict[str, Any]:
    bodies = reconciler.plan_run(only=only)
    if queue is None:
        return _summary([outcome for body in bodies for outcome in reconciler.run_message(body)])
    messages = [part for body in bodies for part in split_message(body)]
    sent = queue.send(messages) if messages else 0
    groups = sum(len(m.get("groups", {})) + len(m.get("empty", [])) for m in messages)
    logger.info(
        "reconcile planned and queued",
        extra={"messages": sent, "groups": groups, "sweep": only is not None},
    )
    if sent:
        metrics.add_metric(name="ReconcileMessagesQueued", unit=MetricUnit.Count, value=sent)
    return _queued(sent, groups)


def _queued(messages: int, groups: int) -> dict[str, Any]:
    return {"ok": True, "groups": [], "queued": {"messages": messages, "groups": groups}}


def _sweep(reconciler: Reconciler, queue: ReconcileQueue | None) -> dict[str, Any]:
    """The groups asked for a rerun whose lease is free (their holder died, or a run had no time
    for them), planned as the scheduled run plans them; one Scan and nothing else when none."""
    pending = set(reconciler.groups.pending(int(reconciler.clock())))
    if not pending:
        return _summary([]) if queue is None else _queued(0, 0)
    logger.info("reconciling groups left pending", extra={"groups": sorted(pending)[:50]})
    return _plan(reconciler, queue, only=pending)


def _on_tag_change(event: TagChangeEvent, reconciler: Reconciler) -> list[Outcome]:
    key = reconciler.config.tag_key
    if key not in event.detail.changed_tag_keys:
        logger.info("tag change does not involve the patch group key", extra={"key": key})
        return []
    group = event.detail.tags.get(key)
    if group is None:
        logger.info(
            "instance left its patch group; the scheduled reconcile reports groups left empty",
            extra={"resources": event.resources},
        )
        return []
    return [reconciler.reconcile_group(group, verify=False)]


def _on_settings_change(event: ParameterChangeEvent, reconciler: Reconciler) -> list[Outcome]:
    group = reconciler.group_for_parameter(event.detail.name)
    if group is None:
        logger.info(
            "settings changed for a group with no instances yet; applied when one joins",
            extra={"parameter": event.detail.name},
        )
        return []
    return [reconciler.reconcile_group(group, verify=True)]


def _on_demand(event: dict[str, Any], reconciler: Reconciler, queue: ReconcileQueue | None) -> dict[str, Any]:
    try:
        request = OnDemandRequest.parse(event)
    except ValueError as error:
        logger.error("request refused", extra={"error": str(error)})
        return {"ok": False, "error": f"invalid request: {error}"}
    if request.sweep:
        if request.group is not None or request.dry_run:
            return {"ok": False, "error": "sweep takes no group and no dryRun"}
        return _sweep(reconciler, queue)
    if request.group is None:
        if request.dry_run:
            return {"ok": False, "error": "dryRun needs a group"}
        return _plan(reconciler, queue)
    return _summary([reconciler.reconcile_group(request.group, verify=True, dry_run=request.dry_run)])


def _summary(outcomes: list[Outcome]) -> dict[str, Any]:
    for outcome in outcomes:
        logger.info(
            "group reconciled",
            extra={
                "group": outcome.group,
                "status": outcome.status,
                "actions": outcome.actions,
                "reasons": outcome.reasons,
            },
        )
        if name := _METRIC_OF_STATUS.get(outcome.status):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if outcome.writes:
            metrics.add_metric(name="SsmWrites", unit=MetricUnit.Count, value=outcome.writes)
    _publish(outcomes)
    return {
        "ok": all(outcome.status not in FAILED_STATUSES for outcome in outcomes),
        "groups": [
            {"group": o.group, "status": o.status, "actions": o.actions, "reasons": o.reasons}
            for o in outcomes
        ],
    }


def _publish(outcomes: list[Outcome]) -> None:
    """The outcomes that are news, as member events (best effort: a failure is logged and counted,
    and never fails the records)."""
    if outcomes:
        publish_built(_EVENTS.get(), partial(_outcome_events, outcomes))


def _outcome_events(outcomes: list[Outcome], sink: EventSink) -> list[MemberEventDetail]:
    events = (
        reconcile_event(
            sink.origin, o.group, o.status, actions=len(o.actions), reasons=o.reasons, windows=o.windows
        )
        for o in outcomes
    )
    return [event for event in events if event is not None]


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, default_reconciler(), context, queue=default_queue(), events=default_events())
