"""The SQS side of delivery: subscribed queues and dead-letter queues, built by the queue service's rules.

SQS subscribers are not pushed to over a network: the fan-out worker builds each queue's message with
`QueueService.build_message` (the exact digests, meta and FIFO deduplication key SendMessage would
store) and hands all of a publication's messages to ``complete_publication``, which stores them in
the same transaction that retires the publication. A queue that does not exist, or a message the
queue refuses, is a client-side error: as on AWS it is not retried; it goes to the subscription's
dead-letter queue if it has one.

Queue records are cached briefly, so one may name a queue deleted since (perhaps created again under
the same name, with a new id). The store then refuses the whole fan-out (`QueuesGone`); fan-out
`forget`s those records and plans again with fresh ones, so the message reaches the queue that
exists now, or fails as above when none does. "Does not exist" is remembered only for messages
published before it was looked up (see `QueueDirectory.get`), so a queue just created is never taken
for a missing one.

A message moved to a dead-letter queue keeps the body that failed and gains three String message
attributes when there is room for them (SQS allows ten): ``ErrorCode`` and ``ErrorMessage`` (why the
last attempt failed) and ``RequestID`` (the SNS message id).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping

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

    def now(self) -> float:
        """The clock `get`'s ``missing_since`` is read on."""
        return self._monotonic()

    async def get(self, arn: str, missing_since: float | None = None) -> QueueRecord | None:
        """The queue an ARN names, or None when it is not an SQS ARN or the queue does not exist.

        A queue found is remembered for ``ttl_s``. A queue found missing is taken as missing again
        without a lookup only when that lookup was made at or after ``missing_since``: fan-out passes
        the time it claimed its publications, which were all published before, so none of them can be
        meant for a queue created after the lookup; any other caller looks again.
        """
        now = self._monotonic()
        cached = self._cache.get(arn)
        if cached is not None and now - cached[0] < self._ttl_s:
            record = cached[1]
            if record is not None or (missing_since is not None and cached[0] >= missing_since):
                return record
        key = QueueKey.from_arn(arn)
        if key is None:
            return None
        try:
            found: QueueRecord | None = await self.queues.get_queue(key)
        except QueueDoesNotExist:
            found = None
        if len(self._cache) > _MAX_CACHED:
            self._cache.clear()
        self._cache[arn] = (now, found)
        return found

    def forget(self, queue_ids: Collection[int]) -> None:
        """Drop the records of these queues (the store found them gone), so the next `get` looks again."""
        for arn in [arn for arn, (_, record) in self._cache.items() if record is not None and record.id in queue_ids]:
            del self._cache[arn]

    def build(self, queue: QueueRecord, request: SendRequest) -> tuple[int, NewMessage]:
        """The message SendMessage would store, as SNS's sender.

        Raises:
            LooselyError: the queue refuses the message (size, characters, FIFO fields).
        """
        return queue.id, self.queues.build_message(queue, request, SNS_SENDER_ID)

    async def dead_letter(
        self,
        arn: str | None,
        request: SendRequest,
        error_code: str,
        error: str,
        message_id: str,
        missing_since: float | None = None,
    ) -> tuple[int, NewMessage] | None:
        """The message for the dead-letter queue ``arn``, or None when there is none or it refuses it."""
        if arn is None:
            return None
        queue = await self.get(arn, missing_since)
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
