"""A recording HTTP proxy in front of a loosely server, to see exactly what a client sends and gets.

`Wiretap` listens on a free local port, forwards every request unchanged to the server and keeps
each exchange (method, path, headers, body, status, response body) in `exchanges`, so a test can
assert on the wire format a client chose and a failure can show the exact request and answer.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

# Hop-by-hop headers and those the proxy sets itself.
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")

    def __str__(self) -> str:
        request = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return (
            f"{self.method} {self.path}\n{request}\n\n{self.body.decode(errors='replace')}\n"
            f"-> {self.status}\n{self.response_body.decode(errors='replace')}"
        )


class Wiretap:
    """A proxy to ``upstream`` (``http://host:port``) that records every exchange; stop it with `close`."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, upstream
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        target = (parts.hostname, parts.port)
        tap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
                upstream_conn = http.client.HTTPConnection(*target, timeout=60)
                try:
                    upstream_conn.request(self.command, self.path, body, headers)
                    answer = upstream_conn.getresponse()
                    data = answer.read()
                    answer_headers = dict(answer.getheaders())
                finally:
                    upstream_conn.close()
                tap._keep(
                    Exchange(self.command, self.path, dict(self.headers), body, answer.status, answer_headers, data)
                )
                self.send_response(answer.status)
                for key, value in answer_headers.items():
                    if key.lower() not in _NOT_FORWARDED and key.lower() not in {"server", "date"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="wiretap", daemon=True)
        self._thread.start()
        self.host = "127.0.0.1"
        self.port = int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _keep(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def recorded(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Wiretap:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
