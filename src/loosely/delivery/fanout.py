"""The fan-out worker: turns each outbox publication into SQS messages and push deliveries, atomically.

Loop: claim a batch of publications (a lease, so one node works each), read each topic of the batch
and its subscriptions once, sign the envelopes (one signature per publication, on the signing
threads), then plan the publications one by one: keep the confirmed subscriptions whose filter
policy matches and render what each one receives. Planned publications are retired with
``complete_publications`` in chunks: each chunk stores its SQS messages (one insert per queue),
records its push deliveries and deletes its publications in one transaction, while the next chunk is
being planned. A crash before a chunk's commit leaves its publications to be claimed again after
their lease; a crash after it has nothing left to redo. So each subscriber gets the message once per
successful fan-out (at least once overall, as SNS promises).

Requests come first. Publish is answered once its publication is committed; fan-out is background
work on the same event loop (and, on SQLite, the same writer), so it must not sit on a request's
path: planning runs in slices under a `LoopShare` (it uses the loop's idle time and at most
``fanout_share`` of its busy time), chunks stay small (``fanout_rows_yielding``) while requests are
being served, so the commits requests share with them stay short; at most one chunk is in the
store's hands, and after it fan-out leaves the store to busy requests for its share of the time.
When fan-out falls ``fanout_max_lag_ms`` behind (its oldest publication is that old), it takes the
lead instead (``fanout_share_behind``) and writes large chunks: publishers slow down, without being
refused. That alone does not bound the backlog (fan-out also waits for signatures and the store);
past ``publish_hold_lag_ms`` Publish is admitted only as fan-out retires publications
(`FanOutBacklog`), so sustained overload slows publishers instead of delaying deliveries without end.
While a full batch is planned, the next one is claimed and signed.

Publications of one FIFO topic are planned and retired in claim order (the store hands a topic's
publications out in order and never to two nodes at once); after one of them fails, the later ones
wait for their lease to end.

When fan-out stops (shutdown), it hands back the publications it claimed, including the batch
claimed ahead, and had not begun to write (`OutboxStore.release_publications`), so another node, or
this one after a restart, takes them at once instead of after their lease.

A publication whose payload is a single `PushDelivery` (a confirmation, a direct SMS or mobile push,
a sandbox code) is not a topic message: it becomes that one delivery (rendered and signed here when
it is a confirmation), or a message in the queue for an SQS confirmation to another account.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Mapping
from dataclasses import field

from loosely.core.clock import Clock
from loosely.core.documents import FanOutResult, NewDelivery, Publication
from loosely.core.errors import LooselyError, QueuesGone, ServiceUnavailable
from loosely.core.frozen import record
from loosely.core.ports import OutboxStore
from loosely.core.queues.models import NewMessage, QueueRecord, SendRequest
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
from loosely.delivery.backlog import FanOutBacklog
from loosely.delivery.directory import Directory, Subscriber
from loosely.delivery.loopshare import LoopShare
from loosely.delivery.options import DeliveryOptions, DeliveryStats
from loosely.delivery.rendering import Renderer, SqsRequests, message_for
from loosely.delivery.sqs import UNKNOWN, QueueDirectory, SharedBody

__all__ = ["PUSH_PROTOCOLS", "FanOut"]

log = logging.getLogger(__name__)

PUSH_PROTOCOLS = frozenset({"http", "https", "email", "email-json", "sms", "application"})
_CONFIRMATIONS = frozenset({PUSH_SUBSCRIPTION_CONFIRMATION, PUSH_UNSUBSCRIBE_CONFIRMATION})
_PAUSE_AFTER_ERROR_S = 1.0
_REPLANS = 3
"""Times a chunk is planned again after the store found some of its queues gone."""
_BUSY_MEMORY_S = 0.01
"""Requests count as active when fan-out found them using the loop this recently."""


@record(frozen=False)
class _Plan:
    """What one publication turns into, and what it counts once it is retired.

    The counters are added to the node's stats only when the plan's chunk is stored: a chunk planned
    again (queues gone) or left to its lease must not count its subscribers twice.
    """

    queue_messages: list[tuple[int, NewMessage]] = field(default_factory=list)
    deliveries: list[NewDelivery] = field(default_factory=list)
    filtered_out: int = 0
    failed: int = 0
    dead_lettered: int = 0

    @property
    def rows(self) -> int:
        """Rows it writes: its messages and deliveries, and the publication it retires."""
        return len(self.queue_messages) + len(self.deliveries) + 1


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


@record(frozen=False)
class _Batch:
    """Claimed publications, decoded, with what their topics looked like when the batch was read."""

    publications: list[Publication]
    payloads: dict[int, PublishedMessage | PushDelivery | None]
    topics: dict[str, _TopicView]
    claimed_ms: int
    claimed_at: float  # on the queue directory's clock (`QueueDirectory.get`'s ``missing_since``)
    # Where the claim ran (a task of its own): the store's note of which wake-ups came after it.
    claim_context: contextvars.Context = field(default_factory=contextvars.copy_context)


def _adopt(claim_context: contextvars.Context) -> None:
    """Take the store's bookkeeping of a claim made in another task into this one.

    A store notes in context variables which wake-ups came after a claim, so that the wait after
    it returns at once for a publication committed meanwhile. The claim runs in a task of its own
    (shielded, so that a stopping fan-out still hands it back), whose context changes do not reach
    the worker that waits: without this, such a publication waited for the idle poll.
    """
    for variable, value in claim_context.items():
        variable.set(value)


@record
class _TopicView:
    """A topic and its subscriptions, read once for every publication of a batch."""

    topic: tuple[Topic, int] | None
    subscribers: list[Subscriber]
    # The keys (`_text_key`) its subscribers that get a signed envelope read a message's text with.
    envelope_keys: frozenset[str] = frozenset()


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
        self.loop_share = LoopShare(self.options.fanout_share)
        # Holds Publish back while this fan-out is more than ``publish_hold_lag_ms`` behind.
        self.backlog = FanOutBacklog(self.options.publish_hold_lag_ms, self.options.publish_hold_max_s, self.stats)
        self._store_free_at = 0.0  # fan-out's next turn at the store while requests are busy (loop clock)
        # When the publications being planned were claimed (`QueueDirectory.get`'s ``missing_since``).
        self._claimed_at: float | None = None
        self._chunk_rows = self.options.fanout_rows_yielding
        # Publications this node leased and has not begun to write: handed back if fan-out stops.
        self._held: set[int] = set()
        self._claiming: set[asyncio.Task[list[Publication]]] = set()

    async def run(self) -> None:
        """Fan out until cancelled: straight on while there is a backlog, else wait to be woken.

        While a full batch is being fanned out, the next one is claimed and signed meanwhile (the
        signatures take the signing threads milliseconds per batch, and the loop need not wait).
        """
        failing = False
        upcoming: asyncio.Task[_Batch] | None = None
        try:
            while True:
                try:
                    if upcoming is not None:
                        prepared, upcoming = upcoming, None
                        batch = await prepared
                    else:
                        batch = await self._prepare()
                    _adopt(batch.claim_context)
                    full = len(batch.publications) >= self.options.fanout_batch
                    if full:
                        upcoming = asyncio.create_task(self._prepare(), name="loosely-sns-fanout-claim")
                    await self._fan_out(batch)
                except Exception:
                    if not failing:
                        log.exception("fan-out failed; retrying")
                    failing = True
                    self.backlog.caught_up()  # publishers are not held for a fan-out that fails
                    await asyncio.sleep(_PAUSE_AFTER_ERROR_S)
                    continue
                if failing:
                    log.info("fan-out recovered")
                    failing = False
                if not full:
                    self._store_free_at = 0.0  # caught up: the next publication need not wait for a turn
                    self.backlog.caught_up()
                    await self._outbox.wait_for_outbox(self.options.idle_poll_s)
        finally:
            self.backlog.caught_up()
            if upcoming is not None:
                upcoming.cancel()
            await self._hand_back()

    async def _hand_back(self) -> None:
        """Release the leases of publications claimed and not yet being written (fan-out is stopping).

        Without this they would wait for their lease to end (``fanout_lease_ms``) before this node,
        after a restart, or another node could fan them out. A chunk whose write had begun keeps its
        lease: its transaction may still commit.
        """
        if self._claiming:
            await asyncio.wait(set(self._claiming))
        held, self._held = sorted(self._held), set()
        if not held:
            return
        try:
            await self._outbox.release_publications(self._owner, held)
        except Exception:
            log.warning("could not hand back %d claimed publications; their lease will end", len(held), exc_info=True)

    async def run_once(self) -> int:
        """Claim one batch of publications, fan each out and retire them; return how many were claimed."""
        batch = await self._prepare()
        await self._fan_out(batch)
        return len(batch.publications)

    async def _prepare(self) -> _Batch:
        """Claim a batch, decode it, read its topics and subscriptions, and sign its envelopes."""
        now = self._clock.now_ms()
        claimed_at = self._queues.now()
        # Shielded: when fan-out stops during the claim, the claim still completes and is handed back.
        context = contextvars.copy_context()
        claim = asyncio.create_task(self._claim(now), context=context)
        self._claiming.add(claim)
        claim.add_done_callback(self._claiming.discard)
        publications = await asyncio.shield(claim)
        with self.loop_share.own():
            payloads = {publication.id: _decode(publication) for publication in publications}
            arns = {p.topic_arn for p in payloads.values() if isinstance(p, PublishedMessage)}
        views = await asyncio.gather(*(self._topic_view(arn, claimed_at) for arn in arns))
        batch = _Batch(publications, payloads, dict(zip(arns, views, strict=True)), now, claimed_at, context)
        await self._presign(batch)
        return batch

    async def _claim(self, now: int) -> list[Publication]:
        publications = await self._outbox.claim_publications(
            self._owner, now, self.options.fanout_lease_ms, self.options.fanout_batch
        )
        self._held.update(p.id for p in publications)
        return publications

    async def _topic_view(self, arn: str, claimed_at: float | None = None) -> _TopicView:
        topic = await self._directory.topic(arn)
        subscribers = await self._directory.subscribers(arn) if topic is not None else []
        # Look the subscribed queues up now, together (a round trip each on PostgreSQL), so that
        # planning finds them cached.
        await asyncio.gather(
            *(
                self._queues.get(s.subscription.endpoint, claimed_at)
                for s in subscribers
                if s.subscription.protocol == "sqs"
            )
        )
        keys = frozenset(
            _text_key(s.subscription.protocol)
            for s in subscribers
            if s.subscription.confirmed and _gets_envelope(s.subscription)
        )
        return _TopicView(topic, subscribers, keys)

    async def _fan_out(self, batch: _Batch) -> None:
        """Plan each publication in claim order and retire them in chunks, giving way to requests throughout.

        Publications of a FIFO topic must reach the store in order: after one fails (planning or its
        chunk), the later ones of its topic are left for their lease to end.
        """
        if not batch.publications:
            return
        self._pace(batch)
        self._claimed_at = batch.claimed_at
        retiring = _Retirer(self, batch.payloads)
        chunk: list[tuple[Publication, _Plan]] = []
        rows = 0
        self.loop_share.resume()
        try:
            for publication in batch.publications:
                if publication.topic_arn in retiring.failed_topics:
                    continue
                try:
                    plan = await self.plan(publication, batch.payloads[publication.id], batch.topics)
                except Exception:
                    log.exception("fan-out of publication %s (%s) failed", publication.id, publication.message_id)
                    if publication.topic_arn.endswith(".fifo"):
                        retiring.failed_topics.add(publication.topic_arn)
                    continue
                chunk.append((publication, plan))
                rows += plan.rows
                if rows >= (self._chunk_rows if self.loop_share.busy else self.options.fanout_rows):
                    await retiring.submit(chunk)
                    chunk, rows = [], 0
                await self.loop_share.checkpoint()
            if chunk:
                await retiring.submit(chunk)
            await retiring.finish()
        except Exception:
            # Left to their lease, as below. (A cancellation leaves them held, to be handed back.)
            self._held.difference_update(p.id for p in batch.publications)
            raise
        finally:
            retiring.abandon()
        # Publications left unretired (their plan or chunk failed) wait for their lease, as intended.
        self._held.difference_update(p.id for p in batch.publications)

    def _pace(self, batch: _Batch) -> None:
        """Give way to requests unless fan-out has fallen too far behind; then take the lead, in larger chunks.

        How far behind: the age of the batch's oldest publication. Publishing faster than fan-out can
        keep up makes it grow; past ``fanout_max_lag_ms`` fan-out takes ``fanout_share_behind`` of the
        loop (and the store), which slows publishers (without refusing them). The backlog (`FanOutBacklog`)
        learns the lag too: past ``publish_hold_lag_ms`` it admits new publications only as old ones
        are retired.
        """
        lag_ms = batch.claimed_ms - min(p.created_ms for p in batch.publications)
        behind = lag_ms > self.options.fanout_max_lag_ms
        self.backlog.lagging(lag_ms)
        self.loop_share.share = self.options.fanout_share_behind if behind else self.options.fanout_share
        self._chunk_rows = self.options.fanout_rows if behind else self.options.fanout_rows_yielding

    async def plan(
        self,
        publication: Publication,
        payload: PublishedMessage | PushDelivery | None,
        topics: Mapping[str, _TopicView] | None = None,
    ) -> _Plan:
        """What one publication turns into (nothing for an unreadable payload, which is then dropped)."""
        if payload is None:
            return _Plan()
        if isinstance(payload, PushDelivery):
            return await self._single(payload)
        view = (topics or {}).get(payload.topic_arn) or await self._topic_view(payload.topic_arn, self._claimed_at)
        return await self._topic_message(publication, payload, view)

    async def _presign(self, batch: _Batch) -> None:
        """Sign every envelope the batch's subscribers will get, on the signing threads, in one go.

        One signature per publication, and only when some subscriber gets an envelope (every one of
        them gets the same signed fields). FIFO topics' notifications are not signed, and raw
        deliveries carry no envelope. A failure here only means rendering signs in line (and meets
        the error, for its own publication, there).
        """
        wanted: list[tuple[PublishedMessage, str, str]] = []
        try:
            with self.loop_share.own():
                for message in batch.payloads.values():
                    if not isinstance(message, PublishedMessage) or message.topic_arn.endswith(".fifo"):
                        continue
                    view = batch.topics[message.topic_arn]
                    if view.topic is None:
                        continue
                    version = view.topic[0].attributes.get("SignatureVersion") or "1"
                    texts = {message_for(message, key) for key in view.envelope_keys}
                    wanted.extend((message, text, version) for text in texts)
                strings = self._renderer.strings_to_sign(wanted)
            await self._renderer.sign_ahead(strings)
        except Exception:
            log.warning("signing ahead failed; envelopes are signed as they are rendered", exc_info=True)

    async def store_turn(self) -> None:
        """Wait, before writing a chunk, while fan-out has had more than its share of the store.

        The store's writer is shared with requests too (on SQLite, every commit goes through one
        writer): a chunk committed with a Publish makes it wait for the chunk's rows. While requests
        keep the loop busy, fan-out leaves the store alone after each chunk for as long as its share
        says (a chunk that took 2 ms at a fifth: 8 ms), so most commits of requests carry no chunk.
        """
        share = self.loop_share
        delay = self._store_free_at - share.now()
        if delay > 0 and share.busy_within(_BUSY_MEMORY_S):
            await asyncio.sleep(delay)
            share.resume()

    def writing(self, chunk: list[tuple[Publication, _Plan]]) -> None:
        """The chunk's transaction is about to begin: it keeps its lease even if fan-out stops."""
        self._held.difference_update(p.id for p, _ in chunk)

    def used_store(self, started: float, ended: float) -> None:
        self._store_free_at = ended + self.loop_share.rest_for(ended - started)

    async def retire(
        self, chunk: list[tuple[Publication, _Plan]], payloads: Mapping[int, PublishedMessage | PushDelivery | None]
    ) -> bool:
        """Store what the chunk's publications turned into and delete them, in one transaction; False if it failed."""
        try:
            chunk = await self._complete_chunk(chunk, payloads)
        except ServiceUnavailable as unavailable:  # the store refuses for now (e.g. disk space low): no bug
            log.warning("fan-out of publications %s waits: %s", [p.id for p, _ in chunk], unavailable)
            return False
        except Exception:
            log.exception("fan-out of publications %s failed", [p.id for p, _ in chunk])
            return False
        self.backlog.retired(len(chunk))
        stats = self.stats
        for _, plan in chunk:
            stats.publications += 1
            stats.sqs_messages += len(plan.queue_messages)
            stats.deliveries_created += len(plan.deliveries)
            stats.filtered_out += plan.filtered_out
            stats.failed += plan.failed
            stats.dead_lettered += plan.dead_lettered
        return True

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
            plan.failed += 1
            return
        try:
            plan.queue_messages.append(self._queues.build(queue, _confirmation_request(push, queue.key.fifo)))
        except LooselyError as exc:
            log.warning("confirmation for %s refused by %s: %s", push.subscription_arn, push.endpoint, exc)
            plan.failed += 1

    # ---- a topic's message ----

    async def _topic_message(self, publication: Publication, message: PublishedMessage, view: _TopicView) -> _Plan:
        plan = _Plan()
        topic = view.topic
        if topic is None:
            log.info("topic %s was deleted; message %s dropped", message.topic_arn, message.message_id)
            return plan
        fields = _Fields(message)
        sequence = sequence_number(publication.sequence) if message.topic_arn.endswith(".fifo") else None
        subscribers = view.subscribers
        if message.replay_subscription is not None:  # a replay: its subscriber only, with the original number
            subscribers = [s for s in subscribers if s.subscription.arn == message.replay_subscription]
            sequence = message.sequence_number or sequence
        sends: _QueueSends | None = None  # made for the first SQS subscriber
        share = self.loop_share
        for subscriber in subscribers:
            subscription = subscriber.subscription
            if not subscription.confirmed:
                continue
            if not _matches(subscriber, fields):
                plan.filtered_out += 1
                continue
            protocol = subscription.protocol
            if protocol == "sqs":
                if sends is None:
                    version = topic[0].attributes.get("SignatureVersion") or "1"
                    sends = _QueueSends(self._renderer.sqs_requests(message, version, sequence))
                if not self._to_standard_queue(subscription, sends, plan):
                    await self._to_queue(message, subscriber, sends, plan)
            elif protocol in PUSH_PROTOCOLS:
                plan.deliveries.append(self._push(message, subscriber, topic))
            else:
                log.debug("no delivery for protocol %s (%s)", protocol, subscription.arn)
            if share.due():
                await share.checkpoint()
        return plan

    def _push(self, message: PublishedMessage, subscriber: Subscriber, topic: tuple[Topic, int]) -> NewDelivery:
        sub = subscriber.subscription
        content_type = None
        if sub.protocol in ("http", "https"):
            content_type = self._directory.delivery_policy(subscriber, topic).content_type
        push = self._renderer.push_notification(message, sub, topic[0].attributes, content_type)
        return self._delivery(sub.arn, push)

    def _to_standard_queue(self, sub: Subscription, sends: _QueueSends, plan: _Plan) -> bool:
        """`_to_queue` without awaiting, for the common case: a standard queue known to exist that takes the
        message. False when it is not that case (nothing was planned): `_to_queue` then does it all."""
        queue = self._queues.known(sub.endpoint, self._claimed_at)
        if queue is UNKNOWN or queue is None or queue.key.fifo:
            return False
        try:
            plan.queue_messages.append(self._build_standard(queue, sub, sends))
        except LooselyError:  # refused: `_to_queue` meets the refusal again and deals with it
            return False
        return True

    def _build_standard(self, queue: QueueRecord, sub: Subscription, sends: _QueueSends) -> tuple[int, NewMessage]:
        """The message for a standard queue, built from what the publication's bodies share."""
        requests = sends.requests
        parts = requests.body_parts(sub)
        return self._queues.build_shared(
            queue, sends.shared(parts), parts[1], lambda: requests.request(sub, False, parts)
        )

    async def _to_queue(
        self, message: PublishedMessage, subscriber: Subscriber, sends: _QueueSends, plan: _Plan
    ) -> None:
        sub = subscriber.subscription
        queues = self._queues
        queue = queues.known(sub.endpoint, self._claimed_at)
        if queue is UNKNOWN:
            queue = await queues.get(sub.endpoint, self._claimed_at)
        requests = sends.requests
        if queue is None:
            request = requests.request(sub, False)
            await self._client_error(plan, subscriber, request, message, "EndpointNotFound", "queue does not exist")
            return
        fifo = queue.key.fifo
        try:
            if fifo:
                plan.queue_messages.append(queues.build(queue, requests.request(sub, True)))
            else:
                plan.queue_messages.append(self._build_standard(queue, sub, sends))
        except LooselyError as exc:
            request = requests.request(sub, fifo)
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
            plan.dead_lettered += 1
            log.info("message %s for %s dead-lettered: %s", message.message_id, arn, error)
            return
        plan.failed += 1
        log.warning("message %s for %s failed: %s", message.message_id, arn, error)

    def _delivery(self, subscription_arn: str, push: PushDelivery) -> NewDelivery:
        return NewDelivery(
            subscription_arn=subscription_arn, payload=push.to_json(), next_attempt_ms=self._clock.now_ms()
        )


class _QueueSends:
    """One publication's messages to SQS queues: its requests, and the bodies its subscribers share."""

    __slots__ = ("_shared", "requests")

    def __init__(self, requests: SqsRequests) -> None:
        self.requests = requests
        self._shared: dict[tuple[str, str], SharedBody] = {}

    def shared(self, parts: tuple[str, str, str]) -> SharedBody:
        """What the bodies that share ``parts``' prefix and suffix (the envelope's, or the raw text) have in common."""
        key = (parts[0], parts[2])
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = SharedBody(parts[0], parts[2])
        return shared


class _Retirer:
    """Retires planned chunks one at a time, each while the next is being planned.

    One store transaction per chunk (about ``fanout_rows`` rows), not per publication, so a queue
    gets one insert per chunk; at most one in flight, so fan-out never holds more than one chunk's
    writes in front of the requests' own. After a chunk fails, later publications of its FIFO topics
    wait for their lease to end (they must not overtake the failed ones); the others go on.
    """

    def __init__(self, fanout: FanOut, payloads: Mapping[int, PublishedMessage | PushDelivery | None]) -> None:
        self._fanout = fanout
        self._payloads = payloads
        self._writing: asyncio.Task[None] | None = None
        self.failed_topics: set[str] = set()

    async def submit(self, chunk: list[tuple[Publication, _Plan]]) -> None:
        """Start retiring ``chunk`` once the chunk before it is done (and fan-out's turn at the store has come)."""
        await self._settle()
        chunk = [(p, plan) for p, plan in chunk if p.topic_arn not in self.failed_topics]
        if chunk:
            await self._fanout.store_turn()
            self._fanout.writing(chunk)
            self._writing = asyncio.create_task(self._retire(chunk))

    async def finish(self) -> None:
        """Wait for the last chunk."""
        await self._settle()

    def abandon(self) -> None:
        """Stop waiting for a chunk in flight (fan-out was cancelled); its publications stay leased."""
        if self._writing is not None:
            self._writing.cancel()
            self._writing = None

    async def _settle(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing
            self._fanout.loop_share.resume()

    async def _retire(self, chunk: list[tuple[Publication, _Plan]]) -> None:
        share = self._fanout.loop_share
        started = share.now()
        retired = await self._fanout.retire(chunk, self._payloads)
        self._fanout.used_store(started, share.now())
        if not retired:
            self.failed_topics.update(p.topic_arn for p, _ in chunk if p.topic_arn.endswith(".fifo"))


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
