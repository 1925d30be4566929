"""The writer's own thread: blocking steps (syncs, checkpoints, bulk groups) off the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class WriterThread:
    """Runs jobs one at a time, in submission order, and hands each one's continuation to the loop.

    Lighter than an executor: one queue put to start, one ``call_soon_threadsafe`` to answer, no
    futures in between (this is paid once per group or sync). Jobs run strictly in order, and
    their continuations reach the loop in the same order: the writer relies on both.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str = "loosely-sqlite-writer") -> None:
        self._loop = loop
        self._inbox: queue.SimpleQueue[tuple[Callable[[], None], Callable[[], None]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def run(self, work: Callable[[], None], then: Callable[[], None]) -> None:
        """Run ``work()`` on the thread, then ``then()`` on the loop (whatever ``work`` did or raised)."""
        self._inbox.put((work, then))

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the thread and return its value (start-up and shutdown)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def work() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._inbox.put((work, lambda: None))
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        self._inbox.put(None)
        self._thread.join()

    def _main(self) -> None:
        while (job := self._inbox.get()) is not None:
            work, then = job
            try:
                work()
            except BaseException:  # the jobs carry their own errors; never lose the thread
                log.exception("writer thread job failed")
            try:
                self._loop.call_soon_threadsafe(then)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return
