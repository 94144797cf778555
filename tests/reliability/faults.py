"""Faults on the wire for any boto3 client: throttling, 5xx and timeouts, counted per attempt."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from moto.core.botocore_stubber import BotocoreStubber

# kind -> (HTTP status, error code); the timeouts raise instead of answering.
ERRORS = {
    "throttle": (400, "ThrottlingException"),
    "5xx": (500, "InternalServerError"),
    "unavailable": (503, "ServiceUnavailable"),
}
KINDS = (*ERRORS, "read-timeout", "connect-timeout")


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class WireFaults:
    """Fails the next attempts of chosen operations before they reach the emulator.

    Sits in front of moto's ``before-send`` stubber: a planned fault answers instead of the
    emulator (the request is not applied, as AWS does not apply a throttled or failed request) and
    botocore's retry handler sees it as it would a real answer. ``attempts`` counts every attempt
    (retries included) per operation, for every client in the test.
    """

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._plan: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        # Called with the operation's name at every attempt: lets a test's clock move as if each
        # attempt took time, without sleeping.
        self.on_attempt: Callable[[str], None] | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = BotocoreStubber.__call__
        faults = self

        def call(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
            answer = faults._before_send(request, event_name)
            return answer if answer is not None else original(stubber, event_name, request, **kwargs)

        monkeypatch.setattr(BotocoreStubber, "__call__", call)

    def fail(self, operation: str, kinds: list[str]) -> None:
        assert all(kind in KINDS for kind in kinds), kinds
        with self._lock:
            self._plan.setdefault(operation, []).extend(kinds)

    def clear(self) -> None:
        """Drop every planned fault not met yet."""
        with self._lock:
            self._plan.clear()

    def pending(self) -> int:
        return sum(len(kinds) for kinds in self._plan.values())

    def _before_send(self, request: Any, event_name: str) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        if self.on_attempt is not None:
            self.on_attempt(operation)
        with self._lock:
            self.attempts[operation] += 1
            kinds = self._plan.get(operation)
            kind = kinds.pop(0) if kinds else None
            if kind:
                self.injected[operation] += 1
        if kind is None:
            return None
        if kind == "read-timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "connect-timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        status, code = ERRORS[kind]
        headers, body = _error_body(request, code)
        return AWSResponse(request.url, status, cast(Any, headers), body)


def _error_body(request: Any, code: str) -> tuple[dict[str, str], _Body]:
    """The error as the service's protocol spells it: JSON (SSM, DynamoDB), EC2 or query XML."""
    message = f"injected {code} (tests.reliability.faults)"
    if "X-Amz-Target" in request.headers:
        body = json.dumps({"__type": code, "message": message})
        return {"x-amzn-requestid": "fault", "content-type": "application/x-amz-json-1.1"}, _Body(
            body.encode()
        )
    if code == "ThrottlingException":
        code = "Throttling"  # the query protocol's spelling; standard retry knows both
    error = f"<Code>{code}</Code><Message>{message}</Message>"
    if "ec2." in request.url:
        body = f"<Response><Errors><Error>{error}</Error></Errors><RequestID>fault</RequestID></Response>"
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type>{error}</Error>"
            "<RequestId>fault</RequestId></ErrorResponse>"
        )
    return {"content-type": "text/xml"}, _Body(body.encode())
