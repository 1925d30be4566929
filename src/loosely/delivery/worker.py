"""The delivery worker: claims due push deliveries, sends them, and records each outcome by its policy.

For every claimed delivery (`Delivery`, payload a rendered `PushDelivery`):

1. look up the subscription (a notification for a subscription deleted since is dropped) and its
   policy: HTTP/S the effective DeliveryPolicy of topic and subscription, other protocols SNS's
   fixed policies (`retry_policy_for_protocol`);
2. take a place in its endpoint's lane (bounded concurrency and backlog; a full lane's places are
   waited for up to ``lane_wait_ms``) and its subscription's throttle turn; when either is not
   available soon, hand the delivery back untried
   (``release_delivery``) so it never occupies this node's slots while others wait;
3. send it through the protocol's transport;
4. record: delivered → ``finish_deliveries(DELIVERED)`` (the successes of one turn of the event loop
   together, each attempt returning once they are recorded); a server-side failure with retries left →
   ``retry_delivery`` at the policy's next (jittered) delay; a client-side failure, or retries
   exhausted (or an HTTP/S delivery past its one-hour lifetime) → the subscription's dead-letter
   queue (``finish_delivery(DEAD_LETTERED, dead_letter=...)``, atomically), else ``FAILED``,
   counted and logged.

Attempts run as tasks, many at once, so a slow endpoint only ever delays its own lane. At shutdown,
attempts in progress get a grace period; the rest are cancelled and handed back at once, so a
restart resumes them without waiting for their leases to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping

from loosely.core.clock import Clock
from loosely.core.documents import Delivery, DeliveryState
from loosely.core.errors import QueuesGone
from loosely.core.frozen import record
from loosely.core.ports import OutboxStore
from loosely.core.queues.models import SendRequest
from loosely.core.topics.delivery_policy import RandomSource, RetryPolicy, next_delay_s, retry_policy_for_protocol
from loosely.core.topics.models import PUSH_NOTIFICATION, PushDelivery
from loosely.delivery.coalesce import Coalescer
from loosely.delivery.directory import Directory, Subscriber
from loosely.delivery.options import DeliveryOptions, DeliveryStats
from loosely.delivery.pacing import Lane, Lanes, Throttle
from loosely.delivery.sqs import QueueDirectory
from loosely.delivery.transports.base import Attempt, AttemptStatus, Transport

__all__ = ["DeliveryWorker"]

log = logging.getLogger(__name__)

_HTTP = frozenset({"http", "https"})
_PAUSE_AFTER_ERROR_S = 1.0
_NEW_LANE_ROOM = 8
"""While some endpoint is at its backlog, claims are sized to the room of the lanes in use plus this,
so deliveries for other endpoints still get claimed, and few are claimed only to be handed back."""


@record
class _Target:
    """What an attempt needs to know about its subscription."""

    retry: RetryPolicy
    rate: int | None  # maxReceivesPerSecond, HTTP/S only
    dead_letter_arn: str | None
    gone: bool = False  # the subscription was deleted: drop the notification


class DeliveryWorker:
    """Runs push deliveries; `run` loops until cancelled, `stop` winds down cleanly."""

    def __init__(
        self,
        outbox: OutboxStore,
        directory: Directory,
        queues: QueueDirectory,
        transports: Mapping[str, Transport],
        clock: Clock,
        owner: str,
        options: DeliveryOptions | None = None,
        stats: DeliveryStats | None = None,
        rng: RandomSource | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self._outbox = outbox
        self._directory = directory
        self._queues = queues
        self._transports = transports
        self._clock = clock
        self._owner = owner
        self.options = options or DeliveryOptions()
        self.stats = stats or DeliveryStats()
        self._rng = rng if rng is not None else random.Random()
        self._throttle = throttle or Throttle()
        self._lanes = Lanes(self.options.endpoint_concurrency, self.options.endpoint_backlog)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        # Deliveries that succeeded in the same turn of the event loop are recorded in one store call.
        self._delivered: Coalescer[int] = Coalescer(self._finish_delivered)
        self._lane_was_full = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # ---- the loop ----

    async def run(self) -> None:
        """Claim and dispatch until cancelled."""
        failing = False
        while True:
            try:
                claimed, room = await self.dispatch_once()
            except Exception:
                if not failing:
                    log.exception("claiming deliveries failed; retrying")
                failing = True
                await asyncio.sleep(_PAUSE_AFTER_ERROR_S)
                continue
            if failing:
                log.info("claiming deliveries recovered")
                failing = False
            if room == 0:
                await asyncio.wait(list(self._tasks.values()), return_when=asyncio.FIRST_COMPLETED)
            elif self._lane_was_full:
                # An endpoint is busy: claim again once its lane has drained to half, not per freed place.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.options.busy_defer_ms / 1000):
                        await self._lanes.drained.wait()
            elif claimed < room:
                await self._outbox.wait_for_outbox(self.options.idle_poll_s)

    async def dispatch_once(self) -> tuple[int, int]:
        """Claim what is due (as much as there is room for) and start the attempts; return (claimed, room)."""
        room = min(self.options.max_in_flight - len(self._tasks), self.options.claim_batch)
        if self._lane_was_full:
            # An endpoint turned deliveries away lately: claim about what the lanes can take (a drained,
            # forgotten lane counts as one empty backlog), so a burst due for one endpoint is not claimed
            # whole only to be handed back, claim after claim, until it is gone.
            if self._lanes.busy():
                room = min(room, self._lanes.room() + _NEW_LANE_ROOM)
            else:
                room = min(room, max(self._lanes.room(), self.options.endpoint_backlog))
        if room <= 0:
            return 0, 0
        self._lanes.drained.clear()
        refusals = self._lanes.refusals
        now = self._clock.now_ms()
        deliveries = await self._outbox.claim_deliveries(self._owner, now, self.options.lease_ms, room)
        for delivery in deliveries:
            self._start(delivery)
        if deliveries:
            await asyncio.sleep(0)  # the attempts take their lanes now, so the loop knows which were full
        if len(deliveries) < room and self._lanes.refusals == refusals and not self._lanes.busy():
            self._lane_was_full = False  # the burst is over: full-size claims again
        return len(deliveries), room

    async def drain(self) -> None:
        """Wait until every started attempt has been recorded (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def run_until_idle(self) -> int:
        """Claim and deliver until nothing is due now; return how many deliveries were claimed (tests)."""
        total = 0
        while True:
            claimed, _ = await self.dispatch_once()
            await self.drain()
            total += claimed
            if claimed == 0:
                return total

    async def stop(self) -> None:
        """Let attempts in progress finish within the grace period; cancel and hand back the others."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=self.options.shutdown_grace_s)
        pending = list(self._tasks.items())
        for _, task in pending:
            task.cancel()
        await asyncio.gather(*(task for _, task in pending), return_exceptions=True)
        now = self._clock.now_ms()
        for delivery_id, _ in pending:
            with contextlib.suppress(Exception):
                await self._outbox.release_delivery(delivery_id, now)

    # ---- one delivery ----

    def _start(self, delivery: Delivery) -> None:
        if delivery.id in self._tasks:
            return  # its lease ran out while our attempt still runs; the claim just renewed it for us
        task = asyncio.create_task(self._handle(delivery), name=f"loosely-delivery-{delivery.id}")
        self._tasks[delivery.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(delivery.id, None))

    async def _handle(self, delivery: Delivery) -> None:
        try:
            push = PushDelivery.from_json(delivery.payload)
        except (ValueError, TypeError, KeyError):
            await self._give_up(delivery, None, None, "unreadable delivery payload")
            return
        transport = self._transports.get(push.protocol)
        if transport is None:
            await self._give_up(delivery, push, None, f"no transport for protocol {push.protocol}")
            return
        lane_key = f"{push.protocol}|{transport.lane(push)}"
        lane = self._lanes.take(lane_key)
        if lane is None:
            self._lane_was_full = True
            lane = await self._lanes.wait_for_place(lane_key, self.options.lane_wait_ms / 1000)
        if lane is None:
            await self._defer(delivery, self._busy_delay_ms(lane_key))
            return
        try:
            await self._attempt(delivery, push, transport, lane)
        finally:
            self._lanes.give_back(lane_key, lane)

    async def _attempt(self, delivery: Delivery, push: PushDelivery, transport: Transport, lane: Lane) -> None:
        target = await self._target(push)
        if target.gone:
            await self._finish(delivery, DeliveryState.FAILED, "the subscription was deleted")
            return
        if target.rate is not None:
            wait = self._throttle.reserve(delivery.subscription_arn, target.rate, self.options.max_throttle_wait_s)
            if wait is None:
                await self._defer(delivery, self.options.defer_ms)
                return
            if wait > 0:
                await asyncio.sleep(wait)
        async with lane.semaphore:
            try:
                attempt = await transport.send(push)
            except Exception as exc:  # a transport bug must not lose the delivery
                log.exception("transport %s failed on delivery %s", push.protocol, delivery.id)
                attempt = Attempt.retry(f"{type(exc).__name__}: {exc}")
        await self._record(delivery, push, target, attempt)

    async def _record(self, delivery: Delivery, push: PushDelivery, target: _Target, attempt: Attempt) -> None:
        if attempt.status is AttemptStatus.DELIVERED:
            await self._finish(delivery, DeliveryState.DELIVERED, None)
            self.stats.delivered += 1
            return
        error = attempt.error or "failed"
        if attempt.status is AttemptStatus.RETRY:
            next_ms = self._next_attempt_ms(delivery, target.retry)
            if next_ms is not None:
                await self._outbox.retry_delivery(delivery.id, next_ms, error)
                self.stats.retried += 1
                log.debug("delivery %s to %s failed (%s); retry at %d", delivery.id, push.endpoint, error, next_ms)
                return
        await self._give_up(delivery, push, target, error)

    def _next_attempt_ms(self, delivery: Delivery, policy: RetryPolicy) -> int | None:
        """When to try again after this failure, or None when the policy is spent."""
        delay_s = next_delay_s(policy, delivery.attempts + 1, self._rng)
        if delay_s is None:
            return None
        now = self._clock.now_ms()
        next_ms = now + round(delay_s * 1000)
        if policy.max_total_s is not None and next_ms - delivery.created_ms > policy.max_total_s * 1000:
            return None
        return next_ms

    async def _give_up(self, delivery: Delivery, push: PushDelivery | None, target: _Target | None, error: str) -> None:
        """No more attempts: to the dead-letter queue if the subscription has one, else FAILED."""
        arn = target.dead_letter_arn if target is not None else None
        if push is not None and arn is not None and await self._dead_letter(delivery, push, arn, error):
            self.stats.dead_lettered += 1
            log.info("delivery %s to %s dead-lettered: %s", delivery.id, push.endpoint, error)
            return
        await self._finish(delivery, DeliveryState.FAILED, error)
        self.stats.failed += 1
        endpoint = push.endpoint if push is not None else "?"
        log.warning(
            "delivery %s of %s to %s failed after %d attempt(s): %s",
            delivery.id,
            push.message_id if push is not None else "?",
            endpoint,
            delivery.attempts + 1,
            error,
        )

    async def _dead_letter(self, delivery: Delivery, push: PushDelivery, arn: str, error: str) -> bool:
        """Move the delivery's message to the dead-letter queue ``arn``; False when there is none to take it.

        The queue's record may be cached from before it was deleted (and perhaps created again under
        its name): the store then refuses (`QueuesGone`), and the queue is looked up once more.
        """
        request = SendRequest(body=push.body)
        code = error.split(":", 1)[0][:64]
        missing_since = None
        for _ in range(2):
            dead = await self._queues.dead_letter(arn, request, code, error, push.message_id, missing_since)
            if dead is None:
                return False
            try:
                await self._outbox.finish_delivery(
                    delivery.id, DeliveryState.DEAD_LETTERED, self._clock.now_ms(), error, dead_letter=dead
                )
                return True
            except QueuesGone as gone:
                self._queues.forget(gone.queue_ids)
                missing_since = self._queues.now()
        return False

    async def _finish(self, delivery: Delivery, state: DeliveryState, error: str | None) -> None:
        if state is DeliveryState.DELIVERED:
            await self._delivered.add(delivery.id)
            return
        await self._outbox.finish_delivery(delivery.id, state, self._clock.now_ms(), error)

    async def _finish_delivered(self, delivery_ids: list[int]) -> None:
        await self._outbox.finish_deliveries(delivery_ids, DeliveryState.DELIVERED, self._clock.now_ms())

    def _busy_delay_ms(self, lane_key: str) -> int:
        """Short while the endpoint keeps up; longer (up to ``defer_ms``) the more its lane has turned away
        since it last drained, so a hanging endpoint's backlog is not claimed and handed back over and over."""
        backlog = max(self.options.endpoint_backlog, 1)
        rounds = self._lanes.refused(lane_key) // backlog
        return min(self.options.busy_defer_ms * (1 + rounds), max(self.options.defer_ms, self.options.busy_defer_ms))

    async def _defer(self, delivery: Delivery, delay_ms: int) -> None:
        await self._outbox.release_delivery(delivery.id, self._clock.now_ms() + delay_ms)
        self.stats.deferred += 1

    # ---- policy lookup ----

    async def _target(self, push: PushDelivery) -> _Target:
        subscriber: Subscriber | None = None
        arn = push.subscription_arn
        if arn is not None and _is_subscription_arn(arn):
            subscriber = await self._directory.recent_subscriber(arn)
            if subscriber is None and push.kind == PUSH_NOTIFICATION:
                return _Target(retry_policy_for_protocol(push.protocol), None, None, gone=True)
        if subscriber is None:
            return _Target(retry_policy_for_protocol(push.protocol), None, None)
        effective = None
        if push.protocol in _HTTP:
            topic = await self._directory.recent_topic(subscriber.subscription.topic_arn)
            effective = self._directory.delivery_policy(subscriber, topic)
        retry = retry_policy_for_protocol(push.protocol, effective)
        rate = effective.max_receives_per_second if effective is not None else None
        dead_letter = subscriber.dead_letter_arn if push.kind == PUSH_NOTIFICATION else None
        return _Target(retry, rate, dead_letter)


def _is_subscription_arn(arn: str) -> bool:
    parts = arn.split(":")
    return len(parts) == 7 and parts[0] == "arn" and parts[2] == "sns"
