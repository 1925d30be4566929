"""The single writer: one connection, work in groups, statements on the event loop, waits on disk off it.

Concurrency invariants (the whole of them):

* One connection does every write, used by one thread at a time. The event loop runs a group's
  statements; the writer thread takes the connection for the COMMIT of a group that wrote, for
  bulk groups and for checkpoints, and while it has it ("taken") the loop starts no group. Work
  submitted meanwhile waits for the next group.
* A group is everything pending when the loop gets to it (up to `MAX_GROUP` items): one
  ``BEGIN IMMEDIATE``, the items one after another, one COMMIT. An item that raises is undone
  alone and its error goes to its own caller; the others still commit. Under load this turns
  hundreds of acknowledged writes into one fsync.
* Items run without a SAVEPOINT each (two statements per item saved): an item that raises before
  it changed a row has nothing to undo. Only one that raises *after* changing rows needs undoing:
  then the whole group is rolled back and run again with a SAVEPOINT around each item (the rare
  path). So an item's function may run twice; it must act only through ``tx`` (the connection
  and ``on_commit``), which every store function does.
* Groups that wrote are numbered in commit order; a caller is answered only once its group is
  durable: a group that wrote needs its own commit on disk, a group that wrote nothing needs
  every earlier one on disk (it may have read them). Callers are answered in commit order.
* After-commit hooks (wake-ups, cache updates) run on the event loop once the COMMIT returned,
  before the next group starts, so in-memory state advances in step with the database. A
  ``barrier`` item's hooks instead wait until its group is durable, and no later group starts
  before then: it is for changes read without the writer (the queue cache), so that nobody sees
  a change that could still be lost.
* Items run one after another, so an item sees every earlier item's writes: the store is
  serialisable by construction and needs no locks around its own data.
* **Requests first.** Items enqueued inside `Writer.background` (SNS fan-out's chunks, and the
  claims served right behind them) are background work. While one waits, a group takes the other
  pending items and leaves it for later (at most `BACKGROUND_PASSES` groups in a row, so it is
  never starved); it starts when no request is waiting. A background group is bulk work: its
  statements run on the thread, and its COMMIT is the next requests' own: back on the loop, the
  requests that arrived meanwhile run in its transaction (when they are plain items: not bulk,
  barrier or background) and commit with it; when none did, the transaction stays open for up to
  `BACKGROUND_COMMIT_WAIT_S`, and the first requests' group in that time joins it. A request
  that a chunk of fan-out would otherwise have delayed by its statements, its fsync and then its
  own group's fsync waits at most for the statements, and never for a COMMIT of fan-out's alone.
  Reordering is safe: a request that overtakes a background item was enqueued after it by another
  caller, which could as well have come first.

How a commit becomes durable depends on ``wal``:

* **In line** (no `WalFile`: ``synchronous=FULL``, the default, and ``EXTRA``, ``NORMAL``,
  ``OFF``): SQLite syncs inside the COMMIT as its setting says, and the group is durable when the
  COMMIT returns. The next group runs after that.
* **Pipelined** (a `WalFile`, ``synchronous=PIPELINED``): the COMMIT only writes the WAL; a second
  thread then fdatasyncs it, and the groups it covers are answered. While a sync runs, the next
  groups run and commit; the next sync covers all of them. Checkpoints are the writer's own
  (every `CHECKPOINT_EVERY` groups, on the writer thread, after a sync). The argument that this
  keeps "acknowledged = on disk", and measurements, are in `loosely.storage.sqlite.wal`.

Why statements run on the event loop: a work item is a few microseconds of SQLite between Python
calls that each release and retake the GIL. On a thread of its own, every one of those hand-offs
competed with the event loop for the GIL, and the item's caller paid for two thread switches;
that cost several times the SQL itself. The COMMIT is the step that writes (and waits on) the
disk, and the GIL is free while it does, so it runs on the thread, on the machine's other core.
Work that may take long (a purge, a retention change over a deep queue, the periodic expiry) is
submitted with ``bulk=True``: its whole group runs on the thread and the loop stays responsive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loosely.core.errors import ServiceUnavailable
from loosely.core.queues.models import QueueRecord
from loosely.storage.sqlite.errors import map_sqlite_error
from loosely.storage.sqlite.thread import WriterThread
from loosely.storage.sqlite.wal import CHECKPOINT_EVERY, WalFile

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_GROUP = 1000
"""Most work items committed together; bounds the latency one group adds to its last item."""

BACKGROUND_PASSES = 2
"""Groups of requests that may start, one after another, while background work waits.

Requests waiting when a chunk of fan-out is ready go first; the bound keeps a steady stream of
requests from holding fan-out back for ever (its own pacing, `loosely.delivery.fanout`, decides
how much of the store it takes)."""

BACKGROUND_COMMIT_WAIT_S = 0.001
"""How long a background group's transaction waits, open, for requests to commit with (see the module docstring).

Under load the next request comes sooner. Only while requests are being written (a group of them
started within `_REQUESTS_RECENT_S`): otherwise the background group commits at once."""
_REQUESTS_RECENT_S = 0.005


@dataclass(slots=True)
class Tx:
    """What a work item may use: the connection, inside an open transaction, and after-commit hooks.

    ``queues``: queue records as this connection's transaction sees them, by id, shared by every
    item (kept by `loosely.storage.sqlite.queues`, which drops an entry whenever an item changes
    that queue). The writer empties it on every rollback, so it never holds a change that was
    undone; items still see earlier items' changes, without a SELECT each.
    """

    conn: sqlite3.Connection
    queues: dict[int, QueueRecord]
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the event loop once this item's changes are committed (never on rollback)."""
        self.after_commit.append(fn)


@dataclass(slots=True)
class _Item:
    fn: Callable[[Tx], Any]
    future: asyncio.Future[Any]
    bulk: bool = False
    barrier: bool = False
    background: bool = False
    value: Any = None
    error: BaseException | None = None
    tx: Tx | None = None


@dataclass(slots=True)
class _Group:
    items: list[_Item]
    wrote: bool = False  # committed changes (False when it only read, or when it failed as a whole)
    needs: int = 0  # the commit number that must be durable before its callers are answered
    barrier: bool = False
    changes: int = 0  # the connection's total_changes when the group began


@dataclass(slots=True)
class _Outcome:
    """What a job on the thread raised, carried back to the loop."""

    error: BaseException | None = None

    def capture(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:
            self.error = exc


class Writer:
    """Owns the connection and runs submitted work with group commit (see the module docstring)."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        setup: Callable[[sqlite3.Connection], None],
        *,
        wal: WalFile | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self._connect = connect
        self._setup = setup
        self._wal = wal
        self._checkpoint_every = checkpoint_every
        self._conn: sqlite3.Connection | None = None
        self._queues: dict[int, QueueRecord] = {}  # see Tx.queues
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: WriterThread | None = None
        self._syncer: WriterThread | None = None
        self._pending: list[_Item] = []
        self._waiting: deque[_Group] = deque()  # committed, not yet durable, in commit order
        self._taken = False  # the thread has the connection (a group, a COMMIT or a checkpoint)
        self._held = False  # a barrier group waits for its sync: no group starts
        self._scheduled = False  # a flush is due on the loop
        self._syncing = False  # a WAL sync is on the thread
        self._committed = 0  # commits of groups that wrote, numbered from 1
        self._durable = 0  # every commit up to this number is on disk
        self._since_checkpoint = 0
        self._failed: ServiceUnavailable | None = None
        self._idle: asyncio.Event | None = None
        self._closing = False
        self._in_background = False  # inside `background`: enqueued items are background work
        self._background_pending = 0  # background items in ``_pending``
        self._passes = 0  # groups started in a row while background work waited
        self._open_group: _Group | None = None  # a background group ran, its transaction open: the next group joins it
        self._open_timer: asyncio.TimerHandle | None = None
        self._requests_at = float("-inf")  # when the last group with requests in it started (loop clock)
        self.groups_committed = 0
        self.items_committed = 0
        self.checkpoints = 0

    @property
    def pipelined(self) -> bool:
        """Whether commits are made durable by the writer's own WAL syncs (see the module docstring)."""
        return self._wal is not None

    async def start(self) -> None:
        """Connect and run ``setup`` (migrations, cache load) on the thread, before any work."""
        loop = asyncio.get_running_loop()
        thread = WriterThread(loop)
        try:
            self._conn = await thread.call(self._open)
            if self._wal is not None:
                self._wal.open()
        except BaseException as exc:
            if self._conn is not None:
                await thread.call(self._conn.close)
                self._conn = None
            thread.stop()
            mapped = map_sqlite_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        self._loop, self._thread = loop, thread
        if self._wal is not None:
            self._syncer = WriterThread(loop, "loosely-sqlite-sync")
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

    async def submit(self, fn: Callable[[Tx], T], *, bulk: bool = False, barrier: bool = False) -> T:
        """Run ``fn`` in the next group; return its value once the group is durable, or raise its error.

        ``bulk``: the work may take long (it scans a queue); run its group off the event loop.
        ``barrier``: its effects are read outside the writer; its hooks wait until it is durable.
        """
        return await self.enqueue(fn, bulk=bulk, barrier=barrier)

    @contextlib.contextmanager
    def background(self) -> Iterator[None]:
        """Items enqueued inside are background work: requests go first (see the module docstring).

        Everything one caller enqueues for one piece of background work (a chunk of fan-out and the
        claims that must run right behind it) belongs inside, so that it keeps its order.
        """
        outer, self._in_background = self._in_background, True
        try:
            yield
        finally:
            self._in_background = outer

    def enqueue(self, fn: Callable[[Tx], T], *, bulk: bool = False, barrier: bool = False) -> asyncio.Future[T]:
        """`submit` without waiting, for the returned future to be awaited.

        Items enqueued one after another, with no ``await`` between them, run in that order and in
        the same group (unless it is full): a later one sees an earlier one's changes and they
        commit together. That holds for items all inside `background` or all outside it; requests
        may overtake background work.
        """
        loop = self._loop
        if self._closing or loop is None:
            raise ServiceUnavailable("The storage is closed.")
        if self._failed is not None:
            raise self._failed
        future: asyncio.Future[T] = loop.create_future()
        background = self._in_background
        self._pending.append(_Item(fn, future, bulk, barrier, background))
        if background:
            self._background_pending += 1
        # Not now: the other requests of this loop iteration may join the group.
        self._next()
        return future

    async def stop(self) -> None:
        """Finish every item submitted so far, checkpoint the WAL and close the connection."""
        if self._loop is None or self._closing:
            return
        self._closing = True
        assert self._idle is not None and self._thread is not None
        while self._pending or self._active():
            self._idle.clear()
            self._next()
            await self._idle.wait()
        await self._thread.call(self._close)
        self._thread.stop()
        if self._syncer is not None:
            self._syncer.stop()
        log.info(
            "sqlite writer closed: %d items in %d group commits, %d WAL syncs, %d checkpoints",
            self.items_committed,
            self.groups_committed,
            0 if self._wal is None else self._wal.syncs,
            self.checkpoints,
        )

    # ---- scheduling ----

    def _active(self) -> bool:
        return self._taken or self._syncing or self._scheduled or bool(self._waiting) or self._open_group is not None

    def _next(self) -> None:
        """Schedule the next group if one may start; signal idleness when nothing is left to do."""
        if self._pending and self._failed is None:
            if not self._scheduled and not self._taken and not self._held:
                assert self._loop is not None
                self._scheduled = True
                self._loop.call_soon(self._flush)
        elif not self._active() and self._idle is not None:
            self._idle.set()

    def _flush(self) -> None:
        """Start the next group (or the due checkpoint): on the loop, or whole on the thread."""
        self._scheduled = False
        if self._taken or self._held or not self._pending or self._failed is not None:
            return
        assert self._thread is not None
        if self._open_group is not None:  # what is pending joins the open background group (as far as it may)
            self._taken = True
            self._join(self._reopen())
            return
        if self._wal is not None and self._since_checkpoint >= self._checkpoint_every:
            self._start_checkpoint()
            return
        group = _Group(self._take())
        if not group.items[0].background:
            self._requests_at = self._loop.time() if self._loop is not None else 0.0
        group.barrier = any(item.barrier for item in group.items)
        if any(item.bulk for item in group.items):
            self._taken = True
            if any(item.background for item in group.items):
                self._thread.run(lambda: self._run_background(group), lambda: self._join(group))
            else:
                self._thread.run(lambda: self._run_and_commit(group), lambda: self._landed(group))
            return
        conn = self._connection()
        changes = conn.total_changes
        if not self._run_safely(group.items):
            self._landed(group)
            return
        group.wrote = conn.total_changes != changes
        if group.wrote:
            # Writes a WAL (and syncs it, in line); on the thread, so the loop neither waits nor pays for it.
            self._taken = True
            self._thread.run(lambda: self._commit_safely(group), lambda: self._landed(group))
            return
        # Nothing written (an empty receive, a read): the COMMIT only ends the read.
        self._commit_safely(group)
        self._landed(group)

    def _take(self) -> list[_Item]:
        """The next group's items: the pending ones in order, without the background ones while requests wait."""
        pending = self._pending
        if self._background_pending and self._passes < BACKGROUND_PASSES:
            foreground = [item for item in pending if not item.background][:MAX_GROUP]
            if foreground:
                self._passes += 1
                if len(foreground) + self._background_pending == len(pending):
                    self._pending = [item for item in pending if item.background]
                else:
                    taken = {id(item) for item in foreground}
                    self._pending = [item for item in pending if id(item) not in taken]
                return foreground
        items = pending[:MAX_GROUP]
        del pending[:MAX_GROUP]
        if self._background_pending:
            self._passes = 0
            self._background_pending -= sum(1 for item in items if item.background)
        return items

    def _join(self, group: _Group) -> None:
        """On the loop, a background group's statements done: plain requests waiting join its transaction.

        They run after its items, as if enqueued right behind them, and the group's COMMIT on the
        thread makes all of it durable at once. With nothing pending, the transaction stays open
        for the next requests (`BACKGROUND_COMMIT_WAIT_S`); pending work that may not join (bulk,
        barrier, background) gets the writer once the group is committed.
        """
        if not self._connection().in_transaction:  # settled on the thread (each item has its error)
            self._landed(group)
            return
        room = MAX_GROUP - len(group.items)
        joined = 0
        for item in self._pending:
            if joined == room or item.bulk or item.barrier or item.background:
                break
            joined += 1
        if joined:
            assert self._loop is not None
            self._requests_at = self._loop.time()
            items = self._pending[:joined]
            del self._pending[:joined]
            group.items.extend(items)
            if not self._continue_safely(items, group.items):
                self._landed(group)
                return
        elif not self._pending and not self._closing and self._requests_recent():
            assert self._loop is not None
            self._taken = False
            self._open_group = group
            self._open_timer = self._loop.call_later(BACKGROUND_COMMIT_WAIT_S, self._commit_open)
            return
        self._commit_background_later(group)

    def _requests_recent(self) -> bool:
        assert self._loop is not None
        return self._loop.time() - self._requests_at < _REQUESTS_RECENT_S

    def _reopen(self) -> _Group:
        """Take the open background group back (the caller commits it)."""
        group, self._open_group = self._open_group, None
        assert group is not None
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        return group

    def _commit_open(self) -> None:
        """No requests came to join the open background group in time: it commits alone."""
        self._open_timer = None
        if self._open_group is None or self._taken:
            return
        self._taken = True
        self._commit_background_later(self._reopen())

    def _commit_background_later(self, group: _Group) -> None:
        assert self._thread is not None
        self._thread.run(lambda: self._commit_background(group), lambda: self._landed(group))

    def _landed(self, group: _Group) -> None:
        """On the loop, once the group is committed (or failed): number it, run hooks, answer or wait."""
        self._taken = False
        if group.wrote:
            self._committed += 1
            self._since_checkpoint += 1
            if self._wal is None:
                self._durable = self._committed
        group.needs = self._committed
        deferred = group.barrier and group.wrote and group.needs > self._durable
        if not deferred:
            _run_hooks(group)
        if group.needs <= self._durable and not self._waiting:
            _answer(group)
        else:
            self._waiting.append(group)
            self._held = self._held or deferred
            self._start_sync()
        self._next()

    # ---- durability (pipelined) ----

    def _start_sync(self) -> None:
        """Sync the WAL on the thread unless a sync is running already (it will start the next one)."""
        wal = self._wal
        if wal is None or self._syncing or self._durable >= self._committed:
            return
        assert self._thread is not None
        self._syncing = True
        covered = self._committed
        outcome = _Outcome()
        assert self._syncer is not None
        self._syncer.run(lambda: outcome.capture(wal.sync), lambda: self._synced(covered, outcome.error))

    def _synced(self, covered: int, error: BaseException | None) -> None:
        self._syncing = False
        self._advance(covered, error)

    def _advance(self, covered: int, error: BaseException | None) -> None:
        """Commits up to ``covered`` are on disk (or the sync failed): answer whoever waited for them."""
        if error is not None:
            self._poison(error)
            return
        self._durable = max(self._durable, covered)
        while self._waiting and self._waiting[0].needs <= self._durable:
            group = self._waiting.popleft()
            if group.barrier and group.wrote:
                self._held = False
                _run_hooks(group)
            _answer(group)
        self._start_sync()
        self._next()

    def _poison(self, error: BaseException) -> None:
        """A failed WAL sync: fail every waiting and pending caller, and refuse all later work."""
        log.critical("syncing the SQLite WAL failed; the store refuses work until restarted: %s", error)
        self._failed = ServiceUnavailable("The storage is unavailable: writing to disk failed.")
        self._held = False
        while self._waiting:
            group = self._waiting.popleft()
            _fail(group.items, self._failed)
            _answer(group)
        if self._open_group is not None:  # its statements are undone: nothing of it was acknowledged
            group = self._reopen()
            self._queues.clear()
            try:
                self._connection().execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback of an open background group failed")
            _fail(group.items, self._failed)
            _answer(group)
        pending, self._pending = self._pending, []
        self._background_pending = self._passes = 0
        _fail(pending, self._failed)
        _answer(_Group(pending))
        self._next()

    def _start_checkpoint(self) -> None:
        """Copy the WAL back into the database on the thread, after syncing it, with no group running."""
        wal, thread = self._wal, self._thread
        assert wal is not None and thread is not None
        self._taken = True
        covered = self._committed
        sync = _Outcome()
        checkpoint = _Outcome()

        def work() -> None:
            sync.capture(wal.sync)
            if sync.error is None:
                checkpoint.capture(self._checkpoint)

        thread.run(work, lambda: self._checkpointed(covered, sync.error, checkpoint.error))

    def _checkpoint(self) -> None:
        busy, frames, copied = self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        log.debug("WAL checkpoint: busy=%s, %s frames, %s copied back", busy, frames, copied)

    def _checkpointed(self, covered: int, sync_error: BaseException | None, error: BaseException | None) -> None:
        self._taken = False
        self._since_checkpoint = 0
        self.checkpoints += 1
        if error is not None:  # the commits are durable in the WAL regardless; try again later
            log.warning("WAL checkpoint failed: %s", error)
        self._advance(covered, sync_error)

    # ---- running and committing ----

    def _run_and_commit(self, group: _Group) -> None:
        """On the thread: the whole group (bulk work)."""
        conn = self._connection()
        changes = conn.total_changes
        if self._run_safely(group.items):
            group.wrote = conn.total_changes != changes
            self._commit_safely(group)

    def _run_background(self, group: _Group) -> None:
        """On the thread: a background group's statements, leaving its transaction open (`_join`)."""
        group.changes = self._connection().total_changes
        self._run_safely(group.items)

    def _commit_background(self, group: _Group) -> None:
        """On the thread: COMMIT a background group's transaction, with the requests that joined it."""
        conn = self._connection()
        if conn.in_transaction:
            group.wrote = conn.total_changes != group.changes
            self._commit_safely(group)

    def _run_safely(self, items: list[_Item]) -> bool:
        """BEGIN and run every item; False when the group is settled already (each item has its error)."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            _fail(items, map_sqlite_error(exc))
            return False
        return self._continue_safely(items, items)

    def _continue_safely(self, items: list[_Item], group: list[_Item]) -> bool:
        """Run ``items``, the last of ``group``'s, in its open transaction; False when the group is settled."""
        conn = self._connection()
        try:
            if not _run_items(conn, items, self._queues):
                # An item raised after it changed rows: undo the group, run it again item by item.
                self._queues.clear()
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                for item in group:
                    item.value = item.error = item.tx = None
                    _run_item_in_savepoint(conn, item, self._queues)
        except BaseException as exc:  # a bug here must still answer every caller
            log.exception("group failed")
            self._abandon(group, exc)
            return False
        if not conn.in_transaction:
            # A severe error (full disk, I/O) made SQLite roll the whole transaction back.
            self._queues.clear()
            _fail(group, ServiceUnavailable("The storage is unavailable: the transaction was rolled back."))
            return False
        return True

    def _commit_safely(self, group: _Group) -> None:
        conn = self._connection()
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            group.wrote = False
            self._queues.clear()
            error = map_sqlite_error(exc)
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback after a failed commit failed")
            _fail(group.items, error)
            return
        except BaseException as exc:
            group.wrote = False
            self._queues.clear()
            log.exception("commit failed")
            self._abandon(group.items, exc)
            return
        self.groups_committed += 1
        self.items_committed += len(group.items)

    def _abandon(self, items: list[_Item], exc: BaseException) -> None:
        conn = self._connection()
        self._queues.clear()
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rollback after a failed group failed")
        _fail(items, ServiceUnavailable(f"The storage is unavailable: {exc}"))

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
            if self._wal is not None:
                self._wal.close()


def _run_items(conn: sqlite3.Connection, items: list[_Item], queues: dict[int, QueueRecord]) -> bool:
    """Run the items without savepoints; False when one raised after changing rows (nothing else is settled).

    ``total_changes`` counts the rows of completed statements only (SQLite undoes a failed
    statement itself), so an unchanged count means the failed item left nothing to undo. Rows a
    trigger changes are not counted, but a trigger fires only for a row its statement changed.
    """
    for item in items:
        if not conn.in_transaction:
            item.error = ServiceUnavailable("The storage is unavailable.")
            continue
        tx = Tx(conn, queues)
        changes = conn.total_changes
        try:
            item.value = item.fn(tx)
        except BaseException as exc:
            if conn.total_changes != changes and conn.in_transaction:
                return False
            item.value = None
            item.error = map_sqlite_error(exc)
            continue
        item.tx = tx
    return True


def _run_item_in_savepoint(conn: sqlite3.Connection, item: _Item, queues: dict[int, QueueRecord]) -> None:
    if not conn.in_transaction:
        item.error = ServiceUnavailable("The storage is unavailable.")
        return
    tx = Tx(conn, queues)
    try:
        conn.execute("SAVEPOINT item")
        item.value = item.fn(tx)
        conn.execute("RELEASE item")
    except BaseException as exc:
        queues.clear()
        if conn.in_transaction:
            conn.execute("ROLLBACK TO item")
            conn.execute("RELEASE item")
        item.error = map_sqlite_error(exc)
        return
    item.tx = tx


def _fail(items: list[_Item], error: BaseException) -> None:
    """Every item fails: with its own error when it had one, else with ``error``."""
    for item in items:
        if item.error is None:
            item.error = error
            item.value = None


def _run_hooks(group: _Group) -> None:
    for item in group.items:
        if item.error is None and item.tx is not None:
            for fn in item.tx.after_commit:
                try:
                    fn()
                except Exception:  # a hook must never lose other callers' results
                    log.exception("after-commit hook failed")


def _answer(group: _Group) -> None:
    for item in group.items:
        future = item.future
        if future.done():  # the caller gave up (cancelled); the work happened regardless
            continue
        if item.error is not None:
            future.set_exception(item.error)
        else:
            future.set_result(item.value)
