"""A fast HTTP endpoint for SNS deliveries: answers every POST with 200 and counts what arrived.

It runs on the benchmark's event loop (asyncio protocols, no framework), one listening port per
subscription so that each subscription is its own endpoint, as distinct subscribers are in practice
(the server limits concurrent attempts per ``scheme://host:port``). Requests are parsed only as far as
the request line, the headers the scenario reads and ``Content-Length``; connections are kept alive.

A ``SubscriptionConfirmation`` is answered and its ``SubscribeURL`` handed to the scenario, which
visits it; a ``Notification`` is counted once per (port, message id), and a repeat as a duplicate.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

import orjson

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@dataclass
class Receiver:
    """Shared counters of every port; ``expected`` wakes ``done`` once that many distinct deliveries arrived."""

    ports: list[int] = field(default_factory=list)
    delivered: set[tuple[int, str]] = field(default_factory=set)
    duplicates: int = 0
    connections: int = 0
    other: int = 0  # requests that were neither a notification nor a confirmation
    first_s: float = 0.0
    last_s: float = 0.0
    expected: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    confirmations: asyncio.Queue[tuple[int, str]] = field(default_factory=asyncio.Queue)
    _servers: list[asyncio.AbstractServer] = field(default_factory=list)

    async def listen(self, count: int, host: str = "127.0.0.1") -> list[str]:
        """Open ``count`` ports; the endpoint URL of each."""
        loop = asyncio.get_running_loop()
        urls = []
        for _ in range(count):
            server = await loop.create_server(lambda: _Conn(self), host, 0)
            port = int(server.sockets[0].getsockname()[1])
            self._servers.append(server)
            self.ports.append(port)
            urls.append(f"http://{host}:{port}/sns")
        return urls

    def close(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()

    def reset(self, expected: int) -> None:
        self.delivered.clear()
        self.duplicates = self.other = 0
        self.first_s = self.last_s = 0.0
        self.expected = expected
        self.done.clear()

    def _on_request(self, port: int, headers: dict[bytes, bytes], body: bytes) -> None:
        kind = headers.get(b"x-amz-sns-message-type", b"")
        if kind == b"Notification":
            key = (port, headers.get(b"x-amz-sns-message-id", b"").decode())
            if key in self.delivered:
                self.duplicates += 1
                return
            now = time.perf_counter()
            self.first_s = self.first_s or now
            self.last_s = now
            self.delivered.add(key)
            if self.expected and len(self.delivered) >= self.expected:
                self.done.set()
        elif kind == b"SubscriptionConfirmation":
            self.confirmations.put_nowait((port, str(orjson.loads(body)["SubscribeURL"])))
        else:
            self.other += 1


class _Conn(asyncio.Protocol):
    """One keep-alive connection from the server's HTTP client."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._port = int(transport.get_extra_info("sockname")[1])
        self._receiver.connections += 1

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while True:
            parsed = _parse_request(self._buf)
            if parsed is None:
                return
            headers, body, consumed = parsed
            del self._buf[:consumed]
            self._receiver._on_request(self._port, headers, body)
            if self._transport is not None:
                self._transport.write(_OK)


def _parse_request(buf: bytearray) -> tuple[dict[bytes, bytes], bytes, int] | None:
    """One whole request from the head of ``buf`` (headers lower-cased), or None if more bytes are needed."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = bytes(buf[:head_end]).split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    total = head_end + 4 + int(headers.get(b"content-length", b"0"))
    if len(buf) < total:
        return None
    return headers, bytes(buf[head_end + 4 : total]), total
