"""A small SQS client over raw keep-alive HTTP/1.1, for driving many messages through real nodes.

boto3 costs a few milliseconds of client CPU per call, which on a 2-core machine would leave little
for the nodes under test; this client costs a few tens of microseconds. It speaks SQS JSON 1.0 (and
Query, as a form POST, for checking error shapes) and returns the status and decoded body, so
tests decide what an error means. A connection that fails is dropped; the next call reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else {}


class SqsError(Exception):
    """A non-2xx answer where the caller wanted success."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"HTTP {answer.status}: {answer.body[:300]!r}")
        self.answer = answer


class RawSqs:
    """One keep-alive connection to one node (not safe for concurrent calls: one per coroutine)."""

    def __init__(self, endpoint: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(endpoint)
        self.endpoint = endpoint
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._timeout_s = timeout_s
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def close(self) -> None:
        streams, self._streams = self._streams, None
        if streams is not None:
            streams[1].close()
            with contextlib.suppress(OSError, ConnectionError):
                await streams[1].wait_closed()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A JSON call that must succeed; raises `SqsError` (or OSError) otherwise."""
        answer = await self.json(action, payload)
        if answer.status != 200:
            raise SqsError(answer)
        result: dict[str, Any] = answer.json()
        return result

    async def json(self, action: str, payload: dict[str, Any]) -> Answer:
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"AmazonSQS.{action}",
            "X-Amz-Date": "20260101T000000Z",
            "Authorization": AUTHORIZATION,
        }
        return await self._request(headers, orjson.dumps(payload))

    async def query(self, action: str, params: dict[str, str]) -> Answer:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Amz-Date": "20260101T000000Z",
            "Authorization": AUTHORIZATION,
        }
        form = urlencode({"Action": action, "Version": "2012-11-05", **params}).encode()
        return await self._request(headers, form)

    async def _request(self, headers: dict[str, str], body: bytes) -> Answer:
        try:
            return await asyncio.wait_for(self._exchange(headers, body), self._timeout_s)
        except BaseException:
            await self.close()  # the connection's state is unknown
            raise

    async def _exchange(self, headers: dict[str, str], body: bytes) -> Answer:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        head = f"POST / HTTP/1.1\r\nHost: {self._host}:{self._port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(head.encode() + b"\r\n" + body)
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        content = await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return Answer(int(status_line.split(" ", 2)[1]), fields, content)
