"""Opaque tokens: pagination NextTokens and message move task handles.

Both are url-safe base64 of a small JSON document so clients treat them as opaque strings while
the service can read them back; anything that does not decode to the expected shape is rejected.
"""

from __future__ import annotations

import base64
import binascii
import json

from loosely.core.errors import InvalidParameterValue


def encode_next_token(after_name: str) -> str:
    """A NextToken resuming a name-ordered listing after ``after_name``."""
    return _encode({"after": after_name})


def decode_next_token(token: str) -> str:
    document = _decode(token)
    after = document.get("after") if document else None
    if not isinstance(after, str):
        raise InvalidParameterValue("Invalid NextToken value.")
    return after


def encode_task_handle(task_id: str, source_arn: str) -> str:
    return _encode({"taskId": task_id, "sourceArn": source_arn})


def decode_task_handle(handle: str) -> tuple[str, str]:
    """The (task id, source ARN) a task handle names; ``InvalidParameterValue`` for anything else."""
    document = _decode(handle)
    task_id = document.get("taskId") if document else None
    source_arn = document.get("sourceArn") if document else None
    if not isinstance(task_id, str) or not isinstance(source_arn, str):
        raise InvalidParameterValue("Value for parameter TaskHandle is invalid.")
    return task_id, source_arn


def _encode(document: dict[str, str]) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode(token: str) -> dict[str, object] | None:
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    return document if isinstance(document, dict) else None
