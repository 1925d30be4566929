"""HTTP deliveries reuse their connections: one TCP connection for many deliveries to one endpoint."""

from __future__ import annotations

import asyncio

from loosely.core.topics.models import PushDelivery
from loosely.delivery.transports.base import AttemptStatus
from loosely.delivery.transports.http import MAX_DRAINED_BYTES, HttpTransport


class _Endpoint:
    """A keep-alive HTTP/1.1 endpoint that counts connections and answers with a body of ``answer_bytes``."""

    def __init__(self, answer_bytes: int) -> None:
        self.answer_bytes = answer_bytes
        self.connections = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/sns"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the handlers see their connections closed

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                body = b"x" * self.answer_bytes
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _push(endpoint: str) -> PushDelivery:
    return PushDelivery(
        protocol="http",
        endpoint=endpoint,
        body="hello",
        headers={"x-amz-sns-message-type": "Notification"},
        topic_arn="arn:aws:sns:us-east-1:000000000000:t",
        message_id="m-1",
        kind="notification",
    )


async def test_deliveries_to_one_endpoint_share_a_connection() -> None:
    endpoint = _Endpoint(answer_bytes=100)
    url = await endpoint.start()
    transport = HttpTransport(5.0)
    try:
        for _ in range(20):
            attempt = await transport.send(_push(url))
            assert attempt.status is AttemptStatus.DELIVERED
    finally:
        await transport.aclose()
        await endpoint.stop()
    assert endpoint.requests == 20
    assert endpoint.connections == 1


async def test_an_oversized_answer_still_counts_and_its_connection_is_dropped() -> None:
    endpoint = _Endpoint(answer_bytes=MAX_DRAINED_BYTES * 4)
    url = await endpoint.start()
    transport = HttpTransport(5.0)
    try:
        for _ in range(3):
            attempt = await transport.send(_push(url))
            assert attempt.status is AttemptStatus.DELIVERED
    finally:
        await transport.aclose()
        await endpoint.stop()
    assert endpoint.requests == 3
    assert endpoint.connections == 3


async def test_each_origin_keeps_its_own_connection_across_interleaved_deliveries() -> None:
    first, second = _Endpoint(answer_bytes=0), _Endpoint(answer_bytes=0)
    url_a, url_b = await first.start(), await second.start()
    transport = HttpTransport(5.0)
    try:
        for url in (url_a, url_a, url_b, url_b, url_a):
            assert (await transport.send(_push(url))).status is AttemptStatus.DELIVERED
    finally:
        await transport.aclose()
        await first.stop()
        await second.stop()
    assert (first.requests, second.requests) == (3, 2)
    assert (first.connections, second.connections) == (1, 1)
