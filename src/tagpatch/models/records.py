"""Records of Run Command commands and invocations, shared by the collector and its store.

A command's patch group is the last segment of its ``OutputS3KeyPrefix`` (the reconciler sets
``<outputPrefix>/<slug>``): :func:`group_from_prefix`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tagpatch.models.run_status import TERMINAL, RunStatus


def group_from_prefix(prefix: str) -> str | None:
    """The patch group slug in a TagPatch ``OutputS3KeyPrefix`` (its last segment), if any."""
    segments = [segment for segment in prefix.split("/") if segment]
    return segments[-1] if segments else None


@dataclass(frozen=True)
class CommandContext:
    """What the collector knows about a command without asking SSM again."""

    command_id: str
    group: str | None = None
    output_bucket: str = ""
    output_prefix: str = ""

    def output_key_prefix(self, instance_id: str | None = None) -> str:
        """``<prefix>/<commandId>/[<instanceId>/]``: where Run Command writes the output."""
        parts = [self.output_prefix.strip("/"), self.command_id, instance_id or ""]
        return "/".join(part for part in parts if part) + "/"

    def output_uri(self, instance_id: str | None = None) -> str:
        if not self.output_bucket:
            return ""
        return f"s3://{self.output_bucket}/{self.output_key_prefix(instance_id)}"


@dataclass(frozen=True)
class InvocationRecord:
    """The (command, instance) item an Invocation notification writes; what the command's
    instances share (document, request time, output location) goes to the command item."""

    command_id: str
    instance_id: str
    status: RunStatus
    event_time: str
    group: str | None


@dataclass(frozen=True)
class CommandRecord:
    """The command item a Command notification writes."""

    command_id: str
    status: RunStatus
    event_time: str
    requested_at: str
    expires_after: str
    document_name: str
    context: CommandContext
    instance_ids: tuple[str, ...]


@dataclass
class CommandState:
    """The command item as the store returns it."""

    command_id: str
    group: str | None = None
    output_bucket: str = ""
    output_prefix: str = ""
    resolved: bool = False  # group lookup done (output_prefix stored, possibly empty)
    document_name: str = ""
    requested_at: str = ""
    status: RunStatus | None = None
    status_time: str | None = None
    instance_ids: frozenset[str] = frozenset()
    counts: dict[RunStatus, int] = field(default_factory=dict)
    failed: dict[RunStatus, frozenset[str]] = field(default_factory=dict)
    alerted: frozenset[str] = frozenset()
    untracked_failures: int = 0
    alert_count: int = 0
    last_alert_at: float | None = None
    flush_at: float | None = None
    command_alert_sent: bool = False
    command_alert_lease: float | None = None
    run_result_sent: bool = False  # the command's Run Result went out (or was given up)
    run_result_lease: float | None = None
    result_checks: int = 0  # delayed re-checks of the command's end scheduled so far
    result_check_at: float | None = None  # when the scheduled re-check is due

    @property
    def context(self) -> CommandContext:
        return CommandContext(self.command_id, self.group, self.output_bucket, self.output_prefix)

    @property
    def failed_total(self) -> int:
        return sum(len(ids) for ids in self.failed.values()) + self.untracked_failures

    @property
    def ended_count(self) -> int:
        """Recorded invocations in a terminal status."""
        return sum(count for status, count in self.counts.items() if status in TERMINAL)

    @property
    def invocations_ended(self) -> bool:
        """Some invocations are recorded and every one of them is terminal."""
        running = sum(count for status, count in self.counts.items() if status not in TERMINAL)
        return running <= 0 and self.ended_count > 0

    def unalerted(self) -> list[FailedInstance]:
        """Failures recorded on the command but not yet listed in any alert, in a stable order."""
        return sorted(
            FailedInstance(instance_id, status)
            for status, ids in self.failed.items()
            for instance_id in ids - self.alerted
        )


@dataclass(frozen=True)
class CommandProgress:
    """A command as ListCommands reports it: its status and its invocation counts."""

    status: RunStatus
    target_count: int = 0
    completed_count: int = 0
    error_count: int = 0
    delivery_timed_out_count: int = 0

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def covered_by(self, ended_invocations: int) -> bool:
        """Whether ``ended_invocations`` recorded terminal invocations account for every target
        (or every invocation SSM counts as completed: targets past ``MaxErrors`` never run)."""
        return ended_invocations >= min(self.target_count, self.completed_count)


@dataclass(frozen=True, order=True)
class FailedInstance:
    instance_id: str
    status: RunStatus


@dataclass(frozen=True)
class WriteOutcome:
    """Result of a conditional record write: ``applied``, and the status stored before it
    (the replaced one when applied, the one that won when not)."""

    applied: bool
    previous: RunStatus | None


@dataclass(frozen=True)
class CommandWrite:
    applied: bool
    state: CommandState


@dataclass(frozen=True)
class AlertClaim:
    """A won claim of a command's next alert (or of its final summary). ``lapsed``: an earlier
    claimant's lease ran out without it recording a send, so it may have published just before
    it stopped, and this alert may repeat that one."""

    lapsed: bool = False


@dataclass
class BatchMerge:
    """What one batch adds to a command item: status count changes and failed instances."""

    command_id: str
    document_name: str = ""
    requested_at: str = ""
    context: CommandContext | None = None  # set when the group was looked up and must be persisted
    deltas: Counter[RunStatus] = field(default_factory=Counter)
    failures: dict[RunStatus, set[str]] = field(default_factory=dict)


#: Groups-table keys TagPatch keeps for itself (slug claims, the admission count): no patch group
#: may be named so (the reconciler refuses it) and no reader takes them for a group.
RESERVED_PREFIX = "#tagpatch:"


@dataclass
class GroupRecord:
    """What the reconciler last made for one patch group (an item of the groups table)."""

    group: str
    slug: str = ""
    status: str = "new"
    fingerprint: str = ""
    windows: dict[str, dict[str, str]] = field(default_factory=dict)
    baseline_id: str = ""
    reasons: list[str] = field(default_factory=list)
    instance_count: int = -1
    empty_since: str = ""
    updated_at: str = ""
    admitted_slug: str = ""  # the slug this group holds the groups table's claim on, once admitted
    # naming rule its windows carry (tagpatch.naming.NAMES_VERSION once converged; 0: rule 1, a
    # record written by an older TagPatch)
    names: int = 0
    # an older TagPatch's slug of this group while its settings are still read from that path
    legacy_slug: str = ""
