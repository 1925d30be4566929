"""Storage-level throughput of PostgresStore, comparable to benchmarks/_pgref.py's plain SQL loop.

    python -m tests.postgres.bench_store [seconds] [workers]   (from the repository root)

Each worker loops: send a batch of 10, claim up to 10, delete what it claimed (one store, pool of
``workers`` connections, as 4 connections in the reference). Also reports single-message sends
with 16 concurrent senders, FIFO throughput, and an empty-queue vs deep-queue claim latency.
Not collected by pytest (keep runs short: the machine is shared).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import psycopg

from loosely.core.queues.models import ClaimRequest, MessageRef, NewMessage, QueueKey
from loosely.storage.postgres import PostgresStore

URL = os.environ.get("LOOSELY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BODY = "x" * 256
_ids = iter(range(10**12))


def message(now: int, group: str | None = None) -> NewMessage:
    n = next(_ids)
    return NewMessage(f"m-{n}", BODY, "{}", now, now, group_id=group, dedup_key=f"d{n}" if group else None)


async def pipeline(store: PostgresStore, queue_id: int, seconds: float, workers: int, fifo: bool) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            now = int(time.time() * 1000)
            group = (lambda i: f"g{w}-{i % 5}") if fifo else (lambda i: None)
            await store.send_messages(queue_id, [message(now, group(i)) for i in range(10)], now, 300_000)
            claimed = await store.claim_messages(queue_id, ClaimRequest(10, now, now + 60_000, fifo=fifo))
            refs = [MessageRef(m.row_id, m.receive_count) for m in claimed.messages]
            if refs:
                await store.delete_messages(queue_id, refs)
                done += len(refs)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return done / (time.perf_counter() - started)


async def single_sends(store: PostgresStore, queue_id: int, seconds: float, senders: int) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def sender() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            now = int(time.time() * 1000)
            await store.send_messages(queue_id, [message(now)], now, 300_000)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return count / (time.perf_counter() - started)


async def claim_latency(store: PostgresStore, queue_id: int, rounds: int = 200) -> float:
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for _ in range(rounds):
        await store.claim_messages(queue_id, ClaimRequest(10, now, now + 1, fifo=False))
    return (time.perf_counter() - started) / rounds * 1000


async def main(seconds: float, workers: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(URL, schema=schema, pool_min=workers, pool_max=max(workers, 16))
    await store.open()
    try:
        now = int(time.time() * 1000)
        std, _ = await store.create_queue(QueueKey("1", "r", "std"), {}, {}, 345_600_000, now)
        fifo, _ = await store.create_queue(QueueKey("1", "r", "f.fifo"), {}, {}, 345_600_000, now)
        deep, _ = await store.create_queue(QueueKey("1", "r", "deep"), {}, {}, 345_600_000, now)
        print(
            f"standard send/claim/delete, batches of 10, {workers} workers: "
            f"{await pipeline(store, std.id, seconds, workers, False):,.0f} msg/s"
        )
        print(
            f"FIFO send/claim/delete, batches of 10, {workers} workers: "
            f"{await pipeline(store, fifo.id, seconds, workers, True):,.0f} msg/s"
        )
        print(f"SendMessage (1 message), 16 senders: {await single_sends(store, std.id, seconds, 16):,.0f} sends/s")
        empty_ms = await claim_latency(store, deep.id)
        with psycopg.connect(URL, autocommit=True) as conn:  # fill fast, straight into the table
            conn.execute(
                f'INSERT INTO "{schema}".messages (queue_id, visible_at_ms, expires_at_ms, sent_ms, message_id, meta,'
                " body) SELECT %s, %s, %s, %s, 'x' || g, '{}', 'b' FROM generate_series(1, 200000) g",
                (deep.id, now + 3_600_000, now + 10**9, now),
            )
            conn.execute(f'ANALYZE "{schema}".messages')
        deep_ms = await claim_latency(store, deep.id)
        print(f"empty claim: {empty_ms:.2f} ms on an empty queue, {deep_ms:.2f} ms with 200,000 invisible messages")
    finally:
        await store.drop_schema()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0, int(sys.argv[2]) if len(sys.argv) > 2 else 4))
