"""Fair queues over boto3: MessageGroupId on a standard queue names a tenant, a noisy one waits its turn."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from loosely.storage._fair import NOISY_MIN_IN_FLIGHT

pytestmark = pytest.mark.compat


def _send(sqs: Any, url: str, bodies: list[str], group: str | None) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body, **({"MessageGroupId": group} if group else {})}
            for i, body in enumerate(bodies[start : start + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def test_quiet_tenants_are_received_ahead_of_a_noisy_backlog(loosely: Any) -> None:
    sqs = loosely.boto3_client("sqs")
    url = sqs.create_queue(QueueName=f"fair-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    noisy = NOISY_MIN_IN_FLIGHT + 10
    _send(sqs, url, [f"a-flight{i}" for i in range(noisy)], "tenant-a")
    in_flight = []
    while len(in_flight) < noisy:
        in_flight += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    assert all(m["Body"].startswith("a-flight") for m in in_flight)
    _send(sqs, url, [f"a-old{i}" for i in range(3)], "tenant-a")
    _send(sqs, url, ["b1", "b2"], "tenant-b")
    _send(sqs, url, ["plain"], None)
    # No wait for the server's clock: it has handed out enough of the queue's messages since its last
    # detection of noisy tenants to make the next receive detect again.

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    got_bodies = [m["Body"] for m in got]
    assert sorted(got_bodies[:3]) == ["b1", "b2", "plain"]
    assert got_bodies[3:] == ["a-old0", "a-old1", "a-old2"]
