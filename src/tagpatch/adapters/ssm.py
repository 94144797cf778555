"""The SSM calls the reconciler makes: maintenance windows, targets, tasks, parameters, baselines."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tagpatch.adapters.clients import client, error_code
from tagpatch.reconciler.ports import QuotaExceeded

_GONE = {"DoesNotExistException", "ParameterNotFound"}


class SsmGateway:
    def __init__(self, ssm_client: Any | None = None) -> None:
        self._ssm = ssm_client or client("ssm")

    # windows -------------------------------------------------------------------------------
    def find_windows(self, name: str) -> list[dict[str, Any]]:
        pages = self._ssm.get_paginator("describe_maintenance_windows").paginate(
            Filters=[{"Key": "Name", "Values": [name]}], PaginationConfig={"PageSize": 100}
        )
        return [window for page in pages for window in page.get("WindowIdentities", [])]

    def window_tags(self, window_id: str) -> dict[str, str]:
        try:
            response = self._ssm.list_tags_for_resource(
                ResourceType="MaintenanceWindow", ResourceId=window_id
            )
        except ClientError as error:
            if error_code(error) in {*_GONE, "InvalidResourceId"}:
                return {}  # the window is gone: no tags, so nobody's
            raise
        return {tag["Key"]: tag["Value"] for tag in response.get("TagList", [])}

    def tag_window(self, window_id: str, tags: dict[str, str]) -> None:
        # "Adds or overwrites one or more tags for the specified resource" (API reference,
        # AddTagsToResource): a key the window has gets the new value. The request carries the
        # tagpatch:stack tag, which the TagNewWindows statement of template.yaml requires.
        self._ssm.add_tags_to_resource(
            ResourceType="MaintenanceWindow",
            ResourceId=window_id,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )

    def untag_window(self, window_id: str, keys: list[str]) -> None:
        self._ssm.remove_tags_from_resource(
            ResourceType="MaintenanceWindow", ResourceId=window_id, TagKeys=keys
        )

    def get_window(self, window_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._ssm.get_maintenance_window(WindowId=window_id))
        except ClientError as error:
            if error_code(error) in _GONE:
                return None
            raise

    def create_window(self, params: dict[str, Any]) -> str:
        try:
            return str(self._ssm.create_maintenance_window(**params)["WindowId"])
        except ClientError as error:
            # "Error returned when the caller has exceeded the default resource quotas" (API
            # reference, CreateMaintenanceWindow); not a throttle, so botocore does not retry it.
            if error_code(error) == "ResourceLimitExceededException":
                message = error.response.get("Error", {}).get("Message", "")
                raise QuotaExceeded(f"ResourceLimitExceededException: {message}") from error
            raise

    def update_window(self, params: dict[str, Any]) -> None:
        self._ssm.update_maintenance_window(**params)

    def delete_window(self, window_id: str) -> None:
        try:
            self._ssm.delete_maintenance_window(WindowId=window_id)
        except ClientError as error:
            if error_code(error) not in _GONE:
                raise

    # targets -------------------------------------------------------------------------------
    def targets(self, window_id: str) -> list[dict[str, Any]]:
        pages = self._ssm.get_paginator("describe_maintenance_window_targets").paginate(
            WindowId=window_id, PaginationConfig={"PageSize": 100}
        )
        return [target for page in pages for target in page.get("Targets", [])]

    def register_target(self, params: dict[str, Any]) -> str:
        return str(self._ssm.register_target_with_maintenance_window(**params)["WindowTargetId"])

    def update_target(self, params: dict[str, Any]) -> None:
        self._ssm.update_maintenance_window_target(**params)

    def deregister_target(self, window_id: str, target_id: str) -> None:
        try:
            self._ssm.deregister_target_from_maintenance_window(
                WindowId=window_id, WindowTargetId=target_id, Safe=False
            )
        except ClientError as error:
            if error_code(error) not in _GONE:
                raise

    # tasks ---------------------------------------------------------------------------------
    def tasks(self, window_id: str) -> list[dict[str, Any]]:
        pages = self._ssm.get_paginator("describe_maintenance_window_tasks").paginate(
            WindowId=window_id, PaginationConfig={"PageSize": 100}
        )
        return [task for page in pages for task in page.get("Tasks", [])]

    def get_task(self, window_id: str, task_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id))
        except ClientError as error:
            if error_code(error) in _GONE:
                return None
            raise

    def register_task(self, params: dict[str, Any]) -> str:
        return str(self._ssm.register_task_with_maintenance_window(**params)["WindowTaskId"])

    def update_task(self, params: dict[str, Any]) -> None:
        self._ssm.update_maintenance_window_task(**params)

    def deregister_task(self, window_id: str, task_id: str) -> None:
        try:
            self._ssm.deregister_task_from_maintenance_window(WindowId=window_id, WindowTaskId=task_id)
        except ClientError as error:
            if error_code(error) not in _GONE:
                raise

    # per-group overrides -------------------------------------------------------------------
    def get_parameter(self, name: str) -> str | None:
        try:
            return str(self._ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ClientError as error:
            if error_code(error) in _GONE:
                return None
            raise

    def parameters_under(self, path: str) -> dict[str, str]:
        pages = self._ssm.get_paginator("get_parameters_by_path").paginate(
            Path=path.rstrip("/"), Recursive=False, PaginationConfig={"PageSize": 10}
        )
        return {p["Name"]: p["Value"] for page in pages for p in page.get("Parameters", [])}

    # patch baselines -----------------------------------------------------------------------
    def groups_of_baseline(self, baseline_id: str) -> set[str]:
        # One read per baseline, whatever the number of groups (DescribePatchGroups would list
        # every mapping of the account for each group).
        try:
            return set(self._ssm.get_patch_baseline(BaselineId=baseline_id).get("PatchGroups", []))
        except ClientError as error:
            if error_code(error) in _GONE:
                return set()
            raise

    def register_baseline(self, baseline_id: str, group: str) -> None:
        try:
            self._ssm.register_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group)
        except ClientError as error:
            if error_code(error) == "ResourceLimitExceededException":  # 25 patch groups per baseline
                message = error.response.get("Error", {}).get("Message", "")
                raise QuotaExceeded(f"ResourceLimitExceededException: {message}") from error
            raise

    def deregister_baseline(self, baseline_id: str, group: str) -> None:
        try:
            self._ssm.deregister_patch_baseline_for_patch_group(BaselineId=baseline_id, PatchGroup=group)
        except ClientError as error:
            # the API's error for "this baseline is not registered with this group"
            if error_code(error) not in {*_GONE, "InvalidResourceId"}:
                raise
