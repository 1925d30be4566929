"""Durability: what was acknowledged survives ``kill -9``; what was in flight comes back after its timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.compat, pytest.mark.slow]

SENT = 20
IN_FLIGHT = 5
DELETED = 2
VISIBILITY_S = 2


def drain(sqs: Any, url: str, expected: int, deadline_s: float) -> dict[str, tuple[str, float]]:
    """Receive (keeping messages in flight) until ``expected`` distinct messages came or time ran out.

    Returns message id → (body, monotonic time it was first seen).
    """
    seen: dict[str, tuple[str, float]] = {}
    deadline = time.monotonic() + deadline_s
    while len(seen) < expected and time.monotonic() < deadline:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60)
        now = time.monotonic()
        for message in response.get("Messages", []):
            seen.setdefault(message["MessageId"], (message["Body"], now))
    return seen


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_kill_9_keeps_acknowledged_messages(start_loosely: Callable[..., Any], protocol: str) -> None:
    server = start_loosely()
    sqs = server.boto3_client("sqs", protocol=protocol)
    name = f"durable-{protocol}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    bodies = {sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")["MessageId"]: f"m{i}" for i in range(SENT)}

    receive_started = time.monotonic()
    received: list[dict[str, Any]] = []
    while len(received) < IN_FLIGHT:
        response = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=IN_FLIGHT - len(received), VisibilityTimeout=VISIBILITY_S
        )
        received.extend(response.get("Messages", []))
    for message in received[:DELETED]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    deleted = {m["MessageId"] for m in received[:DELETED]}
    in_flight = {m["MessageId"] for m in received[DELETED:]}
    server.process.kill()

    restarted = start_loosely(server.data_dir)
    sqs = restarted.boto3_client("sqs", protocol=protocol)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    expected = {mid: body for mid, body in bodies.items() if mid not in deleted}
    seen = drain(sqs, url, len(expected), deadline_s=VISIBILITY_S + 15)

    assert {mid: body for mid, (body, _) in seen.items()} == expected
    for mid in in_flight:
        assert seen[mid][1] >= receive_started + VISIBILITY_S, "an in-flight message came back before its timeout"
