"""The SQS side of delivery: subscribed queues and dead-letter queues, built by the queue service's rules.

SQS subscribers are not pushed to over a network: the fan-out worker builds each queue's message with
`QueueService.build_message` (the exact digests, meta and FIFO deduplication key SendMessage would
store) and hands all of a publication's messages to ``complete_publication``, which stores them in
the same transaction that retires the publication. A queue that does not exist, or a message the
queue refuses, is a client-side error: as on AWS it is not retried; it goes to the subscription's
dead-letter queue if it has one.

A message moved to a dead-letter queue keeps the body that failed and gains three String message
attributes when there is room for them (SQS allows ten): ``ErrorCode`` and ``ErrorMessage`` (why the
last attempt failed) and ``RequestID`` (the SNS message id).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from loosely.core.errors import LooselyError, QueueDoesNotExist
from loosely.core.queues.models import MessageAttributeValue, NewMessage, QueueKey, QueueRecord, SendRequest
from loosely.core.queues.service import QueueService
from loosely.delivery.rendering import SNS_SENDER_ID

__all__ = ["QueueDirectory", "dead_letter_request"]

_MAX_ATTRIBUTES = 10
_MAX_CACHED = 10_000


class QueueDirectory:
    """Queue records by ARN, cached for ``ttl_s`` so fan-out to many queues costs no lookup per message."""

    def __init__(self, queues: QueueService, ttl_s: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        self.queues = queues
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, QueueRecord | None]] = {}

    async def get(self, arn: str) -> QueueRecord | None:
        """The queue an ARN names, or None when it is not an SQS ARN or the queue does not exist."""
        now = self._monotonic()
        cached = self._cache.get(arn)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        key = QueueKey.from_arn(arn)
        record: QueueRecord | None = None
        if key is not None:
            try:
                record = await self.queues.get_queue(key)
            except QueueDoesNotExist:
                record = None
        if len(self._cache) > _MAX_CACHED:
            self._cache.clear()
        self._cache[arn] = (now, record)
        return record

    def build(self, queue: QueueRecord, request: SendRequest) -> tuple[int, NewMessage]:
        """The message SendMessage would store, as SNS's sender.

        Raises:
            LooselyError: the queue refuses the message (size, characters, FIFO fields).
        """
        return queue.id, self.queues.build_message(queue, request, SNS_SENDER_ID)

    async def dead_letter(
        self, arn: str | None, request: SendRequest, error_code: str, error: str, message_id: str
    ) -> tuple[int, NewMessage] | None:
        """The message for the dead-letter queue ``arn``, or None when there is none or it refuses it."""
        if arn is None:
            return None
        queue = await self.get(arn)
        if queue is None:
            return None
        try:
            return self.build(queue, dead_letter_request(request, queue.key.fifo, error_code, error, message_id))
        except LooselyError:
            return None


def dead_letter_request(
    request: SendRequest, fifo_queue: bool, error_code: str, error: str, message_id: str
) -> SendRequest:
    """What goes to a dead-letter queue: the failed body and attributes, plus the error when there is room."""
    attributes: dict[str, MessageAttributeValue] = dict(request.message_attributes)
    extra: Mapping[str, str] = {"ErrorCode": error_code, "ErrorMessage": error[:1024], "RequestID": message_id}
    for name, value in extra.items():
        if len(attributes) < _MAX_ATTRIBUTES and name not in attributes:
            attributes[name] = MessageAttributeValue("String", string_value=value)
    group_id = request.group_id or ("sns-dead-letters" if fifo_queue else None)
    dedup_id = request.deduplication_id or (message_id if fifo_queue else None)
    return SendRequest(
        body=request.body,
        message_attributes=attributes,
        group_id=group_id if fifo_queue else None,
        deduplication_id=dedup_id if fifo_queue else None,
    )
