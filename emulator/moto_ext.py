"""What the emulator adds to moto 5.2.5, installed once and active only while an emulator runs.

moto's server runs in this process, so these patches apply to it exactly as ``emulator.fake_ssm``
does. Outside :func:`activate`/:func:`deactivate` every patched method behaves as moto's own, so
``mock_aws`` tests in the same process are unaffected.

* ``events:TestEventPattern`` - moto 5.2 declares it but returns nothing. Added with moto's own
  rule matcher (``moto.events.models.EventPattern``, the code that decides which rules fire on
  ``PutEvents``) and the mandatory event fields of the real API.
* ``events:PutEvents`` and scheduled rules - moto matches a rule without an ``EventPattern`` (a
  schedule) to every event put on its bus and then fails on its Lambda target (HTTP 500). AWS
  never matches a scheduled rule to a put event; while active, neither does moto.
* IAM at the action level. moto checks every signed request against the caller's policies, but
  for most services it passes ``*`` as the resource (SQS, IAM, STS and S3 pass the real ARN), so
  an ``Allow`` scoped to an ARN would never match and every least-privilege role would be denied.
  While active, an identity-policy statement evaluated against ``*`` counts as matching whatever
  its ``Resource`` and ``Condition`` say when it allows, and only when it denies every resource
  unconditionally when it denies. Resource scoping is therefore reviewed in the template, not
  here.
* Policy conditions, where moto does evaluate a policy against a real resource (S3 bucket
  policies, SQS, the implied checks below): moto understands only ``StringEquals`` and treats
  every other operator as matching, so the stack's ``DenyInsecureTransport`` bucket policy
  (``Bool aws:SecureTransport false``) would deny every object write. While active, the usual
  string, ARN and ``Bool`` operators (and their ``IfExists`` forms) are evaluated with
  ``aws:SecureTransport=true`` (AWS SDKs call AWS over TLS; the emulator's plain HTTP stands in
  for it) and the request's own context keys; a key the request does not have fails the test.
* Permissions AWS checks besides the action itself, which moto never checks:
  ``iam:PassRole`` (with ``iam:PassedToService``) for the roles given to
  ``ssm:RegisterTaskWithMaintenanceWindow``, ``ssm:UpdateMaintenanceWindowTask`` and
  ``ssm:SendCommand``, and ``kms:GenerateDataKey`` + ``kms:Decrypt`` on the customer managed key
  of a topic the caller publishes to. These are evaluated with the real resource ARN and
  condition values; a missing one is ``AccessDenied`` naming the implied action.
* Signature check of requests without a body (Lambda's ``GET`` API): moto signs its copy of such
  a request with its parsed query string, or the request's *headers* when there is none, as the
  payload, so the signature never matches. While active, such a request is checked with its
  real, empty payload.
* S3's IAM action for ``?encryption`` requests: moto names them ``s3:ListBucket`` (its default
  for a bucket ``GET``); AWS checks ``s3:GetEncryptionConfiguration`` (and
  ``s3:PutEncryptionConfiguration`` to change it), which is what the instance policy grants.
* The ``AccessDenied`` answer of JSON-protocol services (SSM, DynamoDB, Lambda, EventBridge, ...):
  moto renders it as an XML query-protocol error, which botocore cannot parse (the caller sees
  error code ``403``). While active it is the JSON ``AccessDeniedException`` those services
  return.
* IAM action names that differ from the API action: AWS authorises ``sqs:DeleteMessageBatch`` as
  ``sqs:DeleteMessage`` (likewise ``SendMessageBatch``, ``ChangeMessageVisibilityBatch`` and
  ``sns:PublishBatch``); moto checks the API name, which no policy grants.
* SNS topic policies: moto stores them and never evaluates them. While active, the explicit
  denies of a topic's policy are evaluated for ``sns:Publish`` and ``sns:Subscribe``
  (:mod:`emulator.topic_policy`, which cites the AWS pages) and answered with SNS's
  ``AuthorizationError``.
* :data:`JOURNAL` - every authorisation decision (principal, action, resource, allowed), which
  :mod:`emulator.permissions` compares with what each role grants.
* Event-bus targets of rules (another account's bus, as a member's rule forwards to the hub):
  moto re-puts the event on the target bus as a new event (new id, time, account), asking neither
  the target's ``RoleArn`` nor the receiving bus's policy. While active, the matched event is kept
  in :data:`BUS_OUTBOX` instead, for :mod:`emulator.orgflows` to deliver as EventBridge does.
* ``PutEvents`` on an event bus ARN of another account: moto looks the bus up in the *caller's*
  account. While active, the receiving bus's resource policy is evaluated
  (:mod:`emulator.bus_policy`): refused -> ``AccessDeniedException``; admitted -> the event joins
  :data:`BUS_OUTBOX` for the receiving bus's rules.
* Organizations: moto lets only ``ssm.amazonaws.com`` and a few others have a delegated
  administrator; while active, StackSets' ``member.org.stacksets.cloudformation.amazonaws.com``
  can be registered too. The Organizations API reference says of ``ListParents``,
  ``DescribeOrganizationalUnit`` and the other read-only operations "This operation can be called
  only from the organization's management account or by a member account that is a delegated
  administrator" (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListParents.html);
  moto answers them only in the management account. While active, a registered delegated
  administrator's ``ListParents``, ``DescribeOrganizationalUnit``, ``ListAccounts``,
  ``ListAccountsForParent``, ``ListOrganizationalUnitsForParent``, ``ListChildren`` and
  ``DescribeAccount`` are answered from the management account's backend.
* ``Ref`` of an ``AWS::Events::EventBus``: moto's bus has no physical id, so its CloudFormation
  hands the bus *object* to whatever refers to it (a rule's ``EventBusName``), and fails. The bus's
  physical id is its name (the ``Ref`` return value the CloudFormation reference documents,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-eventbus.html).
* Names CloudFormation generates (``<stack>-<logical id>-<random>``): moto never shortens them, so
  a stack with a long name (a StackSet's instance is ``StackSet-<stack set>-<uuid>``) gets rule,
  function and role names over their limit (64). While active, such a name is cut to the type's
  limit by shortening the stack name and logical id, as CloudFormation does ("if you don't specify
  a name, CloudFormation generates a unique physical ID", e.g. the rule's ``Name``:
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-rule.html).
* SQS -> Lambda event source mappings. moto invokes a mapped function itself (through Docker,
  one message per invocation, ignoring partial batch responses) as soon as a message arrives.
  While active, moto leaves mapped queues alone and :mod:`emulator.flows` polls them the way
  Lambda does.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs

import moto
from moto import settings
from moto.cloudformation import parsing as cfn_parsing
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
from moto.events.models import EventBus, EventPattern, Rule, events_backends
from moto.events.responses import EventsHandler
from moto.iam.access_control import (
    IAMPolicy,
    IAMPolicyStatement,
    IAMRequestBase,
    PermissionResult,
    create_access_key,
)
from moto.iam.models import get_account_id_from
from moto.kms.models import kms_backends
from moto.organizations.models import FakeDelegatedAdministrator, OrganizationsBackend, organizations_backends
from moto.s3.responses import ACTION_MAP as S3_ACTION_MAP
from moto.sns.models import sns_backends
from moto.sqs.models import Queue

from emulator import bus_policy, topic_policy

__all__ = [
    "BUS_OUTBOX",
    "JOURNAL",
    "Access",
    "AccessJournal",
    "BusArrival",
    "activate",
    "deactivate",
    "install",
    "is_active",
]

#: The moto release these patches were written against (they reach into its internals).
MOTO_VERSION: Final = "5.2.5"

#: API actions that IAM authorises under another action's name.
IAM_ACTION_OF_API: Final = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
}

#: Fields the real TestEventPattern requires in the event (EventBridge API reference).
EVENT_REQUIRED_FIELDS: Final = ("id", "account", "source", "time", "region", "resources", "detail-type")


@dataclass(frozen=True)
class Access:
    """One authorisation decision of the emulated IAM."""

    principal: (
        str  # arn:aws:iam::<account>:user/<name> or arn:aws:sts::<account>:assumed-role/<role>/<session>
    )
    action: str  # service:Action, e.g. ssm:CreateMaintenanceWindow
    resource: str  # the resource evaluated; "*" when moto could not tell
    allowed: bool
    implied_by: str = ""  # the requested action whose implicit check this is (iam:PassRole, kms:*)

    @property
    def role_name(self) -> str:
        """The role of an assumed-role session, else ``""``."""
        marker = ":assumed-role/"
        if marker not in self.principal:
            return ""
        return self.principal.split(marker, 1)[1].split("/", 1)[0]


class AccessJournal:
    """Every decision, in order; thread-safe (the server answers on many threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Access] = []

    def record(self, access: Access) -> None:
        with self._lock:
            self._entries.append(access)

    def mark(self) -> int:
        with self._lock:
            return len(self._entries)

    def entries(self, *, since: int = 0, role_name: str | None = None) -> list[Access]:
        with self._lock:
            chosen = self._entries[since:]
        if role_name is None:
            return chosen
        return [entry for entry in chosen if entry.role_name == role_name]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


JOURNAL: Final = AccessJournal()


@dataclass(frozen=True)
class BusArrival:
    """An event on its way to an event bus: a rule's event-bus target, or a cross-account PutEvents.

    ``event`` is the event as EventBridge delivers it (its own id, time in ISO form, the sender's
    account and region); ``rule_arn``/``target`` are the forwarding rule and its target (``RoleArn``,
    ``DeadLetterConfig``), empty for a direct PutEvents whose ``sender`` the bus policy admitted.
    """

    bus_arn: str
    event: dict[str, Any]
    rule_arn: str = ""
    target: dict[str, Any] | None = None
    sender: str = ""


class BusOutbox:
    """The events waiting for :mod:`emulator.orgflows` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrivals: list[BusArrival] = []

    def add(self, arrival: BusArrival) -> None:
        with self._lock:
            self._arrivals.append(arrival)

    def take(self) -> list[BusArrival]:
        with self._lock:
            taken, self._arrivals = self._arrivals, []
        return taken

    def __len__(self) -> int:
        with self._lock:
            return len(self._arrivals)

    def clear(self) -> None:
        self.take()


BUS_OUTBOX: Final = BusOutbox()


class _JsonAccessDenied(JsonRESTError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__("AccessDeniedException", message)
        self.code = status


def _denied(request: IAMRequestBase, error: AccessDeniedError) -> Exception:
    """``error`` as the requested service's protocol renders it."""
    headers = request._headers
    content_type = str(headers.get("Content-Type") or headers.get("content-type") or "")
    if headers.get("X-Amz-Target") or "json" in content_type:
        return _JsonAccessDenied(error.message, 400)
    if request._service == "lambda":  # rest-json
        return _JsonAccessDenied(error.message, 403)
    return error


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.installed = False
        self.active = False
        self.saved_auth: tuple[float, int] | None = None
        self.queue_lock = threading.Lock()
        self.targets_lock = threading.Lock()


_STATE: Final = _State()
_ORIGINALS: dict[str, Callable[..., Any]] = {}


def is_active() -> bool:
    return _STATE.active


# --------------------------------------------------------------------------------------------
# events:TestEventPattern
# --------------------------------------------------------------------------------------------


def _is_bus_arn(arn: str) -> bool:
    parts = arn.split(":", 5)
    return len(parts) == 6 and parts[2] == "events" and parts[5].startswith("event-bus/")


def _iso_time(value: Any) -> str:
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        return str(iso_8601_datetime_without_milliseconds(utcfromtimestamp(float(value))))  # type: ignore[arg-type]
    return str(value)


def _send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    """A scheduled rule (no ``EventPattern``) gets no put events, as in AWS; an event-bus target's
    event goes to :data:`BUS_OUTBOX`."""
    if not _STATE.active:
        _ORIGINALS["rule_send_to_targets"](self, original_event, transform_input)
        return
    if not self.event_pattern._pattern:
        return
    buses = [target for target in self.targets if _is_bus_arn(str(target.get("Arn", "")))]
    if buses and self.event_pattern.matches_event(original_event):
        event = {k: v for k, v in dict(original_event).items() if k != "ingestion-time"}
        event["time"] = _iso_time(event.get("time"))
        for target in buses:
            BUS_OUTBOX.add(
                BusArrival(str(target["Arn"]), json.loads(json.dumps(event)), self.arn, dict(target))
            )
    if len(buses) == len(self.targets):
        return
    with _STATE.targets_lock:
        every = self.targets
        self.targets = [target for target in every if target not in buses]
        try:
            _ORIGINALS["rule_send_to_targets"](self, original_event, transform_input)
        finally:
            self.targets = every


def _caller_arn(handler: Any) -> tuple[str, str]:
    """(principal ARN, account) of the request ``handler`` answers."""
    authorization = str(handler.headers.get("Authorization") or "")
    key = authorization.split("Credential=", 1)[-1].split("/", 1)[0] if "Credential=" in authorization else ""
    account = get_account_id_from(key)
    principal = create_access_key(account, "aws", key, dict(handler.headers)).arn
    return str(principal), account


def _put_events(self: EventsHandler) -> Any:
    """PutEvents: an entry for another account's bus ARN is admitted (or refused) by that bus's policy."""
    original = _ORIGINALS["events_put_events"]
    entries = self._get_param("Entries") or []
    foreign = [
        entry
        for entry in entries
        if _is_bus_arn(str(entry.get("EventBusName") or ""))
        and str(entry["EventBusName"]).split(":")[4] != self.current_account
    ]
    if not _STATE.active or not foreign:
        return original(self)
    caller, account = _caller_arn(self)
    results: list[dict[str, Any]] = []
    for entry in entries:
        bus_arn = str(entry.get("EventBusName") or "")
        if entry not in foreign:
            results.extend(self.events_backend.put_events([entry]))
            continue
        _, _, _, region, owner, resource = bus_arn.split(":", 5)
        bus = events_backends[owner][region].event_buses.get(resource.removeprefix("event-bus/"))
        refused = bus_policy.refusal(
            bus.policy if bus is not None else None, bus_arn=bus_arn, caller_arn=caller, account_id=account
        )
        if bus is None:
            refused = f"event bus {bus_arn} does not exist"
        JOURNAL.record(
            Access(caller, bus_policy.PUT_EVENTS, bus_arn, allowed=not refused, implied_by="bus policy")
        )
        if refused:
            raise _JsonAccessDenied(
                f"User: {caller} is not authorized to perform: {bus_policy.PUT_EVENTS} "
                f"on resource: {bus_arn} "
                f"because no resource-based policy allows the {bus_policy.PUT_EVENTS} action ({refused})",
                400,
            )
        event_id = str(uuid.uuid4())
        when = entry.get("Time")
        event = {
            "version": "0",
            "id": event_id,
            "detail-type": entry.get("DetailType"),
            "source": entry.get("Source"),
            "account": account,
            "time": _iso_time(when) if when is not None else _now_iso(),
            "region": self.region,
            "resources": entry.get("Resources", []),
            "detail": json.loads(entry.get("Detail") or "{}"),
        }
        BUS_OUTBOX.add(BusArrival(bus_arn, event, sender=caller))
        results.append({"EventId": event_id})
    failed = sum(1 for result in results if "ErrorCode" in result)
    return json.dumps({"FailedEntryCount": failed, "Entries": results})


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The name limits of the generated names the stacks have (the types' Name properties).
_NAME_LIMITS: Final = {
    "AWS::Events::Rule": 64,
    "AWS::Lambda::Function": 64,
    "AWS::IAM::Role": 64,
    "AWS::SQS::Queue": 80,
    "AWS::SNS::Topic": 256,
    "AWS::DynamoDB::Table": 255,
}


def _generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
    name = str(_ORIGINALS["cfn_generate_resource_name"](resource_type, stack_name, logical_id))
    limit = _NAME_LIMITS.get(resource_type)
    if not _STATE.active or limit is None or len(name) <= limit:
        return name
    suffix = name.rsplit("-", 1)[-1]
    budget = limit - len(suffix) - 2  # two dashes
    stack_part = stack_name[: max(budget - len(logical_id), budget // 2)].rstrip("-")
    logical_part = logical_id[: budget - len(stack_part)]
    return f"{stack_part}-{logical_part}-{suffix}"


@contextmanager
def events_clock(offset_seconds: float) -> Iterator[None]:
    """EventBridge's clock ``offset_seconds`` away inside (a member whose events happened a day
    ago, to be silent now): the ``time`` moto gives a put event. Test and demo only."""
    import moto.events.models as events_models  # noqa: PLC0415 - the module whose clock this is

    saved: Callable[..., float] = getattr(events_models, "unix_time")  # noqa: B009 - not exported
    setattr(events_models, "unix_time", lambda *args: saved(*args) + offset_seconds)  # noqa: B010
    try:
        yield
    finally:
        setattr(events_models, "unix_time", saved)  # noqa: B010


# --------------------------------------------------------------------------------------------
# Organizations: StackSets' delegated administrator, read-only APIs for delegated administrators
# --------------------------------------------------------------------------------------------

_STACKSETS_PRINCIPAL: Final = "member.org.stacksets.cloudformation.amazonaws.com"
_ORG_READ_ONLY: Final = (
    "list_parents",
    "describe_organizational_unit",
    "list_accounts",
    "list_accounts_for_parent",
    "list_organizational_units_for_parent",
    "list_children",
    "describe_account",
)


def _management_backend(backend: OrganizationsBackend) -> OrganizationsBackend | None:
    """The management account's backend, if ``backend``'s account is a delegated administrator."""
    if backend.org is not None:
        return None
    master = organizations_backends.master_accounts.get(backend.account_id)
    if master is None:
        return None
    management = organizations_backends[master[0]][master[1]]
    if not any(admin.account.id == backend.account_id for admin in management.admins):
        return None
    return management


def _read_only(name: str) -> Callable[..., Any]:
    def method(self: OrganizationsBackend, *args: Any, **kwargs: Any) -> Any:
        management = _management_backend(self) if _STATE.active else None
        target = management if management is not None else self
        return _ORIGINALS[f"org_{name}"](target, *args, **kwargs)

    method.__name__ = name
    return method


def _test_event_pattern(self: EventsHandler) -> tuple[str, dict[str, Any]]:
    raw_event = self._get_param("Event")
    try:
        event = json.loads(raw_event or "")
    except ValueError:
        return self.error("InvalidEventPatternException", "Event is not valid JSON.")
    missing = [name for name in EVENT_REQUIRED_FIELDS if not isinstance(event, dict) or name not in event]
    if missing:
        return self.error(
            "ValidationException", f"Parameter Event is not valid: missing {', '.join(missing)}."
        )
    pattern = EventPattern.load(self._get_param("EventPattern"))
    return json.dumps({"Result": pattern.matches_event(event)}), self.response_headers


# --------------------------------------------------------------------------------------------
# IAM: action-level evaluation, implied permissions, journal
# --------------------------------------------------------------------------------------------


def _statement_is_action_permitted(
    self: IAMPolicyStatement,
    action: str,
    resource: str = "*",
    principal: str | None = None,
    incoming_condition_values: dict[str, str] | None = None,
) -> PermissionResult:
    original = _ORIGINALS["statement_is_action_permitted"]
    statement = self._statement
    if not _STATE.active or principal is not None:  # trust policies: moto's own evaluation
        return original(self, action, resource, principal, incoming_condition_values)  # type: ignore[no-any-return]
    if "NotAction" in statement:
        concerned = not self._check_element_matches("NotAction", action)
    else:
        concerned = self._check_element_matches("Action", action)
    if not concerned or self.is_unknown_principal(statement.get("Principal")):
        return PermissionResult.NEUTRAL
    allow = statement.get("Effect") == "Allow"
    if resource == "*" and "Resource" in statement:
        # moto could not tell the request's resource: decide at the action level.
        if allow:
            return PermissionResult.PERMITTED
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        unconditional = "*" in resources and not statement.get("Condition")
        return PermissionResult.DENIED if unconditional else PermissionResult.NEUTRAL
    # A real resource: Resource and Condition are evaluated; a statement that does not apply is
    # neutral (moto 5.2 turns a failed condition into a deny).
    if not self._check_conditions(incoming_condition_values):
        return PermissionResult.NEUTRAL
    if "Resource" in statement and not self._check_element_matches("Resource", resource):
        return PermissionResult.NEUTRAL
    return PermissionResult.PERMITTED if allow else PermissionResult.DENIED


def _request_params(request: IAMRequestBase) -> dict[str, Any]:
    body = request._body
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body or "")
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    if text:
        return {key: values[0] for key, values in parse_qs(text).items()}
    data = request._data or {}
    return {key: (value[0] if isinstance(value, list) and value else value) for key, value in data.items()}


def _topic_key_arn(topic_arn: str, account_id: str, region: str) -> str | None:
    """The customer managed KMS key of ``topic_arn``, or None (no key, or an AWS managed one)."""
    topic = sns_backends[account_id][region].topics.get(topic_arn)
    key = getattr(topic, "kms_master_key_id", "") if topic is not None else ""
    if not key or key.startswith("alias/aws/") or ":alias/aws/" in key:
        return None
    if key.startswith("arn:") and ":key/" in key:
        return str(key)
    try:
        key_id = kms_backends[account_id][region].any_id_to_key_id(key)
    except Exception:  # an unknown key: the publish itself decides
        return None
    return f"arn:aws:kms:{region}:{account_id}:key/{key_id}"


def _matches(operator: str, actual: str, expected: str) -> bool:
    if operator in {"StringEquals", "ArnEquals", "StringNotEquals", "ArnNotEquals"}:
        return actual == expected
    if operator in {"StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"}:
        return actual.lower() == expected.lower()
    if operator == "Bool":
        return actual.lower() == expected.lower()
    return fnmatch.fnmatchcase(actual, expected)  # StringLike, ArnLike and their negations


_OPERATORS: Final = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnNotEquals",
    "ArnLike",
    "ArnNotLike",
    "Bool",
}


def _check_conditions(self: IAMPolicyStatement, incoming_condition_values: dict[str, str] | None) -> bool:
    original = _ORIGINALS["check_conditions"]
    conditions = self._statement.get("Condition")
    if not _STATE.active or not conditions:
        return original(self, incoming_condition_values)  # type: ignore[no-any-return]
    context = {"aws:securetransport": "true"}
    context.update({key.lower(): str(value) for key, value in (incoming_condition_values or {}).items()})
    for raw_operator, tests in conditions.items():
        operator = raw_operator.removesuffix("IfExists")
        if operator not in _OPERATORS:
            return original(self, incoming_condition_values)  # type: ignore[no-any-return]
        negated = "Not" in operator
        for key, expected in tests.items():
            actual = context.get(key.lower())
            if actual is None:
                if raw_operator.endswith("IfExists"):
                    continue
                return False
            values = expected if isinstance(expected, list) else [expected]
            hit = any(_matches(operator, actual, str(value)) for value in values)
            if hit == negated:
                return False
    return True


def _implied_permissions(request: IAMRequestBase) -> list[tuple[str, str, dict[str, str]]]:
    """(action, resource ARN, condition values) AWS also checks for this request."""
    action = request._action
    implied: list[tuple[str, str, dict[str, str]]] = []
    if action not in {
        "ssm:RegisterTaskWithMaintenanceWindow",
        "ssm:UpdateMaintenanceWindowTask",
        "ssm:SendCommand",
        "sns:Publish",
    }:
        return implied
    params = _request_params(request)
    if action.startswith("ssm:"):
        roles = [params.get("ServiceRoleArn")]
        run_command = (params.get("TaskInvocationParameters") or {}).get("RunCommand") or {}
        roles.append(run_command.get("ServiceRoleArn"))
        for role in dict.fromkeys(r for r in roles if isinstance(r, str) and r):
            implied.append(("iam:PassRole", role, {"iam:PassedToService": "ssm.amazonaws.com"}))
    else:
        topic = params.get("TopicArn") or params.get("TargetArn")
        key = _topic_key_arn(str(topic), request.account_id, request._region) if topic else None
        if key:
            implied.extend([("kms:GenerateDataKey", key, {}), ("kms:Decrypt", key, {})])
    return implied


def _permitted(policies: list[Any], action: str, resource: str, conditions: dict[str, str]) -> bool:
    permitted = False
    for policy in policies:
        result = IAMPolicy(policy).is_action_permitted(action, resource, None, conditions)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted


def _create_aws_request(self: IAMRequestBase) -> Any:
    request = _ORIGINALS["create_aws_request"](self)
    bodiless = self._method in {"GET", "HEAD", "DELETE"} or "Authorization" in (self._data or {})
    if _STATE.active and not self._body and bodiless:
        request.data = b""  # moto's copy carries its parsed parameters (or headers) as a payload
    return request


class _SnsAuthorizationError(AccessDeniedError):
    """SNS's answer to a request a topic policy denies: ``AuthorizationError``, HTTP 403."""

    def __init__(self, message: str) -> None:
        super(AccessDeniedError, self).__init__("AuthorizationError", message)


def _check_topic_policy(request: IAMRequestBase, principal: str) -> None:
    """The topic's own policy, which SNS evaluates and moto does not (:mod:`emulator.topic_policy`)."""
    if request._action not in topic_policy.ACTIONS:
        return
    params = _request_params(request)
    topic_arn = str(params.get("TopicArn") or "")
    topic = sns_backends[request.account_id][request._region].topics.get(topic_arn)
    if topic is None:
        return  # SNS answers NotFound itself
    sid = topic_policy.denying_statement(
        topic.policy,
        action=request._action,
        topic_arn=topic_arn,
        caller_arn=principal,
        account_id=request.account_id,
        params=params,
    )
    if sid is None:
        return
    JOURNAL.record(Access(principal, request._action, topic_arn, allowed=False))
    raise _SnsAuthorizationError(
        f"User: {principal} is not authorized to perform: {request._action.replace('sns:', 'SNS:')} "
        f"on resource: {topic_arn} with an explicit deny in a resource-based policy (statement {sid})"
    )


def _check_action_permitted(self: IAMRequestBase, resource: str) -> None:
    original = _ORIGINALS["check_action_permitted"]
    if not _STATE.active:
        original(self, resource)
        return
    principal = self._access_key.arn
    self._action = IAM_ACTION_OF_API.get(self._action, self._action)
    try:
        original(self, resource)
    except AccessDeniedError as error:
        JOURNAL.record(Access(principal, self._action, resource, allowed=False))
        raise _denied(self, error) from None
    _check_topic_policy(self, principal)
    JOURNAL.record(Access(principal, self._action, resource, allowed=True))
    implied = _implied_permissions(self)
    if not implied:
        return
    policies = self._access_key.collect_policies()
    for action, arn, conditions in implied:
        allowed = _permitted(policies, action, arn, conditions)
        JOURNAL.record(Access(principal, action, arn, allowed=allowed, implied_by=self._action))
        if not allowed:
            raise _denied(self, AccessDeniedError(user_arn=principal, action=f"{action} on resource {arn}"))


# --------------------------------------------------------------------------------------------
# SQS event source mappings: polled by emulator.flows, not by moto
# --------------------------------------------------------------------------------------------


def _queue_add_message(self: Queue, message: Any) -> None:
    original = _ORIGINALS["queue_add_message"]
    if not _STATE.active or not self.lambda_event_source_mappings:
        original(self, message)
        return
    with _STATE.queue_lock:
        mappings = self.lambda_event_source_mappings
        self.lambda_event_source_mappings = {}
        try:
            original(self, message)
        finally:
            self.lambda_event_source_mappings = mappings


# --------------------------------------------------------------------------------------------
# Install, activate
# --------------------------------------------------------------------------------------------


def install() -> None:
    """Attach the patches (idempotent). They stay inert until :func:`activate`."""
    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"emulator.moto_ext patches moto {MOTO_VERSION} internals; moto is {moto.__version__}: "
            "re-check each patch against the new release, then update MOTO_VERSION"
        )
    with _STATE.lock:
        if _STATE.installed:
            return
        _ORIGINALS["statement_is_action_permitted"] = IAMPolicyStatement.is_action_permitted
        _ORIGINALS["check_action_permitted"] = IAMRequestBase.check_action_permitted
        _ORIGINALS["queue_add_message"] = Queue.add_message
        _ORIGINALS["rule_send_to_targets"] = Rule.send_to_targets
        Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
        _ORIGINALS["check_conditions"] = IAMPolicyStatement._check_conditions
        IAMPolicyStatement._check_conditions = _check_conditions  # type: ignore[method-assign]
        _ORIGINALS["create_aws_request"] = IAMRequestBase._create_aws_request
        IAMRequestBase._create_aws_request = _create_aws_request  # type: ignore[method-assign]
        for method, action in (
            ("GET", "GetEncryptionConfiguration"),
            ("PUT", "PutEncryptionConfiguration"),
            ("DELETE", "PutEncryptionConfiguration"),
        ):
            S3_ACTION_MAP["BUCKET"][method].setdefault("encryption", action)
        IAMPolicyStatement.is_action_permitted = _statement_is_action_permitted  # type: ignore[method-assign]
        IAMRequestBase.check_action_permitted = _check_action_permitted  # type: ignore[method-assign]
        Queue.add_message = _queue_add_message  # type: ignore[method-assign]
        EventsHandler.test_event_pattern = _test_event_pattern  # type: ignore[method-assign,assignment]
        _ORIGINALS["cfn_generate_resource_name"] = cfn_parsing.generate_resource_name
        cfn_parsing.generate_resource_name = _generate_resource_name
        if not hasattr(EventBus, "physical_resource_id"):
            EventBus.physical_resource_id = property(lambda bus: bus.name)  # type: ignore[attr-defined]
        _ORIGINALS["events_put_events"] = EventsHandler.put_events
        EventsHandler.put_events = _put_events  # type: ignore[method-assign]
        for name in _ORG_READ_ONLY:
            _ORIGINALS[f"org_{name}"] = getattr(OrganizationsBackend, name)
            setattr(OrganizationsBackend, name, _read_only(name))
        _STATE.installed = True


def activate(*, enforce_iam: bool) -> None:
    """Turn the patches on; with ``enforce_iam`` every request is authenticated and authorised."""
    install()
    with _STATE.lock:
        _STATE.active = True
        _STATE.saved_auth = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if enforce_iam else float("inf")
        ActionAuthenticatorMixin.request_count = 0
        if _STACKSETS_PRINCIPAL not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
            FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(_STACKSETS_PRINCIPAL)
        BUS_OUTBOX.clear()


def deactivate() -> None:
    with _STATE.lock:
        if _STATE.saved_auth is not None:
            settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = _STATE.saved_auth
            _STATE.saved_auth = None
        _STATE.active = False
        if _STACKSETS_PRINCIPAL in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
            FakeDelegatedAdministrator.SUPPORTED_SERVICES.remove(_STACKSETS_PRINCIPAL)
        BUS_OUTBOX.clear()


@contextmanager
def iam_suspended() -> Iterator[None]:
    """No authentication inside (bootstrap of the admin user)."""
    with _STATE.lock:
        saved = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    try:
        yield
    finally:
        with _STATE.lock:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = saved
