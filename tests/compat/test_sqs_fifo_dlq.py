"""FIFO queues, dead-letter queues and message move tasks as AWS answers them (boto3, JSON and Query)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.compat


@pytest.fixture(params=["json", "query"])
def sqs(request: pytest.FixtureRequest, loosely: Any) -> Iterator[Any]:
    client = loosely.boto3_client("sqs", protocol=request.param)
    yield client
    client.close()


def name(suffix: str = "") -> str:
    return f"f-{uuid.uuid4().hex[:12]}{suffix}"


def fifo_queue(sqs: Any, **attributes: str) -> str:
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true", **attributes}
    return str(sqs.create_queue(QueueName=name(".fifo"), Attributes=attributes)["QueueUrl"])


def arn_of(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def send_all(sqs: Any, url: str, *pairs: tuple[str, str]) -> None:
    for body, group in pairs:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)


def bodies(response: dict[str, Any]) -> list[str]:
    return [m["Body"] for m in response.get("Messages", [])]


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


# ---- FIFO ----


def test_fifo_receive_returns_groups_in_order(sqs: Any) -> None:
    url = fifo_queue(sqs)
    send_all(sqs, url, ("g1-m1", "1"), ("g2-m1", "2"), ("g1-m2", "1"), ("g1-m3", "1"))
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == ["g1-m1", "g1-m2", "g1-m3", "g2-m1"]


def test_fifo_group_stays_blocked_after_partial_delete(sqs: Any) -> None:
    url = fifo_queue(sqs)
    send_all(sqs, url, ("g1-m1", "1"), ("g2-m1", "2"), ("g1-m2", "1"), ("g2-m2", "2"), ("g1-m3", "1"), ("g3-m1", "3"))
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)
    assert bodies(first) == ["g1-m1", "g1-m2"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["Messages"][0]["ReceiptHandle"])
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == ["g2-m1", "g2-m2", "g3-m1"]


def test_fifo_zero_visibility_receive_releases_the_group(sqs: Any) -> None:
    url = fifo_queue(sqs)
    send_all(sqs, url, ("g1-m1", "1"), ("g2-m1", "2"), ("g2-m2", "2"), ("g3-m1", "3"), ("g1-m2", "1"))
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=0)
    assert bodies(first) == ["g1-m1", "g1-m2", "g2-m1"]
    again = bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0))
    assert sorted(again) == ["g1-m1", "g1-m2", "g2-m1", "g2-m2", "g3-m1"]


def test_fifo_group_visible_again_when_its_first_message_is(loosely: Any) -> None:
    sqs = loosely.boto3_client("sqs")
    url = fifo_queue(sqs)
    send_all(sqs, url, ("g1-m1", "1"), ("g1-m2", "1"), ("g2-m1", "2"))
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["Messages"][0]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, WaitTimeSeconds=1)) == ["g2-m1", "g1-m1"]


def test_fifo_one_group_under_concurrent_receivers_is_in_order_and_once(sqs: Any, loosely: Any) -> None:
    url = fifo_queue(sqs)
    for start in range(0, 30, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": f"{i:02d}", "MessageGroupId": "g"} for i in range(start, start + 10)
            ],
        )
    seen: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        client = loosely.boto3_client("sqs")
        try:
            for _ in range(40):
                got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3, WaitTimeSeconds=1)
                for message in got.get("Messages", []):
                    with lock:
                        seen.append(message["Body"])
                    client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                with lock:
                    if len(seen) >= 30:
                        return
        finally:
            client.close()

    workers = [threading.Thread(target=consume) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert seen == [f"{i:02d}" for i in range(30)]


def test_fifo_deduplication_by_id_by_content_and_after_delete(sqs: Any) -> None:
    url = fifo_queue(sqs)
    first = sqs.send_message(QueueUrl=url, MessageBody='{"foo": "bar"}', MessageGroupId="g1")
    again = sqs.send_message(QueueUrl=url, MessageBody='{"foo": "bar"}', MessageGroupId="g2")
    assert again["MessageId"] == first["MessageId"]  # dedup is queue-wide, not per group
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sqs.send_message(QueueUrl=url, MessageBody='{"foo": "bar"}', MessageGroupId="g1")
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)

    explicit = fifo_queue(sqs, ContentBasedDeduplication="false")
    sqs.send_message(QueueUrl=explicit, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="d1")
    sqs.send_message(QueueUrl=explicit, MessageBody="b", MessageGroupId="g", MessageDeduplicationId="d1")
    sqs.send_message(QueueUrl=explicit, MessageBody="a", MessageGroupId="g", MessageDeduplicationId="d2")
    got = sqs.receive_message(QueueUrl=explicit, MaxNumberOfMessages=10, AttributeNames=["All"])
    assert bodies(got) == ["a", "a"]
    assert [m["Attributes"]["MessageDeduplicationId"] for m in got["Messages"]] == ["d1", "d2"]


def test_fifo_message_group_deduplication_scope(sqs: Any) -> None:
    url = fifo_queue(sqs, DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    first = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g1")
    other = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g2")
    assert first["MessageId"] != other["MessageId"]


def test_fifo_purge_forgets_deduplication_ids(sqs: Any) -> None:
    url = fifo_queue(sqs, ContentBasedDeduplication="false")
    sqs.send_message(QueueUrl=url, MessageBody="message-1", MessageGroupId="g", MessageDeduplicationId="d")
    sqs.purge_queue(QueueUrl=url)
    sqs.send_message(QueueUrl=url, MessageBody="message-2", MessageGroupId="g", MessageDeduplicationId="d")
    assert bodies(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)) == ["message-2"]


def test_fifo_sequence_numbers_and_system_attributes(sqs: Any) -> None:
    url = fifo_queue(sqs)
    sent = [sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="group-1") for i in range(3)]
    numbers = [int(s["SequenceNumber"]) for s in sent]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    assert all(len(s["SequenceNumber"]) == 20 for s in sent)
    [message] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert set(message["Attributes"]) == {
        "SenderId",
        "SentTimestamp",
        "ApproximateReceiveCount",
        "ApproximateFirstReceiveTimestamp",
        "SequenceNumber",
        "MessageDeduplicationId",
        "MessageGroupId",
    }
    assert message["Attributes"]["SequenceNumber"] == sent[0]["SequenceNumber"]
    assert message["Attributes"]["MessageGroupId"] == "group-1"


def test_fifo_receive_request_attempt_id_returns_the_same_messages(sqs: Any) -> None:
    url = fifo_queue(sqs)
    send_all(sqs, url, *[(f"m{i}", "g") for i in range(4)])
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, ReceiveRequestAttemptId="attempt-1")
    retry = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, ReceiveRequestAttemptId="attempt-1")
    assert bodies(first) == bodies(retry) == ["m0", "m1"]
    assert [m["MessageId"] for m in first["Messages"]] == [m["MessageId"] for m in retry["Messages"]]


def test_fifo_send_rules(sqs: Any) -> None:
    url = fifo_queue(sqs, ContentBasedDeduplication="false")
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="g")
    assert error_of(info) == (
        "InvalidParameterValue",
        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
        400,
    )
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="m", MessageDeduplicationId="d")
    assert error_of(info) == ("MissingParameter", "The request must contain the parameter MessageGroupId.", 400)
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="1", MessageDeduplicationId="d", DelaySeconds=2)
    assert error_of(info) == (
        "InvalidParameterValue",
        "Value 2 for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid "
        "for this queue type.",
        400,
    )
    sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="1", MessageDeduplicationId="d", DelaySeconds=0)
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="a b", MessageDeduplicationId="d2")
    assert error_of(info)[0] == "InvalidParameterValue"


def test_fifo_batch_without_group_or_dedup_fails_whole_batch(sqs: Any) -> None:
    url = fifo_queue(sqs, ContentBasedDeduplication="false")
    ok = {"Id": "ok", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "d"}
    with pytest.raises(ClientError) as info:
        sqs.send_message_batch(QueueUrl=url, Entries=[ok, {"Id": "x", "MessageBody": "b", "MessageGroupId": "g"}])
    assert error_of(info) == (
        "InvalidParameterValue",
        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
        400,
    )
    with pytest.raises(ClientError) as info:
        sqs.send_message_batch(
            QueueUrl=url, Entries=[ok, {"Id": "x", "MessageBody": "b", "MessageDeduplicationId": "d"}]
        )
    assert error_of(info) == ("InvalidParameterValue", "The request must contain the parameter MessageGroupId.", 400)


def test_fifo_queue_delay_applies_to_every_message(sqs: Any) -> None:
    url = fifo_queue(sqs, DelaySeconds="1")
    send_all(sqs, url, ("message-1", "1"), ("message-2", "1"))
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    time.sleep(1.2)  # both delays over; a receive then sees the whole group
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3)) == ["message-1", "message-2"]


def test_fifo_expired_receipt_cannot_delete(sqs: Any) -> None:
    url = fifo_queue(sqs, VisibilityTimeout="1")
    send_all(sqs, url, ("g1-m1", "1"))
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3)  # received again after the 1 s timeout
    with pytest.raises(ClientError) as info:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    assert error_of(info) == (
        "InvalidParameterValue",
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.",
        400,
    )


# ---- dead letters ----


def test_redrive_moves_after_max_receive_count_and_names_its_source(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName=name("dlq"))["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 2})
    source = sqs.create_queue(QueueName=name("src"), Attributes={"RedrivePolicy": policy, "VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    sent = sqs.send_message(QueueUrl=source, MessageBody="poison")
    assert bodies(sqs.receive_message(QueueUrl=source)) == ["poison"]
    assert bodies(sqs.receive_message(QueueUrl=source)) == ["poison"]
    assert "Messages" not in sqs.receive_message(QueueUrl=source)
    [dead] = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"], WaitTimeSeconds=2)["Messages"]
    assert dead["MessageId"] == sent["MessageId"]
    assert dead["Attributes"]["DeadLetterQueueSourceArn"] == arn_of(sqs, source)
    # SQS keeps counting across the move: two receives, the third that moved it, and this one.
    assert dead["Attributes"]["ApproximateReceiveCount"] == "4"
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    stored = json.loads(
        sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    assert stored == {"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 2}


def test_fifo_dead_letter_queue(sqs: Any) -> None:
    dlq = fifo_queue(sqs, MessageRetentionPeriod="1209600")
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 2})
    url = fifo_queue(sqs, VisibilityTimeout="60", RedrivePolicy=policy)
    sent = sqs.send_message(QueueUrl=url, MessageBody="foobar", MessageGroupId="1")
    for _ in range(3):
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, VisibilityTimeout=0)
    [message] = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2)["Messages"]
    assert (message["MessageId"], message["Body"]) == (sent["MessageId"], "foobar")


def test_redrive_policy_rules(sqs: Any) -> None:
    standard_dlq = sqs.create_queue(QueueName=name("dlq"))["QueueUrl"]
    fifo_dlq = fifo_queue(sqs)
    url = sqs.create_queue(QueueName=name("src"))["QueueUrl"]
    for policy in (
        {"deadLetterTargetArn": arn_of(sqs, standard_dlq)},
        {"maxReceiveCount": 5},
        {"deadLetterTargetArn": arn_of(sqs, standard_dlq), "maxReceiveCount": 0},
        {"deadLetterTargetArn": arn_of(sqs, standard_dlq), "maxReceiveCount": 1001},
        {"deadLetterTargetArn": arn_of(sqs, fifo_dlq), "maxReceiveCount": 5},
        {"deadLetterTargetArn": arn_of(sqs, standard_dlq) + "-missing", "maxReceiveCount": 5},
    ):
        with pytest.raises(ClientError) as info:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})
        assert error_of(info)[0] == "InvalidParameterValue", policy
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn_of(sqs, standard_dlq), "maxReceiveCount": "42"})
        },
    )


def test_redrive_allow_policy_deny_all(sqs: Any) -> None:
    dlq = sqs.create_queue(
        QueueName=name("dlq"), Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})}
    )["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn_of(sqs, dlq), "maxReceiveCount": 1})
    with pytest.raises(ClientError) as info:
        sqs.create_queue(QueueName=name("src"), Attributes={"RedrivePolicy": policy})
    assert error_of(info)[0] == "InvalidParameterValue"


# ---- message move tasks ----


def wait_for_status(sqs: Any, source_arn: str, status: str, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        [task] = sqs.list_message_move_tasks(SourceArn=source_arn)["Results"]
        if task["Status"] == status or time.monotonic() > deadline:
            return dict(task)
        time.sleep(0.2)


def test_move_task_returns_messages_to_their_source(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName=name("dlq"))["QueueUrl"]
    dlq_arn = arn_of(sqs, dlq)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source = sqs.create_queue(QueueName=name("src"), Attributes={"RedrivePolicy": policy, "VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    for i in range(3):
        sqs.send_message(QueueUrl=source, MessageBody=f"m{i}")
    for _ in range(3):
        sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)
    counts = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "3"}

    # At two a second the first step moves two of the three, so the task is still running a second later
    # when the second start arrives (at a higher rate it could finish in one step and race the assertion).
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=2)["TaskHandle"]
    with pytest.raises(ClientError) as info:
        sqs.start_message_move_task(SourceArn=dlq_arn)
    assert error_of(info)[0] == "InvalidParameterValue"
    task = wait_for_status(sqs, dlq_arn, "COMPLETED")
    assert task["Status"] == "COMPLETED"
    assert (task["ApproximateNumberOfMessagesMoved"], task["ApproximateNumberOfMessagesToMove"]) == (3, 3)
    assert task["SourceArn"] == dlq_arn and "TaskHandle" not in task
    got = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"])
    assert sorted(bodies(got)) == ["m0", "m1", "m2"]
    # A moved message starts afresh, or the source's maxReceiveCount of 1 would send it straight back.
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in got["Messages"]} == {"1"}
    with pytest.raises(ClientError) as info:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert error_of(info)[0] in {"InvalidParameterValue", "ResourceNotFoundException"}


def test_move_task_to_explicit_destination(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName=name("dlq"))["QueueUrl"]
    dlq_arn = arn_of(sqs, dlq)
    sqs.create_queue(
        QueueName=name("src"),
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})},
    )
    sqs.send_message(QueueUrl=dlq, MessageBody="parked")
    target = sqs.create_queue(QueueName=name("dst"))["QueueUrl"]
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=arn_of(sqs, target))
    wait_for_status(sqs, dlq_arn, "COMPLETED")
    assert bodies(sqs.receive_message(QueueUrl=target, WaitTimeSeconds=2)) == ["parked"]


def test_move_task_errors(sqs: Any) -> None:
    plain = sqs.create_queue(QueueName=name("plain"))["QueueUrl"]
    with pytest.raises(ClientError) as info:
        sqs.start_message_move_task(SourceArn=arn_of(sqs, plain))
    assert error_of(info) == ("InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.", 400)
    with pytest.raises(ClientError) as info:
        sqs.start_message_move_task(SourceArn=arn_of(sqs, plain) + "-missing")
    assert error_of(info)[0] == "ResourceNotFoundException"
    assert error_of(info)[2] == 400 or error_of(info)[2] == 404
    with pytest.raises(ClientError) as info:
        sqs.list_message_move_tasks(SourceArn="not-an-arn")
    assert error_of(info)[0] == "InvalidParameterValue"
