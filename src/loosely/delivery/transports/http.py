"""HTTP/S deliveries: one POST per attempt, over kept-alive connections per endpoint origin.

SNS gives an endpoint 15 seconds to answer; a 2xx is a delivery. A 5xx, a 429, a timeout or a
connection failure is a server-side error and is retried by the delivery policy; any other status
(3xx, 4xx) is the endpoint refusing the message, which retrying cannot change. Redirects are not
followed (SNS does not follow them either).

Each origin (scheme://host:port, also the worker's `lane`, which bounds concurrency per endpoint)
keeps its idle connections, so a busy endpoint costs one TCP (and TLS) handshake, not one per
message. That only works when each answer is read to its end, so the body is read and discarded,
up to `MAX_DRAINED_BYTES`; a longer answer is abandoned (its connection closed) rather than read on.

The requests are made by `loosely.delivery.transports._http1`, a client that does only this: a
general-purpose client cost about a millisecond of CPU per delivery, more than all the rest of a
delivery. Pools of origins not used lately are closed beyond `MAX_ORIGINS`; all share one TLS context.
"""

from __future__ import annotations

import ssl
from collections import OrderedDict

import httpx

from loosely.core.topics.models import PushDelivery
from loosely.delivery.transports._http1 import BadEndpoint, OriginPool, ProtocolError, parse_endpoint
from loosely.delivery.transports.base import Attempt

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_DRAINED_BYTES", "MAX_ORIGINS", "HttpTransport", "drain"]

DEFAULT_TIMEOUT_S = 15.0
MAX_DRAINED_BYTES = 64 * 1024
"""Response bytes read (and discarded) so the connection can be reused; past this it is closed instead."""
MAX_ORIGINS = 256
"""Origins whose connections are kept; the least recently used ones are closed beyond this."""
_RETRIED_STATUSES = frozenset({408, 429})


class HttpTransport:
    """POSTs rendered bodies with their SNS headers."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, *, verify_tls: bool = True) -> None:
        self._timeout_s = timeout_s
        self._tls: ssl.SSLContext = httpx.create_ssl_context(verify=verify_tls, trust_env=False)
        self._pools: OrderedDict[str, OriginPool] = OrderedDict()

    def lane(self, push: PushDelivery) -> str:
        try:
            return parse_endpoint(push.endpoint).key
        except BadEndpoint:
            return push.endpoint

    def _pool(self, key: str) -> OriginPool:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = OriginPool(self._tls)
            while len(self._pools) > MAX_ORIGINS:
                self._pools.popitem(last=False)[1].close()  # only idle connections: running ones stay theirs
        else:
            self._pools.move_to_end(key)
        return pool

    async def send(self, push: PushDelivery) -> Attempt:
        try:
            origin = parse_endpoint(push.endpoint)
            status = await self._pool(origin.key).post(
                origin, dict(push.headers), push.body.encode("utf-8"), self._timeout_s, MAX_DRAINED_BYTES
            )
        except BadEndpoint as exc:
            return Attempt.rejected(f"invalid endpoint: {exc}")
        except TimeoutError:
            return Attempt.retry("timed out")
        except (OSError, ProtocolError, ssl.SSLError) as exc:
            return Attempt.retry(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if 200 <= status < 300:
            return Attempt.delivered()
        if status >= 500 or status in _RETRIED_STATUSES:
            return Attempt.retry(f"HTTP {status}")
        return Attempt.rejected(f"HTTP {status}")

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            pool.close()


async def drain(response: httpx.Response, limit: int = MAX_DRAINED_BYTES) -> None:
    """Read and discard an httpx body so its connection goes back to the pool; stop (closing it) past ``limit``.

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
