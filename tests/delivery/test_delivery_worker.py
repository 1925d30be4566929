"""The delivery worker over the real store: retry schedules on a fake clock, dead letters, pacing, shutdown."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from delivery_support import SCOPE, Stack, until

from loosely.core.topics.models import PushDelivery
from loosely.delivery.sqs import QueueDirectory
from loosely.delivery.transports.base import Attempt

SHORT_POLICY = json.dumps(
    {"healthyRetryPolicy": {"minDelayTarget": 2, "maxDelayTarget": 2, "numRetries": 2, "numNoDelayRetries": 0}}
)


async def due(stack: Stack) -> int:
    """Deliver whatever is due now; return how many attempts were made."""
    return await stack.deliver()


async def http_topic(stack: Stack, endpoint: str, **attributes: str) -> tuple[str, str]:
    topic = await stack.topic("t-" + endpoint.rsplit("/", 1)[-1])
    sub = await stack.subscribe(topic, "https", endpoint, **attributes)
    await stack.fan_out()
    await due(stack)  # the confirmation
    stack.transport.sent.clear()
    return topic, sub


async def test_delivered_once_and_finished(stack: Stack) -> None:
    topic, _ = await http_topic(stack, "https://hooks.test/ok")
    await stack.publish(topic, "hello")
    await stack.fan_out()
    assert await due(stack) == 1
    stack.clock.advance(3_600_000)
    assert await due(stack) == 0
    assert len(stack.sent_to("https://hooks.test/ok")) == 1
    assert stack.stats.delivered >= 1


async def test_default_http_policy_retries_three_times_20_seconds_apart(stack: Stack) -> None:
    endpoint = "https://hooks.test/down"
    topic, _ = await http_topic(stack, endpoint)
    stack.transport.script[endpoint] = [Attempt.retry("HTTP 503")] * 10
    await stack.publish(topic, "hello")
    await stack.fan_out()

    attempts_at: list[int] = []
    start = stack.clock.now_ms()
    for _ in range(100):
        if await due(stack):
            attempts_at.append(stack.clock.now_ms() - start)
        stack.clock.advance(1_000)
    assert attempts_at == [0, 20_000, 40_000, 60_000]
    assert stack.stats.retried == 3
    assert stack.stats.failed == 1


async def test_exhausted_delivery_goes_to_the_subscription_dead_letter_queue(stack: Stack) -> None:
    endpoint = "https://hooks.test/broken"
    dlq = await stack.queue("push-dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq.key.arn})
    topic, _ = await http_topic(stack, endpoint, DeliveryPolicy=SHORT_POLICY, RedrivePolicy=redrive)
    stack.transport.script[endpoint] = [Attempt.retry("HTTP 500")] * 10
    message_id = await stack.publish(topic, "important")
    await stack.fan_out()
    for _ in range(10):
        await due(stack)
        stack.clock.advance(1_000)

    assert len(stack.sent_to(endpoint)) == 3  # the first attempt and two retries
    [dead] = await stack.receive_all(dlq)
    assert json.loads(dead.body)["MessageId"] == message_id
    assert dead.message_attributes["ErrorMessage"].string_value == "HTTP 500"
    assert stack.stats.dead_lettered == 1


async def exhaust_with_a_stale_dead_letter_queue(stack: Stack, recreate: bool) -> tuple[str, str]:
    """An HTTP delivery that runs out of retries while the worker's record of its DLQ is stale."""
    endpoint = "https://hooks.test/stale-dlq"
    dlq = await stack.queue("stale-dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq.key.arn})
    topic, _ = await http_topic(stack, endpoint, DeliveryPolicy=SHORT_POLICY, RedrivePolicy=redrive)
    stack.transport.script[endpoint] = [Attempt.retry("HTTP 500")] * 10
    cached = QueueDirectory(stack.queues, ttl_s=3600.0)
    assert await cached.get(dlq.key.arn) == dlq  # the worker remembers the DLQ as it was ...
    stack.worker._queues = cached
    await stack.queues.delete_queue(dlq.key)  # ... then it is deleted (and perhaps created again)
    if recreate:
        await stack.queue("stale-dlq")
    message_id = await stack.publish(topic, "important")
    await stack.fan_out()
    for _ in range(10):
        await due(stack)
        stack.clock.advance(1_000)
    return message_id, dlq.key.arn


async def test_exhausted_delivery_reaches_a_dead_letter_queue_created_again_under_its_name(stack: Stack) -> None:
    message_id, _ = await exhaust_with_a_stale_dead_letter_queue(stack, recreate=True)

    [dead] = await stack.receive_all(await stack.queue("stale-dlq"))  # CreateQueue returns the existing queue
    assert json.loads(dead.body)["MessageId"] == message_id
    assert (stack.stats.dead_lettered, stack.stats.failed) == (1, 0)


async def test_exhausted_delivery_whose_dead_letter_queue_was_deleted_is_counted_failed(stack: Stack) -> None:
    await exhaust_with_a_stale_dead_letter_queue(stack, recreate=False)

    assert (stack.stats.dead_lettered, stack.stats.failed) == (0, 1)
    assert await due(stack) == 0


async def test_client_error_is_not_retried(stack: Stack) -> None:
    endpoint = "https://hooks.test/gone"
    dlq = await stack.queue("reject-dlq")
    topic, _ = await http_topic(stack, endpoint, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq.key.arn}))
    stack.transport.script[endpoint] = [Attempt.rejected("HTTP 404")]
    await stack.publish(topic, "hello")
    await stack.fan_out()
    await due(stack)
    stack.clock.advance(3_600_000)
    await due(stack)
    assert len(stack.sent_to(endpoint)) == 1
    assert len(await stack.receive_all(dlq)) == 1


async def test_notification_for_a_deleted_subscription_is_dropped(stack: Stack) -> None:
    endpoint = "https://hooks.test/left"
    topic, sub = await http_topic(stack, endpoint)
    stack.transport.script[endpoint] = [Attempt.retry("HTTP 503")]
    await stack.publish(topic, "hello")
    await stack.fan_out()
    await due(stack)
    await stack.topics.unsubscribe(SCOPE, sub)
    stack.clock.advance(20_000)
    await stack.fan_out()  # the unsubscribe confirmation
    await due(stack)
    notifications = [p for p in stack.sent_to(endpoint) if p.kind == "notification"]
    assert len(notifications) == 1  # the retry was dropped, not sent


async def test_email_and_sms_use_the_fixed_customer_policy(stack: Stack) -> None:
    topic = await stack.topic("texts")
    await stack.subscribe(topic, "sms", "+15555550199")
    stack.transport.script["+15555550199"] = [Attempt.retry("provider down")] * 3
    await stack.publish(topic, "hello")
    await stack.fan_out()
    await due(stack)
    stack.clock.advance(9_000)
    assert await due(stack) == 0
    stack.clock.advance(1_000)
    assert await due(stack) == 1  # 10 s: the first minimum-delay retry


async def test_throttle_hands_back_what_cannot_go_now_without_spending_attempts(stack: Stack) -> None:
    endpoint = "https://hooks.test/slowly"
    policy = json.dumps({"throttlePolicy": {"maxReceivesPerSecond": 1}})
    topic, _ = await http_topic(stack, endpoint, DeliveryPolicy=policy)
    stack.worker.options = stack.worker.options.__class__(max_throttle_wait_s=0.0, defer_ms=1_000)
    stack.monotonic.now += 1.0  # past the confirmation's turn
    for i in range(3):
        await stack.publish(topic, f"m{i}")
    await stack.fan_out()

    await due(stack)
    assert len(stack.sent_to(endpoint)) == 1
    assert stack.stats.deferred == 2
    for _ in range(2):
        stack.clock.advance(1_000)
        stack.monotonic.now += 1.0
        await due(stack)
    assert len(stack.sent_to(endpoint)) == 3
    assert stack.stats.retried == 0


class BlockingTransport:
    """Endpoint ``slow`` hangs until released; every other endpoint answers at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sent: list[str] = []

    def lane(self, push: PushDelivery) -> str:
        return push.endpoint

    async def send(self, push: PushDelivery) -> Attempt:
        if push.endpoint.endswith("/slow"):
            await self.release.wait()
        self.sent.append(push.endpoint)
        return Attempt.delivered()

    async def aclose(self) -> None:
        return None


async def test_a_hanging_endpoint_does_not_hold_up_others(stack: Stack) -> None:
    slow_topic, _ = await http_topic(stack, "https://hooks.test/slow")
    fast_topic, _ = await http_topic(stack, "https://hooks.test/fast")
    blocking = BlockingTransport()
    stack.worker._transports = {"https": blocking}
    for i in range(50):
        await stack.publish(slow_topic, f"s{i}")
    for i in range(5):
        await stack.publish(fast_topic, f"f{i}")
    await stack.fan_out()

    await stack.worker.dispatch_once()
    await stack.worker.dispatch_once()
    await until(lambda: blocking.sent.count("https://hooks.test/fast") == 5)
    assert blocking.sent.count("https://hooks.test/fast") == 5
    backlog = stack.worker.options.endpoint_backlog
    await until(lambda: stack.worker.in_flight <= backlog)  # the hand-backs beyond the slow lane's backlog
    assert stack.worker.in_flight == backlog  # the slow endpoint holds exactly its backlog, no more
    assert stack.stats.deferred >= 50 - backlog
    blocking.release.set()
    await stack.worker.drain()
    for _ in range(5):
        stack.clock.advance(1_000)
        await due(stack)
    assert blocking.sent.count("https://hooks.test/slow") == 50


async def test_stop_hands_back_attempts_in_progress_without_counting_them(stack: Stack) -> None:
    topic, _ = await http_topic(stack, "https://hooks.test/slow")
    blocking = BlockingTransport()
    stack.worker._transports = {"https": blocking}
    stack.worker.options = stack.worker.options.__class__(shutdown_grace_s=0.05)
    await stack.publish(topic, "stuck")
    await stack.fan_out()
    await stack.worker.dispatch_once()
    await asyncio.sleep(0.01)
    assert stack.worker.in_flight == 1
    await stack.worker.stop()
    assert stack.worker.in_flight == 0

    [again] = await stack.store.claim_deliveries("other", stack.clock.now_ms(), 60_000, 10)
    assert again.attempts == 0


async def test_a_busy_endpoint_gets_claims_sized_to_its_room_and_short_hand_backs(stack: Stack) -> None:
    topic, _ = await http_topic(stack, "https://hooks.test/slow")
    blocking = BlockingTransport()
    stack.worker._transports = {"https": blocking}
    backlog = stack.worker.options.endpoint_backlog
    for i in range(backlog + 10):
        await stack.publish(topic, f"m{i}")
    await stack.fan_out()

    claimed, _ = await stack.worker.dispatch_once()
    assert claimed == backlog + 10
    await until(lambda: stack.stats.deferred == 10 and stack.worker.in_flight == backlog)
    assert stack.stats.deferred == 10  # the lane holds its backlog; the rest went back to the store
    assert stack.worker.in_flight == backlog
    # Not due yet: handed back for busy_defer_ms (short), not for the throttle's defer_ms.
    assert await stack.worker.dispatch_once() == (0, 8)  # sized to the lanes' room (none) plus a few for others
    stack.clock.advance(stack.worker.options.busy_defer_ms)
    claimed, room = await stack.worker.dispatch_once()
    assert (claimed, room) == (8, 8)  # the deferred ones are due again after the short delay
    blocking.release.set()
    await stack.worker.drain()
    for _ in range(5):
        stack.clock.advance(1_000)
        await due(stack)
    assert blocking.sent.count("https://hooks.test/slow") == backlog + 10


async def test_a_burst_for_one_endpoint_is_claimed_by_its_backlog_not_handed_back_over_and_over(stack: Stack) -> None:
    topic, _ = await http_topic(stack, "https://hooks.test/burst")
    stack.worker.options = replace(stack.worker.options, lane_wait_ms=0)  # no waiting: every overflow goes back
    backlog = stack.worker.options.endpoint_backlog
    total = 4 * backlog
    for i in range(total):
        await stack.publish(topic, f"m{i}")
    await stack.fan_out()

    for _ in range(10):
        await stack.worker.run_until_idle()
        stack.clock.advance(stack.worker.options.defer_ms)

    assert len(stack.sent_to("https://hooks.test/burst")) == total
    claim_batch = stack.worker.options.claim_batch
    assert stack.stats.deferred == max(claim_batch - backlog, 0)  # the first claim's overflow only


async def test_a_burst_for_a_fast_endpoint_waits_for_places_instead_of_going_back(stack: Stack) -> None:
    topic, _ = await http_topic(stack, "https://hooks.test/fast")
    stack.worker.options = replace(stack.worker.options, lane_wait_ms=60_000)  # the places always come first
    total = 4 * stack.worker.options.endpoint_backlog
    for i in range(total):
        await stack.publish(topic, f"m{i}")
    await stack.fan_out()

    await stack.worker.run_until_idle()

    assert len(stack.sent_to("https://hooks.test/fast")) == total
    assert stack.stats.deferred == 0
