"""TopicService: Subscribe per protocol, confirmation tokens and pushes, Unsubscribe, attributes, listings."""

from __future__ import annotations

import json

import pytest
from test_service_support import OTHER, SCOPE, Harness

from loosely.core.errors import InvalidParameter
from loosely.core.topics.errors import AuthorizationError, NotFound
from loosely.core.topics.filter_policy import InvalidFilterPolicy
from loosely.core.topics.models import PUSH_SUBSCRIPTION_CONFIRMATION, PUSH_UNSUBSCRIBE_CONFIRMATION
from loosely.core.topics.values import AccountScope

QUEUE = "arn:aws:sqs:us-east-1:123456789012:q"


async def test_sqs_same_account_is_confirmed_at_once(h: Harness, topic: str) -> None:
    arn = await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {"RawMessageDelivery": "True"})

    attrs = await h.service.get_subscription_attributes(SCOPE, arn)

    assert arn.startswith(topic + ":")
    assert attrs["PendingConfirmation"] == "false"
    assert attrs["ConfirmationWasAuthenticated"] == "true"
    assert attrs["RawMessageDelivery"] == "true"
    assert (attrs["Protocol"], attrs["Endpoint"], attrs["TopicArn"], attrs["Owner"]) == (
        "sqs",
        QUEUE,
        topic,
        SCOPE.account_id,
    )
    assert await h.pushes() == []


async def test_subscribe_is_idempotent_and_refuses_different_attributes(h: Harness, topic: str) -> None:
    first = await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {})

    assert await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {"RawMessageDelivery": "false"}) == first
    with pytest.raises(InvalidParameter, match="Subscription already exists with different attributes"):
        await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {"RawMessageDelivery": "true"})
    assert (await h.service.get_topic_attributes(SCOPE, topic))["SubscriptionsConfirmed"] == "1"


async def test_http_subscription_is_pending_until_confirmed_with_its_token(h: Harness, topic: str) -> None:
    returned = await h.service.subscribe(SCOPE, topic, "https", "https://example.com/hook", {})
    assert returned == "pending confirmation"
    [push] = await h.pushes()
    assert (push.kind, push.protocol, push.endpoint, push.topic_arn) == (
        PUSH_SUBSCRIPTION_CONFIRMATION,
        "https",
        "https://example.com/hook",
        topic,
    )
    assert push.token and push.subscription_arn and push.body == ""
    listed = (await h.service.list_subscriptions_by_topic(SCOPE, topic, None)).items
    assert [s.subscription_arn for s in listed] == ["PendingConfirmation"]
    assert (await h.service.get_topic_attributes(SCOPE, topic))["SubscriptionsPending"] == "1"

    confirmed = await h.service.confirm_subscription(SCOPE, topic, push.token, False, authenticated=False)

    assert confirmed == push.subscription_arn
    attrs = await h.service.get_subscription_attributes(SCOPE, confirmed)
    assert attrs["PendingConfirmation"] == "false"
    assert attrs["ConfirmationWasAuthenticated"] == "false"
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["healthyRetryPolicy"]["numRetries"] == 3
    assert await h.service.confirm_subscription(SCOPE, topic, push.token, False, True) == confirmed


async def test_return_subscription_arn_gives_the_pending_arn(h: Harness, topic: str) -> None:
    arn = await h.service.subscribe(SCOPE, topic, "email", "me@example.com", {}, return_subscription_arn=True)

    assert arn.startswith(topic + ":")
    assert await h.service.pending_token(arn)


async def test_confirm_with_unknown_token_is_invalid_token(h: Harness, topic: str) -> None:
    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: Token$"):
        await h.service.confirm_subscription(SCOPE, topic, "51b2ff3edb475b7d91550e0ab6edf0c1", False, True)


async def test_confirm_with_a_token_that_is_not_hex_is_refused_by_its_shape(h: Harness, topic: str) -> None:
    # Recorded AWS response: test_sns.snapshot.json, test_sns_confirm_subscription_wrong_token (invalid-token).
    with pytest.raises(InvalidParameter, match=r"^Invalid token$"):
        await h.service.confirm_subscription(SCOPE, topic, "randomtoken", False, True)


async def test_confirmation_tokens_are_shaped_like_aws_tokens(h: Harness, topic: str) -> None:
    await h.service.subscribe(SCOPE, topic, "http", "http://example.com/", {})
    [push] = await h.pushes()

    assert push.token is not None
    assert len(push.token) % 2 == 0
    assert int(push.token, 16) > 0


async def test_confirm_names_the_topic_by_a_well_formed_arn_of_the_callers_region(h: Harness, topic: str) -> None:
    arn = await h.service.subscribe(SCOPE, topic, "http", "http://example.com/", {}, True)
    [push] = await h.pushes()

    for bad in ("not-an-arn", topic.replace("us-east-1", "eu-central-1")):
        with pytest.raises(InvalidParameter, match=r"^Invalid parameter: Topic$"):
            await h.service.confirm_subscription(SCOPE, bad, push.token or "", False, True)
    # The SubscribeURL visited with the topic renamed into another region acts as that region, where the
    # token names a topic of a region other than the one asked for: the topic is wrong, not the token.
    elsewhere = AccountScope(SCOPE.account_id, "eu-central-1")
    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: Topic$"):
        await h.service.confirm_subscription(
            elsewhere, topic.replace("us-east-1", "eu-central-1"), push.token or "", False, False
        )
    # As on AWS, the token alone decides which subscription is confirmed: any topic name of the region will do.
    assert await h.service.confirm_subscription(SCOPE, topic + "-other", push.token or "", False, True) == arn


async def test_confirmation_token_expires_after_three_days(h: Harness, topic: str) -> None:
    await h.service.subscribe(SCOPE, topic, "http", "http://example.com/", {})
    [push] = await h.pushes()

    h.clock.advance(3 * 24 * 3600 * 1000 + 1)

    with pytest.raises(InvalidParameter, match="Token"):
        await h.service.confirm_subscription(SCOPE, topic, push.token or "", False, True)


async def test_unsubscribe_http_sends_unsubscribe_confirmation_that_restores(h: Harness, topic: str) -> None:
    arn = await h.service.subscribe(SCOPE, topic, "http", "http://example.com/", {}, True)
    [push] = await h.pushes()
    await h.service.confirm_subscription(SCOPE, topic, push.token or "", True, authenticated=True)

    with pytest.raises(AuthorizationError):
        await h.service.unsubscribe(SCOPE, arn, authenticated=False)
    await h.service.unsubscribe(SCOPE, arn)
    [goodbye] = await h.pushes()

    assert goodbye.kind == PUSH_UNSUBSCRIBE_CONFIRMATION and goodbye.subscription_arn == arn
    with pytest.raises(NotFound, match=r"^Subscription does not exist$"):
        await h.service.get_subscription_attributes(SCOPE, arn)
    assert await h.service.confirm_subscription(SCOPE, topic, goodbye.token or "", False, True) == arn
    assert (await h.service.get_subscription_attributes(SCOPE, arn))["PendingConfirmation"] == "false"


async def test_unsubscribe_is_idempotent_and_checks_the_arn(h: Harness, topic: str) -> None:
    arn = await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {})

    await h.service.unsubscribe(SCOPE, arn)
    await h.service.unsubscribe(SCOPE, arn)

    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: SubscriptionId$"):
        await h.service.unsubscribe(SCOPE, topic)
    with pytest.raises(InvalidParameter, match="An ARN must have at least 6 elements, not 1"):
        await h.service.unsubscribe(SCOPE, "nope")


@pytest.mark.parametrize(
    ("protocol", "endpoint", "message"),
    [
        ("carrier-pigeon", "x", "Amazon SNS does not support this protocol string: carrier-pigeon"),
        ("lambda", "arn:aws:lambda:us-east-1:123456789012:function:f", "lambda subscriptions are not served"),
        ("firehose", "arn:aws:firehose:us-east-1:123456789012:deliverystream/s", "firehose subscriptions"),
        ("http", "https://example.com", "Endpoint must match the specified protocol"),
        ("https", "ftp://example.com", "Endpoint must match the specified protocol"),
        ("email", "not-an-address", "Email address"),
        ("sms", "12345", "Invalid SMS endpoint: 12345"),
        ("sms", "+15--551234567", r"^Invalid SMS endpoint: \+15--551234567$"),
        ("sms", "+15551234567.", r"^Invalid SMS endpoint: \+15551234567\.$"),
        ("sms", "/+15551234567", r"^Invalid SMS endpoint: /\+15551234567$"),
        ("sqs", "queue-name", "SQS endpoint ARN"),
        ("sqs", "arn:aws:sqs:us-east-1:123456789012:q.fifo", "FIFO SQS Queues can not be subscribed to standard"),
        ("application", "arn:aws:sns:us-east-1:123456789012:app/GCM/x", "ApplicationEndpoint ARN"),
    ],
)
async def test_subscribe_validates_endpoint_per_protocol(
    h: Harness, topic: str, protocol: str, endpoint: str, message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        await h.service.subscribe(SCOPE, topic, protocol, endpoint, {})


@pytest.mark.parametrize("number", ["+1234567890", "+12/34-567.890", "+1.555.123.4567"])
async def test_sms_endpoints_may_group_their_digits(h: Harness, topic: str, number: str) -> None:
    # Recorded AWS response: test_sns.snapshot.json, test_subscribe_sms_obscure_phone_number (+12/34-567.890).
    arn = await h.service.subscribe(SCOPE, topic, "sms", number, {})

    assert (await h.service.get_subscription_attributes(SCOPE, arn))["Endpoint"] == number


async def test_fifo_topic_accepts_only_sqs(h: Harness) -> None:
    fifo = await h.service.create_topic(SCOPE, "o.fifo", {"FifoTopic": "true"})

    with pytest.raises(InvalidParameter, match="Invalid protocol type: https"):
        await h.service.subscribe(SCOPE, fifo, "https", "https://example.com", {})
    assert await h.service.subscribe(SCOPE, fifo, "sqs", QUEUE + ".fifo", {})


async def test_cross_account_queue_is_pending(h: Harness, topic: str) -> None:
    await h.service.subscribe(SCOPE, topic, "sqs", "arn:aws:sqs:us-east-1:210987654321:q", {})

    [push] = await h.pushes()

    assert push.protocol == "sqs" and push.kind == PUSH_SUBSCRIPTION_CONFIRMATION


async def test_filter_policy_is_validated_in_subscribe_and_set(h: Harness, topic: str) -> None:
    with pytest.raises(InvalidFilterPolicy, match=r"^Invalid parameter: Attributes Reason: FilterPolicy"):
        await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {"FilterPolicy": "{not json"})
    arn = await h.service.subscribe(
        SCOPE, topic, "sqs", QUEUE, {"FilterPolicy": '{"a": {"b": ["x"]}}', "FilterPolicyScope": "MessageBody"}
    )

    with pytest.raises(InvalidFilterPolicy, match="does not support nested filter policy"):
        await h.service.set_subscription_attributes(SCOPE, arn, "FilterPolicyScope", "MessageAttributes")
    await h.service.set_subscription_attributes(SCOPE, arn, "FilterPolicy", '{"store": ["a"]}')
    await h.service.set_subscription_attributes(SCOPE, arn, "FilterPolicyScope", "MessageAttributes")
    attrs = await h.service.get_subscription_attributes(SCOPE, arn)
    assert (attrs["FilterPolicy"], attrs["FilterPolicyScope"]) == ('{"store": ["a"]}', "MessageAttributes")

    await h.service.set_subscription_attributes(SCOPE, arn, "FilterPolicy", "")
    assert "FilterPolicy" not in await h.service.get_subscription_attributes(SCOPE, arn)


async def test_set_subscription_attributes_rules(h: Harness, topic: str) -> None:
    email = await h.service.subscribe(SCOPE, topic, "email", "a@example.com", {}, True)
    queue = await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {})

    with pytest.raises(InvalidParameter, match=r"Delivery protocol \[email\] does not support raw message delivery"):
        await h.service.set_subscription_attributes(SCOPE, email, "RawMessageDelivery", "true")
    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: AttributeName$"):
        await h.service.set_subscription_attributes(SCOPE, queue, "Protocol", "http")
    with pytest.raises(InvalidParameter, match="RedrivePolicy: deadLetterTargetArn is an invalid arn"):
        await h.service.set_subscription_attributes(SCOPE, queue, "RedrivePolicy", '{"deadLetterTargetArn": "x"}')
    with pytest.raises(InvalidParameter, match="DeliveryPolicy"):
        await h.service.set_subscription_attributes(SCOPE, queue, "DeliveryPolicy", '{"healthyRetryPolicy": 5}')
    redrive = '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"}'
    await h.service.set_subscription_attributes(SCOPE, queue, "RedrivePolicy", redrive)
    assert (await h.service.get_subscription_attributes(SCOPE, queue))["RedrivePolicy"] == redrive
    with pytest.raises(NotFound, match="Subscription does not exist"):
        await h.service.set_subscription_attributes(SCOPE, queue + "0", "RawMessageDelivery", "true")


async def test_list_subscriptions_spans_topics_of_the_account(h: Harness, topic: str) -> None:
    other_topic = await h.service.create_topic(SCOPE, "zeta", {})
    await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {})
    await h.service.subscribe(SCOPE, other_topic, "sms", "+15555550100", {})
    await h.service.create_topic(OTHER, "theirs", {})

    page = await h.service.list_subscriptions(SCOPE, None)

    assert sorted((s.topic_arn, s.protocol) for s in page.items) == [(topic, "sqs"), (other_topic, "sms")]
    assert page.next_token is None


async def test_subscribe_to_missing_topic_is_not_found(h: Harness) -> None:
    with pytest.raises(NotFound, match=r"^Topic does not exist$"):
        await h.service.subscribe(SCOPE, "arn:aws:sns:us-east-1:123456789012:none", "sqs", QUEUE, {})


async def test_subscribe_compares_unset_attributes_with_their_defaults(h: Harness, topic: str) -> None:
    first = await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {"RawMessageDelivery": "true"})

    same = await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {"FilterPolicyScope": "MessageAttributes"})

    assert same == first
    with pytest.raises(InvalidParameter, match="different attributes"):
        await h.service.subscribe(SCOPE, topic, "sqs", QUEUE, {"FilterPolicyScope": "MessageBody"})


async def test_filter_policy_scope_is_shown_only_beside_a_policy(h: Harness, topic: str) -> None:
    arn = await h.service.subscribe(
        SCOPE, topic, "sqs", QUEUE, {"FilterPolicyScope": "MessageBody", "FilterPolicy": ""}
    )

    assert "FilterPolicyScope" not in await h.service.get_subscription_attributes(SCOPE, arn)
    await h.service.set_subscription_attributes(SCOPE, arn, "FilterPolicy", '{"a": ["b"]}')
    assert (await h.service.get_subscription_attributes(SCOPE, arn))["FilterPolicyScope"] == "MessageBody"


async def test_topic_arn_in_place_of_a_subscription_arn_is_invalid_subscription_id(h: Harness, topic: str) -> None:
    queue_with_id = f"{QUEUE}:66d97e76-31e5-444f-8fa7-b60b680d0d39"  # another service's ARN, 7 elements
    for call in (h.service.get_subscription_attributes, h.service.unsubscribe):
        for arn in (topic, queue_with_id):
            with pytest.raises(InvalidParameter, match=r"^Invalid parameter: SubscriptionId$"):
                await call(SCOPE, arn)


async def test_subscription_delivery_policy_is_stored_with_every_section(h: Harness, topic: str) -> None:
    arn = await h.service.subscribe(SCOPE, topic, "http", "http://example.com/", {}, True)

    await h.service.set_subscription_attributes(
        SCOPE,
        arn,
        "DeliveryPolicy",
        '{"healthyRetryPolicy": {"numRetries": 1, "minDelayTarget": 2, "maxDelayTarget": 3}}',
    )
    stored = (await h.service.get_subscription_attributes(SCOPE, arn))["DeliveryPolicy"]

    assert stored == (
        '{"healthyRetryPolicy":{"minDelayTarget":2,"maxDelayTarget":3,"numRetries":1},"sicklyRetryPolicy":null,'
        '"throttlePolicy":null,"requestPolicy":null,"guaranteed":false}'
    )


async def test_fifo_queue_of_a_fifo_topic_needs_a_fifo_dead_letter_queue(h: Harness) -> None:
    fifo_topic = await h.service.create_topic(SCOPE, "orders.fifo", {"FifoTopic": "true"})
    fifo_queue = QUEUE + ".fifo"
    standard_dlq = json.dumps({"deadLetterTargetArn": QUEUE + "-dlq"})

    with pytest.raises(InvalidParameter, match="must use a FIFO queue as DLQ for a FIFO Subscription"):
        await h.service.subscribe(SCOPE, fifo_topic, "sqs", fifo_queue, {"RedrivePolicy": standard_dlq})
    arn = await h.service.subscribe(SCOPE, fifo_topic, "sqs", fifo_queue, {})
    with pytest.raises(InvalidParameter, match="must use a FIFO queue as DLQ for a FIFO Subscription"):
        await h.service.set_subscription_attributes(SCOPE, arn, "RedrivePolicy", standard_dlq)
    fifo_dlq = json.dumps({"deadLetterTargetArn": QUEUE + "-dlq.fifo"})
    await h.service.set_subscription_attributes(SCOPE, arn, "RedrivePolicy", fifo_dlq)
    standard = await h.service.subscribe(SCOPE, fifo_topic, "sqs", QUEUE, {"RedrivePolicy": standard_dlq}, True)
    assert json.loads((await h.service.get_subscription_attributes(SCOPE, standard))["RedrivePolicy"])
