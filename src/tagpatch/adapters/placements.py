"""The placement item of the groups table: which shared window each group's role is in.

One item (key ``#tagpatch:placement``) holds, with ``place`` = ``<key id>:<sibling>``:

* ``p:<role>:<slug>`` = place: where the member is;
* ``o:<role>:<slug>`` = string set of places the member is leaving (its target and task may
  still be there: a move registers in the new place first and leaves the old one after);
* ``c:<place>`` = members in the place or leaving it, at most the window's capacity;
* ``w:<place>`` = the place's maintenance window id, ``l:<place>``/``lo:<place>`` the lease of
  whoever is making that window;
* ``k:<key id>`` = the key as JSON (for reports), and ``windows`` = places allocated.

Every change is one conditional UpdateItem, so two reconciles can never put a 21st group into a
window or a 51st window into the account; a lost race is re-read and retried by the reconciler.
The item is small: about 60 bytes per member, so well under DynamoDB's 400 KB at 1,000 groups.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from tagpatch.adapters.clients import CONDITION_FAILED, error_code
from tagpatch.models.records import RESERVED_PREFIX
from tagpatch.reconciler.placement import Placement

PLACEMENT_KEY = f"{RESERVED_PREFIX}placement"
_KEY = {"group": {"S": PLACEMENT_KEY}}


def placement_from_item(item: dict[str, Any]) -> Placement:
    view = Placement()
    for name, value in item.items():
        kind, _, rest = name.partition(":")
        if kind == "p":
            view.members[rest] = value["S"]
        elif kind == "o":
            view.leaving[rest] = set(value.get("SS", []))
        elif kind == "c":
            view.counts[rest] = int(value["N"])
        elif kind == "w":
            view.window_ids[rest] = value["S"]
        elif kind == "l":
            view.creating[rest] = float(value["N"])
        elif kind == "k":
            view.keys[rest] = value["S"]
        elif name == "windows":
            view.windows = int(value["N"])
    return view


class PlacementStore:
    """Mixed into :class:`tagpatch.adapters.groups.GroupsRepository` (same table and client)."""

    _table: str
    _ddb: Any

    def read_placement(self) -> Placement:
        response = self._ddb.get_item(TableName=self._table, Key=_KEY, ConsistentRead=True)
        return placement_from_item(dict(response.get("Item", {})))

    def _update(self, **request: Any) -> dict[str, Any] | None:
        """One conditional UpdateItem of the placement item; None when its condition failed."""
        try:
            return dict(self._ddb.update_item(TableName=self._table, Key=_KEY, **request))
        except ClientError as error:
            if error_code(error) == CONDITION_FAILED:
                return None
            raise

    def place(
        self,
        member: str,
        place: str,
        *,
        new: bool,
        current: str | None,
        capacity: int,
        max_windows: int,
        key_id: str,
        key: dict[str, Any],
    ) -> bool:
        """Put ``member`` in ``place`` (a ``new`` one: allocate it); ``current``: where it is now,
        which it then leaves. False when the item changed meanwhile (re-read, choose again)."""
        names = {"#p": f"p:{member}", "#c": f"c:{place}", "#k": f"k:{key_id}"}
        values: dict[str, Any] = {
            ":place": {"S": place},
            ":one": {"N": "1"},
            ":key": {"S": json.dumps(key, sort_keys=True)},
        }
        sets, adds = ["#p = :place", "#k = :key"], ["#c :one"]
        condition = ["attribute_not_exists(#p)" if current is None else "#p = :current"]
        if current is not None:
            names["#o"] = f"o:{member}"
            values[":current"] = {"S": current}
            values[":old"] = {"SS": [current]}
            adds.append("#o :old")
        if new:
            names.update({"#w": f"w:{place}", "#l": f"l:{place}"})
            values[":max"] = {"N": str(max_windows)}
            adds.append("windows :one")
            condition.append(
                "attribute_not_exists(#c) AND attribute_not_exists(#w) AND attribute_not_exists(#l)"
                " AND (attribute_not_exists(windows) OR windows < :max)"
            )
        else:
            values[":cap"] = {"N": str(capacity)}
            condition.append("#c < :cap")
        return (
            self._update(
                UpdateExpression=f"SET {', '.join(sets)} ADD {', '.join(adds)}",
                ConditionExpression=" AND ".join(f"({part})" for part in condition),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            is not None
        )

    def leave(self, member: str, place: str, *, moved: bool) -> int | None:
        """``member`` has nothing left in ``place``: count it out. ``moved``: it is in another place
        now (``place`` was one it was leaving), else it leaves the placement altogether. The place's
        count after, or None when that was done already."""
        names = {"#c": f"c:{place}"}
        values: dict[str, Any] = {":minus": {"N": "-1"}}
        if moved:
            names["#o"] = f"o:{member}"
            values[":place"] = {"SS": [place]}
            request = {
                "UpdateExpression": "DELETE #o :place ADD #c :minus",
                "ConditionExpression": "contains(#o, :p)",
            }
            values[":p"] = {"S": place}
        else:
            names["#p"] = f"p:{member}"
            values[":p"] = {"S": place}
            request = {"UpdateExpression": "REMOVE #p ADD #c :minus", "ConditionExpression": "#p = :p"}
        response = self._update(
            **request,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        if response is None:
            return None
        return int(response.get("Attributes", {}).get(f"c:{place}", {}).get("N", "0"))

    def retire(self, place: str, *, has_window: bool) -> bool:
        """Take an empty place out of use: True when its count was 0 (nobody joined meanwhile).
        Without a window the place is freed at once; with one, :meth:`forget_window` frees it once
        the window is deleted."""
        names = {"#c": f"c:{place}"}
        values: dict[str, Any] = {":zero": {"N": "0"}}
        if has_window:
            expression, condition = "REMOVE #c", "#c = :zero"
        else:
            names["#w"] = f"w:{place}"
            values[":minus"] = {"N": "-1"}
            expression, condition = "REMOVE #c ADD windows :minus", "#c = :zero AND attribute_not_exists(#w)"
        return (
            self._update(
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            is not None
        )

    def forget_window(self, place: str) -> None:
        """The retired place's window is deleted: free the place (and its share of MaxWindows)."""
        self._update(
            UpdateExpression="REMOVE #w ADD windows :minus",
            ConditionExpression="attribute_exists(#w) AND attribute_not_exists(#c)",
            ExpressionAttributeNames={"#w": f"w:{place}", "#c": f"c:{place}"},
            ExpressionAttributeValues={":minus": {"N": "-1"}},
        )

    def lease_window(self, place: str, owner: str, now: int, seconds: int) -> bool:
        """Take the right to make ``place``'s window; False when it has one or another is making it."""
        return (
            self._update(
                UpdateExpression="SET #l = :expires, #lo = :owner",
                ConditionExpression="attribute_not_exists(#w) AND (attribute_not_exists(#l) OR #l < :now)",
                ExpressionAttributeNames={"#w": f"w:{place}", "#l": f"l:{place}", "#lo": f"lo:{place}"},
                ExpressionAttributeValues={
                    ":expires": {"N": str(now + seconds)},
                    ":owner": {"S": owner},
                    ":now": {"N": str(now)},
                },
            )
            is not None
        )

    def set_window(self, place: str, window_id: str, owner: str) -> bool:
        """Record the window made under the lease; False when the lease was lost meanwhile."""
        return (
            self._update(
                UpdateExpression="SET #w = :id REMOVE #l, #lo",
                ConditionExpression="#lo = :owner",
                ExpressionAttributeNames={"#w": f"w:{place}", "#l": f"l:{place}", "#lo": f"lo:{place}"},
                ExpressionAttributeValues={":id": {"S": window_id}, ":owner": {"S": owner}},
            )
            is not None
        )

    def release_window_lease(self, place: str, owner: str) -> None:
        """Give up the lease of making ``place``'s window (making it failed)."""
        self._update(
            UpdateExpression="REMOVE #l, #lo",
            ConditionExpression="#lo = :owner",
            ExpressionAttributeNames={"#l": f"l:{place}", "#lo": f"lo:{place}"},
            ExpressionAttributeValues={":owner": {"S": owner}},
        )

    def drop_window(self, place: str, window_id: str) -> None:
        """``window_id`` is gone (deleted outside TagPatch): forget it, so the place gets a new one."""
        self._update(
            UpdateExpression="REMOVE #w",
            ConditionExpression="#w = :id",
            ExpressionAttributeNames={"#w": f"w:{place}"},
            ExpressionAttributeValues={":id": {"S": window_id}},
        )
