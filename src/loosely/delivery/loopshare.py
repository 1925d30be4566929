"""Background work on the event loop that gives way to requests: `LoopShare`.

Fan-out runs on the event loop that also answers requests (on SQLite the store's statements do too).
A publication with fifty subscribers costs the loop most of a millisecond, a batch of them tens of
milliseconds: run straight through, every request that arrives meanwhile waits for all of it, and
Publish latency grows with the number of subscribers. `LoopShare` lets the work run in slices and
decides, between slices, whether it may go on:

* after at most ``slice_s`` of work, it yields once (``asyncio.sleep(0)``): everything else that was
  ready runs first, and how long that took says how busy the loop is;
* when the loop had nothing else to do (it came back within ``idle_gap_s``), the work goes on at
  once: idle time is free, and this is what keeps fan-out fast on a server that is not saturated;
* when requests are being served, the work waits, one turn of the loop at a time, until it has used
  no more than ``share`` of the loop's busy time. A request then waits for at most one slice at each
  of its steps, and fan-out still moves, so its backlog cannot grow without end unnoticed.

`share` may change at any time (fan-out raises it when it falls too far behind). Times are wall
time measured on the loop: the work measures itself from when it last resumed, so an ``await`` of
I/O inside a slice counts as work (pacing errs on the side of the requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

__all__ = ["LoopShare"]

_FORGET_AFTER_S = 0.05
"""Busy time remembered: older history is halved away, so a long busy spell is not repaid later."""


class LoopShare:
    """Paces one background task on the event loop (see the module docstring)."""

    def __init__(
        self,
        share: float = 0.2,
        *,
        slice_s: float = 0.0003,
        idle_gap_s: float = 0.0002,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.share = share
        self._slice_s = slice_s
        self._idle_gap_s = idle_gap_s
        self._clock = clock
        self._resumed = clock()
        self._mine = 0.0  # background time in the current busy spell
        self._others = 0.0  # everyone else's time in it
        self.yields = 0  # turns given to the loop (for tests and diagnostics)
        self.busy = False  # whether others used the loop when the work last gave way
        self._busy_at = float("-inf")
        self._own = 0.0  # time marked with `own`, in total

    def busy_within(self, seconds: float) -> bool:
        """Whether the work found others using the loop in the last ``seconds``."""
        return self._clock() - self._busy_at < seconds

    def rest_for(self, worked_s: float) -> float:
        """How long to stay away from a resource shared with requests after using it ``worked_s``.

        The same share as on the loop: ``worked_s`` out of every ``worked_s / share``.
        """
        return worked_s * (1.0 - self.share) / self.share if self.share < 1.0 else 0.0

    def now(self) -> float:
        return self._clock()

    @contextlib.contextmanager
    def own(self) -> Iterator[None]:
        """Mark loop time spent by this same background job elsewhere (another of its tasks): not a request's."""
        start = self._clock()
        try:
            yield
        finally:
            self._own += self._clock() - start

    def resume(self) -> None:
        """The work starts (again) now: time before this, spent waiting, is not counted as work."""
        self._resumed = self._clock()

    def due(self) -> bool:
        """Whether the current slice is over (`checkpoint` would look at the loop), without awaiting anything."""
        return self._clock() - self._resumed >= self._slice_s

    async def checkpoint(self) -> None:
        """Between two steps of the work: give way if this slice is over and others want the loop."""
        now = self._clock()
        if now - self._resumed < self._slice_s:
            return
        self._mine += now - self._resumed
        while True:
            before, own_before = self._clock(), self._own
            await asyncio.sleep(0)
            self.yields += 1
            own = self._own - own_before
            self._mine += own
            gap = self._clock() - before - own
            if gap < self._idle_gap_s:
                # Nothing else was ready: the loop is ours until something arrives.
                self._mine = self._others = 0.0
                self.busy = False
                break
            self.busy = True
            self._busy_at = self._clock()
            self._others += gap
            if self._mine <= self.share * (self._mine + self._others):
                break
        if self._mine + self._others > _FORGET_AFTER_S:
            self._mine /= 2
            self._others /= 2
        self._resumed = self._clock()
