"""The hub's tables (DynamoDB), written by the store function and Scanned by the digest function.

Item shapes are :mod:`tagpatch.hub.records`'; every write here is one request, conditional on the
fact's order (:mod:`tagpatch.hub.core` says why), and answers with the item as it is after the write
(``ReturnValues=ALL_NEW``) or as the failed condition found it
(``ReturnValuesOnConditionCheckFailure=ALL_OLD``, so a lost race costs no extra read). The digest's
own items live under ``pk = #hub``: its last figures split in chunks well below DynamoDB's 400 KB
item limit, a pointer to them, and one claim per schedule event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tagpatch.adapters.clients import CONDITION_FAILED, client, error_code
from tagpatch.hub.records import (
    DIGEST_CLAIM_PREFIX,
    DIGEST_LAST_SK,
    FACET_ORDER,
    HEARTBEAT_ORDER,
    HUB_PK,
    LAST_COMPLIANT_ORDER,
    LAST_EVENT_ORDER,
    MEMBER_SK,
    NC_RUN,
    digest_state_sk,
    group_sk,
    history_pk,
    history_sk,
    member_pk,
)
from tagpatch.hub.state import ComplianceState, HistoryEntry, MemberUpdate, MemberView

#: characters of the digest's figures (JSON, ASCII) per chunk item: far below 400 KB
CHUNK_CHARS: Final = 300_000
BATCH_WRITE_LIMIT: Final = 25
CLAIM_DAYS: Final = 30

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_dynamo(value: Any) -> Any:
    """``value`` with every float as a Decimal (DynamoDB numbers), for TypeSerializer."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def _av(value: Any) -> dict[str, Any]:
    serialized: Any = _SERIALIZER.serialize(to_dynamo(value))
    return dict(serialized)


def _plain(item: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: _DESERIALIZER.deserialize(value) for key, value in (item or {}).items()}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _failed_item(error: ClientError) -> dict[str, Any] | None:
    """The item a failed condition found (ALL_OLD); None when the error is not a failed condition."""
    if error_code(error) != CONDITION_FAILED:
        return None
    response: Any = error.response
    return _plain(response.get("Item"))


def member_view(item: Mapping[str, Any]) -> MemberView:
    return MemberView(
        last_order=str(item.get(LAST_EVENT_ORDER, "")),
        first_seen=str(item.get("firstSeenAt", "")),
        heartbeat_order=str(item.get(HEARTBEAT_ORDER, "")),
        ou_checked_at=str(item.get("ouCheckedAt", "")),
    )


def compliance_state(item: Mapping[str, Any]) -> ComplianceState:
    facet = item.get("compliance") or {}
    return ComplianceState(
        order=str(facet.get(FACET_ORDER, "")),
        nc_run=tuple(str(order) for order in item.get(NC_RUN) or ()),
        last_compliant=str(item.get(LAST_COMPLIANT_ORDER, "")),
    )


class HubStore:
    """:class:`tagpatch.hub.ports.HubStore` and :class:`tagpatch.hub.ports.HubState` on the two tables."""

    def __init__(self, state_table: str, history_table: str = "", dynamodb_client: Any | None = None) -> None:
        self._state = state_table
        self._history = history_table
        self._ddb = dynamodb_client or client("dynamodb")

    # --- the store function ----------------------------------------------------------------------
    def _update(self, key: dict[str, Any], **request: Any) -> tuple[bool, dict[str, Any]]:
        """One conditional UpdateItem: whether it was applied, and the item after it or as found."""
        try:
            response = self._ddb.update_item(
                TableName=self._state,
                Key=key,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **request,
            )
        except ClientError as error:
            found = _failed_item(error)
            if found is None:
                raise
            return False, found
        return True, _plain(response.get("Attributes"))

    def update_member(self, update: MemberUpdate) -> tuple[bool, MemberView]:
        names = {
            "#stack": "stack",
            "#version": "version",
            "#schema": "schemaVersion",
            "#at": "lastEventAt",
            "#type": "lastEventType",
            "#order": LAST_EVENT_ORDER,
            "#first": "firstSeenAt",
        }
        values: dict[str, Any] = {
            ":stack": _av(update.stack),
            ":version": _av(update.version),
            ":schema": _av(update.schema_version),
            ":at": _av(update.time),
            ":type": _av(update.event_type),
            ":first": _av(update.first_seen),
            ":order": _av(update.order),
        }
        sets = [
            "#stack = :stack",
            "#version = :version",
            "#schema = :schema",
            "#at = :at",
            "#type = :type",
            "#order = :order",
            "#first = if_not_exists(#first, :first)",
        ]
        if update.heartbeat is not None:
            groups, by_status = update.heartbeat
            names.update({"#groups": "groups", "#status": "groupsByStatus", "#beat": HEARTBEAT_ORDER})
            values.update({":groups": _av(groups), ":status": _av(by_status)})
            sets += ["#groups = :groups", "#status = :status", "#beat = :order"]
        written, item = self._update(
            _key(member_pk(update.account, update.region), MEMBER_SK),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_not_exists(#order) OR #order < :order",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return written, member_view(item)

    def lower_first_seen(self, account: str, region: str, time: str) -> None:
        self._update(
            _key(member_pk(account, region), MEMBER_SK),
            UpdateExpression="SET #first = :at",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#first) OR #first > :at)",
            ExpressionAttributeNames={"#first": "firstSeenAt"},
            ExpressionAttributeValues={":at": _av(time)},
        )

    def update_heartbeat(
        self, account: str, region: str, order: str, groups: int, by_status: Mapping[str, int]
    ) -> bool:
        written, _ = self._update(
            _key(member_pk(account, region), MEMBER_SK),
            UpdateExpression="SET #groups = :groups, #status = :status, #beat = :order",
            ConditionExpression="attribute_not_exists(#beat) OR #beat < :order",
            ExpressionAttributeNames={
                "#groups": "groups",
                "#status": "groupsByStatus",
                "#beat": HEARTBEAT_ORDER,
            },
            ExpressionAttributeValues={
                ":groups": _av(groups),
                ":status": _av(dict(by_status)),
                ":order": _av(order),
            },
        )
        return written

    def set_ou(self, account: str, region: str, ou_id: str, ou_name: str, checked_at: str) -> None:
        self._ddb.update_item(
            TableName=self._state,
            Key=_key(member_pk(account, region), MEMBER_SK),
            UpdateExpression="SET ouId = :id, ouName = :name, ouCheckedAt = :at",
            ExpressionAttributeValues={":id": _av(ou_id), ":name": _av(ou_name), ":at": _av(checked_at)},
        )

    def put_facet(self, account: str, region: str, group: str, name: str, facet: Mapping[str, Any]) -> str:
        written, item = self._update(
            _key(member_pk(account, region), group_sk(group)),
            UpdateExpression="SET #facet = :facet",
            ConditionExpression="attribute_not_exists(#facet) OR #facet.#order < :order",
            ExpressionAttributeNames={"#facet": name, "#order": FACET_ORDER},
            ExpressionAttributeValues={":facet": _av(dict(facet)), ":order": _av(facet[FACET_ORDER])},
        )
        return "" if written else str((item.get(name) or {}).get(FACET_ORDER, ""))

    def put_newest_snapshot(
        self, account: str, region: str, group: str, facet: Mapping[str, Any], *, non_compliant: bool
    ) -> tuple[bool, ComplianceState]:
        names = {"#facet": "compliance", "#order": FACET_ORDER, "#run": NC_RUN, "#since": "nonCompliantSince"}
        values: dict[str, Any] = {":facet": _av(dict(facet)), ":order": _av(facet[FACET_ORDER])}
        if non_compliant:
            update = (
                "SET #facet = :facet, #run = list_append(if_not_exists(#run, :empty), :one), "
                "#since = if_not_exists(#since, :at)"
            )
            values.update({":empty": {"L": []}, ":one": _av([facet[FACET_ORDER]]), ":at": _av(facet["at"])})
        else:
            update = "SET #facet = :facet, #last = :order REMOVE #run, #since"
            names["#last"] = LAST_COMPLIANT_ORDER
        written, item = self._update(
            _key(member_pk(account, region), group_sk(group)),
            UpdateExpression=update,
            ConditionExpression="attribute_not_exists(#facet) OR #facet.#order < :order",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return written, compliance_state(item)

    def rewrite_compliance_run(
        self, account: str, region: str, group: str, seen: ComplianceState, new: ComplianceState
    ) -> ComplianceState | None:
        names = {
            "#facet": "compliance",
            "#order": FACET_ORDER,
            "#run": NC_RUN,
            "#since": "nonCompliantSince",
            "#last": LAST_COMPLIANT_ORDER,
        }
        values: dict[str, Any] = {":seen": _av(seen.order)}
        conditions = ["#facet.#order = :seen"]
        if seen.nc_run:
            conditions.append("size(#run) = :size")
            values[":size"] = _av(len(seen.nc_run))
        else:
            conditions.append("attribute_not_exists(#run)")
        if seen.last_compliant:
            conditions.append("#last = :seenlast")
            values[":seenlast"] = _av(seen.last_compliant)
        else:
            conditions.append("attribute_not_exists(#last)")
        sets, removes = [], []
        if new.nc_run:
            sets += ["#run = :run", "#since = :since"]
            values.update({":run": _av(list(new.nc_run)), ":since": _av(new.since)})
        else:
            removes += ["#run", "#since"]
        if new.last_compliant:
            sets.append("#last = :last")
            values[":last"] = _av(new.last_compliant)
        else:
            removes.append("#last")
        update = "SET " + ", ".join(sets) if sets else ""
        if removes:
            update = f"{update} REMOVE {', '.join(removes)}".strip()
        written, item = self._update(
            _key(member_pk(account, region), group_sk(group)),
            UpdateExpression=update,
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return None if written else compliance_state(item)

    def put_history(self, entry: HistoryEntry) -> bool:
        item = {
            **entry.attributes,
            "pk": history_pk(entry.kind, entry.time),
            "sk": history_sk(entry.time, entry.account, entry.region, entry.group, entry.fact_id),
            "expiresAt": entry.expires_at,
        }
        try:
            self._ddb.put_item(
                TableName=self._history,
                Item={key: _av(value) for key, value in item.items() if value is not None},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    # --- the digest function ---------------------------------------------------------------------
    def scan(self) -> Sequence[Mapping[str, Any]]:
        return list(self._scan())

    def _scan(self) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"TableName": self._state}
        while True:
            response = self._ddb.scan(**request)
            yield from (_plain(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def remember_digest(
        self, generation: str, figures: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None:
        """Write ``figures`` as chunks of ``generation``, point at them, then delete the chunks of
        the ``previous`` pointer (``{"generation", "chunks"}``; a crash leaves unreferenced chunks
        that the next digest deletes with its own predecessor's)."""
        text = json.dumps(figures, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
        chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
        self._write_batches(
            [
                {
                    "PutRequest": {
                        "Item": {**_key(HUB_PK, digest_state_sk(generation, n)), "data": {"S": chunk}}
                    }
                }
                for n, chunk in enumerate(chunks)
            ]
        )
        self._ddb.put_item(
            TableName=self._state,
            Item={
                **_key(HUB_PK, DIGEST_LAST_SK),
                "generation": {"S": generation},
                "chunks": {"N": str(len(chunks))},
            },
        )
        old = str(previous.get("generation", ""))
        if old and old != generation:
            self._write_batches(
                [
                    {"DeleteRequest": {"Key": _key(HUB_PK, digest_state_sk(old, n))}}
                    for n in range(int(previous.get("chunks", 0)))
                ]
            )

    def _write_batches(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: dict[str, Any] = {self._state: requests[start : start + BATCH_WRITE_LIMIT]}
            for _ in range(8):
                response = self._ddb.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise RuntimeError("digest figures not written: items stayed unprocessed")

    def claim_digest(self, claim: str, *, now: float, lease_until: float) -> bool:
        try:
            self._ddb.put_item(
                TableName=self._state,
                Item={
                    **_key(HUB_PK, DIGEST_CLAIM_PREFIX + claim),
                    "status": {"S": "claimed"},
                    "leaseUntil": {"N": str(int(lease_until))},
                    "expiresAt": {"N": str(int(now) + CLAIM_DAYS * 86_400)},
                },
                ConditionExpression="attribute_not_exists(pk) OR (#status = :claimed AND leaseUntil < :now)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":claimed": {"S": "claimed"}, ":now": {"N": str(int(now))}},
            )
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return False
            raise
        return True

    def digest_sent(self, claim: str, message_id: str) -> None:
        self._ddb.update_item(
            TableName=self._state,
            Key=_key(HUB_PK, DIGEST_CLAIM_PREFIX + claim),
            UpdateExpression="SET #status = :sent, messageId = :id",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":sent": {"S": "sent"}, ":id": {"S": message_id}},
        )

    def release_digest(self, claim: str) -> None:
        self._ddb.delete_item(TableName=self._state, Key=_key(HUB_PK, DIGEST_CLAIM_PREFIX + claim))
