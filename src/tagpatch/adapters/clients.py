"""boto3 clients, created once per container and shared; tests hand in their own."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode retries throttling and 5xx with exponential backoff and jitter.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=30)
# The longest one attempt can take: connecting, then waiting for the answer.
ATTEMPT_SECONDS = 5 + 30

# When the current Lambda invocation ends (time.time() seconds); None: no limit. Set per
# invocation by the handlers (set_time_left) and read before every attempt, retries included.
_DEADLINE: ContextVar[float | None] = ContextVar("tagpatch_deadline", default=None)
clock: Callable[[], float] = time.time  # tests replace it to let time pass without sleeping


class DeadlineReached(RuntimeError):
    """The next attempt of an AWS call could not finish before the invocation ends: not sent."""


def set_time_left(seconds: float | None) -> None:
    """The current invocation ends in ``seconds`` (None: no limit)."""
    _DEADLINE.set(None if seconds is None else clock() + seconds)


def _refuse_late_attempt(event_name: str = "", **_: Any) -> None:
    """``before-send`` hook: bounds botocore's retries by the time the invocation has left."""
    at = _DEADLINE.get()
    if at is not None and clock() + ATTEMPT_SECONDS > at:
        operation = event_name.rsplit(".", 1)[-1]
        raise DeadlineReached(
            f"{operation} not sent: the invocation ends in {at - clock():.0f} s, an attempt may take "
            f"{ATTEMPT_SECONDS} s"
        )


def bounded(any_client: Any) -> Any:
    """``any_client``, its every attempt refused when it could not finish before the deadline."""
    # First, so that it runs before anything that answers in place of the service (moto's stubber).
    any_client.meta.events.register_first("before-send", _refuse_late_attempt)
    return any_client


@cache
def client(service: str) -> Any:
    factory: Any = boto3  # one cache for every service; typed clients would need one function each
    return bounded(factory.client(service, config=RETRY_CONFIG))


#: The error code of a DynamoDB write whose condition did not hold.
CONDITION_FAILED = "ConditionalCheckFailedException"


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
