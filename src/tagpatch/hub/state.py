"""What the hub's store function knows of an item and hands its store: plain values, and the rule
that keeps a group's run of non-compliant snapshots whatever the order they arrive in."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class MemberUpdate:
    """The member item as its newest event leaves it."""

    account: str
    region: str
    order: str
    time: str
    first_seen: str  # the earliest time of the member's events in the batch
    event_type: str
    stack: str
    version: str
    schema_version: str
    #: the heartbeat's figures, when the event is one: (groups, groups per status)
    heartbeat: tuple[int, dict[str, int]] | None = None


@dataclass(frozen=True)
class MemberView:
    """What the recorder knows of a member item (the orders are lower bounds of the stored ones)."""

    last_order: str = ""
    first_seen: str = ""
    heartbeat_order: str = ""
    ou_checked_at: str = ""


@dataclass(frozen=True)
class ComplianceState:
    """A group's compliance facet order and its unbroken run of non-compliant snapshots."""

    order: str = ""  # the compliance facet's ("" without one)
    nc_run: tuple[str, ...] = ()  # sorted orders of the non-compliant snapshots after last_compliant
    last_compliant: str = ""  # the order of the newest compliant snapshot ("" without one)

    @property
    def since(self) -> str:
        """``nonCompliantSince``: the time of the run's first snapshot ("" without a run)."""
        return self.nc_run[0].partition("#")[0] if self.nc_run else ""


def merge_late_snapshot(state: ComplianceState, order: str, *, non_compliant: bool) -> ComplianceState | None:
    """The run after a snapshot older than the group's newest one; None when it changes nothing."""
    if order <= state.last_compliant or order in state.nc_run:
        return None
    if non_compliant:
        return replace(state, nc_run=tuple(sorted((*state.nc_run, order))))
    return replace(state, nc_run=tuple(o for o in state.nc_run if o > order), last_compliant=order)


def apply_snapshot(state: ComplianceState, order: str, *, non_compliant: bool) -> ComplianceState:
    """The state after any snapshot (the newest one or a late one): the model the writes follow."""
    if order > state.order:
        if non_compliant:
            return ComplianceState(order, (*state.nc_run, order), state.last_compliant)
        return ComplianceState(order, (), order)
    return merge_late_snapshot(state, order, non_compliant=non_compliant) or state


@dataclass(frozen=True)
class HistoryEntry:
    """One item of the history table (:func:`~tagpatch.hub.records.history_pk` and ``history_sk``)."""

    kind: str  # SNAPSHOT | RUN
    time: str
    account: str
    region: str
    group: str
    fact_id: str  # the snapshot id or the command id
    attributes: dict[str, Any]
    expires_at: int
