"""Security rules over template.yaml that complement test_template.py and `make security` (checkov).

test_template.py already asserts encryption of every table, queue, topic and bucket, the TLS-only
bucket policy and no wildcard action in identity policies. Here: no wildcard Allow action in ANY
policy (resource and key policies too), and every checkov skip is a known check with a written
justification next to the resource it exempts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.unit.test_template import Resources, _as_list, _load_template

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


def _resources() -> Resources:
    return dict(_load_template()["Resources"])


def _statements(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy statement anywhere under ``value`` (identity, resource and key policies)."""
    if isinstance(value, dict):
        if "Statement" in value and isinstance(value["Statement"], list | dict):
            for statement in _as_list(value["Statement"]):
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


def test_no_policy_allows_a_wildcard_action() -> None:
    resources = _resources()
    found = list(_statements(resources, ""))
    statements = [(where.lstrip("."), statement) for where, statement in found]
    assert len(statements) > 10
    for where, statement in statements:
        if statement.get("Effect") != "Allow" or _is_key_policy_root_delegation(resources, where, statement):
            continue
        assert "NotAction" not in statement, where
        for action in _as_list(statement["Action"]):
            assert action != "*", where
            assert not re.fullmatch(r"[a-z0-9-]+:\*", action), f"{where}: {action}"


def test_every_checkov_skip_names_a_known_finding_and_says_why() -> None:
    skipped: set[str] = set()
    for name, resource in _resources().items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"] in JUSTIFIED_SKIPS, f"{name}: {skip['id']} is not a justified skip"
            assert len(skip.get("comment", "")) >= 60, f"{name}: {skip['id']} needs its justification"
            skipped.add(skip["id"])
    assert skipped == JUSTIFIED_SKIPS


def test_the_only_wildcard_key_policy_is_the_account_delegation() -> None:
    resources = _resources()
    keys = {name for name, res in resources.items() if res["Type"] == "AWS::KMS::Key"}
    delegations = [
        where
        for where, statement in _statements(resources, "")
        if statement.get("Effect") == "Allow"
        and _is_key_policy_root_delegation(resources, where.lstrip("."), statement)
    ]
    assert len(delegations) == len(keys)
