"""The in-flight limit over boto3 in both wire protocols, on a server started with a limit of three."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from compat_helpers import error_of

pytestmark = pytest.mark.compat

LIMIT = 3


@pytest.fixture
def server(start_loosely: Callable[..., Any]) -> Any:
    return start_loosely(args=("--queue-max-in-flight", str(LIMIT)))


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_receive_past_the_in_flight_limit(server: Any, protocol: str) -> None:
    sqs = server.boto3_client("sqs", protocol=protocol)
    url = sqs.create_queue(QueueName=f"limit-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    fifo_url = sqs.create_queue(
        QueueName=f"limit-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
        sqs.send_message(QueueUrl=fifo_url, MessageBody=f"m{i}", MessageGroupId=f"g{i}")

    taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    with pytest.raises(ClientError) as short_poll:
        sqs.receive_message(QueueUrl=url)
    long_poll = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    fifo_taken = sqs.receive_message(QueueUrl=fifo_url, MaxNumberOfMessages=10)["Messages"]
    fifo_again = sqs.receive_message(QueueUrl=fifo_url, MaxNumberOfMessages=10)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=taken[0]["ReceiptHandle"])
    after_delete = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    code, message, status = error_of(short_poll)
    assert (len(taken), len(fifo_taken), len(after_delete)) == (LIMIT, LIMIT, 1)
    assert (code, status) == ("OverLimit", 403)
    assert message.startswith("Too many messages have been received without being deleted.")
    assert long_poll.get("Messages", []) == []
    assert fifo_again.get("Messages", []) == []
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("1", "3")
