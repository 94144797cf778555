"""EventBridge event bus resource policies, evaluated for ``events:PutEvents`` from another account.

moto 5.2 stores an event bus's policy (``PutPermission``, ``AWS::Events::EventBusPolicy``) and
never reads it; it also delivers a rule's event-bus target in another account without asking
anything of either side. On AWS, an event reaches a bus of another account only if the bus's
resource policy admits the sender ("Permissions for event buses in Amazon EventBridge",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html: "To allow
accounts in an organization to send events to the bus, use aws:PrincipalOrgID"; "Sending and
receiving events between AWS accounts in Amazon EventBridge",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html), and the sender's
own identity policy allows ``events:PutEvents`` on the bus ARN. Across accounts both must allow,
and an explicit deny in either wins (IAM policy evaluation logic, cross-account requests:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).

The request context keys evaluated (global condition context keys,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html):

* ``aws:PrincipalOrgID`` - the organization of the principal's account, read from moto's
  Organizations backends (absent for an account in no organization: a positive operator fails);
* ``aws:PrincipalAccount``;
* ``aws:PrincipalArn`` - the IAM user's ARN, or for a role session the role's ARN;
* ``aws:SecureTransport`` - ``true``, as in :mod:`emulator.moto_ext`.

Condition operators are :mod:`emulator.topic_policy`'s (string, ARN, ``Bool``, their ``IfExists``
and negated forms); any other raises rather than passing silently.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from typing import Any, Final

from moto.organizations.models import organizations_backends

from emulator.topic_policy import _condition_holds, principal_arn

__all__ = ["PUT_EVENTS", "context_of", "organization_of", "refusal"]

PUT_EVENTS: Final = "events:PutEvents"


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def organization_of(account_id: str) -> str:
    """The id of the organization ``account_id`` belongs to ("" if none), from moto's backends."""
    master = organizations_backends.master_accounts.get(account_id)
    owner, partition = master if master else (account_id, "aws")
    if owner not in organizations_backends:
        return ""
    org = organizations_backends[owner][partition].org
    return str(org.id) if org is not None else ""


def context_of(caller_arn: str, account_id: str) -> dict[str, str]:
    """The request context keys of a PutEvents by ``caller_arn`` of ``account_id``."""
    context = {
        "aws:principalarn": principal_arn(caller_arn),
        "aws:principalaccount": account_id,
        "aws:securetransport": "true",
    }
    org_id = organization_of(account_id)
    if org_id:
        context["aws:principalorgid"] = org_id
    return context


def _covers(principal: Any, caller_arn: str, account_id: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    role_arn = principal_arn(caller_arn)
    for value in _listify(principal.get("AWS", [])):
        if value == "*" or value in {account_id, f"arn:aws:iam::{account_id}:root", caller_arn, role_arn}:
            return True
    return False


def _names(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(
            fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _listify(statement["NotAction"])
        )
    return any(
        fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _listify(statement.get("Action", []))
    )


def refusal(policy: str | Mapping[str, Any] | None, *, bus_arn: str, caller_arn: str, account_id: str) -> str:
    """Why the bus policy does not let ``caller_arn`` (of ``account_id``) put events on ``bus_arn``
    ("" when one Allow statement admits it and no Deny statement refuses it)."""
    if not policy:
        return (
            f"the event bus {bus_arn} has no resource policy: account {account_id} may not put events on it"
        )
    document = json.loads(policy) if isinstance(policy, str) else dict(policy)
    context = context_of(caller_arn, account_id)
    allowed = ""
    for index, statement in enumerate(_listify(document.get("Statement", []))):
        if not _names(statement, PUT_EVENTS) or not _covers(
            statement.get("Principal"), caller_arn, account_id
        ):
            continue
        if not any(fnmatch.fnmatchcase(bus_arn, str(r)) for r in _listify(statement.get("Resource", "*"))):
            continue
        if not _condition_holds(statement.get("Condition") or {}, context):
            continue
        sid = str(statement.get("Sid") or f"statement {index}")
        if statement.get("Effect") == "Deny":
            return f"denied by the event bus policy of {bus_arn} (statement {sid})"
        allowed = sid
    if allowed:
        return ""
    org = context.get("aws:principalorgid") or "none"
    return (
        f"no statement of the event bus policy of {bus_arn} allows {PUT_EVENTS} to "
        f"{principal_arn(caller_arn)} (aws:PrincipalAccount {account_id}, aws:PrincipalOrgID {org})"
    )
