"""Helpers shared by storage backends: in-process wake-ups of long polls, JSON mappings."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

_last_claim: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "loosely_last_claim_generation", default=None
)


@dataclass(eq=False, slots=True)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    token: object | None = None


class QueueWaiters:
    """Per-queue wake-ups for long polls, safe to signal from any thread.

    Each queue has a generation number that every wake-up increments. A backend calls
    `before_claim` just before it claims, which remembers (in the calling task's context) the
    generation the claim started from. A later `wait` by the same task for the same queue returns
    at once if a wake-up happened since: a message sent between an empty claim and the start of
    the wait is not missed (no lost wake-up), and nobody polls. The claim counts for one wait only:
    a task that waits again without claiming (a long poll at the in-flight limit) waits for a new
    wake-up instead of returning at once, over and over, until its deadline.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generations: dict[int, int] = {}
        self._waiters: dict[int, set[_Waiter]] = {}
        self._ended = False

    def end(self) -> None:
        """Wake every waiter of every queue; from now on `wait` returns at once (the node is stopping)."""
        with self._lock:
            self._ended = True
            woken = [waiter for waiting in self._waiters.values() for waiter in waiting]
            self._waiters.clear()
        self._settle_all(woken)

    def before_claim(self, queue_id: int) -> None:
        """Remember the queue's current generation for this task's next `wait`."""
        with self._lock:
            generation = self._generations.get(queue_id, 0)
        _last_claim.set((queue_id, generation))

    def wake(self, queue_ids: Iterable[int]) -> None:
        """Wake every waiter of these queues (from any thread); later waits of earlier claims return at once."""
        woken: list[_Waiter] = []
        with self._lock:
            for queue_id in set(queue_ids):
                self._generations[queue_id] = self._generations.get(queue_id, 0) + 1
                woken.extend(self._waiters.pop(queue_id, ()))
        self._settle_all(woken)

    def wake_except(self, queue_id: int, kept: Collection[object]) -> None:
        """Wake the queue's waiters but those that waited with a token in ``kept``, which wait on.

        For a wake-up that a store knows is of no use to some waiters (they would claim and find
        nothing); everything else is as `wake`: later waits of earlier claims return at once.
        """
        woken: list[_Waiter] = []
        with self._lock:
            self._generations[queue_id] = self._generations.get(queue_id, 0) + 1
            waiting = self._waiters.get(queue_id)
            if waiting:
                woken = [w for w in waiting if w.token is None or w.token not in kept]
                waiting.difference_update(woken)
                if not waiting:
                    del self._waiters[queue_id]
        self._settle_all(woken)

    def _settle_all(self, woken: list[_Waiter]) -> None:
        if not woken:
            return
        # Usually the wake-up comes from the waiters' own loop (an after-commit hook): settle their futures
        # directly instead of writing to the loop's self-pipe once per waiter.
        here = asyncio._get_running_loop()
        for waiter in woken:
            if waiter.loop is here:
                _settle(waiter.future)
                continue
            try:
                waiter.loop.call_soon_threadsafe(_settle, waiter.future)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    async def wait(self, queue_id: int, timeout_s: float, token: object | None = None) -> None:
        """Return on the queue's next wake-up or after ``timeout_s``, whichever comes first.

        ``token`` names this wait for `wake_except`.
        """
        if timeout_s <= 0 or self._ended:
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop, loop.create_future(), token)
        last = _last_claim.get()
        _last_claim.set(None)  # one wait per claim: a second wait without a claim waits for a new wake-up
        with self._lock:
            if last is not None and last[0] == queue_id and self._generations.get(queue_id, 0) != last[1]:
                return
            self._waiters.setdefault(queue_id, set()).add(waiter)
        timer = loop.call_later(timeout_s, _settle, waiter.future)
        try:
            await waiter.future
        finally:
            timer.cancel()
            with self._lock:
                waiting = self._waiters.get(queue_id)
                if waiting is not None:
                    waiting.discard(waiter)
                    if not waiting:
                        del self._waiters[queue_id]

    def waiting(self, queue_id: int) -> int:
        """How many tasks wait on the queue now (for tests and metrics)."""
        with self._lock:
            return len(self._waiters.get(queue_id, ()))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def dump_mapping(mapping: Mapping[str, str]) -> str:
    """A mapping as compact JSON text with sorted keys (stable, comparable)."""
    return json.dumps(dict(mapping), separators=(",", ":"), sort_keys=True)


def load_mapping(text: str) -> dict[str, str]:
    """The mapping `dump_mapping` wrote."""
    loaded = json.loads(text)
    return {str(k): str(v) for k, v in loaded.items()}
