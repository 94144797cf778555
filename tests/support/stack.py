"""The deployed stack the end-to-end tests drive: template.yaml in the emulator, its functions,
flows and an AMI to launch instances from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from emulator.deploy import Deployment, deploy
from emulator.flows import Flows
from emulator.runtime import LambdaRuntime
from emulator.server import Emulator

TAG_KEY = "PatchGroup"


@dataclass
class Stack:
    emulator: Emulator
    deployment: Deployment
    runtime: LambdaRuntime
    flows: Flows
    image_id: str

    def client(self, service: str) -> Any:
        return self.emulator.client(service)

    def launch(self, count: int) -> list[str]:
        response = self.client("ec2").run_instances(
            ImageId=self.image_id, MinCount=count, MaxCount=count, InstanceType="t3.micro"
        )
        return [instance["InstanceId"] for instance in response["Instances"]]

    def role(self, logical_id: str) -> str:
        return self.runtime.role_name(logical_id)

    def require(self, *logical_ids: str) -> None:
        missing = [name for name in logical_ids if not self.deployment.has(name)]
        if missing:
            pytest.skip(f"not in template.yaml yet: {', '.join(missing)}")

    def groups_on_instances(self) -> set[str]:
        pages = (
            self.client("ec2")
            .get_paginator("describe_instances")
            .paginate(Filters=[{"Name": "tag-key", "Values": [TAG_KEY]}])
        )
        return {
            tag["Value"]
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
            for tag in instance.get("Tags", [])
            if tag["Key"] == TAG_KEY
        }


@contextmanager
def deployed_stack(parameters: dict[str, str], *, inbox: bool = False) -> Iterator[Stack]:
    """template.yaml deployed with ``parameters`` into a fresh emulator (``inbox``: with an e-mail
    inbox subscribed to AlertTopic)."""
    with Emulator() as emulator:
        deployment = deploy(emulator, parameters=parameters)
        runtime = LambdaRuntime(emulator, deployment)
        flows = Flows(emulator, deployment, runtime)
        if inbox:
            flows.subscribe_inbox()
        image_id = emulator.client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        yield Stack(emulator, deployment, runtime, flows, image_id)
