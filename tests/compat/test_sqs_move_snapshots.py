"""Message move tasks checked against AWS responses that LocalStack recorded.

Source of every expected value: localstack/localstack
``tests/aws/services/sqs/test_sqs_move_task.snapshot.json`` (recorded from AWS in January and March
2024), with the inputs of ``tests/aws/services/sqs/test_sqs_move_task.py``. Each check names the
recorded test and snapshot key. Paths that LocalStack marks as not verified against AWS are not used
as facts: ``ApproximateNumberOfMessagesMoved`` while a task runs or after it is cancelled or fails
(AWS updates it late) is only checked for its type and bounds. The snapshot tool sorts keys, so the
recordings say which members are present, not their order.

Runs over both wire protocols (JSON and Query) with boto3, as SDK users read the answers.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from compat_helpers import arn_of, raised

pytestmark = pytest.mark.compat

# Generous deadline for a task to reach a state; each wait returns as soon as it is reached.
DEADLINE_S = 15.0
POLL_S = 0.1


@pytest.fixture(params=["json", "query"])
def sqs(request: pytest.FixtureRequest, loosely: Any) -> Iterator[Any]:
    client = loosely.boto3_client("sqs", protocol=request.param)
    yield client
    client.close()


def new_queue(sqs: Any, **attributes: str) -> str:
    return str(sqs.create_queue(QueueName=f"mv-{uuid.uuid4().hex[:12]}", Attributes=attributes)["QueueUrl"])


def redriving_to(sqs: Any, dlq_arn: str) -> str:
    """A queue whose messages go to ``dlq_arn`` on their second receive (maxReceiveCount 1)."""
    return new_queue(sqs, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))


def dlq_pipe(sqs: Any) -> tuple[str, str]:
    """(source queue, its dead-letter queue), as the recorded tests' ``sqs_create_dlq_pipe`` makes them."""
    dlq = new_queue(sqs)
    return redriving_to(sqs, arn_of(sqs, dlq)), dlq


def dead_letter(sqs: Any, source: str, dlq: str, bodies: list[str]) -> None:
    """Send ``bodies`` to ``source`` and receive each twice, so they end in ``dlq`` (as the recordings do)."""
    for body in bodies:
        sqs.send_message(QueueUrl=source, MessageBody=body)
    for _ in range(len(bodies) * 2):
        sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)
    assert visible_count(sqs, dlq) >= len(bodies)


def visible_count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def collect(sqs: Any, url: str, expected: int) -> list[str]:
    """Receive and delete until ``expected`` bodies arrived; long polls return as soon as one is there."""
    got: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < expected and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []):
            got.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return got


def only_task(sqs: Any, source_arn: str) -> dict[str, Any]:
    response = sqs.list_message_move_tasks(SourceArn=source_arn)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    [task] = response["Results"]
    return dict(task)


def wait_until_not(sqs: Any, source_arn: str, *statuses: str) -> dict[str, Any]:
    """The source's latest task once its status left ``statuses`` (polled, with a deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    task = only_task(sqs, source_arn)
    while task["Status"] in statuses and time.monotonic() < deadline:
        time.sleep(POLL_S)
        task = only_task(sqs, source_arn)
    return task


def task_handle(task_id: str, source_arn: str) -> str:
    """A handle in AWS's form: base64 of ``{"taskId":..,"sourceArn":..}`` (what the recorded test builds)."""
    return base64.b64encode(
        json.dumps({"taskId": task_id, "sourceArn": source_arn}, separators=(",", ":")).encode()
    ).decode()


def without_timestamp(task: dict[str, Any]) -> dict[str, Any]:
    """The task's members, with StartedTimestamp (recorded as "timestamp") checked and dropped."""
    started = task.pop("StartedTimestamp")
    assert isinstance(started, int) and abs(started - time.time() * 1000) < 120_000
    return task


# ---- errors ----


def test_cancel_with_invalid_task_handle(sqs: Any) -> None:
    # test_cancel_with_invalid_task_handle / error
    assert raised(sqs.cancel_message_move_task, TaskHandle="foobared") == (
        "InvalidParameterValue",
        "Value for parameter TaskHandle is invalid.",
        400,
    )


def test_cancel_with_invalid_source_arn_in_task_handle(sqs: Any) -> None:
    # test_cancel_with_invalid_source_arn_in_task_handle / error
    handle = task_handle(
        "10f57157-fc38-4da9-a113-4de7e12d05dd", "arn:aws:sqs:us-east-1:878966065785:test-queue-doesnt-exist-123456"
    )
    assert raised(sqs.cancel_message_move_task, TaskHandle=handle) == (
        "ResourceNotFoundException",
        "The resource that you specified for the SourceArn parameter doesn't exist.",
        404,
    )


def test_cancel_with_invalid_task_id_in_task_handle(sqs: Any) -> None:
    # test_cancel_with_invalid_task_id_in_task_handle / error
    handle = task_handle("10f57157-fc38-4da9-a113-4de7e12d05aa", arn_of(sqs, new_queue(sqs)))
    assert raised(sqs.cancel_message_move_task, TaskHandle=handle) == (
        "ResourceNotFoundException",
        "Task does not exist.",
        404,
    )


def test_source_needs_redrive_policy(sqs: Any) -> None:
    # test_source_needs_redrive_policy / error
    source_arn, destination_arn = arn_of(sqs, new_queue(sqs)), arn_of(sqs, new_queue(sqs))
    assert raised(sqs.start_message_move_task, SourceArn=source_arn, DestinationArn=destination_arn) == (
        "InvalidParameterValue",
        "Source queue must be configured as a Dead Letter Queue.",
        400,
    )


def test_destination_needs_to_exist(sqs: Any) -> None:
    # test_destination_needs_to_exist / error
    _, dlq = dlq_pipe(sqs)
    destination_arn = arn_of(sqs, new_queue(sqs)) + "doesntexist"
    assert raised(sqs.start_message_move_task, SourceArn=arn_of(sqs, dlq), DestinationArn=destination_arn) == (
        "ResourceNotFoundException",
        "The resource that you specified for the DestinationArn parameter doesn't exist.",
        404,
    )


def test_start_multiple_move_tasks(sqs: Any) -> None:
    # test_start_multiple_move_tasks / error
    source, dlq = dlq_pipe(sqs)
    dead_letter(sqs, source, dlq, [f"message-{i}" for i in range(10)])
    source_arn, destination_arn = arn_of(sqs, dlq), arn_of(sqs, new_queue(sqs))
    sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=1)
    again = {"SourceArn": source_arn, "DestinationArn": destination_arn, "MaxNumberOfMessagesPerSecond": 1}
    assert raised(sqs.start_message_move_task, **again) == (
        "InvalidParameterValue",
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
        400,
    )


# ---- workflows ----


def test_basic_move_task_workflow(sqs: Any) -> None:
    source, dlq = dlq_pipe(sqs)
    dead_letter(sqs, source, dlq, ["message-1", "message-2"])
    source_arn = arn_of(sqs, dlq)
    destination = new_queue(sqs)
    destination_arn = arn_of(sqs, destination)

    # test_basic_move_task_workflow / start-message-move-task-response: TaskHandle only, status 200;
    # the recorded test decodes it to a UUID task id and the source ARN.
    started = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)
    assert started["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(started) == {"TaskHandle", "ResponseMetadata"}
    decoded = json.loads(base64.b64decode(started["TaskHandle"]))
    assert uuid.UUID(decoded["taskId"]) and decoded["sourceArn"] == source_arn

    assert sorted(collect(sqs, destination, 2)) == ["message-1", "message-2"]
    # test_basic_move_task_workflow / list-message-move-task-response: no rate given, so no
    # MaxNumberOfMessagesPerSecond; not running, so no TaskHandle.
    assert without_timestamp(wait_until_not(sqs, source_arn, "RUNNING")) == {
        "ApproximateNumberOfMessagesMoved": 2,
        "ApproximateNumberOfMessagesToMove": 2,
        "DestinationArn": destination_arn,
        "SourceArn": source_arn,
        "Status": "COMPLETED",
    }
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq)


def test_move_task_workflow_with_default_destination(sqs: Any) -> None:
    source, dlq = dlq_pipe(sqs)
    dead_letter(sqs, source, dlq, ["message-1", "message-2"])
    source_arn = arn_of(sqs, dlq)

    # test_move_task_workflow_with_default_destination / start-message-move-task-response
    started = sqs.start_message_move_task(SourceArn=source_arn)
    assert set(started) == {"TaskHandle", "ResponseMetadata"}
    assert json.loads(base64.b64decode(started["TaskHandle"]))["sourceArn"] == source_arn

    assert sorted(collect(sqs, source, 2)) == ["message-1", "message-2"]
    # test_move_task_workflow_with_default_destination / list-message-move-task-response: no DestinationArn.
    assert without_timestamp(wait_until_not(sqs, source_arn, "RUNNING")) == {
        "ApproximateNumberOfMessagesMoved": 2,
        "ApproximateNumberOfMessagesToMove": 2,
        "SourceArn": source_arn,
        "Status": "COMPLETED",
    }


def test_move_task_workflow_with_multiple_sources_as_default_destination(sqs: Any) -> None:
    first, dlq = dlq_pipe(sqs)
    source_arn = arn_of(sqs, dlq)
    second = redriving_to(sqs, source_arn)
    dead_letter(sqs, first, dlq, ["message-1-1", "message-1-2"])
    dead_letter(sqs, second, dlq, ["message-2-1", "message-2-2"])

    # test_move_task_workflow_with_multiple_sources_as_default_destination / start-message-move-task-response
    assert set(sqs.start_message_move_task(SourceArn=source_arn)) == {"TaskHandle", "ResponseMetadata"}

    assert sorted(collect(sqs, first, 2)) == ["message-1-1", "message-1-2"]
    assert sorted(collect(sqs, second, 2)) == ["message-2-1", "message-2-2"]
    # test_move_task_workflow_with_multiple_sources_as_default_destination / list-message-move-task-response
    assert without_timestamp(wait_until_not(sqs, source_arn, "RUNNING")) == {
        "ApproximateNumberOfMessagesMoved": 4,
        "ApproximateNumberOfMessagesToMove": 4,
        "SourceArn": source_arn,
        "Status": "COMPLETED",
    }


def test_move_task_with_throughput_limit(sqs: Any) -> None:
    source, dlq = dlq_pipe(sqs)
    dead_letter(sqs, source, dlq, [f"message-{i}" for i in range(4)])
    destination = new_queue(sqs)

    # test_move_task_with_throughput_limit / start-message-move-task-response; the recorded test then
    # requires the four messages at one a second to take at least three seconds to arrive.
    started = sqs.start_message_move_task(
        SourceArn=arn_of(sqs, dlq), DestinationArn=arn_of(sqs, destination), MaxNumberOfMessagesPerSecond=1
    )
    assert set(started) == {"TaskHandle", "ResponseMetadata"}
    begun = time.monotonic()
    assert sorted(collect(sqs, destination, 4)) == [f"message-{i}" for i in range(4)]
    assert time.monotonic() - begun >= 3


def test_move_task_cancel(sqs: Any) -> None:
    source, dlq = dlq_pipe(sqs)
    dead_letter(sqs, source, dlq, [f"message-{i}" for i in range(10)])
    source_arn = arn_of(sqs, dlq)
    destination = new_queue(sqs)
    destination_arn = arn_of(sqs, destination)
    handle = sqs.start_message_move_task(
        SourceArn=source_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=1
    )["TaskHandle"]
    assert len(collect(sqs, destination, 2)) == 2

    # test_move_task_cancel / list-while: a running task lists its TaskHandle and its rate.
    running = without_timestamp(only_task(sqs, source_arn))
    moved = running.pop("ApproximateNumberOfMessagesMoved")  # not verified by the recording
    assert isinstance(moved, int) and 0 <= moved < 10
    assert running == {
        "ApproximateNumberOfMessagesToMove": 10,
        "DestinationArn": destination_arn,
        "MaxNumberOfMessagesPerSecond": 1,
        "SourceArn": source_arn,
        "Status": "RUNNING",
        "TaskHandle": handle,
    }

    # test_move_task_cancel / cancel: only ApproximateNumberOfMessagesMoved (its value not verified).
    cancelled = sqs.cancel_message_move_task(TaskHandle=handle)
    assert set(cancelled) == {"ApproximateNumberOfMessagesMoved", "ResponseMetadata"}
    assert isinstance(cancelled["ApproximateNumberOfMessagesMoved"], int)

    # test_move_task_cancel / list-after: CANCELLED, no TaskHandle; messages are left in the DLQ.
    after = without_timestamp(wait_until_not(sqs, source_arn, "RUNNING", "CANCELLING"))
    moved = after.pop("ApproximateNumberOfMessagesMoved")
    assert isinstance(moved, int) and 2 <= moved < 10
    assert after == {
        "ApproximateNumberOfMessagesToMove": 10,
        "DestinationArn": destination_arn,
        "MaxNumberOfMessagesPerSecond": 1,
        "SourceArn": source_arn,
        "Status": "CANCELLED",
    }
    assert "Messages" in sqs.receive_message(QueueUrl=dlq)


def test_move_task_delete_destination_queue_while_running(sqs: Any) -> None:
    source, dlq = dlq_pipe(sqs)
    dead_letter(sqs, source, dlq, [f"message-{i}" for i in range(10)])
    source_arn = arn_of(sqs, dlq)
    destination = new_queue(sqs)
    destination_arn = arn_of(sqs, destination)
    sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=1)
    sqs.delete_queue(QueueUrl=destination)

    # test_move_task_delete_destination_queue_while_running / list: FAILED with AWS's queue error code
    # as FailureReason (LocalStack skips that path because its own value differs; AWS's is the fact).
    failed = without_timestamp(wait_until_not(sqs, source_arn, "RUNNING"))
    moved = failed.pop("ApproximateNumberOfMessagesMoved")
    assert isinstance(moved, int) and 0 <= moved < 10
    assert failed == {
        "ApproximateNumberOfMessagesToMove": 10,
        "DestinationArn": destination_arn,
        "FailureReason": "AWS.SimpleQueueService.NonExistentQueue",
        "MaxNumberOfMessagesPerSecond": 1,
        "SourceArn": source_arn,
        "Status": "FAILED",
    }
    assert "Messages" in sqs.receive_message(QueueUrl=dlq)
