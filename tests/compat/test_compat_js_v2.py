"""The AWS SDK for JavaScript v2 (npm ``aws-sdk``), unmodified, against a live server, through
tests/compat/js-v2/v2_check.mjs (about 2 s per release): 2.1490.0, the last v2 release whose SQS
client speaks Query, and the latest v2 release, whose SQS client speaks AWS JSON. SNS is Query in both.

Skipped locally until ``npm ci`` has run in tests/compat/js-v2; under CI=true it must run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from compat_helpers import run_node_check

pytestmark = pytest.mark.compat

JS_DIR = Path(__file__).parent / "js-v2"

CHECKS = [
    "create-get-list-queues",
    "queue-attributes",
    "queue-tags",
    "send-message-md5",
    "send-batch-md5",
    "receive-md5-attributes",
    "system-attributes",
    "change-visibility-batch-partial",
    "delete-message-batch",
    "checksum-enforced",
    "fifo-order",
    "long-polling",
    "typed-error",
    "purge-queue",
    "delete-queue",
    "sns-create-topic",
    "sns-subscribe-sqs",
    "sns-publish-attributes",
    "sns-publish-batch",
    "sns-typed-error",
    "sns-delete-topic",
    "wire-protocol",
]


@pytest.mark.parametrize(
    ("protocol", "package", "version"),
    [("query", "aws-sdk-query", "2.1490.0"), ("json", "aws-sdk-json", "2.1693.0")],
    ids=["sqs-query-2.1490.0", "sqs-json-latest"],
)
def test_aws_sdk_js_v2(loosely: Any, protocol: str, package: str, version: str) -> None:
    summary = run_node_check(JS_DIR, ["v2_check.mjs", protocol], loosely.endpoint, [f"{package}/package.json"])
    assert (summary["sdk"], summary["protocol"]) == (version, protocol)
    assert summary["checks"] == CHECKS
