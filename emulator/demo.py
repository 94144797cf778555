"""``python -m emulator.demo``: TagPatch working end to end on a local AWS emulator.

Starts moto's server on 127.0.0.1 with IAM enforced, deploys ``template.yaml`` into it as
CloudFormation would (SAM-translated; what moto's CloudFormation skips is made through the
service APIs), launches a small fleet in three patch groups and drives the real flows through the
deployed wiring: tag changes through the deployed EventBridge rule and ReconcileQueue, the
scheduled reconcile (planned, queued, drained from the queue), a settings override, an on-demand
plan, one maintenance window run per group whose Run Command notifications travel
NotificationTopic -> StatusQueue -> the status collector, patch states reported to Patch Manager
and the compliance snapshot. Then it prints what happened, one line per
flow, then the timed steps, what an operator would look at, and what moto's CloudFormation skipped;
``--verbose`` adds which permissions each role was granted but the flows never used.

No AWS account or network access is needed; nothing outlives the process.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from emulator import strict_validation
from emulator.deploy import DROPPED, NORMALISED, NOT_REPRODUCED, SKIPPED, Deployment, deploy
from emulator.fake_ssm import make_instance_patch_state
from emulator.flows import BatchResult, Email, Flows, RuleDelivery, WindowRun, reconciled
from emulator.permissions import RoleUsage, role_usage
from emulator.runtime import Invocation, LambdaRuntime
from emulator.server import Credentials, Emulator

TAG_KEY: Final = "PatchGroup"
ALERT_EMAIL: Final = "ops@example.com"
#: group -> instance Name tags; "db" is tagged at launch, before TagPatch is deployed.
FLEET: Final = {
    "web": ["web-1", "web-2", "web-3"],
    "db": ["db-1", "db-2"],
    "Batch Jobs": ["batch-1", "batch-2"],
}
PRE_TAGGED: Final = ("db",)
#: How each instance's patch run ends (default Success) and what it then reports to Patch Manager.
RUN_OUTCOMES: Final = {"db-2": "Failed", "batch-1": "TimedOut"}
PATCH_STATES: Final[dict[str, dict[str, Any]]] = {
    "db-2": {"missing": 4, "failed": 1, "critical": 2, "security": 1},
    "batch-1": {"missing": 2, "security": 1},
}
#: An IAM user of the account whose own policy allows sns:Publish on every topic: it tries to turn
#: the failed run of FORGED_INSTANCE into a Success on NotificationTopic.
FORGER_USER: Final = "tagpatch-emulator-forger"
FORGED_INSTANCE: Final = "db-2"
_DESERIALIZER: Final = TypeDeserializer()
MADE_BY_API: Final = "Made through service APIs because moto's CloudFormation did not"
LEAST_PRIVILEGE: Final = "Least privilege: granted but never used by these flows"


@dataclass
class DemoResult:
    deployment: Deployment
    fleet: dict[str, str]  # instance id -> Name
    groups: dict[str, list[str]]  # group -> instance ids
    runs: list[WindowRun] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    usage: list[RoleUsage] = field(default_factory=list)
    failed_invocations: list[Invocation] = field(default_factory=list)
    forged_publish: str = ""  # what became of the forged Run Command notification
    report: str = ""  # how the compliance snapshot went through ReportQueue
    seconds: float = 0.0


class Printer:
    """The flows' outcomes and timed steps, kept until the run ends; then the operator views.

    ``step``/``detail`` lines go to :attr:`log` (printed after the summary of :attr:`outcomes`);
    with a ``progress`` stream (a terminal), each step also shows there on one overwritten line.
    """

    def __init__(self, out: TextIO, progress: TextIO | None = None) -> None:
        self.out = out
        self.progress = progress
        self.log = io.StringIO()
        self.outcomes: list[tuple[str, str]] = []
        self.log_shown = False
        self.started = time.perf_counter()

    def step(self, text: str) -> None:
        line = f"[{time.perf_counter() - self.started:5.1f}s] {text}"
        print(line, file=self.log)
        if self.progress is not None:
            width = shutil.get_terminal_size().columns - 1
            self.progress.write(f"\r\033[K{line[:width]}")
            self.progress.flush()

    def detail(self, text: str) -> None:
        print(f"         {text}", file=self.log)

    def outcome(self, flow: str, text: str) -> None:
        """One line of the summary printed first: what ``flow`` ended with."""
        self.outcomes.append((flow, text))

    def end_progress(self) -> None:
        if self.progress is not None:
            self.progress.write("\r\033[K")
            self.progress.flush()

    def section(self, title: str) -> None:
        print(f"\n== {title} " + "=" * max(0, 92 - len(title)), file=self.out)

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    def summary(self) -> None:
        """What each flow ended with, then the timed steps that got there."""
        self.section("What happened")
        width = max(len(flow) for flow, _ in self.outcomes)
        for flow, text in self.outcomes:
            self.line(f"  {flow:<{width}}  {text}")
        self.section("How it ran (timed steps)")
        self.out.write(self.log.getvalue())
        self.log_shown = True

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for index, row in enumerate(cells):
            self.line(
                "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )
            if index == 0:
                self.line("  " + "  ".join("-" * width for width in widths))


def _summary(delivery: RuleDelivery, *, brief: bool = False) -> str:
    if delivery.refused:
        where = f"; the event went to {delivery.dead_letter}" if delivery.dead_letter else ""
        return f"refused by the target's policy ({delivery.refused}){where}"
    if delivery.outcome is None:
        return f"sent to {delivery.queue} as message {delivery.message_id[:8]}"
    last = delivery.outcome.last
    if not last.ok:
        return f"FAILED after {len(delivery.outcome.attempts)} attempts: {last.describe_error()}"
    return _groups_line(last.result, brief=brief)


def _groups_line(result: Any, *, brief: bool = False) -> str:
    """``group status (actions) - reasons`` per group; ``brief``: action names and the first reason."""
    groups = result.get("groups", []) if isinstance(result, dict) else []
    if not groups:
        return json.dumps(result)[:200]
    parts = []
    for group in groups:
        actions = [str(a).split(" (")[0] for a in group.get("actions", [])]
        reasons = "; ".join(group.get("reasons", []))
        if brief:
            actions = [action.split(" ")[0] for action in actions]
            more = len(group.get("reasons", [])) - 1
            reasons = reasons.split("; ")[0] + (f" (+{more} more)" if more > 0 else "")
        text = f"{group['group']} {group['status']}"
        if actions:
            text += f" ({', '.join(actions)})"
        if reasons:
            text += f" - {reasons}"
        parts.append(text)
    return "; ".join(parts)


def _drained(printer: Printer, flows: Flows, what: str) -> list[dict[str, Any]]:
    """Lambda's poller drains ReconcileQueue into the reconciler: its outcomes, as logged."""
    batches: list[BatchResult] = flows.poll("ReconcilerFunction")
    outcomes = [outcome for batch in batches for outcome in reconciled(batch.invocation)]
    records = sum(len(batch.message_ids) for batch in batches)
    failed = sum(len(batch.failed_ids) for batch in batches)
    limit = next((batch.max_concurrency for batch in batches), None)
    printer.step(
        f"{what}: ReconcileQueue -> Lambda's poller (at most {limit} invocations at once) gave "
        f"ReconcilerFunction {len(batches)} batch(es) of {records} record(s), {failed} reported failed"
    )
    for batch in batches:
        if not batch.invocation.ok:
            printer.detail(f"batch failed: {batch.invocation.describe_error()}")
    return outcomes


def _rule_short(name: str, stack: str) -> str:
    return name.removeprefix(f"{stack}-").rsplit("-", 1)[0]


def run(out: TextIO = sys.stdout, *, verbose: bool = False, progress: TextIO | None = None) -> DemoResult:
    """Drive every flow, then print what happened first, the timed steps and the operator views.

    ``verbose`` adds the least-privilege detail per role; ``progress`` (a terminal) shows the
    steps as they run.
    """
    printer = Printer(out, progress)
    strict_validation.install()  # every request checked against botocore's full model, as in the tests
    try:
        with Emulator() as emulator:
            result, flows = _drive(printer, emulator)
            printer.end_progress()
            _what_happened(printer, emulator, flows, result)
            _views(printer, emulator, flows, result, verbose=verbose)
            result.seconds = time.perf_counter() - printer.started
            printer.line(
                f"\nDone in {result.seconds:.1f} s. Nothing was sent anywhere: "
                "the emulator stops with this process."
            )
    except BaseException:
        printer.end_progress()
        if not printer.log_shown:  # the steps so far explain the failure
            out.write(printer.log.getvalue())
        raise
    return result


def _drive(printer: Printer, emulator: Emulator) -> tuple[DemoResult, Flows]:
    """The flows, in order: deploy, tag, reconcile, settings, window runs, compliance."""
    printer.step(
        f"moto server on {emulator.endpoint_url} (in this process); IAM enforced for every request, "
        f"the deploy and drivers sign as IAM user {emulator.admin.principal.rsplit('/', 1)[-1]}"
    )
    fleet, groups = _launch_fleet(emulator)
    printer.step(
        f"fleet: {len(fleet)} EC2 instances in {len(groups)} groups ("
        + ", ".join(f"{g} x{len(ids)}" for g, ids in groups.items())
        + f"); {', '.join(PRE_TAGGED)} tagged {TAG_KEY} at launch, before TagPatch exists"
    )
    deployment = deploy(emulator, parameters={"AlertEmail": ALERT_EMAIL})
    by_cfn = sum(1 for r in deployment.resources.values() if r.made_by == "cloudformation")
    skipped = deployment.changes(SKIPPED)
    fixes = deployment.changes(DROPPED) + deployment.changes(NORMALISED)
    deployed = (
        f"{len(deployment.resources)} resources, {by_cfn} by CloudFormation, {len(skipped)} skipped by "
        f"moto and made through their APIs, {len(fixes)} property fixes (both listed below)"
    )
    printer.step(
        f"template.yaml deployed as stack {deployment.stack_name} (SAM-translated, CreateStack): {deployed}"
    )
    printer.outcome("deploy", f"stack {deployment.stack_name}: {deployed}")
    result = DemoResult(deployment, fleet, groups)
    runtime = LambdaRuntime(emulator, deployment)
    flows = Flows(emulator, deployment, runtime)
    flows.subscribe_inbox()
    _reconcile(printer, flows, deployment, groups)
    if deployment.has("StatusCollectorFunction"):
        _window_runs(printer, flows, result)
    else:
        printer.step("no StatusCollectorFunction in template.yaml yet: window runs are not collected")
    if deployment.has("ComplianceReporterFunction"):
        _compliance(printer, flows, result)
    else:
        printer.step("no ComplianceReporterFunction in template.yaml yet: no compliance snapshot")
    result.emails = flows.read_inbox()
    result.usage = _usage(emulator, deployment, runtime)
    result.failed_invocations = [inv for inv in runtime.invocations if not inv.ok]
    return result, flows


def _launch_fleet(emulator: Emulator) -> tuple[dict[str, str], dict[str, list[str]]]:
    ec2 = emulator.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    fleet: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for group, names in FLEET.items():
        tags = [{"Key": "Name", "Value": "-"}]
        if group in PRE_TAGGED:
            tags.append({"Key": TAG_KEY, "Value": group})
        response = ec2.run_instances(
            ImageId=image,
            MinCount=len(names),
            MaxCount=len(names),
            InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        ids = [instance["InstanceId"] for instance in response["Instances"]]
        for instance_id, name in zip(ids, names, strict=True):
            ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": name}])
            fleet[instance_id] = name
        groups[group] = ids
    return fleet, groups


def _reconcile(printer: Printer, flows: Flows, deployment: Deployment, groups: dict[str, list[str]]) -> None:
    stack = deployment.stack_name
    events = 0
    for group, ids in groups.items():
        if group in PRE_TAGGED:
            continue
        deliveries = flows.tag_instances(ids, TAG_KEY, group)
        rules = sorted({_rule_short(d.rule, stack) for d in deliveries})
        queued = sum(1 for d in deliveries if d.message_id)
        printer.step(
            f"tagged {len(ids)} instances {TAG_KEY}={group}: {len(deliveries)} tag change events matched "
            f"rule {', '.join(rules)} -> ReconcileQueue ({queued} sent, as the queue policy admits the rule)"
        )
        for delivery in deliveries:
            if delivery.refused:
                printer.detail(f"event {delivery.target_id}: {_summary(delivery)}")
        events += len(deliveries)
    outcomes = _drained(printer, flows, "tag change events")
    for index, outcome in enumerate(outcomes, start=1):
        printer.detail(f"event {index}: {_groups_line({'groups': [outcome]})}")
    briefs = [_groups_line({"groups": [outcome]}, brief=True) for outcome in outcomes]
    changes = [text for text in briefs if not text.endswith(" unchanged")] or briefs[:1]
    tagged = [group for group in groups if group not in PRE_TAGGED]
    printer.outcome(
        "tag changes",
        f"{' and '.join(tagged)} tagged: {events} events -> ReconcileQueue -> ReconcilerFunction: "
        + "; ".join(changes),
    )
    for delivery in flows.fire_schedule("ReconcilerFunction", rule="ReconcilerFunctionReconcile"):
        planned = _summary(delivery)
        if delivery.outcome is not None and delivery.outcome.ok:
            queued = delivery.outcome.last.result.get("queued", {})
            planned = f"{queued.get('groups')} groups planned, {queued.get('messages')} message(s) queued"
        printer.step(f"scheduled reconcile (rule {_rule_short(delivery.rule, stack)}): {planned}")
        verified = _drained(printer, flows, "scheduled reconcile")
        for outcome in verified:
            printer.detail(_groups_line({"groups": [outcome]}))
        printer.outcome(
            "scheduled reconcile",
            f"{planned} -> {_groups_line({'groups': verified}, brief=True)} "
            f"({', '.join(PRE_TAGGED)} tagged before the deploy)",
        )
    prefix = deployment.outputs["GroupSettingsPrefix"]
    db_slug = flows.group_record("db")["slug"]
    override = {"schedule": "cron(0 2 ? * SAT *)", "maxConcurrency": "1", "rebootOption": "NoReboot"}
    for delivery in flows.put_group_settings(f"{prefix}{db_slug}", override):
        printer.step(
            f"settings override {prefix}{db_slug} = {json.dumps(override)} (rule "
            f"{_rule_short(delivery.rule, stack)}): {_summary(delivery)}"
        )
        changed = {"groups": _drained(printer, flows, "settings change event")}
        printer.detail(_groups_line(changed))
        printer.outcome("settings override", f"{_groups_line(changed, brief=True)}: {json.dumps(override)}")
    batch_slug = flows.group_record("Batch Jobs")["slug"]
    bad = {"duration": 25, "maxConcurrency": "0"}
    for delivery in flows.put_group_settings(f"{prefix}{batch_slug}", bad):
        printer.step(f"invalid override {prefix}{batch_slug} = {json.dumps(bad)}: {_summary(delivery)}")
        refused = {"groups": _drained(printer, flows, "settings change event")}
        printer.detail(_groups_line(refused))
        printer.outcome("invalid override", f"{_groups_line(refused, brief=True)}; its window is kept")
    plan = flows.runtime.invoke("ReconcilerFunction", {"group": "web", "dryRun": True})
    printer.step(
        'on-demand invoke {"group": "web", "dryRun": true} (as `aws lambda invoke`): '
        + _groups_line(plan.result)
    )
    printer.outcome("on-demand dry run", f"{_groups_line(plan.result, brief=True)}, nothing changed")


def _window_runs(printer: Printer, flows: Flows, result: DemoResult) -> None:
    names = {name: instance_id for instance_id, name in result.fleet.items()}
    outcomes = {names[name]: status for name, status in RUN_OUTCOMES.items()}
    tallies = []
    for group, ids in result.groups.items():
        run = flows.run_window(group, {i: s for i, s in outcomes.items() if i in ids})
        result.runs.append(run)
        ends = [outcomes.get(i, "Success") for i in ids]
        tally = ", ".join(f"{ends.count(s)} {s}" for s in sorted(set(ends)))
        tallies.append(f"{group} {tally}")
        printer.step(
            f"window {run.window_id} ({group}) runs: SendCommand AWS-RunPatchBaseline as "
            f"MaintenanceWindowRole -> command {run.command_id[:8]} on {len(ids)} instances ({tally})"
        )
        printer.detail(
            f"output to s3://<OutputBucket>/{run.output_prefix}/{run.command_id[:8]}.../ as the instance "
            f"profile; {len(run.notifications)} Run Command notifications -> NotificationTopic "
            "as NotificationRole"
        )
    _forge_run_result(printer, flows, result)
    batches = flows.poll("StatusCollectorFunction")
    records = sum(len(b.message_ids) for b in batches)
    failed = sum(len(b.failed_ids) for b in batches)
    printer.step(
        f"NotificationTopic -> StatusQueue: {records} messages; Lambda's poller (event source mapping, role "
        f"credentials) gave StatusCollectorFunction {len(batches)} batch(es); "
        f"{failed} records reported failed, {sum(b.deleted for b in batches)} deleted"
    )
    for batch in batches:
        if not batch.invocation.ok:
            printer.detail(f"batch failed: {batch.invocation.describe_error()}")
    printer.outcome(
        "window runs",
        f"{'; '.join(tallies)}; {records} notifications collected, {failed} failed",
    )


def _forge_run_result(printer: Printer, flows: Flows, result: DemoResult) -> None:
    """A principal of the account with sns:Publish tries to report a failed run as a Success.

    NotificationTopicPolicy denies sns:Publish to everyone but NotificationRole; the emulator
    evaluates it as SNS does (:mod:`emulator.topic_policy`).
    """
    names = {name: instance_id for instance_id, name in result.fleet.items()}
    instance_id = names[FORGED_INSTANCE]
    run = next(run for run in result.runs if instance_id in run.instance_ids)
    real = next(n for n in run.notifications if n.get("instanceId", instance_id) == instance_id)
    forged = {**real, "instanceId": instance_id, "status": "Success", "eventTime": "2099-01-01T00:00:00.000Z"}
    iam = flows.emulator.client("iam")
    iam.create_user(UserName=FORGER_USER)
    iam.put_user_policy(
        UserName=FORGER_USER,
        PolicyName="PublishAnywhere",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=FORGER_USER)["AccessKey"]
    forger = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    message = ""
    try:
        flows.emulator.client("sns", forger).publish(
            TopicArn=result.deployment.physical_id("NotificationTopic"), Message=json.dumps(forged)
        )
        result.forged_publish = "PUBLISHED: nothing stopped it, the real Failed can be hidden"
    except ClientError as error:
        detail = error.response.get("Error", {})
        result.forged_publish = f"denied by NotificationTopic's topic policy ({detail.get('Code')})"
        message = str(detail.get("Message", ""))
    printer.step(
        f"forged notification: IAM user {FORGER_USER} (its own policy allows sns:Publish on *) publishes "
        f"status Success for {FORGED_INSTANCE} ({instance_id}) of command {run.command_id[:8]} to "
        f"NotificationTopic: {result.forged_publish}"
    )
    if result.forged_publish.startswith("denied"):
        printer.detail(message)


def _compliance(printer: Printer, flows: Flows, result: DemoResult) -> None:
    names = {name: instance_id for instance_id, name in result.fleet.items()}
    states = []
    for group, ids in result.groups.items():
        for instance_id in ids:
            counts = PATCH_STATES.get(result.fleet[instance_id], {})
            states.append(make_instance_patch_state(instance_id, group, **counts))
    flows.seed_patch_states(states)
    printer.step(
        f"AWS-RunPatchBaseline reported {len(states)} instance patch states to Patch Manager "
        f"({', '.join(n for n in PATCH_STATES if n in names)} not compliant)"
    )
    for delivery in flows.fire_schedule("ComplianceReporterFunction"):
        outcome = delivery.outcome
        text = delivery.refused
        if outcome is not None:
            last = outcome.last
            text = _planned_line(last.result) if last.ok else f"FAILED: {last.describe_error()}"
        printer.step(
            f"compliance snapshot (rule {_rule_short(delivery.rule, result.deployment.stack_name)}): {text}"
        )
    _report_queue(printer, flows, result)


def _planned_line(result: Any) -> str:
    planned = result.get("planned") if isinstance(result, dict) else None
    if not isinstance(planned, dict):  # a stack without ReportQueue snapshots in the invocation
        return ", ".join(f"{g['group']} {g['status']}" for g in result.get("groups", []))
    return (
        f"planned {planned['groups']} groups in {planned['batches']} batch(es) -> ReportQueue "
        f"(deadline {planned['deadline']}, a delayed message on the same queue)"
    )


def _report_queue(printer: Printer, flows: Flows, result: DemoResult) -> None:
    """Lambda's poller hands ReportQueue's batches to the reporter; the last one sends the digest."""
    if not result.deployment.has("ReportQueue"):
        return
    batches = flows.poll("ComplianceReporterFunction")
    recorded = [f"{g['group']} {g['status']}" for batch in batches for g in _logged_groups(batch.invocation)]
    failed = sum(len(batch.failed_ids) for batch in batches)
    printer.step(
        f"ReportQueue -> Lambda's poller (BatchSize 1, role credentials) gave ComplianceReporterFunction "
        f"{len(batches)} message(s), {failed} failed: {', '.join(recorded) or 'no group'}; the worker "
        "that completed the run sent its one digest"
    )
    result.report = f"through ReportQueue: {len(batches)} batch message(s), {failed} failed, one digest"


def _logged_groups(invocation: Invocation) -> list[dict[str, Any]]:
    """The "group compliance" lines a worker logged (one per group of its batch)."""
    found = []
    for line in invocation.log_lines:
        if line.startswith("{") and '"group compliance"' in line:
            found.append(json.loads(line))
    return found


def _usage(emulator: Emulator, deployment: Deployment, runtime: LambdaRuntime) -> list[RoleUsage]:
    usages = [
        role_usage(emulator, logical_id, runtime.role_name(logical_id)) for logical_id in deployment.functions
    ]
    for logical_id in ("MaintenanceWindowRole", "NotificationRole"):
        if deployment.has(logical_id):
            usages.append(role_usage(emulator, logical_id, deployment.physical_id(logical_id)))
    return usages


# --------------------------------------------------------------------------------------------
# Operator views
# --------------------------------------------------------------------------------------------


def _status_cell(record: dict[str, Any]) -> str:
    reasons = "; ".join(str(r) for r in record.get("reasons", []))
    return f"{record['status']} ({reasons[:60]}...)" if reasons else str(record["status"])


def _scan(emulator: Emulator, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in emulator.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        items.extend({k: _DESERIALIZER.deserialize(v) for k, v in item.items()} for item in page["Items"])
    return items


def _latest_compliance(emulator: Emulator, deployment: Deployment) -> list[dict[str, Any]]:
    if not deployment.has("ComplianceTable"):
        return []
    items = _scan(emulator, deployment.physical_id("ComplianceTable"))
    return sorted((i for i in items if i.get("sk") == "LATEST"), key=lambda i: str(i["group"]))


def _unused_line(usages: Sequence[RoleUsage]) -> str:
    unused = [grant for usage in usages for grant in usage.unused]
    own = sum(1 for grant in unused if not grant.managed)
    return (
        f"{len(unused)} granted actions never used by these flows ({own} from the template's own "
        f"policies, {len(unused) - own} from AWS managed ones), {len(usages)} roles"
    )


def _what_happened(printer: Printer, emulator: Emulator, flows: Flows, result: DemoResult) -> None:
    """The summary printed first, one line per flow; then the timed steps that led to it."""
    deployment = result.deployment
    latest = _latest_compliance(emulator, deployment)
    if latest:
        instances = sum(int(i["instances"]) for i in latest)
        compliant = sum(int(i["compliant_instances"]) for i in latest)
        overall = f"{100 * compliant / instances:.2f}%" if instances else "-"
        printer.outcome(
            "compliance snapshot",
            f"{overall} ({compliant} of {instances} instances): "
            + ", ".join(f"{i['group']} {i.get('compliance_percent', '-')}%" for i in latest)
            + (f"; {result.report}" if result.report else ""),
        )
    failures = [email for email in result.emails if not email.subject.startswith("TagPatch compliance")]
    printer.outcome(
        "alerts e-mailed",
        f"{len(failures)} failure alert(s) and {len(result.emails) - len(failures)} compliance digest "
        f"to {ALERT_EMAIL}",
    )
    if result.forged_publish:
        printer.outcome(
            "forged result", f"a forged Success published to NotificationTopic: {result.forged_publish}"
        )
    denied = [access for usage in result.usage for access in usage.denied]
    dlqs = sorted(r.logical_id for r in deployment.of_type("AWS::SQS::Queue") if r.logical_id.endswith("DLQ"))
    dead_letters = sum(flows.queue_depth(queue) for queue in dlqs)
    alarms = emulator.client("cloudwatch").describe_alarms()["MetricAlarms"]
    in_alarm = [a["AlarmName"] for a in alarms if a["StateValue"] != "OK"]
    printer.outcome(
        "health",
        f"{len(result.failed_invocations)} failed invocations, {len(denied)} denied requests, "
        f"{dead_letters} dead letters, {len(alarms) - len(in_alarm)} of {len(alarms)} alarms OK",
    )
    printer.outcome("least privilege", f"{_unused_line(result.usage)}; --verbose lists them per role")

    printer.line(
        "TagPatch on a local AWS emulator: template.yaml deployed into moto's server (IAM enforced) "
        "and driven\nthrough its real flows. No AWS account or network access is used."
    )
    printer.summary()


def _views(
    printer: Printer, emulator: Emulator, flows: Flows, result: DemoResult, *, verbose: bool = False
) -> None:
    deployment = result.deployment
    ssm = emulator.client("ssm")
    names = result.fleet

    printer.section("Patch groups and their maintenance windows (GroupsTable, SSM)")
    rows = []
    records = sorted(
        (
            r
            for r in _scan(emulator, deployment.physical_id("GroupsTable"))
            if not str(r["group"]).startswith("#")
        ),
        key=lambda r: str(r["group"]),
    )
    group_names = {str(record.get("slug", record["group"])): str(record["group"]) for record in records}
    for record in records:
        for _role, ids in sorted(record.get("windows", {}).items()):
            window = ssm.get_maintenance_window(WindowId=ids["window_id"])
            task = ssm.get_maintenance_window_task(WindowId=ids["window_id"], WindowTaskId=ids["task_id"])
            parameters = task["TaskInvocationParameters"]["RunCommand"].get("Parameters", {})
            rows.append(
                [
                    record["group"],
                    _status_cell(record),
                    int(record.get("instance_count", -1)),
                    window["Name"],
                    f"{window['Schedule']} {window.get('ScheduleTimezone', '')}",
                    f"{window['Duration']}h/{window['Cutoff']}h",
                    f"{task['MaxConcurrency']}/{task['MaxErrors']}",
                    "/".join(",".join(parameters.get(name, [])) for name in ("Operation", "RebootOption")),
                ]
            )
    printer.table(
        ["group", "status", "inst", "window", "schedule", "dur/cutoff", "conc/err", "operation/reboot"], rows
    )

    if deployment.has("CommandStatusTable"):
        printer.section("Patch run results (CommandStatusTable, written by the status collector)")
        items = _scan(emulator, deployment.physical_id("CommandStatusTable"))
        rows = [
            [
                group_names.get(str(item.get("group")), item.get("group", "?")),  # the item keeps the slug
                str(item["pk"]).removeprefix("CMD#")[:8],  # an instance item keeps its command in pk
                item["instance_id"],
                names.get(str(item["instance_id"]), ""),
                item["status"],
                item.get("event_time", ""),
            ]
            for item in items
            if str(item.get("sk", "")).startswith("INST#")
        ]
        printer.table(["group", "command", "instance", "name", "status", "last event"], sorted(rows))

    printer.section(f"Alerts that would have been e-mailed (AlertTopic -> {ALERT_EMAIL})")
    for email in result.emails:
        printer.line(f"Subject: {email.subject}")
        for text in email.message.splitlines():
            printer.line(f"  | {text}")
        printer.line()

    if deployment.has("ComplianceTable"):
        printer.section(
            "Compliance report (ComplianceTable LATEST per group; the digest is the last e-mail above)"
        )
        printer.table(
            ["group", "snapshot", "instances", "compliant", "percent"],
            [
                [
                    i["group"],
                    i["snapshot_id"],
                    i["instances"],
                    i["compliant_instances"],
                    f"{i.get('compliance_percent', '-')}%",
                ]
                for i in _latest_compliance(emulator, deployment)
            ],
        )

    printer.section("Dead-letter queues and alarms")
    dlqs = [r.logical_id for r in deployment.of_type("AWS::SQS::Queue") if r.logical_id.endswith("DLQ")]
    printer.line("  " + ", ".join(f"{q}: {flows.queue_depth(q)} messages" for q in sorted(dlqs)))
    alarms = emulator.client("cloudwatch").describe_alarms()["MetricAlarms"]
    printer.line("  " + ", ".join(f"{a['AlarmName'].split('-')[1]}: {a['StateValue']}" for a in alarms))
    if result.failed_invocations:
        printer.line(f"  failed invocations: {len(result.failed_invocations)}")
        for invocation in result.failed_invocations:
            printer.line(f"    {invocation.function}: {invocation.describe_error()}")

    printer.section(MADE_BY_API)
    for kind in (SKIPPED, DROPPED, NORMALISED, NOT_REPRODUCED):
        for change in deployment.changes(kind):
            printer.line(f"  [{kind}] {change.line()}")

    printer.section(f"{LEAST_PRIVILEGE} (IAM enforced at the action level)")
    denied = [access for usage in result.usage for access in usage.denied]
    printer.line(f"  denied requests: {len(denied)}")
    for access in denied:
        printer.line(f"    {access.principal} {access.action} {access.resource}")
    if not verbose:
        printer.line(f"  {_unused_line(result.usage)}")
        printer.line("  make demo DEMO_ARGS=--verbose (or python -m emulator.demo --verbose) lists each")
        return
    for usage in result.usage:
        used_managed: dict[str, list[int]] = {}
        printer.line(
            f"  {usage.label} ({usage.role_name}): used {', '.join(sorted(usage.used)) or 'nothing'}"
        )
        for grant in usage.grants:
            if grant.managed:
                counts = used_managed.setdefault(grant.policy, [0, 0])
                counts[0] += 1
                counts[1] += int(usage.is_used(grant))
                if usage.is_used(grant):
                    continue
            if usage.is_used(grant):
                continue
            reason = usage.reason(grant)
            if grant.managed and not reason:
                continue
            label = f"{grant.policy}{'/' + grant.sid if grant.sid else ''}"
            printer.line(f"      unused: {grant.action:<42} {label}{' - ' + reason if reason else ''}")
        for policy, (total, used) in sorted(used_managed.items()):
            printer.line(f"      AWS managed {policy}: {used} of {total} actions used")
    printer.line(
        "  moto checks IAM per action: for most services it cannot tell the resource (for SQS, IAM, STS"
        "\n  and S3 it can), so ARN scoping and conditions of these roles are reviewed in template.yaml, not"
        "\n  here. iam:PassRole and the KMS permissions of encrypted topics are checked with the real ARNs"
        "\n  and condition values."
    )


def main(argv: Sequence[str] | None = None, run_demo: Callable[..., DemoResult] = run) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator.demo", description="TagPatch end to end on a local AWS emulator."
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also list, per role, the granted permissions never used"
    )
    args = parser.parse_args(argv)
    progress = sys.stderr if sys.stderr.isatty() else None
    result = run_demo(sys.stdout, verbose=args.verbose, progress=progress)
    problems = [usage for usage in result.usage if usage.denied] or result.failed_invocations
    forged = result.forged_publish.startswith("PUBLISHED")
    return 1 if problems or forged else 0


if __name__ == "__main__":
    sys.exit(main())
