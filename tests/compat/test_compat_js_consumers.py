"""sqs-producer and sqs-consumer (the Node.js libraries most used on top of SQS), unmodified, against a
live server, through tests/compat/js-consumers/consumers_check.mjs (about 12 s).

Skipped locally until ``npm ci`` has run in tests/compat/js-consumers; under CI=true it must run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from compat_helpers import run_node_check

pytestmark = pytest.mark.compat

JS_DIR = Path(__file__).parent / "js-consumers"

CHECKS = [
    "producer-single",
    "producer-batch",
    "producer-attributes",
    "producer-delay",
    "producer-fifo",
    "consumer-handle-message",
    "consumer-handle-message-batch",
    "consumer-visibility-timeout",
    "consumer-terminate-visibility",
    "consumer-dead-letter",
    "consumer-heartbeat",
    "consumer-attributes",
    "consumer-fifo-order",
    "consumer-missing-queue",
    "consumer-stop",
]


def test_sqs_producer_and_sqs_consumer(loosely: Any) -> None:
    summary = run_node_check(JS_DIR, ["consumers_check.mjs"], loosely.endpoint, ["sqs-consumer", "sqs-producer"])
    assert summary["checks"] == CHECKS
