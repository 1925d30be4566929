"""TopicService: SNS's per-topic quotas (AWS docs: 100 subscriptions per FIFO topic, 200 filter policies per topic).

Codes and statuses are the botocore model's (``SubscriptionLimitExceeded`` and ``FilterPolicyLimitExceeded``,
both 403); AWS's message texts for them are not recorded anywhere public.
"""

from __future__ import annotations

import json

import pytest
from test_service_support import SCOPE, Harness

from loosely.core.topics.errors import FilterPolicyLimitExceeded, SubscriptionLimitExceeded

POLICY = json.dumps({"colour": ["red"]})


def _queue(i: int, fifo: bool = False) -> str:
    return f"arn:aws:sqs:us-east-1:{SCOPE.account_id}:q{i}" + (".fifo" if fifo else "")


async def test_a_fifo_topic_takes_100_subscriptions(h: Harness) -> None:
    topic = await h.service.create_topic(SCOPE, "quota.fifo", {"FifoTopic": "true"})
    first = await h.service.subscribe(SCOPE, topic, "sqs", _queue(0, fifo=True), {})
    for i in range(1, 100):
        await h.service.subscribe(SCOPE, topic, "sqs", _queue(i, fifo=True), {})

    with pytest.raises(SubscriptionLimitExceeded):
        await h.service.subscribe(SCOPE, topic, "sqs", _queue(100, fifo=True), {})
    assert await h.service.subscribe(SCOPE, topic, "sqs", _queue(0, fifo=True), {}) == first  # idempotent still
    await h.service.unsubscribe(SCOPE, first)
    assert await h.service.subscribe(SCOPE, topic, "sqs", _queue(100, fifo=True), {})


async def test_a_standard_topic_takes_more_than_100_subscriptions(h: Harness, topic: str) -> None:
    for i in range(101):
        await h.service.subscribe(SCOPE, topic, "sqs", _queue(i), {})

    assert (await h.service.get_topic_attributes(SCOPE, topic))["SubscriptionsConfirmed"] == "101"


async def test_a_topic_takes_200_filter_policies(h: Harness, topic: str) -> None:
    for i in range(200):
        await h.service.subscribe(SCOPE, topic, "sqs", _queue(i), {"FilterPolicy": POLICY})

    with pytest.raises(FilterPolicyLimitExceeded):
        await h.service.subscribe(SCOPE, topic, "sqs", _queue(200), {"FilterPolicy": POLICY})
    plain = await h.service.subscribe(SCOPE, topic, "sqs", _queue(201), {"FilterPolicy": "{}"})
    with pytest.raises(FilterPolicyLimitExceeded):
        await h.service.set_subscription_attributes(SCOPE, plain, "FilterPolicy", POLICY)


async def test_replacing_or_removing_a_filter_policy_needs_no_room(h: Harness, topic: str) -> None:
    arns = [await h.service.subscribe(SCOPE, topic, "sqs", _queue(i), {"FilterPolicy": POLICY}) for i in range(200)]

    await h.service.set_subscription_attributes(SCOPE, arns[0], "FilterPolicy", json.dumps({"colour": ["blue"]}))
    await h.service.set_subscription_attributes(SCOPE, arns[1], "FilterPolicy", "")
    assert await h.service.subscribe(SCOPE, topic, "sqs", _queue(200), {"FilterPolicy": POLICY})
