"""Compliance reporter Lambda: the daily schedule, or an on-demand request for one group or all."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.adapters.compliance_store import ComplianceStore
from tagpatch.adapters.digest_topic import DigestTopic
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.patch_states import PatchStateGateway
from tagpatch.models.reporter_events import Invalid, OnDemandReport, ReporterScheduledEvent
from tagpatch.observability import logger, metrics, trace_handler
from tagpatch.reporter.compliance import (
    METRIC_DIMENSION,
    METRIC_LOWEST_COMPLIANCE_PERCENT,
    metric_dimension_value,
    metric_values,
)
from tagpatch.reporter.config import load_reporter_config
from tagpatch.reporter.core import ComplianceReporter, ReportRequest, RunResult


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
    )


def handle(
    event: dict[str, Any],
    reporter: ComplianceReporter,
    remaining_ms: Callable[[], int] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Run one compliance snapshot for ``event``; the summary of what was recorded."""
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
    result = reporter.run(request, remaining_ms)
    _emit_metrics(result)
    return _summary(result)


def _emit_metrics(result: RunResult) -> None:
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
        name="ComplianceGroupsFailed", unit=MetricUnit.Count, value=len(result.with_status("failed"))
    )


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
    return handle(event, default_reporter(), context.get_remaining_time_in_millis)
