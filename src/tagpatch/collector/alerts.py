"""Alert composition and storm control: what one e-mail about a command says, and when it may go.

* at most one message per command per batch;
* a failure is alerted once: the command item holds the failed instance ids per status and the
  ids already alerted; only the difference is ever listed;
* per command, at most ``max_alerts_per_command`` messages, at least ``alert_cooldown_seconds``
  apart (:func:`alert_gate`); failures arriving during the cooldown are summarised later;
* a Command-level terminal failure sends one final summary, outside the cooldown and the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from tagpatch.models.display import one_line, quoted
from tagpatch.models.records import CommandContext, FailedInstance
from tagpatch.models.run_status import RunStatus

SUBJECT_MAX = 99  # SNS: "less than 100 characters", no line breaks or control characters
MAX_LISTED = 25  # instances listed in one message; the rest are counted
MAX_FLUSH_DELAY = 900  # SQS DelaySeconds maximum


@dataclass(frozen=True)
class Alert:
    command_id: str
    subject: str
    message: str
    instance_ids: tuple[str, ...]  # the failures this message covers


@dataclass(frozen=True)
class AlertRequest:
    context: CommandContext
    region: str
    stack_name: str
    table_name: str
    document_name: str
    requested_at: str
    failures: tuple[FailedInstance, ...]
    failed_total: int
    succeeded: int = 0
    command_status: RunStatus | None = None  # a Command-level terminal failure
    command_instance_ids: tuple[str, ...] = ()
    alert_number: int = 0  # n of max_alerts; 0 for the Command-level summary
    max_alerts: int = 0
    cooldown_seconds: int = 0
    group_name: str | None = None  # the tag value, when it differs from the slug in ``context``
    possible_repeat: bool = False  # an earlier claimant stopped between publishing and recording


def run_command_console_url(region: str, command_id: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/systems-manager/run-command/"
        f"{quote(command_id, safe='')}?region={region}"
    )


def s3_console_url(region: str, bucket: str, key_prefix: str) -> str:
    return (
        f"https://s3.console.aws.amazon.com/s3/buckets/{quote(bucket, safe='')}"
        f"?region={region}&prefix={quote(key_prefix, safe='/')}&showversions=false"
    )


def _ascii(text: str) -> str:
    """``text`` as one line of printable ASCII (anything else becomes ``?``, runs of blanks one)."""
    return " ".join("".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text).split())


def alert_subject(stack_name: str, group: str | None, summary: str, command_id: str) -> str:
    """``TagPatch <stack>: <summary> in group <group> (command <8 chars>)``: ASCII, under 100
    characters; the group is shortened first, the stack name is cut at 24 characters."""
    stack = _ascii(stack_name)[:24].strip()
    head = f"TagPatch {stack}: {_ascii(summary)}" if stack else f"TagPatch: {_ascii(summary)}"
    tail = f" (command {_ascii(command_id[:8])})"
    # The group is a tag value: quoted and escaped when not plain (tagpatch.models.display)
    where = f" in group {quoted(group, ascii_only=True)}" if group is not None else ""
    room = SUBJECT_MAX - len(head) - len(tail)
    if len(where) > room:
        where = where[: room - 3].rstrip() + "..." if room > len(" in group ...") else ""
    return (head + where + tail)[:SUBJECT_MAX]


def _readable(moment: str) -> str:
    """A :func:`stamp` as ``2025-06-15 03:00:00 UTC``."""
    return f"{moment[:10]} {moment[11:19]} UTC" if len(moment) >= 19 else moment


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def compose_alert(request: AlertRequest) -> Alert:
    """The e-mail for one command: what failed, where, and where to look."""
    ctx = request.context
    group = request.group_name or ctx.group
    listed = request.failures[:MAX_LISTED]
    if request.command_status is not None:
        summary = f"patch run {request.command_status.value}"
    else:
        statuses = {failure.status.value for failure in request.failures}
        verb = statuses.pop() if len(statuses) == 1 else "failed"
        summary = f"{_plural(len(request.failures), 'instance')} {verb}"
    subject = alert_subject(request.stack_name, group, summary, ctx.command_id)

    # Every value that did not come from this stack's own configuration (group name and slug,
    # document, instance ids, output location) is escaped (tagpatch.models.display): a tag value
    # with a line break must not read as a line of this message.
    shown_group = "unknown (the command has no TagPatch output prefix)" if group is None else quoted(group)
    lines = [
        "TagPatch patch run " + ("result" if request.command_status else "failures"),
        "",
        f"Stack:         {one_line(request.stack_name)} ({request.region})",
        f"Patch group:   {shown_group}"
        + (f" (slug {quoted(ctx.group)})" if group and ctx.group and group != ctx.group else ""),
        f"Command:       {one_line(ctx.command_id)} "
        f"({quoted(request.document_name) if request.document_name else 'unknown document'})",
    ]
    if request.requested_at:
        lines.append(f"Requested:     {_readable(request.requested_at)}")
    if request.command_status is not None:
        lines.append(f"Command status: {request.command_status.value}")
    lines.append(
        f"Failed so far: {_plural(request.failed_total, 'instance')}"
        + (f", {request.succeeded} succeeded" if request.succeeded else "")
    )
    lines.append("")
    if request.failures:
        lines.append(
            f"Failed instances not reported before ({len(request.failures)}"
            + (f", first {len(listed)} listed" if len(listed) < len(request.failures) else "")
            + "):"
        )
        for failure in listed:
            lines.append(f"  {one_line(failure.instance_id)}  {failure.status.value}")
            if ctx.output_bucket:
                key = ctx.output_key_prefix(failure.instance_id)
                lines.append(
                    f"    output: {one_line(s3_console_url(request.region, ctx.output_bucket, key))}"
                )
        if len(listed) < len(request.failures):
            lines.append(f"  ... and {len(request.failures) - len(listed)} more (see below)")
        lines.append("")
    elif request.command_instance_ids:
        shown = request.command_instance_ids[:MAX_LISTED]
        lines.append(
            f"Targeted instances ({len(request.command_instance_ids)}): "
            + ", ".join(one_line(instance) for instance in shown)
        )
        if len(shown) < len(request.command_instance_ids):
            lines.append(f"  ... and {len(request.command_instance_ids) - len(shown)} more")
        lines.append("")
    if request.possible_repeat:
        lines += [
            "This alert may repeat one sent a few minutes ago: the collector stopped before it",
            "could record that one as sent.",
            "",
        ]
    lines += [
        "Where to look:",
        f"  Run Command console: {run_command_console_url(request.region, ctx.command_id)}",
    ]
    if ctx.output_bucket:
        command_output = s3_console_url(request.region, ctx.output_bucket, ctx.output_key_prefix())
        lines += [
            f"  Command output:      {one_line(ctx.output_uri())}",
            f"                       {one_line(command_output)}",
        ]
    lines += [
        f"  Every instance's record: DynamoDB table {request.table_name}, key pk = CMD#{ctx.command_id}",
        "",
    ]
    if request.command_status is None and request.max_alerts:
        lines.append(
            f"This is alert {request.alert_number} of at most {request.max_alerts} for this command; "
            f"alerts are at least {request.cooldown_seconds // 60} minutes apart."
        )
        if request.alert_number >= request.max_alerts:
            lines.append(
                "No further alerts will be sent for this command: "
                "later failures are only recorded in the table."
            )
        else:
            lines.append("Failures that arrive meanwhile are summarised in the next alert.")
    return Alert(
        command_id=ctx.command_id,
        subject=subject,
        message="\n".join(lines) + "\n",
        instance_ids=tuple(failure.instance_id for failure in request.failures),
    )


class Gate(StrEnum):
    SEND = "send"
    HOLD = "hold"
    CAPPED = "capped"


def alert_gate(*, alert_count: int, last_alert_at: float | None, now: float, cooldown: int, cap: int) -> Gate:
    """Whether a command may alert now, must wait for its cooldown, or has used all its alerts."""
    if alert_count >= cap:
        return Gate.CAPPED
    if last_alert_at is not None and now - last_alert_at < cooldown:
        return Gate.HOLD
    return Gate.SEND
