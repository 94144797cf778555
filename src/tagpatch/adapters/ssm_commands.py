"""Where a command writes its output (and so its patch group): one ListCommands call.

Invocation notifications carry no output location. The collector asks once per command and keeps
the answer (per container, and on the command item), never once per notification.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tagpatch.adapters.clients import client, error_code
from tagpatch.models.records import CommandContext, group_from_prefix

# ListCommands lists commands for 30 days; an older (or foreign) id is simply unknown.
_UNKNOWN = {"InvalidCommandId"}


class SsmCommandLookup:
    def __init__(self, ssm_client: Any | None = None) -> None:
        self._ssm = ssm_client or client("ssm")

    def describe(self, command_id: str) -> CommandContext | None:
        try:
            commands = self._ssm.list_commands(CommandId=command_id).get("Commands", [])
        except ClientError as error:
            if error_code(error) in _UNKNOWN:
                return None
            raise
        if not commands:
            return None
        command = commands[0]
        prefix = str(command.get("OutputS3KeyPrefix", ""))
        return CommandContext(
            command_id=command_id,
            group=group_from_prefix(prefix),
            output_bucket=str(command.get("OutputS3BucketName", "")),
            output_prefix=prefix,
        )
