"""aws-sdk-js v3 (@aws-sdk/client-sqs, @aws-sdk/client-sns) against a live server, through the scripts
in tests/compat/js (sqs_check.mjs, sns_check.mjs).

Skipped locally until ``npm ci`` has run in tests/compat/js; under CI=true they must run.
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

JS_DIR = Path(__file__).parent / "js"


def _run_check(loosely: Any, script: str, package: str) -> list[str]:
    """Run ``node <script>`` against the server; the checks its summary line names."""
    node = shutil.which("node")
    installed = (JS_DIR / "node_modules" / "@aws-sdk" / package).is_dir()
    if node is None or not installed:
        if os.environ.get("CI") == "true":
            pytest.fail("node and tests/compat/js/node_modules are required in CI (run npm ci)")
        pytest.skip("run `npm ci` in tests/compat/js to enable the aws-sdk-js v3 checks")
    env = {**os.environ, "LOOSELY_ENDPOINT": loosely.endpoint}
    done = subprocess.run([node, script], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    return list(summary["checks"])


def test_aws_sdk_js_v3_send_receive_delete_fifo_and_typed_error(loosely: Any) -> None:
    checks = _run_check(loosely, "sqs_check.mjs", "client-sqs")
    assert checks == ["send-receive-delete", "fifo-order", "typed-error"]


def test_aws_sdk_js_v3_sns_fan_out_envelope_and_typed_error(loosely: Any) -> None:
    checks = _run_check(loosely, "sns_check.mjs", "client-sns")
    assert checks == ["create-subscribe", "publish-batch", "envelope", "list-subscriptions", "typed-error"]
