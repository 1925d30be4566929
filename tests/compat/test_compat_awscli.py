"""The AWS CLI (``aws --endpoint-url ... sqs ...``) against a live server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.compat


def test_cli_queue_and_message_round_trip(loosely: Any) -> None:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    created = loosely.aws("sqs", "create-queue", "--queue-name", name)
    assert created.returncode == 0, created.stderr
    url = created.json["QueueUrl"]
    assert url.endswith(f"/000000000000/{name}")

    listed = loosely.aws("sqs", "list-queues", "--queue-name-prefix", name)
    assert listed.json["QueueUrls"] == [url]

    sent = loosely.aws("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli")
    assert sent.returncode == 0, sent.stderr
    assert sent.json["MD5OfMessageBody"] == "adc1c5502a75b5c1afdc54d0d67abd6f"

    received = loosely.aws("sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "1")
    [message] = received.json["Messages"]
    assert message["Body"] == "from the cli"
    deleted = loosely.aws("sqs", "delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"])
    assert deleted.returncode == 0, deleted.stderr

    attributes = loosely.aws("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")
    assert attributes.json["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_cli_reports_missing_queue(loosely: Any) -> None:
    result = loosely.aws("sqs", "get-queue-url", "--queue-name", "no-such-queue-here")
    assert result.returncode != 0
    assert "NonExistentQueue" in result.stderr or "QueueDoesNotExist" in result.stderr
