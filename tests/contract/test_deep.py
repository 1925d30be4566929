"""Contract: claim cost does not grow with queue depth or the number of FIFO groups."""

from __future__ import annotations

import statistics
import time

import pytest

from contract.helpers import DEDUP_WINDOW_MS, T0, claim, make_queue, msg
from loosely.core.ports import QueueStore
from loosely.core.queues.models import NewMessage, QueueRecord

DEPTH = 200_000
GROUPS = 20_000
BATCH = 2_000


async def fill(store: QueueStore, queue: QueueRecord, messages: list[NewMessage]) -> None:
    for start in range(0, len(messages), BATCH):
        await store.send_messages(queue.id, messages[start : start + BATCH], T0, DEDUP_WINDOW_MS)


async def median_claim_s(store: QueueStore, queue: QueueRecord, rounds: int = 30) -> float:
    """Median wall time of one 10-message claim (each claim hands out fresh messages)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await claim(store, queue, n=10)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@pytest.mark.slow
async def test_standard_claim_time_independent_of_depth(store: QueueStore) -> None:
    shallow, deep = await make_queue(store, "shallow"), await make_queue(store, "deep")
    await fill(store, shallow, [msg(f"s{i}") for i in range(400)])
    await fill(store, deep, [msg(f"d{i}", visible_at_ms=T0 - DEPTH + i) for i in range(DEPTH)])
    await median_claim_s(store, deep, rounds=5)  # warm caches

    shallow_s = await median_claim_s(store, shallow)
    deep_s = await median_claim_s(store, deep)

    print(f"claim median: shallow {shallow_s * 1e3:.3f} ms, deep {deep_s * 1e3:.3f} ms")
    assert deep_s < max(5 * shallow_s, 0.005), (shallow_s, deep_s)
    assert (await store.count_messages(deep.id, T0)).in_flight == 350


@pytest.mark.slow
async def test_fifo_claim_time_independent_of_group_count(store: QueueStore) -> None:
    few, many = await make_queue(store, "few.fifo"), await make_queue(store, "many.fifo")
    await fill(store, few, [msg(f"f{i}", group_id=f"g{i % 40}") for i in range(400)])
    await fill(store, many, [msg(f"m{i}", group_id=f"g{i % GROUPS}") for i in range(2 * GROUPS)])
    # Block the oldest thousand groups: a claim must skip them without scanning them.
    for _ in range(100):
        await claim(store, many, n=10)
    await median_claim_s(store, many, rounds=5)

    few_s = await median_claim_s(store, few)
    many_s = await median_claim_s(store, many)

    print(f"fifo claim median: 40 groups {few_s * 1e3:.3f} ms, {GROUPS} groups {many_s * 1e3:.3f} ms")
    assert many_s < max(5 * few_s, 0.005), (few_s, many_s)
