"""Scenario 3: how long a parked long-poll receive takes to return after a send is acknowledged.

One connection parks ``ReceiveMessage(WaitTimeSeconds=20)``; after a pause long enough for it to be
waiting server-side, another connection sends one message. Latency is measured from the moment the
SendMessage answer has been read to the moment the receive answer has been read; a server that wakes
the receiver before acknowledging the send yields small or negative values, reported as they are.
Also reported: from the send's start, which bounds the wake latency from above.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from benchmarks._http import Client
from benchmarks._load import percentile_ms
from benchmarks._sqs import Endpoint, SqsError, call, delete_batch, message_body, receive, send_message


@dataclass(frozen=True)
class WakeResult:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    from_send_start_p50_ms: float
    from_send_start_p99_ms: float


async def run_wake(
    receiver_ep: Endpoint, sender_ep: Endpoint, queue_url: str, samples: int, budget_s: float, park_s: float = 0.02
) -> WakeResult:
    """Take ``samples`` measurements, or fewer if ``budget_s`` runs out first (a slow wake-up)."""
    receiver = await Client.connect(receiver_ep.host, receiver_ep.port)
    sender = await Client.connect(sender_ep.host, sender_ep.port)
    raw_receive = receive(receiver_ep, queue_url, 1, 20)
    raw_send = send_message(sender_ep, queue_url, message_body(256))
    after_ack: list[int] = []
    after_start: list[int] = []
    deadline = time.perf_counter() + budget_s
    try:
        while len(after_ack) < samples and time.perf_counter() < deadline:
            pending = asyncio.ensure_future(receiver.request(raw_receive))
            await asyncio.sleep(park_s)
            if pending.done():
                raise SqsError(f"receive returned before any send (queue not empty?): {pending.result()!r}")
            t_start = time.perf_counter_ns()
            await call(sender, raw_send)
            t_ack = time.perf_counter_ns()
            response = await pending
            t_recv = time.perf_counter_ns()
            after_ack.append(t_recv - t_ack)
            after_start.append(t_recv - t_start)
            await _delete_received(receiver, receiver_ep, queue_url, response.body)
    finally:
        receiver.close()
        sender.close()
    after_ack.sort()
    after_start.sort()
    return WakeResult(
        samples=len(after_ack),
        p50_ms=percentile_ms(after_ack, 0.5),
        p99_ms=percentile_ms(after_ack, 0.99),
        max_ms=after_ack[-1] / 1e6 if after_ack else float("nan"),
        from_send_start_p50_ms=percentile_ms(after_start, 0.5),
        from_send_start_p99_ms=percentile_ms(after_start, 0.99),
    )


async def _delete_received(client: Client, endpoint: Endpoint, queue_url: str, body: bytes) -> None:
    messages: Sequence[dict[str, str]] = orjson.loads(body).get("Messages", [])
    if len(messages) != 1:
        raise SqsError(f"expected one message, got {len(messages)}")
    await call(client, delete_batch(endpoint, queue_url, [messages[0]["ReceiptHandle"]]))
