"""What the compliance reporter needs from AWS, as Protocols; :mod:`tagpatch.adapters` implements
them and the handler wires them in, so the reporter imports neither boto3 nor an adapter. The
store owns its table's item shapes: the reporter hands it rows and totals, never items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tagpatch.models.records import GroupRecord
    from tagpatch.reporter.compliance import GroupOutcome, GroupTotals, InstanceRow
    from tagpatch.reporter.fanout import RunLedger


class PatchStates(Protocol):
    """Patch Manager's view of the fleet (DescribePatchGroups, DescribePatchGroupState,
    DescribeInstancePatchStatesForPatchGroup)."""

    def patch_groups(self) -> dict[str, list[str]]: ...

    def group_state(self, group: str) -> dict[str, int]: ...

    def instance_states(self, group: str) -> list[dict[str, Any]]: ...


class WrittenSnapshots(Protocol):
    @property
    def failed(self) -> Mapping[str, str]:
        """Group -> why its snapshot could not be written."""
        ...


class SnapshotWriter(Protocol):
    def write_snapshot(
        self,
        group: str,
        snapshot_id: str,
        rows: Iterable[InstanceRow],
        totals: GroupTotals,
        *,
        moves_latest: bool,
        expires_at: int,
    ) -> None: ...

    def finish(self) -> WrittenSnapshots: ...


class ComplianceStore(Protocol):
    def latest(
        self, groups: Sequence[str], snapshot_id: str
    ) -> tuple[dict[str, GroupTotals], dict[str, Any] | None]: ...

    def snapshots_up_to(self, group: str, snapshot_id: str, limit: int = 2) -> list[GroupTotals]: ...

    def instance_rows(self, group: str, snapshot_id: str) -> list[InstanceRow]: ...

    def writer(self) -> SnapshotWriter: ...

    def record_run(self, snapshot_id: str, attributes: dict[str, Any], expires_at: int) -> None: ...

    def claim_digest(
        self,
        snapshot_id: str,
        seen: dict[str, Any] | None,
        *,
        now: float,
        lease_until: float,
        expires_at: int,
    ) -> bool: ...

    def release_digest(self, snapshot_id: str) -> None: ...

    # a fanned-out run -----------------------------------------------------------------------------
    def run_record(self, snapshot_id: str) -> dict[str, Any] | None: ...

    def write_plan(self, snapshot_id: str, messages: Sequence[str], expires_at: int) -> None:
        """The run's plan: message ``i`` (its report-queue body) is batch ``i``."""
        ...

    def create_run(self, snapshot_id: str, attributes: dict[str, Any], expires_at: int) -> bool:
        """Create the run record unless it exists; whether this call created it."""
        ...

    def record_batch(
        self,
        snapshot_id: str,
        batch: int,
        outcomes: Sequence[GroupOutcome],
        worst: Sequence[tuple[str, InstanceRow]],
        expires_at: int,
    ) -> None:
        """What one batch recorded (each group's outcome and its worst instances)."""
        ...

    def mark_batch_done(self, snapshot_id: str, batch: int) -> dict[str, Any]:
        """Add ``batch`` to the run's done batches (once, however often it is called); the run
        record as it is after the update."""
        ...

    def run_ledger(self, snapshot_id: str) -> RunLedger: ...

    def record_digest(self, snapshot_id: str, attributes: dict[str, Any]) -> None:
        """Add the sent digest's attributes to the run record and drop the claim."""
        ...


class GroupDirectory(Protocol):
    """The groups the stack manages (the reconciler's groups table)."""

    def get(self, group: str) -> GroupRecord | None: ...

    def all(self) -> list[GroupRecord]: ...


class ReportQueue(Protocol):
    def send(self, messages: Sequence[tuple[str, int]]) -> None:
        """Send each (body, delay seconds); raises if any could not be sent."""
        ...


class DigestSink(Protocol):
    def publish(self, subject: str, body: str) -> str:
        """Send the digest; its message id."""
        ...
