"""Run Command statuses: every spelling SSM uses, their order, and the forward-only rule.

``normalise_status`` maps every spelling SSM uses (``Canceled``/``Cancelled``, ``In Progress``/
``InProgress``) to one :class:`RunStatus`. Ranks order them: Pending < InProgress/Delayed <
Cancelling < terminal. A record moves only forward (:func:`supersedes`): a newer ``eventTime`` of an
equal or higher rank, or any terminal status over a non-terminal one. So a late ``InProgress`` never
overwrites ``Success`` and a duplicate changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class RunStatus(StrEnum):
    """Run Command statuses (CommandStatus and CommandInvocationStatus) and the invocation status
    details SSM may report, in the API's spelling."""

    PENDING = "Pending"
    DELAYED = "Delayed"
    IN_PROGRESS = "InProgress"
    CANCELLING = "Cancelling"
    SUCCESS = "Success"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELLED = "Cancelled"
    UNDELIVERABLE = "Undeliverable"
    DELIVERY_TIMED_OUT = "DeliveryTimedOut"
    EXECUTION_TIMED_OUT = "ExecutionTimedOut"
    TERMINATED = "Terminated"
    INVALID_PLATFORM = "InvalidPlatform"
    ACCESS_DENIED = "AccessDenied"


class UnknownStatus(ValueError):
    """A status that is none of the Run Command statuses."""


# The SSM user guide and EventBridge reference spell these with one "l"; the API with two.
_SPELLINGS = {"Canceled": RunStatus.CANCELLED, "Canceling": RunStatus.CANCELLING}
_BY_VALUE = {status.value: status for status in RunStatus}

TERMINAL_RANK = 3
RANK: dict[RunStatus, int] = {
    RunStatus.PENDING: 0,
    RunStatus.DELAYED: 1,
    RunStatus.IN_PROGRESS: 1,
    RunStatus.CANCELLING: 2,
    **{
        status: TERMINAL_RANK
        for status in (
            RunStatus.SUCCESS,
            RunStatus.FAILED,
            RunStatus.TIMED_OUT,
            RunStatus.CANCELLED,
            RunStatus.UNDELIVERABLE,
            RunStatus.DELIVERY_TIMED_OUT,
            RunStatus.EXECUTION_TIMED_OUT,
            RunStatus.TERMINATED,
            RunStatus.INVALID_PLATFORM,
            RunStatus.ACCESS_DENIED,
        )
    },
}
TERMINAL = frozenset(status for status, rank in RANK.items() if rank == TERMINAL_RANK)
ALERTING = TERMINAL - {RunStatus.SUCCESS}


def normalise_status(raw: str) -> RunStatus:
    """The :class:`RunStatus` of ``raw`` (``Canceled`` -> ``Cancelled``, ``Timed Out`` -> ``TimedOut``)."""
    compact = "".join(str(raw).split())
    status = _SPELLINGS.get(compact) or _BY_VALUE.get(compact)
    if status is None:
        raise UnknownStatus(f"unknown Run Command status {raw!r}")
    return status


def supersedes(
    new_status: RunStatus, new_time: str, old_status: RunStatus | None, old_time: str | None
) -> bool:
    """Whether a record at (``old_status``, ``old_time``) moves to (``new_status``, ``new_time``).

    Times are :func:`stamp` strings (they sort chronologically). The store applies the same rule
    as a DynamoDB condition; this function is its specification.
    """
    if old_status is None or old_time is None:
        return True
    if RANK[new_status] == TERMINAL_RANK:
        return RANK[old_status] < TERMINAL_RANK
    return RANK[old_status] <= RANK[new_status] and old_time < new_time


def stamp(moment: datetime) -> str:
    """``moment`` in UTC with microseconds, e.g. ``2019-04-25T17:57:09.170000Z``: fixed width, so
    string order is time order (SSM's own ``...09.17Z``/``...09.236Z`` are not)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
