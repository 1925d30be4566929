"""Message move tasks (redrive from a dead-letter queue) over a real SQLite store."""

from __future__ import annotations

import json

import pytest

from loosely.core.clock import FakeClock
from loosely.core.errors import InvalidParameterValue, ResourceNotFound
from loosely.core.queues.models import QueueKey, ReceiveRequest, SendRequest
from loosely.core.queues.service import QueueService

ACCOUNT = "000000000000"
SRC_ARN = "arn:aws:sqs:us-east-1:000000000000:src"
DLQ_ARN = "arn:aws:sqs:us-east-1:000000000000:dlq"


def key(name: str) -> QueueKey:
    return QueueKey(account_id=ACCOUNT, region="us-east-1", name=name)


async def dead_letter(service: QueueService, clock: FakeClock, count: int) -> None:
    """Create src → dlq (maxReceiveCount 1) and push ``count`` messages into the dead-letter queue."""
    await service.create_queue(key("dlq"), {}, {})
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 1})
    await service.create_queue(key("src"), {"RedrivePolicy": policy, "VisibilityTimeout": "1"}, {})
    for index in range(count):
        await service.send_message(key("src"), SendRequest(body=f"m{index}"), "s")
    assert len(await service.receive_message(key("src"), ReceiveRequest(max_messages=10))) == count
    clock.advance(1_000)
    assert await service.receive_message(key("src"), ReceiveRequest(max_messages=10)) == []
    counts = await service.get_queue_attributes(key("dlq"), ["ApproximateNumberOfMessages"])
    assert counts == {"ApproximateNumberOfMessages": str(count)}


async def test_start_validates_source_destination_and_rate(service: QueueService, clock: FakeClock) -> None:
    await dead_letter(service, clock, 1)
    with pytest.raises(InvalidParameterValue, match="You must use this format to specify the SourceArn"):
        await service.start_message_move_task(ACCOUNT, "not-an-arn", None, None)
    with pytest.raises(ResourceNotFound, match="SourceArn parameter doesn't exist"):
        await service.start_message_move_task(ACCOUNT, DLQ_ARN + "x", None, None)
    with pytest.raises(InvalidParameterValue, match=r"^Source queue must be configured as a Dead Letter Queue\.$"):
        await service.start_message_move_task(ACCOUNT, SRC_ARN, None, None)
    with pytest.raises(ResourceNotFound, match="DestinationArn parameter doesn't exist"):
        await service.start_message_move_task(ACCOUNT, DLQ_ARN, SRC_ARN + "x", None)
    with pytest.raises(InvalidParameterValue, match="MaxNumberOfMessagesPerSecond"):
        await service.start_message_move_task(ACCOUNT, DLQ_ARN, None, 501)


async def test_move_back_to_original_source_completes(service: QueueService, clock: FakeClock) -> None:
    await dead_letter(service, clock, 3)
    handle = await service.start_message_move_task(ACCOUNT, DLQ_ARN, None, None)
    [running] = await service.list_message_move_tasks(ACCOUNT, DLQ_ARN, None)
    assert running.status == "RUNNING"
    assert running.task_handle == handle
    assert running.approximate_to_move == 3
    with pytest.raises(InvalidParameterValue, match="There is already a task running"):
        await service.start_message_move_task(ACCOUNT, DLQ_ARN, None, None)
    assert await service.run_move_tasks_once("node-1")
    [done] = await service.list_message_move_tasks(ACCOUNT, DLQ_ARN, 10)
    assert done.status == "COMPLETED"
    assert done.task_handle is None
    assert done.moved == 3
    back = await service.receive_message(key("src"), ReceiveRequest(max_messages=10))
    assert sorted(m.body for m in back) == ["m0", "m1", "m2"]
    assert not await service.run_move_tasks_once("node-1")


async def test_move_rate_limited_one_step_per_second(service: QueueService, clock: FakeClock) -> None:
    await dead_letter(service, clock, 3)
    await service.create_queue(key("elsewhere"), {}, {})
    await service.start_message_move_task(ACCOUNT, DLQ_ARN, "arn:aws:sqs:us-east-1:000000000000:elsewhere", 1)
    assert await service.run_move_tasks_once("node-1")
    assert not await service.run_move_tasks_once("node-2")  # the next step is not due yet
    clock.advance(1_000)
    assert await service.run_move_tasks_once("node-2")
    [task] = await service.list_message_move_tasks(ACCOUNT, DLQ_ARN, None)
    assert task.moved == 2
    assert task.status == "RUNNING"
    assert task.max_per_second == 1
    counts = await service.get_queue_attributes(key("elsewhere"), ["ApproximateNumberOfMessages"])
    assert counts == {"ApproximateNumberOfMessages": "2"}


async def test_cancel_running_task(service: QueueService, clock: FakeClock) -> None:
    await dead_letter(service, clock, 2)
    handle = await service.start_message_move_task(ACCOUNT, DLQ_ARN, None, 1)
    assert await service.run_move_tasks_once("node-1")
    assert await service.cancel_message_move_task(ACCOUNT, handle) == 1
    clock.advance(1_000)
    assert await service.run_move_tasks_once("node-1")
    [task] = await service.list_message_move_tasks(ACCOUNT, DLQ_ARN, None)
    assert task.status == "CANCELLED"
    assert task.moved == 1
    with pytest.raises(InvalidParameterValue, match=r"^Value for parameter TaskHandle is invalid\.$"):
        await service.cancel_message_move_task(ACCOUNT, "nonsense")


async def test_task_fails_when_destination_deleted(service: QueueService, clock: FakeClock) -> None:
    await dead_letter(service, clock, 1)
    await service.create_queue(key("elsewhere"), {}, {})
    await service.start_message_move_task(ACCOUNT, DLQ_ARN, "arn:aws:sqs:us-east-1:000000000000:elsewhere", None)
    await service.delete_queue(key("elsewhere"))
    assert await service.run_move_tasks_once("node-1")
    [task] = await service.list_message_move_tasks(ACCOUNT, DLQ_ARN, None)
    assert task.status == "FAILED"
    assert task.failure_reason == "AWS.SimpleQueueService.NonExistentQueue"


async def test_list_validates_max_results_and_source(service: QueueService, clock: FakeClock) -> None:
    await dead_letter(service, clock, 1)
    with pytest.raises(InvalidParameterValue, match="between 1 and 10"):
        await service.list_message_move_tasks(ACCOUNT, DLQ_ARN, 11)
    with pytest.raises(ResourceNotFound):
        await service.list_message_move_tasks(ACCOUNT, DLQ_ARN + "x", None)
    assert await service.list_message_move_tasks(ACCOUNT, DLQ_ARN, None) == []
