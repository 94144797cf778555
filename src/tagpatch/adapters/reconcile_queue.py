"""ReconcileQueue: the scheduled run's and the sweep's messages, sent with SendMessageBatch.

SQS limits, enforced here so a send never fails on them: at most 10 entries per call, and at most
256 KiB per message and per call (the sum of the bodies). A message over the limit is refused
before anything is sent (the planner splits them: :func:`tagpatch.models.reconciler_events.split_message`).
Entries SQS could not take for a reason of its own (``SenderFault`` false: throttled, unavailable)
are sent again, up to :data:`ATTEMPTS` times in all; an entry refused as the sender's fault, or
still failing, raises :class:`QueueSendFailed` naming it. Messages already sent stay sent: a run
retried after that failure sends them again, which the reconciler's idempotence makes harmless.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from tagpatch.adapters.clients import client
from tagpatch.models.environment import Environment, load_environment
from tagpatch.models.reconciler_events import MAX_MESSAGE_BYTES, encode_message

BATCH_ENTRIES = 10
BATCH_BYTES = 262_144
ATTEMPTS = 3


class QueueSendFailed(RuntimeError):
    """Some messages could not be sent to the reconcile queue; the others were."""


class ReconcileQueueEnvironment(Environment):
    queue_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+/\S+\Z", max_length=1024)] = Field(
        alias="RECONCILE_QUEUE_URL"
    )


class SqsReconcileQueue:
    """Sends JSON message bodies to the reconcile queue."""

    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self._queue = queue_url
        self._sqs = sqs_client or client("sqs")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SqsReconcileQueue:
        settings = load_environment(
            ReconcileQueueEnvironment, os.environ if environ is None else environ, "reconciler"
        )
        return cls(settings.queue_url)

    def send(self, bodies: Sequence[Mapping[str, Any]]) -> int:
        """Send every body as one message; how many were sent (all of them, or it raises)."""
        texts = [encode_message(dict(body)) for body in bodies]
        for index, text in enumerate(texts):
            size = len(text.encode("utf-8"))
            if size > MAX_MESSAGE_BYTES:
                raise ValueError(f"message {index} is {size} bytes, over SQS's {MAX_MESSAGE_BYTES}")
        for batch in _batches(texts):
            self._send_batch(batch)
        return len(texts)

    def _send_batch(self, texts: list[str]) -> None:
        pending = {str(index): text for index, text in enumerate(texts)}
        failures: list[dict[str, Any]] = []
        for _attempt in range(ATTEMPTS):
            response = self._sqs.send_message_batch(
                QueueUrl=self._queue,
                Entries=[{"Id": entry_id, "MessageBody": text} for entry_id, text in pending.items()],
            )
            failures = list(response.get("Failed", []))
            refused = [failure for failure in failures if failure.get("SenderFault")]
            if refused:
                raise QueueSendFailed(f"SQS refused {len(refused)} message(s): {_reasons(refused)}")
            pending = {str(f["Id"]): pending[str(f["Id"])] for f in failures}
            if not pending:
                return
        raise QueueSendFailed(
            f"{len(pending)} message(s) not sent after {ATTEMPTS} attempts: {_reasons(failures)}"
        )


def _batches(texts: list[str]) -> list[list[str]]:
    """``texts`` in order, in batches of at most BATCH_ENTRIES entries and BATCH_BYTES bytes."""
    batches: list[list[str]] = []
    size = 0
    for text in texts:
        length = len(text.encode("utf-8"))
        if not batches or len(batches[-1]) == BATCH_ENTRIES or size + length > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(text)
        size += length
    return batches


def _reasons(failures: list[dict[str, Any]]) -> str:
    return "; ".join(f"{f.get('Code', '?')}: {f.get('Message', '')}" for f in failures[:5])
