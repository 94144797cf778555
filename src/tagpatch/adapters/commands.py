"""CommandStatusTable: one item per (command, instance) and one per command.

Keys
    ``pk = "CMD#<commandId>"``; ``sk = "INST#<instanceId>"`` for an instance's invocation,
    ``sk = "COMMAND"`` for the command. Query ``pk`` for everything about a command.
Indexes (both sparse: only invocation items carry both attributes)
    ``ByInstance``: ``instance_id`` + ``event_time`` (an instance's runs over time);
    ``ByGroup``: ``group`` + ``event_time`` (a group's runs over time). ``group`` is the group's
    slug (:func:`tagpatch.naming.group_slug`), equal to the tag value for every SSM-safe value.
Ordering
    Writes are conditional (:func:`tagpatch.collector.supersedes`), so duplicates and late,
    lower-ranked notifications change nothing. ``event_time`` is a fixed-width UTC string.
TTL
    ``ttl`` (epoch seconds), refreshed on every write.

Every method is one DynamoDB call, except :meth:`merge_batch` when a command's tracked failures
reach :data:`MAX_TRACKED_FAILURES` (then one more, which counts them instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tagpatch import naming
from tagpatch.adapters.clients import CONDITION_FAILED, client, error_code
from tagpatch.models.records import (
    AlertClaim,
    BatchMerge,
    CommandRecord,
    CommandState,
    CommandWrite,
    InvocationRecord,
    WriteOutcome,
)
from tagpatch.models.run_status import RANK, TERMINAL_RANK, RunStatus, stamp

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()

COMMAND_PREFIX = "CMD#"
INSTANCE_PREFIX = "INST#"
COMMAND_SK = "COMMAND"
BY_INSTANCE = "ByInstance"
BY_GROUP = "ByGroup"
# Failed instance ids kept per command (for alert de-duplication); ~20 bytes each, twice (failed
# and alerted), well inside DynamoDB's 400 KB item limit. Beyond it failures are only counted.
MAX_TRACKED_FAILURES = 5000

# The invocation write, fixed text (one per notification, the collector's hot path): status,
# rank and time for the ordering condition (:func:`tagpatch.collector.supersedes`), the index keys
# (instance_id; group when known) and ttl. status, group and ttl are reserved words.
_INVOCATION_SET = "SET #s = :s, status_rank = :r, event_time = :t, instance_id = :i, #ttl = :x"
_INVOCATION_SET_GROUP = ", #g = :g"
_INVOCATION_NAMES_NO_GROUP = {"#s": "status", "#ttl": "ttl"}
_INVOCATION_NAMES = {**_INVOCATION_NAMES_NO_GROUP, "#g": "group"}
_TERMINAL_CONDITION = "attribute_not_exists(#s) OR status_rank < :r"
_ORDERING_CONDITION = "attribute_not_exists(#s) OR (status_rank <= :r AND event_time < :t)"


def command_key(command_id: str) -> dict[str, Any]:
    return {"pk": {"S": COMMAND_PREFIX + command_id}, "sk": {"S": COMMAND_SK}}


def invocation_key(command_id: str, instance_id: str) -> dict[str, Any]:
    return {"pk": {"S": COMMAND_PREFIX + command_id}, "sk": {"S": INSTANCE_PREFIX + instance_id}}


class _Expression:
    """Placeholders for an update: every name and value goes through ``#n<i>``/``:v<i>``."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.conditions: list[str] = []

    def n(self, name: str) -> str:
        for placeholder, existing in self.names.items():
            if existing == name:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = name
        return placeholder

    def v(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        if isinstance(value, float):
            value = Decimal(str(round(value, 3)))
        self.values[placeholder] = _SERIALIZER.serialize(value)
        return placeholder

    def set(self, name: str, value: Any, *, if_absent: bool = False) -> None:
        target = self.n(name)
        source = f"if_not_exists({target}, {self.v(value)})" if if_absent else self.v(value)
        self.sets.append(f"{target} = {source}")

    def add(self, name: str, value: Any) -> None:
        self.adds.append(f"{self.n(name)} {self.v(value)}")

    def remove(self, name: str) -> None:
        self.removes.append(self.n(name))

    def params(self) -> dict[str, Any]:
        clauses = []
        if self.sets:
            clauses.append("SET " + ", ".join(self.sets))
        if self.adds:
            clauses.append("ADD " + ", ".join(self.adds))
        if self.removes:
            clauses.append("REMOVE " + ", ".join(self.removes))
        params: dict[str, Any] = {
            "UpdateExpression": " ".join(clauses),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        if self.conditions:
            params["ConditionExpression"] = " AND ".join(f"({c})" for c in self.conditions)
        return params


def _ordering_condition(expr: _Expression, status: RunStatus, event_time: str, time_attribute: str) -> str:
    """The DynamoDB form of :func:`tagpatch.collector.supersedes`."""
    status_name, rank_name = expr.n("status"), expr.n("status_rank")
    if RANK[status] == TERMINAL_RANK:
        return f"attribute_not_exists({status_name}) OR {rank_name} < {expr.v(TERMINAL_RANK)}"
    return (
        f"attribute_not_exists({status_name}) OR "
        f"({rank_name} <= {expr.v(RANK[status])} AND {expr.n(time_attribute)} < {expr.v(event_time)})"
    )


def _plain(item: dict[str, Any] | None) -> dict[str, Any]:
    return {key: _DESERIALIZER.deserialize(value) for key, value in (item or {}).items()}


def _status(value: Any) -> RunStatus | None:
    try:
        return RunStatus(str(value)) if value is not None else None
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if value is not None else None


def state_from_item(item: dict[str, Any]) -> CommandState:
    plain = _plain(item)
    counts: dict[RunStatus, int] = {}
    failed: dict[RunStatus, frozenset[str]] = {}
    for key, value in plain.items():
        if key.startswith("count_") and (status := _status(key.removeprefix("count_"))) is not None:
            counts[status] = int(value)
        elif key.startswith("failed_") and (status := _status(key.removeprefix("failed_"))) is not None:
            failed[status] = frozenset(str(v) for v in value)
    return CommandState(
        command_id=str(plain.get("command_id") or str(plain.get("pk", "")).removeprefix(COMMAND_PREFIX)),
        group=str(plain["group"]) if plain.get("group") else None,
        output_bucket=str(plain.get("output_bucket", "")),
        output_prefix=str(plain.get("output_prefix", "")),
        resolved="output_prefix" in plain,
        document_name=str(plain.get("document_name", "")),
        requested_at=str(plain.get("requested_at", "")),
        status=_status(plain.get("status")),
        status_time=str(plain["status_time"]) if plain.get("status_time") else None,
        instance_ids=frozenset(str(v) for v in plain.get("instance_ids", set())),
        counts=counts,
        failed=failed,
        alerted=frozenset(str(v) for v in plain.get("alerted_ids", set())),
        untracked_failures=int(plain.get("untracked_failures", 0)),
        alert_count=int(plain.get("alert_count", 0)),
        last_alert_at=_number(plain.get("last_alert_at")),
        flush_at=_number(plain.get("flush_at")),
        command_alert_sent=bool(plain.get("command_alert_sent", False)),
        command_alert_lease=_number(plain.get("command_alert_lease")),
        run_result_sent=bool(plain.get("run_result_sent", False)),
        run_result_lease=_number(plain.get("run_result_lease")),
        result_checks=int(plain.get("result_checks", 0)),
        result_check_at=_number(plain.get("result_check_at")),
    )


def _now_stamp(now: float) -> str:
    return stamp(datetime.fromtimestamp(now, tz=UTC))


class CommandStatusTable:
    def __init__(self, table_name: str, dynamodb_client: Any | None = None) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")

    # -- writes ------------------------------------------------------------------------------
    def record_invocation(self, record: InvocationRecord, *, expires_at: int) -> WriteOutcome:
        """Move the (command, instance) item to ``record``'s status if that is a step forward.

        The item holds only what is its own (see :data:`_INVOCATION_SET`): what the command
        shares by all its instances (document, request time, output location) lives once on the
        command item, under the same ``pk``, so the item and its two ``ALL``-projected index
        copies stay small; readers get ``command_id`` back from ``pk`` (:func:`_record`).
        """
        values: dict[str, Any] = {
            ":s": {"S": record.status.value},
            ":r": {"N": str(RANK[record.status])},
            ":t": {"S": record.event_time},
            ":i": {"S": record.instance_id},
            ":x": {"N": str(expires_at)},
        }
        update = _INVOCATION_SET
        if record.group:
            values[":g"] = {"S": record.group}
            update += _INVOCATION_SET_GROUP
        try:
            response = self._ddb.update_item(
                TableName=self._table,
                Key=invocation_key(record.command_id, record.instance_id),
                UpdateExpression=update,
                ConditionExpression=(
                    _TERMINAL_CONDITION if RANK[record.status] == TERMINAL_RANK else _ORDERING_CONDITION
                ),
                ExpressionAttributeNames=_INVOCATION_NAMES if record.group else _INVOCATION_NAMES_NO_GROUP,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            return WriteOutcome(False, _status(_plain(_failed_item(error)).get("status")))
        return WriteOutcome(True, _status(_plain(response.get("Attributes")).get("status")))

    def record_command(
        self, record: CommandRecord, *, now: float, expires_at: int, lease_until: float | None
    ) -> CommandWrite:
        """Move the command item to a Command notification's status if that is a step forward;
        with ``lease_until``, the same write claims the command's final alert."""
        ctx = record.context
        expr = _Expression()
        expr.set("kind", "command")
        expr.set("command_id", record.command_id)
        expr.set("status", record.status.value)
        expr.set("status_rank", RANK[record.status])
        expr.set("status_time", record.event_time)
        expr.set("document_name", record.document_name)
        expr.set("requested_at", record.requested_at)
        expr.set("expires_after", record.expires_after)
        if ctx.output_prefix:
            # An empty prefix is no answer (the collector looked the command up instead): writing
            # it would mark the item resolved without a group, or erase a resolved location.
            expr.set("output_bucket", ctx.output_bucket)
            expr.set("output_prefix", ctx.output_prefix)
        expr.set("instance_count", len(record.instance_ids))
        expr.set("updated_at", _now_stamp(now))
        expr.set("ttl", expires_at)
        if ctx.group:
            expr.set("group", ctx.group)
        if record.instance_ids:
            expr.add("instance_ids", set(record.instance_ids))
        if lease_until is not None:
            expr.set("command_alert_lease", lease_until)
        expr.conditions.append(_ordering_condition(expr, record.status, record.event_time, "status_time"))
        try:
            response = self._ddb.update_item(
                TableName=self._table,
                Key=command_key(record.command_id),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expr.params(),
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            return CommandWrite(False, state_from_item(_failed_item(error)))
        return CommandWrite(True, state_from_item(response["Attributes"]))

    def merge_batch(self, merge: BatchMerge, *, now: float, expires_at: int) -> CommandState:
        """Add one batch's status counts and failed instances to the command item; the item after."""
        try:
            return self._merge(merge, now, expires_at, track=True)
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
        return self._merge(merge, now, expires_at, track=False)

    def _merge(self, merge: BatchMerge, now: float, expires_at: int, *, track: bool) -> CommandState:
        expr = _Expression()
        expr.set("kind", "command")
        expr.set("command_id", merge.command_id)
        expr.set("updated_at", _now_stamp(now))
        expr.set("ttl", expires_at)
        if merge.document_name:
            expr.set("document_name", merge.document_name, if_absent=True)
        if merge.requested_at:
            expr.set("requested_at", merge.requested_at, if_absent=True)
        if merge.context is not None:
            expr.set("output_bucket", merge.context.output_bucket, if_absent=True)
            expr.set("output_prefix", merge.context.output_prefix, if_absent=True)
            if merge.context.group:
                expr.set("group", merge.context.group, if_absent=True)
        for status, delta in sorted(merge.deltas.items()):
            if delta:
                expr.add(f"count_{status.value}", delta)
        untracked = 0
        for status, ids in sorted(merge.failures.items()):
            if not ids:
                continue
            if track:
                name = expr.n(f"failed_{status.value}")
                expr.add(f"failed_{status.value}", set(ids))
                expr.conditions.append(
                    f"attribute_not_exists({name}) OR size({name}) < {expr.v(MAX_TRACKED_FAILURES)}"
                )
            else:
                untracked += len(ids)
        if untracked:
            expr.add("untracked_failures", untracked)
        response = self._ddb.update_item(
            TableName=self._table, Key=command_key(merge.command_id), ReturnValues="ALL_NEW", **expr.params()
        )
        return state_from_item(response["Attributes"])

    def claim_alert(
        self, command_id: str, *, seen_count: int, now: float, lease_until: float
    ) -> AlertClaim | None:
        """Lease the command's next alert until ``lease_until``; None when another batch sent one
        since ``seen_count`` or holds a live lease. The slot is not used yet: :meth:`commit_alert`
        counts it once the publish succeeded, :meth:`release_alert` gives it back when it failed."""
        expr = _Expression()
        expr.set("alert_lease", lease_until)
        count, lease = expr.n("alert_count"), expr.n("alert_lease")
        expr.conditions.append(
            f"attribute_not_exists({count})" if seen_count == 0 else f"{count} = {expr.v(seen_count)}"
        )
        expr.conditions.append(f"attribute_not_exists({lease}) OR {lease} < {expr.v(now)}")
        return self._claim(command_id, expr, "alert_lease")

    def commit_alert(self, command_id: str, instance_ids: Iterable[str], *, now: float) -> None:
        """Record a published alert, in one write: its slot (count and time), the instances it
        listed, the lease and any pending flush gone."""
        expr = _Expression()
        expr.set("last_alert_at", now)
        expr.add("alert_count", 1)
        ids = set(instance_ids)
        if ids:
            expr.add("alerted_ids", ids)
        expr.remove("alert_lease")
        expr.remove("flush_at")
        self._ddb.update_item(TableName=self._table, Key=command_key(command_id), **expr.params())

    def release_alert(self, command_id: str, *, lease_until: float) -> None:
        """Give back a lease whose publish failed (nothing went out), if it is still ours."""
        self._release(command_id, "alert_lease", lease_until)

    def claim_command_alert(self, command_id: str, *, now: float, lease_until: float) -> AlertClaim | None:
        """Claim the command's final alert again after an earlier claimant died before sending it."""
        expr = _Expression()
        expr.set("command_alert_lease", lease_until)
        sent, lease = expr.n("command_alert_sent"), expr.n("command_alert_lease")
        expr.conditions.append(f"attribute_not_exists({sent})")
        expr.conditions.append(f"attribute_not_exists({lease}) OR {lease} < {expr.v(now)}")
        return self._claim(command_id, expr, "command_alert_lease")

    def release_command_alert(self, command_id: str, *, lease_until: float) -> None:
        self._release(command_id, "command_alert_lease", lease_until)

    def _claim(self, command_id: str, expr: _Expression, lease: str) -> AlertClaim | None:
        try:
            response = self._ddb.update_item(
                TableName=self._table,
                Key=command_key(command_id),
                ReturnValues="UPDATED_OLD",
                **expr.params(),
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return None
            raise
        return AlertClaim(lapsed=lease in response.get("Attributes", {}))

    def _release(self, command_id: str, lease: str, lease_until: float) -> None:
        expr = _Expression()
        expr.remove(lease)
        expr.conditions.append(f"{expr.n(lease)} = {expr.v(lease_until)}")
        self._conditional(command_id, expr)

    def commit_command_alert(self, command_id: str, instance_ids: Iterable[str]) -> None:
        """Record a published Command-level summary, in one write: sent (never again), the
        instances it listed, its lease gone."""
        expr = _Expression()
        ids = set(instance_ids)
        if ids:
            expr.add("alerted_ids", ids)
        expr.set("command_alert_sent", True)
        expr.remove("command_alert_lease")
        self._ddb.update_item(TableName=self._table, Key=command_key(command_id), **expr.params())

    def claim_run_result(self, command_id: str, *, now: float, lease_until: float) -> AlertClaim | None:
        """Claim the command's Run Result until ``lease_until``; None when it was published, or
        another batch holds a live claim. A claimant that dies before :meth:`commit_run_result`
        leaves a lease that lapses, so a redelivery publishes it (possibly again)."""
        expr = _Expression()
        expr.set("run_result_lease", lease_until)
        sent, lease = expr.n("run_result_sent"), expr.n("run_result_lease")
        expr.conditions.append(f"attribute_not_exists({sent})")
        expr.conditions.append(f"attribute_not_exists({lease}) OR {lease} < {expr.v(now)}")
        return self._claim(command_id, expr, "run_result_lease")

    def commit_run_result(self, command_id: str) -> None:
        """Record the Run Result as published (never again), its lease and re-check gone."""
        expr = _Expression()
        expr.set("run_result_sent", True)
        expr.remove("run_result_lease")
        expr.remove("result_check_at")
        self._ddb.update_item(TableName=self._table, Key=command_key(command_id), **expr.params())

    def set_result_check(self, command_id: str, *, due: float) -> None:
        """Record a scheduled re-check of the command's end: when it is due, one more of them."""
        expr = _Expression()
        expr.set("result_check_at", due)
        expr.add("result_checks", 1)
        self._ddb.update_item(TableName=self._table, Key=command_key(command_id), **expr.params())

    def set_flush(self, command_id: str, *, due: float) -> None:
        expr = _Expression()
        expr.set("flush_at", due)
        self._ddb.update_item(TableName=self._table, Key=command_key(command_id), **expr.params())

    def _conditional(self, command_id: str, expr: _Expression) -> bool:
        try:
            self._ddb.update_item(TableName=self._table, Key=command_key(command_id), **expr.params())
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    # -- reads -------------------------------------------------------------------------------
    def get_command(self, command_id: str, *, consistent: bool = False) -> CommandState | None:
        item = self._ddb.get_item(
            TableName=self._table, Key=command_key(command_id), ConsistentRead=consistent
        ).get("Item")
        return state_from_item(item) if item else None

    def invocations(self, command_id: str) -> list[dict[str, Any]]:
        """Every instance record of a command."""
        return list(
            self._query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :inst)",
                ExpressionAttributeValues={
                    ":pk": {"S": COMMAND_PREFIX + command_id},
                    ":inst": {"S": INSTANCE_PREFIX},
                },
            )
        )

    def by_instance(
        self, instance_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """An instance's records across commands, oldest first (by last status time)."""
        return self._by_index(BY_INSTANCE, "instance_id", instance_id, since, until)

    def by_group(
        self, group: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """A patch group's instance records, oldest first; ``group`` is the tag value."""
        return self._by_index(BY_GROUP, "group", naming.group_slug(group), since, until)

    def _by_index(
        self, index: str, attribute: str, value: str, since: datetime | None, until: datetime | None
    ) -> list[dict[str, Any]]:
        low = stamp(since) if since else "0"
        high = stamp(until) if until else "9"
        return list(
            self._query(
                IndexName=index,
                KeyConditionExpression="#key = :key AND event_time BETWEEN :low AND :high",
                ExpressionAttributeNames={"#key": attribute},
                ExpressionAttributeValues={":key": {"S": value}, ":low": {"S": low}, ":high": {"S": high}},
            )
        )

    def _query(self, **params: Any) -> Iterator[dict[str, Any]]:
        for page in self._ddb.get_paginator("query").paginate(TableName=self._table, **params):
            for item in page.get("Items", []):
                yield _record(item)


def _record(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item as plain values, with ``command_id`` (kept only in ``pk``) filled in."""
    plain = _plain(item)
    plain.setdefault("command_id", str(plain.get("pk", "")).removeprefix(COMMAND_PREFIX))
    return plain


def _failed_item(error: ClientError) -> dict[str, Any]:
    item = getattr(error, "response", {}).get("Item")
    return dict(item) if isinstance(item, dict) else {}
