"""Per-endpoint lanes and per-subscription throttles."""

from __future__ import annotations

import asyncio

import pytest

from loosely.delivery.pacing import Lanes, Throttle


def test_throttle_spaces_attempts_by_the_rate() -> None:
    now = [100.0]
    throttle = Throttle(lambda: now[0])
    assert throttle.reserve("sub", 4, 10.0) == 0.0
    assert throttle.reserve("sub", 4, 10.0) == pytest.approx(0.25)
    assert throttle.reserve("sub", 4, 10.0) == pytest.approx(0.5)
    assert throttle.reserve("other", 4, 10.0) == 0.0  # keys are independent
    now[0] += 5.0
    assert throttle.reserve("sub", 4, 10.0) == 0.0  # no credit saved up beyond "now"


def test_throttle_books_nothing_beyond_the_wait_limit() -> None:
    now = [0.0]
    throttle = Throttle(lambda: now[0])
    assert throttle.reserve("sub", 1, 0.5) == 0.0
    assert throttle.reserve("sub", 1, 0.5) is None
    assert throttle.reserve("sub", 1, 0.5) is None  # a refusal booked nothing
    now[0] += 1.0
    assert throttle.reserve("sub", 1, 0.5) == 0.0


async def test_lanes_bound_the_backlog_per_endpoint_and_forget_idle_ones() -> None:
    lanes = Lanes(concurrency=2, backlog=3)
    held = [lanes.take("a") for _ in range(3)]
    assert all(lane is not None for lane in held)
    assert lanes.take("a") is None  # full
    assert lanes.take("b") is not None  # another endpoint is unaffected
    lane = held[0]
    assert lane is not None
    lanes.give_back("a", lane)
    assert lanes.take("a") is lane
    for _ in range(3):
        lanes.give_back("a", lane)
    assert len(lanes) == 1  # "a" is idle and forgotten; "b" is still held


async def test_lanes_report_their_room_and_signal_when_a_full_one_drains_to_half() -> None:
    lanes = Lanes(concurrency=2, backlog=4)
    held = [lanes.take("a") for _ in range(4)]
    assert lanes.take("a") is None
    assert lanes.room() == 0
    lane = held[0]
    assert lane is not None
    lanes.give_back("a", lane)
    assert lanes.room() == 1
    assert not lanes.drained.is_set()  # one place free is not worth a claim yet
    lanes.give_back("a", lane)
    assert lanes.drained.is_set()  # half the backlog is free
    assert lanes.room() == 2


async def test_lanes_count_refusals_until_the_lane_drains_and_say_when_busy() -> None:
    lanes = Lanes(concurrency=1, backlog=2)
    held = [lanes.take("a"), lanes.take("a")]
    assert lanes.busy()
    assert lanes.take("a") is None and lanes.take("a") is None
    assert lanes.refused("a") == 2
    assert lanes.refused("b") == 0
    lane = held[0]
    assert lane is not None
    lanes.give_back("a", lane)  # down to half: refusals forgotten
    assert lanes.refused("a") == 0
    assert not lanes.busy()


async def test_a_full_lane_hands_its_places_to_waiters_in_order_and_lets_the_rest_time_out() -> None:
    lanes = Lanes(concurrency=1, backlog=1)
    held = lanes.take("e")
    assert held is not None and lanes.take("e") is None
    first = asyncio.create_task(lanes.wait_for_place("e", 60))
    second = asyncio.create_task(lanes.wait_for_place("e", 60))
    late = asyncio.create_task(lanes.wait_for_place("e", 0.01))
    assert await late is None  # nobody gave a place back in time
    await asyncio.sleep(0)

    lanes.give_back("e", held)
    assert await first is held and not second.done()
    lanes.give_back("e", held)
    assert await second is held
    lanes.give_back("e", held)
    assert len(lanes) == 0  # the last place given back: the lane is forgotten


async def test_a_waiter_cancelled_after_it_was_handed_a_place_gives_it_back() -> None:
    lanes = Lanes(concurrency=1, backlog=1)
    held = lanes.take("e")
    assert held is not None
    waiter = asyncio.create_task(lanes.wait_for_place("e", 60))
    await asyncio.sleep(0)
    lanes.give_back("e", held)  # handed to the waiter...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert len(lanes) == 0
    assert lanes.take("e") is not None
