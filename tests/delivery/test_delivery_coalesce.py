"""The coalescer: what concurrent attempts record in one event-loop turn goes to the store in one call."""

from __future__ import annotations

import asyncio

import pytest

from loosely.delivery.coalesce import Coalescer


async def test_items_added_in_one_turn_are_flushed_together_and_each_caller_waits_for_it() -> None:
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: list[int]) -> None:
        calls.append(items)
        await release.wait()

    coalescer: Coalescer[int] = Coalescer(flush)
    first = [asyncio.create_task(coalescer.add(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    assert calls == [[0, 1, 2]]
    assert not any(task.done() for task in first)  # not before the flush has completed

    later = asyncio.create_task(coalescer.add(3))
    await asyncio.sleep(0.01)
    assert calls == [[0, 1, 2], [3]]
    release.set()
    await asyncio.gather(*first, later)


async def test_a_failed_flush_fails_every_caller_of_its_turn() -> None:
    async def flush(items: list[int]) -> None:
        raise RuntimeError(f"store down for {items}")

    coalescer: Coalescer[int] = Coalescer(flush)
    results = await asyncio.gather(coalescer.add(1), coalescer.add(2), return_exceptions=True)

    assert [str(r) for r in results] == ["store down for [1, 2]"] * 2


async def test_a_caller_that_gives_up_does_not_stop_the_write() -> None:
    written: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: list[int]) -> None:
        await release.wait()
        written.append(items)

    coalescer: Coalescer[int] = Coalescer(flush)
    impatient = asyncio.create_task(coalescer.add(1))
    patient = asyncio.create_task(coalescer.add(2))
    await asyncio.sleep(0.01)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    release.set()
    await patient
    assert written == [[1, 2]]
