"""FIFO topic replays on several nodes sharing one schema: each archived message is replayed once."""

from __future__ import annotations

import asyncio
import json

import pytest

from loosely.core.clock import FakeClock
from loosely.core.ids import SequentialIds
from loosely.core.topics.archive import REPLAY_KIND, ReplayState, iso_ms
from loosely.core.topics.models import PublishedMessage, decode_publication
from loosely.core.topics.service import TopicService
from loosely.core.topics.values import AccountScope, PublishRequest
from loosely.delivery.replay import Replayer, ReplayOptions
from postgres.conftest import NodeFactory

pytestmark = pytest.mark.postgres

SCOPE = AccountScope("123456789012", "us-east-1")
MESSAGES = 25


async def test_nodes_replaying_at_once_record_each_message_once(open_node: NodeFactory) -> None:
    nodes = [await open_node() for _ in range(3)]
    clock = FakeClock()
    topics = TopicService(nodes[0], nodes[0], clock, SequentialIds())
    attributes = {
        "FifoTopic": "true",
        "ContentBasedDeduplication": "true",
        "ArchivePolicy": '{"MessageRetentionPeriod": "1"}',
    }
    topic = await topics.create_topic(SCOPE, "replayed.fifo", attributes)
    queue_arn = f"arn:aws:sqs:us-east-1:{SCOPE.account_id}:target"
    subscription = await topics.subscribe(SCOPE, topic, "sqs", queue_arn, {}, True)
    start = clock.now_ms()
    for n in range(MESSAGES):
        clock.advance(10)
        await topics.publish(SCOPE, PublishRequest(message=f"m{n}", topic_arn=topic, group_id="g"))
    policy = json.dumps({"PointType": "Timestamp", "StartingPoint": iso_ms(start)})
    await topics.set_subscription_attributes(SCOPE, subscription, "ReplayPolicy", policy)

    replayers = [Replayer(node, node, node, clock, f"node-{i}", ReplayOptions(page=4)) for i, node in enumerate(nodes)]
    for _ in range(20):  # every node steps together until the replay is done
        await asyncio.gather(*(replayer.run_once() for replayer in replayers))
    doc = await nodes[1].get_document(REPLAY_KIND, subscription)
    assert doc is not None and ReplayState.from_json(doc.body).status == "Completed"

    claimed = await nodes[2].claim_publications("reader", clock.now_ms(), 60_000, 10 * MESSAGES)
    replays = [
        payload
        for payload in (decode_publication(p.payload) for p in claimed)
        if isinstance(payload, PublishedMessage) and payload.replay_subscription == subscription
    ]
    assert [p.message for p in replays] == [f"m{n}" for n in range(MESSAGES)]
