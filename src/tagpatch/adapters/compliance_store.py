"""ComplianceTable (DynamoDB): compliance snapshots per patch group, their instance rows, the latest
entry per group and one record per run.

Key design (``pk`` HASH, ``sk`` RANGE, both strings)::

    pk = GROUP#<group>   sk = SNAP#<snapshot id>                  group totals of one snapshot
    pk = GROUP#<group>   sk = INST#<snapshot id>#<instance id>    one instance in that snapshot
    pk = GROUP#<group>   sk = LATEST                              copy of the newest totals
    pk = RUN             sk = SNAP#<snapshot id>                  what a run recorded and published
    pk = RUN             sk = SNAP#<snapshot id>#PLAN#<batch>     a fanned-out run's batch: its message
    pk = RUN             sk = SNAP#<snapshot id>#OUT#<batch>      what that batch recorded (outcomes,
                                                                  totals, worst instances)

A snapshot id is the run's time in ISO 8601 UTC (``2025-06-01T06:00:00Z``), so sort keys sort
by time: a group's trend is one Query (``begins_with(sk, "SNAP#")``, totals only, instance rows
live under ``INST#``), the instances of a snapshot are one Query (``begins_with(sk,
"INST#<id>#")``) and every item expires through the ``ttl`` attribute.

Writes go through :class:`SnapshotWriter`: BatchWriteItem calls of 25 items, filled across
groups, ``UnprocessedItems`` retried with exponential backoff and jitter. A group's *commit*
items (its ``LATEST`` entry) are written only after every other item of the group has been
written, so ``LATEST`` naming a snapshot means that snapshot is complete: that is what makes a
rerun of the same snapshot skip the group (see :mod:`tagpatch.reporter.core`).

A fanned-out run's record is created once (conditional PutItem), its done batches are a number
set grown with UpdateItem ``ADD`` (adding a batch twice changes nothing), its digest is claimed
and recorded with UpdateItems that leave the rest of the record as it is; the run's plan and
batch reports are read back with one Query (``begins_with(sk, "SNAP#<id>#")``).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from tagpatch.adapters.clients import CONDITION_FAILED, client, error_code
from tagpatch.reporter.compliance import GroupOutcome, GroupTotals, InstanceRow
from tagpatch.reporter.fanout import BatchReport, RunLedger

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
MAX_ATTEMPTS = 8
HELD_COMMITS = 2 * BATCH_WRITE_LIMIT  # ready commit items held back to fill the run's last batches
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 5.0
LATEST = "LATEST"
RUN_PK = "RUN"

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()

Item = dict[str, Any]  # DynamoDB attribute-value form


class WriteFailed(RuntimeError):
    """Items stayed unprocessed after every BatchWriteItem retry."""


class ReadFailed(RuntimeError):
    """Keys stayed unprocessed after every BatchGetItem retry."""


def group_pk(group: str) -> str:
    return f"GROUP#{group}"


def snapshot_sk(snapshot_id: str) -> str:
    return f"SNAP#{snapshot_id}"


def instance_sk(snapshot_id: str, instance_id: str) -> str:
    return f"INST#{snapshot_id}#{instance_id}"


def plan_sk(snapshot_id: str, batch: int) -> str:
    return f"{snapshot_sk(snapshot_id)}#PLAN#{batch:05d}"


def report_sk(snapshot_id: str, batch: int) -> str:
    return f"{snapshot_sk(snapshot_id)}#OUT#{batch:05d}"


def _run_key(snapshot_id: str) -> Item:
    return {"pk": {"S": RUN_PK}, "sk": {"S": snapshot_sk(snapshot_id)}}


def _to_item(pk: str, sk: str, attributes: dict[str, Any], expires_at: int) -> Item:
    plain = {**attributes, "pk": pk, "sk": sk, "ttl": expires_at}
    return {name: _SERIALIZER.serialize(value) for name, value in plain.items() if value is not None}


def _from_item(item: Item) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def instance_item(group: str, snapshot_id: str, row: InstanceRow, expires_at: int) -> Item:
    attributes = {**row.attributes(), "group": group, "snapshot_id": snapshot_id}
    return _to_item(group_pk(group), instance_sk(snapshot_id, row.instance_id), attributes, expires_at)


def totals_item(totals: GroupTotals, expires_at: int) -> Item:
    return _to_item(group_pk(totals.group), snapshot_sk(totals.snapshot_id), totals.attributes(), expires_at)


def latest_item(totals: GroupTotals, expires_at: int) -> Item:
    return _to_item(group_pk(totals.group), LATEST, totals.attributes(), expires_at)


def run_item(snapshot_id: str, attributes: dict[str, Any], expires_at: int) -> Item:
    return _to_item(RUN_PK, snapshot_sk(snapshot_id), {**attributes, "snapshot_id": snapshot_id}, expires_at)


def backoff_seconds(attempt: int) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th retry (1-based)."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


class ComplianceStore:
    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")
        self._sleep = sleep
        self._max_attempts = max_attempts

    # reads -----------------------------------------------------------------------------------
    def latest(
        self, groups: Sequence[str], snapshot_id: str
    ) -> tuple[dict[str, GroupTotals], dict[str, Any] | None]:
        """The ``LATEST`` entry of each group that has one, and this snapshot's run record.

        BatchGetItem, 100 keys per call, ``UnprocessedKeys`` retried with backoff.
        """
        keys = [{"pk": {"S": group_pk(group)}, "sk": {"S": LATEST}} for group in groups]
        keys.append({"pk": {"S": RUN_PK}, "sk": {"S": snapshot_sk(snapshot_id)}})
        latest: dict[str, GroupTotals] = {}
        run: dict[str, Any] | None = None
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            for item in self._batch_get(keys[start : start + BATCH_GET_LIMIT]):
                plain = _from_item(item)
                if plain["pk"] == RUN_PK:
                    run = plain
                else:
                    totals = GroupTotals.from_attributes(plain)
                    latest[totals.group] = totals
        return latest, run

    def _batch_get(self, keys: list[Item]) -> list[Item]:
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        found: list[Item] = []
        for attempt in range(1, self._max_attempts + 1):
            response = self._ddb.batch_get_item(RequestItems=request)
            found += response.get("Responses", {}).get(self._table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            if attempt < self._max_attempts:
                self._sleep(backoff_seconds(attempt))
        left = len(request.get(self._table, {}).get("Keys", []))
        raise ReadFailed(f"{left} keys stayed unprocessed after {self._max_attempts} BatchGetItem attempts")

    def snapshots_up_to(self, group: str, snapshot_id: str, limit: int = 2) -> list[GroupTotals]:
        """The group's newest ``limit`` snapshot totals at or before ``snapshot_id``, newest first."""
        response = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": group_pk(group)},
                ":low": {"S": snapshot_sk("")},
                ":high": {"S": snapshot_sk(snapshot_id)},
            },
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        return [GroupTotals.from_attributes(_from_item(item)) for item in response.get("Items", [])]

    def instance_rows(self, group: str, snapshot_id: str) -> list[InstanceRow]:
        """Every instance row of one snapshot of ``group`` (one Query; 1 MB pages)."""
        pages = self._ddb.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": group_pk(group)},
                ":prefix": {"S": instance_sk(snapshot_id, "")},
            },
        )
        return [InstanceRow.from_attributes(_from_item(item)) for page in pages for item in page["Items"]]

    def trend(self, group: str, start: str | None = None, end: str | None = None) -> list[GroupTotals]:
        """The group's snapshot totals, oldest first, optionally between two snapshot ids
        (inclusive): one Query that returns totals only."""
        values = {":pk": {"S": group_pk(group)}}
        if start is None and end is None:
            condition = "pk = :pk AND begins_with(sk, :snap)"
            values[":snap"] = {"S": snapshot_sk("")}
        else:
            condition = "pk = :pk AND sk BETWEEN :low AND :high"
            values[":low"] = {"S": snapshot_sk(start or "")}
            values[":high"] = {"S": snapshot_sk(end or "~")}
        pages = self._ddb.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=True,
        )
        return [GroupTotals.from_attributes(_from_item(item)) for page in pages for item in page["Items"]]

    # writes ----------------------------------------------------------------------------------
    def batch_write(self, items: Sequence[Item]) -> None:
        """Put up to 25 items; ``UnprocessedItems`` are retried with backoff until written."""
        if not items:
            return
        if len(items) > BATCH_WRITE_LIMIT:
            raise ValueError(f"BatchWriteItem takes at most {BATCH_WRITE_LIMIT} items, got {len(items)}")
        request: dict[str, Any] = {self._table: [{"PutRequest": {"Item": item}} for item in items]}
        for attempt in range(1, self._max_attempts + 1):
            response = self._ddb.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                return
            if attempt < self._max_attempts:
                self._sleep(backoff_seconds(attempt))
        left = len(request.get(self._table, []))
        raise WriteFailed(
            f"{left} items stayed unprocessed after {self._max_attempts} BatchWriteItem attempts"
        )

    def put(self, item: Item) -> None:
        self._ddb.put_item(TableName=self._table, Item=item)

    def writer(self) -> SnapshotWriter:
        return SnapshotWriter(self.batch_write)

    def record_run(self, snapshot_id: str, attributes: dict[str, Any], expires_at: int) -> None:
        """The run record: written last, so it says the run's digest went out (and drops the claim)."""
        self.put(run_item(snapshot_id, attributes, expires_at))

    def claim_digest(
        self,
        snapshot_id: str,
        seen: dict[str, Any] | None,
        *,
        now: float,
        lease_until: float,
        expires_at: int,
    ) -> bool:
        """Claim the sending of this run's digest: one conditional UpdateItem on the run record.

        Won only if no digest was sent since this delivery read the record (``seen``: none sent,
        or the one whose message id it read) and no other delivery holds a live claim. Sets
        ``digest_lease`` and leaves every other attribute as it is (a fanned-out run's workers may
        be updating it); :meth:`record_run` or :meth:`record_digest` drop the claim once sent.
        """
        sent = seen.get("digest_message_id") if seen else None
        names = {"#m": "digest_message_id", "#l": "digest_lease", "#t": "ttl"}
        values: dict[str, Any] = {
            ":now": _SERIALIZER.serialize(Decimal(str(round(now, 3)))),
            ":lease": _SERIALIZER.serialize(Decimal(str(round(lease_until, 3)))),
            ":ttl": _SERIALIZER.serialize(expires_at),
        }
        condition = "(attribute_not_exists(#l) OR #l < :now) AND "
        if sent is None:
            condition += "attribute_not_exists(#m)"
        else:
            condition += "#m = :m"
            values[":m"] = _SERIALIZER.serialize(str(sent))
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_run_key(snapshot_id),
                UpdateExpression="SET #l = :lease, #t = :ttl",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    def release_digest(self, snapshot_id: str) -> None:
        """Drop this run's digest claim (after a failed publish), so a retry may send it at once."""
        self._ddb.update_item(
            TableName=self._table,
            Key=_run_key(snapshot_id),
            UpdateExpression="REMOVE #l",
            ExpressionAttributeNames={"#l": "digest_lease"},
        )

    # a fanned-out run ------------------------------------------------------------------------
    def run_record(self, snapshot_id: str) -> dict[str, Any] | None:
        response = self._ddb.get_item(TableName=self._table, Key=_run_key(snapshot_id), ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def write_plan(self, snapshot_id: str, messages: Sequence[str], expires_at: int) -> None:
        """One item per batch (its report-queue message), BatchWriteItem of 25."""
        items = [
            _to_item(
                RUN_PK,
                plan_sk(snapshot_id, batch),
                {"snapshot_id": snapshot_id, "batch": batch, "message": message},
                expires_at,
            )
            for batch, message in enumerate(messages)
        ]
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            self.batch_write(items[start : start + BATCH_WRITE_LIMIT])

    def create_run(self, snapshot_id: str, attributes: dict[str, Any], expires_at: int) -> bool:
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=run_item(snapshot_id, attributes, expires_at),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    def record_batch(
        self,
        snapshot_id: str,
        batch: int,
        outcomes: Sequence[GroupOutcome],
        worst: Sequence[tuple[str, InstanceRow]],
        expires_at: int,
    ) -> None:
        groups: dict[str, Any] = {}
        for outcome in outcomes:
            entry: dict[str, Any] = {"status": outcome.status}
            if outcome.error:
                entry["error"] = outcome.error
            if outcome.totals is not None:
                entry["totals"] = outcome.totals.attributes()
            groups[outcome.group] = entry
        attributes = {
            "snapshot_id": snapshot_id,
            "batch": batch,
            "groups": groups,
            "worst": [{**row.attributes(), "group": group} for group, row in worst],
        }
        self.put(_to_item(RUN_PK, report_sk(snapshot_id, batch), attributes, expires_at))

    def mark_batch_done(self, snapshot_id: str, batch: int) -> dict[str, Any]:
        response = self._ddb.update_item(
            TableName=self._table,
            Key=_run_key(snapshot_id),
            UpdateExpression="ADD #d :b",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#d": "done_batches"},
            ExpressionAttributeValues={":b": {"NS": [str(batch)]}},
            ReturnValues="ALL_NEW",
        )
        return _from_item(response["Attributes"])

    def run_ledger(self, snapshot_id: str) -> RunLedger:
        """The run's plan and batch reports: one Query (1 MB pages)."""
        pages = self._ddb.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": RUN_PK},
                ":prefix": {"S": f"{snapshot_sk(snapshot_id)}#"},
            },
            ConsistentRead=True,
        )
        plan: dict[int, str] = {}
        reports: dict[int, BatchReport] = {}
        for page in pages:
            for item in page["Items"]:
                data = _from_item(item)
                batch = int(data["batch"])
                if "message" in data:
                    plan[batch] = str(data["message"])
                else:
                    reports[batch] = _batch_report(data)
        return RunLedger(plan, reports)

    def record_digest(self, snapshot_id: str, attributes: dict[str, Any]) -> None:
        kept = {name: value for name, value in attributes.items() if value is not None}
        names = {f"#a{i}": name for i, name in enumerate(kept)}
        values = {f":v{i}": _SERIALIZER.serialize(value) for i, value in enumerate(kept.values())}
        assignments = ", ".join(f"#a{i} = :v{i}" for i in range(len(kept)))
        self._ddb.update_item(
            TableName=self._table,
            Key=_run_key(snapshot_id),
            UpdateExpression=f"SET {assignments} REMOVE #l",
            ExpressionAttributeNames={**names, "#l": "digest_lease"},
            ExpressionAttributeValues=values,
        )


def _batch_report(data: dict[str, Any]) -> BatchReport:
    outcomes = []
    for group, entry in dict(data.get("groups", {})).items():
        totals = entry.get("totals")
        outcomes.append(
            GroupOutcome(
                str(group),
                str(entry["status"]),
                totals=GroupTotals.from_attributes(totals) if totals else None,
                error=str(entry["error"]) if entry.get("error") else None,
            )
        )
    worst = [(str(row["group"]), InstanceRow.from_attributes(row)) for row in data.get("worst", [])]
    return BatchReport(outcomes, worst)


@dataclass
class WriteResult:
    committed: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)


class SnapshotWriter:
    """Fills BatchWriteItem calls of 25 across groups, and writes each group's commit items only
    after all of its other items are written.

    Items are written in full batches as groups are added. A group's commit items become *ready*
    once its last item is written; ready commits are held back (at most :data:`HELD_COMMITS`, then
    written in full batches) so that at the end they fill the batch holding the last items and the
    batches after it. So a run makes ceil(all items / 25) calls whenever that is possible at all
    (it is not when the last batch would have to mix a group's rows with its own commit).

    A batch that fails for good fails every group with an item in it (their other items and
    commits are dropped, so no ``LATEST`` claims an incomplete snapshot); the other groups go on.
    """

    def __init__(self, write: Callable[[Sequence[Item]], None]) -> None:
        self._write = write
        self._items: deque[tuple[str, Item]] = deque()
        self._ready: deque[tuple[str, Item]] = deque()
        self._open: dict[str, int] = {}
        self._commits: dict[str, list[Item]] = {}
        self._open_commits: dict[str, int] = {}
        self.result = WriteResult()

    def add(self, group: str, items: Iterable[Item], commit: Sequence[Item]) -> None:
        queued = [(group, item) for item in items]
        self._open[group] = len(queued)
        self._commits[group] = list(commit)
        self._open_commits[group] = len(commit)
        self._items.extend(queued)
        if not queued:
            self._release(group)
        while len(self._items) >= BATCH_WRITE_LIMIT:
            self._flush(self._take(self._items, BATCH_WRITE_LIMIT))
        while len(self._ready) >= HELD_COMMITS:
            self._flush(self._take(self._ready, BATCH_WRITE_LIMIT))

    def write_snapshot(
        self,
        group: str,
        snapshot_id: str,
        rows: Iterable[InstanceRow],
        totals: GroupTotals,
        *,
        moves_latest: bool,
        expires_at: int,
    ) -> None:
        """Queue one group's snapshot: its instance rows, then (committed last) its totals and,
        when ``moves_latest``, its ``LATEST`` entry, so no ``LATEST`` names an incomplete snapshot."""
        items = [instance_item(group, snapshot_id, row, expires_at) for row in rows]
        if moves_latest:
            items.append(totals_item(totals, expires_at))
            commit = [latest_item(totals, expires_at)]
        else:
            commit = [totals_item(totals, expires_at)]
        self.add(group, items, commit)

    def finish(self) -> WriteResult:
        """Write everything left: the last items, topped up with ready commits, then the commits."""
        while self._items or self._ready:
            batch = self._take(self._items, BATCH_WRITE_LIMIT)
            batch += self._take(self._ready, BATCH_WRITE_LIMIT - len(batch))
            self._flush(batch)
        return self.result

    def _take(self, source: deque[tuple[str, Item]], count: int) -> list[tuple[str, Item]]:
        taken: list[tuple[str, Item]] = []
        while source and len(taken) < count:
            entry = source.popleft()
            if entry[0] not in self.result.failed:
                taken.append(entry)
        return taken

    def _release(self, group: str) -> None:
        commits = self._commits.pop(group, [])
        if commits:
            self._ready.extend((group, item) for item in commits)
        else:
            self.result.committed.add(group)

    def _flush(self, batch: list[tuple[str, Item]]) -> None:
        if not batch:
            return
        try:
            self._write([item for _, item in batch])
        except (WriteFailed, ClientError, BotoCoreError) as error:
            for group in {group for group, _ in batch}:
                self.result.failed[group] = f"DynamoDB write failed: {error}"
                self._commits.pop(group, None)
            return
        for group, _ in batch:
            if self._open[group] > 0:
                self._open[group] -= 1
                if self._open[group] == 0:
                    self._release(group)
            else:
                self._open_commits[group] -= 1
                if self._open_commits[group] == 0:
                    self.result.committed.add(group)
