"""QueueService queue administration over a real SQLite store."""

from __future__ import annotations

import json

import pytest

from loosely.core.clock import FakeClock
from loosely.core.errors import (
    InvalidAttributeName,
    InvalidParameterValue,
    PurgeQueueInProgress,
    QueueDeletedRecently,
    QueueDoesNotExist,
    QueueNameExists,
)
from loosely.core.queues.models import QueueKey, ReceiveRequest, SendRequest
from loosely.core.queues.service import QueueService


def key(name: str) -> QueueKey:
    return QueueKey(account_id="000000000000", region="us-east-1", name=name)


async def test_create_queue_defaults_visible_in_get_queue_attributes(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(key("q"), {}, {})
    result = await service.get_queue_attributes(key("q"), ["All"])
    assert result == {
        "VisibilityTimeout": "30",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
        "SqsManagedSseEnabled": "true",
        "QueueArn": "arn:aws:sqs:us-east-1:000000000000:q",
        "CreatedTimestamp": str(clock.now_ms() // 1000),
        "LastModifiedTimestamp": str(clock.now_ms() // 1000),
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
    }


async def test_create_queue_same_attributes_returns_existing(service: QueueService) -> None:
    first = await service.create_queue(key("q"), {"DelaySeconds": "5"}, {})
    again = await service.create_queue(key("q"), {"DelaySeconds": "5", "VisibilityTimeout": "30"}, {})
    bare = await service.create_queue(key("q"), {}, {})
    assert first.id == again.id == bare.id


async def test_create_queue_different_attribute_raises_queue_name_exists(service: QueueService) -> None:
    await service.create_queue(key("q"), {"DelaySeconds": "5"}, {})
    with pytest.raises(QueueNameExists) as caught:
        await service.create_queue(key("q"), {"DelaySeconds": "6"}, {})
    assert (
        caught.value.message
        == "A queue already exists with the same name and a different value for attribute DelaySeconds"
    )


async def test_create_fifo_queue_defaults(service: QueueService) -> None:
    await service.create_queue(key("q.fifo"), {"FifoQueue": "true"}, {})
    result = await service.get_queue_attributes(
        key("q.fifo"), ["FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"]
    )
    assert result == {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "queue",
        "FifoThroughputLimit": "perQueue",
    }


async def test_create_queue_fifo_name_without_fifo_attribute_rejected(service: QueueService) -> None:
    with pytest.raises(InvalidParameterValue, match="Can only include alphanumeric"):
        await service.create_queue(key("q.fifo"), {}, {})


async def test_create_queue_after_delete_waits_recreate_delay(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(key("q"), {}, {})
    await service.delete_queue(key("q"))
    with pytest.raises(QueueDeletedRecently, match="You must wait 60 seconds after deleting a queue"):
        await service.create_queue(key("q"), {}, {})
    clock.advance(60_001)
    await service.create_queue(key("q"), {}, {})


async def test_queue_actions_on_missing_queue_raise_queue_does_not_exist(service: QueueService) -> None:
    for action in (
        service.get_queue(key("nope")),
        service.delete_queue(key("nope")),
        service.get_queue_attributes(key("nope"), ["All"]),
        service.send_message(key("nope"), SendRequest(body="x"), "s"),
        service.receive_message(key("nope"), ReceiveRequest()),
    ):
        with pytest.raises(QueueDoesNotExist, match=r"^The specified queue does not exist\.$"):
            await action


async def test_get_queue_attributes_unknown_name_and_empty(service: QueueService) -> None:
    await service.create_queue(key("q"), {}, {})
    with pytest.raises(InvalidAttributeName, match=r"^Unknown Attribute Bogus\.$"):
        await service.get_queue_attributes(key("q"), ["Bogus"])
    assert await service.get_queue_attributes(key("q"), []) == {}
    assert await service.get_queue_attributes(key("q"), ["Policy"]) == {}


async def test_set_queue_attributes_updates_values_and_modified_time(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(key("q"), {}, {})
    clock.advance(5_000)
    await service.set_queue_attributes(key("q"), {"VisibilityTimeout": "69", "MaximumMessageSize": "2048"})
    result = await service.get_queue_attributes(
        key("q"), ["VisibilityTimeout", "MaximumMessageSize", "LastModifiedTimestamp", "CreatedTimestamp"]
    )
    assert result["VisibilityTimeout"] == "69"
    assert result["MaximumMessageSize"] == "2048"
    assert int(result["LastModifiedTimestamp"]) == int(result["CreatedTimestamp"]) + 5


async def test_set_redrive_policy_requires_existing_same_kind_dlq(service: QueueService) -> None:
    await service.create_queue(key("q"), {}, {})
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": "3"})
    with pytest.raises(InvalidParameterValue, match="Dead letter target does not exist"):
        await service.set_queue_attributes(key("q"), {"RedrivePolicy": policy})
    await service.create_queue(key("dlq"), {}, {})
    await service.set_queue_attributes(key("q"), {"RedrivePolicy": policy})
    stored = await service.get_queue_attributes(key("q"), ["RedrivePolicy"])
    assert stored == {
        "RedrivePolicy": '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":3}'
    }
    await service.set_queue_attributes(key("q"), {"RedrivePolicy": ""})
    assert await service.get_queue_attributes(key("q"), ["RedrivePolicy"]) == {}


async def test_redrive_policy_respects_deny_all_and_queue_kind(service: QueueService) -> None:
    await service.create_queue(key("dlq"), {"RedriveAllowPolicy": '{"redrivePermission":"denyAll"}'}, {})
    await service.create_queue(key("dlq.fifo"), {"FifoQueue": "true"}, {})
    await service.create_queue(key("q"), {}, {})
    deny = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": 3})
    with pytest.raises(InvalidParameterValue, match="does not allow"):
        await service.set_queue_attributes(key("q"), {"RedrivePolicy": deny})
    kind = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq.fifo", "maxReceiveCount": 3})
    with pytest.raises(InvalidParameterValue, match="same type of queue"):
        await service.set_queue_attributes(key("q"), {"RedrivePolicy": kind})


async def test_list_queues_prefix_and_pagination(service: QueueService) -> None:
    for name in ("a1", "a2", "a3", "b1"):
        await service.create_queue(key(name), {}, {})
    everything, token = await service.list_queues("000000000000", "us-east-1", None, None, None)
    assert [q.key.name for q in everything] == ["a1", "a2", "a3", "b1"]
    assert token is None
    page, token = await service.list_queues("000000000000", "us-east-1", "a", 2, None)
    assert [q.key.name for q in page] == ["a1", "a2"]
    assert token is not None
    rest, token = await service.list_queues("000000000000", "us-east-1", "a", 2, token)
    assert [q.key.name for q in rest] == ["a3"]
    assert token is None
    with pytest.raises(InvalidParameterValue, match="parameter MaxResults is invalid"):
        await service.list_queues("000000000000", "us-east-1", None, 1001, None)


async def test_tags_add_remove_and_limit(service: QueueService) -> None:
    await service.create_queue(key("q"), {}, {"team": "a"})
    await service.tag_queue(key("q"), {"env": "dev", "team": "b"})
    assert await service.list_queue_tags(key("q")) == {"team": "b", "env": "dev"}
    await service.untag_queue(key("q"), ["team", "absent"])
    assert await service.list_queue_tags(key("q")) == {"env": "dev"}
    with pytest.raises(InvalidParameterValue, match="Too many tags"):
        await service.tag_queue(key("q"), {f"k{i}": "v" for i in range(50)})


async def test_permissions_edit_policy_attribute(service: QueueService) -> None:
    await service.create_queue(key("q"), {}, {})
    await service.add_permission(key("q"), "share", ["111111111111"], ["SendMessage"])
    policy = json.loads((await service.get_queue_attributes(key("q"), ["Policy"]))["Policy"])
    assert policy["Statement"][0]["Sid"] == "share"
    assert policy["Statement"][0]["Resource"] == "arn:aws:sqs:us-east-1:000000000000:q"
    with pytest.raises(InvalidParameterValue, match="Already exists"):
        await service.add_permission(key("q"), "share", ["111111111111"], ["SendMessage"])
    await service.remove_permission(key("q"), "share")
    assert await service.get_queue_attributes(key("q"), ["Policy"]) == {}


async def test_purge_removes_messages_and_limits_rate(service: QueueService, clock: FakeClock) -> None:
    await service.create_queue(key("q"), {}, {})
    await service.send_message(key("q"), SendRequest(body="x"), "s")
    await service.purge_queue(key("q"))
    assert (await service.get_queue_attributes(key("q"), ["ApproximateNumberOfMessages"])) == {
        "ApproximateNumberOfMessages": "0"
    }
    with pytest.raises(PurgeQueueInProgress) as caught:
        await service.purge_queue(key("q"))
    assert caught.value.message == "Only one PurgeQueue operation on q is allowed every 60 seconds."
    clock.advance(60_000)
    await service.purge_queue(key("q"))


async def test_list_dead_letter_source_queues(service: QueueService) -> None:
    await service.create_queue(key("dlq"), {}, {})
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": 3})
    for name in ("src1", "src2"):
        await service.create_queue(key(name), {"RedrivePolicy": policy}, {})
    await service.create_queue(key("other"), {}, {})
    sources, token = await service.list_dead_letter_source_queues(key("dlq"), None, None)
    assert [q.key.name for q in sources] == ["src1", "src2"]
    assert token is None
    first, token = await service.list_dead_letter_source_queues(key("dlq"), 1, None)
    assert [q.key.name for q in first] == ["src1"]
    second, token = await service.list_dead_letter_source_queues(key("dlq"), 1, token)
    assert [q.key.name for q in second] == ["src2"]
    assert token is None
