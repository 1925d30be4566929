"""Scenario 7: how long after a Publish is acknowledged every subscribed queue has the message.

One consumer per queue long-polls ``ReceiveMessage(WaitTimeSeconds=20)`` on its own connection. For
each sample the publisher waits until every consumer has its receive in flight and a short pause has
let the server park them, then publishes once; the sample is the time from the Publish answer to the
last consumer's answer carrying that message (the max over subscribers). Consumers delete what they
get, so the queues stay empty between samples.

The consumers' answers are read by this one process: with 50 queues the last of 50 near-simultaneous
answers waits for the 49 parsed before it, which adds some tens of microseconds per subscriber.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from benchmarks._http import Client
from benchmarks._load import percentile_ms
from benchmarks._sns import message_id, publish, sns_call
from benchmarks._sqs import Endpoint, call, delete_batch, message_body, receive


@dataclass(frozen=True)
class FanoutResult:
    samples: int
    timeouts: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    from_publish_start_p99_ms: float
    publish_p50_ms: float


@dataclass
class _Round:
    """The sample in progress: when each consumer saw the message, and who still waits for it."""

    message_id: str = ""
    pending: int = 0
    last_ns: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    early: dict[str, list[int]] = field(default_factory=dict)  # message id -> receive times seen before its ack


@dataclass
class _Consumers:
    parked: int = 0
    all_parked: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    count: int = 0

    def park(self) -> None:
        self.parked += 1
        if self.parked >= self.count:
            self.all_parked.set()


async def run_fanout(
    consumer_eps: Sequence[Endpoint],
    publisher_ep: Endpoint,
    topic_arn: str,
    queue_urls: Sequence[str],
    samples: int,
    budget_s: float,
    park_s: float = 0.02,
    timeout_s: float = 5.0,
) -> FanoutResult:
    """Take ``samples`` measurements, or fewer if ``budget_s`` runs out first."""
    consumers = _Consumers(count=len(queue_urls))
    current = _Round()
    tasks = [
        asyncio.create_task(_consume(consumer_eps[i % len(consumer_eps)], url, consumers, lambda: current))
        for i, url in enumerate(queue_urls)
    ]
    publisher = await Client.connect(publisher_ep.host, publisher_ep.port)
    raw_publish = publish(publisher_ep, topic_arn, message_body(256))
    after_ack: list[int] = []
    after_start: list[int] = []
    publish_ns: list[int] = []
    timeouts = 0
    deadline = time.perf_counter() + budget_s
    try:
        while len(after_ack) < samples and time.perf_counter() < deadline:
            await asyncio.wait_for(consumers.all_parked.wait(), timeout_s)
            await asyncio.sleep(park_s)
            _raise_failed(tasks)
            current = _Round(pending=len(queue_urls))
            consumers.parked = 0
            consumers.all_parked.clear()
            t_start = time.perf_counter_ns()
            answer = await sns_call(publisher, raw_publish)
            t_ack = time.perf_counter_ns()
            current.message_id = message_id(answer)
            for seen in current.early.pop(current.message_id, []):
                current.last_ns = max(current.last_ns, seen)
                current.pending -= 1
            if current.pending <= 0:
                current.complete.set()
            try:
                await asyncio.wait_for(current.complete.wait(), timeout_s)
            except TimeoutError:
                timeouts += 1
                continue
            after_ack.append(current.last_ns - t_ack)
            after_start.append(current.last_ns - t_start)
            publish_ns.append(t_ack - t_start)
    finally:
        consumers.stopping = True
        publisher.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    after_ack.sort()
    after_start.sort()
    publish_ns.sort()
    return FanoutResult(
        samples=len(after_ack),
        timeouts=timeouts,
        p50_ms=percentile_ms(after_ack, 0.5),
        p99_ms=percentile_ms(after_ack, 0.99),
        max_ms=after_ack[-1] / 1e6 if after_ack else float("nan"),
        from_publish_start_p99_ms=percentile_ms(after_start, 0.99),
        publish_p50_ms=percentile_ms(publish_ns, 0.5),
    )


async def _consume(endpoint: Endpoint, queue_url: str, consumers: _Consumers, current: Callable[[], _Round]) -> None:
    client = await Client.connect(endpoint.host, endpoint.port)
    raw_receive = receive(endpoint, queue_url, 10, 20)
    try:
        while not consumers.stopping:
            pending = client.request(raw_receive)
            consumers.park()
            response = await pending
            now = time.perf_counter_ns()
            messages = orjson.loads(response.body).get("Messages", []) if response.status == 200 else []
            for message in messages:
                _seen(current(), orjson.loads(message["Body"])["MessageId"], now)
            if messages:
                handles = [m["ReceiptHandle"] for m in messages]
                await call(client, delete_batch(endpoint, queue_url, handles))
    finally:
        client.close()


def _seen(current: _Round, mid: str, now: int) -> None:
    """A consumer got ``mid``; it may arrive before the publisher has read the Publish answer."""
    if mid != current.message_id:
        current.early.setdefault(mid, []).append(now)
        return
    current.last_ns = max(current.last_ns, now)
    current.pending -= 1
    if current.pending <= 0:
        current.complete.set()


def _raise_failed(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError("a fan-out consumer failed") from task.exception()
