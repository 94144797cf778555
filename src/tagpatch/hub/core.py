"""The hub's store function: member events, as EventBridge delivers them to HubQueue, stored per
member stack and group (the layout is :mod:`tagpatch.hub.records`).

**Intake** (:func:`parse_event`). An SQS body is one EventBridge event (``id``, ``source``,
``detail-type``, ``account``, ``region``, ``time``, ``detail``). The envelope's ``account`` and
``region`` are EventBridge's (the sending account, checked against the hub bus policy): they are
authoritative, and a detail naming another account or region is :class:`Rejected` (the record is
reported as a batch item failure and ends in HubDLQ). A detail of ``schemaVersion`` "1", or of none
(a member older than the field), is read with :mod:`tagpatch.models.member_events` (unknown fields
ignored). An unknown ``schemaVersion`` or ``detail-type`` is an *unsupported* fact: it refreshes
only the member's last event and version.

**Storing** (:class:`HubRecorder`). Every fact has an order (:func:`~tagpatch.hub.records.order_of`:
time, then event id) and every write is conditional on it, so a duplicate or any arrival order
leaves the same items:

* the member item takes the newest event's stack, version and type (``lastEventOrder`` smaller);
  ``firstSeenAt`` is the earliest event's time; the heartbeat's figures have their own order
  (``heartbeatOrder``);
* a group's facet (``compliance``, ``run``, ``reconcile``) is replaced only by a greater ``order``;
* the group's unbroken run of non-compliant snapshots is kept as their orders (``ncRun``, after
  ``lastCompliantOrder``, the newest compliant one): ``nonCompliantSince`` is the first one's time.
  The newest snapshot extends or ends the run in the same write that replaces the facet; a late
  snapshot (older than the facet) is merged by :func:`merge_late_snapshot` and written back on the
  condition that the run is still as read (retried on a race);
* a snapshot and a run are written once to the history table (``attribute_not_exists``): a
  duplicate is counted (``HubEventsDuplicate``), not an error. The history item goes last, so an
  event whose processing failed after the state writes finds them done when it is redelivered.

API calls. The recorder remembers, for the life of the container, the highest order it knows each
member and facet to hold (orders only grow, so a remembered one is a lower bound): an event that is
not newer than that writes nothing to the member or facet. The handler stores a batch's events
newest first, so one member's events in a batch write the member item once. Per event, in the
common case: one UpdateItem (the member, for its batch's newest event), one UpdateItem (the group's
facet) and one PutItem (history, snapshots and runs).

Organizational units (``TAGPATCH_HUB_RESOLVE_OUS``): a member whose ``ouCheckedAt`` is missing or
older than a day is looked up (ListParents, DescribeOrganizationalUnit; once per account and day in
the container) and the answer written to the member item. A denied lookup is logged once and leaves
the OU empty; no lookup ever fails an event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from tagpatch.hub.config import HubStoreConfig
from tagpatch.hub.records import RUN, SNAPSHOT, order_of
from tagpatch.hub.state import (
    ComplianceState,
    HistoryEntry,
    MemberUpdate,
    MemberView,
    apply_snapshot,
    merge_late_snapshot,
)
from tagpatch.models.member_events import (
    COMPLIANCE_SNAPSHOT,
    DETAIL_MODELS,
    GROUP_RECONCILED,
    GROUP_REFUSED,
    MEMBER_HEARTBEAT,
    RUN_RESULT,
    SCHEMA_VERSION,
    SOURCE,
    ComplianceSnapshot,
    GroupEventDetail,
    GroupReconciled,
    GroupRefused,
    MemberEventDetail,
    MemberHeartbeat,
    RunResult,
)
from tagpatch.observability import logger

if TYPE_CHECKING:
    from tagpatch.hub.ports import HubStore, Organization

__all__ = [
    "ComplianceState",
    "Fact",
    "HistoryEntry",
    "HubRecorder",
    "MemberUpdate",
    "MemberView",
    "Rejected",
    "apply_snapshot",
    "merge_late_snapshot",
    "parse_event",
]

SECONDS_PER_DAY: Final = 86_400
OU_REFRESH: Final = timedelta(days=1)
OU_RETRY: Final = timedelta(hours=1)  # after a lookup failed (not denied): no other try before
RACE_ATTEMPTS: Final = 5
MAX_TEXT: Final = 256

# The kinds of fact (what a detail-type becomes in the hub).
RECONCILE: Final = "reconcile"
COMPLIANCE: Final = "compliance"
HEARTBEAT: Final = "heartbeat"
UNSUPPORTED: Final = "unsupported"
KIND_OF: Final = {
    GROUP_RECONCILED: RECONCILE,
    GROUP_REFUSED: RECONCILE,
    RUN_RESULT: RUN,
    COMPLIANCE_SNAPSHOT: COMPLIANCE,
    MEMBER_HEARTBEAT: HEARTBEAT,
}

# What :meth:`HubRecorder.store` did with a fact.
STORED: Final = "stored"
DUPLICATE: Final = "duplicate"


class Rejected(ValueError):
    """An event the hub refuses (malformed, or a detail naming another account or region)."""


@dataclass(frozen=True)
class Fact:
    """One member event as the hub stores it."""

    event_id: str
    account: str
    region: str
    time: str  # ISO 8601 UTC, seconds, "Z"
    detail_type: str
    kind: str
    stack: str = ""
    version: str = ""  # the member's TagPatch version ("" when the detail does not say)
    schema_version: str = ""  # as the detail says it ("" when it does not)
    detail: MemberEventDetail | None = None  # None: unsupported

    @property
    def order(self) -> str:
        return order_of(self.time, self.event_id)

    @property
    def group(self) -> str:
        return self.detail.group if isinstance(self.detail, GroupEventDetail) else ""


def _normal_time(value: Any) -> str:
    if not isinstance(value, str):
        raise Rejected("time: not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"time: not an ISO 8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise Rejected(f"time: no time zone: {value[:40]!r}")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(envelope: Mapping[str, Any], key: str) -> str:
    value = envelope.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise Rejected(f"{key}: missing, empty or not a string")
    return value


def _optional_text(detail: Mapping[str, Any], key: str) -> str:
    value = detail.get(key)
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def parse_event(body: str) -> Fact:
    """The fact an SQS body (one EventBridge event) tells; :class:`Rejected` with the reason."""
    try:
        envelope = json.loads(body)
    except ValueError:
        raise Rejected("body: not JSON") from None
    if not isinstance(envelope, dict):
        raise Rejected("body: not a JSON object")
    source = envelope.get("source")
    if source != SOURCE:
        raise Rejected(f"source: {str(source)[:40]!r}, not {SOURCE!r}")
    event_id, detail_type = _text(envelope, "id"), _text(envelope, "detail-type")
    account, region = _text(envelope, "account"), _text(envelope, "region")
    if not (account.isdigit() and len(account) == 12):
        raise Rejected(f"account: {account[:40]!r} is not an account id")
    time = _normal_time(envelope.get("time"))
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise Rejected("detail: not a JSON object")
    for key, authoritative in (("account", account), ("region", region)):
        if key in detail and detail[key] != authoritative:
            raise Rejected(
                f"detail.{key} {str(detail[key])[:40]!r} is not the sender's {authoritative!r} "
                "(the envelope's, set by EventBridge)"
            )
    schema = detail.get("schemaVersion")
    fact = Fact(
        event_id=event_id,
        account=account,
        region=region,
        time=time,
        detail_type=detail_type,
        kind=UNSUPPORTED,
        stack=_optional_text(detail, "stack"),
        version=_optional_text(detail, "tagpatchVersion"),
        schema_version=schema[:MAX_TEXT] if isinstance(schema, str) else "",
    )
    if schema not in (None, SCHEMA_VERSION) or detail_type not in DETAIL_MODELS:
        return fact
    try:
        parsed = DETAIL_MODELS[detail_type].model_validate(
            {**detail, "account": account, "region": region, "schemaVersion": SCHEMA_VERSION}
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise Rejected(f"detail: not a valid {detail_type!r} of schema 1: {problems}") from None
    return replace(fact, kind=KIND_OF[detail_type], detail=parsed)


@dataclass
class Outcome:
    """What storing one fact did."""

    status: str  # STORED | DUPLICATE
    kind: str
    writes: int = 0


@dataclass
class _Known:
    members: dict[str, MemberView] = field(default_factory=dict)
    facets: dict[tuple[str, str, str], str] = field(default_factory=dict)
    compliance: dict[tuple[str, str, str], ComplianceState] = field(default_factory=dict)
    ous: dict[str, tuple[str, str, datetime]] = field(default_factory=dict)
    ou_failed: dict[str, datetime] = field(default_factory=dict)  # account -> when a lookup failed
    ou_denied: bool = False


def _facet_values(fact: Fact) -> dict[str, Any]:
    detail = fact.detail
    base = {"order": fact.order, "at": fact.time}
    if isinstance(detail, GroupReconciled):
        return {**base, "status": detail.status, "reasons": []}
    if isinstance(detail, GroupRefused):
        return {**base, "status": detail.status, "reasons": list(detail.reasons)}
    if isinstance(detail, RunResult):
        return {
            **base,
            "commandId": detail.command_id,
            "status": detail.status,
            "failed": detail.failed_instances,
            "instances": dict(detail.instances),
        }
    if isinstance(detail, ComplianceSnapshot):
        return {
            **base,
            "snapshotId": detail.snapshot_id,
            "instances": detail.instances,
            "compliant": detail.compliant_instances,
            "nonCompliant": detail.non_compliant_instances,
            "percent": detail.compliance_percent,
        }
    raise TypeError(f"no facet for {fact.detail_type!r}")  # pragma: no cover - kinds are checked


class HubRecorder:
    """Stores facts (module docstring). One per container: what it knows saves writes."""

    def __init__(
        self,
        config: HubStoreConfig,
        store: HubStore,
        organization: Organization | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._store = store
        self._organization = organization if config.resolve_ous else None
        self._clock = clock
        self._known = _Known()
        self._first_in_batch: dict[str, str] = {}

    def prime(self, facts: Iterable[Fact]) -> None:
        """The facts of the batch about to be stored: each member's earliest time in it becomes its
        ``firstSeenAt`` candidate at once (one write, not one per older event)."""
        self._first_in_batch = {}
        for fact in facts:
            pk = f"{fact.account}#{fact.region}"
            self._first_in_batch[pk] = min(fact.time, self._first_in_batch.get(pk, fact.time))

    def store(self, fact: Fact) -> Outcome:
        writes = 0
        member_new, written = self._member(fact)
        writes += written
        if fact.kind in (HEARTBEAT, UNSUPPORTED):
            return Outcome(STORED if member_new else DUPLICATE, fact.kind, writes)
        if fact.kind == COMPLIANCE:
            writes += self._snapshot(fact)
        else:
            new, written = self._facet(fact, RECONCILE if fact.kind == RECONCILE else RUN)
            writes += written
            if fact.kind == RECONCILE:
                return Outcome(STORED if new else DUPLICATE, fact.kind, writes)
        created = self._history(fact)
        return Outcome(STORED if created else DUPLICATE, fact.kind, writes + 1)

    # --- the member ------------------------------------------------------------------------------
    def _member(self, fact: Fact) -> tuple[bool, int]:
        """Whether the fact is news to the member item (not a duplicate), and the writes made."""
        pk = f"{fact.account}#{fact.region}"
        known = self._known.members.get(pk)
        order = fact.order
        first = min(fact.time, self._first_in_batch.get(pk, fact.time))
        heartbeat = None
        if isinstance(fact.detail, MemberHeartbeat):
            heartbeat = (fact.detail.groups, dict(fact.detail.groups_by_status))
        writes, written = 0, False
        if known is None or order > known.last_order:
            update = MemberUpdate(
                account=fact.account,
                region=fact.region,
                order=order,
                time=fact.time,
                first_seen=first,
                event_type=fact.detail_type,
                stack=fact.stack,
                version=fact.version,
                schema_version=fact.schema_version,
                heartbeat=heartbeat,
            )
            written, known = self._store.update_member(update)
            writes += 1
            self._known.members[pk] = known
        assert known is not None
        # what an event older than the member's newest still tells: an earlier first event, a
        # newer heartbeat (a member-only event older than the newest is news unless it is the newest)
        news = written or order != known.last_order
        if first < known.first_seen:
            self._store.lower_first_seen(fact.account, fact.region, first)
            self._known.members[pk] = known = replace(known, first_seen=first)
            writes += 1
        if heartbeat is not None and not written:
            news = order != known.heartbeat_order
            if order > known.heartbeat_order:
                self._store.update_heartbeat(fact.account, fact.region, order, *heartbeat)
                self._known.members[pk] = known = replace(known, heartbeat_order=order)
                writes += 1
        return news, writes + self._resolve_ou(fact, known)

    def _resolve_ou(self, fact: Fact, known: MemberView) -> int:
        """Look the member's OU up if its item's is missing or a day old; the writes made."""
        if self._organization is None or self._known.ou_denied:
            return 0
        now = self._clock()
        if known.ou_checked_at and _parse(known.ou_checked_at) > now - OU_REFRESH:
            return 0
        cached = self._known.ous.get(fact.account)
        failed = self._known.ou_failed.get(fact.account)
        if failed is not None and failed > now - OU_RETRY:
            return 0
        if cached is None or cached[2] <= now - OU_REFRESH:
            try:
                ou_id, ou_name = self._organization.parent_ou(fact.account)
            except PermissionError:
                self._known.ou_denied = True
                logger.warning(
                    "organizations lookups denied; members are stored without their OU "
                    "(allow organizations:ListParents and DescribeOrganizationalUnit, "
                    "or set TAGPATCH_HUB_RESOLVE_OUS=false)"
                )
                return 0
            except Exception:
                self._known.ou_failed[fact.account] = now
                logger.exception("OU lookup failed; tried again in an hour", extra={"account": fact.account})
                return 0
            cached = (ou_id, ou_name, now)
            self._known.ous[fact.account] = cached
        checked = _iso(cached[2])
        self._store.set_ou(fact.account, fact.region, cached[0], cached[1], checked)
        pk = f"{fact.account}#{fact.region}"
        self._known.members[pk] = replace(self._known.members[pk], ou_checked_at=checked)
        return 1

    # --- a group's facets ------------------------------------------------------------------------
    def _facet(self, fact: Fact, name: str) -> tuple[bool, int]:
        key = (f"{fact.account}#{fact.region}", fact.group, name)
        known = self._known.facets.get(key, "")
        if fact.order <= known:
            return fact.order != known, 0
        found = self._store.put_facet(fact.account, fact.region, fact.group, name, _facet_values(fact))
        self._known.facets[key] = found or fact.order
        return found != fact.order, 1

    def _snapshot(self, fact: Fact) -> int:
        detail = fact.detail
        assert isinstance(detail, ComplianceSnapshot)
        non_compliant = detail.non_compliant_instances > 0
        key = (f"{fact.account}#{fact.region}", fact.group, COMPLIANCE)
        state = self._known.compliance.get(key)
        writes = 0
        if state is None or fact.order > state.order:
            written, state = self._store.put_newest_snapshot(
                fact.account, fact.region, fact.group, _facet_values(fact), non_compliant=non_compliant
            )
            self._known.compliance[key] = state
            writes += 1
            if written:
                return writes
        # A late snapshot: merged into the run as known, written back if the item still holds it
        # (what the recorder knows may be behind the item; the write then fails with the item).
        for _ in range(RACE_ATTEMPTS):
            merged = merge_late_snapshot(state, fact.order, non_compliant=non_compliant)
            if merged is None:
                return writes
            found = self._store.rewrite_compliance_run(fact.account, fact.region, fact.group, state, merged)
            writes += 1
            state = merged if found is None else found
            self._known.compliance[key] = state
            if found is None:
                return writes
        raise RuntimeError(f"group {fact.group!r}: its non-compliant run kept changing; retried later")

    # --- history -----------------------------------------------------------------------------------
    def _history(self, fact: Fact) -> bool:
        detail = fact.detail
        expires_at = int(_parse(fact.time).timestamp()) + self.config.history_days * SECONDS_PER_DAY
        if isinstance(detail, ComplianceSnapshot):
            entry = HistoryEntry(
                SNAPSHOT,
                fact.time,
                fact.account,
                fact.region,
                fact.group,
                detail.snapshot_id,
                {
                    "instances": detail.instances,
                    "compliant": detail.compliant_instances,
                    "nonCompliant": detail.non_compliant_instances,
                    "percent": detail.compliance_percent,
                    "eventId": fact.event_id,
                },
                expires_at,
            )
        else:
            assert isinstance(detail, RunResult)
            entry = HistoryEntry(
                RUN,
                fact.time,
                fact.account,
                fact.region,
                fact.group,
                detail.command_id,
                {
                    "status": detail.status,
                    "failed": detail.failed_instances,
                    "instances": dict(detail.instances),
                    "eventId": fact.event_id,
                },
                expires_at,
            )
        return self._store.put_history(entry)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
