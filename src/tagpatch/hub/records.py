"""The hub's two tables: their keys and what their items mean (docs/organization.md).

``HubStateTable`` (``pk`` HASH, ``sk`` RANGE, strings) holds the *current* state, one item per member
stack and one per group; a Scan of it is the whole organization::

    pk = <account>#<region>   sk = #member          a member stack: version, last event, OU
    pk = <account>#<region>   sk = group#<group>    a group: its latest snapshot, run, reconcile
    pk = #hub                 sk = digest#...       the hub's own bookkeeping (digests)

``HubHistoryTable`` (``pk`` HASH, ``sk`` RANGE, TTL ``expiresAt``) holds every snapshot and run, one
partition per kind and UTC day, sorted by time, so "the last 30 days" is 30 Queries whatever the
size of the organization::

    pk = snapshot#<YYYY-MM-DD>   sk = <time>#<account>#<region>#<group>#<snapshot id>
    pk = run#<YYYY-MM-DD>        sk = <time>#<account>#<region>#<group>#<command id>

Every fact carries its *order*: the event's ``time`` then its ``id`` (``<time>#<event id>``). A
group's facet (``compliance``, ``run``, ``reconcile``) and a member's ``lastEvent`` are replaced only
by a fact of a greater order, so duplicates and reordering leave the same item whatever the
arrival order; a history item is written once (its key is the fact itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

MEMBER_SK: Final = "#member"
GROUP_SK_PREFIX: Final = "group#"
HUB_PK: Final = "#hub"
SNAPSHOT: Final = "snapshot"
RUN: Final = "run"
HISTORY_KINDS: Final = (SNAPSHOT, RUN)


def member_pk(account: str, region: str) -> str:
    return f"{account}#{region}"


def group_sk(group: str) -> str:
    return f"{GROUP_SK_PREFIX}{group}"


def order_of(time: str, event_id: str) -> str:
    """The order of a fact: ISO time first (``2026-12-02T05:30:00Z``), the event id breaks ties."""
    return f"{time}#{event_id}"


def history_pk(kind: str, time: str) -> str:
    if kind not in HISTORY_KINDS:
        raise ValueError(f"unknown history kind {kind!r}")
    return f"{kind}#{time[:10]}"


def history_sk(time: str, account: str, region: str, group: str, fact_id: str) -> str:
    return f"{time}#{account}#{region}#{group}#{fact_id}"


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _float(value: Any) -> float | None:
    return None if value is None else float(Decimal(str(value)))


@dataclass(frozen=True)
class MemberState:
    """One member stack (an account and region running TagPatch)."""

    account: str
    region: str
    stack: str = ""
    version: str = ""  # the member's TagPatch version ("" from a member too old to say)
    schema_version: str = ""
    first_seen_at: str = ""
    last_event_at: str = ""
    last_event_type: str = ""
    groups: int | None = None  # as its last heartbeat counted them
    ou_id: str = ""
    ou_name: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> MemberState:
        account, _, region = str(item["pk"]).partition("#")
        return cls(
            account=account,
            region=region,
            stack=str(item.get("stack", "")),
            version=str(item.get("version", "")),
            schema_version=str(item.get("schemaVersion", "")),
            first_seen_at=str(item.get("firstSeenAt", "")),
            last_event_at=str(item.get("lastEventAt", "")),
            last_event_type=str(item.get("lastEventType", "")),
            groups=None if item.get("groups") is None else _int(item["groups"]),
            ou_id=str(item.get("ouId", "")),
            ou_name=str(item.get("ouName", "")),
        )


@dataclass(frozen=True)
class ComplianceFacet:
    at: str
    snapshot_id: str
    instances: int
    compliant: int
    non_compliant: int
    percent: float | None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ComplianceFacet:
        return cls(
            at=str(item["at"]),
            snapshot_id=str(item.get("snapshotId", "")),
            instances=_int(item.get("instances")),
            compliant=_int(item.get("compliant")),
            non_compliant=_int(item.get("nonCompliant")),
            percent=_float(item.get("percent")),
        )


@dataclass(frozen=True)
class RunFacet:
    at: str
    command_id: str
    status: str
    failed: int
    instances: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> RunFacet:
        return cls(
            at=str(item["at"]),
            command_id=str(item.get("commandId", "")),
            status=str(item.get("status", "")),
            failed=_int(item.get("failed")),
            instances={str(k): _int(v) for k, v in dict(item.get("instances") or {}).items()},
        )


@dataclass(frozen=True)
class ReconcileFacet:
    at: str
    status: str
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ReconcileFacet:
        return cls(
            at=str(item["at"]),
            status=str(item.get("status", "")),
            reasons=tuple(str(r) for r in item.get("reasons") or ()),
        )


@dataclass(frozen=True)
class GroupState:
    """One group of one member: the newest fact of each kind the hub has."""

    account: str
    region: str
    group: str
    compliance: ComplianceFacet | None = None
    run: RunFacet | None = None
    reconcile: ReconcileFacet | None = None
    #: the time of the first snapshot of the current unbroken run of non-compliant ones ("" when
    #: the latest snapshot is compliant)
    non_compliant_since: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> GroupState:
        account, _, region = str(item["pk"]).partition("#")
        return cls(
            account=account,
            region=region,
            group=str(item["sk"])[len(GROUP_SK_PREFIX) :],
            compliance=ComplianceFacet.from_item(item["compliance"]) if item.get("compliance") else None,
            run=RunFacet.from_item(item["run"]) if item.get("run") else None,
            reconcile=ReconcileFacet.from_item(item["reconcile"]) if item.get("reconcile") else None,
            non_compliant_since=str(item.get("nonCompliantSince", "")),
        )


@dataclass(frozen=True)
class HistoryRow:
    """One snapshot (kind ``snapshot``) or one run (kind ``run``) from the history table."""

    kind: str
    at: str
    account: str
    region: str
    group: str
    fact_id: str  # the snapshot id or the command id
    instances: int = 0
    compliant: int = 0
    non_compliant: int = 0
    percent: float | None = None
    status: str = ""  # a run's status
    failed: int = 0  # a run's failed instances

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> HistoryRow:
        kind = str(item["pk"]).partition("#")[0]
        at, account, region, rest = str(item["sk"]).split("#", 3)
        group, _, fact_id = rest.rpartition("#")
        return cls(
            kind=kind,
            at=at,
            account=account,
            region=region,
            group=group,
            fact_id=fact_id,
            instances=_int(item.get("instances")),
            compliant=_int(item.get("compliant")),
            non_compliant=_int(item.get("nonCompliant")),
            percent=_float(item.get("percent")),
            status=str(item.get("status", "")),
            failed=_int(item.get("failed")),
        )


def is_member_item(item: Mapping[str, Any]) -> bool:
    return item.get("sk") == MEMBER_SK


def is_group_item(item: Mapping[str, Any]) -> bool:
    return str(item.get("sk", "")).startswith(GROUP_SK_PREFIX) and item.get("pk") != HUB_PK


# --- added with the hub's writer (keys above unchanged) ------------------------------------------
#: attributes the writer keeps for ordering (the readers need not know them)
LAST_EVENT_ORDER: Final = "lastEventOrder"
HEARTBEAT_ORDER: Final = "heartbeatOrder"
FACET_ORDER: Final = "order"  # inside each facet map
NC_RUN: Final = "ncRun"  # a group's unbroken run of non-compliant snapshots: their orders, sorted
LAST_COMPLIANT_ORDER: Final = "lastCompliantOrder"
#: the hub's own items (pk ``#hub``): the last digest's figures, in chunks of one generation, the
#: pointer to that generation, and one claim per digest schedule event
DIGEST_LAST_SK: Final = "digest#last"
DIGEST_STATE_PREFIX: Final = "digest#state#"
DIGEST_CLAIM_PREFIX: Final = "digest#claim#"


def digest_state_sk(generation: str, chunk: int) -> str:
    return f"{DIGEST_STATE_PREFIX}{generation}#{chunk:05d}"
