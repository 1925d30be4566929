"""HTTP/S deliveries: one POST per attempt, over kept-alive connections per endpoint origin.

SNS gives an endpoint 15 seconds to answer; a 2xx is a delivery. A 5xx, a 429, a timeout or a
connection failure is a server-side error and is retried by the delivery policy; any other status
(3xx, 4xx) is the endpoint refusing the message, which retrying cannot change. Redirects are not
followed (SNS does not follow them either).

The requests are made by aiohttp's client: one session whose connector keeps idle connections per
origin (scheme://host:port, also the worker's `lane`, which bounds concurrency per endpoint), so a
busy endpoint costs one TCP (and TLS) handshake, not one per message. That only works when each
answer is read to its end, so the body is read and discarded, up to `MAX_DRAINED_BYTES`; a longer
answer is abandoned (its connection closed) rather than read on. The request carries only the SNS
headers, ``Host``, ``Content-Length``, AWS's ``Accept-Encoding: gzip,deflate`` and, from the URL's
user info, basic authentication: the client's own ``User-Agent``, ``Accept`` and ``Accept-Encoding``
are left out, and answers are never decompressed (they are discarded anyway).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp

from loosely.core.topics.models import PushDelivery
from loosely.delivery.transports.base import Attempt

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "KEEPALIVE_S",
    "MAX_CONNECTIONS_PER_ORIGIN",
    "MAX_DRAINED_BYTES",
    "BadEndpoint",
    "HttpTransport",
    "drain",
    "new_session",
    "origin_key",
    "tls_context",
]

DEFAULT_TIMEOUT_S = 15.0
MAX_DRAINED_BYTES = 64 * 1024
"""Response bytes read (and discarded) so the connection can be reused; past this it is closed instead."""
MAX_CONNECTIONS_PER_ORIGIN = 64
"""A ceiling above the worker's per-endpoint concurrency: the lanes bound attempts, this only guards."""
KEEPALIVE_S = 30.0
"""How long an idle connection is kept for the next delivery to the same origin."""
_RETRIED_STATUSES = frozenset({408, 429})
_SKIPPED_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_FRAMING_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})
_STALE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class BadEndpoint(ValueError):
    """The endpoint URL or a header cannot be sent (scheme, host, port, characters)."""


def origin_key(url: str) -> str:
    """``scheme://host:port`` of an http(s) endpoint URL, after checking it can be requested.

    Raises:
        BadEndpoint: not an http/https URL with a host, or an invalid port or character.
    """
    if any(c in url for c in "\r\n\t ") or not url.isascii():
        raise BadEndpoint("the URL contains spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadEndpoint(str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadEndpoint(f"unsupported scheme {parts.scheme!r}")
    if not parts.hostname:
        raise BadEndpoint("the URL has no host")
    return f"{scheme}://{parts.hostname}:{port or (443 if scheme == 'https' else 80)}"


def tls_context(*, verify: bool) -> ssl.SSLContext:
    """The TLS settings of every delivery: the system's trust store, host names checked, or no checks at all."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def new_session(timeout_s: float, tls: ssl.SSLContext) -> aiohttp.ClientSession:
    """A client session fit for deliveries: kept-alive connections, one deadline, nothing automatic.

    No proxies or certificates from the environment, no cookies kept between deliveries, no
    decompression, and none of the client's own headers: only the Accept-Encoding AWS's deliveries carry.
    """
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=MAX_CONNECTIONS_PER_ORIGIN, keepalive_timeout=KEEPALIVE_S, ssl=tls
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        headers={"Accept-Encoding": "gzip,deflate"},
        skip_auto_headers=_SKIPPED_AUTO_HEADERS,
        trust_env=False,
    )


class HttpTransport:
    """POSTs rendered bodies with their SNS headers."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, *, verify_tls: bool = True) -> None:
        self._timeout_s = timeout_s
        self._tls = tls_context(verify=verify_tls)
        self._session: aiohttp.ClientSession | None = None

    def lane(self, push: PushDelivery) -> str:
        try:
            return origin_key(push.endpoint)
        except BadEndpoint:
            return push.endpoint

    async def send(self, push: PushDelivery) -> Attempt:
        try:
            origin_key(push.endpoint)
            status = await post(self._client(), push.endpoint, _checked(push.headers), push.body.encode("utf-8"))
        except BadEndpoint as exc:
            return Attempt.rejected(f"invalid endpoint: {exc}")
        except TimeoutError:
            return Attempt.retry("timed out")
        except (aiohttp.ClientError, OSError) as exc:
            return Attempt.retry(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if 200 <= status < 300:
            return Attempt.delivered()
        if status >= 500 or status in _RETRIED_STATUSES:
            return Attempt.retry(f"HTTP {status}")
        return Attempt.rejected(f"HTTP {status}")

    def _client(self) -> aiohttp.ClientSession:
        """The session, made on first use: it belongs to the event loop the deliveries run on."""
        if self._session is None:
            self._session = new_session(self._timeout_s, self._tls)
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def post(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], body: bytes) -> int:
    """POST ``body`` and return the final status, its answer drained so the connection can be kept.

    A kept connection the endpoint closed just as it was reused fails before any answer; aiohttp
    retries only idempotent requests then, so the POST is made once more here, on a new connection.
    A failure to connect is not retried: it is the endpoint's answer for this attempt.
    """
    try:
        return await _post_once(session, url, headers, body)
    except aiohttp.ClientConnectorError:
        raise
    except _STALE:
        return await _post_once(session, url, headers, body)


async def _post_once(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], body: bytes) -> int:
    async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
        await drain(response)
        return response.status


async def drain(response: aiohttp.ClientResponse, limit: int = MAX_DRAINED_BYTES) -> None:
    """Read and discard a body so its connection goes back to the pool; past ``limit``, close it instead.

    A failure while draining changes nothing about the outcome: the status has been received.
    """
    if response.content_length is not None and response.content_length > limit:
        response.close()
        return
    read = 0
    try:
        while chunk := await response.content.readany():
            read += len(chunk)
            if read > limit:
                response.close()
                return
    except (aiohttp.ClientError, OSError):
        response.close()


def _checked(headers: Mapping[str, str]) -> dict[str, str]:
    """The SNS headers as sent: framing ones are the client's to write; line breaks and non-Latin-1 are refused."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in _FRAMING_HEADERS:
            continue
        if any(c in name or c in value for c in "\r\n\0"):
            raise BadEndpoint(f"header {name!r} contains a line break")
        try:
            (name + value).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise BadEndpoint("a header is not ISO-8859-1 text") from exc
        checked[name] = value
    return checked
