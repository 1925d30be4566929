"""aws-sdk-js v3 (@aws-sdk/client-sqs, @aws-sdk/client-sns) against a live server, through the scripts
in tests/compat/js (sqs_check.mjs, sns_check.mjs).

Skipped locally until ``npm ci`` has run in tests/compat/js; under CI=true they must run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from compat_helpers import run_node_check

pytestmark = pytest.mark.compat

JS_DIR = Path(__file__).parent / "js"


def _run_check(loosely: Any, script: str, package: str) -> list[str]:
    """Run ``node <script>`` against the server; the checks its summary line names."""
    return list(run_node_check(JS_DIR, [script], loosely.endpoint, [f"@aws-sdk/{package}"])["checks"])


def test_aws_sdk_js_v3_send_receive_delete_fifo_and_typed_error(loosely: Any) -> None:
    checks = _run_check(loosely, "sqs_check.mjs", "client-sqs")
    assert checks == ["send-receive-delete", "fifo-order", "typed-error"]


def test_aws_sdk_js_v3_sns_fan_out_envelope_and_typed_error(loosely: Any) -> None:
    checks = _run_check(loosely, "sns_check.mjs", "client-sns")
    assert checks == ["create-subscribe", "publish-batch", "envelope", "list-subscriptions", "typed-error"]
