"""A read-only connection on its own thread, for the few queries that may read many rows.

Counting a queue's messages reads every in-flight and delayed message of the queue (up to the
in-flight limit and beyond). Run on the writer thread, such a count would hold up every send and
claim behind it, so counts run here instead: WAL lets
this connection read the last committed state while the writer goes on. A caller that awaited a
write sees it, because the writer acknowledges only after the COMMIT.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from loosely.core.errors import ServiceUnavailable
from loosely.storage.sqlite.errors import map_sqlite_error

T = TypeVar("T")


class Reader:
    """Runs read-only functions on one thread that owns a second connection to the database."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the reader thread

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loosely-sqlite-reader")

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._executor
        if executor is None:
            raise ServiceUnavailable("The storage is closed.")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, self._call, fn)
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc) from exc

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = self._connect()
            self._conn.execute("PRAGMA query_only=ON")
        return fn(self._conn)

    async def stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close)
        executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
