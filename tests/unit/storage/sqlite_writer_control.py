"""Test helpers that hold the SQLite writer between groups, so a test can line work items up behind it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from loosely.storage.sqlite.backend import SqliteStore
from loosely.storage.sqlite.schema import connect
from loosely.storage.sqlite.writer import Tx, Writer


async def started_writer(path: Path, table: str) -> Writer:
    """A writer of its own on ``path``, whose set-up creates table ``t`` with the column ``table`` defines."""
    writer = Writer(lambda: connect(str(path)), lambda conn: conn.execute(f"CREATE TABLE IF NOT EXISTS t ({table})"))
    await writer.start()
    return writer


def table_rows(path: Path) -> list[str]:
    """The values of table ``t``, in insertion order, read on a connection of the test's own."""
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY rowid")]


class Hold:
    """A bulk work item, enqueued at once, that keeps the writer's thread (so no later group starts) until released."""

    def __init__(self, store: SqliteStore) -> None:
        self._entered = threading.Event()
        self._release = threading.Event()
        self.done = store._writer.enqueue(self._work, bulk=True)

    def _work(self, tx: Tx) -> None:
        self._entered.set()
        assert self._release.wait(10)

    async def entered(self) -> None:
        assert await asyncio.to_thread(self._entered.wait, 10)

    async def release(self) -> None:
        self._release.set()
        await self.done


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop turn until ``condition`` holds (a bounded number of turns, no sleeping)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")
