"""Small helpers the compat tests share: unique names, a queue's ARN, a ClientError's parts, Node checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError


def unique(prefix: str = "q") -> str:
    """A queue name no other test of the shared server uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def arn_of(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    """The error's code, message and HTTP status, as an SDK user reads them."""
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def raised(call: Callable[..., object], **kwargs: Any) -> tuple[str, str, int]:
    """`error_of` the ClientError that ``call(**kwargs)`` must raise."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return error_of(caught)


def run_node_check(
    project: Path,
    args: Sequence[str],
    endpoint: str,
    needs: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout_s: float = 120,
) -> dict[str, Any]:
    """Run ``node <args>`` in a Node project of the compat tests against ``endpoint``; its JSON summary line.

    ``needs``: paths under ``node_modules`` that must be installed. Without node or them the test is
    skipped, except under CI=true, where it fails: CI installs every project with ``npm ci``.
    """
    node = shutil.which("node")
    if node is None or not all((project / "node_modules" / need).exists() for need in needs):
        if os.environ.get("CI") == "true":
            pytest.fail(f"node and {project.name}/node_modules are required in CI (run npm ci)")
        pytest.skip(f"run `npm ci` in tests/compat/{project.name} to enable these checks")
    done = subprocess.run(
        [node, *args],
        cwd=project,
        env={**os.environ, "LOOSELY_ENDPOINT": endpoint, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    return summary
