"""The application called as uvicorn calls it, without a socket: for the in-process benchmarks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Asgi = Callable[
    [dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


def post_scope(host: str, headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, Any]:
    """The ASGI scope of ``POST /`` with these headers (plus Host and Content-Length)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host.encode()), *headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 4566),
    }


async def call(app: Asgi, scope: dict[str, Any], body: bytes) -> bytes:
    """Hand ``body`` to the app in one message; its answer's body, raising on any status but 200."""
    request: Message = {"type": "http.request", "body": body, "more_body": False}
    answer: list[Message] = []

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        answer.append(message)

    await app(scope, receive, send)
    payload: bytes = answer[1]["body"]
    if answer[0]["status"] != 200:
        raise RuntimeError(f"HTTP {answer[0]['status']}: {payload[:300]!r}")
    return payload
