"""The reference server: a trivial ASGI app on the same stack and flags as loosely's server.

Every loosely number is reported as a ratio to this app measured in the same run on the same machine,
so results from different machines stay comparable. Run as ``python -m benchmarks.refapp [--port N]``;
it prints ``reference listening on http://HOST:PORT`` like loosely does.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

BODY = b'{"MD5OfMessageBody":"0123456789abcdef0123456789abcdef","MessageId":"00000000-0000-0000-0000-000000000000"}'
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/x-amz-json-1.0"), (b"content-length", str(len(BODY)).encode())],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def app(
    scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    """Read the whole request body (as a real handler must), then answer a fixed SendMessage-sized JSON."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(_START)
    await send(_BODY)


async def _lifespan(receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]) -> None:
    """Acknowledge start-up and shutdown: loosely runs with ``lifespan="on"``, so the reference does too."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def uvicorn_config(host: str) -> uvicorn.Config:
    """The same uvicorn flags as ``loosely.server.run.serve`` (loop, parser, lifespan, headers, logging)."""
    return uvicorn.Config(
        app,
        host=host,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        proxy_headers=False,  # loosely trusts forwarded headers only when --forwarded-allow-ips names proxies
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    print(f"reference listening on http://{host}:{port}", flush=True)
    uvicorn.Server(uvicorn_config(args.host)).run(sockets=[sock])


if __name__ == "__main__":
    main()
