"""Which queues this node has told the database it waits on (so sends to them notify).

A send notifies only while another node's registration for the queue is live (the ``waiters``
table; migrations/0002_wake_waiters.sql and 0007_wake_other_nodes.sql explain why no wake-up is
lost). The sending node wakes its own waiters after the commit, so its own registrations never
make it notify. A node registers a queue the
first time one of its receivers is about to wait on it, then renews the registration while
receivers keep waiting; when nobody waits for a while the registration lapses and sends to the
queue stop paying for NOTIFY.

This module keeps the node's side: a local, conservative view of how long each registration lasts
(measured from the moment the registration was sent, on the monotonic clock, so the database's
expiry is never earlier than ours), and one registration in flight per queue however many
receivers ask at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

REGISTRATION_TTL_S = 10.0  # how long a registration lasts in the database
_RENEW_BELOW_S = REGISTRATION_TTL_S / 2  # renew once less than this remains
_MARGIN_S = 1.0  # a wait must end this long before the registration does


class Registrations:
    """The node's live registrations; ``register`` runs one database registration for a queue."""

    def __init__(self, register: Callable[[int], Awaitable[None]], clock: Callable[[], float] = time.monotonic) -> None:
        self._register = register
        self._clock = clock
        self._until: dict[int, float] = {}
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._ever = False

    def covers(self, queue_id: int, wait_s: float) -> bool:
        """Whether the registration outlives a wait of ``wait_s`` starting now."""
        return self._until.get(queue_id, 0.0) - self._clock() >= wait_s + _MARGIN_S

    def due(self, queue_id: int) -> bool:
        """Whether the registration should be renewed (it is still live, but half gone)."""
        return self._until.get(queue_id, 0.0) - self._clock() < _RENEW_BELOW_S

    async def ensure(self, queue_id: int) -> None:
        """Register (or renew) ``queue_id``; concurrent callers share one round trip.

        Raises whatever the registration raises (the caller falls back to timed polling).
        """
        pending = self._pending.get(queue_id)
        if pending is None:
            pending = asyncio.ensure_future(self._registered(queue_id))
            self._pending[queue_id] = pending
            pending.add_done_callback(lambda done: self._settled(queue_id, done))
        await asyncio.shield(pending)

    def forget(self) -> bool:
        """Drop every local registration; return whether this node ever registered a queue."""
        self._until.clear()
        ever, self._ever = self._ever, False
        return ever

    def _settled(self, queue_id: int, done: asyncio.Future[None]) -> None:
        self._pending.pop(queue_id, None)
        if not done.cancelled():
            done.exception()  # retrieved: a caller that was cancelled meanwhile must not leave it unseen

    async def _registered(self, queue_id: int) -> None:
        sent_at = self._clock()
        self._ever = True
        await self._register(queue_id)
        self._until[queue_id] = sent_at + REGISTRATION_TTL_S
        expired = [q for q, until in self._until.items() if until < sent_at]
        for q in expired:
            del self._until[q]
