"""Scenario 2: producers SendMessageBatch(10), consumers long-poll ReceiveMessage(10) + DeleteMessageBatch.

Producers stop after a message count or a time budget, whichever comes first; consumers then drain.
The score is messages fully processed (sent, received, deleted) per second, from the first send to the
last delete, and every message must be accounted for: the set of MessageIds acknowledged by
SendMessageBatch must equal the set deleted.
With ``strict=False`` (a queue that already holds a backlog) consumers may process older messages, so
only the count and the absence of double deletes are checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchmarks._http import Client
from benchmarks._load import own_cpu_s
from benchmarks._procs import ServerProcess
from benchmarks._sqs import Endpoint, call, delete_batch, message_body, receive, send_batch


@dataclass
class _State:
    batches_left: int
    produce_until: float
    producers_left: int
    acked: int = 0
    sent: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    double_deletes: int = 0
    failed_entries: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    last_delete: float = 0.0
    receives: int = 0
    empty_receives: int = 0


@dataclass(frozen=True)
class PipelineResult:
    sent: int
    messages: int
    elapsed_s: float
    complete: bool
    accounted: bool
    missing: int
    double_deletes: int
    failed_entries: int
    server_cpu_s: float
    generator_cpu_s: float
    db_cpu_s: float
    receives: int
    empty_receives: int

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed_s if self.elapsed_s else 0.0


async def _producer(endpoint: Endpoint, queue_url: str, body: str, state: _State) -> None:
    client = await Client.connect(endpoint.host, endpoint.port)
    raw = send_batch(endpoint, queue_url, body)
    try:
        while state.batches_left > 0 and time.perf_counter() < state.produce_until:
            state.batches_left -= 1
            answer = await call(client, raw)
            ok = [entry["MessageId"] for entry in answer.get("Successful", [])]
            state.sent.update(ok)
            state.acked += len(ok)
            state.failed_entries += len(answer.get("Failed", []))
    finally:
        client.close()
        state.producers_left -= 1
        _check_done(state)


async def _consumer(endpoint: Endpoint, queue_url: str, wait_s: int, state: _State) -> None:
    client = await Client.connect(endpoint.host, endpoint.port)
    raw_receive = receive(endpoint, queue_url, 10, wait_s)
    try:
        while not state.done.is_set():
            messages = (await call(client, raw_receive)).get("Messages", [])
            state.receives += 1
            if not messages:
                state.empty_receives += 1
                continue
            ids = [m["MessageId"] for m in messages]
            answer = await call(client, delete_batch(endpoint, queue_url, [m["ReceiptHandle"] for m in messages]))
            state.failed_entries += len(answer.get("Failed", []))
            for entry in answer.get("Successful", []):
                message_id = ids[int(entry["Id"])]
                if message_id in state.deleted:
                    state.double_deletes += 1
                state.deleted.add(message_id)
            state.last_delete = time.perf_counter()
            _check_done(state)
    finally:
        client.close()


def _check_done(state: _State) -> None:
    """Done when every producer has stopped and as many messages were deleted as sends were acknowledged."""
    if state.producers_left == 0 and len(state.deleted) >= state.acked:
        state.done.set()


async def run_pipeline(
    endpoints: Sequence[Endpoint],
    servers: Sequence[ServerProcess],
    queue_url: str,
    total: int,
    produce_s: float,
    producers: int = 4,
    consumers: int = 8,
    wait_s: int = 20,
    body_size: int = 256,
    timeout_s: float = 120.0,
    strict: bool = True,
    db_cpu: Callable[[], float] | None = None,
) -> PipelineResult:
    """Produce ``total`` messages (in batches of 10) or for ``produce_s``, whichever ends first; time until
    consumers have deleted as many as were acknowledged."""
    body = message_body(body_size)
    db = db_cpu or (lambda: 0.0)
    cpu0, gen0, db0, t0 = sum(s.cpu_s() for s in servers), own_cpu_s(), db(), time.perf_counter()
    state = _State(batches_left=(total + 9) // 10, produce_until=t0 + produce_s, producers_left=producers)
    consumer_tasks = [
        asyncio.create_task(_consumer(endpoints[i % len(endpoints)], queue_url, wait_s, state))
        for i in range(consumers)
    ]
    producer_tasks = [
        asyncio.create_task(_producer(endpoints[(i + 1) % len(endpoints)], queue_url, body, state))
        for i in range(producers)
    ]
    waiter = asyncio.create_task(state.done.wait())
    await asyncio.wait([waiter, *consumer_tasks, *producer_tasks], timeout=timeout_s, return_when="FIRST_EXCEPTION")
    elapsed = (state.last_delete or time.perf_counter()) - t0
    cpu1, gen1, db1 = sum(s.cpu_s() for s in servers), own_cpu_s(), db()
    for task in [waiter, *consumer_tasks, *producer_tasks]:
        task.cancel()
    await asyncio.gather(*consumer_tasks, *producer_tasks, return_exceptions=True)
    _raise_first(consumer_tasks + producer_tasks)
    missing = len(state.sent - state.deleted) if strict else max(0, state.acked - len(state.deleted))
    accounted = (state.sent == state.deleted) if strict else len(state.deleted) >= state.acked
    return PipelineResult(
        sent=state.acked,
        messages=len(state.deleted),
        elapsed_s=elapsed,
        complete=state.done.is_set(),
        accounted=accounted and state.double_deletes == 0 and state.failed_entries == 0,
        missing=missing,
        double_deletes=state.double_deletes,
        failed_entries=state.failed_entries,
        server_cpu_s=cpu1 - cpu0,
        generator_cpu_s=gen1 - gen0,
        db_cpu_s=db1 - db0,
        receives=state.receives,
        empty_receives=state.empty_receives,
    )


def _raise_first(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError("a pipeline connection failed") from task.exception()
