"""Compliance reporter Lambda: the daily schedule, an on-demand request for one group or all, and
the report queue's messages.

* the schedule, or ``{}``: plan the run and queue it (:meth:`ComplianceReporter.plan`); a stack
  without the report queue runs it in the invocation;
* ``{"group": "<name>"}``: snapshot that group in the invocation and answer with its result;
* an SQS event from the report queue: a batch of groups to snapshot, or a run's deadline; returns
  a partial batch response (``ReportBatchItemFailures``): a record whose message is malformed or
  whose work failed is reported, so SQS redelivers it and, after ``maxReceiveCount``, dead-letters
  it to ReportDLQ.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache, partial
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.adapters.compliance_store import ComplianceStore
from tagpatch.adapters.digest_topic import DigestTopic
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.member_events import default_sink, publish_built
from tagpatch.adapters.patch_states import PatchStateGateway
from tagpatch.adapters.report_queue import ReportQueue
from tagpatch.models.member_events import ComplianceSnapshot, EventSink, compliance_event, heartbeat_event
from tagpatch.models.reporter_events import (
    Invalid,
    OnDemandReport,
    ReportBatch,
    ReporterScheduledEvent,
    parse_report_message,
)
from tagpatch.observability import logger, metrics, trace_handler
from tagpatch.reporter.compliance import (
    METRIC_DIMENSION,
    METRIC_LOWEST_COMPLIANCE_PERCENT,
    metric_dimension_value,
    metric_values,
)
from tagpatch.reporter.config import load_reporter_config
from tagpatch.reporter.core import ComplianceReporter, PlanResult, ReportRequest, RunResult


class InvalidEvent(ValueError):
    """The event is not one the reporter understands; raised so that it ends in the DLQ."""


@cache
def default_reporter() -> ComplianceReporter:
    config = load_reporter_config(os.environ)
    return ComplianceReporter(
        config,
        PatchStateGateway(),
        ComplianceStore(config.compliance_table_name),
        GroupsRepository(config.groups_table_name),
        DigestTopic(config.alert_topic_arn),
        queue=ReportQueue(config.report_queue_url) if config.report_queue_url else None,
    )


@cache
def default_events() -> EventSink:
    return default_sink()


def handle(
    event: dict[str, Any],
    reporter: ComplianceReporter,
    remaining_ms: Callable[[], int] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    events: EventSink | None = None,
) -> dict[str, Any]:
    """Run one compliance snapshot for ``event`` (or plan it, or carry out report-queue messages);
    the summary of what was recorded, planned, or the partial batch response. ``events``: where
    each group recorded is published as a "Compliance Snapshot" member event; None: not."""
    if isinstance(event, dict) and "Records" in event:
        return _handle_messages(event, reporter, remaining_ms, events)
    source = event.get("source") if isinstance(event, dict) else None
    if source in ("aws.events", "aws.scheduler"):
        try:
            scheduled = ReporterScheduledEvent.parse(event)
        except Invalid as error:
            logger.error("event refused: not the expected shape", extra={"errors": error.problems})
            raise InvalidEvent(f"event from {source!r} does not have the expected shape: {error}") from error
        request = ReportRequest(snapshot_time=scheduled.time, source="scheduled")
    elif source is None and isinstance(event, dict):
        try:
            on_demand = OnDemandReport.parse(event)
        except Invalid as error:
            logger.error("request refused", extra={"error": str(error)})
            return {"ok": False, "error": f"invalid request: {error}"}
        request = ReportRequest(snapshot_time=now(), source="on-demand", group=on_demand.group)
    else:
        raise InvalidEvent(f"unexpected event source {source!r}")
    if request.group is None and reporter.fans_out:
        planned = reporter.plan(request)
        if planned.finished is not None:
            _emit_run_metrics(planned.finished)
        _heartbeat(planned, events)
        return _plan_summary(planned)
    result = reporter.run(request, remaining_ms)
    _emit_metrics(result)
    _publish(result, events)
    return _summary(result)


def _handle_messages(
    event: dict[str, Any],
    reporter: ComplianceReporter,
    remaining_ms: Callable[[], int] | None,
    events: EventSink | None = None,
) -> dict[str, Any]:
    """One SQS event of the report queue (batch size 1 in the stack); the partial batch response."""
    records = event.get("Records")
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("messageId"), str) and isinstance(r.get("body"), str)
        for r in records
    ):
        logger.error("event refused: Records is not a list of SQS records (messageId, body)")
        raise InvalidEvent("not an SQS event: Records must be a list of records with a messageId and a body")

    def process(record: SQSRecord) -> None:
        try:
            message = parse_report_message(record.body)
        except Invalid as error:
            logger.error(
                "report message refused; it goes to ReportDLQ after the queue's maxReceiveCount",
                extra={
                    "messageId": record.message_id,
                    "errors": error.problems,
                    "receiveCount": record.raw_event.get("attributes", {}).get("ApproximateReceiveCount"),
                },
            )
            raise
        if isinstance(message, ReportBatch):
            result = reporter.work(message, remaining_ms)
            _emit_metrics(result, final=not result.retrying)
            _publish(result, events)
            if result.message_id is not None:
                _emit_run_metrics(result)
            _summary(result)
        else:
            finished = reporter.check_deadline(message)
            if finished is not None:
                _emit_run_metrics(finished)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=records, handler=process):
        processor.process()
    failures = [dict(item) for item in processor.response()["batchItemFailures"]]
    if failures:
        metrics.add_metric(name="ReportMessageFailures", unit=MetricUnit.Count, value=len(failures))
    return {"batchItemFailures": failures}


def _heartbeat(planned: PlanResult, events: EventSink | None) -> None:
    """The member's "Member Heartbeat", once per planned run (a redelivered schedule event that finds
    the run planned lists no groups and sends none), best effort."""
    statuses = planned.group_statuses
    if statuses is not None:
        publish_built(events, lambda sink: [heartbeat_event(sink.origin, statuses)])


def _publish(result: RunResult, events: EventSink | None) -> None:
    """One "Compliance Snapshot" per group recorded now (not one already recorded by an earlier
    delivery of the same work), best effort."""
    if result.with_status("recorded"):
        publish_built(events, partial(_snapshot_events, result))


def _snapshot_events(result: RunResult, sink: EventSink) -> list[ComplianceSnapshot]:
    return [
        compliance_event(
            sink.origin,
            outcome.group,
            outcome.totals.snapshot_id,
            instances=outcome.totals.instances,
            compliant=outcome.totals.compliant_instances,
            percent=outcome.totals.compliance_percent,
        )
        for outcome in result.with_status("recorded")
        if outcome.totals is not None
    ]


def _emit_run_metrics(result: RunResult) -> None:
    """A fanned-out run's digest went out: the groups it could not name as recorded."""
    metrics.add_metric(name="ComplianceGroupsMissing", unit=MetricUnit.Count, value=len(result.missing or []))


def _emit_metrics(result: RunResult, *, final: bool = True) -> None:
    """Per recorded group its metrics; the run's (or batch's) lowest percentage and counts. Failed
    groups count only when ``final`` (a worker's batch that is retried has not failed yet)."""
    for outcome in result.with_status("recorded"):
        if outcome.totals is None:  # pragma: no cover - recorded outcomes carry totals
            continue
        group_metrics = EphemeralMetrics()
        # The slug: a dimension value every group can carry (ASCII, not blank); the name is in
        # the log line as metadata (EMF metadata is logged, not a dimension).
        group_metrics.add_dimension(name=METRIC_DIMENSION, value=metric_dimension_value(outcome.group))
        group_metrics.add_metadata(key="group", value=outcome.group)
        for name, unit, value in metric_values(outcome.totals):
            group_metrics.add_metric(name=name, unit=MetricUnit[unit], value=value)
        group_metrics.flush_metrics()
    percents = [
        outcome.totals.compliance_percent
        for outcome in result.with_status("recorded")
        if outcome.totals is not None and outcome.totals.compliance_percent is not None
    ]
    if percents:
        metrics.add_metric(
            name=METRIC_LOWEST_COMPLIANCE_PERCENT, unit=MetricUnit.Percent, value=float(min(percents))
        )
    metrics.add_metric(
        name="ComplianceGroupsRecorded", unit=MetricUnit.Count, value=len(result.with_status("recorded"))
    )
    metrics.add_metric(
        name="ComplianceGroupsFailed",
        unit=MetricUnit.Count,
        value=len(result.with_status("failed")) if final else 0,
    )


def _plan_summary(planned: PlanResult) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "ok": True,
        "snapshotId": planned.snapshot_id,
        "source": planned.source,
        "planned": {
            "groups": planned.groups,
            "batches": planned.batches,
            "sent": planned.sent,
            "refused": planned.refused,
            "deadline": planned.deadline,
            "replanned": planned.replanned,
            "digestSent": planned.digest_sent,
        },
    }
    if planned.finished is not None:
        summary["digestMessageId"] = planned.finished.message_id
    return summary


def _summary(result: RunResult) -> dict[str, Any]:
    groups = []
    for outcome in result.outcomes:
        totals = outcome.totals
        entry: dict[str, Any] = {"group": outcome.group, "status": outcome.status}
        if totals is not None:
            percent = totals.compliance_percent
            change = totals.compliance_change
            entry.update(
                {
                    "instances": totals.instances,
                    "nonCompliantInstances": totals.non_compliant_instances,
                    "compliancePercent": None if percent is None else float(percent),
                    "complianceChange": None if change is None else float(change),
                }
            )
        if outcome.error:
            entry["error"] = outcome.error
        logger.info("group compliance", extra=entry)
        groups.append(entry)
    return {
        "ok": result.ok,
        "snapshotId": result.snapshot_id,
        "source": result.source,
        "groups": groups,
        "digestMessageId": result.message_id,
    }


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, default_reporter(), context.get_remaining_time_in_millis, events=default_events())
