"""What each role is granted against what the flows used, from the emulator's IAM journal.

Granted: every ``Allow`` action of the role's inline policies and attached managed policies, as
the deployed role holds them. Used: every action the emulated IAM allowed for a session of the
role, including the implied checks (``iam:PassRole``, ``kms:GenerateDataKey``/``kms:Decrypt``).
A granted action (or wildcard) that no used action matches is *unused by these flows*: either the
flows did not reach the code path that needs it, or the grant is broader than the code.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from emulator.moto_ext import JOURNAL, Access
from emulator.server import Emulator

AWS_MANAGED_PREFIX: Final = "arn:aws:iam::aws:policy/"

#: Why a granted action cannot be exercised by the emulator, or only on a failure path.
KNOWN_REASONS: Final = {
    "logs:CreateLogGroup": "Lambda creates the log group only when it is missing; the stack creates it",
    "xray:*": "the X-Ray daemon of Tracing: Active; the emulator has no X-Ray",
}


@dataclass(frozen=True)
class Grant:
    action: str  # as written: ssm:GetParameter, xray:Put*, ...
    policy: str  # inline policy name, or the managed policy's name
    managed: bool  # an AWS managed policy
    sid: str = ""


@dataclass
class RoleUsage:
    label: str  # the function (or service role) the role belongs to
    role_name: str
    grants: list[Grant]
    used: Counter[str] = field(default_factory=Counter)
    denied: list[Access] = field(default_factory=list)

    def is_used(self, grant: Grant) -> bool:
        pattern = grant.action.lower()
        return any(fnmatch.fnmatchcase(action.lower(), pattern) for action in self.used)

    @property
    def unused(self) -> list[Grant]:
        return [grant for grant in self.grants if not self.is_used(grant)]

    def reason(self, grant: Grant) -> str:
        if grant.policy.endswith("EventInvokeConfigOnFailureSQSPolicy"):
            return "the on-failure destination: used only after an asynchronous invocation fails every retry"
        for pattern, reason in KNOWN_REASONS.items():
            if fnmatch.fnmatchcase(grant.action, pattern):
                return reason
        return ""


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_grants(emulator: Emulator, role_name: str) -> list[Grant]:
    """Every allowed action of the deployed role (inline and attached policies)."""
    iam = emulator.client("iam")
    documents: list[tuple[str, bool, dict[str, Any]]] = []
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        documents.append(
            (name, False, iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"])
        )
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        documents.append((attached["PolicyName"], arn.startswith(AWS_MANAGED_PREFIX), document))
    grants: list[Grant] = []
    for name, managed, document in documents:
        for statement in _listify(document.get("Statement", [])):
            if statement.get("Effect") != "Allow":
                continue
            for action in _listify(statement.get("Action", [])):
                grant = Grant(str(action), name, managed, str(statement.get("Sid", "")))
                if grant not in grants:
                    grants.append(grant)
    return grants


def role_usage(emulator: Emulator, label: str, role_name: str) -> RoleUsage:
    usage = RoleUsage(label, role_name, role_grants(emulator, role_name))
    for access in JOURNAL.entries(role_name=role_name):
        if access.allowed:
            usage.used[access.action] += 1
        else:
            usage.denied.append(access)
    return usage
