"""Fan-out over the real SQLite store: SQS messages, push deliveries, filters, FIFO, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from typing import Any

from delivery_support import ACCOUNT, PUBLIC_URL, SCOPE, Stack, until

from loosely.core.documents import Publication
from loosely.core.queues.models import MessageAttributeValue, ReceiveRequest, SendRequest
from loosely.core.topics.models import PushDelivery
from loosely.delivery.fanout import FanOut


def body(message: Any) -> dict[str, Any]:
    value = json.loads(message.body)
    assert isinstance(value, dict)
    return value


async def test_sqs_subscriber_gets_a_signed_notification(stack: Stack) -> None:
    queue = await stack.queue("inbox")
    topic = await stack.topic("orders")
    sub = await stack.subscribe(topic, "sqs", queue.key.arn)
    message_id = await stack.publish(topic, "hello", subject="Hi", attributes={"colour": ("String", "blue")})

    assert await stack.fan_out() == 1
    [received] = await stack.receive_all(queue)
    envelope = body(received)
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == message_id
    assert envelope["Message"] == "hello"
    assert envelope["Subject"] == "Hi"
    assert envelope["UnsubscribeURL"] == f"{PUBLIC_URL}/?Action=Unsubscribe&SubscriptionArn={sub}"
    assert envelope["MessageAttributes"] == {"colour": {"Type": "String", "Value": "blue"}}
    assert received.attributes["SenderId"] == "AIDAIT2UOQQY3AUEKVGXU"
    assert not received.message_attributes
    assert stack.stats.sqs_messages == 1


async def test_raw_sqs_delivery_matches_what_send_message_stores(stack: Stack) -> None:
    queue = await stack.queue("raw")
    reference = await stack.queue("reference")
    topic = await stack.topic("events")
    await stack.subscribe(topic, "sqs", queue.key.arn, RawMessageDelivery="true")
    await stack.publish(topic, "payload", attributes={"n": ("Number", "42"), "s": ("String.Array", '["a"]')})
    await stack.fan_out()
    attributes = {
        "n": MessageAttributeValue("Number", string_value="42"),
        "s": MessageAttributeValue("String.Array", string_value='["a"]'),
    }
    sent = await stack.queues.send_message(reference.key, SendRequest("payload", message_attributes=attributes), "x")

    [received] = await stack.receive_all(queue)
    assert received.body == "payload"
    assert received.md5_of_body == sent.md5_of_body
    assert received.md5_of_message_attributes == sent.md5_of_message_attributes
    assert received.message_attributes == attributes


async def test_message_structure_json_gives_each_protocol_its_text(stack: Stack) -> None:
    queue = await stack.queue("structured")
    topic = await stack.topic("structured")
    await stack.subscribe(topic, "sqs", queue.key.arn, RawMessageDelivery="true")
    await stack.subscribe(topic, "https", "https://hooks.test/a")
    await stack.subscribe(topic, "sms", "+15555550100")
    texts = {"default": "plain", "sqs": "for queues", "sms": "short"}
    await stack.publish(topic, json.dumps(texts), message_structure="json")
    await stack.fan_out()
    await stack.deliver()

    assert [m.body for m in await stack.receive_all(queue)] == ["for queues"]
    [https] = [p for p in stack.sent_to("https://hooks.test/a") if p.kind == "notification"]
    assert json.loads(https.body)["Message"] == "plain"
    assert [p.body for p in stack.sent_to("+15555550100")] == ["short"]


async def test_filter_policies_on_attributes_and_body(stack: Stack) -> None:
    topic = await stack.topic("filtered")
    red = await stack.queue("red")
    big = await stack.queue("big")
    everything = await stack.queue("everything")
    await stack.subscribe(topic, "sqs", red.key.arn, FilterPolicy=json.dumps({"colour": ["red"]}))
    await stack.subscribe(
        topic,
        "sqs",
        big.key.arn,
        FilterPolicy=json.dumps({"order": {"total": [{"numeric": [">", 100]}]}}),
        FilterPolicyScope="MessageBody",
    )
    await stack.subscribe(topic, "sqs", everything.key.arn)

    await stack.publish(topic, json.dumps({"order": {"total": 500}}), attributes={"colour": ("String", "red")})
    await stack.publish(topic, json.dumps({"order": {"total": 5}}), attributes={"colour": ("String", "blue")})
    await stack.publish(topic, "not json", attributes={"colour": ("String", "red")})
    await stack.fan_out()

    assert len(await stack.receive_all(red)) == 2
    assert [json.loads(body(m)["Message"])["order"]["total"] for m in await stack.receive_all(big)] == [500]
    assert len(await stack.receive_all(everything)) == 3
    assert stack.stats.filtered_out == 3


async def test_pending_subscriptions_get_nothing(stack: Stack) -> None:
    topic = await stack.topic("pending")
    await stack.topics.subscribe(SCOPE, topic, "https", "https://hooks.test/pending", {})
    await stack.publish(topic, "hello")
    await stack.fan_out()
    await stack.deliver()
    kinds = [p.kind for p in stack.sent_to("https://hooks.test/pending")]
    assert kinds == ["subscription-confirmation"]  # the confirmation, never the notification


async def test_fan_out_to_many_queues_in_one_publication(stack: Stack) -> None:
    topic = await stack.topic("wide")
    queues = [await stack.queue(f"wide-{i}") for i in range(40)]
    for queue in queues:
        await stack.subscribe(topic, "sqs", queue.key.arn)
    message_id = await stack.publish(topic, "to all")
    assert await stack.fan_out() == 1
    for queue in queues:
        [received] = await stack.receive_all(queue)
        assert body(received)["MessageId"] == message_id


async def test_fifo_topic_to_fifo_queue_keeps_order_groups_and_dedup(stack: Stack) -> None:
    topic = await stack.topic("ledger.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
    fifo = await stack.queue("ledger.fifo", {"FifoQueue": "true"})
    standard = await stack.queue("ledger-copy")
    await stack.subscribe(topic, "sqs", fifo.key.arn, RawMessageDelivery="true")
    await stack.subscribe(topic, "sqs", standard.key.arn)
    for i in range(12):
        await stack.publish(topic, f"entry {i}", group_id=f"g{i % 2}")
    await stack.publish(topic, "entry 0", group_id="g0")  # a duplicate within the window: not fanned out
    await stack.fan_out()

    received = await stack.receive_all(fifo)
    by_group: dict[str, list[str]] = {}
    for message in received:
        by_group.setdefault(message.attributes["MessageGroupId"], []).append(message.body)
    assert by_group == {
        "g0": [f"entry {i}" for i in range(0, 12, 2)],
        "g1": [f"entry {i}" for i in range(1, 12, 2)],
    }
    assert all(len(m.attributes["MessageDeduplicationId"]) == 64 for m in received)
    copies = await stack.receive_all(standard)
    assert len(copies) == 12
    sequences = sorted(int(body(m)["SequenceNumber"]) for m in copies)
    assert len(set(sequences)) == 12


async def test_missing_queue_goes_to_the_dead_letter_queue_without_retry(stack: Stack) -> None:
    topic = await stack.topic("lost")
    dlq = await stack.queue("lost-dlq")
    gone = await stack.queue("gone")
    await stack.subscribe(topic, "sqs", gone.key.arn, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq.key.arn}))
    await stack.queues.delete_queue(gone.key)
    message_id = await stack.publish(topic, "nobody home")
    await stack.fan_out()

    [dead] = await stack.receive_all(dlq)
    assert body(dead)["MessageId"] == message_id
    assert dead.message_attributes["ErrorCode"].string_value == "EndpointNotFound"
    assert dead.message_attributes["RequestID"].string_value == message_id
    assert stack.stats.dead_lettered == 1
    assert await stack.store.claim_deliveries("x", stack.clock.now_ms() + 10**9, 1000, 10) == []


async def test_missing_queue_without_dead_letter_queue_is_counted_as_failed(stack: Stack) -> None:
    topic = await stack.topic("lost2")
    gone = await stack.queue("gone2")
    await stack.subscribe(topic, "sqs", gone.key.arn)
    await stack.queues.delete_queue(gone.key)
    await stack.publish(topic, "nobody home")
    assert await stack.fan_out() == 1
    assert stack.stats.failed == 1


async def test_confirmations_are_rendered_with_the_public_url(stack: Stack) -> None:
    topic = await stack.topic("confirm", {"SignatureVersion": "2"})
    arn = await stack.topics.subscribe(SCOPE, topic, "https", "https://hooks.test/c", {}, True)
    token = await stack.topics.pending_token(arn)
    await stack.fan_out()
    await stack.deliver()
    [push] = stack.sent_to("https://hooks.test/c")
    document = json.loads(push.body)
    assert document["Type"] == "SubscriptionConfirmation"
    assert document["SignatureVersion"] == "2"
    assert document["SubscribeURL"] == f"{PUBLIC_URL}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}"


async def test_unsubscribing_https_sends_an_unsubscribe_confirmation(stack: Stack) -> None:
    topic = await stack.topic("leaving")
    arn = await stack.subscribe(topic, "https", "https://hooks.test/bye")
    await stack.topics.unsubscribe(SCOPE, arn)
    await stack.fan_out()
    await stack.deliver()
    # attempts run concurrently: the two confirmations may go out in either order
    [push] = [p for p in stack.sent_to("https://hooks.test/bye") if p.kind == "unsubscribe-confirmation"]
    assert push.headers["x-amz-sns-subscription-arn"] == arn
    assert json.loads(push.body)["Type"] == "UnsubscribeConfirmation"


async def test_cross_account_sqs_confirmation_goes_into_the_queue(stack: Stack) -> None:
    topic = await stack.topic("shared")
    queue = await stack.queue("foreign")
    foreign_arn = queue.key.arn.replace(ACCOUNT, "210987654321")
    await stack.topics.subscribe(SCOPE, topic, "sqs", foreign_arn, {})
    await stack.fan_out()
    assert stack.stats.failed == 1  # that account's queue does not exist here
    assert await stack.receive_all(queue) == []


async def test_deleted_topic_drops_its_messages(stack: Stack) -> None:
    queue = await stack.queue("orphan")
    topic = await stack.topic("short-lived")
    await stack.subscribe(topic, "sqs", queue.key.arn)
    await stack.publish(topic, "late")
    await stack.topics.delete_topic(SCOPE, topic)
    assert await stack.fan_out() == 1
    assert await stack.receive_all(queue) == []


async def test_direct_sms_becomes_one_delivery(stack: Stack) -> None:
    from loosely.core.topics.values import PublishRequest

    await stack.topics.publish(SCOPE, PublishRequest(message="code 1234", phone_number="+15555550123"))
    await stack.fan_out()
    await stack.deliver()
    [push] = stack.sent_to("+15555550123")
    assert isinstance(push, PushDelivery)
    assert (push.protocol, push.body) == ("sms", "code 1234")


class _RecreatingOutbox:
    """The store, except that before the first chunk is completed a queue is deleted and created again.

    The chunk was planned with the old queue's record, so the store refuses it (`QueuesGone`) and
    fan-out plans it again: the situation of a cached record outliving its queue.
    """

    def __init__(self, stack: Stack, name: str) -> None:
        self._stack = stack
        self._name = name
        self.recreated = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack.store, name)

    async def complete_publications(self, results: Any, now_ms: int, dedup_window_ms: int) -> None:
        if not self.recreated:
            self.recreated = True
            old = await self._stack.queue(self._name)
            await self._stack.queues.delete_queue(old.key)
            await self._stack.queue(self._name)
        await self._stack.store.complete_publications(results, now_ms, dedup_window_ms)


async def test_a_chunk_planned_again_counts_its_filtered_failed_and_dead_lettered_subscribers_once(
    stack: Stack,
) -> None:
    topic = await stack.topic("replanned")
    moving = await stack.queue("moving")
    picky = await stack.queue("picky")
    dlq = await stack.queue("replanned-dlq")
    lost = await stack.queue("lost-for-good")
    lost_dead = await stack.queue("lost-with-dlq")
    await stack.subscribe(topic, "sqs", moving.key.arn)
    await stack.subscribe(topic, "sqs", picky.key.arn, FilterPolicy=json.dumps({"colour": ["red"]}))
    await stack.subscribe(topic, "sqs", lost.key.arn)
    redrive = json.dumps({"deadLetterTargetArn": dlq.key.arn})
    await stack.subscribe(topic, "sqs", lost_dead.key.arn, RedrivePolicy=redrive)
    await stack.queues.delete_queue(lost.key)
    await stack.queues.delete_queue(lost_dead.key)
    message_id = await stack.publish(topic, "once", attributes={"colour": ("String", "blue")})

    outbox = _RecreatingOutbox(stack, "moving")
    fanout = FanOut(
        outbox,  # type: ignore[arg-type]
        stack.fanout._directory,
        stack.fanout._queues,
        stack.fanout._renderer,
        stack.clock,
        "test",
        stack.fanout.options,
        stack.stats,
    )
    assert await fanout.run_once() == 1

    assert outbox.recreated
    [received] = await stack.receive_all(await stack.queue("moving"))
    assert body(received)["MessageId"] == message_id
    [dead] = await stack.receive_all(dlq)
    assert body(dead)["MessageId"] == message_id
    stats = stack.stats
    assert (stats.publications, stats.sqs_messages) == (1, 2)
    assert (stats.filtered_out, stats.failed, stats.dead_lettered) == (1, 1, 1)


class _StuckOutbox:
    """The store, except that completing publications never returns (a commit that hangs)."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.claims = 0
        self.completing = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack.store, name)

    async def claim_publications(self, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Publication]:
        claimed: list[Publication] = await self._stack.store.claim_publications(owner, now_ms, lease_ms, limit)
        self.claims += 1
        return claimed

    async def complete_publications(self, results: Any, now_ms: int, dedup_window_ms: int) -> None:
        self.completing.set()
        await asyncio.Event().wait()


async def test_a_stopped_fan_out_hands_back_what_it_claimed_and_did_not_start_writing(stack: Stack) -> None:
    queue = await stack.queue("stopping")
    topic = await stack.topic("stopping")
    await stack.subscribe(topic, "sqs", queue.key.arn)
    published = [await stack.publish(topic, f"m{i}") for i in range(10)]

    outbox = _StuckOutbox(stack)
    options = dataclasses.replace(stack.fanout.options, fanout_batch=4, fanout_rows=2, fanout_rows_yielding=2)
    fanout = FanOut(
        outbox,  # type: ignore[arg-type]
        stack.fanout._directory,
        stack.fanout._queues,
        stack.fanout._renderer,
        stack.clock,
        "stopping-node",
        options,
        stack.stats,
    )
    running = asyncio.create_task(fanout.run())
    # The first publication's chunk is being written; the rest of its batch is claimed, the next
    # batch claimed ahead.
    await asyncio.wait_for(outbox.completing.wait(), 30)
    await until(lambda: outbox.claims >= 2)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running

    # No time has passed: only what was handed back (or never claimed) can be claimed again.
    again = await stack.store.claim_publications("other-node", stack.clock.now_ms(), 30_000, 100)
    assert [p.message_id for p in again] == published[1:]


class _PublishingWhileWriting:
    """The store, but the first write of a fan-out publishes once more before it goes ahead."""

    def __init__(self, stack: Stack, topic: str) -> None:
        self._stack, self._topic = stack, topic
        self.published: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack.store, name)

    async def complete_publications(self, results: Any, now_ms: int, dedup_window_ms: int) -> None:
        if self.published is None:
            self.published = await self._stack.publish(self._topic, "second")
        await self._stack.store.complete_publications(results, now_ms, dedup_window_ms)


async def test_a_publication_committed_during_fan_out_is_fanned_out_without_waiting_for_the_idle_poll(
    stack: Stack,
) -> None:
    # Its commit wakes the workers while fan-out works on the first one, before fan-out waits: the
    # store's note of the claim must tell that wait a wake-up came after the claim.
    queue = await stack.queue("meanwhile")
    topic = await stack.topic("meanwhile")
    await stack.subscribe(topic, "sqs", queue.key.arn, RawMessageDelivery="true")
    outbox = _PublishingWhileWriting(stack, topic)
    options = dataclasses.replace(stack.fanout.options, idle_poll_s=60.0)
    fanout = FanOut(
        outbox,  # type: ignore[arg-type]
        stack.fanout._directory,
        stack.fanout._queues,
        stack.fanout._renderer,
        stack.clock,
        "meanwhile-node",
        options,
        stack.stats,
    )
    await stack.publish(topic, "first")
    running = asyncio.create_task(fanout.run())
    try:
        received: list[str] = []
        long_poll = ReceiveRequest(max_messages=10, wait_time_s=20)
        async with asyncio.timeout(10.0):  # not the 60 s idle poll
            while len(received) < 2:
                received.extend(m.body for m in await stack.queues.receive_message(queue.key, long_poll))
        assert sorted(received) == ["first", "second"]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
