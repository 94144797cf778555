"""Status collector Lambda: SQS batches of Run Command notifications -> CommandStatusTable, alerts.

Returns a partial batch response (``ReportBatchItemFailures``): exactly the records that could not
be used (malformed, or their write failed) are reported, so SQS redelivers only them and, after
the queue's ``maxReceiveCount``, moves them to the DLQ.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

# Powertools' parser package, ~100 models, is not imported on this path: the envelopes are our own
# small pydantic models (tests/unit/test_cold_start.py checks).
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.adapters.alerts import AlertPublisher, FlushQueue
from tagpatch.adapters.commands import CommandStatusTable
from tagpatch.adapters.group_names import GroupNames
from tagpatch.adapters.member_events import default_sink
from tagpatch.adapters.ssm_commands import SsmCommandLookup
from tagpatch.collector.config import load_collector_config
from tagpatch.collector.core import CollectorBatch, StatusCollector
from tagpatch.models.notifications import (
    AlertFlush,
    CommandNotification,
    MalformedMessage,
    parse_record,
)
from tagpatch.observability import logger, metrics, trace_handler


@cache
def default_collector() -> StatusCollector:
    config = load_collector_config(os.environ)
    return StatusCollector(
        config,
        CommandStatusTable(config.table_name),
        AlertPublisher(config.alert_topic_arn),
        FlushQueue(config.status_queue_url),
        SsmCommandLookup(),
        names=GroupNames(config.groups_table_name),
        events=default_sink(),
    )


def _record_handler(batch: CollectorBatch) -> Any:
    def process(record: SQSRecord) -> None:
        try:
            message = parse_record(record.raw_event)
        except MalformedMessage as error:
            logger.warning(
                "malformed message refused; it goes to the DLQ after the queue's maxReceiveCount",
                extra={
                    "messageId": record.raw_event.get("messageId"),
                    "reason": error.reason,
                    "detail": error.detail,
                    "receiveCount": record.raw_event.get("attributes", {}).get("ApproximateReceiveCount"),
                },
            )
            batch.report.counters["MalformedMessages"] += 1
            raise
        if isinstance(message, AlertFlush):
            batch.add_flush(record.message_id, message)
        elif isinstance(message, CommandNotification):
            batch.add_command(record.message_id, message)
        else:
            batch.add_invocation(record.message_id, message)

    return process


def handle(event: dict[str, Any], collector: StatusCollector) -> dict[str, Any]:
    """Process one SQS batch; the partial batch response."""
    records = event.get("Records") if isinstance(event, dict) else None
    batch = collector.start_batch()
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=records if isinstance(records, list) else [], handler=_record_handler(batch)):
        processor.process()
    failures: list[dict[str, Any]] = [dict(item) for item in processor.response()["batchItemFailures"]]
    report = batch.finish()
    reported = {failure["itemIdentifier"] for failure in failures}
    for message_id in report.failed_message_ids:
        if message_id not in reported:
            failures.append({"itemIdentifier": message_id})
            reported.add(message_id)
    report.counters["RecordFailures"] = len(failures)
    for name, value in sorted(report.counters.items()):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info(
        "batch processed",
        extra={"records": len(processor.records), "failures": len(failures), **dict(report.counters)},
    )
    return {"batchItemFailures": failures}


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, default_collector())
