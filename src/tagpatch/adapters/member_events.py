"""Member events on the account's default EventBridge bus (``events:PutEvents``), best effort.

PutEvents takes at most 10 entries and 256 KiB per request (an entry's size: its Source,
DetailType and Detail in UTF-8 bytes, plus Resources and Time when given; the EventBridge user
guide, "Calculating PutEvents event entry size"). Entries are batched within both limits. Entries
that the answer lists as failed (``FailedEntryCount``; throttling, an internal error) are sent once
more; what still fails, an entry too large to send, or a request that raised (its retries are
botocore's standard mode, bounded by the invocation's deadline) is logged as an error and counted
in the metric ``MemberEventsFailed``. Nothing here raises: publishing never fails the function's
main job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from tagpatch.adapters.clients import client
from tagpatch.models.member_events import SOURCE, EventSink, MemberEventDetail, NoEvents, Origin
from tagpatch.observability import logger, metrics

MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
FAILED_METRIC = "MemberEventsFailed"
PUBLISH_ENV = "TAGPATCH_PUBLISH_EVENTS"
ACCOUNT_ENV = "TAGPATCH_ACCOUNT_ID"
STACK_ENV = "TAGPATCH_STACK_NAME"


def entry_size(entry: Mapping[str, Any]) -> int:
    """PutEvents' size of one entry (the user guide's calculation)."""
    size = 14 if "Time" in entry else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key, "")).encode("utf-8"))
    size += sum(len(str(resource).encode("utf-8")) for resource in entry.get("Resources", ()))
    return size


def batches(entries: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``entries`` in order, in requests of at most 10 entries and 256 KiB (an entry larger than
    that on its own is not in any: the caller counts it as failed)."""
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        this = entry_size(entry)
        if this > MAX_REQUEST_BYTES:
            continue
        if current and (len(current) == MAX_ENTRIES or size + this > MAX_REQUEST_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(entry)
        size += this
    if current:
        out.append(current)
    return out


class MemberEvents:
    """An :class:`~tagpatch.models.member_events.EventSink` on the default bus of ``origin``'s account."""

    enabled = True

    def __init__(self, origin: Origin, events_client: Any | None = None) -> None:
        self.origin = origin
        self._events = events_client or client("events")

    def publish(self, details: Sequence[MemberEventDetail]) -> None:
        if not details:
            return
        try:
            failed = self._put([self._entry(detail) for detail in details])
        except Exception:  # never the function's failure
            logger.exception("member events not published", extra={"events": len(details)})
            failed = len(details)
        if failed:
            logger.error(
                "member events not published; they are lost (events are best effort)",
                extra={"failed": failed, "events": len(details)},
            )
            metrics.add_metric(name=FAILED_METRIC, unit=MetricUnit.Count, value=failed)

    @staticmethod
    def _entry(detail: MemberEventDetail) -> dict[str, Any]:
        return {
            "Source": SOURCE,
            "DetailType": detail.detail_type,
            "Detail": json.dumps(detail.detail(), separators=(",", ":"), sort_keys=True),
            "EventBusName": "default",
        }

    def _put(self, entries: list[dict[str, Any]]) -> int:
        """The number of entries not put."""
        sendable = batches(entries)
        failed = len(entries) - sum(len(batch) for batch in sendable)
        if failed:
            logger.error("member event larger than PutEvents takes; not sent", extra={"events": failed})
        for batch in sendable:
            retry = self._put_batch(batch)
            if retry:
                failed += len(self._put_batch(retry))
        return failed

    def _put_batch(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Put one request's entries; those the answer lists as failed."""
        response = self._events.put_events(Entries=batch)
        if not response.get("FailedEntryCount"):
            return []
        results = response.get("Entries", [])
        failed = [entry for entry, result in zip(batch, results, strict=False) if result.get("ErrorCode")]
        codes = sorted({str(result.get("ErrorCode")) for result in results if result.get("ErrorCode")})
        logger.warning("member events refused by PutEvents", extra={"failed": len(failed), "codes": codes})
        return failed


def publish_built(sink: EventSink | None, build: Callable[[EventSink], Sequence[MemberEventDetail]]) -> None:
    """Publish what ``build`` makes for ``sink``, if it is enabled; an error building them is logged and
    counted (``MemberEventsFailed``) like one publishing them: never raised."""
    if sink is None or not sink.enabled:
        return
    try:
        details = build(sink)
    except Exception:
        logger.exception("member events not built")
        metrics.add_metric(name=FAILED_METRIC, unit=MetricUnit.Count, value=1)
        return
    sink.publish(details)


def default_sink(environ: Mapping[str, str] | None = None) -> EventSink:
    """The stack's sink: :class:`MemberEvents` unless ``PublishEvents`` is "false" (or the
    function has no account to name, as outside a stack)."""
    env = os.environ if environ is None else environ
    origin = Origin(
        account=env.get(ACCOUNT_ENV, ""),
        region=env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", ""),
        stack=env.get(STACK_ENV, "") or env.get("STACK_NAME", ""),
    )
    if env.get(PUBLISH_ENV, "false") != "true" or not (origin.account and origin.region and origin.stack):
        return NoEvents(origin)
    return MemberEvents(origin)
