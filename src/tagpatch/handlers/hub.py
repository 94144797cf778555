"""Hub store Lambda (HubStoreFunction): member events from HubQueue into the hub's tables.

An SQS event (batch size 10, ``ReportBatchItemFailures``); each body is one EventBridge event a
member forwarded (:func:`tagpatch.hub.core.parse_event`). The batch is stored newest event first,
so a member's events in one batch write its member item once. A record that is refused (malformed,
or naming another account or region than its sender) or whose writes fail is reported in the
partial batch response: SQS delivers it again and, after HubQueue's ``maxReceiveCount``, moves it to
HubDLQ. Metrics (namespace TagPatchHub): ``HubEventsStored``, ``HubEventsDuplicate``,
``HubEventsRejected``, ``HubEventsUnsupported``.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.adapters.clients import set_time_left
from tagpatch.adapters.hub_organizations import OrganizationGateway
from tagpatch.adapters.hub_store import HubStore
from tagpatch.hub.config import load_hub_store_config
from tagpatch.hub.core import DUPLICATE, UNSUPPORTED, Fact, HubRecorder, Rejected, parse_event
from tagpatch.hub.metrics import hub_metrics
from tagpatch.observability import logger, trace_handler

STORED_METRIC = "HubEventsStored"
DUPLICATE_METRIC = "HubEventsDuplicate"
REJECTED_METRIC = "HubEventsRejected"
UNSUPPORTED_METRIC = "HubEventsUnsupported"


class InvalidEvent(ValueError):
    """Not an SQS event."""


@cache
def default_recorder() -> HubRecorder:
    config = load_hub_store_config(os.environ)
    store = HubStore(config.state_table_name, config.history_table_name)
    return HubRecorder(config, store, OrganizationGateway() if config.resolve_ous else None)


def handle(event: dict[str, Any], recorder: HubRecorder) -> dict[str, Any]:
    """Store one SQS event's member events; the partial batch response."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("messageId"), str) and isinstance(r.get("body"), str)
        for r in records
    ):
        logger.error("event refused: Records is not a list of SQS records (messageId, body)")
        raise InvalidEvent("not an SQS event: Records must be a list of records with a messageId and a body")

    parsed: dict[str, Fact | Rejected] = {}
    for record in records:
        try:
            parsed[record["messageId"]] = parse_event(record["body"])
        except Rejected as error:
            parsed[record["messageId"]] = error

    def newest_first(record: dict[str, Any]) -> str:
        fact = parsed[record["messageId"]]
        return fact.order if isinstance(fact, Fact) else "~"  # refusals first: they cost nothing

    counts: Counter[str] = Counter()

    def process(record: SQSRecord) -> None:
        fact = parsed[record.message_id]
        if isinstance(fact, Rejected):
            counts[REJECTED_METRIC] += 1
            logger.error(
                "member event refused; it goes to HubDLQ after the queue's maxReceiveCount",
                extra={
                    "messageId": record.message_id,
                    "reason": str(fact),
                    "receiveCount": record.raw_event.get("attributes", {}).get("ApproximateReceiveCount"),
                },
            )
            raise fact
        outcome = recorder.store(fact)
        if outcome.kind == UNSUPPORTED:
            counts[UNSUPPORTED_METRIC] += 1
            logger.info(
                "member event of a schema or type this hub does not know: only the member's last event "
                "is refreshed",
                extra={"account": fact.account, "region": fact.region, "detailType": fact.detail_type},
            )
        elif outcome.status == DUPLICATE:
            counts[DUPLICATE_METRIC] += 1
        else:
            counts[STORED_METRIC] += 1

    ordered = sorted(records, key=newest_first, reverse=True)
    recorder.prime(fact for fact in parsed.values() if isinstance(fact, Fact))
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=ordered, handler=process):
        processor.process()
    for name in (STORED_METRIC, DUPLICATE_METRIC, REJECTED_METRIC, UNSUPPORTED_METRIC):
        hub_metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[name])
    failures = [dict(item) for item in processor.response()["batchItemFailures"]]
    return {"batchItemFailures": failures}


@logger.inject_lambda_context
@hub_metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    set_time_left(context.get_remaining_time_in_millis() / 1000)
    try:
        return handle(event, default_recorder())
    finally:
        set_time_left(None)
