"""Patch group names by slug, for alerts: GroupsTable, the reconciler's record of every group.

Run Command output prefixes (and so the collector's records) carry a group's slug
(:func:`tagpatch.naming.group_slug`), which differs from the tag value when the value is not
SSM-safe ("Batch Jobs" -> ``Batch-Jobs-6c873a2c2b``). An operator reading an alert knows the tag
value, so the collector asks this lookup when it composes one, never per notification.

GroupsTable is small (one item per group): one paginated Scan of two attributes fills the
cache; it is read again when older than ``max_age`` seconds, or when a slug is missing and the
last read is older than ``retry_after`` (a group created since). A failed read logs and answers
``None``: an alert naming the slug beats no alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tagpatch.adapters.clients import client
from tagpatch.observability import logger


class GroupNames:
    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any | None = None,
        *,
        max_age: float = 300.0,
        retry_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table_name
        self._ddb = dynamodb_client or client("dynamodb")
        self._max_age = max_age
        self._retry_after = retry_after
        self._clock = clock
        self._names: dict[str, str] = {}
        self._read_at: float | None = None

    def name_of(self, slug: str) -> str | None:
        """The tag value of the group whose slug is ``slug``; None when unknown or unreadable."""
        now = self._clock()
        age = None if self._read_at is None else now - self._read_at
        if age is None or age > self._max_age or (slug not in self._names and age > self._retry_after):
            try:
                self._names = self._read()
            except (BotoCoreError, ClientError) as error:
                logger.warning(
                    "group names unreadable; alerts name the group by its slug",
                    extra={"table": self._table, "error": str(error)},
                )
            self._read_at = now  # failed or not: the next attempt waits like a miss
        return self._names.get(slug)

    def _read(self) -> dict[str, str]:
        names: dict[str, str] = {}
        pages = self._ddb.get_paginator("scan").paginate(
            TableName=self._table,
            ProjectionExpression="#g, slug",
            ExpressionAttributeNames={"#g": "group"},
        )
        for page in pages:
            for item in page.get("Items", []):
                group, slug = item.get("group", {}).get("S"), item.get("slug", {}).get("S")
                if group and slug:
                    names[slug] = group
        return names
