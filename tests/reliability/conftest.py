"""Fixtures for the reliability suite: worlds whose clients retry as production's do, no backoff."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.retries.standard import ExponentialBackoff

from emulator.scenarios.aws import World
from tagpatch.adapters.clients import RETRY_CONFIG
from tests.reliability.faults import WireFaults


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries happen as configured, without the wall-clock sleeps between them."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> WireFaults:
    faults = WireFaults()
    faults.install(monkeypatch)
    return faults


@pytest.fixture
def world(aws: None, no_backoff: None, faults: WireFaults) -> Iterator[World]:
    """A reconciler world whose SSM and DynamoDB clients use the adapters' retry config."""
    world = World()
    world.ssm = world.log.attach(boto3.client("ssm", config=RETRY_CONFIG))
    world.ddb = world.log.attach(boto3.client("dynamodb", config=RETRY_CONFIG))
    world.ec2 = world.log.attach(boto3.client("ec2", config=RETRY_CONFIG))
    world.reconciler = world.make_reconciler()
    yield world
