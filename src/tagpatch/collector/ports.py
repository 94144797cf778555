"""What the status collector needs from AWS, as Protocols; :mod:`tagpatch.adapters` implements
them and the handler wires them in, so the collector imports neither boto3 nor an adapter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tagpatch.collector.alerts import Alert
    from tagpatch.models.records import (
        AlertClaim,
        BatchMerge,
        CommandContext,
        CommandProgress,
        CommandRecord,
        CommandState,
        CommandWrite,
        InvocationRecord,
        WriteOutcome,
    )


class CommandStore(Protocol):
    def get_command(self, command_id: str, *, consistent: bool = False) -> CommandState | None: ...

    def record_invocation(self, record: InvocationRecord, *, expires_at: int) -> WriteOutcome: ...

    def record_command(
        self, record: CommandRecord, *, now: float, expires_at: int, lease_until: float | None
    ) -> CommandWrite: ...

    def merge_batch(self, merge: BatchMerge, *, now: float, expires_at: int) -> CommandState: ...

    def claim_alert(
        self, command_id: str, *, seen_count: int, now: float, lease_until: float
    ) -> AlertClaim | None: ...

    def commit_alert(self, command_id: str, instance_ids: Iterable[str], *, now: float) -> None: ...

    def release_alert(self, command_id: str, *, lease_until: float) -> None: ...

    def claim_command_alert(
        self, command_id: str, *, now: float, lease_until: float
    ) -> AlertClaim | None: ...

    def release_command_alert(self, command_id: str, *, lease_until: float) -> None: ...

    def commit_command_alert(self, command_id: str, instance_ids: Iterable[str]) -> None: ...

    def set_flush(self, command_id: str, *, due: float) -> None: ...

    def claim_run_result(self, command_id: str, *, now: float, lease_until: float) -> AlertClaim | None: ...

    def commit_run_result(self, command_id: str) -> None: ...

    def set_result_check(self, command_id: str, *, due: float) -> None: ...


class AlertSink(Protocol):
    def publish(self, alert: Alert) -> None: ...


class FlushScheduler(Protocol):
    def schedule(self, command_id: str, *, delay_seconds: int, run_result: bool = False) -> None: ...


class CommandLookup(Protocol):
    def describe(self, command_id: str) -> CommandContext | None: ...

    def progress(self, command_id: str) -> CommandProgress | None: ...


class GroupNameLookup(Protocol):
    def name_of(self, slug: str) -> str | None: ...
