"""`LoopShare`: background work gives way to whatever else the event loop has to do, and takes idle time whole.

The clock is a fake that only moves when a task says it worked, so every decision is deterministic.
"""

from __future__ import annotations

import asyncio

import pytest

from loosely.delivery.loopshare import LoopShare


class WorkClock:
    """Wall time that advances only by the work tasks declare."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float) -> None:
        self.now += seconds


async def test_a_slice_shorter_than_the_limit_does_not_yield() -> None:
    clock = WorkClock()
    share = LoopShare(0.2, slice_s=0.001, clock=clock)
    share.resume()
    clock.work(0.0005)

    await share.checkpoint()

    assert share.yields == 0


async def test_on_an_idle_loop_the_work_goes_on_after_one_turn() -> None:
    clock = WorkClock()
    share = LoopShare(0.2, slice_s=0.001, clock=clock)
    share.resume()
    for _ in range(10):
        clock.work(0.002)
        await share.checkpoint()

    assert share.yields == 10
    assert not share.busy


async def test_while_others_are_busy_the_work_takes_no_more_than_its_share() -> None:
    clock = WorkClock()
    share = LoopShare(0.25, slice_s=0.001, clock=clock)
    others_turns = 0
    stop = False

    async def requests() -> None:
        nonlocal others_turns
        while not stop:
            clock.work(0.0005)  # each turn, requests keep the loop busy for half a millisecond
            others_turns += 1
            await asyncio.sleep(0)

    busy = asyncio.create_task(requests())
    await asyncio.sleep(0)
    mine = 0.0
    share.resume()
    for _ in range(20):
        clock.work(0.001)
        mine += 0.001
        await share.checkpoint()
    stop = True
    await busy

    assert share.busy
    others = others_turns * 0.0005
    assert mine / (mine + others) <= 0.3  # 0.25, give or take the slice in progress
    assert others_turns >= 20 * 3  # at least three of the others' turns per slice of work


async def test_a_full_share_takes_one_turn_each_like_any_other_task() -> None:
    clock = WorkClock()
    share = LoopShare(1.0, slice_s=0.001, clock=clock)
    others_turns = 0
    stop = False

    async def requests() -> None:
        nonlocal others_turns
        while not stop:
            clock.work(0.0005)
            others_turns += 1
            await asyncio.sleep(0)

    busy = asyncio.create_task(requests())
    await asyncio.sleep(0)
    share.resume()
    for _ in range(20):
        clock.work(0.001)
        await share.checkpoint()
    stop = True
    await busy

    assert share.yields == 20
    assert 19 <= others_turns <= 22


async def test_time_spent_waiting_before_resume_is_not_counted_as_work() -> None:
    clock = WorkClock()
    share = LoopShare(0.2, slice_s=0.001, clock=clock)
    clock.work(0.5)  # e.g. waiting for the store
    share.resume()

    await share.checkpoint()

    assert share.yields == 0


def test_the_rest_after_using_a_shared_resource_follows_the_share() -> None:
    assert LoopShare(0.2).rest_for(0.002) == pytest.approx(0.008)
    assert LoopShare(0.5).rest_for(0.002) == pytest.approx(0.002)
    assert LoopShare(1.0).rest_for(0.002) == 0.0


async def test_busy_within_remembers_when_others_last_used_the_loop() -> None:
    clock = WorkClock()
    share = LoopShare(0.5, slice_s=0.001, clock=clock)
    assert not share.busy_within(1.0)

    async def request() -> None:
        clock.work(0.001)

    share.resume()
    clock.work(0.002)
    task = asyncio.create_task(request())
    await share.checkpoint()
    await task

    assert share.busy_within(0.01)
    clock.work(0.02)
    assert not share.busy_within(0.01)
