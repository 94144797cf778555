"""The events a member stack publishes on its account's default EventBridge bus (docs/events.md).

Source ``tagpatch``; one detail-type per kind of news: "Group Reconciled", "Group Refused",
"Run Result", "Compliance Snapshot". Every detail carries ``schemaVersion`` (:data:`SCHEMA_VERSION`),
``account``, ``region``, ``stack`` and ``group``, then its figures. An additive change (a new field)
keeps the version; a breaking one (a field removed, renamed or retyped) bumps it. Consumers ignore
fields they do not know (these models do: :class:`~tagpatch.models.base.Model` ignores them).

:class:`EventSink` is the port the handlers publish through; the adapter is
:mod:`tagpatch.adapters.member_events`. Publishing is best effort: a sink never raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import Field, StringConstraints

from tagpatch.models.base import Model

SOURCE = "tagpatch"
SCHEMA_VERSION: Literal["1"] = "1"

GROUP_RECONCILED = "Group Reconciled"
GROUP_REFUSED = "Group Refused"
RUN_RESULT = "Run Result"
COMPLIANCE_SNAPSHOT = "Compliance Snapshot"

#: Reconciler outcomes published as "Group Reconciled" and as "Group Refused"; the others (a dry
#: run, a deferred or handed-on group, a failure that SQS retries) are not news yet.
RECONCILED_STATUSES = ("converged", "unchanged")
REFUSED_STATUSES = ("refused", "rejected", "unplaced")

Text = Annotated[str, StringConstraints(min_length=1)]
Count = Annotated[int, Field(ge=0)]


@dataclass(frozen=True)
class Origin:
    """Where the events come from: the member's account, region and stack."""

    account: str
    region: str
    stack: str


class MemberEventDetail(Model):
    """What every detail carries."""

    detail_type: ClassVar[str]

    schema_version: Literal["1"] = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    account: Annotated[str, StringConstraints(pattern=r"^\d{12}\Z")]
    region: Text
    stack: Text
    group: Text

    def detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class WindowRef(Model):
    """One role of a group (install, scan, ...) and the maintenance window it runs in."""

    role: Text
    window_id: str = Field(alias="windowId")
    #: the shared window's place (schedule slot); "" for a window of the group's own
    place: str = ""


class GroupReconciled(MemberEventDetail):
    detail_type: ClassVar[str] = GROUP_RECONCILED

    status: Literal["converged", "unchanged"]
    #: SSM writes this reconcile made (0 when unchanged)
    actions: Count
    #: per role, its window as the reconciler recorded it (empty when not known)
    windows: list[WindowRef] = Field(default_factory=list)


class GroupRefused(MemberEventDetail):
    detail_type: ClassVar[str] = GROUP_REFUSED

    status: Literal["refused", "rejected", "unplaced"]
    reasons: list[str]


class RunResult(MemberEventDetail):
    detail_type: ClassVar[str] = RUN_RESULT

    command_id: Text = Field(alias="commandId")
    status: Text
    #: instances per Run Command status, as the collector knows them when the command ends
    instances: dict[str, Count]
    failed_instances: Count = Field(alias="failedInstances")


class ComplianceSnapshot(MemberEventDetail):
    detail_type: ClassVar[str] = COMPLIANCE_SNAPSHOT

    snapshot_id: Text = Field(alias="snapshotId")
    compliant_instances: Count = Field(alias="compliantInstances")
    non_compliant_instances: Count = Field(alias="nonCompliantInstances")
    instances: Count
    compliance_percent: float | None = Field(alias="compliancePercent")


DETAIL_MODELS: dict[str, type[MemberEventDetail]] = {
    model.detail_type: model for model in (GroupReconciled, GroupRefused, RunResult, ComplianceSnapshot)
}


def parse_detail(detail_type: str, detail: Mapping[str, Any]) -> MemberEventDetail:
    """The detail of a member event, validated (raises pydantic's ValidationError, KeyError for an
    unknown detail-type)."""
    return DETAIL_MODELS[detail_type].model_validate(detail)


class EventSink(Protocol):
    """Publishes member events; never raises (a failure is logged and counted by the sink)."""

    origin: Origin
    #: False: nothing is published (the caller need not even build the events)
    enabled: bool

    def publish(self, details: Sequence[MemberEventDetail]) -> None: ...


class NoEvents:
    """The sink of a stack that does not publish (``PublishEvents=false``), and of tests."""

    enabled = False

    def __init__(self, origin: Origin | None = None) -> None:
        self.origin = origin or Origin("000000000000", "none", "none")

    def publish(self, details: Sequence[MemberEventDetail]) -> None:
        return None


# --- builders ------------------------------------------------------------------------------------
def _where(origin: Origin, group: str) -> dict[str, Any]:
    return {"account": origin.account, "region": origin.region, "stack": origin.stack, "group": group}


def reconcile_event(
    origin: Origin,
    group: str,
    status: str,
    *,
    actions: int = 0,
    reasons: Sequence[str] = (),
    windows: Mapping[str, Mapping[str, str]] | None = None,
) -> MemberEventDetail | None:
    """The event of one reconciler outcome; None for an outcome that is not published."""
    if status in RECONCILED_STATUSES:
        return GroupReconciled.model_validate(
            {
                **_where(origin, group),
                "status": status,
                "actions": actions,
                "windows": [
                    {"role": role, "windowId": ids.get("window_id", ""), "place": ids.get("place", "")}
                    for role, ids in sorted((windows or {}).items())
                ],
            }
        )
    if status in REFUSED_STATUSES:
        return GroupRefused.model_validate(
            {**_where(origin, group), "status": status, "reasons": list(reasons)}
        )
    return None


def run_result_event(
    origin: Origin, group: str, *, command_id: str, status: str, instances: Mapping[str, int], failed: int
) -> RunResult:
    return RunResult.model_validate(
        {
            **_where(origin, group),
            "commandId": command_id,
            "status": status,
            "instances": {name: count for name, count in sorted(instances.items()) if count},
            "failedInstances": failed,
        }
    )


def compliance_event(
    origin: Origin,
    group: str,
    snapshot_id: str,
    *,
    instances: int,
    compliant: int,
    percent: Decimal | float | None,
) -> ComplianceSnapshot:
    return ComplianceSnapshot.model_validate(
        {
            **_where(origin, group),
            "snapshotId": snapshot_id,
            "compliantInstances": compliant,
            "nonCompliantInstances": max(0, instances - compliant),
            "instances": instances,
            "compliancePercent": None if percent is None else float(percent),
        }
    )
