"""Pacing push deliveries: per-endpoint lanes (bounded concurrency) and per-subscription throttles.

A slow or dead endpoint must not hold up anyone else. Each endpoint (``transport.lane``: an HTTP
origin, the SMTP relay, a provider URL) gets a `Lane` with a concurrency limit and a backlog limit;
a delivery that finds its lane's backlog full waits a moment for a place (a burst for a fast
endpoint gets through) and is then handed back to the store (due a little later) instead of
waiting longer in memory, so one endpoint can never hold all of a node's delivery slots.

A subscription's ``throttlePolicy.maxReceivesPerSecond`` is kept by a `Throttle`: attempts of one
subscription start at least ``1 / rate`` seconds apart. A delivery whose turn is further away than
the worker wants to wait is handed back too.

Both are per node: with several nodes sharing one database, each paces its own attempts (the
rate a subscription sees is at most the rate times the number of nodes).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import field

from loosely.core.frozen import record

__all__ = ["Lane", "Lanes", "Throttle"]

_PRUNE_AT = 10_000


@record(frozen=False)
class Lane:
    """One endpoint: ``held`` deliveries accepted (running or waiting), at most ``concurrency`` running."""

    semaphore: asyncio.Semaphore
    backlog: int
    held: int = 0
    refused: int = 0  # deliveries turned away since the lane last drained to half its backlog
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)  # for a place, first come first served

    @property
    def full(self) -> bool:
        return self.held >= self.backlog


@record(frozen=False)
class Lanes:
    """The lanes of one worker, created on first use and forgotten when idle."""

    concurrency: int
    backlog: int
    _lanes: dict[str, Lane] = field(default_factory=dict)
    refusals: int = 0  # deliveries turned away by any lane, ever
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a lane that was full has room for half its backlog again: time to claim for it."""

    def take(self, key: str) -> Lane | None:
        """Hold a place in the lane of ``key``, or None when its backlog is full."""
        lane = self._lanes.get(key)
        if lane is None:
            lane = Lane(asyncio.Semaphore(self.concurrency), max(self.backlog, self.concurrency))
            self._lanes[key] = lane
        if lane.full:
            lane.refused += 1
            self.refusals += 1
            return None
        lane.held += 1
        return lane

    async def wait_for_place(self, key: str, timeout_s: float) -> Lane | None:
        """After `take` refused: wait up to ``timeout_s`` for a place handed on by `give_back`, or None.

        A burst for one fast endpoint then waits a moment in memory instead of going back to the
        store and being claimed again (two writes and a delay per delivery); a slow endpoint's
        surplus still goes back once the wait is over.
        """
        lane = self._lanes.get(key)
        if lane is None or not lane.full:
            return self.take(key)
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.waiting.append(place)
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(place)
        except TimeoutError:
            if place.done():
                return lane  # handed on just as the wait ran out
            place.cancel()
            return None
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                self.give_back(key, lane)
            else:
                place.cancel()
            raise
        return lane

    def refused(self, key: str) -> int:
        """How many deliveries ``key``'s lane turned away since it last had room for half its backlog."""
        lane = self._lanes.get(key)
        return 0 if lane is None else lane.refused

    def busy(self) -> bool:
        """Whether some lane holds more than half its backlog (claims are then sized to the room left)."""
        return any(lane.held > lane.backlog // 2 for lane in self._lanes.values())

    def give_back(self, key: str, lane: Lane) -> None:
        while lane.waiting:
            place = lane.waiting.popleft()
            if not place.done():
                place.set_result(None)  # the place passes to the longest waiting delivery
                return
        lane.held -= 1
        if lane.held == lane.backlog // 2:
            lane.refused = 0
            self.drained.set()
        if lane.held == 0 and self._lanes.get(key) is lane:
            del self._lanes[key]

    def room(self) -> int:
        """Places free in the lanes in use: about how many of their deliveries a claim could start."""
        return sum(lane.backlog - lane.held for lane in self._lanes.values())

    def __len__(self) -> int:
        return len(self._lanes)


class Throttle:
    """Spaces the attempts of each key (a subscription ARN) ``1 / rate`` seconds apart."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._next: dict[str, float] = {}

    def reserve(self, key: str, rate: int, max_wait_s: float) -> float | None:
        """Book the next start for ``key``: seconds to wait before it, or None (nothing booked) if longer
        than ``max_wait_s``."""
        now = self._monotonic()
        start = max(self._next.get(key, now), now)
        wait = start - now
        if wait > max_wait_s:
            return None
        self._next[key] = start + 1.0 / rate
        if len(self._next) > _PRUNE_AT:
            self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._next.items() if t <= now]:
            del self._next[key]
