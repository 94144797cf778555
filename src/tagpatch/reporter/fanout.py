"""A fanned-out run's plan and ledger: which groups go into which report-queue message, and what
the run recorded, read back for its one digest. Pure: no boto3, no clock, no I/O.

Batches
-------
Groups are batched by their size as the groups table records it (``instance_count``, the
reconciler's count of tagged instances): a group of :data:`BATCH_INSTANCES` or more goes alone;
the others fill batches of at most :data:`BATCH_GROUPS` groups and :data:`BATCH_INSTANCES`
instances, in name order. A group the table does not know (registered with a patch baseline only)
counts as :data:`UNKNOWN_INSTANCES`. Single-group batches come first, largest first, so the
longest messages start first and the run's tail is short.

One batch is at most ~20 + 2,000/100 + 20 = 60 SSM reads (a state and at least one page per
group), seconds of work; a group alone of 100,000 instances is 1,001 reads and 4,000
BatchWriteItem calls, a few minutes of the function's 900 s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tagpatch.reporter.compliance import GroupOutcome, InstanceRow

BATCH_INSTANCES = 2_000
BATCH_GROUPS = 20
UNKNOWN_INSTANCES = 100


def estimated_size(group: str, sizes: Mapping[str, int]) -> int:
    size = sizes.get(group, -1)
    return UNKNOWN_INSTANCES if size < 0 else size


def plan_batches(groups: Iterable[str], sizes: Mapping[str, int]) -> list[list[str]]:
    """``groups`` (each once) as batches (see the module docstring); deterministic for one input."""
    ordered = sorted(set(groups))
    big = sorted(
        (group for group in ordered if estimated_size(group, sizes) >= BATCH_INSTANCES),
        key=lambda group: (-estimated_size(group, sizes), group),
    )
    batches: list[list[str]] = [[group] for group in big]
    current: list[str] = []
    instances = 0
    for group in ordered:
        size = estimated_size(group, sizes)
        if size >= BATCH_INSTANCES:
            continue
        if current and (len(current) >= BATCH_GROUPS or instances + size > BATCH_INSTANCES):
            batches.append(current)
            current, instances = [], 0
        current.append(group)
        instances += size
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class BatchReport:
    """What one batch recorded: each group's outcome (totals when recorded) and its worst instances."""

    outcomes: list[GroupOutcome]
    worst: list[tuple[str, InstanceRow]] = field(default_factory=list)


@dataclass(frozen=True)
class RunLedger:
    """A run as stored: its plan (batch -> the report-queue message body) and each batch's report."""

    plan: dict[int, str]
    reports: dict[int, BatchReport]


@dataclass(frozen=True)
class RunOutcomes:
    """Every planned group's outcome for the digest, the worst instance candidates and which
    groups are missing (planned, in a batch not done, not recorded)."""

    outcomes: list[GroupOutcome]
    worst: list[tuple[str, InstanceRow]]
    missing: list[str]


def assemble(
    planned: Mapping[int, Sequence[str]],
    reports: Mapping[int, BatchReport],
    done: Iterable[int],
    *,
    refused: Sequence[str] = (),
    refusal: str = "",
    missing_reason: str = "",
) -> RunOutcomes:
    """The run's outcomes: what each batch reported; a group of a batch not done that is not
    recorded is ``missing`` (with its last error, if it had one); refused names are failed."""
    finished = set(done)
    outcomes: dict[str, GroupOutcome] = {}
    worst: list[tuple[str, InstanceRow]] = []
    missing: list[str] = []
    for batch in sorted(planned):
        report = reports.get(batch)
        reported = {outcome.group: outcome for outcome in report.outcomes} if report else {}
        if report is not None:
            worst += report.worst
        for group in planned[batch]:
            outcome = reported.get(group)
            if outcome is not None and (batch in finished or outcome.status != "failed"):
                outcomes[group] = outcome
            else:
                error = missing_reason + (
                    f"; last error: {outcome.error}" if outcome and outcome.error else ""
                )
                outcomes[group] = GroupOutcome(group, "missing", error=error)
                missing.append(group)
    for group in refused:
        outcomes.setdefault(group, GroupOutcome(group, "failed", error=refusal))
    ordered = [outcomes[group] for group in sorted(outcomes)]
    return RunOutcomes(ordered, worst, sorted(missing))
