"""Contract: long-poll wake-ups, and concurrent callers never handed the same message twice."""

from __future__ import annotations

import asyncio
import time

from contract.helpers import DEDUP_WINDOW_MS, T0, VISIBILITY_MS, claim, make_queue, msg, send
from loosely.core.errors import QueueDoesNotExist
from loosely.core.ports import QueueStore
from loosely.core.queues.models import MessageRef


async def timed_wait(store: QueueStore, queue_id: int, timeout_s: float) -> float:
    started = time.perf_counter()
    await store.wait_for_messages(queue_id, timeout_s)
    return time.perf_counter() - started


async def test_wait_returns_after_timeout_without_messages(store: QueueStore) -> None:
    queue = await make_queue(store)

    elapsed = await timed_wait(store, queue.id, 0.2)

    assert 0.15 <= elapsed < 2.0


async def test_wait_wakes_on_send(store: QueueStore) -> None:
    queue = await make_queue(store)
    waiter = asyncio.create_task(timed_wait(store, queue.id, 10.0))
    await asyncio.sleep(0.05)  # let the waiter start waiting (real time: the wake-up is what is tested)

    await send(store, queue, "hello")

    assert await asyncio.wait_for(waiter, 5.0) < 5.0


async def test_wait_wakes_on_visibility_change_to_now(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, "a")
    [m] = (await claim(store, queue)).messages
    waiter = asyncio.create_task(timed_wait(store, queue.id, 10.0))
    await asyncio.sleep(0.05)

    await store.change_visibility(queue.id, [(MessageRef(m.row_id, m.receive_count), T0 + 1)], T0 + 1)

    assert await asyncio.wait_for(waiter, 5.0) < 5.0


async def test_wait_does_not_miss_send_between_empty_claim_and_wait(store: QueueStore) -> None:
    queue = await make_queue(store)
    assert (await claim(store, queue)).messages == []

    await store.send_messages(queue.id, [msg("raced")], T0, DEDUP_WINDOW_MS)
    elapsed = await timed_wait(store, queue.id, 5.0)

    assert elapsed < 2.0


async def test_a_second_wait_without_a_claim_waits_for_a_new_wake_up(store: QueueStore) -> None:
    """A long poll at the in-flight limit waits again without claiming: an old wake-up must not end it.

    Otherwise every such wait would return at once and the receive would spin until its deadline.
    """
    queue = await make_queue(store)
    assert (await claim(store, queue)).messages == []
    await store.send_messages(queue.id, [msg("raced")], T0, DEDUP_WINDOW_MS)
    assert await timed_wait(store, queue.id, 5.0) < 2.0  # the wake-up since the claim ends this one

    second = asyncio.create_task(timed_wait(store, queue.id, 0.3))

    assert await second >= 0.25


async def test_end_waits_wakes_every_waiter_and_later_waits_return_at_once(store: QueueStore) -> None:
    """The node is stopping: parked long polls of every queue answer now instead of at their deadline."""
    first, second = await make_queue(store, "first"), await make_queue(store, "second")
    waiters = [asyncio.create_task(timed_wait(store, q.id, 30.0)) for q in (first, first, second)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)

    store.end_waits()

    assert max(await asyncio.wait_for(asyncio.gather(*waiters), 5.0)) < 5.0
    assert await timed_wait(store, second.id, 30.0) < 1.0
    await send(store, first, "still served")  # the store itself goes on until it is closed
    assert [m.body for m in (await claim(store, first)).messages] == ["still served"]


async def test_wait_only_wakes_its_queue(store: QueueStore) -> None:
    quiet, busy = await make_queue(store, "quiet"), await make_queue(store, "busy")
    waiter = asyncio.create_task(timed_wait(store, quiet.id, 0.5))
    await asyncio.sleep(0.05)

    await send(store, busy, "x")

    assert await waiter >= 0.4


async def test_concurrent_claims_never_hand_out_a_message_twice(store: QueueStore) -> None:
    queue = await make_queue(store)
    await store.send_messages(queue.id, [msg(f"m{i}") for i in range(300)], T0, DEDUP_WINDOW_MS)

    async def consumer() -> list[int]:
        got: list[int] = []
        for _ in range(10):
            got.extend(m.row_id for m in (await claim(store, queue, n=3)).messages)
        return got

    results = await asyncio.gather(*(consumer() for _ in range(20)))
    handed = [row_id for r in results for row_id in r]

    assert len(handed) == len(set(handed))
    assert len(handed) == 300


async def test_concurrent_fifo_claims_keep_groups_exclusive(store: QueueStore) -> None:
    queue = await make_queue(store, "c.fifo")
    messages = [msg(f"{g}{i}", group_id=f"g{g}") for i in range(5) for g in range(20)]
    await store.send_messages(queue.id, messages, T0, DEDUP_WINDOW_MS)

    results = list(await asyncio.gather(*(claim(store, queue, n=3) for _ in range(30))))
    while results[-1].messages or len(results) == 30:  # a concurrent backend may skip busy groups: mop up
        results.append(await claim(store, queue, n=3))

    owners: dict[str | None, int] = {}
    for index, result in enumerate(results):
        for m in result.messages:
            assert owners.setdefault(m.group_id, index) == index  # while in flight, a group has one owner
    assert len(owners) == 20


async def test_concurrent_sends_all_stored_with_distinct_sequences(store: QueueStore) -> None:
    queue = await make_queue(store)

    outcomes = await asyncio.gather(
        *(store.send_messages(queue.id, [msg(f"m{i}")], T0, DEDUP_WINDOW_MS) for i in range(200))
    )

    sequences = {o[0].sequence for o in outcomes}
    assert len(sequences) == 200
    assert (await store.count_messages(queue.id, T0)).visible == 200


async def test_failing_call_does_not_affect_concurrent_calls(store: QueueStore) -> None:
    queue = await make_queue(store)

    results = await asyncio.gather(
        store.send_messages(queue.id, [msg("ok1")], T0, DEDUP_WINDOW_MS),
        store.send_messages(424242, [msg("bad")], T0, DEDUP_WINDOW_MS),
        store.send_messages(queue.id, [msg("ok2")], T0, DEDUP_WINDOW_MS),
        return_exceptions=True,
    )

    assert isinstance(results[1], QueueDoesNotExist)
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
    assert (await store.count_messages(queue.id, T0)).visible == 2


async def test_claims_after_timeout_redeliver_exactly_once(store: QueueStore) -> None:
    queue = await make_queue(store)
    await send(store, queue, *[f"m{i}" for i in range(50)])
    await claim(store, queue, n=10)
    await claim(store, queue, n=10)

    later = await asyncio.gather(*(claim(store, queue, n=10, now_ms=T0 + VISIBILITY_MS) for _ in range(10)))

    handed = [m.row_id for r in later for m in r.messages]
    assert len(handed) == len(set(handed)) == 50
