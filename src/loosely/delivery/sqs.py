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

A publication's standard queues mostly get bodies that differ only in a short part: an envelope's
``UnsubscribeURL``, or nothing at all with raw delivery (`SqsRequests.body_parts`). For those,
`build_shared` builds the first message of each kind of queue (its size limit and delay) with
`QueueService.build_message`, and the others from it: the same checks hold for the part they share,
so only the differing part is checked, and only its bytes are added to the shared part's MD5. Each
such message is the one `build_message` makes (tests compare them), for a fraction of the work.

A message moved to a dead-letter queue keeps the body that failed and gains three String message
attributes when there is room for them (SQS allows ten): ``ErrorCode`` and ``ErrorMessage`` (why the
last attempt failed) and ``RequestID`` (the SNS message id).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from loosely.core.errors import LooselyError, QueueDoesNotExist
from loosely.core.queues.models import MessageAttributeValue, NewMessage, QueueKey, QueueRecord, SendRequest
from loosely.core.queues.service import QueueService
from loosely.core.queues.validation import message_size
from loosely.delivery.rendering import SNS_SENDER_ID

__all__ = ["UNKNOWN", "QueueDirectory", "SharedBody", "dead_letter_request"]

UNKNOWN: Any = object()
"""What `QueueDirectory.known` answers when it must look the queue up (with `QueueDirectory.get`)."""

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

    def known(self, arn: str, missing_since: float | None = None) -> QueueRecord | None:
        """What `get` would answer from its cache without a lookup, else `UNKNOWN` (no coroutine per message)."""
        cached = self._cache.get(arn)
        if cached is not None and self._monotonic() - cached[0] < self._ttl_s:
            record = cached[1]
            if record is not None or (missing_since is not None and cached[0] >= missing_since):
                return record
        unknown: QueueRecord | None = UNKNOWN
        return unknown

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

    def build_shared(
        self, queue: QueueRecord, shared: SharedBody, link: str, request: Callable[[], SendRequest]
    ) -> tuple[int, NewMessage]:
        """`build` of ``request()``, whose body is ``shared.prefix + link + shared.suffix``, sharing the work.

        Raises:
            LooselyError: the queue refuses the message (as `build`).
        """
        if queue.key.fifo:  # deduplication ids and keys of their own
            return self.build(queue, request())
        attributes = queue.attributes
        kind = (attributes.get("MaximumMessageSize"), attributes.get("DelaySeconds"))
        first = shared.firsts.get(kind, _NONE_YET)
        new_kind = first is _NONE_YET
        if isinstance(first, _Built) and not new_kind:  # a second message of this kind: the first becomes the model
            first = shared.firsts[kind] = shared.model(queue, first)
        if isinstance(first, _First) and first.fits(link):
            now = self.queues.clock.now_ms()
            return queue.id, first.sibling(self.queues.ids.uuid(), shared, link, now)
        made = request()
        built = self.build(queue, made)
        if new_kind:
            shared.firsts[kind] = _Built(link, made, built[1])
        return built

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


class SharedBody:
    """A publication's bodies for standard queues, ``prefix + link + suffix``, where only ``link`` differs.

    For each kind of queue (size limit, delay) it keeps the first message `QueueService.build_message`
    built: a body that differs from it only in ``link`` passes the same checks when its link does
    and it is no larger than the limit, and its message differs only in the id, the body and the
    body's MD5 (in the message and in its meta), which is the shared prefix's digest carried on.
    The model is made when a second message comes: a publication with one subscriber pays nothing.
    """

    __slots__ = ("_prefix_md5", "firsts", "prefix", "suffix")

    def __init__(self, prefix: str, suffix: str) -> None:
        self.prefix = prefix
        self.suffix = suffix
        self._prefix_md5: Any = None
        # By kind of queue (size limit, delay): the first message built, then the model made of it.
        self.firsts: dict[tuple[str | None, str | None], _Built | _First | None] = {}

    def md5(self, link: str) -> str:
        """The hex MD5 of ``prefix + link + suffix`` as UTF-8, from the prefix's digest made once."""
        digest = self._prefix_md5
        if digest is None:
            digest = self._prefix_md5 = hashlib.md5(self.prefix.encode("utf-8"), usedforsecurity=False)
        digest = digest.copy()
        digest.update((link + self.suffix).encode("utf-8"))
        return str(digest.hexdigest())

    def model(self, queue: QueueRecord, built: _Built) -> _First | None:
        """The first message built for a kind of queue as the model of the others (None: build them in full).

        Only when it is what it is expected to be: this body, not empty where it is shared, with this
        MD5 in its meta, and no deduplication key.
        """
        link, request, message = built.link, built.request, built.message
        md5 = self.md5(link)
        at = message.meta.find(md5)
        if (
            at < 0
            or not (self.prefix or self.suffix)
            or message.body != self.prefix + link + self.suffix
            or message.dedup_key is not None
            or not link.isascii()
        ):
            return None
        room = int(queue.attributes["MaximumMessageSize"]) - message_size(request.body, request.message_attributes)
        return _First(message, message.meta[:at], message.meta[at + len(md5) :], room + len(link))


class _Built:
    """The first message built for a kind of queue, kept to become the model when a second one comes."""

    __slots__ = ("link", "message", "request")

    def __init__(self, link: str, request: SendRequest, message: NewMessage) -> None:
        self.link = link
        self.request = request
        self.message = message


_NONE_YET = _Built("", SendRequest(""), NewMessage("", "", "", 0, 0))


class _First:
    """The first message of a `SharedBody` built for one kind of queue, and what its siblings are made from."""

    __slots__ = ("delay_ms", "group_id", "link_room", "meta_head", "meta_tail")

    def __init__(self, message: NewMessage, meta_head: str, meta_tail: str, link_room: int) -> None:
        self.delay_ms = message.visible_at_ms - message.sent_ms
        self.group_id = message.group_id
        self.meta_head = meta_head
        self.meta_tail = meta_tail
        self.link_room = link_room  # bytes a link may take within the queue's size limit

    def fits(self, link: str) -> bool:
        """Whether a body with this link passes SendMessage's checks as the first one did."""
        # Printable ASCII is valid for SQS (as are a few more characters, left to the full checks).
        return len(link) <= self.link_room and link.isascii() and link.isprintable()

    def sibling(self, message_id: str, shared: SharedBody, link: str, now_ms: int) -> NewMessage:
        md5 = shared.md5(link)
        return NewMessage(
            message_id,
            shared.prefix + link + shared.suffix,
            self.meta_head + md5 + self.meta_tail,
            now_ms,
            now_ms + self.delay_ms,
            self.group_id,
            None,
        )


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
