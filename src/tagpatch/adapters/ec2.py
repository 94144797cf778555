"""Which patch groups have instances: the backfill and empty-group source of the reconciler."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tagpatch.adapters.clients import client

LIVE_STATES = ["pending", "running", "stopping", "stopped"]


class Ec2Gateway:
    def __init__(self, ec2_client: Any | None = None) -> None:
        self._ec2 = ec2_client or client("ec2")

    def group_sizes(self, tag_key: str) -> Counter[str]:
        """Instances per value of ``tag_key`` among instances that are not terminated."""
        pages = self._ec2.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": "tag-key", "Values": [tag_key]},
                {"Name": "instance-state-name", "Values": LIVE_STATES},
            ],
            PaginationConfig={"PageSize": 1000},
        )
        sizes: Counter[str] = Counter()
        for page in pages:
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
                    if tag_key in tags:
                        sizes[tags[tag_key]] += 1
        return sizes
