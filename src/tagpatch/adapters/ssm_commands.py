"""What SSM knows of a command, one ListCommands call each: where it writes its output (and so
its patch group), and its status and invocation counts.

Invocation notifications carry no output location. The collector asks once per command and keeps
the answer (per container, and on the command item), never once per notification. It asks for the
status when the recorded invocations of a command have all ended (to publish its Run Result), at
most once per command per batch.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tagpatch.adapters.clients import client, error_code
from tagpatch.models.records import CommandContext, CommandProgress, group_from_prefix
from tagpatch.models.run_status import UnknownStatus, normalise_status

# ListCommands lists commands for 30 days; an older (or foreign) id is simply unknown.
_UNKNOWN = {"InvalidCommandId"}


class SsmCommandLookup:
    def __init__(self, ssm_client: Any | None = None) -> None:
        self._ssm = ssm_client or client("ssm")

    def _command(self, command_id: str) -> dict[str, Any] | None:
        try:
            commands = self._ssm.list_commands(CommandId=command_id).get("Commands", [])
        except ClientError as error:
            if error_code(error) in _UNKNOWN:
                return None
            raise
        return dict(commands[0]) if commands else None

    def progress(self, command_id: str) -> CommandProgress | None:
        """The command's ``Status`` and counts (``TargetCount``, ``CompletedCount``, ``ErrorCount``,
        ``DeliveryTimedOutCount``); None when SSM does not know it or names an unknown status."""
        command = self._command(command_id)
        if command is None:
            return None
        try:
            status = normalise_status(str(command.get("Status", "")))
        except UnknownStatus:
            return None
        return CommandProgress(
            status=status,
            target_count=int(command.get("TargetCount", 0)),
            completed_count=int(command.get("CompletedCount", 0)),
            error_count=int(command.get("ErrorCount", 0)),
            delivery_timed_out_count=int(command.get("DeliveryTimedOutCount", 0)),
        )

    def describe(self, command_id: str) -> CommandContext | None:
        command = self._command(command_id)
        if command is None:
            return None
        prefix = str(command.get("OutputS3KeyPrefix", ""))
        return CommandContext(
            command_id=command_id,
            group=group_from_prefix(prefix),
            output_bucket=str(command.get("OutputS3BucketName", "")),
            output_prefix=prefix,
        )
