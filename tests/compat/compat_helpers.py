"""Small helpers the compat tests share: unique names, a queue's ARN, a ClientError's parts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
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
