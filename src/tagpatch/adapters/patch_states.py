"""The three SSM patch-state reads the compliance reporter makes (the only boto3 they need).

* ``DescribePatchGroups``: every registered patch group, ``MaxResults`` 100 (the model's maximum).
* ``DescribePatchGroupState``: a group's aggregate counts (no paging).
* ``DescribeInstancePatchStatesForPatchGroup``: every instance's state, ``MaxResults`` 100 (the
  model allows 10-100), following ``NextToken`` until it is absent or empty.

Throttling and 5xx are retried with backoff by the client's standard retry mode
(:mod:`tagpatch.adapters.clients`).
"""

from __future__ import annotations

from typing import Any

from tagpatch.adapters.clients import client

PAGE_SIZE = 100


class PatchStateGateway:
    def __init__(self, ssm_client: Any | None = None) -> None:
        self._ssm = ssm_client or client("ssm")

    def patch_groups(self) -> dict[str, list[str]]:
        """Registered patch group -> the baseline ids registered for it (one per operating system).

        Unfiltered: the model documents ``NAME_PREFIX`` with baseline-like sample values
        ("AWS-", "My-"), so it is not relied on to select a group by name.
        """
        groups: dict[str, set[str]] = {}
        pages = self._ssm.get_paginator("describe_patch_groups").paginate(
            PaginationConfig={"PageSize": PAGE_SIZE}
        )
        for page in pages:
            for mapping in page.get("Mappings", []):
                baselines = groups.setdefault(str(mapping["PatchGroup"]), set())
                baseline_id = mapping.get("BaselineIdentity", {}).get("BaselineId")
                if baseline_id:
                    baselines.add(str(baseline_id))
        return {group: sorted(baselines) for group, baselines in groups.items()}

    def group_state(self, group: str) -> dict[str, int]:
        """Every count DescribePatchGroupState returned for ``group`` (absent ones stay absent)."""
        response = self._ssm.describe_patch_group_state(PatchGroup=group)
        return {name: int(value) for name, value in response.items() if name != "ResponseMetadata"}

    def instance_states(self, group: str) -> list[dict[str, Any]]:
        """Every InstancePatchState of ``group``, all pages."""
        pages = self._ssm.get_paginator("describe_instance_patch_states_for_patch_group").paginate(
            PatchGroup=group, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        return [dict(state) for page in pages for state in page.get("InstancePatchStates", [])]
