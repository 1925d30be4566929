"""A minimal keep-alive HTTP/1.1 client for load generation.

Why not an HTTP library or boto3: the generator shares two cores with the server under test, so every
microsecond it spends is stolen from the server. Requests are pre-built bytes, responses are parsed only
as far as the status line, ``Content-Length`` and the body. Chunked responses are not supported: both
servers we measure send ``Content-Length``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import cast


class ProtocolError(Exception):
    """The server sent something this minimal parser does not accept."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


class _Conn(asyncio.Protocol):
    """One TCP connection; requests may be pipelined but the load generator keeps one in flight."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._waiters: deque[asyncio.Future[Response]] = deque()
        self._transport: asyncio.Transport | None = None
        self._lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("connection closed by server")
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(self._lost)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while self._waiters:
            parsed = _parse_one(self._buf)
            if parsed is None:
                return
            response, consumed = parsed
            del self._buf[:consumed]
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(response)

    def send(self, request: bytes) -> asyncio.Future[Response]:
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        if self._lost is not None or self._transport is None:
            fut.set_exception(self._lost or ConnectionError("not connected"))
            return fut
        self._waiters.append(fut)
        self._transport.write(request)
        return fut

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _parse_one(buf: bytearray) -> tuple[Response, int] | None:
    """Parse one complete response from the head of ``buf``; None if more bytes are needed."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buf[:head_end]).lower()
    try:
        status = int(head[9:12])
    except ValueError as exc:
        raise ProtocolError(f"bad status line: {head[:40]!r}") from exc
    pos = head.find(b"\ncontent-length:")
    if pos < 0:
        raise ProtocolError("response without Content-Length")
    line_end = head.find(b"\r", pos + 16)
    length = int(head[pos + 16 : line_end if line_end > 0 else len(head)])
    total = head_end + 4 + length
    if len(buf) < total:
        return None
    return Response(status, bytes(buf[head_end + 4 : total])), total


class Client:
    """A keep-alive connection with an awaitable ``request(bytes) -> Response``."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    @classmethod
    async def connect(cls, host: str, port: int) -> Client:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Conn, host, port)
        return cls(proto)

    async def request(self, raw: bytes) -> Response:
        return await self._conn.send(raw)

    def close(self) -> None:
        self._conn.close()


def build_request(host: str, port: int, headers: dict[str, str], body: bytes, path: str = "/") -> bytes:
    """Serialize one POST request once, so the hot loop only writes bytes."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def build_get(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
