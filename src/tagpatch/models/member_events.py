"""The events a member stack publishes on its account's default EventBridge bus (docs/events.md).

Source ``tagpatch``; one detail-type per kind of news: "Group Reconciled", "Group Refused",
"Run Result", "Compliance Snapshot", and "Member Heartbeat" (once per daily compliance run, so a
healthy member with no news is not taken for a silent one). Every detail carries ``schemaVersion``
(:data:`SCHEMA_VERSION`), ``tagpatchVersion`` (the member's TagPatch, :data:`tagpatch.__version__`),
``account``, ``region`` and ``stack``; every one but the heartbeat also ``group``; then its figures.
An additive change (a new field, a new detail-type) keeps the version; a breaking one (a field
removed, renamed or retyped) bumps it. Consumers ignore fields they do not know (these models do:
:class:`~tagpatch.models.base.Model` ignores them).

:class:`EventSink` is the port the handlers publish through; the adapter is
:mod:`tagpatch.adapters.member_events`. Publishing is best effort: a sink never raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import ConfigDict, Field, StringConstraints

from tagpatch import __version__
from tagpatch.models.base import Model

SOURCE = "tagpatch"
SCHEMA_VERSION: Literal["1"] = "1"

GROUP_RECONCILED = "Group Reconciled"
GROUP_REFUSED = "Group Refused"
RUN_RESULT = "Run Result"
COMPLIANCE_SNAPSHOT = "Compliance Snapshot"
MEMBER_HEARTBEAT = "Member Heartbeat"

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

    # Built on first use, not at import: a function builds only the events it publishes (the
    # reporter's batches never build a heartbeat), which keeps them out of every cold start.
    model_config = ConfigDict(defer_build=True)

    detail_type: ClassVar[str]

    schema_version: Literal["1"] = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    #: the member's TagPatch version (the builders below set :data:`tagpatch.__version__`); "" from a
    #: member older than the field
    tagpatch_version: str = Field(default="", alias="tagpatchVersion")
    account: Annotated[str, StringConstraints(pattern=r"^\d{12}\Z")]
    region: Text
    stack: Text

    def detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class GroupEventDetail(MemberEventDetail):
    """The news of one group."""

    group: Text


class WindowRef(Model):
    """One role of a group (install, scan, ...) and the maintenance window it runs in."""

    role: Text
    window_id: str = Field(alias="windowId")
    #: the shared window's place (schedule slot); "" for a window of the group's own
    place: str = ""


class GroupReconciled(GroupEventDetail):
    detail_type: ClassVar[str] = GROUP_RECONCILED

    status: Literal["converged", "unchanged"]
    #: SSM writes this reconcile made (0 when unchanged)
    actions: Count
    #: per role, its window as the reconciler recorded it (empty when not known)
    windows: list[WindowRef] = Field(default_factory=list)


class GroupRefused(GroupEventDetail):
    detail_type: ClassVar[str] = GROUP_REFUSED

    status: Literal["refused", "rejected", "unplaced"]
    reasons: list[str]


class RunResult(GroupEventDetail):
    detail_type: ClassVar[str] = RUN_RESULT

    command_id: Text = Field(alias="commandId")
    status: Text
    #: instances per Run Command status, as the collector knows them when the command ends
    instances: dict[str, Count]
    failed_instances: Count = Field(alias="failedInstances")


class ComplianceSnapshot(GroupEventDetail):
    detail_type: ClassVar[str] = COMPLIANCE_SNAPSHOT

    snapshot_id: Text = Field(alias="snapshotId")
    compliant_instances: Count = Field(alias="compliantInstances")
    non_compliant_instances: Count = Field(alias="nonCompliantInstances")
    instances: Count
    compliance_percent: float | None = Field(alias="compliancePercent")


class MemberHeartbeat(MemberEventDetail):
    """The member is alive: published once per daily compliance run, news or not."""

    detail_type: ClassVar[str] = MEMBER_HEARTBEAT

    #: groups the member manages (its groups table)
    groups: Count
    #: those groups per reconciler status (``converged``, ``refused``, ``empty``, ...)
    groups_by_status: dict[str, Count] = Field(alias="groupsByStatus")


DETAIL_MODELS: dict[str, type[MemberEventDetail]] = {
    model.detail_type: model
    for model in (GroupReconciled, GroupRefused, RunResult, ComplianceSnapshot, MemberHeartbeat)
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
def _origin(origin: Origin) -> dict[str, Any]:
    return {
        "tagpatchVersion": __version__,
        "account": origin.account,
        "region": origin.region,
        "stack": origin.stack,
    }


def _where(origin: Origin, group: str) -> dict[str, Any]:
    return {**_origin(origin), "group": group}


def heartbeat_event(origin: Origin, statuses: Mapping[str, int]) -> MemberHeartbeat:
    """The member's heartbeat: its managed groups, ``statuses`` counting them per status."""
    counts = {status: count for status, count in sorted(statuses.items()) if count}
    return MemberHeartbeat.model_validate(
        {
            **_origin(origin),
            "groups": sum(counts.values()),
            "groupsByStatus": counts,
        }
    )


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
