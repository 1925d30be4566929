"""Fan-out builds a publication's SQS messages from what they share: each must be the one SendMessage builds.

`QueueDirectory.build_shared` builds the first message of each kind of queue with
`QueueService.build_message` and the others from it. Here every message it makes is compared with
the one `build_message` makes for the same request, and its refusals with `build_message`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable

import pytest
from delivery_support import PUBLIC_URL, Stack

from loosely.core.clock import FakeClock
from loosely.core.errors import LooselyError
from loosely.core.ids import SequentialIds
from loosely.core.queues.models import NewMessage, QueueKey, QueueRecord, SendRequest
from loosely.core.queues.service import QueueService, QueueSettings
from loosely.core.topics.models import PublishedMessage, Subscription
from loosely.delivery.rendering import Renderer, SqsRequests
from loosely.delivery.signing import Signer
from loosely.delivery.sqs import QueueDirectory, SharedBody

TOPIC = "arn:aws:sns:us-east-1:123456789012:t"
DEFAULTS = {"MaximumMessageSize": "262144", "DelaySeconds": "0"}


def queue(number: int, **attributes: str) -> QueueRecord:
    key = QueueKey("123456789012", "us-east-1", f"q{number}")
    return QueueRecord(number, key, {**DEFAULTS, **attributes}, {}, 0, 0, 345_600_000)


def subscription(number: int, **attributes: str) -> Subscription:
    return Subscription(
        f"{TOPIC}:{number:08d}-0000-4000-8000-000000000000",
        TOPIC,
        "sqs",
        f"arn:aws:sqs:us-east-1:123456789012:q{number}",
        "123456789012",
        attributes,
        True,
        None,
        0,
    )


def published(message: str = "hello", **fields: object) -> PublishedMessage:
    return PublishedMessage("6f1c2d7e-1111-4222-8333-444455556666", TOPIC, message, 1_764_120_000_123, **fields)  # type: ignore[arg-type]


@pytest.fixture
def directory() -> QueueDirectory:
    return QueueDirectory(QueueService(None, FakeClock(), SequentialIds(), QueueSettings()))  # type: ignore[arg-type]


@pytest.fixture
def renderer(signer: Signer) -> Renderer:
    return Renderer(signer, PUBLIC_URL)


def same(made: NewMessage, reference: NewMessage) -> None:
    """Equal but for the message id (each message gets its own)."""
    assert made.message_id != reference.message_id
    assert (made.body, made.meta, made.sent_ms, made.visible_at_ms, made.group_id, made.dedup_key) == (
        reference.body,
        reference.meta,
        reference.sent_ms,
        reference.visible_at_ms,
        reference.group_id,
        reference.dedup_key,
    )


def build_both(
    directory: QueueDirectory, requests: SqsRequests, shared: SharedBody | None, target: QueueRecord, sub: Subscription
) -> tuple[Callable[[], tuple[int, NewMessage]], Callable[[], tuple[int, NewMessage]]]:
    parts = requests.body_parts(sub)
    shared = shared or SharedBody(parts[0], parts[2])

    def shortcut() -> tuple[int, NewMessage]:
        return directory.build_shared(target, shared, parts[1], lambda: requests.request(sub, False, parts))

    def reference() -> tuple[int, NewMessage]:
        return directory.build(target, requests.request(sub, False))

    return shortcut, reference


@pytest.mark.parametrize(
    "message",
    ["hello", "héllo wörld ✓ 🎉", "x" * 3000, 'quotes " and \\ and \n newlines'],
)
@pytest.mark.parametrize("raw", [False, True])
async def test_every_subscriber_gets_the_message_send_message_builds(
    directory: QueueDirectory, renderer: Renderer, message: str, raw: bool
) -> None:
    attributes = {"colour": {"Type": "String", "Value": "blué"}, "bin": {"Type": "Binary", "Value": "AAEC"}}
    requests = renderer.sqs_requests(
        published(message, attributes=attributes, trace_header="Root=1-abc", group_id="g"), "1", None
    )
    shared: dict[tuple[str, str], SharedBody] = {}
    queues = [queue(1), queue(2), queue(3, DelaySeconds="7"), queue(4, DelaySeconds="7"), queue(5)]
    bodies = set()
    for number, target in enumerate(queues, 1):
        sub = subscription(number, RawMessageDelivery="true" if raw else "false")
        prefix, _, suffix = requests.body_parts(sub)
        family = shared.setdefault((prefix, suffix), SharedBody(prefix, suffix))
        shortcut, reference = build_both(directory, requests, family, target, sub)
        queue_id, made = shortcut()
        assert queue_id == target.id
        same(made, reference()[1])
        assert hashlib.md5(made.body.encode()).hexdigest() in made.meta
        bodies.add(made.body)
        if not raw:
            assert json.loads(made.body)["UnsubscribeURL"].endswith(sub.arn)
    assert len(shared) == 1
    assert len(bodies) == (1 if raw else len(queues))  # the envelope differs in UnsubscribeURL only


async def test_a_queue_too_small_for_a_longer_link_refuses_it_as_send_message_does(
    directory: QueueDirectory, renderer: Renderer
) -> None:
    requests = renderer.sqs_requests(published("x" * 900), "1", None)
    short, long = subscription(1), subscription(2)
    long = dataclasses.replace(long, arn=long.arn + "-and-a-longer-name")
    size = len(requests.request(short, False).body.encode())
    small = queue(1, MaximumMessageSize=str(size))
    parts = requests.body_parts(short)
    shared = SharedBody(parts[0], parts[2])
    directory.build_shared(small, shared, parts[1], lambda: requests.request(short, False, parts))
    assert shared.firsts  # the first one is the model of its kind of queue

    shortcut, reference = build_both(directory, requests, shared, small, long)
    with pytest.raises(LooselyError) as expected:
        reference()
    with pytest.raises(LooselyError) as refused:
        shortcut()
    assert (type(refused.value), refused.value.message) == (type(expected.value), expected.value.message)


async def test_a_link_with_characters_sqs_refuses_is_refused_as_send_message_does(directory: QueueDirectory) -> None:
    shared = SharedBody('{"UnsubscribeURL" : "', '"}')
    target = queue(1)
    good = SendRequest(body=shared.prefix + "http://a" + shared.suffix)
    directory.build_shared(target, shared, "http://a", lambda: good)
    bad = SendRequest(body=shared.prefix + "http://\x01" + shared.suffix)
    with pytest.raises(LooselyError) as expected:
        directory.build(target, bad)
    with pytest.raises(LooselyError) as refused:
        directory.build_shared(target, shared, "http://\x01", lambda: bad)
    assert refused.value.message == expected.value.message


async def test_fifo_queues_get_their_own_deduplication(directory: QueueDirectory, renderer: Renderer) -> None:
    requests = renderer.sqs_requests(published(group_id="g"), "1", None)
    fifo = QueueRecord(
        9,
        QueueKey("123456789012", "us-east-1", "q.fifo"),
        {**DEFAULTS, "FifoQueue": "true", "ContentBasedDeduplication": "false"},
        {},
        0,
        0,
        345_600_000,
    )
    sub = subscription(9)
    parts = requests.body_parts(sub)
    shared = SharedBody(parts[0], parts[2])
    _, made = directory.build_shared(fifo, shared, parts[1], lambda: requests.request(sub, True, parts))
    _, reference = directory.build(fifo, requests.request(sub, True))
    same(made, reference)
    assert made.dedup_key is not None and made.group_id == "g"
    assert not shared.firsts


async def test_the_envelope_is_rendered_once_ahead_of_its_signature_and_signed_the_same(
    renderer: Renderer, signer: Signer
) -> None:
    message = published("ahead", subject="S")
    strings = renderer.strings_to_sign([(message, message.message, "2")])
    assert len(strings) == 1
    await renderer.sign_ahead(strings)
    ahead = renderer.notification_envelope(message, subscription(1).arn, message.message, "2")
    fresh = Renderer(signer, PUBLIC_URL).notification_envelope(message, subscription(1).arn, message.message, "2")
    assert ahead == fresh
    assert renderer.strings_to_sign([(message, message.message, "2")]) == []  # made already


async def test_fan_out_gives_each_queue_its_own_envelope_and_refuses_where_send_message_would(stack: Stack) -> None:
    topic = await stack.topic("shared")
    dlq = await stack.queue("shared-dlq")
    plain = [await stack.queue(f"shared-{i}") for i in range(3)]
    delayed = await stack.queue("shared-delayed", {"DelaySeconds": "5"})
    small = await stack.queue("shared-small", {"MaximumMessageSize": "1024"})
    raw = [await stack.queue(f"shared-raw-{i}") for i in range(2)]
    subs = {q.key.arn: await stack.subscribe(topic, "sqs", q.key.arn) for q in [*plain, delayed]}
    redrive = json.dumps({"deadLetterTargetArn": dlq.key.arn})
    await stack.subscribe(topic, "sqs", small.key.arn, RedrivePolicy=redrive)
    for q in raw:
        await stack.subscribe(topic, "sqs", q.key.arn, RawMessageDelivery="true")
    message_id = await stack.publish(topic, "é" * 400, attributes={"k": ("String", "v")})
    assert await stack.fan_out() == 1

    for q in plain:
        [received] = await stack.receive_all(q)
        envelope = json.loads(received.body)
        assert envelope["UnsubscribeURL"] == f"{PUBLIC_URL}/?Action=Unsubscribe&SubscriptionArn={subs[q.key.arn]}"
        assert received.md5_of_body == hashlib.md5(received.body.encode()).hexdigest()
        assert not received.message_attributes
    assert await stack.receive_all(delayed) == []  # delayed, as SendMessage would
    stack.clock.advance(5_000)
    [late] = await stack.receive_all(delayed)
    assert json.loads(late.body)["UnsubscribeURL"].endswith(subs[delayed.key.arn])
    assert await stack.receive_all(small) == []  # the envelope is larger than the queue takes
    [dead] = await stack.receive_all(dlq)
    assert dead.message_attributes["ErrorCode"].string_value == "InvalidMessage"
    assert json.loads(dead.body)["MessageId"] == message_id
    for q in raw:
        [received] = await stack.receive_all(q)
        assert received.body == "é" * 400
        assert received.md5_of_body == hashlib.md5(received.body.encode()).hexdigest()
        assert received.message_attributes["k"].string_value == "v"
        assert received.md5_of_message_attributes is not None
    assert (stack.stats.sqs_messages, stack.stats.dead_lettered) == (7, 1)
