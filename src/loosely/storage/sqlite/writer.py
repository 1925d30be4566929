"""The single writer: one thread owns the SQLite connection and commits work in groups.

Concurrency invariants (the whole of them):

* Only the writer thread touches the connection. Async callers hand it work items (plain functions
  of a `Tx`) through a thread-safe inbox and await a future.
* The thread takes everything pending (up to `MAX_GROUP` items), opens one ``BEGIN IMMEDIATE``
  transaction, runs each item inside its own SAVEPOINT, and COMMITs once. An item that raises is
  rolled back to its savepoint alone and its error goes to its own caller; the others still commit.
  Under load this turns hundreds of acknowledged writes into one fsync.
* Futures are resolved only after the COMMIT returned, so a method that returned has reached the
  disk (with ``synchronous=FULL``). After-commit callbacks (cache updates, wake-ups) run on the
  writer thread, after the COMMIT and before any future of the group is resolved.
* Items run one after another, so an item sees every earlier item's writes: the store is
  serialisable by construction and needs no locks around its own data.
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
        """Run ``fn`` on the writer thread once this item's changes are committed (never on rollback)."""
        self.after_commit.append(fn)


@dataclass(slots=True)
class _Item:
    fn: Callable[[Tx], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Outcome:
    item: _Item
    value: Any = None
    error: BaseException | None = None
    tx: Tx | None = None


_STOP = object()


class Writer:
    """Owns the connection on a dedicated thread and runs submitted work with group commit."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], setup: Callable[[sqlite3.Connection], None]) -> None:
        self._connect = connect
        self._setup = setup
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._closing = False
        self.groups_committed = 0

    async def start(self) -> None:
        """Start the thread, which connects and runs ``setup`` (migrations, cache load) before any work."""
        self._thread = threading.Thread(target=self._main, name="loosely-sqlite-writer", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(self._started)

    async def submit(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in the next group; return its value once the group is committed, or raise its error."""
        if self._closing or self._thread is None:
            raise ServiceUnavailable("The storage is closed.")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._inbox.put(_Item(fn, loop, future))
        return await future

    async def stop(self) -> None:
        """Finish every item submitted so far, checkpoint the WAL and close the connection."""
        if self._thread is None or self._closing:
            return
        self._closing = True
        self._inbox.put(_STOP)
        await asyncio.wrap_future(self._stopped)

    # ---- the thread ----

    def _main(self) -> None:
        try:
            conn = self._connect()
            self._setup(conn)
        except BaseException as exc:
            self._started.set_exception(map_sqlite_error(exc))
            self._stopped.set_result(None)
            return
        self._started.set_result(None)
        try:
            self._loop(conn)
        finally:
            self._shutdown(conn)

    def _loop(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self._inbox.get()
            group: list[_Item] = []
            stop = first is _STOP
            if not stop:
                group.append(first)  # type: ignore[arg-type]
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                else:
                    group.append(nxt)  # type: ignore[arg-type]
            if group:
                self._deliver(self._run_group_safely(conn, group))
            if stop and self._inbox.empty():
                return

    def _run_group_safely(self, conn: sqlite3.Connection, group: list[_Item]) -> list[_Outcome]:
        """Run the group; whatever goes wrong, every caller gets an answer and the thread lives on."""
        try:
            return self._run_group(conn, group)
        except BaseException as exc:
            log.exception("group commit failed")
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback after a failed group failed")
            error = ServiceUnavailable(f"The storage is unavailable: {exc}")
            return [_Outcome(item, error=error) for item in group]

    def _run_group(self, conn: sqlite3.Connection, group: list[_Item]) -> list[_Outcome]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            error = map_sqlite_error(exc)
            return [_Outcome(item, error=error) for item in group]
        outcomes = [self._run_item(conn, item) for item in group]
        if not conn.in_transaction:
            # A severe error (full disk, I/O) made SQLite roll the whole transaction back.
            lost = ServiceUnavailable("The storage is unavailable: the transaction was rolled back.")
            return [_Outcome(o.item, error=o.error or lost) for o in outcomes]
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            error = map_sqlite_error(exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [_Outcome(o.item, error=o.error or error) for o in outcomes]
        self.groups_committed += 1
        for outcome in outcomes:
            if outcome.error is None and outcome.tx is not None:
                self._run_after_commit(outcome.tx)
        return outcomes

    @staticmethod
    def _run_item(conn: sqlite3.Connection, item: _Item) -> _Outcome:
        if not conn.in_transaction:
            return _Outcome(item, error=ServiceUnavailable("The storage is unavailable."))
        tx = Tx(conn)
        try:
            conn.execute("SAVEPOINT item")
            value = item.fn(tx)
            conn.execute("RELEASE item")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO item")
                conn.execute("RELEASE item")
            return _Outcome(item, error=map_sqlite_error(exc))
        return _Outcome(item, value=value, tx=tx)

    @staticmethod
    def _run_after_commit(tx: Tx) -> None:
        for fn in tx.after_commit:
            try:
                fn()
            except Exception:  # a hook must never lose other callers' results
                log.exception("after-commit hook failed")

    @staticmethod
    def _deliver(outcomes: list[_Outcome]) -> None:
        """Resolve futures with one thread-safe call per event loop (one wake-up, not one per item)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome.item.loop, []).append(outcome)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, items)
            except RuntimeError:  # the caller's loop is closed; nobody is waiting any more
                pass

    def _shutdown(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint at close failed: %s", exc)
        finally:
            conn.close()
            self._fail_leftovers()
            self._stopped.set_result(None)

    def _fail_leftovers(self) -> None:
        leftovers: list[_Outcome] = []
        while True:
            try:
                nxt = self._inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(nxt, _Item):
                leftovers.append(_Outcome(nxt, error=ServiceUnavailable("The storage is closed.")))
        self._deliver(leftovers)


def _resolve_all(outcomes: list[_Outcome]) -> None:
    for outcome in outcomes:
        future = outcome.item.future
        if future.done():  # the caller gave up (cancelled); the work happened regardless
            continue
        if outcome.error is not None:
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome.value)
