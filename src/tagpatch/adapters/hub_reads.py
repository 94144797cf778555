"""Read-only queries of the hub's two tables (:mod:`tagpatch.hub.records`), for the operator CLI.

* :meth:`HubReads.state`: the whole ``HubStateTable`` in one paginated Scan (the organization is
  one table of members and groups), only the attributes the CLI shows (the digests' bodies and the
  reconcile facets' reasons stay in the table);
* :meth:`HubReads.history_day`: one paginated Query of one history partition (a kind and a UTC
  day); the first day of a range starts at its lower bound with a key condition, so nothing older
  is read;
* :meth:`HubReads.history`: every day of a range, one Query each, oldest first.

Each page is one API call; :attr:`HubReads.calls` counts them by operation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from tagpatch.hub.records import (
    GROUP_SK_PREFIX,
    HUB_PK,
    MEMBER_SK,
    RUN,
    SNAPSHOT,
    GroupState,
    HistoryRow,
    MemberState,
)

_DESERIALIZER = TypeDeserializer()

#: What the CLI reads of a state item: the key, the member's facts, the group's compliance and run.
STATE_ATTRIBUTES = (
    "pk",
    "sk",
    "stack",
    "version",
    "schemaVersion",
    "firstSeenAt",
    "lastEventAt",
    "lastEventType",
    "groups",
    "ouId",
    "ouName",
    "compliance",
    "run",
    "nonCompliantSince",
)
#: What a report or a run list reads of a history item (the pk is the partition queried).
HISTORY_ATTRIBUTES = {
    SNAPSHOT: ("sk", "instances", "compliant", "percent"),
    RUN: ("sk", "status", "failed", "instances"),
}


def _projection(names: tuple[str, ...]) -> dict[str, Any]:
    """A ProjectionExpression naming every attribute through a placeholder (no reserved-word clash)."""
    return {
        "ProjectionExpression": ", ".join(f"#a{i}" for i in range(len(names))),
        "ExpressionAttributeNames": {f"#a{i}": name for i, name in enumerate(names)},
    }


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def iso(moment: datetime) -> str:
    """``2026-12-02T05:30:00Z``: the form of the hub's times (sort keys compare as strings)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days(since: datetime, until: datetime) -> list[date]:
    """The UTC days from ``since``'s to ``until``'s, both included (none when ``since`` is later)."""
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class HubState:
    """The state table: every member and every group (the hub's own items left out)."""

    members: list[MemberState] = field(default_factory=list)
    groups: list[GroupState] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.members and not self.groups


class HubReads:
    def __init__(
        self, state_table: str, history_table: str, dynamodb: Any, *, page_size: int | None = None
    ) -> None:
        self.state_table = state_table
        self.history_table = history_table
        self.dynamodb = dynamodb
        self.page_size = page_size  # None: DynamoDB's 1 MB pages; tests set a count to see paging
        self.calls: Counter[str] = Counter()

    def _pages(self, operation: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if self.page_size:
            request = {**request, "Limit": self.page_size}
        call = getattr(self.dynamodb, "scan" if operation == "Scan" else "query")
        while True:
            self.calls[operation] += 1
            page = call(**request)
            yield from page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                return
            request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def state(self) -> HubState:
        """Every member and group of the organization: one Scan, paginated."""
        members: list[MemberState] = []
        groups: list[GroupState] = []
        request = {"TableName": self.state_table, **_projection(STATE_ATTRIBUTES)}
        for raw in self._pages("Scan", request):
            item = _plain(raw)
            if item.get("pk") == HUB_PK:
                continue
            sk = str(item.get("sk", ""))
            if sk == MEMBER_SK:
                members.append(MemberState.from_item(item))
            elif sk.startswith(GROUP_SK_PREFIX):
                groups.append(GroupState.from_item(item))
        return HubState(members, groups)

    def history_day(self, kind: str, day: date, *, since: datetime | None = None) -> list[HistoryRow]:
        """One history partition (``kind`` on ``day``), from ``since`` when given, oldest first."""
        pk = f"{kind}#{day.isoformat()}"
        names = {"#pk": "pk"}
        values: dict[str, Any] = {":pk": {"S": pk}}
        condition = "#pk = :pk"
        if since is not None:
            names["#sk"] = "sk"
            values[":since"] = {"S": iso(since)}
            condition += " AND #sk >= :since"
        projection = _projection(HISTORY_ATTRIBUTES[kind])
        request = {
            "TableName": self.history_table,
            "KeyConditionExpression": condition,
            "ProjectionExpression": projection["ProjectionExpression"],
            "ExpressionAttributeNames": {**names, **projection["ExpressionAttributeNames"]},
            "ExpressionAttributeValues": values,
        }
        rows = []
        for raw in self._pages("Query", request):
            item = _plain(raw)
            item["pk"] = pk
            if isinstance(item.get("instances"), dict):  # a run's instances per status
                item["instances"] = sum(int(count) for count in item["instances"].values())
            rows.append(HistoryRow.from_item(item))
        return rows

    def history(self, kind: str, since: datetime, until: datetime) -> Iterator[tuple[date, list[HistoryRow]]]:
        """Every day from ``since`` to ``until``: one Query each (the first from ``since``)."""
        for index, day in enumerate(days(since, until)):
            yield day, self.history_day(kind, day, since=since if index == 0 else None)
