"""The report queue (SQS): the planner's batches and deadline, a worker's delayed retries.

``SendMessageBatch`` of 10 (the API's most); entries SQS reports as failed are sent again (with
the client's own retries of throttling and 5xx underneath), up to :data:`MAX_ATTEMPTS` times,
then :class:`SendFailed` names how many are left, so the invocation fails and its event or
message is retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tagpatch.adapters.clients import client

BATCH_LIMIT = 10
MAX_ATTEMPTS = 3


class SendFailed(RuntimeError):
    """Messages SQS refused after every attempt."""


class ReportQueue:
    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self._queue = queue_url
        self._client = sqs_client

    @property
    def _sqs(self) -> Any:
        """The SQS client, made on first use: most workers never send (cold start without it)."""
        if self._client is None:
            self._client = client("sqs")
        return self._client

    def send(self, messages: Sequence[tuple[str, int]]) -> None:
        """Send each (body, delay seconds 0-900)."""
        for start in range(0, len(messages), BATCH_LIMIT):
            self._send_batch(messages[start : start + BATCH_LIMIT])

    def _send_batch(self, messages: Sequence[tuple[str, int]]) -> None:
        entries = {
            str(index): {"Id": str(index), "MessageBody": body, "DelaySeconds": delay}
            for index, (body, delay) in enumerate(messages)
        }
        errors: list[str] = []
        for _attempt in range(MAX_ATTEMPTS):
            response = self._sqs.send_message_batch(QueueUrl=self._queue, Entries=list(entries.values()))
            failed = response.get("Failed", [])
            errors = [f"{entry.get('Code', '?')}: {entry.get('Message', '')}" for entry in failed]
            entries = {entry["Id"]: entries[entry["Id"]] for entry in failed if entry["Id"] in entries}
            if not entries:
                return
        reasons = "; ".join(errors)
        raise SendFailed(f"{len(entries)} messages not sent after {MAX_ATTEMPTS} attempts: {reasons}")
