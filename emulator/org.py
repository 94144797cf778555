"""An AWS Organization on the emulator: accounts, OUs, a delegated administrator, an outsider.

moto keeps accounts apart by the access key's account, so one server holds them all. The
emulator's own account (:data:`emulator.server.ACCOUNT_ID`, its admin user) is the organization's
management account. :func:`create_organization` then does what an administrator does with the
Organizations API, signed as that admin:

* ``CreateOrganization`` (all features), an OU per name in ``ous`` under the root;
* ``CreateAccount`` per account; Organizations makes ``OrganizationAccountAccessRole`` in each new
  account, trusting the management account ("Accessing a member account that has a management
  account access role",
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_access-cross-account-role.html);
  moto makes the role but attaches no policy, so the ``AdministratorAccess`` AWS managed policy
  Organizations attaches is attached here, in moto's IAM backend of that account;
* ``MoveAccount`` of each account into its OU;
* ``EnableAWSServiceAccess`` and ``RegisterDelegatedAdministrator`` for StackSets
  (``member.org.stacksets.cloudformation.amazonaws.com``) of the hub account ("Register a delegated
  administrator", https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-delegated-admin.html).

Each account is then reached through an :class:`~emulator.server.AccountView` signed with a
session of ``OrganizationAccountAccessRole`` (``sts:AssumeRole`` by the management admin, as an
operator does). The outsider account is not in the organization: its admin is an IAM user made
in moto's IAM backend of that account (nothing in the organization could make it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from moto.iam.models import iam_backends

from emulator.server import ADMIN_POLICY_ARN, AccountView, Credentials, Emulator

ACCESS_ROLE: Final = "OrganizationAccountAccessRole"
STACKSETS_PRINCIPAL: Final = "member.org.stacksets.cloudformation.amazonaws.com"
OUTSIDER_USER: Final = "tagpatch-emulator-outsider-admin"
#: An account id no organization of the emulator holds.
OUTSIDER_ACCOUNT: Final = "210987654321"


@dataclass
class Organization:
    """The organization of a running emulator; accounts by name, views by (account, region)."""

    emulator: Emulator
    id: str
    root_id: str
    ous: dict[str, str]  # name -> OU id
    accounts: dict[str, str]  # name -> account id ("management" is the emulator's own)
    outsider: str = ""
    _credentials: dict[str, Credentials] = field(default_factory=dict, repr=False)
    _views: dict[tuple[str, str], Emulator] = field(default_factory=dict, repr=False)

    @property
    def management(self) -> str:
        return self.emulator.account_id

    def organizations(self) -> Any:
        return self.emulator.client("organizations")

    def credentials(self, account: str) -> Credentials:
        """Admin credentials in ``account`` (id or name)."""
        account_id = self.accounts.get(account, account)
        if account_id == self.management:
            return self.emulator.admin
        if account_id not in self._credentials:
            if account_id == self.outsider:
                self._credentials[account_id] = _outsider_admin(account_id)
            else:
                session = self.emulator.client("sts").assume_role(
                    RoleArn=f"arn:aws:iam::{account_id}:role/{ACCESS_ROLE}",
                    RoleSessionName="tagpatch-emulator-admin",
                )
                creds = session["Credentials"]
                self._credentials[account_id] = Credentials(
                    creds["AccessKeyId"],
                    creds["SecretAccessKey"],
                    creds["SessionToken"],
                    principal=session["AssumedRoleUser"]["Arn"],
                )
        return self._credentials[account_id]

    def view(self, account: str, region: str) -> Emulator:
        """The emulator from ``account`` (id or name) in ``region``, signed as its admin."""
        account_id = self.accounts.get(account, account)
        if account_id == self.management and region == self.emulator.region:
            return self.emulator
        key = (account_id, region)
        if key not in self._views:
            self._views[key] = AccountView(self.emulator, account_id, region, self.credentials(account_id))
        return self._views[key]

    def parent_of(self, account: str) -> str:
        account_id = self.accounts.get(account, account)
        (parent,) = self.organizations().list_parents(ChildId=account_id)["Parents"]
        return str(parent["Id"])

    def move_account(self, account: str, ou: str) -> None:
        """``organizations:MoveAccount`` of ``account`` into ``ou`` (name or id, or "root")."""
        account_id = self.accounts.get(account, account)
        destination = self.root_id if ou == "root" else self.ous.get(ou, ou)
        self.organizations().move_account(
            AccountId=account_id, SourceParentId=self.parent_of(account_id), DestinationParentId=destination
        )

    def accounts_in(self, ou_ids: Sequence[str]) -> list[str]:
        """Every account in the OUs ``ou_ids`` and their child OUs (as StackSets targets them)."""
        organizations = self.organizations()
        found: list[str] = []
        pending = list(ou_ids)
        while pending:
            parent = pending.pop(0)
            for page in organizations.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
                found.extend(str(a["Id"]) for a in page["Accounts"] if a.get("Status") == "ACTIVE")
            for page in organizations.get_paginator("list_organizational_units_for_parent").paginate(
                ParentId=parent
            ):
                pending.extend(str(unit["Id"]) for unit in page["OrganizationalUnits"])
        return sorted(dict.fromkeys(found))

    def name_of(self, account_id: str) -> str:
        for name, value in self.accounts.items():
            if value == account_id:
                return name
        return "outsider" if account_id == self.outsider else account_id


def create_organization(
    emulator: Emulator,
    *,
    ous: Sequence[str] = ("Workloads", "Security"),
    accounts: Mapping[str, str] | None = None,
    delegated_admin: str = "hub",
    outsider: bool = True,
) -> Organization:
    """The organization (see the module docstring). ``accounts``: name -> OU name ("root": none)."""
    placement = dict(accounts or {"hub": "Security", "member-a": "Workloads", "member-b": "Workloads"})
    organizations = emulator.client("organizations")
    org = organizations.create_organization(FeatureSet="ALL")["Organization"]
    root_id = str(organizations.list_roots()["Roots"][0]["Id"])
    ou_ids = {
        name: str(
            organizations.create_organizational_unit(ParentId=root_id, Name=name)["OrganizationalUnit"]["Id"]
        )
        for name in ous
    }
    organization = Organization(
        emulator, str(org["Id"]), root_id, ou_ids, {"management": emulator.account_id}
    )
    for name, ou in placement.items():
        status = organizations.create_account(Email=f"{name}@example.com", AccountName=name)[
            "CreateAccountStatus"
        ]
        account_id = str(
            organizations.describe_create_account_status(CreateAccountRequestId=status["Id"])[
                "CreateAccountStatus"
            ]["AccountId"]
        )
        organization.accounts[name] = account_id
        # What Organizations attaches to the role it makes in a new account (moto attaches nothing).
        iam_backends[account_id]["global"].attach_role_policy(ADMIN_POLICY_ARN, ACCESS_ROLE)
        if ou != "root":
            organizations.move_account(
                AccountId=account_id, SourceParentId=root_id, DestinationParentId=ou_ids[ou]
            )
    organizations.enable_aws_service_access(ServicePrincipal=STACKSETS_PRINCIPAL)
    if delegated_admin:
        organizations.register_delegated_administrator(
            AccountId=organization.accounts[delegated_admin], ServicePrincipal=STACKSETS_PRINCIPAL
        )
    if outsider:
        organization.outsider = OUTSIDER_ACCOUNT
    return organization


def _outsider_admin(account_id: str) -> Credentials:
    iam = iam_backends[account_id]["global"]
    iam.create_user(region_name="us-east-1", user_name=OUTSIDER_USER, path="/", tags=[])
    iam.attach_user_policy(ADMIN_POLICY_ARN, OUTSIDER_USER)
    key = iam.create_access_key(OUTSIDER_USER)
    return Credentials(
        key.access_key_id, key.secret_access_key, principal=f"arn:aws:iam::{account_id}:user/{OUTSIDER_USER}"
    )
