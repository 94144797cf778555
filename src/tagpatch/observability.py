"""Logger and Metrics, created once and shared by every handler and module; opt-in AWS call tracing.

Every function runs with ``Tracing: Active``, so Lambda records each invocation in X-Ray without
any SDK in the function. The X-Ray SDK (Powertools ``Tracer``) adds a subsegment for every AWS call
but costs ~150 ms of cold start just to import, so it is loaded only when the stack Parameter
``TraceAwsCalls`` sets ``TAGPATCH_TRACE_AWS_CALLS=true``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

TRACE_AWS_CALLS_ENV = "TAGPATCH_TRACE_AWS_CALLS"

_Handler = TypeVar("_Handler", bound=Callable[..., Any])

logger = Logger()
metrics = Metrics()


def trace_handler(handler: _Handler) -> _Handler:
    """``handler`` wrapped by Powertools ``Tracer.capture_lambda_handler`` when AWS calls are traced.

    The switch is read when the decorator runs, i.e. when the handler module is imported at cold
    start: it is a deployment setting (a stack Parameter), so a change takes effect in new execution
    environments, which is every one after the stack update changes the function's environment.
    Otherwise ``handler`` is returned unchanged and the X-Ray SDK is never imported.
    """
    if os.environ.get(TRACE_AWS_CALLS_ENV) != "true":
        return handler
    tracer = Tracer()  # imports the X-Ray SDK and patches botocore
    traced: _Handler = tracer.capture_lambda_handler(capture_response=False)(handler)
    return traced
