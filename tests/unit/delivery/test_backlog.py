"""FanOutBacklog: Publish admitted at once while fan-out keeps up; while it is behind, as it retires publications."""

from __future__ import annotations

import asyncio

from loosely.delivery.backlog import FanOutBacklog
from loosely.delivery.options import DeliveryStats

LIMIT_MS = 1_000


async def _settle() -> None:
    """Let every task that can run, run (a few turns of the loop)."""
    for _ in range(5):
        await asyncio.sleep(0)


def _publish(backlog: FanOutBacklog, publications: int = 1) -> asyncio.Task[None]:
    return asyncio.create_task(backlog.admit(publications))


async def test_publish_is_admitted_at_once_while_fan_out_is_within_the_limit() -> None:
    backlog = FanOutBacklog(LIMIT_MS)
    backlog.lagging(LIMIT_MS)
    await asyncio.wait_for(backlog.admit(10), 1)
    backlog.retired(5)  # retiring while not behind earns nothing for later
    backlog.lagging(LIMIT_MS + 1)
    held = _publish(backlog)
    await _settle()
    assert not held.done()
    backlog.lagging(LIMIT_MS - 1)
    await _settle()
    assert held.done()
    assert backlog.stats.publishes_held == 1


async def test_at_twice_the_limit_two_retired_publications_admit_one_in_arrival_order() -> None:
    backlog = FanOutBacklog(LIMIT_MS)
    backlog.lagging(2 * LIMIT_MS)
    first, second, third = _publish(backlog), _publish(backlog), _publish(backlog)
    await _settle()
    assert backlog.waiting == 3
    backlog.retired(1)
    await _settle()
    assert not first.done()
    backlog.retired(1)
    await _settle()
    assert [t.done() for t in (first, second, third)] == [True, False, False]
    backlog.retired(4)
    await _settle()
    assert second.done() and third.done()
    assert backlog.waiting == 0
    assert backlog.stats.publishes_held == 3


async def test_a_batch_waits_until_enough_publications_were_retired() -> None:
    backlog = FanOutBacklog(LIMIT_MS)
    backlog.lagging(LIMIT_MS * 5 // 4)  # 0.8 admitted per retired
    batch = _publish(backlog, 4)
    single = _publish(backlog, 1)
    await _settle()
    backlog.retired(2)
    backlog.retired(2)
    await _settle()
    assert not batch.done() and not single.done()  # arrival order: the single one waits behind the batch
    backlog.retired(1)
    await _settle()
    assert batch.done() and not single.done()
    backlog.retired(2)
    await _settle()
    assert single.done()


async def test_the_further_behind_the_fewer_admitted_per_retired_publication() -> None:
    backlog = FanOutBacklog(LIMIT_MS)
    backlog.lagging(2 * LIMIT_MS)
    backlog.retired(10)  # 5 may be admitted
    backlog.lagging(4 * LIMIT_MS)
    backlog.retired(10)  # 2.5 more
    for _ in range(7):
        await asyncio.wait_for(backlog.admit(1), 1)
    assert backlog.stats.publishes_held == 0
    eighth = _publish(backlog)
    await _settle()
    assert not eighth.done()
    backlog.retired(2)  # 7.5 + 0.5 = 8
    await _settle()
    assert eighth.done()


async def test_falling_behind_again_starts_without_credit() -> None:
    backlog = FanOutBacklog(LIMIT_MS)
    backlog.lagging(2 * LIMIT_MS)
    backlog.retired(10)
    backlog.caught_up()
    backlog.lagging(2 * LIMIT_MS)
    held = _publish(backlog)
    await _settle()
    assert not held.done()
    backlog.caught_up()  # opens the gate and lets everyone in
    await _settle()
    assert held.done()


async def test_a_publish_is_held_at_most_max_hold_then_recorded_anyway() -> None:
    stats = DeliveryStats()
    backlog = FanOutBacklog(LIMIT_MS, max_hold_s=0.01, stats=stats)
    backlog.lagging(LIMIT_MS + 1)
    await asyncio.wait_for(backlog.admit(1), 5)  # returns: fan-out made no progress within max_hold_s
    assert (stats.publishes_held, stats.publishes_held_too_long) == (1, 1)
    assert backlog.waiting == 0
    backlog.retired(2)  # the credit is not spent on the request that already left
    await asyncio.wait_for(backlog.admit(1), 1)
    assert stats.publishes_held == 1


async def test_a_cancelled_request_gives_up_its_place() -> None:
    backlog = FanOutBacklog(LIMIT_MS)
    backlog.lagging(2 * LIMIT_MS)
    gone, next_one = _publish(backlog), _publish(backlog)
    await _settle()
    gone.cancel()
    await _settle()
    assert backlog.waiting == 1
    backlog.retired(2)
    await _settle()
    assert next_one.done() and not next_one.cancelled()
