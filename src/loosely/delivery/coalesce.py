"""Gathering the store writes of many concurrent attempts into one call.

Every HTTP/S delivery that succeeds ends with a store write (the delivery is deleted). Attempts run
as tasks, and their answers arrive together: the tasks that resume in one turn of the event loop
each made their own store call, a transaction (a round trip on PostgreSQL) apiece. A `Coalescer`
hands everything added during one turn to a single call instead; each caller still returns only
once that call has completed (or raises its error), so "recorded" keeps meaning "durable".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")


class Coalescer(Generic[T]):
    """Calls ``flush`` once per event-loop turn with every item `add`ed during that turn."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[None]]) -> None:
        self._flush = flush
        self._pending: tuple[list[T], asyncio.Future[None]] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def add(self, item: T) -> None:
        """Include ``item`` in the next flush and wait for that flush (its error is raised here)."""
        if self._pending is None:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()
            done.add_done_callback(_retrieve)
            self._pending = ([], done)
            loop.call_soon(self._start)
        items, done = self._pending
        items.append(item)
        await asyncio.shield(done)  # a caller that gives up does not cancel the others' write

    def _start(self) -> None:
        assert self._pending is not None
        items, done = self._pending
        self._pending = None
        task = asyncio.create_task(self._run(items, done))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, items: list[T], done: asyncio.Future[None]) -> None:
        try:
            await self._flush(items)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except BaseException as exc:
            done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            done.set_result(None)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark an error as seen even when every caller gave up, so asyncio does not log it as lost."""
    if not future.cancelled():
        future.exception()
