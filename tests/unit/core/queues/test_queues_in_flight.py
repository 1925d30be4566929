"""The in-flight limit over a real SQLite store, with fake time and a limit small enough to reach."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loosely.core.clock import FakeClock
from loosely.core.errors import OverLimit
from loosely.core.ids import SequentialIds
from loosely.core.ports import QueueStore
from loosely.core.queues.inflight import RECOUNT_INTERVAL_MS, InFlightGauge
from loosely.core.queues.messaging import OVER_LIMIT_MESSAGE
from loosely.core.queues.models import QueueCounts, QueueKey, ReceivedMessage, ReceiveRequest, SendRequest
from loosely.core.queues.service import QueueService, QueueSettings
from unit.core.queues.conftest import AdvancingWaits, key

LIMIT = 5
T0 = 1_700_000_000_000
Q = key("q")
FIFO = key("q.fifo")


class CountingCounts(AdvancingWaits):
    """Also records every exact count the service asks storage for."""

    def __init__(self, inner: QueueStore, clock: FakeClock) -> None:
        super().__init__(inner, clock)
        self.counts = 0

    async def count_messages(self, queue_id: int, now_ms: int) -> QueueCounts:
        self.counts += 1
        return await self.inner.count_messages(queue_id, now_ms)


@pytest.fixture
def counting(store: QueueStore, clock: FakeClock) -> CountingCounts:
    return CountingCounts(store, clock)


def node(storage: Any, clock: FakeClock, limit: int = LIMIT) -> QueueService:
    """One node's service: each keeps its own in-flight estimates."""
    return QueueService(storage, clock, SequentialIds(), QueueSettings(in_flight_max=limit))


@pytest.fixture
def limited(counting: CountingCounts, clock: FakeClock) -> QueueService:
    return node(counting, clock)


async def fill(service: QueueService, queue: QueueKey, n: int, fifo_groups: int = 0) -> None:
    await service.create_queue(
        queue, {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo_groups else {}, {}
    )
    for i in range(n):
        group = f"g{i % fifo_groups}" if fifo_groups else None
        await service.send_message(queue, SendRequest(body=f"m{i}", group_id=group), "AIDA")


async def receive(service: QueueService, queue: QueueKey = Q, n: int = 10, wait_s: int = 0) -> list[ReceivedMessage]:
    return await service.receive_message(queue, ReceiveRequest(max_messages=n, wait_time_s=wait_s))


async def test_short_poll_past_the_limit_fails_with_over_limit(limited: QueueService) -> None:
    await fill(limited, Q, 8)

    first = await receive(limited, n=3)
    second = await receive(limited, n=10)  # only two more fit
    with pytest.raises(OverLimit) as raised:
        await receive(limited)

    assert (len(first), len(second)) == (3, 2)
    assert str(raised.value) == OVER_LIMIT_MESSAGE


async def test_deleting_makes_room_at_once(limited: QueueService) -> None:
    await fill(limited, Q, 8)
    taken = await receive(limited, n=5)

    await limited.delete_message(Q, taken[0].receipt_handle)
    await limited.delete_message_batch(Q, [("a", taken[1].receipt_handle), ("b", taken[1].receipt_handle)])

    assert len(await receive(limited)) == 2


async def test_visibility_timeouts_make_room_once_the_estimate_is_recounted(
    limited: QueueService, clock: FakeClock
) -> None:
    await fill(limited, Q, 8)
    await limited.receive_message(Q, ReceiveRequest(max_messages=5, visibility_timeout_s=1))

    clock.advance(RECOUNT_INTERVAL_MS)  # the five are visible again, and the estimate is a second old

    assert len(await receive(limited)) == 5


async def test_long_poll_at_the_limit_waits_and_returns_nothing(
    limited: QueueService, counting: CountingCounts
) -> None:
    await fill(limited, Q, 8)
    await limited.receive_message(Q, ReceiveRequest(max_messages=5, visibility_timeout_s=60))

    assert await receive(limited, wait_s=3) == []
    assert counting.waits == [1.0, 1.0, 1.0]  # looked again each time the estimate was recounted


async def test_fifo_at_the_limit_returns_nothing_without_error(limited: QueueService) -> None:
    await fill(limited, FIFO, 8, fifo_groups=8)

    assert len(await receive(limited, FIFO)) == 5
    assert await receive(limited, FIFO) == []


async def test_receives_read_an_estimate_and_count_at_most_once_a_second(
    limited: QueueService, counting: CountingCounts, clock: FakeClock
) -> None:
    await fill(limited, Q, 3)
    for _ in range(50):
        [message] = await receive(limited, n=1)
        await limited.delete_message(Q, message.receipt_handle)
        await limited.send_message(Q, SendRequest(body="again"), "AIDA")
    counted_in_the_first_second = counting.counts
    clock.advance(RECOUNT_INTERVAL_MS)
    await receive(limited, n=1)
    await limited.settled()

    assert counted_in_the_first_second == 1
    assert counting.counts == 2


async def test_another_node_s_receives_are_learned_at_the_next_count(
    counting: CountingCounts, clock: FakeClock
) -> None:
    here, there = node(counting, clock), node(counting, clock)
    await fill(here, Q, 12)
    assert len(await receive(here, n=1)) == 1  # this node now estimates one in flight
    assert len(await receive(there, n=4)) == 4  # ... while five are

    before_recount = await receive(here, n=10)  # still believes four fit
    clock.advance(RECOUNT_INTERVAL_MS)
    with pytest.raises(OverLimit):
        await here.receive_message(Q, ReceiveRequest(max_messages=1, visibility_timeout_s=30))

    assert len(before_recount) == 4


class SlowCounts:
    """A storage whose counts answer only when the test says so, with the in-flight number it chose."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.release = asyncio.Event()

    async def count_messages(self, queue_id: int, now_ms: int) -> QueueCounts:
        self.calls += 1
        counted = self.in_flight  # the count's snapshot is taken when it starts
        await self.release.wait()
        return QueueCounts(visible=0, in_flight=counted, delayed=0)


async def test_concurrent_first_receives_share_one_count() -> None:
    storage = SlowCounts()
    storage.in_flight = 3
    gauge = InFlightGauge(storage, limit=LIMIT)  # type: ignore[arg-type]

    first = asyncio.ensure_future(gauge.room(1, T0))
    second = asyncio.ensure_future(gauge.room(1, T0))
    await asyncio.sleep(0)
    storage.release.set()

    assert await asyncio.gather(first, second) == [2, 2]
    assert storage.calls == 1


async def test_messages_handed_out_during_a_recount_are_kept() -> None:
    storage = SlowCounts()
    storage.release.set()
    gauge = InFlightGauge(storage, limit=LIMIT)  # type: ignore[arg-type]
    assert await gauge.room(1, T0) == LIMIT
    storage.release.clear()

    assert await gauge.room(1, T0 + RECOUNT_INTERVAL_MS) == LIMIT  # the count runs behind the answer
    await asyncio.sleep(0)
    gauge.handed_out(1, 2)  # committed after the count's snapshot: not in it
    assert gauge.known_room(1, T0 + RECOUNT_INTERVAL_MS) == LIMIT - 2  # meanwhile, the estimate answers
    storage.release.set()
    await gauge.settled()

    assert storage.calls == 2
    assert gauge.known_room(1, T0 + RECOUNT_INTERVAL_MS + 1) == LIMIT - 2


async def test_an_old_estimate_with_room_answers_without_waiting_for_the_count() -> None:
    storage = SlowCounts()
    storage.release.set()
    gauge = InFlightGauge(storage, limit=LIMIT)  # type: ignore[arg-type]
    assert await gauge.room(1, T0) == LIMIT
    storage.release.clear()  # from now on a count answers only when released
    storage.in_flight = 4  # another node's receives, learned at the count

    assert await gauge.room(1, T0 + RECOUNT_INTERVAL_MS) == LIMIT
    assert await gauge.room(1, T0 + RECOUNT_INTERVAL_MS + 1) == LIMIT  # one count at a time
    storage.release.set()
    await gauge.settled()

    assert storage.calls == 2
    assert await gauge.room(1, T0 + RECOUNT_INTERVAL_MS + 2) == LIMIT - 4


async def test_an_old_estimate_at_the_limit_waits_for_the_count() -> None:
    storage = SlowCounts()
    storage.release.set()
    storage.in_flight = LIMIT
    gauge = InFlightGauge(storage, limit=LIMIT)  # type: ignore[arg-type]
    assert await gauge.room(1, T0) == 0
    storage.release.clear()
    storage.in_flight = 1  # visibility ran out for four

    recount = asyncio.ensure_future(gauge.room(1, T0 + RECOUNT_INTERVAL_MS))
    await asyncio.sleep(0)
    assert not recount.done()
    storage.release.set()

    assert await recount == LIMIT - 1


class FailingCounts:
    """A store whose counts fail after the first (the database went away)."""

    def __init__(self) -> None:
        self.calls = 0

    async def count_messages(self, queue_id: int, now_ms: int) -> QueueCounts:
        self.calls += 1
        if self.calls > 1:
            raise ConnectionError("database unavailable")
        return QueueCounts(visible=0, in_flight=1, delayed=0)


async def test_a_failed_count_behind_a_receive_keeps_the_old_estimate() -> None:
    storage = FailingCounts()
    gauge = InFlightGauge(storage, limit=LIMIT)  # type: ignore[arg-type]
    assert await gauge.room(1, T0) == LIMIT - 1

    assert await gauge.room(1, T0 + RECOUNT_INTERVAL_MS) == LIMIT - 1
    await gauge.settled()
    assert await gauge.room(1, T0 + RECOUNT_INTERVAL_MS) == LIMIT - 1  # the next receive counts again
    await gauge.settled()

    assert storage.calls == 3


async def test_a_deleted_queue_s_estimate_is_dropped(limited: QueueService, clock: FakeClock) -> None:
    await fill(limited, Q, 3)
    await receive(limited, n=1)
    queue = await limited.storage.get_queue(Q)
    assert queue is not None
    gauge = limited._messages.in_flight
    assert gauge.known_room(queue.id, clock.now_ms()) == LIMIT - 1

    await limited.delete_queue(Q)

    assert gauge.known_room(queue.id, clock.now_ms()) is None  # nothing kept of it
