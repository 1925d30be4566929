"""The fan-out worker: turns each outbox publication into SQS messages and push deliveries, atomically.

Loop: claim a batch of publications (a lease, so one node works each), and for each one read the
topic and its subscriptions, keep the confirmed subscriptions whose filter policy matches and render
what each one receives; then retire the batch with ``complete_publications``, in chunks of about
``fanout_rows`` rows. Each chunk stores its SQS messages (one insert per queue), records its push
deliveries and deletes its publications in one transaction: a crash before it leaves the
publications to be claimed again after their lease; a crash after it has nothing left to redo. So
each subscriber gets the message once per successful fan-out (at least once overall, as SNS promises).

Publications of one FIFO topic are planned one after another and retired in claim order (the store
hands a topic's publications out in order and never to two nodes at once); other publications of a
batch are planned concurrently (their signatures are made on threads meanwhile).

A publication whose payload is a single `PushDelivery` (a confirmation, a direct SMS or mobile push,
a sandbox code) is not a topic message: it becomes that one delivery (rendered and signed here when
it is a confirmation), or a message in the queue for an SQS confirmation to another account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from loosely.core.clock import Clock
from loosely.core.documents import FanOutResult, NewDelivery, Publication
from loosely.core.errors import LooselyError, QueuesGone
from loosely.core.ports import OutboxStore
from loosely.core.queues.models import NewMessage, SendRequest
from loosely.core.topics.filter_policy import BODY_SCOPE, MessageFields
from loosely.core.topics.models import (
    PUSH_SUBSCRIPTION_CONFIRMATION,
    PUSH_UNSUBSCRIBE_CONFIRMATION,
    PublishedMessage,
    PushDelivery,
    Subscription,
    Topic,
    decode_publication,
    sequence_number,
)
from loosely.delivery.directory import Directory, Subscriber
from loosely.delivery.options import DeliveryOptions, DeliveryStats
from loosely.delivery.rendering import Renderer, message_for
from loosely.delivery.sqs import QueueDirectory

__all__ = ["PUSH_PROTOCOLS", "FanOut"]

log = logging.getLogger(__name__)

PUSH_PROTOCOLS = frozenset({"http", "https", "email", "email-json", "sms", "application"})
_CONFIRMATIONS = frozenset({PUSH_SUBSCRIPTION_CONFIRMATION, PUSH_UNSUBSCRIBE_CONFIRMATION})
_PAUSE_AFTER_ERROR_S = 1.0
_REPLANS = 3
"""Times a chunk is planned again after the store found some of its queues gone."""


@dataclass(slots=True)
class _Plan:
    """What one publication turns into."""

    queue_messages: list[tuple[int, NewMessage]] = field(default_factory=list)
    deliveries: list[NewDelivery] = field(default_factory=list)


class _Fields:
    """A message's filterable fields, prepared on first use for each scope."""

    def __init__(self, message: PublishedMessage) -> None:
        self._message = message
        self._attributes: MessageFields | None = None
        self._body: MessageFields | None = None

    def of(self, scope: str) -> MessageFields:
        if scope == BODY_SCOPE:
            if self._body is None:
                self._body = MessageFields.from_body(self._message.message)
            return self._body
        if self._attributes is None:
            self._attributes = MessageFields.from_envelope_attributes(self._message.attributes)
        return self._attributes


class FanOut:
    """Claims publications and fans them out; `run` loops until cancelled."""

    def __init__(
        self,
        outbox: OutboxStore,
        directory: Directory,
        queues: QueueDirectory,
        renderer: Renderer,
        clock: Clock,
        owner: str,
        options: DeliveryOptions | None = None,
        stats: DeliveryStats | None = None,
    ) -> None:
        self._outbox = outbox
        self._directory = directory
        self._queues = queues
        self._renderer = renderer
        self._clock = clock
        self._owner = owner
        self.options = options or DeliveryOptions()
        self.stats = stats or DeliveryStats()
        # When the publications being planned were claimed (`QueueDirectory.get`'s ``missing_since``).
        self._claimed_at: float | None = None

    async def run(self) -> None:
        """Fan out until cancelled: straight on while there is a backlog, else wait to be woken."""
        failing = False
        while True:
            try:
                claimed = await self.run_once()
            except Exception:
                if not failing:
                    log.exception("fan-out failed; retrying")
                failing = True
                await asyncio.sleep(_PAUSE_AFTER_ERROR_S)
                continue
            if failing:
                log.info("fan-out recovered")
                failing = False
            if claimed < self.options.fanout_batch:
                await self._outbox.wait_for_outbox(self.options.idle_poll_s)

    async def run_once(self) -> int:
        """Claim one batch of publications, fan each out and retire them; return how many were claimed."""
        now = self._clock.now_ms()
        self._claimed_at = self._queues.now()
        publications = await self._outbox.claim_publications(
            self._owner, now, self.options.fanout_lease_ms, self.options.fanout_batch
        )
        payloads = {publication.id: _decode(publication) for publication in publications}
        await self._presign(payloads.values())
        groups: dict[str, list[Publication]] = {}
        for publication in publications:
            ordered = publication.topic_arn.endswith(".fifo")
            groups.setdefault(publication.topic_arn if ordered else f"#{publication.id}", []).append(publication)
        planned = await asyncio.gather(*(self._plan_in_order(group, payloads) for group in groups.values()))
        results = sorted((item for group in planned for item in group), key=lambda item: item[0].id)
        await self._complete(results, payloads)
        return len(publications)

    async def _plan_in_order(
        self, publications: list[Publication], payloads: Mapping[int, PublishedMessage | PushDelivery | None]
    ) -> list[tuple[Publication, _Plan]]:
        """Plan one after another; after a failure stop, so later ones never overtake it."""
        plans: list[tuple[Publication, _Plan]] = []
        for publication in publications:
            try:
                plans.append((publication, await self.plan(publication, payloads[publication.id])))
            except Exception:
                log.exception("fan-out of publication %s (%s) failed", publication.id, publication.message_id)
                break
        return plans

    async def plan(self, publication: Publication, payload: PublishedMessage | PushDelivery | None) -> _Plan:
        """What one publication turns into (nothing for an unreadable payload, which is then dropped)."""
        if payload is None:
            return _Plan()
        if isinstance(payload, PushDelivery):
            return await self._single(payload)
        return await self._topic_message(publication, payload)

    async def _presign(self, payloads: Iterable[PublishedMessage | PushDelivery | None]) -> None:
        """Sign every envelope the batch's subscribers will get, on the signing threads, in one go.

        Usually one signature per publication (every subscriber gets the same signed fields). FIFO
        topics' notifications are not signed, and raw deliveries carry no envelope. A failure here
        only means rendering signs in line (and meets the error, for its own publication, there).
        """
        wanted: list[tuple[PublishedMessage, str, str]] = []
        try:
            for message in payloads:
                if not isinstance(message, PublishedMessage) or message.topic_arn.endswith(".fifo"):
                    continue
                topic = await self._directory.topic(message.topic_arn)
                if topic is None:
                    continue
                version = topic[0].attributes.get("SignatureVersion") or "1"
                subscribers = await self._directory.subscribers(message.topic_arn)
                texts = {
                    message_for(message, _text_key(s.subscription.protocol))
                    for s in subscribers
                    if s.subscription.confirmed and _gets_envelope(s.subscription)
                }
                wanted.extend((message, text, version) for text in texts)
            await self._renderer.presign_many(wanted)
        except Exception:
            log.warning("signing ahead failed; envelopes are signed as they are rendered", exc_info=True)

    async def _complete(
        self, results: list[tuple[Publication, _Plan]], payloads: Mapping[int, PublishedMessage | PushDelivery | None]
    ) -> None:
        """Retire the planned publications, in order, a few store transactions of about ``fanout_rows`` rows.

        One transaction per chunk, not per publication, so a queue gets one insert per chunk. Chunks
        go one after another: on SQLite a transaction's statements run on the event loop, and a
        bounded chunk keeps the Publish requests queued behind it waiting milliseconds, not tens of
        them. After a chunk fails, later publications of its FIFO topics wait for their lease to end
        (they must not overtake the failed ones); the others go on.
        """
        failed_topics: set[str] = set()
        for chunk in _chunks(results, self.options.fanout_rows):
            chunk = [(p, plan) for p, plan in chunk if p.topic_arn not in failed_topics]
            if not chunk:
                continue
            try:
                chunk = await self._complete_chunk(chunk, payloads)
            except Exception:
                log.exception("fan-out of publications %s failed", [p.id for p, _ in chunk])
                failed_topics.update(p.topic_arn for p, _ in chunk if p.topic_arn.endswith(".fifo"))
                continue
            for _, plan in chunk:
                self.stats.publications += 1
                self.stats.sqs_messages += len(plan.queue_messages)
                self.stats.deliveries_created += len(plan.deliveries)

    async def _complete_chunk(
        self, chunk: list[tuple[Publication, _Plan]], payloads: Mapping[int, PublishedMessage | PushDelivery | None]
    ) -> list[tuple[Publication, _Plan]]:
        """Retire one chunk; return it as retired (re-planned where queues were found gone).

        A cached queue record may name a queue deleted since, perhaps created again under its name
        with a new id. The store then changes nothing and names the queues (`QueuesGone`): their
        records are forgotten and the publications that sent to them planned again, with the queues
        that exist now (or, when one does not, the subscription's dead-letter queue). A queue deleted
        again each time gives up after a few rounds, leaving the chunk to its lease.
        """
        for attempt in range(_REPLANS + 1):
            try:
                await self._outbox.complete_publications(
                    [FanOutResult(publication.id, plan.queue_messages, plan.deliveries) for publication, plan in chunk],
                    self._clock.now_ms(),
                    self.options.dedup_window_ms,
                )
                return chunk
            except QueuesGone as gone:
                if attempt == _REPLANS:
                    raise
                log.info("queues %s were deleted since fan-out looked them up; planning again", sorted(gone.queue_ids))
                self._queues.forget(gone.queue_ids)
                chunk = [
                    (p, await self.plan(p, payloads[p.id]) if _sends_to(plan, gone.queue_ids) else plan)
                    for p, plan in chunk
                ]
        raise AssertionError("unreachable")

    # ---- one push ----

    async def _single(self, push: PushDelivery) -> _Plan:
        plan = _Plan()
        if push.kind in _CONFIRMATIONS:
            topic = await self._directory.topic(push.topic_arn)
            version = (topic[0].attributes.get("SignatureVersion") if topic else None) or "1"
            push = self._renderer.confirmation(push, version)
        if push.protocol == "sqs":
            await self._confirmation_to_queue(push, plan)
        else:
            plan.deliveries.append(self._delivery(push.subscription_arn or push.endpoint, push))
        return plan

    async def _confirmation_to_queue(self, push: PushDelivery, plan: _Plan) -> None:
        queue = await self._queues.get(push.endpoint, self._claimed_at)
        if queue is None:
            log.warning("confirmation for %s: queue %s does not exist", push.subscription_arn, push.endpoint)
            self.stats.failed += 1
            return
        try:
            plan.queue_messages.append(self._queues.build(queue, _confirmation_request(push, queue.key.fifo)))
        except LooselyError as exc:
            log.warning("confirmation for %s refused by %s: %s", push.subscription_arn, push.endpoint, exc)
            self.stats.failed += 1

    # ---- a topic's message ----

    async def _topic_message(self, publication: Publication, message: PublishedMessage) -> _Plan:
        plan = _Plan()
        topic = await self._directory.topic(message.topic_arn)
        if topic is None:
            log.info("topic %s was deleted; message %s dropped", message.topic_arn, message.message_id)
            return plan
        fields = _Fields(message)
        sequence = sequence_number(publication.sequence) if message.topic_arn.endswith(".fifo") else None
        subscribers = await self._directory.subscribers(message.topic_arn)
        if message.replay_subscription is not None:  # a replay: its subscriber only, with the original number
            subscribers = [s for s in subscribers if s.subscription.arn == message.replay_subscription]
            sequence = message.sequence_number or sequence
        for subscriber in subscribers:
            if not subscriber.subscription.confirmed:
                continue
            if not _matches(subscriber, fields):
                self.stats.filtered_out += 1
                continue
            protocol = subscriber.subscription.protocol
            if protocol == "sqs":
                await self._to_queue(message, subscriber, topic, sequence, plan)
            elif protocol in PUSH_PROTOCOLS:
                plan.deliveries.append(self._push(message, subscriber, topic))
            else:
                log.debug("no delivery for protocol %s (%s)", protocol, subscriber.subscription.arn)
        return plan

    def _push(self, message: PublishedMessage, subscriber: Subscriber, topic: tuple[Topic, int]) -> NewDelivery:
        sub = subscriber.subscription
        content_type = None
        if sub.protocol in ("http", "https"):
            content_type = self._directory.delivery_policy(subscriber, topic).content_type
        push = self._renderer.push_notification(message, sub, topic[0].attributes, content_type)
        return self._delivery(sub.arn, push)

    async def _to_queue(
        self,
        message: PublishedMessage,
        subscriber: Subscriber,
        topic: tuple[Topic, int],
        sequence: str | None,
        plan: _Plan,
    ) -> None:
        sub = subscriber.subscription
        queue = await self._queues.get(sub.endpoint, self._claimed_at)
        version = topic[0].attributes.get("SignatureVersion") or "1"
        request = self._renderer.sqs_request(message, sub, version, sequence, bool(queue and queue.key.fifo))
        if queue is None:
            await self._client_error(plan, subscriber, request, message, "EndpointNotFound", "queue does not exist")
            return
        try:
            plan.queue_messages.append(self._queues.build(queue, request))
        except LooselyError as exc:
            await self._client_error(plan, subscriber, request, message, "InvalidMessage", exc.message)

    async def _client_error(
        self,
        plan: _Plan,
        subscriber: Subscriber,
        request: SendRequest,
        message: PublishedMessage,
        code: str,
        error: str,
    ) -> None:
        """Not retried, as on AWS: to the subscription's dead-letter queue, else dropped (logged and counted)."""
        arn = subscriber.subscription.arn
        dead = await self._queues.dead_letter(
            subscriber.dead_letter_arn, request, code, error, message.message_id, self._claimed_at
        )
        if dead is not None:
            plan.queue_messages.append(dead)
            self.stats.dead_lettered += 1
            log.info("message %s for %s dead-lettered: %s", message.message_id, arn, error)
            return
        self.stats.failed += 1
        log.warning("message %s for %s failed: %s", message.message_id, arn, error)

    def _delivery(self, subscription_arn: str, push: PushDelivery) -> NewDelivery:
        return NewDelivery(
            subscription_arn=subscription_arn, payload=push.to_json(), next_attempt_ms=self._clock.now_ms()
        )


def _chunks(results: list[tuple[Publication, _Plan]], max_rows: int) -> list[list[tuple[Publication, _Plan]]]:
    """Consecutive runs of about ``max_rows`` rows (each publication counts one more); a larger one goes alone."""
    chunks: list[list[tuple[Publication, _Plan]]] = []
    current: list[tuple[Publication, _Plan]] = []
    rows = 0
    for item in results:
        size = len(item[1].queue_messages) + len(item[1].deliveries) + 1
        if current and rows + size > max_rows:
            chunks.append(current)
            current, rows = [], 0
        current.append(item)
        rows += size
    if current:
        chunks.append(current)
    return chunks


def _sends_to(plan: _Plan, queue_ids: frozenset[int]) -> bool:
    return any(queue_id in queue_ids for queue_id, _ in plan.queue_messages)


def _decode(publication: Publication) -> PublishedMessage | PushDelivery | None:
    try:
        return decode_publication(publication.payload)
    except (ValueError, TypeError, KeyError):
        log.error("publication %s has an unreadable payload; dropped", publication.id)
        return None


def _gets_envelope(subscription: Subscription) -> bool:
    """Whether a subscriber receives the signed JSON envelope (not the raw message, not a text)."""
    if subscription.protocol == "email-json":
        return True
    if subscription.protocol in ("sqs", "http", "https"):
        return subscription.attributes.get("RawMessageDelivery", "false").lower() != "true"
    return False


def _text_key(protocol: str) -> str:
    """The key a MessageStructure=json message is read with for a protocol (platform endpoints: "default",
    their own key is resolved when rendering; presigning them is only an optimisation)."""
    return "default" if protocol == "application" else protocol


def _matches(subscriber: Subscriber, fields: _Fields) -> bool:
    if subscriber.broken_filter:
        return False
    policy = subscriber.filter_policy
    return policy is None or policy.matches(fields.of(policy.scope))


def _confirmation_request(push: PushDelivery, fifo_queue: bool) -> SendRequest:
    return SendRequest(
        body=push.body,
        group_id=push.message_id if fifo_queue else None,
        deduplication_id=push.message_id if fifo_queue else None,
    )
