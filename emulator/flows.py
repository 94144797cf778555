"""The stack's flows, driven through the deployed wiring.

Each driver plays an AWS service the emulator does not run, and does only what that service
does, reading the deployed configuration through the API:

* **EventBridge** (:meth:`Flows.put_event`, :meth:`Flows.fire_schedule`): an event is matched
  against every enabled rule on the default bus with ``events:TestEventPattern`` (moto's own
  matcher); each Lambda target of a matching rule is invoked asynchronously, if the function's
  resource policy lets that rule invoke it; each SQS target gets the event as one message
  (``SendMessage``), if the queue's policy lets ``events.amazonaws.com`` send for that rule
  (``aws:SourceArn``), else the event goes to the target's dead-letter queue (if that queue's
  policy admits the rule) with EventBridge's ``RULE_ARN``/``TARGET_ARN``/``ERROR_CODE``/
  ``ERROR_MESSAGE`` attributes. Scheduled rules get EventBridge's "Scheduled Event".
* **the tagging service** (:meth:`Flows.tag_instances`): ``ec2:CreateTags``, then one "Tag Change
  on Resource" event per instance (the full current tag set, the changed key).
* **Parameter Store** (:meth:`Flows.put_group_settings`): ``ssm:PutParameter``, then its
  "Parameter Store Change" event.
* **SSM Maintenance Windows and Run Command** (:meth:`Flows.run_window`): the group's window,
  target and task as the reconciler registered them; ``ssm:SendCommand`` of the task's document and
  parameters as the window's service role; command output written to S3 as the instance profile
  (with the stack's ``InstanceOutputWritePolicy``); Run Command status notifications published to
  the task's topic as its notification role, in the configured type and events.
* **Lambda's SQS poller** (:meth:`Flows.poll`): the deployed event source mapping's batch size and
  response types; ``GetQueueAttributes``, ``ReceiveMessage`` and ``DeleteMessageBatch`` with the
  function's role; up to ``BatchSize`` records per Lambda SQS event (the batching window is not
  waited for); deletion of exactly the records the function did not report as failures (an
  invalid partial batch response, or an error, keeps the whole batch). The batches run one after
  another: the mapping's ``ScalingConfig.MaximumConcurrency`` is an upper bound the emulator
  always keeps. Kept messages stay invisible until :meth:`Flows.redeliver` lets their visibility
  timeout run out (after the queue's ``maxReceiveCount`` receives, SQS moves them to the DLQ).
"""

from __future__ import annotations

import fnmatch
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from emulator import fake_ssm
from emulator.deploy import Deployment
from emulator.runtime import AsyncOutcome, Invocation, LambdaRuntime
from emulator.server import Credentials, Emulator
from emulator.topic_policy import _condition_holds

EVENTS_PRINCIPAL: Final = "events.amazonaws.com"
SSM_PRINCIPAL: Final = "ssm.amazonaws.com"
EC2_PRINCIPAL: Final = "ec2.amazonaws.com"
INSTANCE_ROLE: Final = "tagpatch-emulator-instance"
INBOX_QUEUE: Final = "tagpatch-emulator-alert-inbox"
_FINAL_STATUSES: Final = ("Success", "Failed", "TimedOut", "Cancelled")
#: What SSM is documented to send when it assumes a maintenance window service role or a Run
#: Command notification role: nothing to match a trust condition against. Both pages give a bare
#: ssm.amazonaws.com trust ("Task 2: Create a custom service role for maintenance windows",
#: https://docs.aws.amazon.com/systems-manager/latest/userguide/configuring-maintenance-window-permissions-console.html;
#: "Create an IAM role for Amazon SNS notifications",
#: https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-sns-notifications.html),
#: so a trust policy that asks for aws:SourceAccount fails here as it may on a real account.
SSM_ASSUME_ROLE_CONTEXT: Final[dict[str, str]] = {}


def iso(moment: datetime) -> str:
    """EventBridge/SSM time: UTC with milliseconds and ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RuleDelivery:
    rule: str
    target_id: str
    function: str  # logical id of a Lambda target ("" for a queue target)
    outcome: AsyncOutcome | None  # None for a queue target, or when the target's policy refused the rule
    refused: str = ""
    queue: str = ""  # logical id of an SQS target
    message_id: str = ""  # the message the event became on it
    dead_letter: str = ""  # logical id of the rule's dead-letter queue that got a refused event


@dataclass
class BatchResult:
    """One batch the SQS poller gave the function."""

    invocation: Invocation
    message_ids: list[str]
    failed_ids: list[str]
    deleted: int
    queue: str = ""  # logical id of the queue it came from
    max_concurrency: int | None = None  # the mapping's ScalingConfig.MaximumConcurrency


def reconciled(invocation: Invocation) -> list[dict[str, Any]]:
    """The reconciler's outcomes in an invocation's log ("group reconciled": group, status,
    actions, reasons), as an operator reads them in CloudWatch Logs."""
    outcomes = []
    for line in invocation.log_lines:
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("message") == "group reconciled":
            outcomes.append({key: entry.get(key) for key in ("group", "status", "actions", "reasons")})
    return outcomes


@dataclass
class WindowRun:
    group: str
    window_id: str
    command_id: str
    instance_ids: list[str]
    output_prefix: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    output_keys: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # instances whose final status is not published yet
    notifier: _Notifier | None = field(default=None, repr=False)


class _Notifier:
    """Run Command's SNS notifications of one command, published as its notification role."""

    def __init__(
        self,
        sns: Any,
        run: WindowRun,
        command: Mapping[str, Any],
        config: Mapping[str, Any],
        outcomes: Mapping[str, str],
        *,
        account: str,
        region: str,
    ) -> None:
        self.sns = sns
        self.account = account
        self.region = region
        self.run = run
        self.command = command
        self.config = config
        self.outcomes = outcomes
        self.wanted = set(config.get("NotificationEvents") or ["All"])
        self.invocation_type = config.get("NotificationType", "Command") == "Invocation"
        self.requested: datetime = command["RequestedDateTime"]
        self.clock = self.requested

    def _publish(self, status: str, **fields: Any) -> None:
        if "All" not in self.wanted and status not in self.wanted:
            return
        self.clock += timedelta(seconds=7)
        message = {
            "commandId": self.run.command_id,
            "documentName": self.command["DocumentName"],
            **fields,
            "requestedDateTime": iso(self.requested),
            "status": status,
            "eventTime": iso(self.clock),
        }
        if not self.invocation_type:  # the Command shape (ssm-sns-message-command-*.json)
            message = {
                "commandId": message["commandId"],
                "documentName": message["documentName"],
                "instanceIds": [],
                "requestedDateTime": message["requestedDateTime"],
                "expiresAfter": iso(self.command["ExpiresAfter"]),
                "outputS3BucketName": self.command.get("OutputS3BucketName", ""),
                "outputS3KeyPrefix": self.command.get("OutputS3KeyPrefix", ""),
                "status": status,
                "eventTime": message["eventTime"],
            }
        self.sns.publish(TopicArn=self.config["NotificationArn"], Message=json.dumps(message))
        self.run.notifications.append(message)

    def _progress(self, status: str) -> None:
        """ListCommands follows the run, as Run Command's does (moto reports Success at once)."""
        done = len(self.run.instance_ids) - len(self.run.pending)
        fake_ssm.set_command_progress(
            self.run.command_id, status, completed=done, account_id=self.account, region=self.region
        )

    def start(self) -> None:
        self._progress("InProgress")
        if self.invocation_type:
            for instance_id in self.run.instance_ids:
                self._publish("InProgress", instanceId=instance_id)
        else:
            self._publish("InProgress")

    def finish(self, instance_ids: Sequence[str]) -> None:
        for instance_id in instance_ids:
            self.run.pending.remove(instance_id)
        overall = "InProgress"
        if not self.run.pending:
            finals = {self.outcomes.get(i, "Success") for i in self.run.instance_ids}
            if finals <= {"Success"}:
                overall = "Success"
            else:
                overall = "Failed" if "Failed" in finals else sorted(finals - {"Success"})[0]
        # The command's status is final before its last notifications go out
        self._progress(overall)
        for instance_id in instance_ids:
            if self.invocation_type:
                self._publish(self.outcomes.get(instance_id, "Success"), instanceId=instance_id)
        if not self.invocation_type and not self.run.pending:
            self._publish(overall)


@dataclass(frozen=True)
class Email:
    subject: str
    message: str
    sent: str


class Flows:
    """Drivers of the deployed stack (see the module docstring)."""

    def __init__(self, emulator: Emulator, deployment: Deployment, runtime: LambdaRuntime) -> None:
        self.emulator = emulator
        self.deployment = deployment
        self.runtime = runtime
        self.account = emulator.account_id
        self.region = emulator.region
        self._tag_versions: dict[str, int] = {}
        self._inbox_url = ""
        self._instance_credentials: Credentials | None = None
        # queue URL -> receipt handles of the messages the poller kept (not deleted) on it
        self._kept: dict[str, list[str]] = {}

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        return self.emulator.client(service, credentials)

    # -- EventBridge ----------------------------------------------------------------------------
    def _envelope(
        self, detail_type: str, source: str, resources: list[str], detail: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self.account,
            "time": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": resources,
            "detail": detail,
        }

    def _rules(self, bus: str = "default") -> list[dict[str, Any]]:
        events = self.client("events")
        rules: list[dict[str, Any]] = []
        for page in events.get_paginator("list_rules").paginate(EventBusName=bus):
            rules.extend(page.get("Rules", []))
        return rules

    def put_event(self, event: dict[str, Any], bus: str = "default") -> list[RuleDelivery]:
        """Deliver ``event`` as EventBridge would to every matching enabled rule of ``bus`` (name)."""
        events = self.client("events")
        deliveries: list[RuleDelivery] = []
        body = json.dumps(event)
        for rule in self._rules(bus):
            if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
                continue
            if not events.test_event_pattern(EventPattern=rule["EventPattern"], Event=body)["Result"]:
                continue
            deliveries.extend(self._deliver(rule, event, bus=bus))
        return deliveries

    def fire_schedule(
        self, function: str, at: datetime | None = None, rule: str | None = None
    ) -> list[RuleDelivery]:
        """Fire every enabled scheduled rule that targets ``function`` (logical id) once; only the
        rule of logical id ``rule`` (e.g. ``ReconcilerFunctionReconcile``) when given."""
        arn = self.runtime.configuration(function)["FunctionArn"]
        deliveries: list[RuleDelivery] = []
        moment = (at or now()).replace(second=0, microsecond=0)
        wanted = None if rule is None else self.deployment.physical_id(rule)
        for rule_ in self._rules():
            if rule_.get("State") != "ENABLED" or not rule_.get("ScheduleExpression"):
                continue
            if wanted is not None and rule_["Name"] != wanted:
                continue
            targets = self.client("events").list_targets_by_rule(Rule=rule_["Name"])["Targets"]
            if not any(target["Arn"] == arn for target in targets):
                continue
            event = self._envelope("Scheduled Event", "aws.events", [rule_["Arn"]], {})
            event["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            deliveries.extend(self._deliver(rule_, event, only=arn))
        return deliveries

    def _deliver(
        self, rule: dict[str, Any], event: dict[str, Any], only: str | None = None, bus: str = "default"
    ) -> list[RuleDelivery]:
        deliveries = []
        targets = self.client("events").list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        for target in targets:
            arn = str(target["Arn"])
            if only is not None and arn != only:
                continue
            if ":sqs:" in arn and (queue := self._stack_queue(arn)):
                deliveries.append(
                    self._send_to_queue(rule, target, queue, _target_input(target, event), event)
                )
                continue
            if ":lambda:" not in arn:
                continue
            try:
                function = self.deployment.function_logical_id(arn)
            except KeyError:
                continue  # a function of another stack in the same account: not this stack's flow
            refusal = self._refusal(arn, rule["Arn"])
            if refusal:
                deliveries.append(RuleDelivery(rule["Name"], target["Id"], function, None, refusal))
                continue
            payload = _target_input(target, event)
            deliveries.append(
                RuleDelivery(rule["Name"], target["Id"], function, self.runtime.invoke_async(arn, payload))
            )
        return deliveries

    def _stack_queue(self, arn: str) -> str | None:
        """The logical id of this stack's queue ``arn`` (None: another stack's, not this flow)."""
        name = arn.rsplit(":", 1)[-1]
        for queue in self.deployment.of_type("AWS::SQS::Queue"):
            if queue.physical_id.rsplit("/", 1)[-1] == name:
                return queue.logical_id
        return None

    def _send_to_queue(
        self, rule: dict[str, Any], target: Mapping[str, Any], queue: str, payload: Any, event: dict[str, Any]
    ) -> RuleDelivery:
        """EventBridge's SQS target: the input as one message, if the queue's policy admits the rule;
        else the event to the target's dead-letter queue, if that one's policy does."""
        url = self.deployment.physical_id(queue)
        refusal = self._queue_refusal(url, str(target["Arn"]), str(rule["Arn"]))
        delivery = RuleDelivery(str(rule["Name"]), str(target["Id"]), "", None, queue=queue)
        if not refusal:
            body = payload if isinstance(payload, str) else json.dumps(payload)
            delivery.message_id = self.client("sqs").send_message(QueueUrl=url, MessageBody=body)["MessageId"]
            return delivery
        delivery.refused = refusal
        delivery.dead_letter = self.dead_letter(str(rule["Arn"]), target, event, refusal)
        return delivery

    def dead_letter(self, rule_arn: str, target: Mapping[str, Any], event: dict[str, Any], error: str) -> str:
        """EventBridge's dead-letter queue of a target it could not deliver to: the event with
        ``RULE_ARN``/``TARGET_ARN``/``ERROR_CODE``/``ERROR_MESSAGE`` attributes, if the queue's policy
        admits the rule ("Using dead-letter queues to process undelivered events",
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html). The queue's
        logical id, or "" (no DLQ, or its policy refuses: the event is lost, as on AWS)."""
        dlq_arn = str(target.get("DeadLetterConfig", {}).get("Arn", ""))
        dlq = self._stack_queue(dlq_arn) if dlq_arn else None
        if dlq is None:
            return ""
        dlq_url = self.deployment.physical_id(dlq)
        if self._queue_refusal(dlq_url, dlq_arn, rule_arn):
            return ""
        attributes = {
            "RULE_ARN": rule_arn,
            "TARGET_ARN": str(target["Arn"]),
            "ERROR_CODE": "NO_PERMISSIONS",
            "ERROR_MESSAGE": error[:1000],
        }
        self.client("sqs").send_message(
            QueueUrl=dlq_url,
            MessageBody=json.dumps(event),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
        return dlq

    def _queue_refusal(self, url: str, queue_arn: str, rule_arn: str) -> str:
        """Why the queue's policy does not let ``events.amazonaws.com`` send for the rule ('' if it
        does): an explicit Deny wins, else one Allow must name the service, ``sqs:SendMessage``, the
        queue and hold its conditions (``aws:SourceArn`` = the rule, ``aws:SourceAccount``)."""
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
        text = attributes.get("Attributes", {}).get("Policy")
        if not text:
            return f"the queue {queue_arn} has no policy: {EVENTS_PRINCIPAL} may not send to it"
        context = {
            "aws:sourcearn": rule_arn,
            "aws:sourceaccount": self.account,
            "aws:securetransport": "true",
        }
        allowed = False
        for index, statement in enumerate(_listify(json.loads(text).get("Statement", []))):
            principal = statement.get("Principal", {})
            services = _listify(principal.get("Service", [])) if isinstance(principal, dict) else []
            if principal != "*" and EVENTS_PRINCIPAL not in services:
                continue
            actions = [str(a).lower() for a in _listify(statement.get("Action", []))]
            if not any(fnmatch.fnmatchcase("sqs:sendmessage", action) for action in actions):
                continue
            if not any(
                fnmatch.fnmatchcase(queue_arn, str(r)) for r in _listify(statement.get("Resource", "*"))
            ):
                continue
            if not _condition_holds(statement.get("Condition") or {}, context):
                continue
            if statement.get("Effect") == "Deny":
                return f"denied by the queue's policy (statement {statement.get('Sid', index)})"
            allowed = True
        if allowed:
            return ""
        return (
            f"no statement of the queue's policy lets {EVENTS_PRINCIPAL} send to {queue_arn} for {rule_arn}"
        )

    def _refusal(self, function_arn: str, rule_arn: str) -> str:
        """Why the function's resource policy does not let the rule invoke it ('' if it does)."""
        try:
            policy = json.loads(self.client("lambda").get_policy(FunctionName=function_arn)["Policy"])
        except ClientError:
            return "the function has no resource policy"
        for statement in policy.get("Statement", []):
            principal = statement.get("Principal", {})
            service = principal.get("Service") if isinstance(principal, dict) else principal
            if statement.get("Effect") != "Allow" or service != EVENTS_PRINCIPAL:
                continue
            if statement.get("Action") not in ("lambda:InvokeFunction", ["lambda:InvokeFunction"]):
                continue
            source = {k.lower(): v for k, v in statement.get("Condition", {}).get("ArnLike", {}).items()}
            if source.get("aws:sourcearn", rule_arn) == rule_arn:
                return ""
        return f"no resource policy statement lets {EVENTS_PRINCIPAL} invoke it for {rule_arn}"

    # -- the tagging service and Parameter Store --------------------------------------------------
    def tag_instances(self, instance_ids: Sequence[str], key: str, value: str | None) -> list[RuleDelivery]:
        """Set (``value``) or delete (None) tag ``key`` on the instances; deliver each tag change event."""
        ec2 = self.client("ec2")
        if value is None:
            ec2.delete_tags(Resources=list(instance_ids), Tags=[{"Key": key}])
        else:
            ec2.create_tags(Resources=list(instance_ids), Tags=[{"Key": key, "Value": value}])
        deliveries: list[RuleDelivery] = []
        for instance_id in instance_ids:
            tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])["Tags"]
            self._tag_versions[instance_id] = self._tag_versions.get(instance_id, 0) + 1
            detail = {
                "changed-tag-keys": [key],
                "service": "ec2",
                "resource-type": "instance",
                "version": self._tag_versions[instance_id],
                "tags": {tag["Key"]: tag["Value"] for tag in tags},
            }
            resource = f"arn:aws:ec2:{self.region}:{self.account}:instance/{instance_id}"
            deliveries.extend(
                self.put_event(self._envelope("Tag Change on Resource", "aws.tag", [resource], detail))
            )
        return deliveries

    def put_group_settings(self, name: str, settings: Mapping[str, Any]) -> list[RuleDelivery]:
        """Write a group's override to Parameter Store; deliver the "Parameter Store Change" event."""
        ssm = self.client("ssm")
        try:
            ssm.get_parameter(Name=name)
            operation = "Update"
        except ClientError:
            operation = "Create"
        ssm.put_parameter(Name=name, Value=json.dumps(settings), Type="String", Overwrite=True)
        resource = f"arn:aws:ssm:{self.region}:{self.account}:parameter{name}"
        detail = {"operation": operation, "name": name, "type": "String", "description": ""}
        return self.put_event(self._envelope("Parameter Store Change", "aws.ssm", [resource], detail))

    # -- Lambda's SQS poller ----------------------------------------------------------------------
    def poll(self, function: str) -> list[BatchResult]:
        """Drain every enabled SQS event source mapping of ``function`` as Lambda's poller does."""
        name = self.deployment.functions[function]
        credentials = self.runtime.credentials(function)
        sqs = self.client("sqs", credentials)
        results: list[BatchResult] = []
        mappings = self.client("lambda").list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
        for mapping in mappings:
            source = str(mapping["EventSourceArn"])
            if mapping.get("State") != "Enabled" or ":sqs:" not in source:
                continue
            url = self.client("sqs").get_queue_url(QueueName=source.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])  # as Lambda's poller
            report_failures = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
            limit = mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
            queue = self._stack_queue(source) or ""
            while True:
                messages = self._receive(sqs, url, int(mapping.get("BatchSize", 10)))
                if not messages:
                    break
                records = [self._record(message, source) for message in messages]
                invocation = self.runtime.invoke(function, {"Records": records})
                failed = _failed_ids(invocation, records, report_failures)
                done = [m for m in messages if m["MessageId"] not in failed]
                self._kept.setdefault(url, []).extend(m["ReceiptHandle"] for m in messages if m not in done)
                for start in range(0, len(done), 10):
                    chunk = done[start : start + 10]
                    sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                        ],
                    )
                results.append(
                    BatchResult(
                        invocation,
                        [m["MessageId"] for m in messages],
                        sorted(failed),
                        len(done),
                        queue,
                        None if limit is None else int(limit),
                    )
                )
        return results

    def redeliver(self) -> int:
        """The visibility timeout of every message a poller kept runs out: SQS makes them visible
        again (``ChangeMessageVisibility`` 0, as the admin). How many there were."""
        sqs = self.client("sqs")
        count = 0
        for url, handles in self._kept.items():
            for handle in handles:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
                count += 1
        self._kept.clear()
        return count

    def drain(self, function: str, *, redeliveries: int = 0) -> list[BatchResult]:
        """:meth:`poll` until nothing is visible; then, ``redeliveries`` times, let the kept
        messages' visibility timeout run out and poll again."""
        results = self.poll(function)
        for _ in range(redeliveries):
            if not self.redeliver():
                break
            results += self.poll(function)
        return results

    @staticmethod
    def _receive(sqs: Any, url: str, batch_size: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < batch_size:
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, batch_size - len(messages)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        return messages

    def _record(self, message: dict[str, Any], source_arn: str) -> dict[str, Any]:
        """One record of the Lambda SQS event (the shape Lambda's poller builds)."""
        attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": attributes,
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": source_arn,
            "awsRegion": self.region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def queue_depth(self, logical_id: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.deployment.physical_id(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    # -- SSM: a maintenance window run --------------------------------------------------------------
    def run_window(
        self,
        group: str,
        outcomes: Mapping[str, str],
        *,
        late: Sequence[str] = (),
        role: str = "install",
    ) -> WindowRun:
        """Run ``group``'s window once: each instance ends in ``outcomes[instance]`` (default Success).

        Instances in ``late`` are still running when this returns (only their InProgress status is
        published); :meth:`finish_late` publishes how they end.
        """
        unknown = set(outcomes.values()) - set(_FINAL_STATUSES)
        if unknown:
            raise ValueError(f"unknown final statuses {sorted(unknown)}")
        ssm = self.client("ssm")
        record = self.group_record(group)
        ids = record["windows"][role]
        window_id, target_id, task_id = ids["window_id"], ids["target_id"], ids["task_id"]
        task = ssm.get_maintenance_window_task(WindowId=window_id, WindowTaskId=task_id)
        targets = ssm.describe_maintenance_window_targets(
            WindowId=window_id, Filters=[{"Key": "WindowTargetId", "Values": [target_id]}]
        )["Targets"]
        instance_ids = self._instances_of(targets[0]["Targets"])
        run_command = task["TaskInvocationParameters"]["RunCommand"]
        window_role = self.emulator.assume_role_as_service(
            task["ServiceRoleArn"], SSM_PRINCIPAL, "MaintenanceWindow", SSM_ASSUME_ROLE_CONTEXT
        )
        params: dict[str, Any] = {
            key: run_command[key]
            for key in (
                "Comment",
                "DocumentVersion",
                "NotificationConfig",
                "OutputS3BucketName",
                "OutputS3KeyPrefix",
                "Parameters",
                "ServiceRoleArn",
                "TimeoutSeconds",
                "CloudWatchOutputConfig",
            )
            if key in run_command
        }
        command = self.client("ssm", window_role).send_command(
            DocumentName=task["TaskArn"],
            InstanceIds=instance_ids,
            MaxConcurrency=task["MaxConcurrency"],
            MaxErrors=task["MaxErrors"],
            **params,
        )["Command"]
        run = WindowRun(
            group,
            window_id,
            command["CommandId"],
            instance_ids,
            str(run_command.get("OutputS3KeyPrefix", "")),
        )
        if run_command.get("OutputS3BucketName"):
            run.output_keys = self._write_output(run, str(run_command["OutputS3BucketName"]), outcomes)
        run.pending = list(instance_ids)
        config = run_command.get("NotificationConfig") or {}
        if config.get("NotificationArn"):
            role_session = self.emulator.assume_role_as_service(
                str(run_command["ServiceRoleArn"]), SSM_PRINCIPAL, "RunCommand", SSM_ASSUME_ROLE_CONTEXT
            )
            run.notifier = _Notifier(
                self.client("sns", role_session),
                run,
                command,
                config,
                outcomes,
                account=self.account,
                region=self.region,
            )
            run.notifier.start()
            run.notifier.finish([i for i in instance_ids if i not in late])
        return run

    def finish_late(self, run: WindowRun) -> None:
        """The instances ``run`` left running end now: their final notifications are published."""
        if run.notifier is not None:
            run.notifier.finish(list(run.pending))
        run.pending.clear()

    def group_record(self, group: str) -> dict[str, Any]:
        item = (
            self.client("dynamodb")
            .get_item(TableName=self.deployment.physical_id("GroupsTable"), Key={"group": {"S": group}})
            .get("Item")
        )
        if not item:
            raise KeyError(f"group {group} has no record in GroupsTable")
        deserializer = TypeDeserializer()
        return {key: deserializer.deserialize(value) for key, value in item.items()}

    def _instances_of(self, targets: list[dict[str, Any]]) -> list[str]:
        filters = [{"Name": "instance-state-name", "Values": ["running"]}]
        for target in targets:
            if not str(target["Key"]).startswith("tag:"):
                raise NotImplementedError(f"window target {target['Key']} is not emulated")
            filters.append({"Name": target["Key"], "Values": list(target["Values"])})
        ids: list[str] = []
        for page in self.client("ec2").get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                ids.extend(instance["InstanceId"] for instance in reservation["Instances"])
        return sorted(ids)

    def _instance_role(self) -> Credentials:
        """An instance profile role with the stack's InstanceOutputWritePolicy (README step 1); one
        per region (IAM is global to the account: a stack per region has its own policy)."""
        if self._instance_credentials is None:
            iam = self.client("iam")
            name = INSTANCE_ROLE if self.region == "us-east-1" else f"{INSTANCE_ROLE}-{self.region}"
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": EC2_PRINCIPAL}, "Action": "sts:AssumeRole"}
                ],
            }
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            iam.attach_role_policy(
                RoleName=name, PolicyArn=self.deployment.outputs["InstanceOutputWritePolicyArn"]
            )
            self._instance_credentials = self.emulator.assume_role_as_service(arn, EC2_PRINCIPAL, "ssm-agent")
        return self._instance_credentials

    def _write_output(self, run: WindowRun, bucket: str, outcomes: Mapping[str, str]) -> list[str]:
        """SSM Agent's output upload, with the instance profile's credentials."""
        s3 = self.emulator.client("s3", self._instance_role())
        s3.get_bucket_encryption(Bucket=bucket)
        keys = []
        for instance_id in run.instance_ids:
            key = f"{run.output_prefix}/{run.command_id}/{instance_id}/awsrunShellScript/PatchLinux/stdout"
            status = outcomes.get(instance_id, "Success")
            s3.put_object(
                Bucket=bucket, Key=key, Body=f"AWS-RunPatchBaseline on {instance_id}: {status}\n".encode()
            )
            keys.append(key)
        return keys

    # -- Patch Manager state -----------------------------------------------------------------------
    def seed_patch_states(self, states: Sequence[Mapping[str, Any]]) -> None:
        """What AWS-RunPatchBaseline reports to Patch Manager, stored in the emulator's SSM."""
        for state in states:
            fake_ssm.seed_instance_patch_state(state, region=self.region, account_id=self.account)

    # -- the operator's mailbox --------------------------------------------------------------------
    def subscribe_inbox(self, topic_logical_id: str = "AlertTopic") -> None:
        """An SQS queue subscribed to the topic: what its e-mail subscribers would receive."""
        sqs = self.client("sqs")
        self._inbox_url = sqs.create_queue(QueueName=INBOX_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self._inbox_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.client("sns").subscribe(
            TopicArn=self.deployment.physical_id(topic_logical_id), Protocol="sqs", Endpoint=arn
        )

    def read_inbox(self) -> list[Email]:
        sqs = self.client("sqs")
        emails: list[Email] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self._inbox_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return emails
            for message in messages:
                envelope = json.loads(message["Body"])
                emails.append(
                    Email(envelope.get("Subject", ""), envelope["Message"], envelope.get("Timestamp", ""))
                )
                sqs.delete_message(QueueUrl=self._inbox_url, ReceiptHandle=message["ReceiptHandle"])


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _target_input(target: Mapping[str, Any], event: dict[str, Any]) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    path = target.get("InputPath")
    if path:
        node: Any = event
        for part in str(path).removeprefix("$").strip(".").split("."):
            if part:
                node = node[part]
        return node
    if "InputTransformer" in target:
        raise NotImplementedError("EventBridge InputTransformer is not emulated")
    return event


def _failed_ids(invocation: Invocation, records: list[dict[str, Any]], report_failures: bool) -> set[str]:
    """The message ids Lambda keeps on the queue after this batch."""
    every = {record["messageId"] for record in records}
    if not invocation.ok:
        return every
    if not report_failures:
        return set()
    result = invocation.result
    if not isinstance(result, dict):
        return set()
    failures = result.get("batchItemFailures") or []
    ids = {str(item.get("itemIdentifier", "")) for item in failures if isinstance(item, dict)}
    if not isinstance(failures, list) or not ids <= every or "" in ids:
        return every  # an invalid partial batch response fails the whole batch
    return ids
