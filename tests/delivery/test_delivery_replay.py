"""FIFO topic archiving and replay over the real stores (SQLite and PostgreSQL), with a fake clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from delivery_support import SCOPE, Stack

from loosely.core.errors import InvalidParameter
from loosely.core.topics.archive import DAY_MS, REPLAY_KIND, ReplayState, iso_ms
from loosely.delivery.replay import Replayer, ReplayOptions

ARCHIVE = json.dumps({"MessageRetentionPeriod": "2"})
DEDUP_WINDOW_MS = 5 * 60 * 1000


def replayer(stack: Stack, owner: str = "node-a", page: int = 100) -> Replayer:
    return Replayer(stack.store, stack.store, stack.store, stack.clock, owner, ReplayOptions(page=page))


def replay_policy(start_ms: int, end_ms: int | None = None) -> str:
    policy: dict[str, Any] = {"PointType": "Timestamp", "StartingPoint": iso_ms(start_ms)}
    if end_ms is not None:
        policy["EndingPoint"] = iso_ms(end_ms)
    return json.dumps(policy)


async def archived_topic(stack: Stack, name: str = "orders.fifo") -> str:
    return await stack.topic(name, {"FifoTopic": "true", "ContentBasedDeduplication": "true", "ArchivePolicy": ARCHIVE})


async def publish_each(stack: Stack, topic: str, messages: list[tuple[str, str]]) -> dict[str, tuple[str, int]]:
    """Publish (group, text) pairs 1 s apart; text -> (message id, publish time)."""
    out: dict[str, tuple[str, int]] = {}
    for group, text in messages:
        stack.clock.advance(1000)
        out[text] = (await stack.publish(topic, text, group_id=group), stack.clock.now_ms())
    return out


async def test_replay_redelivers_the_window_in_order_with_the_original_ids(stack: Stack) -> None:
    queue = await stack.queue("replayed.fifo", {"FifoQueue": "true"})
    topic = await archived_topic(stack)
    sub = await stack.subscribe(topic, "sqs", queue.key.arn)
    sent = await publish_each(stack, topic, [("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2")])
    await stack.fan_out()
    live = {json.loads(m.body)["Message"]: json.loads(m.body) for m in await stack.receive_all(queue)}
    assert set(live) == {"a1", "b1", "a2", "b2"}

    stack.clock.advance(DEDUP_WINDOW_MS + 1000)  # past the queue's deduplication of the first deliveries
    await stack.topics.set_subscription_attributes(SCOPE, sub, "ReplayPolicy", replay_policy(sent["b1"][1]))
    attributes = await stack.topics.get_subscription_attributes(SCOPE, sub)
    assert attributes["ReplayStatus"] == "Pending"
    await replayer(stack, page=2).run_until_idle()
    await stack.fan_out()

    replayed = [json.loads(m.body) for m in await stack.receive_all(queue)]
    texts = [e["Message"] for e in replayed]
    assert sorted(texts) == ["a2", "b1", "b2"]
    assert texts.index("b1") < texts.index("b2")  # publish order within a message group
    for envelope in replayed:
        original = live[envelope["Message"]]
        assert envelope["Replayed"] is True
        for field in ("MessageId", "Timestamp", "SequenceNumber", "TopicArn"):
            assert envelope[field] == original[field]
        assert "Replayed" not in original
    attributes = await stack.topics.get_subscription_attributes(SCOPE, sub)
    assert attributes["ReplayStatus"] == "Completed"
    assert json.loads(attributes["ReplayPolicy"])["PointType"] == "Timestamp"


async def test_replay_goes_to_its_subscription_only_and_through_its_filter(stack: Stack) -> None:
    replaying = await stack.queue("replaying")
    other = await stack.queue("other")
    topic = await archived_topic(stack)
    sub = await stack.subscribe(topic, "sqs", replaying.key.arn, FilterPolicy='{"kind": ["keep"]}')
    await stack.subscribe(topic, "sqs", other.key.arn)
    start = stack.clock.now_ms()
    for text, kind in (("one", "keep"), ("two", "drop"), ("three", "keep")):
        stack.clock.advance(1000)
        await stack.publish(topic, text, group_id="g", attributes={"kind": ("String", kind)})
    await stack.fan_out()
    assert len(await stack.receive_all(replaying)) == 2
    assert len(await stack.receive_all(other)) == 3

    await stack.topics.set_subscription_attributes(SCOPE, sub, "ReplayPolicy", replay_policy(start))
    await replayer(stack).run_until_idle()
    await stack.fan_out()
    assert [json.loads(m.body)["Message"] for m in await stack.receive_all(replaying)] == ["one", "three"]
    assert await stack.receive_all(other) == []


async def test_ending_point_closes_the_window(stack: Stack) -> None:
    queue = await stack.queue("window")
    topic = await archived_topic(stack)
    sub = await stack.subscribe(topic, "sqs", queue.key.arn)
    sent = await publish_each(stack, topic, [("g", "m1"), ("g", "m2"), ("g", "m3"), ("g", "m4")])
    await stack.fan_out()
    await stack.receive_all(queue)

    policy = replay_policy(sent["m2"][1], sent["m3"][1])
    await stack.topics.set_subscription_attributes(SCOPE, sub, "ReplayPolicy", policy)
    await replayer(stack, page=1).run_until_idle()
    await stack.fan_out()
    assert [json.loads(m.body)["Message"] for m in await stack.receive_all(queue)] == ["m2", "m3"]


async def test_a_new_replay_policy_replaces_a_running_replay(stack: Stack) -> None:
    queue = await stack.queue("replace")
    topic = await archived_topic(stack)
    sub = await stack.subscribe(topic, "sqs", queue.key.arn)
    sent = await publish_each(stack, topic, [("g", f"m{i}") for i in range(1, 6)])
    await stack.fan_out()
    await stack.receive_all(queue)

    await stack.topics.set_subscription_attributes(SCOPE, sub, "ReplayPolicy", replay_policy(sent["m1"][1]))
    worker = replayer(stack, page=2)
    await worker.run_once()  # m1, m2 recorded; the replay is in progress
    attributes = await stack.topics.get_subscription_attributes(SCOPE, sub)
    assert attributes["ReplayStatus"] == "In progress"
    await stack.topics.set_subscription_attributes(SCOPE, sub, "ReplayPolicy", replay_policy(sent["m5"][1]))
    await worker.run_until_idle()
    await stack.fan_out()
    assert [json.loads(m.body)["Message"] for m in await stack.receive_all(queue)] == ["m1", "m2", "m5"]


async def test_one_node_at_a_time_runs_a_replay(stack: Stack) -> None:
    queue = await stack.queue("leased")
    topic = await archived_topic(stack)
    sub = await stack.subscribe(topic, "sqs", queue.key.arn)
    sent = await publish_each(stack, topic, [("g", f"m{i}") for i in range(1, 5)])
    await stack.fan_out()
    await stack.receive_all(queue)
    await stack.topics.set_subscription_attributes(SCOPE, sub, "ReplayPolicy", replay_policy(sent["m1"][1]))

    first, second = replayer(stack, "node-a", page=2), replayer(stack, "node-b", page=2)
    assert await first.run_once()  # leased by node-a, two messages recorded
    assert not await second.run_once()  # node-b leaves it alone while the lease holds
    doc = await stack.store.get_document(REPLAY_KIND, sub)
    assert ReplayState.from_json(doc.body).lease_owner == "node-a"
    stack.clock.advance(ReplayOptions().lease_ms + 1)  # node-a died: node-b takes over where it stopped
    await second.run_until_idle()
    await stack.fan_out()
    assert [json.loads(m.body)["Message"] for m in await stack.receive_all(queue)] == ["m1", "m2", "m3", "m4"]


async def test_archive_keeps_messages_for_the_retention_period(stack: Stack) -> None:
    topic = await archived_topic(stack)
    archived_at = stack.clock.now_ms()
    await stack.publish(topic, "old", group_id="g")
    attributes = await stack.topics.get_topic_attributes(SCOPE, topic)
    assert attributes["BeginningArchiveTime"] == iso_ms(archived_at)
    assert "ArchiveSinceMs" not in attributes
    assert len(await stack.store.read_archive(topic, None, 0, 10)) == 1

    stack.clock.advance(2 * DAY_MS - 1)
    await replayer(stack).run_until_idle()
    assert len(await stack.store.read_archive(topic, None, 0, 10)) == 1
    stack.clock.advance(1)
    await replayer(stack).run_until_idle()
    assert await stack.store.read_archive(topic, None, 0, 10) == []
    attributes = await stack.topics.get_topic_attributes(SCOPE, topic)
    assert attributes["BeginningArchiveTime"] == iso_ms(stack.clock.now_ms() - 2 * DAY_MS)


async def test_only_topics_with_an_archive_policy_archive(stack: Stack) -> None:
    plain = await stack.topic("plain.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
    await stack.publish(plain, "not kept", group_id="g")
    assert await stack.store.read_archive(plain, None, 0, 10) == []
    assert "BeginningArchiveTime" not in await stack.topics.get_topic_attributes(SCOPE, plain)

    archived = await archived_topic(stack)
    await stack.topics.set_topic_attributes(SCOPE, archived, "ArchivePolicy", "{}")
    await stack.publish(archived, "not kept either", group_id="g")
    assert await stack.store.read_archive(archived, None, 0, 10) == []
    attributes = await stack.topics.get_topic_attributes(SCOPE, archived)
    assert "BeginningArchiveTime" not in attributes and "ArchivePolicy" not in attributes


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ("{", "failed to parse JSON"),
        ('{"PointType": "Sequence", "StartingPoint": "2023-01-01T00:00:00Z"}', "Unsupported PointType"),
        ('{"PointType": "Timestamp"}', "StartingPoint is required"),
        ('{"PointType": "Timestamp", "StartingPoint": "yesterday"}', "must be an ISO-8601 timestamp"),
        ("future", "StartingPoint cannot be in the future"),
        ("before", "later than the topic's BeginningArchiveTime"),
    ],
)
async def test_bad_replay_policies_are_refused(stack: Stack, policy: str, reason: str) -> None:
    queue = await stack.queue("refused")
    topic = await archived_topic(stack)
    sub = await stack.subscribe(topic, "sqs", queue.key.arn)
    now = stack.clock.now_ms()
    policy = {"future": replay_policy(now + 60_000), "before": replay_policy(now - 60_000)}.get(policy, policy)
    with pytest.raises(InvalidParameter) as caught:
        await stack.topics.set_subscription_attributes(SCOPE, sub, "ReplayPolicy", policy)
    assert caught.value.message.startswith("Invalid parameter: ReplayPolicy Reason: ")
    assert reason in caught.value.message
    assert "ReplayPolicy" not in await stack.topics.get_subscription_attributes(SCOPE, sub)


async def test_replay_needs_a_fifo_topic_with_an_archive(stack: Stack) -> None:
    queue = await stack.queue("needs.fifo", {"FifoQueue": "true"})
    plain = await stack.topic("plain.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
    policy = replay_policy(stack.clock.now_ms())
    with pytest.raises(InvalidParameter, match="no ArchivePolicy"):
        await stack.topics.subscribe(SCOPE, plain, "sqs", queue.key.arn, {"ReplayPolicy": policy}, True)
    standard = await stack.topic("standard")
    sub = await stack.subscribe(standard, "sqs", (await stack.queue("std")).key.arn)
    with pytest.raises(InvalidParameter, match="only supported for subscriptions to FIFO topics"):
        await stack.topics.set_subscription_attributes(SCOPE, sub, "ReplayPolicy", policy)


async def test_subscribe_with_a_replay_policy_starts_a_replay(stack: Stack) -> None:
    topic = await archived_topic(stack)
    start = stack.clock.now_ms()
    await publish_each(stack, topic, [("g", "before the subscription")])
    await stack.fan_out()
    queue = await stack.queue("late")
    sub = await stack.subscribe(topic, "sqs", queue.key.arn, ReplayPolicy=replay_policy(start))
    await replayer(stack).run_until_idle()
    await stack.fan_out()
    [received] = await stack.receive_all(queue)
    assert json.loads(received.body)["Message"] == "before the subscription"
    assert (await stack.topics.get_subscription_attributes(SCOPE, sub))["ReplayStatus"] == "Completed"


async def test_unsubscribing_or_deleting_the_topic_forgets_the_replay(stack: Stack) -> None:
    topic = await archived_topic(stack)
    policy = replay_policy(stack.clock.now_ms())
    first = await stack.subscribe(topic, "sqs", (await stack.queue("first")).key.arn, ReplayPolicy=policy)
    second = await stack.subscribe(topic, "sqs", (await stack.queue("second")).key.arn, ReplayPolicy=policy)
    assert await stack.store.get_document(REPLAY_KIND, first) is not None
    await stack.topics.unsubscribe(SCOPE, first)
    assert await stack.store.get_document(REPLAY_KIND, first) is None
    await stack.topics.delete_topic(SCOPE, topic)
    assert await stack.store.get_document(REPLAY_KIND, second) is None
