"""The in-flight limit: how many more messages a receive may hand out of a queue.

Counting a queue's in-flight messages costs a read of them all (up to the limit, 120,000), far too
much for every receive. So each node keeps an estimate per queue: the last exact count plus what
this node handed out since, less what it deleted. A receive reads the estimate; the exact count is
taken again when the estimate is a second old, so the cost is at most one count per queue per
second, shared by every receive in that second. The estimate errs high between counts (messages
whose visibility runs out, or that are made visible again, still count), which only makes the limit
bite a little early, and learns other nodes' receives at the next count: AWS's limit is approximate
too ("about 120,000").

Only two receives wait for a count: the queue's first (there is no estimate yet) and one that finds
an old estimate at the limit (the count may show room again). Any other receive that finds the
estimate old answers from it and leaves the count running behind it: a count reads every message
not visible, and on a table that has just seen heavy traffic took several milliseconds, which a
receive woken by a send paid once a second on top of its wake-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from loosely.core.frozen import record
from loosely.core.ports import QueueStore

RECOUNT_INTERVAL_MS = 1_000
"""Age at which an estimate is counted again (also how often a long poll at the limit looks again)."""


@record(frozen=False)
class _Estimate:
    value: int = 0
    counted_at_ms: int | None = None  # None until the first exact count is in
    recount: asyncio.Future[None] | None = None
    since_recount: int = 0  # handed out less deleted since the running recount began


class InFlightGauge:
    """Per-queue in-flight estimates of one node, checked against ``limit``."""

    def __init__(self, storage: QueueStore, limit: int) -> None:
        self.storage = storage
        self.limit = limit
        self._estimates: dict[int, _Estimate] = {}
        self._behind: set[asyncio.Task[None]] = set()  # counts running behind receives (kept referenced)

    def known_room(self, queue_id: int, now_ms: int) -> int | None:
        """`room` when the estimate is fresh enough to answer without a count (most receives), else None."""
        estimate = self._estimates.get(queue_id)
        if estimate is None or estimate.counted_at_ms is None:
            return None
        if estimate.recount is None and now_ms - estimate.counted_at_ms >= RECOUNT_INTERVAL_MS:
            return None
        return max(self.limit - estimate.value, 0)

    async def room(self, queue_id: int, now_ms: int) -> int:
        """How many more messages may be handed out of the queue now (0: it is at its limit).

        The first receive of a queue waits for a count; later ones read the estimate, and the one
        that finds it a second old counts again: behind its answer when the estimate leaves room,
        before it when the estimate is at the limit.
        """
        estimate = self._estimates.setdefault(queue_id, _Estimate())
        if estimate.recount is not None and estimate.counted_at_ms is None:
            await asyncio.shield(estimate.recount)  # the first count is running: wait for it
        if estimate.recount is None and (
            estimate.counted_at_ms is None or now_ms - estimate.counted_at_ms >= RECOUNT_INTERVAL_MS
        ):
            count = self._recount(estimate, queue_id, now_ms)  # marks the count running at once
            if estimate.counted_at_ms is None or estimate.value >= self.limit:
                await count
            else:
                task = asyncio.ensure_future(_quietly(count))
                self._behind.add(task)
                task.add_done_callback(self._behind.discard)
        return max(self.limit - estimate.value, 0)

    async def settled(self) -> None:
        """Wait for the counts running behind receives (tests; a store closing under one is harmless)."""
        while self._behind:
            await asyncio.gather(*self._behind, return_exceptions=True)

    def forget(self, queue_id: int) -> None:
        """The queue was deleted: drop its estimate (a node serving many short-lived queues keeps none)."""
        self._estimates.pop(queue_id, None)

    def handed_out(self, queue_id: int, count: int) -> None:
        """This node's receive handed out ``count`` messages."""
        self._adjust(queue_id, count)

    def deleted(self, queue_id: int, count: int) -> None:
        """This node deleted ``count`` received messages."""
        self._adjust(queue_id, -count)

    def _adjust(self, queue_id: int, delta: int) -> None:
        estimate = self._estimates.get(queue_id)
        if estimate is None or delta == 0:
            return
        estimate.value = max(estimate.value + delta, 0)
        if estimate.recount is not None:
            estimate.since_recount += delta

    def _recount(self, estimate: _Estimate, queue_id: int, now_ms: int) -> Coroutine[Any, Any, None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        estimate.recount, estimate.since_recount = done, 0

        async def count() -> None:
            try:
                counts = await self.storage.count_messages(queue_id, now_ms)
                # What was handed out after the count began is not in it (or, when it committed before
                # the count's snapshot, is in it twice, which errs high).
                estimate.value = max(counts.in_flight + estimate.since_recount, 0)
                estimate.counted_at_ms = now_ms
            finally:
                estimate.recount = None
                done.set_result(None)

        return count()


async def _quietly(count: Coroutine[Any, Any, None]) -> None:
    """A count nobody waits for: when it fails (the store is closing or unreachable), the old estimate
    stands and the next receive counts again."""
    try:
        await count
    except Exception:  # the receives it would have told are answered already
        return
