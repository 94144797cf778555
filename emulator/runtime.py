"""A deployed function invoked in this process, as the Lambda service would run it.

For every invocation the runtime reads the function's *deployed* configuration
(``lambda:GetFunctionConfiguration``: handler, environment, role, timeout, memory), gets the
execution role's credentials the way Lambda does (the role must trust ``lambda.amazonaws.com``),
and runs the handler named by that configuration with:

* exactly the deployed environment variables, plus the variables Lambda itself sets
  (``AWS_REGION``, ``AWS_LAMBDA_FUNCTION_NAME``, the role session's ``AWS_ACCESS_KEY_ID``/
  ``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ...), plus ``AWS_ENDPOINT_URL`` pointing the SDK
  at the emulator and ``POWERTOOLS_TRACE_DISABLED=true`` (there is no X-Ray daemon);
* a fresh module state: the package's cached clients and dependencies are cleared, so nothing
  built for another function (or credentials) is reused;
* a Lambda context object.

The process environment, the default boto3 session and the caches are restored afterwards. What
the function prints (Powertools' JSON logs, EMF metrics) goes, with Lambda's START/END/REPORT
lines, to the function's log group, written with the role's credentials as Lambda writes it.

:meth:`LambdaRuntime.invoke_async` adds the asynchronous invocation semantics EventBridge rules
get: retries per the deployed ``EventInvokeConfig``, then the on-failure destination.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import os
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Final

import boto3
import botocore.session
from botocore.exceptions import ClientError

from emulator.deploy import Deployment
from emulator.moto_ext import JOURNAL, Access
from emulator.server import Credentials, Emulator

LAMBDA_PRINCIPAL: Final = "lambda.amazonaws.com"
_DEFAULT_RETRIES: Final = 2  # asynchronous invocations without an EventInvokeConfig
_DROPPED_ENV_PREFIXES: Final = ("AWS_", "POWERTOOLS_", "_X_AMZN", "LAMBDA_", "_HANDLER")


@dataclass
class LambdaContext:
    """The context object the Python runtime passes to a handler."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: float
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - time.time() * 1000))


@dataclass
class Invocation:
    """One run of a handler."""

    function: str  # logical id
    function_name: str
    request_id: str
    event: Any
    result: Any = None
    error: dict[str, Any] | None = None  # Lambda's error payload: errorMessage, errorType, stackTrace
    log_lines: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    accesses: list[Access] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def denied(self) -> list[Access]:
        return [access for access in self.accesses if not access.allowed]

    def describe_error(self) -> str:
        if self.error is None:
            return ""
        return f"{self.error.get('errorType')}: {self.error.get('errorMessage')}"


@dataclass
class AsyncOutcome:
    """An asynchronous invocation: every attempt and, if all failed, where the event went."""

    function: str
    attempts: list[Invocation]
    destination: str | None = None  # ARN the failure record was sent to

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def last(self) -> Invocation:
        return self.attempts[-1]


class LambdaRuntime:
    """Runs the deployed functions of ``deployment`` in this process."""

    def __init__(self, emulator: Emulator, deployment: Deployment) -> None:
        self.emulator = emulator
        self.deployment = deployment
        self.invocations: list[Invocation] = []
        self._credentials: dict[str, Credentials] = {}
        self._log_streams: dict[str, str] = {}
        self._created_streams: set[str] = set()

    # -- configuration --------------------------------------------------------------------------
    def configuration(self, function: str) -> dict[str, Any]:
        """The deployed configuration of ``function`` (logical id, name or ARN)."""
        name = self._name(function)
        config = self.emulator.client("lambda").get_function_configuration(FunctionName=name)
        return {key: value for key, value in config.items() if key != "ResponseMetadata"}

    def _name(self, function: str) -> str:
        if function in self.deployment.functions:
            return self.deployment.functions[function]
        return self.deployment.functions[self.deployment.function_logical_id(function)]

    def role_name(self, function: str) -> str:
        return str(self.configuration(function)["Role"]).rsplit("/", 1)[-1]

    def credentials(self, function: str) -> Credentials:
        """The execution role's session, as Lambda gets it (cached like a warm container's)."""
        name = self._name(function)
        if name not in self._credentials:
            role_arn = str(self.configuration(function)["Role"])
            self._credentials[name] = self.emulator.assume_role_as_service(role_arn, LAMBDA_PRINCIPAL, name)
        return self._credentials[name]

    # -- invoke ---------------------------------------------------------------------------------
    def invoke(self, function: str, event: Any) -> Invocation:
        """Run ``function`` once with ``event`` (a synchronous invocation)."""
        config = self.configuration(function)
        name = str(config["FunctionName"])
        logical_id = self.deployment.function_logical_id(name)
        module_name, attribute = str(config["Handler"]).rsplit(".", 1)
        if f"{module_name.replace('.', '/')}.py" not in self.deployment.code.files:
            raise RuntimeError(f"handler module {module_name} is not in the deployed code of {name}")
        credentials = self.credentials(name)
        request_id = str(uuid.uuid4())
        log_group = f"/aws/lambda/{name}"
        stream = self._log_streams.setdefault(
            name, f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        )
        environment = self._environment(config, credentials, log_group, stream)
        invocation = Invocation(logical_id, name, request_id, copy.deepcopy(event))
        timeout_ms = int(config.get("Timeout", 3)) * 1000
        context = LambdaContext(
            function_name=name,
            function_version=str(config.get("Version", "$LATEST")),
            invoked_function_arn=str(config["FunctionArn"]),
            memory_limit_in_mb=int(config.get("MemorySize", 128)),
            aws_request_id=request_id,
            log_group_name=log_group,
            log_stream_name=stream,
            deadline_ms=time.time() * 1000 + timeout_ms,
        )
        mark = JOURNAL.mark()
        output = io.StringIO()
        started = time.perf_counter()
        with _lambda_process(environment, output, self.emulator.new_botocore_session):
            try:
                module = importlib.import_module(module_name)
                handler = getattr(module, attribute)
                with _powertools_stream(output), warnings.catch_warnings(record=True) as warned:
                    warnings.simplefilter("default")
                    try:
                        invocation.result = handler(copy.deepcopy(event), context)
                    finally:
                        # The Python runtime prints warnings to the function's log, not to its caller.
                        for warning in warned:
                            print(
                                warnings.formatwarning(
                                    warning.message, warning.category, warning.filename, warning.lineno
                                ),
                                file=output,
                                end="",
                            )
            except Exception as error:  # the function failed: Lambda reports it, it does not crash
                invocation.error = {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "requestId": request_id,
                    "stackTrace": traceback.format_tb(error.__traceback__),
                }
                print(f"[ERROR] {type(error).__name__}: {error}", file=output)
        invocation.duration_ms = (time.perf_counter() - started) * 1000
        if invocation.ok and invocation.duration_ms > timeout_ms:
            invocation.error = {
                "errorMessage": f"Task timed out after {timeout_ms / 1000:.2f} seconds",
                "errorType": "Sandbox.Timedout",
                "requestId": request_id,
                "stackTrace": [],
            }
        invocation.accesses = JOURNAL.entries(since=mark, role_name=str(config["Role"]).rsplit("/", 1)[-1])
        invocation.log_lines = [
            f"START RequestId: {request_id} Version: {context.function_version}",
            *[line for line in output.getvalue().splitlines() if line.strip()],
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: {invocation.duration_ms:.2f} ms\t"
            f"Memory Size: {context.memory_limit_in_mb} MB",
        ]
        self._write_logs(credentials, log_group, stream, invocation.log_lines)
        self.invocations.append(invocation)
        return invocation

    def invoke_async(self, function: str, event: Any) -> AsyncOutcome:
        """An asynchronous invocation: retried per the deployed EventInvokeConfig, then sent to its
        on-failure destination with the execution role's credentials."""
        name = self._name(function)
        try:
            config = self.emulator.client("lambda").get_function_event_invoke_config(FunctionName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            config = {}
        retries = int(config.get("MaximumRetryAttempts", _DEFAULT_RETRIES))
        outcome = AsyncOutcome(self.deployment.function_logical_id(name), [])
        for _attempt in range(retries + 1):
            invocation = self.invoke(name, event)
            outcome.attempts.append(invocation)
            if invocation.ok:
                return outcome
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination:
            self._send_failure_record(name, event, outcome, str(destination))
            outcome.destination = str(destination)
        return outcome

    # -- internals ------------------------------------------------------------------------------
    def _environment(
        self, config: dict[str, Any], credentials: Credentials, log_group: str, stream: str
    ) -> dict[str, str]:
        deployed = {str(k): str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()}
        base = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
        lambda_set = {
            "AWS_REGION": self.emulator.region,
            "AWS_DEFAULT_REGION": self.emulator.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.get('Runtime', 'python3.13')}",
            "AWS_LAMBDA_FUNCTION_NAME": str(config["FunctionName"]),
            "AWS_LAMBDA_FUNCTION_VERSION": str(config.get("Version", "$LATEST")),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize", 128)),
            "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "_HANDLER": str(config["Handler"]),
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_SESSION_TOKEN": credentials.session_token or "",
        }
        emulator_set = {
            "AWS_ENDPOINT_URL": self.emulator.endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        return {**base, **deployed, **lambda_set, **emulator_set}

    def _write_logs(self, credentials: Credentials, group: str, stream: str, lines: list[str]) -> None:
        """Lambda writes the function's output with the execution role (logs:CreateLogStream/PutLogEvents)."""
        logs = self.emulator.client("logs", credentials)
        try:
            if stream not in self._created_streams:
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self._created_streams.add(stream)
            now = int(time.time() * 1000)
            events = [{"timestamp": now, "message": line[:200_000]} for line in lines]
            for start in range(0, len(events), 1000):
                logs.put_log_events(
                    logGroupName=group, logStreamName=stream, logEvents=events[start : start + 1000]
                )
        except ClientError as error:
            # As on AWS: a role that may not write logs loses them; the invocation still counts.
            logging.getLogger(__name__).warning("logs of %s not written: %s", group, error)

    def _send_failure_record(self, name: str, event: Any, outcome: AsyncOutcome, destination: str) -> None:
        last = outcome.last
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": last.request_id,
                "functionArn": f"{self.configuration(name)['FunctionArn']}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": len(outcome.attempts),
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": last.error,
        }
        credentials = self.credentials(name)
        service = destination.split(":")[2]
        if service == "sqs":
            queue_name = destination.rsplit(":", 1)[-1]
            url = self.emulator.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
            self.emulator.client("sqs", credentials).send_message(
                QueueUrl=url, MessageBody=json.dumps(record)
            )
        elif service == "sns":
            self.emulator.client("sns", credentials).publish(TopicArn=destination, Message=json.dumps(record))
        else:
            raise NotImplementedError(f"on-failure destination {destination} is not emulated")


# --------------------------------------------------------------------------------------------
# Process state around one invocation
# --------------------------------------------------------------------------------------------


def _package_caches() -> list[Any]:
    """Every ``functools.cache`` of the deployed package: cached clients and handler dependencies."""
    caches: list[Any] = []
    for name, module in list(sys.modules.items()):
        if not isinstance(module, ModuleType) or not (name == "tagpatch" or name.startswith("tagpatch.")):
            continue
        for value in list(vars(module).values()):
            if callable(value) and hasattr(value, "cache_clear") and getattr(value, "__module__", "") == name:
                caches.append(value)
    return caches


def _clear_package_caches() -> None:
    for cached in _package_caches():
        cached.cache_clear()


@contextlib.contextmanager
def _lambda_process(
    environment: dict[str, str], output: io.StringIO, new_session: Callable[[], botocore.session.Session]
) -> Iterator[None]:
    saved_environ = dict(os.environ)
    saved_session = boto3.DEFAULT_SESSION
    _clear_package_caches()
    os.environ.clear()
    os.environ.update(environment)
    # A new default session (credentials and region from the environment just set), sharing the
    # already loaded service models.
    boto3.setup_default_session(botocore_session=new_session())
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            yield
    finally:
        _clear_package_caches()
        os.environ.clear()
        os.environ.update(saved_environ)
        boto3.DEFAULT_SESSION = saved_session


@contextlib.contextmanager
def _powertools_stream(output: io.StringIO) -> Iterator[None]:
    """Powertools' logger writes to the stream it was created with: point it at ``output``."""
    module = sys.modules.get("tagpatch.observability")
    handler = getattr(getattr(module, "logger", None), "registered_handler", None) if module else None
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    previous = handler.setStream(output)
    try:
        yield
    finally:
        if previous is not None:
            handler.setStream(previous)
