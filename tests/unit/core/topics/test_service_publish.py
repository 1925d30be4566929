"""TopicService: Publish and PublishBatch validation, the outbox record, FIFO rules, direct SMS and push."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from test_service_support import OTHER, SCOPE, Harness, topic_service

from loosely.core.errors import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidParameter,
    InvalidParameterValue,
    TooManyEntriesInBatchRequest,
)
from loosely.core.ids import SequentialIds
from loosely.core.topics.errors import AuthorizationError, EndpointDisabled, NotFound
from loosely.core.topics.models import PublishedMessage, PushDelivery
from loosely.core.topics.service import TopicService
from loosely.core.topics.values import AttributeValue, PublishRequest, TopicSettings

BIG = "x" * 262_144


async def test_publish_records_one_published_message(h: Harness, topic: str) -> None:
    attrs = {
        "color": AttributeValue("String", "red"),
        "n": AttributeValue("Number", "12.5"),
        "raw": AttributeValue("Binary", binary_value=b"\x00\x01"),
        "list": AttributeValue("String.Array", '["a", 1, true]'),
    }
    result = await h.service.publish(SCOPE, PublishRequest("hello", topic_arn=topic, subject="Hi", attributes=attrs))

    [record] = await h.drain()

    assert isinstance(record, PublishedMessage)
    assert record.message_id == result.message_id and result.sequence_number is None
    assert (record.topic_arn, record.message, record.subject) == (topic, "hello", "Hi")
    assert record.timestamp_ms == h.clock.now_ms()
    assert record.attributes["raw"] == {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01").decode()}
    assert record.attributes["n"] == {"Type": "Number", "Value": "12.5"}


async def test_publish_with_target_arn_of_a_topic_works_like_topic_arn(h: Harness, topic: str) -> None:
    await h.service.publish(SCOPE, PublishRequest("m", target_arn=topic))

    [record] = await h.drain()

    assert isinstance(record, PublishedMessage) and record.topic_arn == topic


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (PublishRequest("", topic_arn="T"), InvalidParameter, "^Invalid parameter: Empty message$"),
        (PublishRequest("m", topic_arn="T", subject=""), InvalidParameter, "^Invalid parameter: Subject$"),
        (PublishRequest("m", topic_arn="T", subject="a\nb"), InvalidParameter, "^Invalid parameter: Subject$"),
        (PublishRequest(BIG + "x", topic_arn="T"), InvalidParameter, "^Invalid parameter: Message too long$"),
        (PublishRequest("m"), InvalidParameter, "TopicArn or TargetArn Reason: no value for required parameter"),
        (
            PublishRequest("m", topic_arn="T", message_structure="json"),
            InvalidParameter,
            "JSON message body failed to parse",
        ),
        (
            PublishRequest('{"sqs": "x"}', topic_arn="T", message_structure="json"),
            InvalidParameter,
            "No default entry in JSON message body",
        ),
        (
            PublishRequest("m", topic_arn="T", attributes={"a": AttributeValue("Blob", "x")}),
            InvalidParameterValue,
            "invalid message attribute type",
        ),
        (
            PublishRequest("m", topic_arn="T", attributes={"a": AttributeValue("Number", "ten")}),
            InvalidParameterValue,
            "Could not cast message attribute 'a' value to number.",
        ),
        (
            PublishRequest("m", topic_arn="T", attributes={"a": AttributeValue("String", "")}),
            InvalidParameterValue,
            "must contain non-empty message attribute value",
        ),
        (
            PublishRequest("m", topic_arn="T", attributes={"a..b": AttributeValue("String", "x")}),
            InvalidParameterValue,
            "successive '.'",
        ),
        (
            PublishRequest("m", topic_arn="T", attributes={"a": AttributeValue("String.Array", "[{}]")}),
            InvalidParameterValue,
            "String.Array",
        ),
        (
            PublishRequest("m", topic_arn="T", dedup_id="d"),
            InvalidParameter,
            "MessageDeduplicationId parameter that is not valid for this topic type",
        ),
    ],
)
async def test_publish_validation(
    h: Harness, topic: str, request_: PublishRequest, error: type[Exception], message: str
) -> None:
    if request_.topic_arn == "T":
        request_ = replace(request_, topic_arn=topic)

    with pytest.raises(error, match=message):
        await h.service.publish(SCOPE, request_)
    assert await h.drain() == []


async def test_message_size_counts_attributes(h: Harness, topic: str) -> None:
    body = "x" * (262_144 - len("k") - len("String") - 1)

    await h.service.publish(
        SCOPE, PublishRequest(body, topic_arn=topic, attributes={"k": AttributeValue("String", "v")})
    )
    with pytest.raises(InvalidParameter, match="Message too long"):
        await h.service.publish(
            SCOPE, PublishRequest(body + "x", topic_arn=topic, attributes={"k": AttributeValue("String", "v")})
        )


async def test_publish_to_missing_topic_is_not_found(h: Harness) -> None:
    with pytest.raises(NotFound, match="Topic does not exist"):
        await h.service.publish(SCOPE, PublishRequest("m", topic_arn="arn:aws:sns:us-east-1:123456789012:nope"))


async def test_fifo_publish_requires_group_and_dedup_and_returns_sequence(h: Harness) -> None:
    fifo = await h.service.create_topic(SCOPE, "o.fifo", {"FifoTopic": "true"})

    with pytest.raises(InvalidParameter, match="The MessageGroupId parameter is required for FIFO topics"):
        await h.service.publish(SCOPE, PublishRequest("m", topic_arn=fifo))
    with pytest.raises(InvalidParameter, match="should either have ContentBasedDeduplication enabled"):
        await h.service.publish(SCOPE, PublishRequest("m", topic_arn=fifo, group_id="g"))
    first = await h.service.publish(SCOPE, PublishRequest("m", topic_arn=fifo, group_id="g", dedup_id="d1"))
    repeat = await h.service.publish(SCOPE, PublishRequest("m2", topic_arn=fifo, group_id="g", dedup_id="d1"))
    second = await h.service.publish(SCOPE, PublishRequest("m", topic_arn=fifo, group_id="g", dedup_id="d2"))

    assert first.sequence_number is not None and len(first.sequence_number) == 20
    assert repeat.message_id == first.message_id
    assert int(second.sequence_number or 0) > int(first.sequence_number)


async def test_a_fifo_topic_created_again_does_not_deduplicate_against_the_deleted_one(h: Harness) -> None:
    fifo = await h.service.create_topic(SCOPE, "o.fifo", {"FifoTopic": "true"})
    first = await h.service.publish(SCOPE, PublishRequest("m", topic_arn=fifo, group_id="g", dedup_id="d"))
    await h.service.delete_topic(SCOPE, fifo)
    assert await h.service.create_topic(SCOPE, "o.fifo", {"FifoTopic": "true"}) == fifo

    fresh = await h.service.publish(SCOPE, PublishRequest("m", topic_arn=fifo, group_id="g", dedup_id="d"))
    repeat = await h.service.publish(SCOPE, PublishRequest("m2", topic_arn=fifo, group_id="g", dedup_id="d"))

    assert fresh.message_id != first.message_id
    assert repeat.message_id == fresh.message_id


async def test_content_based_dedup_hashes_the_message(h: Harness) -> None:
    fifo = await h.service.create_topic(SCOPE, "o.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})

    a = await h.service.publish(SCOPE, PublishRequest("same", topic_arn=fifo, group_id="g"))
    b = await h.service.publish(SCOPE, PublishRequest("same", topic_arn=fifo, group_id="g"))
    h.clock.advance(5 * 60 * 1000 + 1)
    c = await h.service.publish(SCOPE, PublishRequest("same", topic_arn=fifo, group_id="g"))

    assert a.message_id == b.message_id
    assert c.message_id != a.message_id


async def test_publish_batch_refuses_the_whole_request_for_an_invalid_entry(h: Harness, topic: str) -> None:
    entries = [("ok", PublishRequest("a")), ("bad", PublishRequest("")), ("ok2", PublishRequest("b", subject="S"))]

    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: Empty message$"):
        await h.service.publish_batch(SCOPE, topic, entries)
    assert await h.drain() == []

    outcome = await h.service.publish_batch(SCOPE, topic, [entries[0], entries[2]])

    assert [entry_id for entry_id, _ in outcome.successful] == ["ok", "ok2"]
    assert outcome.failed == []
    assert [r.message for r in await h.drain() if isinstance(r, PublishedMessage)] == ["a", "b"]
    with pytest.raises(EmptyBatchRequest):
        await h.service.publish_batch(SCOPE, topic, [])
    with pytest.raises(TooManyEntriesInBatchRequest):
        await h.service.publish_batch(SCOPE, topic, [(str(i), PublishRequest("m")) for i in range(11)])
    with pytest.raises(BatchEntryIdsNotDistinct):
        await h.service.publish_batch(SCOPE, topic, [("a", PublishRequest("m")), ("a", PublishRequest("m"))])
    with pytest.raises(InvalidBatchEntryId, match="impermissible character"):
        await h.service.publish_batch(SCOPE, topic, [("a b", PublishRequest("m"))])
    with pytest.raises(BatchRequestTooLong):
        await h.service.publish_batch(
            SCOPE, topic, [("a", PublishRequest(BIG[:200_000])), ("b", PublishRequest(BIG[:70_000]))]
        )


async def test_publish_to_phone_number_records_a_direct_sms(h: Harness) -> None:
    await h.service.publish(SCOPE, PublishRequest("code 1234", phone_number="+15555550100"))

    [push] = await h.drain()

    assert isinstance(push, PushDelivery)
    assert (push.kind, push.protocol, push.endpoint, push.body) == ("notification", "sms", "+15555550100", "code 1234")
    with pytest.raises(InvalidParameter, match="is not valid to publish to"):
        await h.service.publish(SCOPE, PublishRequest("m", phone_number="555"))


async def test_publish_to_opted_out_number_is_accepted_but_not_sent(h: Harness) -> None:
    await h.service.opt_out_phone_number(SCOPE, "+15555550100")

    result = await h.service.publish(SCOPE, PublishRequest("m", phone_number="+15555550100"))

    assert result.message_id
    assert await h.drain() == []


async def test_sandbox_allows_sms_only_to_verified_numbers(tmp_path: Path) -> None:
    async with topic_service(tmp_path, TopicSettings(sms_sandbox=True)) as h:
        with pytest.raises(AuthorizationError, match="SMS sandbox"):
            await h.service.publish(SCOPE, PublishRequest("m", phone_number="+15555550100"))
        await h.service.create_sms_sandbox_phone_number(SCOPE, "+15555550100", "en-US")
        [otp_sms] = await h.pushes()
        otp = otp_sms.body.rsplit(" ", 1)[1]
        await h.service.verify_sms_sandbox_phone_number(SCOPE, "+15555550100", otp)

        await h.service.publish(SCOPE, PublishRequest("m", phone_number="+15555550100"))

        assert [p.body for p in await h.pushes()] == ["m"]


async def test_publish_to_platform_endpoint_uses_platform_payload(h: Harness) -> None:
    app = await h.service.create_platform_application(SCOPE, "app", "GCM", {"PlatformCredential": "key"})
    endpoint = await h.service.create_platform_endpoint(SCOPE, app, "device-1", None, {})
    payload = json.dumps({"default": "d", "GCM": '{"notification": {"title": "t"}}'})

    await h.service.publish(SCOPE, PublishRequest(payload, target_arn=endpoint, message_structure="json"))
    [push] = await h.pushes()

    assert (push.protocol, push.endpoint, push.body) == ("application", endpoint, '{"notification": {"title": "t"}}')
    await h.service.set_endpoint_attributes(SCOPE, endpoint, {"Enabled": "false"})
    with pytest.raises(EndpointDisabled, match="Endpoint is disabled"):
        await h.service.publish(SCOPE, PublishRequest("m", target_arn=endpoint))
    with pytest.raises(InvalidParameter, match="No endpoint found for the target arn specified"):
        await h.service.publish(SCOPE, PublishRequest("m", target_arn=endpoint + "x"))


async def test_empty_topic_arn_is_a_malformed_arn(h: Harness) -> None:
    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: TopicArn Reason: An ARN must have at least 6"):
        await h.service.publish(SCOPE, PublishRequest("m", topic_arn=""))


async def test_message_structure_keeps_only_string_members(h: Harness, topic: str) -> None:
    message = json.dumps({"default": "d", "sqs": {"not": "a string"}, "email": "e"})

    await h.service.publish(SCOPE, PublishRequest(message, topic_arn=topic, message_structure="json"))
    [record] = await h.drain()

    assert isinstance(record, PublishedMessage)
    assert json.loads(record.message) == {"default": "d", "email": "e"}


async def test_message_structure_is_checked_before_fifo_fields(h: Harness) -> None:
    fifo = await h.service.create_topic(SCOPE, "orders.fifo", {"FifoTopic": "true"})

    with pytest.raises(InvalidParameter, match="No default entry"):
        await h.service.publish(SCOPE, PublishRequest('{"sqs": "x"}', topic_arn=fifo, message_structure="json"))


def test_published_message_json_round_trips_every_field() -> None:
    message = PublishedMessage(
        message_id="m",
        topic_arn="arn:aws:sns:us-east-1:000000000000:t.fifo",
        message="héllo",
        timestamp_ms=7,
        subject="s",
        message_structure="json",
        attributes={"a": {"Type": "String", "Value": "v"}},
        group_id="g",
        dedup_id="d",
        sequence_number="00000000000000000001",
        replay_subscription="arn:aws:sns:us-east-1:000000000000:t.fifo:s",
        trace_header="Root=1-3152b799-8954dae64eda91bc9a23a7e8",
    )

    assert PublishedMessage.from_json(message.to_json()) == message
    assert sorted(json.loads(message.to_json())) == sorted(PublishedMessage.__dataclass_fields__)


async def test_publish_sees_a_topic_changed_after_an_earlier_publish(h: Harness, topic: str) -> None:
    await h.service.publish(SCOPE, PublishRequest("before", topic_arn=topic))
    await h.service.delete_topic(SCOPE, topic)

    with pytest.raises(NotFound):
        await h.service.publish(SCOPE, PublishRequest("after", topic_arn=topic))


def test_push_delivery_json_round_trips_every_field() -> None:
    push = PushDelivery(
        kind="notification",
        protocol="https",
        endpoint="https://example.com/x",
        topic_arn="arn:aws:sns:us-east-1:000000000000:t",
        message_id="m",
        body="{}",
        headers={"x-amz-sns-message-type": "Notification"},
        subject="s",
        subscription_arn="arn:aws:sns:us-east-1:000000000000:t:s",
        token="tok",
        timestamp_ms=5,
    )

    assert PushDelivery.from_json(push.to_json()) == push
    assert sorted(json.loads(push.to_json())) == sorted(PushDelivery.__dataclass_fields__)


async def test_publish_acts_on_the_topic_as_changed_through_another_node(h: Harness, topic: str) -> None:
    other_node = TopicService(h.store, h.store, h.clock, SequentialIds())  # type: ignore[arg-type]
    await other_node.add_permission(SCOPE, topic, "partner", [OTHER.account_id], ["Publish"])
    await h.service.publish(OTHER, PublishRequest("allowed", topic_arn=topic))  # this node now knows the topic

    await other_node.remove_permission(SCOPE, topic, "partner")
    with pytest.raises(AuthorizationError):
        await h.service.publish(OTHER, PublishRequest("refused", topic_arn=topic))

    await other_node.add_permission(SCOPE, topic, "partner", [OTHER.account_id], ["Publish"])
    await h.service.publish(OTHER, PublishRequest("allowed again", topic_arn=topic))

    await other_node.delete_topic(SCOPE, topic)
    with pytest.raises(NotFound):
        await h.service.publish(SCOPE, PublishRequest("gone", topic_arn=topic))
    assert [r.message for r in await h.drain() if isinstance(r, PublishedMessage)] == ["allowed", "allowed again"]


async def test_fifo_publish_follows_a_deduplication_setting_changed_through_another_node(h: Harness) -> None:
    fifo = await h.service.create_topic(SCOPE, "orders.fifo", {"FifoTopic": "true"})
    other_node = TopicService(h.store, h.store, h.clock, SequentialIds())  # type: ignore[arg-type]
    await h.service.publish(SCOPE, PublishRequest("a", topic_arn=fifo, group_id="g", dedup_id="d1"))

    await other_node.set_topic_attributes(SCOPE, fifo, "ContentBasedDeduplication", "true")

    result = await h.service.publish(SCOPE, PublishRequest("b", topic_arn=fifo, group_id="g"))
    assert result.message_id


async def test_publish_batch_is_refused_for_a_topic_deleted_through_another_node(h: Harness, topic: str) -> None:
    other_node = TopicService(h.store, h.store, h.clock, SequentialIds())  # type: ignore[arg-type]
    await h.service.publish_batch(SCOPE, topic, [("1", PublishRequest("x", topic_arn=topic))])

    await other_node.delete_topic(SCOPE, topic)

    with pytest.raises(NotFound):
        await h.service.publish_batch(SCOPE, topic, [("1", PublishRequest("y", topic_arn=topic))])


class Gate:
    """An admission that holds every Publish until opened, noting what was asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.opened = asyncio.Event()

    async def admit(self, publications: int) -> None:
        self.asked.append(publications)
        await self.opened.wait()


async def test_publish_is_recorded_only_once_admitted_and_a_refused_one_never_waits(tmp_path: Path) -> None:
    gate = Gate()
    async with topic_service(tmp_path, admission=gate) as h:
        topic = await h.service.create_topic(SCOPE, "held", {})
        with pytest.raises(InvalidParameter):  # refused at once, without asking
            await h.service.publish(SCOPE, PublishRequest("hi", topic_arn=topic, dedup_id="not on a standard topic"))
        assert gate.asked == []

        single = asyncio.create_task(h.service.publish(SCOPE, PublishRequest("one", topic_arn=topic)))
        batch = asyncio.create_task(
            h.service.publish_batch(SCOPE, topic, [(str(i), PublishRequest(f"b{i}")) for i in range(3)])
        )
        sms = asyncio.create_task(h.service.publish(SCOPE, PublishRequest("text", phone_number="+15555550100")))
        for _ in range(50):
            await asyncio.sleep(0)
        assert not (single.done() or batch.done() or sms.done())
        assert sorted(gate.asked) == [1, 1, 3]
        assert await h.drain() == []  # nothing recorded while held

        gate.opened.set()
        await asyncio.gather(single, batch, sms)
        records = await h.drain()
    assert len(records) == 5
