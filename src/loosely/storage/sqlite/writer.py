"""The single writer: one connection, work in groups, statements on the event loop, COMMIT on a thread.

Concurrency invariants (the whole of them):

* One connection does every write, and it is used by one thread at a time: the event loop runs the
  statements of a group, then hands the connection to the commit thread for the COMMIT, and takes
  it back only when the COMMIT returned. Nothing touches the connection while a COMMIT runs; work
  submitted meanwhile waits for the next group.
* A group is everything pending when the loop gets to it (up to `MAX_GROUP` items): one
  ``BEGIN IMMEDIATE``, each item inside its own SAVEPOINT, one COMMIT. An item that raises is
  rolled back to its savepoint alone and its error goes to its own caller; the others still commit.
  Under load this turns hundreds of acknowledged writes into one fsync.
* Futures are resolved only after the COMMIT returned, so a method that returned has reached the
  disk (with ``synchronous=FULL``). After-commit callbacks (cache updates, wake-ups) run on the
  event loop, after the COMMIT and before any future of the group is resolved.
* Items run one after another, so an item sees every earlier item's writes: the store is
  serialisable by construction and needs no locks around its own data.

Why the statements run on the event loop: a work item is a few microseconds of SQLite between
Python calls that each release and retake the GIL. On a thread of its own, every one of those
hand-offs competed with the event loop for the GIL, and the item's caller paid for two thread
switches; that cost several times the SQL itself. The COMMIT is the one step that waits on the
disk (fsync), and the GIL is free while it does, so the loop serves requests and gathers the next
group meanwhile. Work that may take long (a purge, a retention change over a deep queue, the
periodic expiry) is submitted with ``bulk=True``: its whole group runs on the commit thread and the
loop stays responsive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loosely.core.errors import ServiceUnavailable
from loosely.storage.sqlite.errors import map_sqlite_error

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_GROUP = 1000
"""Most work items committed together; bounds the latency one group adds to its last item."""


@dataclass(slots=True)
class Tx:
    """What a work item may use: the connection, inside an open transaction, and after-commit hooks."""

    conn: sqlite3.Connection
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the event loop once this item's changes are committed (never on rollback)."""
        self.after_commit.append(fn)


@dataclass(slots=True)
class _Item:
    fn: Callable[[Tx], Any]
    future: asyncio.Future[Any]
    bulk: bool = False
    value: Any = None
    error: BaseException | None = None
    tx: Tx | None = None


class Writer:
    """Owns the connection and runs submitted work with group commit (see the module docstring)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], setup: Callable[[sqlite3.Connection], None]) -> None:
        self._connect = connect
        self._setup = setup
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: _Thread | None = None
        self._pending: list[_Item] = []
        self._busy = False  # a group is running or committing: the connection is taken
        self._scheduled = False  # a flush is due on the loop
        self._idle: asyncio.Event | None = None
        self._closing = False
        self.groups_committed = 0
        self.items_committed = 0

    async def start(self) -> None:
        """Connect and run ``setup`` (migrations, cache load) on the commit thread, before any work."""
        loop = asyncio.get_running_loop()
        thread = _Thread(loop)
        try:
            self._conn = await thread.call(self._open)
        except BaseException as exc:
            thread.stop()
            mapped = map_sqlite_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        self._loop, self._thread = loop, thread
        self._idle = asyncio.Event()
        self._idle.set()

    def _open(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def submit(self, fn: Callable[[Tx], T], *, bulk: bool = False) -> T:
        """Run ``fn`` in the next group; return its value once the group is committed, or raise its error.

        ``bulk``: the work may take long (it scans a queue); run its group off the event loop.
        """
        loop = self._loop
        if self._closing or loop is None:
            raise ServiceUnavailable("The storage is closed.")
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Item(fn, future, bulk))
        if not self._busy and not self._scheduled:
            self._scheduled = True
            # Not now: the other requests of this loop iteration may join the group.
            loop.call_soon(self._flush)
        return await future

    async def stop(self) -> None:
        """Finish every item submitted so far, checkpoint the WAL and close the connection."""
        if self._loop is None or self._closing:
            return
        self._closing = True
        assert self._idle is not None and self._thread is not None
        while self._pending or self._busy:
            self._idle.clear()
            if not self._busy and not self._scheduled:
                self._flush()
            await self._idle.wait()
        await self._thread.call(self._close)
        self._thread.stop()
        log.info("sqlite writer closed: %d items in %d group commits", self.items_committed, self.groups_committed)

    # ---- groups ----

    def _flush(self) -> None:
        """Start the next group: run it here and commit it on the thread, or all of it there if bulky."""
        self._scheduled = False
        if self._busy or not self._pending:
            return
        group = self._pending[:MAX_GROUP]
        del self._pending[:MAX_GROUP]
        self._busy = True
        assert self._loop is not None and self._thread is not None
        if any(item.bulk for item in group):
            self._thread.run(self._run_and_commit, group, self._finish)
            return
        changes = self._connection().total_changes
        if not self._run_safely(group):
            self._finish(group)
        elif self._connection().total_changes == changes:
            # Nothing was written (an empty receive, a read): the COMMIT has nothing to sync.
            self._commit_safely(group)
            self._finish(group)
        else:
            self._thread.run(self._commit_safely, group, self._finish)

    def _run_and_commit(self, group: list[_Item]) -> None:
        if self._run_safely(group):
            self._commit_safely(group)

    def _run_safely(self, group: list[_Item]) -> bool:
        """BEGIN and run every item; False when the group is settled already (each item has its error)."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            _fail(group, map_sqlite_error(exc))
            return False
        try:
            for item in group:
                _run_item(conn, item)
        except BaseException as exc:  # a bug here must still answer every caller
            log.exception("group failed")
            self._abandon(group, exc)
            return False
        if not conn.in_transaction:
            # A severe error (full disk, I/O) made SQLite roll the whole transaction back.
            _fail(group, ServiceUnavailable("The storage is unavailable: the transaction was rolled back."))
            return False
        return True

    def _commit_safely(self, group: list[_Item]) -> None:
        conn = self._connection()
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            error = map_sqlite_error(exc)
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback after a failed commit failed")
            _fail(group, error)
            return
        except BaseException as exc:
            log.exception("commit failed")
            self._abandon(group, exc)
            return
        self.groups_committed += 1
        self.items_committed += len(group)

    def _abandon(self, group: list[_Item], exc: BaseException) -> None:
        conn = self._connection()
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rollback after a failed group failed")
        _fail(group, ServiceUnavailable(f"The storage is unavailable: {exc}"))

    def _finish(self, group: list[_Item]) -> None:
        """On the loop, once the group is committed (or failed): hooks, then answers, then the next group."""
        for item in group:
            if item.error is None and item.tx is not None:
                _run_after_commit(item.tx)
        for item in group:
            future = item.future
            if future.done():  # the caller gave up (cancelled); the work happened regardless
                continue
            if item.error is not None:
                future.set_exception(item.error)
            else:
                future.set_result(item.value)
        self._busy = False
        if self._pending:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        elif self._idle is not None:
            self._idle.set()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ServiceUnavailable("The storage is closed.")
        return self._conn

    def _close(self) -> None:
        conn = self._connection()
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint at close failed: %s", exc)
        finally:
            conn.close()
            self._conn = None


class _Thread:
    """The writer's own thread: runs a function on a group, then hands the group back to the loop.

    Lighter than an executor: one queue put to start, one ``call_soon_threadsafe`` to answer,
    no futures in between (this is paid once per group commit).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._inbox: queue.SimpleQueue[tuple[Callable[[], None], Callable[[], None]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="loosely-sqlite-writer", daemon=True)
        self._thread.start()

    def run(self, fn: Callable[[list[_Item]], None], group: list[_Item], then: Callable[[list[_Item]], None]) -> None:
        """Run ``fn(group)`` on the thread, then ``then(group)`` on the loop (whatever ``fn`` did)."""
        self._inbox.put((lambda: fn(group), lambda: then(group)))

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
            except BaseException:  # the group's items carry their own errors; never lose the thread
                log.exception("writer thread job failed")
            try:
                self._loop.call_soon_threadsafe(then)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return


def _run_item(conn: sqlite3.Connection, item: _Item) -> None:
    if not conn.in_transaction:
        item.error = ServiceUnavailable("The storage is unavailable.")
        return
    tx = Tx(conn)
    try:
        conn.execute("SAVEPOINT item")
        item.value = item.fn(tx)
        conn.execute("RELEASE item")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK TO item")
            conn.execute("RELEASE item")
        item.error = map_sqlite_error(exc)
        return
    item.tx = tx


def _fail(group: list[_Item], error: BaseException) -> None:
    """Every item of the group fails: with its own error when it had one, else with ``error``."""
    for item in group:
        if item.error is None:
            item.error = error
            item.value = None


def _run_after_commit(tx: Tx) -> None:
    for fn in tx.after_commit:
        try:
            fn()
        except Exception:  # a hook must never lose other callers' results
            log.exception("after-commit hook failed")
