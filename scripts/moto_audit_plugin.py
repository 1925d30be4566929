"""pytest plugin that lets moto's own SQS and SNS tests run against a live loosely server.

Loaded by ``scripts/audit_moto.py`` (``-p moto_audit_plugin``) inside the venv that holds moto; it is
not part of loosely's test suite. It is configured by environment variables:

- ``MOTO_AUDIT_ENDPOINT``: the server every boto3 client reaches (``AWS_ENDPOINT_URL`` is set too).
- ``MOTO_AUDIT_MODE``: ``verified`` runs only the tests moto marks as checked against AWS, as moto
  itself would with ``MOTO_TEST_ALLOW_AWS_REQUEST=true``; ``mocked`` runs moto's other tests with
  ``mock_aws`` made a no-op, so their calls reach the server instead of moto's in-process backend.
- ``MOTO_AUDIT_ACCOUNT``: the account STS names (the server's account for the credentials used).
- ``MOTO_AUDIT_RECEIVE_WAIT``: seconds to wait before each short-poll ``ReceiveMessage``, because SNS
  fans out after ``Publish`` returns (on AWS and on loosely) while moto delivers inside ``Publish``.

Why each piece exists:

- STS ``GetCallerIdentity`` and SSM ``GetParameter`` are answered locally: moto's AWS-verified tests
  ask for the account id and for a Firebase key, and loosely serves neither service.
- Every queue, topic, subscription and platform application is deleted before each test, because moto
  gives each test a fresh backend and its tests count what they list.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.handlers
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

ENDPOINT = os.environ.get("MOTO_AUDIT_ENDPOINT", "")
MODE = os.environ.get("MOTO_AUDIT_MODE", "mocked")
ACCOUNT = os.environ.get("MOTO_AUDIT_ACCOUNT", "123456789012")
RECEIVE_WAIT_S = float(os.environ.get("MOTO_AUDIT_RECEIVE_WAIT", "0") or 0)

_regions_seen: set[str] = {"us-east-1"}


# ---- mock_aws as a no-op (mocked mode) ----


class _NoMock:
    """Stands in for moto's ``mock_aws`` in every form its tests use: decorator, factory, context."""

    def __call__(self, func: Any = None, **_: Any) -> Any:
        return _NoMock() if func is None else func

    def __enter__(self) -> _NoMock:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def start(self, *_: Any, **__: Any) -> None:
        return None

    def stop(self, *_: Any, **__: Any) -> None:
        return None


def _disable_mock_aws() -> None:
    """Replace ``moto.mock_aws`` before any test module imports it."""
    import moto
    import moto.core.decorator

    no_mock = _NoMock()
    moto.mock_aws = no_mock
    moto.core.decorator.mock_aws = no_mock


# ---- botocore hooks: local STS/SSM answers, regions in use, the SNS receive wait ----


def _local_answer(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse("https://local.invalid/", 200, {}, None)
    return http, {**parsed, "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}}}


def _sts_identity(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    return _local_answer({"UserId": "AIDAAUDIT", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/audit"})


def _ssm_parameter(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    name = json.loads(params.get("body") or b"{}").get("Name", "parameter")
    now = datetime.datetime.now(datetime.UTC)
    return _local_answer(
        {
            "Parameter": {
                "Name": name,
                "Type": "SecureString",
                "Value": "audit-key",
                "Version": 1,
                "LastModifiedDate": now,
            }
        }
    )


def _note_region(region_name: str | None = None, **_: Any) -> None:
    if region_name:
        _regions_seen.add(region_name)


def _wait_before_short_poll(params: dict[str, Any], **_: Any) -> None:
    if not params.get("WaitTimeSeconds"):
        time.sleep(RECEIVE_WAIT_S)


def _install_handlers() -> None:
    """Register the hooks on every botocore session created from now on (as moto registers its own)."""
    handlers: list[tuple[str, Callable[..., Any]]] = [
        ("before-call.sts.GetCallerIdentity", _sts_identity),
        ("before-call.ssm.GetParameter", _ssm_parameter),
        ("before-sign", _note_region),
    ]
    if RECEIVE_WAIT_S > 0:
        handlers.append(("before-parameter-build.sqs.ReceiveMessage", _wait_before_short_poll))
    botocore.handlers.BUILTIN_HANDLERS.extend(handlers)


# ---- pytest hooks ----


def _is_aws_verified(item: pytest.Item) -> bool:
    """moto's four AWS-verified decorators all wrap the test in a function named ``pagination_wrapper``
    (some tests carry the decorator without the ``aws_verified`` mark)."""
    function = getattr(item, "function", None)
    code = getattr(function, "__code__", None)
    return item.get_closest_marker("aws_verified") is not None or getattr(code, "co_name", "") == "pagination_wrapper"


def pytest_configure(config: pytest.Config) -> None:
    if not ENDPOINT:
        raise pytest.UsageError("MOTO_AUDIT_ENDPOINT is not set; run scripts/audit_moto.py")
    _install_handlers()
    if MODE == "mocked":
        _disable_mock_aws()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MODE != "verified":
        return
    kept = [item for item in items if _is_aws_verified(item)]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@functools.cache
def _client(service: str, region: str) -> Any:
    """Clients of the clean-up, kept for the session: creating them is most of its cost."""
    return boto3.Session(region_name=region).client(
        service, endpoint_url=ENDPOINT, config=Config(retries={"total_max_attempts": 2})
    )


def _delete_everything(region: str) -> None:
    sqs, sns = _client("sqs", region), _client("sns", region)
    for page in sqs.get_paginator("list_queues").paginate():
        for url in page.get("QueueUrls", []):
            with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
                sqs.delete_queue(QueueUrl=url)
    for page in sns.get_paginator("list_subscriptions").paginate():
        for subscription in page.get("Subscriptions", []):
            if subscription["SubscriptionArn"].startswith("arn:"):
                sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            sns.delete_topic(TopicArn=topic["TopicArn"])
    for page in sns.get_paginator("list_platform_applications").paginate():
        for app in page.get("PlatformApplications", []):
            sns.delete_platform_application(PlatformApplicationArn=app["PlatformApplicationArn"])


@pytest.fixture(autouse=True)
def _clean_slate() -> Iterator[None]:
    """moto starts every test on an empty backend; the server is emptied to match (mocked mode)."""
    if MODE == "mocked":
        for region in sorted(_regions_seen):
            _delete_everything(region)
    yield
