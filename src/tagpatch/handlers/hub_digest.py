"""Hub digest Lambda (HubDigestFunction): the organization's metrics, and its digest.

The two schedule rules pass a constant Input:

* ``{"action": "check"}`` (HubCheckSchedule, hourly): one Scan of HubStateTable, then the metrics
  (namespace TagPatchHub, no dimension): OrgCompliancePercent, SilentMembers, GroupsBelowThreshold, Members,
  Groups; the alarms watch them;
* ``{"action": "digest"}`` (HubDigestSchedule): the same, then the organization digest
  (:mod:`tagpatch.hub.digest`) on HubTopic, and its figures remembered for the next one.

One digest per schedule event: it is claimed first (a conditional PutItem under ``pk = #hub``), by
the event's ``id`` when the input carries one, else by the hour it runs in (a constant Input names
no event; a daily schedule's redelivery comes within the hour), so a redelivered event sends
nothing twice. A failed publish drops the claim (the retry sends it); a claimant that died holds it
for :data:`CLAIM_LEASE` seconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.adapters.digest_topic import DigestTopic
from tagpatch.adapters.hub_store import HubStore
from tagpatch.hub.config import HubDigestConfig, load_hub_digest_config
from tagpatch.hub.digest import compute, read_items, remembered, render
from tagpatch.hub.metrics import hub_metrics
from tagpatch.hub.ports import DigestSink, HubState
from tagpatch.observability import logger, trace_handler

ACTIONS: Final = ("check", "digest")
CLAIM_LEASE: Final = 300


class InvalidEvent(ValueError):
    """Not ``{"action": "check" | "digest"}``."""


@cache
def default_config() -> HubDigestConfig:
    return load_hub_digest_config(os.environ)


def claim_of(event: dict[str, Any], now: datetime) -> str:
    """The claim of a digest event: its id, or the hour it runs in."""
    raw = event.get("id")
    if isinstance(raw, str) and raw:
        return re.sub(r"[^A-Za-z0-9._:-]", "-", raw)[:128]
    return now.strftime("slot-%Y-%m-%dT%H")


def handle(
    event: dict[str, Any],
    config: HubDigestConfig,
    state: HubState,
    topic: DigestSink | None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    action = event.get("action") if isinstance(event, dict) else None
    if action not in ACTIONS:
        logger.error("event refused: not {'action': 'check' | 'digest'}", extra={"action": str(action)[:40]})
        raise InvalidEvent(f"unexpected action {action!r}: the schedule rules pass 'check' or 'digest'")
    at = now()
    view = read_items(state.scan())
    figures = compute(
        view, at, threshold=config.compliance_threshold, silent_after_hours=config.silent_after_hours
    )
    for name, unit, value in figures.metrics():
        hub_metrics.add_metric(name=name, unit=MetricUnit[unit], value=value)
    summary: dict[str, Any] = {
        "action": action,
        "percent": figures.percent,
        "members": figures.members,
        "groups": figures.groups,
        "silentMembers": len(figures.silent),
        "groupsBelowThreshold": figures.below_threshold,
    }
    logger.info("organization figures", extra=summary)
    if action == "check":
        return summary
    if topic is None:
        raise InvalidEvent("a digest needs TAGPATCH_HUB_TOPIC_ARN")
    claim = claim_of(event, at)
    stamp = at.timestamp()
    if not state.claim_digest(claim, now=stamp, lease_until=stamp + CLAIM_LEASE):
        logger.info("digest already sent (or being sent) for this schedule event", extra={"claim": claim})
        return {**summary, "sent": False, "claim": claim}
    subject, body = render(figures)
    try:
        message_id = topic.publish(subject, body)
    except Exception:
        try:
            state.release_digest(claim)
        except Exception:
            logger.exception("digest claim not released; it lapses", extra={"claim": claim})
        raise
    state.digest_sent(claim, message_id)
    state.remember_digest(claim, remembered(figures), view.pointer)
    logger.info("organization digest sent", extra={"claim": claim, "messageId": message_id})
    return {**summary, "sent": True, "claim": claim, "messageId": message_id}


@logger.inject_lambda_context
@hub_metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = default_config()
    topic = DigestTopic(config.topic_arn) if config.topic_arn else None
    return handle(event, config, HubStore(config.state_table_name), topic)
