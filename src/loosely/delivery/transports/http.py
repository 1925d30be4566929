"""HTTP/S deliveries: one POST per attempt through a shared `httpx.AsyncClient`.

SNS gives an endpoint 15 seconds to answer; a 2xx is a delivery. A 5xx, a 429, a timeout or a
connection failure is a server-side error and is retried by the delivery policy; any other status
(3xx, 4xx) is the endpoint refusing the message, which retrying cannot change. Redirects are not
followed (SNS does not follow them either).

The client keeps connections alive per host, so a busy endpoint costs one TCP (and TLS) handshake,
not one per message. That only works when each response is read to its end: a response left unread
makes the connection unusable, and it is closed. So the body is read and discarded, up to
`MAX_DRAINED_BYTES`; a longer answer is abandoned (its connection closed) rather than read on.

Concurrency per endpoint is bounded by the worker (`lane` is scheme://host:port).
"""

from __future__ import annotations

import httpx

from loosely.core.topics.models import PushDelivery
from loosely.delivery.transports.base import Attempt

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_DRAINED_BYTES", "HttpTransport"]

DEFAULT_TIMEOUT_S = 15.0
MAX_DRAINED_BYTES = 64 * 1024
"""Response bytes read (and discarded) so the connection can be reused; past this it is closed instead."""
_RETRIED_STATUSES = frozenset({408, 429})


class HttpTransport:
    """POSTs rendered bodies with their SNS headers."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, *, verify_tls: bool = True) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            verify=verify_tls,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=30.0),
            trust_env=False,
        )

    def lane(self, push: PushDelivery) -> str:
        try:
            url = httpx.URL(push.endpoint)
        except (httpx.InvalidURL, ValueError):
            return push.endpoint
        return f"{url.scheme}://{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"

    async def send(self, push: PushDelivery) -> Attempt:
        try:
            # Streamed so that a huge answer is never buffered: only its status matters.
            async with self._client.stream(
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
        await self._client.aclose()


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
