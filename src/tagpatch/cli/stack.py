"""The deployed stack as the operator's credentials see it: its outputs and clients.

The CLI's one place that talks to boto3: a ``boto3.Session`` from the standard settings (profile,
region, ``--endpoint-url`` or ``AWS_ENDPOINT_URL``) and the stack's Outputs from CloudFormation.
The region is ``--region``, else ``AWS_REGION`` (which the AWS CLI and SDKs other than boto3 read),
else boto3's own: ``AWS_DEFAULT_REGION`` or the profile's ``region``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from tagpatch.adapters.clients import RETRY_CONFIG, error_code

DEFAULT_STACK = "tagpatch"


class StackNotFound(LookupError):
    """The stack does not exist or lacks an output the command needs."""


@dataclass
class Stack:
    name: str
    session: Any
    endpoint_url: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, config=RETRY_CONFIG
            )
        return self._clients[service]

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise StackNotFound(f"stack {self.name!r} has no output {key}: is it a TagPatch stack?")
        return value


def resolve_region(explicit: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """``--region``, else ``AWS_REGION``; None leaves it to boto3 (AWS_DEFAULT_REGION, the profile)."""
    return explicit or environ.get("AWS_REGION") or None


def open_stack(
    name: str, *, profile: str | None = None, region: str | None = None, endpoint_url: str | None = None
) -> Stack:
    """``name``'s outputs through a session of the standard AWS settings."""
    session = boto3.Session(profile_name=profile, region_name=resolve_region(region))
    stack = Stack(name, session, endpoint_url or None)
    try:
        found = stack.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError":
            where = session.region_name or "the region"
            raise StackNotFound(f"stack {name!r} not found in {where}") from error
        raise
    if not found:
        raise StackNotFound(f"stack {name!r} not found")
    stack.outputs = {
        str(output["OutputKey"]): str(output.get("OutputValue", "")) for output in found[0].get("Outputs", [])
    }
    return stack
