"""SNS topic policies, evaluated for ``sns:Publish`` and ``sns:Subscribe`` as SNS does.

moto 5.2 stores a topic's ``Policy`` attribute and never reads it: any principal of the account
whose IAM policy allows ``sns:Publish`` can publish to any topic, whatever the topic policy says.
On AWS the topic policy is a resource-based policy evaluated with the caller's identity policies,
and "an explicit deny in any policy overrides any allows" (IAM policy evaluation logic,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html; SNS
topic policies: https://docs.aws.amazon.com/sns/latest/dg/sns-using-identity-based-policies.html).

What this module evaluates, and only this: the explicit ``Deny`` statements of the topic's policy
whose ``Principal`` covers the caller, for the two actions the stack restricts, with the request
context keys AWS documents for them
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html and the
SNS keys of https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html):

* ``aws:PrincipalArn`` - the IAM user's ARN, or for a role session the *role's* ARN (not the
  ``assumed-role`` session ARN);
* ``aws:PrincipalAccount``;
* ``aws:SecureTransport`` - ``true`` (SDKs call AWS over TLS; the emulator's plain HTTP stands in
  for it, as in :mod:`emulator.moto_ext`);
* ``sns:Endpoint`` and ``sns:Protocol`` of a ``Subscribe`` request.

Condition operators: the string and ARN operators (``*Like`` with ``*``/``?`` wildcards), ``Bool``
and their ``IfExists`` forms. A key the request does not carry makes a positive operator false and
a negated one (``StringNotEquals``, ``ArnNotEquals``, ...) true, as IAM evaluates them. An operator
outside that list raises: a statement the emulator cannot evaluate must not pass silently.

A topic-policy ``Allow`` is not evaluated (same-account callers are allowed by their IAM policy,
which moto already checks): the emulator can only be stricter than AWS here, never laxer.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ACTIONS", "UnsupportedCondition", "context_of", "denying_statement"]

#: The actions whose topic policy the emulator evaluates.
ACTIONS: Final = frozenset({"sns:Publish", "sns:Subscribe"})

_POSITIVE: Final = {
    "StringEquals",
    "StringLike",
    "StringEqualsIgnoreCase",
    "ArnEquals",
    "ArnLike",
    "Bool",
}
_NEGATED: Final = {
    "StringNotEquals",
    "StringNotLike",
    "StringNotEqualsIgnoreCase",
    "ArnNotEquals",
    "ArnNotLike",
}


class UnsupportedCondition(ValueError):
    """A topic policy condition this module does not evaluate."""


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def principal_arn(caller_arn: str) -> str:
    """``aws:PrincipalArn``: a role session's role ARN, else the caller's own ARN.

    Roles made by the stack have the path ``/``, so the role ARN follows from the session ARN.
    """
    if ":assumed-role/" not in caller_arn:
        return caller_arn
    prefix, rest = caller_arn.split(":assumed-role/", 1)
    partition_account = prefix.removeprefix("arn:").split(":sts:", 1)
    return f"arn:{partition_account[0]}:iam::{partition_account[1].strip(':')}:role/{rest.split('/', 1)[0]}"


def context_of(caller_arn: str, account_id: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The request context keys of a Publish or Subscribe by ``caller_arn`` with ``params``."""
    context = {
        "aws:principalarn": principal_arn(caller_arn),
        "aws:principalaccount": account_id,
        "aws:securetransport": "true",
    }
    if params.get("Endpoint") is not None:
        context["sns:endpoint"] = str(params["Endpoint"])
    if params.get("Protocol") is not None:
        context["sns:protocol"] = str(params["Protocol"])
    return context


def _value_matches(operator: str, actual: str, expected: str) -> bool:
    base = operator.replace("Not", "")
    if base in {"StringLike", "ArnLike"}:
        return fnmatch.fnmatchcase(actual, expected)
    if base in {"StringEqualsIgnoreCase", "Bool"}:
        return actual.lower() == expected.lower()
    return actual == expected


def _condition_holds(conditions: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for raw_operator, tests in conditions.items():
        if_exists = raw_operator.endswith("IfExists")
        operator = raw_operator.removesuffix("IfExists")
        if operator not in _POSITIVE | _NEGATED:
            raise UnsupportedCondition(f"topic policy condition operator {raw_operator} is not emulated")
        negated = operator in _NEGATED
        for key, expected in dict(tests).items():
            actual = context.get(str(key).lower())
            if actual is None:
                if if_exists or negated:
                    continue
                return False
            hit = any(_value_matches(operator, actual, str(value)) for value in _listify(expected))
            if hit == negated:
                return False
    return True


def _covers_caller(principal: Any, caller: str, account_id: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for value in _listify(principal.get("AWS", [])):
        if value == "*" or value in {account_id, f"arn:aws:iam::{account_id}:root", caller}:
            return True
    return False  # a Service principal is not an IAM caller


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    def named(key: str) -> bool:
        patterns = _listify(statement.get(key, []))
        return any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in patterns)

    return not named("NotAction") if "NotAction" in statement else named("Action")


def denying_statement(
    policy: str | Mapping[str, Any] | None,
    *,
    action: str,
    topic_arn: str,
    caller_arn: str,
    account_id: str,
    params: Mapping[str, Any],
) -> str | None:
    """The ``Sid`` (or index) of the topic policy statement that explicitly denies the request."""
    if action not in ACTIONS or not policy:
        return None
    document = json.loads(policy) if isinstance(policy, str) else dict(policy)
    context = context_of(caller_arn, account_id, params)
    for index, statement in enumerate(_listify(document.get("Statement", []))):
        if statement.get("Effect") != "Deny" or not _action_matches(statement, action):
            continue
        if not _covers_caller(statement.get("Principal"), principal_arn(caller_arn), account_id):
            continue
        resources = _listify(statement.get("Resource", "*"))
        if not any(fnmatch.fnmatchcase(topic_arn, str(resource)) for resource in resources):
            continue
        if _condition_holds(statement.get("Condition") or {}, context):
            return str(statement.get("Sid") or f"statement {index}")
    return None
