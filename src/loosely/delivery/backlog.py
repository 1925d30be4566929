"""Publish held back while fan-out is far behind: `FanOutBacklog`, the node's `PublishAdmission`.

Fan-out is background work: it gives way to requests, and a burst of publications is acknowledged
at the publish path's own speed and fanned out right after, so Publish latency does not depend on
the number of subscribers. Sustained publishing faster than fan-out can keep up with is another
matter: the backlog, and with it the delay of every delivery, would grow for as long as it lasts.
Giving fan-out most of the event loop once it falls ``fanout_max_lag_ms`` behind does not bound it:
fan-out also waits for its signatures (threads) and for the store, and the loop serves publishes
meanwhile. (Measured, publishing at saturation to 10 SQS subscribers: fan-out still had 21 s of
work after 12 s of load and 38 s after 32 s.)

So once fan-out is ``publish_hold_lag_ms`` behind (30 s by default: far enough that bursts are not
held), new publications are admitted only as fan-out retires publications: at lag L over the limit
M, each retired publication admits M / L new ones. Near the limit that is one for one; far over it
fewer, so the backlog shrinks until fan-out is back at about M of delay (the lag shows late, at the
head of the backlog, so a backlog made at the publish path's speed can overshoot it first). Nothing
is refused: a held Publish is answered once admitted. The gate opens again as soon as fan-out is
under the limit, catches up, fails, or stops.

A Publish is held at most ``max_hold_s``, then recorded anyway (and counted): a fan-out that
stopped making progress must not stall publishers for ever. Requests are admitted in arrival order.
On PostgreSQL, with several nodes, each node gates its own publishers on its own fan-out (which
claims from the shared outbox): publishers are slowed on whichever node sees fan-out fall behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from loosely.core.frozen import record
from loosely.delivery.options import DeliveryStats

__all__ = ["FanOutBacklog"]


@record(eq=False)
class _Held:
    publications: int
    admitted: asyncio.Future[None]


class FanOutBacklog:
    """Admits Publish requests as fan-out retires publications, while it is behind; at once otherwise."""

    def __init__(self, max_lag_ms: int = 30_000, max_hold_s: float = 5.0, stats: DeliveryStats | None = None) -> None:
        self._max_lag_ms = max_lag_ms
        self._max_hold_s = max_hold_s
        self._behind = False
        self._admits_per_retired = 1.0
        self._credit = 0.0  # publications that may be admitted, earned by retirements while behind
        self._held: deque[_Held] = deque()
        # ``publishes_held``: requests that had to wait; ``publishes_held_too_long``: those recorded
        # after ``max_hold_s`` without being admitted (shown by ``GET /_loosely/delivery``).
        self.stats = stats or DeliveryStats()

    @property
    def behind(self) -> bool:
        return self._behind

    @property
    def waiting(self) -> int:
        return len(self._held)

    def lagging(self, lag_ms: int) -> None:
        """Fan-out is working on publications this old: over the limit it holds Publish back, else not."""
        if lag_ms <= self._max_lag_ms:
            self.caught_up()
            return
        if not self._behind:
            self._behind = True
            self._credit = 0.0
        self._admits_per_retired = self._max_lag_ms / lag_ms

    def caught_up(self) -> None:
        """Fan-out is within the limit, has nothing left, failed or stopped: let everyone in."""
        self._behind = False
        self._credit = 0.0
        while self._held:
            _admit(self._held.popleft())

    def retired(self, publications: int) -> None:
        """Fan-out retired ``publications``: some new ones may now be recorded (all of them near the limit)."""
        if not self._behind:
            return
        self._credit += publications * self._admits_per_retired
        while self._held and self._held[0].publications <= self._credit:
            held = self._held.popleft()
            self._credit -= held.publications
            _admit(held)

    async def admit(self, publications: int) -> None:
        if not self._behind:
            return
        if not self._held and publications <= self._credit:
            self._credit -= publications
            return
        held = _Held(publications, asyncio.get_running_loop().create_future())
        self._held.append(held)
        self.stats.publishes_held += 1
        try:
            async with asyncio.timeout(self._max_hold_s):
                await held.admitted
        except TimeoutError:
            self.stats.publishes_held_too_long += 1
        finally:
            # Timed out or cancelled (which cancels the awaited future too): give up its place.
            if held.admitted.cancelled() or not held.admitted.done():
                held.admitted.cancel()
                with contextlib.suppress(ValueError):  # already gone if the gate opened meanwhile
                    self._held.remove(held)


def _admit(held: _Held) -> None:
    if not held.admitted.done():
        held.admitted.set_result(None)
