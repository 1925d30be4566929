"""Scenario 8: HTTP deliveries per second from one topic to local HTTP subscribers.

Set-up subscribes one receiver port per subscription and confirms each through the ``SubscribeURL``
of the ``SubscriptionConfirmation`` it receives, as a real endpoint does. Then producers publish until
a count or a time budget, whichever ends first, and the run waits for every delivery. Score:
distinct deliveries per second from the first publish to the last delivery; every (subscription,
message) pair acknowledged must arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks._http import Client
from benchmarks._procs import ServerProcess
from benchmarks._receiver import Receiver
from benchmarks._sns import publish, sns_call, subscribe, visit
from benchmarks._sqs import Endpoint, SqsError, message_body


@dataclass(frozen=True)
class HttpDeliveryResult:
    subscriptions: int
    publishes: int
    expected: int
    delivered: int
    duplicates: int
    publish_s: float
    elapsed_s: float  # first publish → last delivery
    complete: bool
    server_cpu_s: float
    connections: int  # TCP connections the server opened to the receiver during the run

    @property
    def rate(self) -> float:
        return self.delivered / self.elapsed_s if self.elapsed_s else 0.0


async def subscribe_http(endpoint: Endpoint, topic_arn: str, receiver: Receiver, count: int, timeout_s: float) -> None:
    """Subscribe ``count`` new receiver ports and confirm each through its SubscribeURL."""
    urls = await receiver.listen(count)
    for url in urls:
        arn = await subscribe(endpoint, topic_arn, "http", url)
        if arn != "pending confirmation":
            raise SqsError(f"an HTTP subscription should start pending, got {arn!r}")
    for _ in urls:
        _, subscribe_url = await asyncio.wait_for(receiver.confirmations.get(), timeout_s)
        status = await visit(subscribe_url)
        if status != 200:
            raise SqsError(f"SubscribeURL answered HTTP {status}")


async def run_http_delivery(
    endpoints: Sequence[Endpoint],
    servers: Sequence[ServerProcess],
    topic_arn: str,
    receiver: Receiver,
    subscriptions: int,
    publishes: int,
    produce_s: float,
    timeout_s: float,
    producers: int = 4,
) -> HttpDeliveryResult:
    receiver.reset(expected=0)
    left = [publishes]
    acked = [0]
    produce_until = time.perf_counter() + produce_s
    connections0 = receiver.connections
    cpu0 = sum(s.cpu_s() for s in servers)
    t0 = time.perf_counter()

    async def producer(endpoint: Endpoint) -> None:
        client = await Client.connect(endpoint.host, endpoint.port)
        raw = publish(endpoint, topic_arn, message_body(256))
        try:
            while left[0] > 0 and time.perf_counter() < produce_until:
                left[0] -= 1
                await sns_call(client, raw)
                acked[0] += 1
        finally:
            client.close()

    await asyncio.gather(*(producer(endpoints[i % len(endpoints)]) for i in range(producers)))
    publish_s = time.perf_counter() - t0
    expected = acked[0] * subscriptions
    receiver.expected = expected
    if len(receiver.delivered) >= expected:
        receiver.done.set()
    try:
        await asyncio.wait_for(receiver.done.wait(), timeout_s)
        complete = True
    except TimeoutError:
        complete = False
    cpu1 = sum(s.cpu_s() for s in servers)
    end = receiver.last_s if complete else time.perf_counter()
    return HttpDeliveryResult(
        subscriptions=subscriptions,
        publishes=acked[0],
        expected=expected,
        delivered=len(receiver.delivered),
        duplicates=receiver.duplicates,
        publish_s=publish_s,
        elapsed_s=end - t0,
        complete=complete,
        server_cpu_s=cpu1 - cpu0,
        connections=receiver.connections - connections0,
    )
