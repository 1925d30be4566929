"""sqs-producer and sqs-consumer (the Node.js libraries most used on top of SQS), unmodified, against a
live server, through tests/compat/js-consumers/consumers_check.mjs (about 12 s).

Skipped locally until ``npm ci`` has run in tests/compat/js-consumers; under CI=true it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

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
    node = shutil.which("node")
    installed = all((JS_DIR / "node_modules" / package).is_dir() for package in ("sqs-consumer", "sqs-producer"))
    if node is None or not installed:
        if os.environ.get("CI") == "true":
            pytest.fail("node and tests/compat/js-consumers/node_modules are required in CI (run npm ci)")
        pytest.skip("run `npm ci` in tests/compat/js-consumers to enable the sqs-consumer and sqs-producer checks")
    env = {**os.environ, "LOOSELY_ENDPOINT": loosely.endpoint}
    done = subprocess.run(
        [node, "consumers_check.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["checks"] == CHECKS
