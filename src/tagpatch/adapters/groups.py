"""The groups table: what the reconciler last made for each group, and a lease per group.

The lease makes concurrent reconciles of one group safe: exactly one invocation holds it; the
others mark the group ``pending`` and return, and the holder reconciles once more before it lets
go. A crashed holder's lease expires, so nothing stays stuck.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tagpatch.adapters.clients import CONDITION_FAILED, client, error_code
from tagpatch.adapters.placements import PlacementStore
from tagpatch.models.records import RESERVED_PREFIX, GroupRecord

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
# Longer than the reconciler's function timeout (300 s in template.yaml) with a margin for clock
# differences: an invocation cannot outlive the lease it took, so a lease is only ever taken over
# from a dead holder. The reconciler also checks the lease before each SSM write.
LEASE_SECONDS = 360
#: One item holding, for every admitted group, an attribute ``slug:<slug>`` = group, and
#: ``admitted``, their number: one conditional UpdateItem claims a slug and checks the number of
#: admitted groups atomically, so neither a shared slug nor a group over the limit can slip in.
CLAIMS_KEY = f"{RESERVED_PREFIX}claims"
_CLAIM_PREFIX = "slug:"


def record_from_item(item: dict[str, Any]) -> GroupRecord:
    """The :class:`GroupRecord` a groups-table item holds."""
    plain = {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}
    return GroupRecord(
        group=str(plain["group"]),
        slug=str(plain.get("slug", "")),
        status=str(plain.get("status", "new")),
        fingerprint=str(plain.get("fingerprint", "")),
        windows={
            str(role): {str(k): str(v) for k, v in ids.items()}
            for role, ids in dict(plain.get("windows", {})).items()
        },
        baseline_id=str(plain.get("baseline_id", "")),
        reasons=[str(reason) for reason in plain.get("reasons", [])],
        instance_count=int(plain.get("instance_count", -1)),
        empty_since=str(plain.get("empty_since", "")),
        updated_at=str(plain.get("updated_at", "")),
        admitted_slug=str(plain.get("admitted_slug", "")),
        names=int(plain.get("names", 0)),
        legacy_slug=str(plain.get("legacy_slug", "")),
    )


def record_state(record: GroupRecord) -> dict[str, Any]:
    """Every attribute but the key and the lease, ready for an update."""
    state = asdict(record)
    del state["group"]
    return state


def _key(group: str) -> dict[str, Any]:
    return {"group": {"S": group}}


class GroupsRepository(PlacementStore):
    lease_seconds = LEASE_SECONDS

    def __init__(self, table_name: str, dynamodb_client: Any | None = None) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")

    def get(self, group: str) -> GroupRecord | None:
        item = self._ddb.get_item(TableName=self._table, Key=_key(group), ConsistentRead=True).get("Item")
        return record_from_item(item) if item else None

    def all(self) -> list[GroupRecord]:
        pages = self._ddb.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True)
        return [
            record_from_item(item)
            for page in pages
            for item in page.get("Items", [])
            if not item["group"]["S"].startswith(RESERVED_PREFIX)
        ]

    def claim(self, group: str, slug: str, limit: int | None) -> str | None:
        attribute = f"{_CLAIM_PREFIX}{slug}"
        condition = "attribute_not_exists(#s)"
        values: dict[str, Any] = {":g": {"S": group}, ":one": {"N": "1"}}
        if limit is not None:
            condition += " AND (attribute_not_exists(admitted) OR admitted < :limit)"
            values[":limit"] = {"N": str(limit)}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(CLAIMS_KEY),
                UpdateExpression="SET #s = :g ADD admitted :one",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": attribute},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            old: Any = error.response.get("Item")
            item: dict[str, Any] = dict(old) if old else self._claims_item()
        holder = item.get(attribute, {}).get("S")
        if holder == group:
            return None  # ours already (a retried claim whose first answer was lost)
        if holder is not None:
            return f"its slug {slug!r} is claimed by patch group {holder!r}"
        admitted = item.get("admitted", {}).get("N", "0")
        return f"{admitted} patch groups are managed already and the stack's MaxGroups is {limit}"

    def _claims_item(self) -> dict[str, Any]:
        response = self._ddb.get_item(TableName=self._table, Key=_key(CLAIMS_KEY), ConsistentRead=True)
        return dict(response.get("Item", {}))

    def unclaim(self, group: str, slug: str) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(CLAIMS_KEY),
                UpdateExpression="REMOVE #s ADD admitted :minus_one",
                ConditionExpression="#s = :g",
                ExpressionAttributeNames={"#s": f"{_CLAIM_PREFIX}{slug}"},
                ExpressionAttributeValues={":g": {"S": group}, ":minus_one": {"N": "-1"}},
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise  # else not ours (any more): nothing to give up

    def acquire(self, group: str, owner: str, now: int) -> GroupRecord | None:
        """Take the group's lease; the current record (new if none), or None when another holds it."""
        try:
            response = self._ddb.update_item(
                TableName=self._table,
                Key=_key(group),
                UpdateExpression="SET lock_owner = :owner, lock_expires = :expires REMOVE pending",
                # "= :owner": our own earlier attempt applied but its response was lost (owners are
                # unique per attempt, so nobody else can match it).
                ConditionExpression=(
                    "attribute_not_exists(lock_owner) OR lock_expires < :now OR lock_owner = :owner"
                ),
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":expires": {"N": str(now + LEASE_SECONDS)},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return None
            raise
        return record_from_item(response["Attributes"])

    def mark_pending(self, group: str, now: int) -> bool:
        """Ask the lease holder to reconcile once more; False when nobody holds the lease any longer."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(group),
                UpdateExpression="SET pending = :yes",
                ConditionExpression="attribute_exists(lock_owner) AND lock_expires >= :now",
                ExpressionAttributeValues={":yes": {"BOOL": True}, ":now": {"N": str(now)}},
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    def release(self, record: GroupRecord, owner: str, *, force: bool = False) -> bool:
        """Save ``record`` and give up the lease; False (nothing saved, lease kept, request cleared)
        when another invocation asked for a rerun meanwhile, unless ``force``."""
        state = record_state(record)
        names = {f"#a{i}": name for i, name in enumerate(state)}
        values = {f":v{i}": _SERIALIZER.serialize(value) for i, value in enumerate(state.values())}
        assignments = ", ".join(f"#a{i} = :v{i}" for i in range(len(state)))
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(record.group),
                UpdateExpression=f"SET {assignments} REMOVE lock_owner, lock_expires"
                + (", pending" if force else ""),
                ConditionExpression="lock_owner = :owner"
                + ("" if force else " AND attribute_not_exists(pending)"),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":owner": {"S": owner}},
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            if self._already_saved(record):
                return True  # our earlier attempt applied; only its response was lost
            if force:
                raise LeaseLost(record.group) from error
            self._clear_pending(record.group, owner)
            return False
        return True

    def queue(self, group: str) -> None:
        """Ask for the group to be reconciled by the next sweep (makes the item if there is none)."""
        self._ddb.update_item(
            TableName=self._table,
            Key=_key(group),
            UpdateExpression="SET pending = :yes",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    def pending(self, now: int) -> list[str]:
        """Groups asked for a rerun that nobody holds the lease of (its holder died, or was never)."""
        pages = self._ddb.get_paginator("scan").paginate(
            TableName=self._table,
            ConsistentRead=True,
            ProjectionExpression="#g",
            FilterExpression="pending = :yes AND (attribute_not_exists(lock_owner) OR lock_expires < :now)",
            ExpressionAttributeNames={"#g": "group"},
            ExpressionAttributeValues={":yes": {"BOOL": True}, ":now": {"N": str(now)}},
        )
        return [item["group"]["S"] for page in pages for item in page.get("Items", [])]

    def _already_saved(self, record: GroupRecord) -> bool:
        """Whether the table holds ``record``'s state with the lease given up (a retried release)."""
        item = self._ddb.get_item(TableName=self._table, Key=_key(record.group), ConsistentRead=True).get(
            "Item"
        )
        return (
            bool(item)
            and "lock_owner" not in item
            and record_state(record_from_item(item)) == record_state(record)
        )

    def _clear_pending(self, group: str, owner: str) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(group),
                UpdateExpression="REMOVE pending",
                ConditionExpression="lock_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if error_code(error) != CONDITION_FAILED:
                raise
            raise LeaseLost(group) from error


class LeaseLost(RuntimeError):
    """Our lease expired and another invocation took the group over."""
