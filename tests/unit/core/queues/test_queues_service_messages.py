"""QueueService message actions over a real SQLite store, with fake time."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from loosely.core.clock import FakeClock, SystemClock
from loosely.core.errors import (
    BatchRequestTooLong,
    InvalidParameterValue,
    MissingParameter,
    ReceiptHandleIsInvalid,
)
from loosely.core.ids import SequentialIds
from loosely.core.ports import QueueStore
from loosely.core.queues.models import MessageAttributeValue as Attr
from loosely.core.queues.models import QueueKey, ReceiveRequest, SendRequest
from loosely.core.queues.service import QueueService, QueueSettings


def key(name: str) -> QueueKey:
    return QueueKey(account_id="000000000000", region="us-east-1", name=name)


Q = key("q")
FIFO = key("q.fifo")


async def receive(service: QueueService, queue: QueueKey = Q, **options: object) -> list:  # type: ignore[type-arg]
    return await service.receive_message(queue, ReceiveRequest(**options))  # type: ignore[arg-type]


async def test_send_receive_delete_round_trip(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(Q, {}, {})
    sent = await service.send_message(
        Q, SendRequest(body="msg", message_attributes={"Foo": Attr("String", string_value="Bar")}), "AIDASENDER"
    )
    assert sent.md5_of_body == "6e2baaf3b97dbeef01c0043275f9a0e7"
    assert sent.md5_of_message_attributes == "ae7155c6026991b6d54b11589678bf9c"
    assert sent.sequence_number is None
    [message] = await receive(service, attribute_names=("All",), message_attribute_names=("All",))
    assert message.message_id == sent.message_id
    assert message.body == "msg"
    assert message.md5_of_message_attributes == "ae7155c6026991b6d54b11589678bf9c"
    assert message.attributes == {
        "SenderId": "AIDASENDER",
        "SentTimestamp": str(clock.now_ms()),
        "ApproximateReceiveCount": "1",
        "ApproximateFirstReceiveTimestamp": str(clock.now_ms()),
    }
    await service.delete_message(Q, message.receipt_handle)
    await service.delete_message(Q, message.receipt_handle)  # deleting twice succeeds, as on AWS
    clock.advance(31_000)
    assert await receive(service) == []


async def test_receive_without_attribute_names_returns_none(service: QueueService) -> None:
    await service.create_queue(Q, {}, {})
    await service.send_message(
        Q, SendRequest(body="m", message_attributes={"A": Attr("String", string_value="1")}), "s"
    )
    [message] = await receive(service)
    assert message.attributes == {}
    assert message.message_attributes is None  # no names asked: the member is left out
    assert message.md5_of_message_attributes is None


async def test_message_attribute_filter_digest_covers_subset(service: QueueService) -> None:
    await service.create_queue(Q, {}, {})
    attributes = {
        name: Attr("String", string_value=v)
        for name, v in (("General", "Kenobi"), ("Hello", "There"), ("Help.Me", "Me"))
    }
    await service.send_message(Q, SendRequest(body="msg", message_attributes=attributes), "s")
    [message] = await receive(service, message_attribute_names=("Help.*", "Hello"))
    assert set(message.message_attributes) == {"Hello", "Help.Me"}
    assert message.md5_of_message_attributes == "83fee93c1bcd8b9a5a923ffacdc636c7"


async def test_visibility_timeout_hides_then_redelivers(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(Q, {"VisibilityTimeout": "10"}, {})
    await service.send_message(Q, SendRequest(body="m"), "s")
    [first] = await receive(service)
    clock.advance(9_999)
    assert await receive(service) == []
    clock.advance(1)
    [second] = await receive(service, attribute_names=("ApproximateReceiveCount",))
    assert second.attributes == {"ApproximateReceiveCount": "2"}
    assert second.receipt_handle != first.receipt_handle
    await service.delete_message(Q, first.receipt_handle)  # a stale receipt on a standard queue: accepted, no effect
    counts = await service.get_queue_attributes(Q, ["ApproximateNumberOfMessagesNotVisible"])
    assert counts == {"ApproximateNumberOfMessagesNotVisible": "1"}


async def test_receive_visibility_override_and_validation(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(Q, {}, {})
    await service.send_message(Q, SendRequest(body="m"), "s")
    await receive(service, visibility_timeout_s=0)
    assert len(await receive(service, visibility_timeout_s=2)) == 1
    with pytest.raises(InvalidParameterValue, match="MaxNumberOfMessages"):
        await receive(service, max_messages=11)
    with pytest.raises(InvalidParameterValue, match="WaitTimeSeconds"):
        await receive(service, wait_time_s=21)
    with pytest.raises(InvalidParameterValue, match="VisibilityTimeout"):
        await receive(service, visibility_timeout_s=43201)


async def test_change_visibility_outcomes(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(Q, {}, {})
    await service.send_message(Q, SendRequest(body="m"), "s")
    [message] = await receive(service)
    await service.change_message_visibility(Q, message.receipt_handle, 0)
    # As on AWS, the receipt stays good while the message has not been received again.
    await service.change_message_visibility(Q, message.receipt_handle, 0)
    [again] = await receive(service)
    # A receipt of an earlier receive is accepted on a standard queue, as on AWS.
    await service.change_message_visibility(Q, message.receipt_handle, 10)
    with pytest.raises(InvalidParameterValue, match="Total VisibilityTimeout for the message is beyond the limit"):
        clock.advance(1_000)
        await service.change_message_visibility(Q, again.receipt_handle, 43_200)
    await service.change_message_visibility(Q, again.receipt_handle, 43_199)
    await service.delete_message(Q, again.receipt_handle)
    with pytest.raises(
        InvalidParameterValue, match="Message does not exist or is not available for visibility timeout change"
    ):
        await service.change_message_visibility(Q, again.receipt_handle, 10)
    with pytest.raises(
        ReceiptHandleIsInvalid, match=re.escape('The input receipt handle "junk" is not a valid receipt handle.')
    ):
        await service.change_message_visibility(Q, "junk", 10)


async def test_receipt_from_other_queue_is_invalid(service: QueueService) -> None:
    await service.create_queue(Q, {}, {})
    await service.create_queue(key("other"), {}, {})
    await service.send_message(Q, SendRequest(body="m"), "s")
    [message] = await receive(service)
    with pytest.raises(ReceiptHandleIsInvalid):
        await service.delete_message(key("other"), message.receipt_handle)


async def test_queue_and_message_delay(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(Q, {"DelaySeconds": "5"}, {})
    await service.send_message(Q, SendRequest(body="queue-delay"), "s")
    await service.send_message(Q, SendRequest(body="no-delay", delay_s=0), "s")
    assert [m.body for m in await receive(service, max_messages=10)] == ["no-delay"]
    assert await service.get_queue_attributes(Q, ["ApproximateNumberOfMessagesDelayed"]) == {
        "ApproximateNumberOfMessagesDelayed": "1"
    }
    clock.advance(5_000)
    assert [m.body for m in await receive(service)] == ["queue-delay"]


async def test_message_size_limit_from_queue(service: QueueService) -> None:
    await service.create_queue(Q, {"MaximumMessageSize": "1024"}, {})
    await service.send_message(Q, SendRequest(body="x" * 1024), "s")
    with pytest.raises(InvalidParameterValue, match="Message must be shorter than 1024 bytes"):
        await service.send_message(
            Q, SendRequest(body="x" * 1020, message_attributes={"ab": Attr("String", string_value="c")}), "s"
        )


async def test_standard_queue_rejects_dedup_id(service: QueueService) -> None:
    await service.create_queue(Q, {}, {})
    with pytest.raises(InvalidParameterValue, match="parameter MessageDeduplicationId is invalid"):
        await service.send_message(Q, SendRequest(body="m", deduplication_id="d"), "s")


async def test_fifo_send_rules(service: QueueService) -> None:
    await service.create_queue(FIFO, {"FifoQueue": "true"}, {})
    with pytest.raises(MissingParameter, match="MessageGroupId"):
        await service.send_message(FIFO, SendRequest(body="m", deduplication_id="d"), "s")
    with pytest.raises(InvalidParameterValue, match="ContentBasedDeduplication enabled or MessageDeduplicationId"):
        await service.send_message(FIFO, SendRequest(body="m", group_id="g"), "s")
    with pytest.raises(InvalidParameterValue, match="DelaySeconds is invalid"):
        await service.send_message(FIFO, SendRequest(body="m", group_id="g", deduplication_id="d", delay_s=2), "s")


async def test_fifo_purge_forgets_deduplication_ids(service: QueueService) -> None:
    await service.create_queue(FIFO, {"FifoQueue": "true"}, {})
    first = await service.send_message(FIFO, SendRequest(body="1", group_id="g", deduplication_id="d"), "s")
    await service.purge_queue(FIFO)
    second = await service.send_message(FIFO, SendRequest(body="2", group_id="g", deduplication_id="d"), "s")
    duplicate = await service.send_message(FIFO, SendRequest(body="3", group_id="g", deduplication_id="d"), "s")
    assert second.message_id != first.message_id
    assert duplicate.message_id == second.message_id
    assert [m.body for m in await receive(service, FIFO, max_messages=10)] == ["2"]


async def test_fifo_dedup_sequence_and_group_order(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(FIFO, {"FifoQueue": "true", "ContentBasedDeduplication": "true"}, {})
    first = await service.send_message(FIFO, SendRequest(body="one", group_id="g"), "s")
    duplicate = await service.send_message(FIFO, SendRequest(body="one", group_id="g"), "s")
    second = await service.send_message(FIFO, SendRequest(body="two", group_id="g", deduplication_id="explicit"), "s")
    assert duplicate.message_id == first.message_id
    assert first.sequence_number is not None and second.sequence_number is not None
    assert len(first.sequence_number) == 20
    assert second.sequence_number > first.sequence_number
    [head] = await receive(service, FIFO, attribute_names=("All",))
    assert head.body == "one"
    assert head.attributes["MessageGroupId"] == "g"
    assert head.attributes["SequenceNumber"] == first.sequence_number
    assert (
        head.attributes["MessageDeduplicationId"] == "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"
    )
    assert await receive(service, FIFO) == []  # the group is blocked while "one" is in flight
    await service.delete_message(FIFO, head.receipt_handle)
    [tail] = await receive(service, FIFO)
    assert tail.body == "two"


async def test_fifo_stale_receipt_delete_has_expired(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(FIFO, {"FifoQueue": "true", "VisibilityTimeout": "1"}, {})
    await service.send_message(FIFO, SendRequest(body="m", group_id="g", deduplication_id="d"), "s")
    [first] = await receive(service, FIFO)
    clock.advance(1_000)
    [second] = await receive(service, FIFO)
    with pytest.raises(InvalidParameterValue, match="The receipt handle has expired"):
        await service.delete_message(FIFO, first.receipt_handle)
    await service.delete_message(FIFO, second.receipt_handle)


async def test_send_batch_partial_failure(service: QueueService) -> None:
    await service.create_queue(Q, {}, {})
    result = await service.send_message_batch(
        Q,
        [
            ("good-1", SendRequest(body="one")),
            ("bad", SendRequest(body="two", message_attributes={"AWS.x": Attr("String", string_value="v")})),
            ("good-2", SendRequest(body="three", delay_s=0)),
        ],
        "s",
    )
    assert [entry_id for entry_id, _ in result.successful] == ["good-1", "good-2"]
    assert [f.id for f in result.failed] == ["bad"]
    assert isinstance(result.failed[0].error, InvalidParameterValue)
    assert result.failed[0].sender_fault
    assert len(await receive(service, max_messages=10)) == 2


async def test_send_batch_request_level_errors(service: QueueService) -> None:
    await service.create_queue(Q, {"MaximumMessageSize": "1024"}, {})
    # The batch limit is SQS's payload limit, not the queue's MaximumMessageSize (as on AWS).
    fits = await service.send_message_batch(
        Q, [("a", SendRequest(body="x" * 1000)), ("b", SendRequest(body="y" * 25))], "s"
    )
    assert [entry_id for entry_id, _ in fits.successful] == ["a", "b"]
    with pytest.raises(
        BatchRequestTooLong,
        match=re.escape("Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes."),
    ):
        await service.send_message_batch(
            Q, [("a", SendRequest(body="x" * 1_048_000)), ("b", SendRequest(body="y" * 577))], "s"
        )
    await service.create_queue(FIFO, {"FifoQueue": "true"}, {})
    with pytest.raises(InvalidParameterValue, match=r"^The request must contain the parameter MessageGroupId\.$"):
        await service.send_message_batch(FIFO, [("a", SendRequest(body="x", deduplication_id="d"))], "s")


async def test_delete_and_change_visibility_batches(service: QueueService) -> None:
    await service.create_queue(Q, {}, {})
    for body in ("a", "b"):
        await service.send_message(Q, SendRequest(body=body), "s")
    received = await receive(service, max_messages=10)
    assert len(received) == 2
    changed = await service.change_message_visibility_batch(
        Q, [("x", received[0].receipt_handle, 0), ("bad", "junk", 5), ("y", received[1].receipt_handle, 99_999)]
    )
    assert [entry_id for entry_id, _ in changed.successful] == ["x"]
    assert [f.id for f in changed.failed] == ["bad", "y"]
    assert isinstance(changed.failed[0].error, ReceiptHandleIsInvalid)
    deleted = await service.delete_message_batch(Q, [("one", received[1].receipt_handle), ("two", "junk")])
    assert [entry_id for entry_id, _ in deleted.successful] == ["one"]
    assert [f.id for f in deleted.failed] == ["two"]


async def test_dead_letter_after_max_receives(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(key("dlq"), {}, {})
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": 1})
    await service.create_queue(Q, {"RedrivePolicy": policy, "VisibilityTimeout": "1"}, {})
    sent = await service.send_message(Q, SendRequest(body="poison"), "s")
    assert len(await receive(service)) == 1
    clock.advance(1_000)
    assert await receive(service) == []
    [dead] = await receive(service, key("dlq"), attribute_names=("All",))
    assert dead.message_id == sent.message_id
    assert dead.attributes["DeadLetterQueueSourceArn"] == "arn:aws:sqs:us-east-1:000000000000:q"


async def test_long_poll_sleeps_until_delayed_message_is_due(service: QueueService, waits, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    await service.create_queue(Q, {}, {})
    await service.send_message(Q, SendRequest(body="later", delay_s=2), "s")
    start = clock.now_ms()
    [message] = await receive(service, wait_time_s=10)
    assert message.body == "later"
    assert clock.now_ms() - start == 2_000
    assert waits.waits == [2.0]


async def test_long_poll_empty_queue_waits_whole_time(service: QueueService, waits, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    await service.create_queue(Q, {"ReceiveMessageWaitTimeSeconds": "3"}, {})
    start = clock.now_ms()
    assert await receive(service) == []
    assert clock.now_ms() - start == 3_000
    assert sum(waits.waits) == pytest.approx(3.0)


async def test_long_poll_wakes_on_send(store: QueueStore) -> None:
    service = QueueService(store, SystemClock(), SequentialIds(), QueueSettings())
    await service.create_queue(Q, {}, {})
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiting = asyncio.create_task(service.receive_message(Q, ReceiveRequest(wait_time_s=5)))
    await asyncio.sleep(0.05)
    await service.send_message(Q, SendRequest(body="wake"), "s")
    [message] = await asyncio.wait_for(waiting, timeout=4)
    assert message.body == "wake"
    assert loop.time() - started < 2


async def test_stop_waiting_answers_parked_long_polls_at_once(store: QueueStore) -> None:
    """A stopping node: parked receives answer now, with what one more claim finds, and new ones do not park."""
    service = QueueService(store, SystemClock(), SequentialIds(), QueueSettings())
    await service.create_queue(Q, {}, {})
    loop = asyncio.get_running_loop()
    started = loop.time()
    parked = [asyncio.create_task(service.receive_message(Q, ReceiveRequest(wait_time_s=20))) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in parked)

    service.stop_waiting()

    assert await asyncio.wait_for(asyncio.gather(*parked), timeout=4) == [[], [], []]
    assert await service.receive_message(Q, ReceiveRequest(wait_time_s=20)) == []
    await service.send_message(Q, SendRequest(body="kept"), "s")  # messages are claimed as before
    [message] = await service.receive_message(Q, ReceiveRequest(wait_time_s=20))
    assert message.body == "kept"
    assert loop.time() - started < 3


async def test_expire_messages_once_after_retention(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(Q, {"MessageRetentionPeriod": "60"}, {})
    await service.send_message(Q, SendRequest(body="old"), "s")
    clock.advance(59_000)
    assert await service.expire_messages_once() == 0
    clock.advance(1_001)
    assert await service.expire_messages_once() == 1
    assert await receive(service) == []
