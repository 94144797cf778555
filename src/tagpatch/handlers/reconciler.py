"""Reconciler Lambda: tag changes, the schedule, settings changes and direct requests."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagpatch.adapters.clients import set_time_left
from tagpatch.adapters.ec2 import Ec2Gateway
from tagpatch.adapters.groups import GroupsRepository
from tagpatch.adapters.ssm import SsmGateway
from tagpatch.models.reconciler_events import (
    Invalid,
    OnDemandRequest,
    ParameterChangeEvent,
    ScheduledEvent,
    TagChangeEvent,
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


class InvalidEvent(ValueError):
    """The event is not one the reconciler understands; raised so that it ends in the DLQ."""


@cache
def default_reconciler() -> Reconciler:
    config = load_reconciler_config(os.environ)
    return Reconciler(config, SsmGateway(), GroupsRepository(config.groups_table_name), Ec2Gateway())


def handle(
    event: dict[str, Any], reconciler: Reconciler, context: LambdaContext | None = None
) -> dict[str, Any]:
    """Route ``event`` to the reconciler; the summary of what was done.

    With ``context``, nothing is started that could not finish before the invocation ends: no
    group in the scheduled run, no SSM write, no attempt of any AWS call (retries included).
    """
    if context is None:
        return _route(event, reconciler)
    left = context.get_remaining_time_in_millis() / 1000
    reconciler.deadline = reconciler.clock() + left
    set_time_left(left)
    try:
        return _route(event, reconciler)
    finally:
        reconciler.deadline = None
        set_time_left(None)


def _route(event: dict[str, Any], reconciler: Reconciler) -> dict[str, Any]:
    source = event.get("source") if isinstance(event, dict) else None
    try:
        if source == "aws.tag":
            outcomes = _on_tag_change(TagChangeEvent.parse(event), reconciler)
        elif source in ("aws.events", "aws.scheduler"):
            ScheduledEvent.parse(event)
            outcomes = reconciler.reconcile_all()
        elif source == "aws.ssm":
            outcomes = _on_settings_change(ParameterChangeEvent.parse(event), reconciler)
        elif source is None:
            return _on_demand(event, reconciler)
        else:
            raise InvalidEvent(f"unexpected event source {source!r}")
    except Invalid as error:
        errors = [{"loc": loc, "msg": msg} for loc, msg in error.problems]
        logger.error("event refused: not the expected shape", extra={"source": source, "errors": errors})
        raise InvalidEvent(f"event from {source!r} does not have the expected shape: {error}") from error
    return _summary(outcomes)


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


def _on_demand(event: dict[str, Any], reconciler: Reconciler) -> dict[str, Any]:
    try:
        request = OnDemandRequest.parse(event)
    except ValueError as error:
        logger.error("request refused", extra={"error": str(error)})
        return {"ok": False, "error": f"invalid request: {error}"}
    if request.sweep:
        if request.group is not None or request.dry_run:
            return {"ok": False, "error": "sweep takes no group and no dryRun"}
        return _summary(reconciler.reconcile_pending())
    if request.group is None:
        if request.dry_run:
            return {"ok": False, "error": "dryRun needs a group"}
        return _summary(reconciler.reconcile_all())
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
    return {
        "ok": all(outcome.status not in ("failed", "not_reached") for outcome in outcomes),
        "groups": [
            {"group": o.group, "status": o.status, "actions": o.actions, "reasons": o.reasons}
            for o in outcomes
        ],
    }


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, default_reconciler(), context)
