"""A server whose disk has less free space than its limit: no new messages, everything else goes on.

Started with ``--disk-free-limit`` far above any disk's free space, so the watermark holds from the
start: SQS sends and SNS publishes get ``ServiceUnavailable`` (503) in each protocol's shape, which
SDKs retry with backoff, while queues can still be created, received from and purged, and the
server stays up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from compat_helpers import raised

pytestmark = pytest.mark.compat

UNREACHABLE_MIB = 10**9  # about a thousand TiB free: no disk here has it


@pytest.fixture
def server(start_loosely: Callable[..., Any]) -> Any:
    return start_loosely(args=("--disk-free-limit", str(UNREACHABLE_MIB)))


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_sends_are_refused_and_the_rest_is_served(server: Any, protocol: str) -> None:
    sqs = server.boto3_client("sqs", protocol=protocol)
    url = sqs.create_queue(QueueName=f"full-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    code, message, status = raised(sqs.send_message, QueueUrl=url, MessageBody="m")
    assert (code, status) == ("ServiceUnavailable", 503)
    assert "disk space" in message
    batch = raised(sqs.send_message_batch, QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "m"}])
    assert batch[::2] == ("ServiceUnavailable", 503)

    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    sqs.purge_queue(QueueUrl=url)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_the_json_answer_carries_the_query_error_header(server: Any) -> None:
    sqs = server.boto3_client("sqs")
    url = sqs.create_queue(QueueName=f"full-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    response = httpx.post(
        server.endpoint,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS.SendMessage",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
        json={"QueueUrl": url, "MessageBody": "m"},
    )
    assert response.status_code == 503
    assert response.json()["__type"].endswith("ServiceUnavailable")
    assert response.headers["x-amzn-query-error"] == "ServiceUnavailable;Receiver"


def test_publishes_are_refused(server: Any) -> None:
    sns = server.boto3_client("sns", protocol="query")
    topic = sns.create_topic(Name=f"full-{uuid.uuid4().hex[:8]}")["TopicArn"]

    code, message, status = raised(sns.publish, TopicArn=topic, Message="m")
    assert (code, status) == ("ServiceUnavailable", 503)
    assert "disk space" in message
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
