"""Errors the server itself answers, before or after a protocol adapter had its say.

The server does not know which AWS operation a broken request meant, but it can still answer in
the request's wire family, so that SDKs raise their usual typed error instead of failing to parse:
requests carrying ``X-Amz-Target`` (or a JSON content type) get an AWS JSON error with the
``x-amzn-query-error`` header; everything else gets a Query-style XML ``ErrorResponse``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import orjson

from loosely.protocols._wire import WireResponse
from loosely.protocols.awsquery import xml_escape as escape

__all__ = ["aws_error"]


def aws_error(headers: Mapping[str, str], status: int, code: str, message: str, *, close: bool = False) -> WireResponse:
    """An error response shaped like AWS's for the request whose lowercase ``headers`` are given.

    ``close`` asks the HTTP server to close the connection afterwards, used when the request's body
    was left unread.
    """
    request_id = str(uuid.uuid4())
    fault = "Receiver" if status >= 500 else "Sender"
    if _wants_json(headers):
        body = orjson.dumps({"__type": code, "message": message})
        out = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amzn-query-error", f"{code};{fault}"),
        ]
    else:
        body = (
            f"<ErrorResponse><Error><Type>{fault}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message><Detail/></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        out = [("content-type", "text/xml")]
    out.append(("x-amzn-requestid", request_id))
    if close:
        out.append(("connection", "close"))
    return WireResponse(status=status, headers=out, body=body)


def _wants_json(headers: Mapping[str, str]) -> bool:
    return "x-amz-target" in headers or "json" in headers.get("content-type", "")
