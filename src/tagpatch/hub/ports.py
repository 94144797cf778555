"""What the hub needs from AWS, as Protocols; :mod:`tagpatch.adapters.hub_store` and
:mod:`tagpatch.adapters.hub_organizations` implement them and the handlers wire them in. The store
owns the item shapes of :mod:`tagpatch.hub.records`: the hub hands it facts and figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tagpatch.hub.state import ComplianceState, HistoryEntry, MemberUpdate, MemberView


class HubStore(Protocol):
    """HubStateTable and HubHistoryTable, written by the store function."""

    def update_member(self, update: MemberUpdate) -> tuple[bool, MemberView]:
        """Write the member's newest event (if ``update.order`` is greater than the stored one);
        whether it was written, and the member as it is now (after the write, or as found)."""
        ...

    def lower_first_seen(self, account: str, region: str, time: str) -> None:
        """``firstSeenAt`` becomes ``time`` if it is later (or missing)."""
        ...

    def update_heartbeat(
        self, account: str, region: str, order: str, groups: int, by_status: Mapping[str, int]
    ) -> bool:
        """The heartbeat's figures, if ``order`` is greater than the stored heartbeat's; whether written."""
        ...

    def set_ou(self, account: str, region: str, ou_id: str, ou_name: str, checked_at: str) -> None: ...

    def put_facet(self, account: str, region: str, group: str, name: str, facet: Mapping[str, Any]) -> str:
        """Replace the group's facet ``name`` with ``facet`` if its ``order`` is greater; "" when
        written, else the order of the stored facet."""
        ...

    def put_newest_snapshot(
        self, account: str, region: str, group: str, facet: Mapping[str, Any], *, non_compliant: bool
    ) -> tuple[bool, ComplianceState]:
        """The snapshot as the group's newest, if its ``order`` is greater than the stored one;
        whether it was written, and the group's compliance state as it is now."""
        ...

    def rewrite_compliance_run(
        self, account: str, region: str, group: str, seen: ComplianceState, new: ComplianceState
    ) -> ComplianceState | None:
        """Replace the non-compliant run (``ncRun``, ``lastCompliantOrder``, ``nonCompliantSince``)
        by ``new``'s if the item still holds ``seen``'s; None when written, else the state as found."""
        ...

    def put_history(self, entry: HistoryEntry) -> bool:
        """Write the history item unless it exists; whether this call created it."""
        ...


class Organization(Protocol):
    """AWS Organizations, read-only."""

    def parent_ou(self, account: str) -> tuple[str, str]:
        """The account's parent: (OU id, OU name); for an account directly under the root,
        (root id, "Root"). Raises :class:`OrganizationDenied` when the role may not ask."""
        ...


class OrganizationDenied(PermissionError):
    """organizations:ListParents or DescribeOrganizationalUnit was denied."""


class HubState(Protocol):
    """What the digest function reads and writes in HubStateTable."""

    def scan(self) -> Sequence[Mapping[str, Any]]:
        """Every item of the table (member and group items, and the hub's own: the last digest's
        figures come with it)."""
        ...

    def remember_digest(
        self, generation: str, figures: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None:
        """The figures of the digest just sent, for the next one (however large: in chunks), in
        place of the ``previous`` pointer's (``{"generation", "chunks"}``, as the Scan found it)."""
        ...

    def claim_digest(self, claim: str, *, now: float, lease_until: float) -> bool:
        """Claim the digest ``claim`` (a schedule event's id or slot); False when it is sent or
        claimed by a live delivery."""
        ...

    def digest_sent(self, claim: str, message_id: str) -> None: ...

    def release_digest(self, claim: str) -> None: ...


class DigestSink(Protocol):
    def publish(self, subject: str, body: str) -> str:
        """Send the digest; its message id."""
        ...
