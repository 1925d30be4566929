"""Group commit: concurrent requests written together, each answered with its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from loosely.storage.postgres._coalesce import Coalescer


class Recorder:
    """A ``write`` that records its batches and holds each one until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def write(self, requests: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(requests))
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [ValueError(f"bad {r}") if r < 0 else r * 10 for r in requests]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_requests_arriving_while_writers_are_busy_share_the_next_statement() -> None:
    rec = Recorder()
    group: Coalescer[int, int] = Coalescer(rec.write, max_writers=1, max_batch=100)

    first = asyncio.ensure_future(group.submit(1))
    await settle()  # the writer took [1] and waits in the database
    later = [asyncio.ensure_future(group.submit(n)) for n in (2, 3, 4)]
    await settle()
    assert rec.batches == [[1]]

    rec.release.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40]
    assert rec.batches == [[1], [2, 3, 4]]


async def test_a_request_arriving_in_the_turn_after_a_writer_started_shares_its_statement() -> None:
    rec = Recorder()
    group: Coalescer[int, int] = Coalescer(rec.write, max_writers=4, max_batch=100)
    rec.release.set()

    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0)  # the first request is queued and its writer started
    second = asyncio.ensure_future(group.submit(2))  # a writer slot is free, yet this one joins the batch

    assert await asyncio.gather(first, second) == [10, 20]
    assert rec.batches == [[1, 2]]
    await group.close()


async def test_each_request_gets_its_own_outcome_and_a_failed_write_fails_its_batch_only() -> None:
    rec = Recorder()
    group: Coalescer[int, int] = Coalescer(rec.write, max_writers=1, max_batch=100)
    rec.release.set()

    results = await asyncio.gather(group.submit(5), group.submit(-1), return_exceptions=True)
    assert results[0] == 50
    assert isinstance(results[1], ValueError)

    rec.fail = RuntimeError("database unavailable")
    failed = await asyncio.gather(group.submit(6), group.submit(7), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in failed)
    rec.fail = None
    assert await group.submit(8) == 80  # the next batch is unaffected


async def test_batches_respect_the_weight_cap_and_concurrent_writers() -> None:
    rec = Recorder()
    group: Coalescer[int, int] = Coalescer(rec.write, max_writers=2, max_batch=5, weight=lambda n: n)

    pending = [asyncio.ensure_future(group.submit(n)) for n in (3, 2, 4, 1, 9)]
    await settle()
    rec.release.set()
    assert await asyncio.gather(*pending) == [30, 20, 40, 10, 90]
    assert rec.batches[0] == [3, 2]  # 3 + 2 = 5; 4 would exceed the cap
    assert sorted(map(sorted, rec.batches)) == [[1, 4], [2, 3], [9]]  # an overweight request goes alone
    await group.close()


async def test_a_cancelled_caller_is_left_out_of_the_write() -> None:
    rec = Recorder()
    group: Coalescer[int, int] = Coalescer(rec.write, max_writers=1, max_batch=100)
    busy = asyncio.ensure_future(group.submit(1))
    await settle()
    gone = asyncio.ensure_future(group.submit(2))
    kept = asyncio.ensure_future(group.submit(3))
    await settle()
    gone.cancel()
    rec.release.set()

    assert await busy == 10 and await kept == 30
    assert rec.batches == [[1], [3]]
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_request_made_as_soon_as_the_last_writer_finishes_gets_a_writer() -> None:
    async def write(requests: Sequence[int]) -> list[int | BaseException]:
        return [r * 10 for r in requests]  # no suspension: the writer finishes in the step that answers

    group: Coalescer[int, int] = Coalescer(write, max_writers=1, max_batch=10)
    async with asyncio.timeout(5.0):  # (not wait_for: a task of its own would start a step later)
        for n in range(1, 4):  # each call comes before the finished writer's done callbacks have run
            assert await group.submit(n) == n * 10
    assert group.idle


def test_limits_must_be_positive() -> None:
    async def write(requests: Sequence[int]) -> list[int | BaseException]:
        return list(requests)

    with pytest.raises(ValueError):
        Coalescer(write, max_writers=0, max_batch=1)
