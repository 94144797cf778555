"""``python -m emulator.demo_org``: TagPatch across an AWS Organization on a local emulator.

One moto server in this process holds every account (moto keeps them apart by the credentials'
account) with IAM enforced. :func:`emulator.orgstack.deploy_organization` makes the organization,
packages the member template with ``hub/package.py``, deploys ``hub/template.yaml`` in the
delegated administrator account and lets the StackSets driver deploy the hub's MemberStackSet into
every account of the Workloads OU x us-east-1 and eu-west-1; :func:`emulator.orgstack.play`
drives tag changes, a window run and a compliance snapshot in every member through its deployed
wiring, an outsider's stack and PutEvents that the hub's bus policy refuses, a spare account
joining the OU. Then the hub's queue is drained by the hub function, the digest runs on its
schedule, and the ``tagpatch`` CLI prints the organization report against the hub stack.

What the emulator does differently from AWS (StackSets, EventBridge between accounts, the clock
of the silent member) is printed at the end. No AWS account or network access is needed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, TextIO

from emulator import strict_validation
from emulator.demo import Printer
from emulator.deploy import DROPPED, NORMALISED, NOT_REPRODUCED, SKIPPED, Deployment
from emulator.flows import Email
from emulator.orgflows import NOTES as DELIVERY_NOTES
from emulator.orgstack import (
    HUB_STACK,
    SILENT_HOURS,
    SPARE,
    WORKLOADS,
    OrgStack,
    Scenario,
    deploy_organization,
    describe_deployment,
    play,
    run_cli,
)
from emulator.permissions import RoleUsage, role_usage
from emulator.server import Emulator

CLI_COMMANDS: Final = (
    ["accounts"],
    ["report", "--org"],
    ["report", "--org", "--by", "group"],
    ["runs", "--org", "--since", "2d"],
)
ORG_NOTES: Final = (
    "Organizations: moto makes OrganizationAccountAccessRole in each new account without a policy; the "
    "emulator attaches AdministratorAccess as Organizations does, and answers a delegated administrator's "
    "read-only Organizations calls (the hub's OU lookup) from the management account, as AWS allows",
)
SILENT_NOTE: Final = (
    f"the silent member's activity is played {SILENT_HOURS} hours in the past: the emulator sets "
    "EventBridge's clock back while it runs (moto stamps put events with its own clock)"
)


@dataclass
class OrgDemoResult:
    org: OrgStack
    scenario: Scenario
    emails: list[Email] = field(default_factory=list)
    usage: list[RoleUsage] = field(default_factory=list)
    cli: list[tuple[list[str], int, str, str]] = field(default_factory=list)
    digest: str = ""
    left: str = ""
    seconds: float = 0.0

    @property
    def failed_invocations(self) -> list[str]:
        failures = [f for activity in self.scenario.activities for f in activity.failed_invocations]
        hub = [f"{i.function}: {i.describe_error()}" for i in self.org.hub.runtime.invocations if not i.ok]
        return failures + hub


def _deployed(deployment: Deployment) -> str:
    return describe_deployment(deployment)


def run(out: TextIO = sys.stdout, *, verbose: bool = False, progress: TextIO | None = None) -> OrgDemoResult:
    printer = Printer(out, progress)
    strict_validation.install()
    try:
        with Emulator() as emulator:
            result = _drive(printer, emulator)
            printer.end_progress()
            _what_happened(printer, result)
            _views(printer, result, verbose=verbose)
            result.seconds = time.perf_counter() - printer.started
            printer.line(
                f"\nDone in {result.seconds:.1f} s. Nothing was sent anywhere: the emulator stops with "
                "this process."
            )
    except BaseException:
        printer.end_progress()
        if not printer.log_shown:
            out.write(printer.log.getvalue())
        raise
    return result


def _drive(printer: Printer, emulator: Emulator) -> OrgDemoResult:
    printer.step(f"moto server on {emulator.endpoint_url} (in this process); IAM enforced for every request")
    org = deploy_organization(emulator, progress=printer)
    org.hub.flows.subscribe_inbox("HubTopic")
    scenario = play(org, progress=printer)
    result = OrgDemoResult(org, scenario)
    deliveries = org.hub.flows.fire_schedule("HubDigestFunction", rule="HubDigestSchedule")
    for delivery in deliveries:
        outcome = delivery.outcome
        if outcome is None:
            result.digest = f"refused: {delivery.refused}"
        elif outcome.ok:
            result.digest = json.dumps(outcome.last.result, default=str)[:300]
        else:
            result.digest = f"FAILED: {outcome.last.describe_error()}"
    printer.step(f"HubDigestSchedule fired HubDigestFunction: {result.digest}")
    result.emails = org.hub.flows.read_inbox()
    for argv in CLI_COMMANDS:
        code, stdout, stderr = run_cli(org.hub.view, argv)
        result.cli.append((list(argv), code, stdout, stderr))
    org.org.move_account(SPARE, "root")
    left = org.sync()
    result.left = f"{len(left.deleted)} stack instances deleted, {len(left.retained)} retained"
    printer.step(f"organizations:MoveAccount {SPARE} -> root: {result.left}")
    result.usage = _usage(org)
    return result


def _usage(org: OrgStack) -> list[RoleUsage]:
    usages = [
        role_usage(org.hub.view, f"hub {logical_id}", org.hub.runtime.role_name(logical_id))
        for logical_id in sorted(org.hub.deployment.functions)
    ]
    for (account, region), stack in sorted(org.members.items()):
        name = org.org.name_of(account)
        for logical_id in sorted(stack.deployment.functions):
            usages.append(
                role_usage(stack.view, f"{name} {region} {logical_id}", stack.runtime.role_name(logical_id))
            )
        if stack.deployment.has("HubForwardRole"):
            role = stack.deployment.physical_id("HubForwardRole")
            usages.append(role_usage(stack.view, f"{name} {region} HubForwardRole", role))
    return usages


def _what_happened(printer: Printer, result: OrgDemoResult) -> None:
    org, scenario = result.org, result.scenario
    o = org.org
    members = sorted({o.name_of(account) for account, _ in org.members})
    printer.outcome(
        "organization",
        f"{o.id}: hub {o.accounts['hub']} (delegated administrator), {WORKLOADS}: "
        + ", ".join(n for n in members if n != SPARE)
        + f"; outsider {o.outsider}",
    )
    printer.outcome(
        "hub", f"stack {HUB_STACK} in {org.hub.account} {org.hub.region}: {_deployed(org.hub.deployment)}"
    )
    created = len(org.stacksets.instances)
    printer.outcome(
        "member stacks",
        f"{created} by the StackSets driver from the packaged template (HubEventBusArn = the hub bus)"
        + (
            ""
            if scenario.joined is None
            else f"; {SPARE} joined {WORKLOADS}: +{len(scenario.joined.created)}"
        )
        + (f"; left again: {result.left}" if result.left else ""),
    )
    kinds = Counter(d.event["detail-type"] for d in scenario.forwarded if not d.refused)
    printer.outcome(
        "member events",
        f"{sum(kinds.values())} forwarded to the hub bus ("
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + ")",
    )
    refused = [d for d in scenario.forwarded if d.refused]
    printer.outcome(
        "outsider",
        f"{len(refused)} forwarded events refused by the hub bus policy (aws:PrincipalOrgID) -> its "
        "HubForwardDLQ; "
        f"its own PutEvents: {scenario.outsider_direct.split(':', 1)[0] or 'taken (!)'}",
    )
    batches = scenario.hub_batches
    state = _state_counts(org)
    printer.outcome(
        "hub store",
        f"{len(batches)} batches from HubQueue, {sum(len(b.failed_ids) for b in batches)} failed; hub state: "
        f"{state['members']} members, {state['groups']} groups; HubQueue "
        f"{org.hub.flows.queue_depth('HubQueue')}, "
        f"HubDLQ {org.hub.flows.queue_depth('HubDLQ')}",
    )
    silent_account, silent_region = scenario.silent
    printer.outcome(
        "silent member", f"{o.name_of(silent_account)} {silent_region}: last event {SILENT_HOURS} h ago"
    )
    printer.outcome("digest", f"{result.digest[:160]}; {len(result.emails)} e-mail(s) on HubTopic")
    denied = [access for usage in result.usage for access in usage.denied]
    unused = sum(len(usage.unused) for usage in result.usage)
    printer.outcome(
        "health",
        f"{len(result.failed_invocations)} failed invocations, {len(denied)} denied requests, "
        f"{unused} granted actions unused over {len(result.usage)} roles (--verbose lists them)",
    )
    printer.line(
        "TagPatch across an AWS Organization on a local emulator: the hub in a delegated administrator "
        "account,\n"
        "member stacks by its StackSet, events forwarded under the hub bus policy. No AWS account is used."
    )
    printer.summary()


def _state_counts(org: OrgStack) -> dict[str, int]:
    ddb = org.hub.client("dynamodb")
    counts = {"members": 0, "groups": 0}
    for page in ddb.get_paginator("scan").paginate(TableName=org.hub.deployment.outputs["HubStateTableName"]):
        for item in page["Items"]:
            sk = item["sk"]["S"]
            counts["members"] += sk == "#member"
            counts["groups"] += sk.startswith("group#")
    return counts


def _views(printer: Printer, result: OrgDemoResult, *, verbose: bool) -> None:
    org = result.org
    printer.section(f"The organization report: the tagpatch CLI against the hub stack ({HUB_STACK})")
    for argv, code, stdout, stderr in result.cli:
        printer.line(f"$ tagpatch --stack {HUB_STACK} {shlex.join(argv)}")
        for line in stderr.splitlines():
            if not line.startswith("["):  # the CLI's per-day progress
                printer.line(f"(stderr) {line}")
        printer.out.write(stdout)
        printer.line(f"(exit {code})\n")

    printer.section("The digest on HubTopic (what DigestEmail receives)")
    for email in result.emails:
        printer.line(f"Subject: {email.subject}")
        for text in email.message.splitlines():
            printer.line(f"  | {text}")
    if not result.emails:
        printer.line("  (none)")

    printer.section("Least privilege: hub and member roles (IAM enforced; journal of every request)")
    printer.table(
        ["role", "used", "granted, unused", "denied"],
        [
            [usage.label, len(usage.used), len(usage.unused), len(usage.denied)]
            for usage in result.usage
            if verbose or usage.label.startswith(("hub ", "member-a us-east-1"))
        ],
    )
    if not verbose:
        printer.line(
            "  (member-a us-east-1 shown; every member's roles are the same template's: --verbose lists all)"
        )
    else:
        for usage in result.usage:
            printer.line(f"  {usage.label}: used {', '.join(sorted(usage.used)) or 'nothing'}")
            for grant in usage.unused:
                reason = usage.reason(grant)
                printer.line(
                    f"      unused: {grant.action:<40} {grant.policy}{' - ' + reason if reason else ''}"
                )

    printer.section("What the emulator does differently from AWS")
    for note in [*org.stacksets.notes, *DELIVERY_NOTES, *ORG_NOTES, SILENT_NOTE]:
        printer.line(f"  - {note}")
    stacks = [
        ("hub", org.hub.deployment),
        *((f"{org.org.name_of(a)} {r}", s.deployment) for (a, r), s in sorted(org.members.items())),
    ]
    for label, deployment in stacks[:2]:
        kinds = Counter(change.kind for change in deployment.api_changes)
        printer.line(
            f"  - {label} ({deployment.stack_name}): moto's CloudFormation skipped {kinds[SKIPPED]} "
            "resources and "
            f"dropped {kinds[DROPPED]} properties, made through their APIs; {kinds[NORMALISED]} normalised, "
            f"{kinds[NOT_REPRODUCED]} not reproduced"
        )
        if verbose:
            for change in deployment.api_changes:
                printer.line(f"      [{change.kind}] {change.line()}")
    printer.line("  - every member stack: as the second line (one template); --verbose lists each change")

    printer.section("Timings")
    for name, seconds in {**org.timings, **result.scenario.timings}.items():
        printer.line(f"  {name:<22} {seconds:6.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator.demo_org",
        description="TagPatch across an AWS Organization on a local emulator.",
    )
    parser.add_argument("--verbose", action="store_true", help="every role and every API change")
    args = parser.parse_args(argv)
    progress = sys.stderr if sys.stderr.isatty() else None
    result = run(sys.stdout, verbose=args.verbose, progress=progress)
    denied = [access for usage in result.usage for access in usage.denied]
    outsider_taken = not result.scenario.outsider_direct
    return 1 if denied or result.failed_invocations or outsider_taken else 0


if __name__ == "__main__":
    sys.exit(main())
