"""A small HTTP/1.1 client for deliveries: POST one body, read the status, drain the answer, keep the connection.

Why not a general client: a delivery needs one request shape (POST with a known body and a few
headers) and only the response's status. A general client's layers (request and response models,
auth and redirect flows, a pool that examines every connection per request) cost about a
millisecond of CPU per delivery, more than everything else a delivery does. This client writes the
request as one buffer and parses only the status line and the framing headers.

What it does handle: http and https (TLS through the `ssl` module, with SNI and the given
context's verification), user info in the URL as basic authentication, answers framed by
``Content-Length``, ``chunked`` or the connection's end, ``1xx`` interim answers, ``Connection:
close`` and HTTP/1.0, one deadline for the whole exchange, and keep-alive per origin. A connection
the server closed while it sat idle is noticed when reused (the attempt fails before any answer)
and the request is made once more on a new connection. An answer longer than the drain limit is
not read: its connection is closed instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit

__all__ = ["BadEndpoint", "Origin", "OriginPool", "ProtocolError", "parse_endpoint"]

_MAX_HEADER_BYTES = 64 * 1024
_NO_BODY = frozenset({204, 304})


class BadEndpoint(ValueError):
    """The endpoint URL cannot be requested (scheme, host, port, characters)."""


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as expected."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request goes and what it says about itself: the pool key and the request line's parts."""

    scheme: str
    host: str
    port: int
    host_header: str
    target: str
    authorization: str | None

    @property
    def key(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_endpoint(url: str) -> Origin:
    """Split an http(s) endpoint URL into what a request needs.

    Raises:
        BadEndpoint: not an http/https URL with a host, or an invalid port or character.
    """
    if any(c in url for c in "\r\n\t ") or not url.isascii():
        raise BadEndpoint("the URL contains spaces, control or non-ASCII characters")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadEndpoint(str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadEndpoint(f"unsupported scheme {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise BadEndpoint("the URL has no host")
    default = 443 if scheme == "https" else 80
    port = port or default
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authorization = None
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return Origin(scheme, host, port, host_header, target, authorization)


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float, keepalive_s: float) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing() and now - self.idle_since < keepalive_s

    def close(self) -> None:
        self.writer.close()


@dataclass(slots=True)
class OriginPool:
    """Idle keep-alive connections to one origin (the worker bounds how many requests run at once)."""

    tls: ssl.SSLContext | None
    keepalive_s: float = 30.0
    max_idle: int = 32
    _idle: list[_Connection] = field(default_factory=list)

    async def post(
        self, origin: Origin, headers: dict[str, str], body: bytes, timeout_s: float, drain_limit: int
    ) -> int:
        """POST ``body``; return the final status. Raises TimeoutError, OSError, ProtocolError, ssl.SSLError."""
        request = _request(origin, headers, body)
        async with asyncio.timeout(timeout_s):
            connection = self._take_idle()
            if connection is not None:
                try:
                    return await self._exchange(connection, request, drain_limit, reused=True)
                except _StaleConnection:
                    pass  # closed by the server while idle: once more on a new connection
            connection = await self._connect(origin)
            return await self._exchange(connection, request, drain_limit, reused=False)

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable(now, self.keepalive_s):
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        tls = self.tls if origin.scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            origin.host,
            origin.port,
            ssl=tls,
            server_hostname=origin.host if tls is not None else None,
            limit=_MAX_HEADER_BYTES,
        )
        return _Connection(reader, writer)

    async def _exchange(self, connection: _Connection, request: bytes, drain_limit: int, *, reused: bool) -> int:
        keep = False
        try:
            try:
                connection.writer.write(request)
                await connection.writer.drain()
            except ConnectionError as exc:
                if reused:
                    raise _StaleConnection from exc
                raise
            status, keep = await _read_answer(connection.reader, drain_limit, reused=reused)
            return status
        finally:
            if keep and len(self._idle) < self.max_idle:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


class _StaleConnection(Exception):
    """A reused connection failed before any byte of an answer: it was closed while idle."""


def _request(origin: Origin, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {origin.target} HTTP/1.1", f"Host: {origin.host_header}", f"Content-Length: {len(body)}"]
    if origin.authorization is not None:
        lines.append(f"Authorization: {origin.authorization}")
    for name, value in headers.items():
        if name.lower() in ("host", "content-length", "connection", "transfer-encoding"):
            continue
        if any(c in name or c in value for c in "\r\n\0"):
            raise BadEndpoint(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    try:
        return head.encode("latin-1") + body
    except UnicodeEncodeError as exc:
        raise BadEndpoint("a header is not ISO-8859-1 text") from exc


async def _read_answer(reader: asyncio.StreamReader, drain_limit: int, *, reused: bool) -> tuple[int, bool]:
    """Read one final answer: (status, whether the connection can be kept)."""
    first = True
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if first and reused and not exc.partial:
                raise _StaleConnection from exc
            raise ProtocolError("the connection closed before an answer") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            if first and reused:
                raise _StaleConnection from exc
            raise
        except asyncio.LimitOverrunError as exc:
            raise ProtocolError("the answer's headers are too long") from exc
        first = False
        status, version, fields = _parse_head(head)
        if 100 <= status < 200:
            continue  # interim (100 Continue, 103 Early Hints): the final answer follows
        keep = _keeps_alive(version, fields)
        if status in _NO_BODY:
            return status, keep
        try:
            return status, await _drain_body(reader, fields, drain_limit) and keep
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ProtocolError):
            return status, False  # the status counts; only the connection is lost


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError("malformed header line")
        key = name.strip().lower()
        fields[key] = f"{fields[key]}, {value.strip()}" if key in fields else value.strip()
    return int(parts[1]), parts[0], fields


def _keeps_alive(version: str, fields: dict[str, str]) -> bool:
    tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


async def _drain_body(reader: asyncio.StreamReader, fields: dict[str, str], limit: int) -> bool:
    """Read and discard the body; return whether the connection is still usable (all read within ``limit``)."""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return await _drain_chunked(reader, limit)
    if "content-length" in fields:
        try:
            length = int(fields["content-length"].split(",")[0])
        except ValueError as exc:
            raise ProtocolError("invalid Content-Length") from exc
        if length < 0:
            raise ProtocolError("invalid Content-Length")
        if length > limit:
            return False
        await reader.readexactly(length)
        return True
    # Delimited by the end of the connection: read up to the limit, never keep it.
    with contextlib.suppress(asyncio.IncompleteReadError):
        await reader.readexactly(limit + 1)
    return False


async def _drain_chunked(reader: asyncio.StreamReader, limit: int) -> bool:
    read = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ProtocolError("invalid chunk size") from exc
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields
            return True
        read += size
        if read > limit:
            return False
        await reader.readexactly(size + 2)
