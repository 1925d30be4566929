"""Two loosely nodes on one PostgreSQL database behave as one SQS endpoint.

Skipped when PostgreSQL is unreachable, except under CI=true, where it must run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.compat, pytest.mark.postgres]

POSTGRES_URL = os.environ.get("LOOSELY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def require_postgres() -> None:
    parts = urlsplit(POSTGRES_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required in CI: {exc}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable")


def test_two_nodes_share_queues_and_hand_each_message_out_once(
    start_loosely: Callable[..., Any], tmp_path: Any
) -> None:
    require_postgres()
    args = ("--database", POSTGRES_URL)
    node_a = start_loosely(tmp_path / "a", args=args)
    node_b = start_loosely(tmp_path / "b", args=args)
    sqs_a = node_a.boto3_client("sqs")
    sqs_b = node_b.boto3_client("sqs", protocol="query")
    name = f"shared-{uuid.uuid4().hex[:10]}"

    url_a = sqs_a.create_queue(QueueName=name)["QueueUrl"]
    url_b = sqs_b.get_queue_url(QueueName=name)["QueueUrl"]
    assert url_b.endswith(f"/000000000000/{name}")
    sent = {sqs_a.send_message(QueueUrl=url_a, MessageBody=f"m{i}")["MessageId"] for i in range(10)}

    seen: list[str] = []
    for _ in range(20):
        for sqs, url in ((sqs_a, url_a), (sqs_b, url_b)):
            response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=60)
            seen.extend(m["MessageId"] for m in response.get("Messages", []))
        if len(seen) >= len(sent):
            break
    assert sorted(seen) == sorted(sent), "every message exactly once across both nodes"

    sqs_b.delete_queue(QueueUrl=url_b)
    with pytest.raises(sqs_a.exceptions.QueueDoesNotExist):
        sqs_a.get_queue_url(QueueName=name)
