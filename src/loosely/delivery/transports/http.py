"""HTTP/S deliveries: one POST per attempt through an `httpx.AsyncClient` per endpoint origin.

SNS gives an endpoint 15 seconds to answer; a 2xx is a delivery. A 5xx, a 429, a timeout or a
connection failure is a server-side error and is retried by the delivery policy; any other status
(3xx, 4xx) is the endpoint refusing the message, which retrying cannot change. Redirects are not
followed (SNS does not follow them either).

The client keeps connections alive per host, so a busy endpoint costs one TCP (and TLS) handshake,
not one per message. That only works when each response is read to its end: a response left unread
makes the connection unusable, and it is closed. So the body is read and discarded, up to
`MAX_DRAINED_BYTES`; a longer answer is abandoned (its connection closed) rather than read on.

Concurrency per endpoint is bounded by the worker (`lane` is scheme://host:port), and each origin
has a client (a connection pool) of its own: a pool looks at each of its connections for every
request it places, so one pool shared by many busy endpoints spent more CPU choosing connections
than sending. Clients share one TLS context and are dropped, least recently used first, beyond
`MAX_ORIGINS` (never while a request of theirs is running).
"""

from __future__ import annotations

import ssl
from collections import OrderedDict

import httpx

from loosely.core.topics.models import PushDelivery
from loosely.delivery.transports.base import Attempt

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_DRAINED_BYTES", "HttpTransport"]

DEFAULT_TIMEOUT_S = 15.0
MAX_DRAINED_BYTES = 64 * 1024
"""Response bytes read (and discarded) so the connection can be reused; past this it is closed instead."""
MAX_ORIGINS = 256
"""Origins whose connections are kept; the least recently used idle one is closed beyond this."""
_RETRIED_STATUSES = frozenset({408, 429})


class HttpTransport:
    """POSTs rendered bodies with their SNS headers."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, *, verify_tls: bool = True) -> None:
        self._timeout = httpx.Timeout(timeout_s)
        self._tls: ssl.SSLContext = httpx.create_ssl_context(verify=verify_tls, trust_env=False)
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._busy: dict[str, int] = {}

    def _client(self, origin: str) -> httpx.AsyncClient:
        client = self._clients.get(origin)
        if client is None:
            client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                verify=self._tls,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=32, keepalive_expiry=30.0),
                trust_env=False,
            )
            self._clients[origin] = client
        else:
            self._clients.move_to_end(origin)
        return client

    async def _forget_idle(self) -> None:
        """Close the least recently used clients with nothing running, down to `MAX_ORIGINS`."""
        if len(self._clients) <= MAX_ORIGINS:
            return
        for origin in [o for o in self._clients if not self._busy.get(o)][: len(self._clients) - MAX_ORIGINS]:
            await self._clients.pop(origin).aclose()

    def lane(self, push: PushDelivery) -> str:
        try:
            url = httpx.URL(push.endpoint)
        except (httpx.InvalidURL, ValueError):
            return push.endpoint
        return f"{url.scheme}://{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"

    async def send(self, push: PushDelivery) -> Attempt:
        origin = self.lane(push)
        client = self._client(origin)
        self._busy[origin] = self._busy.get(origin, 0) + 1
        try:
            return await self._post(client, push)
        finally:
            left = self._busy[origin] - 1
            if left:
                self._busy[origin] = left
            else:
                del self._busy[origin]
            await self._forget_idle()

    async def _post(self, client: httpx.AsyncClient, push: PushDelivery) -> Attempt:
        try:
            # Streamed so that a huge answer is never buffered: only its status matters.
            async with client.stream(
                "POST", push.endpoint, content=push.body.encode("utf-8"), headers=push.headers
            ) as response:
                status = response.status_code
                await drain(response)
        except httpx.TimeoutException:
            return Attempt.retry("timed out")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return Attempt.rejected(f"invalid endpoint: {exc}")
        except httpx.HTTPError as exc:
            return Attempt.retry(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if 200 <= status < 300:
            return Attempt.delivered()
        if status >= 500 or status in _RETRIED_STATUSES:
            return Attempt.retry(f"HTTP {status}")
        return Attempt.rejected(f"HTTP {status}")

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()


async def drain(response: httpx.Response, limit: int = MAX_DRAINED_BYTES) -> None:
    """Read and discard the body so its connection goes back to the pool; stop (closing it) past ``limit``.

    A failure while draining changes nothing about the outcome: the status has been received.
    """
    read = 0
    try:
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read > limit:
                return
    except httpx.HTTPError:
        return
