"""AWS Organizations for the hub: a member account's organizational unit (read-only).

``ListParents`` (ChildId = the account) names the parent (an OU, or the root for an account
directly under it; an account has exactly one parent), ``DescribeOrganizationalUnit`` its name.
Both are called from the organization's management account or a delegated administrator
(https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListParents.html).
"""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import ClientError

from tagpatch.adapters.clients import client, error_code
from tagpatch.hub.ports import OrganizationDenied

DENIED: Final = ("AccessDeniedException", "AWSOrganizationsNotInUseException")
ROOT_NAME: Final = "Root"


class OrganizationGateway:
    def __init__(self, organizations_client: Any | None = None) -> None:
        self._org = organizations_client or client("organizations")

    def parent_ou(self, account: str) -> tuple[str, str]:
        try:
            parents = self._org.list_parents(ChildId=account).get("Parents", [])
            if not parents:
                return "", ""
            parent = parents[0]
            if parent.get("Type") != "ORGANIZATIONAL_UNIT":
                return str(parent.get("Id", "")), ROOT_NAME
            unit = self._org.describe_organizational_unit(OrganizationalUnitId=parent["Id"])
            return str(parent["Id"]), str(unit["OrganizationalUnit"].get("Name", ""))
        except ClientError as error:
            if error_code(error) in DENIED:
                raise OrganizationDenied(str(error)) from error
            if error_code(error) == "ChildNotFoundException":  # left the organization
                return "", ""
            raise
