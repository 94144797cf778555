"""Security rules over both templates (template.yaml, the member stack, and hub/template.yaml, the
organization hub) that complement test_template.py, test_hub_template.py and `make security` (checkov).

Those already assert encryption of every table, queue, topic and bucket, the TLS-only bucket policy
and no wildcard action in identity policies. Here, for each template: no wildcard Allow action in
ANY policy (resource and key policies too, and both branches of a conditional statement), and every
checkov skip is a known check with a written justification next to the resource it exempts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.test_hub_template import load_hub_template
from tests.unit.test_template import Resources, _as_list, _load_template

TEMPLATES = {"template.yaml": _load_template, "hub/template.yaml": load_hub_template}

# The checkov findings the template answers with a justification instead of a change (see the
# comments in template.yaml); any other finding fails `make security`.
JUSTIFIED_SKIPS = frozenset(
    {
        "CKV_AWS_18",  # S3 access logging
        "CKV_AWS_27",  # SQS encryption: SqsManagedSseEnabled is not recognised
        "CKV_AWS_115",  # Lambda reserved concurrency
        "CKV_AWS_116",  # Lambda DLQ: EventInvokeConfig destinations / SQS redrive instead
        "CKV_AWS_117",  # Lambda in a VPC
        "CKV_AWS_119",  # DynamoDB customer managed key
        "CKV_AWS_158",  # CloudWatch log group KMS key
        "CKV_AWS_173",  # Lambda environment variable encryption with a CMK
    }
)


def _resources(template: str) -> Resources:
    return dict(TEMPLATES[template]()["Resources"])


def _unconditional(statement: Any) -> Iterator[Any]:
    """A statement, or both branches of ``Fn::If [condition, statement, other]`` (not NoValue)."""
    if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
        for branch in statement["Fn::If"][1:]:
            if branch != {"Ref": "AWS::NoValue"}:
                yield from _unconditional(branch)
    else:
        yield statement


def _statements(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy statement anywhere under ``value`` (identity, resource and key policies)."""
    if isinstance(value, dict):
        if "Statement" in value and isinstance(value["Statement"], list | dict):
            for listed in _as_list(value["Statement"]):
                for statement in _unconditional(listed):
                    yield where, statement
        for key, item in value.items():
            yield from _statements(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _statements(item, f"{where}[{index}]")


def _is_key_policy_root_delegation(resources: Resources, where: str, statement: dict[str, Any]) -> bool:
    """The default KMS key policy statement: the account (IAM) administers the key.

    Without it no IAM policy could grant use of the key and the key could become unmanageable;
    in a key policy "*" resources mean this key only.
    """
    name = where.split(".", 1)[0]
    return (
        resources[name]["Type"] == "AWS::KMS::Key"
        and ".KeyPolicy" in where
        and statement.get("Action") == "kms:*"
        and statement.get("Principal")
        == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    )


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_no_policy_allows_a_wildcard_action(template: str) -> None:
    resources = _resources(template)
    found = list(_statements(resources, ""))
    statements = [(where.lstrip("."), statement) for where, statement in found]
    assert len(statements) > 10
    assert all(isinstance(statement, dict) and "Effect" in statement for _, statement in statements)
    for where, statement in statements:
        if statement.get("Effect") != "Allow" or _is_key_policy_root_delegation(resources, where, statement):
            continue
        assert "NotAction" not in statement, where
        for action in _as_list(statement["Action"]):
            assert action != "*", where
            assert not re.fullmatch(r"[a-z0-9-]+:\*", action), f"{where}: {action}"


def test_every_checkov_skip_names_a_known_finding_and_says_why() -> None:
    skipped: set[str] = set()
    for template in TEMPLATES:
        for name, resource in _resources(template).items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert skip["id"] in JUSTIFIED_SKIPS, (
                    f"{template} {name}: {skip['id']} is not a justified skip"
                )
                assert len(skip.get("comment", "")) >= 60, (
                    f"{template} {name}: {skip['id']} needs its justification"
                )
                skipped.add(skip["id"])
    assert skipped == JUSTIFIED_SKIPS


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_only_wildcard_key_policy_is_the_account_delegation(template: str) -> None:
    resources = _resources(template)
    keys = {name for name, res in resources.items() if res["Type"] == "AWS::KMS::Key"}
    delegations = [
        where
        for where, statement in _statements(resources, "")
        if statement.get("Effect") == "Allow"
        and _is_key_policy_root_delegation(resources, where.lstrip("."), statement)
    ]
    assert keys
    assert len(delegations) == len(keys)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_allow_to_any_principal_is_scoped_by_a_condition(template: str) -> None:
    # Principal "*" is the organization (aws:PrincipalOrgID) on the hub's bus, never anyone
    resources = _resources(template)
    for where, statement in _statements(resources, ""):
        if statement.get("Effect") == "Allow" and statement.get("Principal") in ("*", {"AWS": "*"}):
            assert statement.get("Condition"), where


def test_conditional_statements_are_checked_too() -> None:
    # The hub's Organizations grants sit under Fn::If ResolveOUs: the rules above see them
    statements = [s for _, s in _statements(_resources("hub/template.yaml"), "")]
    actions = {a for s in statements for a in _as_list(s.get("Action", []))}
    assert {"organizations:ListParents", "organizations:DescribeOrganizationalUnit"} <= actions
