"""`SqliteStore`: the embedded, durable queue store (one file, one writer thread, group commit)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from loosely.core.errors import QueueDoesNotExist
from loosely.core.ports import QueueStore
from loosely.core.queues.models import (
    ClaimRequest,
    ClaimResult,
    DeleteOutcome,
    MessageRef,
    MoveTask,
    NewMessage,
    QueueCounts,
    QueueKey,
    QueueRecord,
    SendOutcome,
    VisibilityOutcome,
)
from loosely.storage._common import QueueWaiters
from loosely.storage._fair import FairQueues
from loosely.storage.sqlite import claims, messages, moves, queues, sweeps
from loosely.storage.sqlite.archive import SqliteArchive
from loosely.storage.sqlite.datalock import DatabaseLock
from loosely.storage.sqlite.diskspace import DiskSpace
from loosely.storage.sqlite.documents import SqliteDocuments
from loosely.storage.sqlite.outbox import SqliteOutbox
from loosely.storage.sqlite.parked import ParkedReceive, ParkedReceives, Served
from loosely.storage.sqlite.reader import Reader
from loosely.storage.sqlite.schema import connect, migrate, pipelined
from loosely.storage.sqlite.wal import WalFile
from loosely.storage.sqlite.writer import Tx, Writer


class SqliteStore(QueueStore, SqliteDocuments, SqliteOutbox, SqliteArchive):
    """A `QueueStore`, `DocumentStore` and `OutboxStore` in one SQLite file.

    Every operation goes through one writer that owns the connection and commits concurrent
    work together (see `loosely.storage.sqlite.writer`): a method that returned has committed to
    disk. The one exception is `count_messages`, whose cost grows with the queue's not-visible
    messages: it reads on a second connection (`loosely.storage.sqlite.reader`) so that it never
    holds up writes.

    Being the only writer, the store keeps every queue record in memory, so queue lookups cost no
    round trip. Long polls wait on in-process wake-ups signalled after each commit.

    Documents and the outbox (`loosely.storage.sqlite.documents`, `loosely.storage.sqlite.outbox`)
    share the writer, so fanning a publication out into queues is one transaction.

    ``synchronous``: ``FULL`` (default: acknowledged = on disk, SQLite syncing inside each
    COMMIT), ``PIPELINED`` (the same guarantee, with the WAL synced on a thread of its own while
    the next groups run, see `loosely.storage.sqlite.wal`), ``NORMAL`` (durable against process
    crashes only) or ``OFF``; see `loosely.storage.sqlite.schema.connect`.

    ``disk_free_limit_bytes``: while less disk space than this is free, sends, publications and
    their fan-out are refused and everything that drains goes on (`loosely.storage.sqlite.diskspace`);
    0 (the default here; the server sets its own) never refuses.
    """

    def __init__(self, path: str, synchronous: str = "FULL", disk_free_limit_bytes: int = 0) -> None:
        self.path = path
        self.synchronous = synchronous
        self._pipelined = pipelined(path, synchronous)
        self._cache = queues.QueueCache()
        self._waiters = QueueWaiters()
        self._fair = FairQueues()  # fair queues: which hold grouped messages, their noisy tenants
        self._parked = ParkedReceives()
        self._sweeping: set[asyncio.Task[None]] = set()  # chunked work in the background (sweeps, rewrites)
        self._outbox_waiters = QueueWaiters()
        wal = WalFile(path) if self._pipelined else None
        self._writer = Writer(partial(self._connect), self._setup, wal=wal)
        # A private in-memory database is visible to one connection only: read through the writer.
        in_memory = path == ":memory:"
        self._reader = None if in_memory else Reader(self._connect)
        self._space = DiskSpace(
            os.path.dirname(path) or ".", 0 if in_memory else disk_free_limit_bytes, self._free_in_database
        )
        self._lock: DatabaseLock | None = None

    async def _free_in_database(self) -> int:
        """Bytes of the database file that are free pages (left by deletes, reused by later inserts)."""
        return int(await self._writer.submit(messages.free_bytes))

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
        return connect(self.path, self.synchronous, pipelined=self._pipelined)

    def _setup(self, conn: sqlite3.Connection) -> None:
        migrate(conn, time.time_ns() // 1_000_000)
        self._cache.load(conn)

    @property
    def groups_committed(self) -> int:
        """How many group commits the writer made (for tests and metrics)."""
        return self._writer.groups_committed

    def parked_receives(self, queue_id: int) -> int:
        """How many long polls wait on the queue with no claim made for them yet (for tests)."""
        return self._parked.parked(queue_id)

    # ---- life cycle ----

    async def open(self) -> None:
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._lock = DatabaseLock(self.path)  # before anything writes: one node per file
        try:
            await self._writer.start()
        except BaseException:
            self._release_lock()
            raise
        if self._reader is not None:
            self._reader.start()
        # Interrupted by a crash or a shutdown: finish them.
        swept, rewritten = await self._writer.submit(
            lambda tx: (sweeps.pending_sweeps(tx.conn), sweeps.pending_rewrites(tx.conn))
        )
        for queue_id in swept:
            self._sweep_in_background(queue_id)
        for queue_id in rewritten:
            self._rewrite_in_background(queue_id)

    async def close(self) -> None:
        for task in list(self._sweeping):
            task.cancel()  # a chunk already submitted still commits; the rest waits for the next start
        await asyncio.gather(*self._sweeping, return_exceptions=True)
        if self._reader is not None:
            await self._reader.stop()  # first, so the writer's closing checkpoint has no reader in its way
        try:
            await self._writer.stop()
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ---- queues ----

    async def create_queue(
        self,
        key: QueueKey,
        attributes: Mapping[str, str],
        tags: Mapping[str, str],
        retention_ms: int,
        now_ms: int,
        deleted_since_ms: int | None = None,
    ) -> tuple[QueueRecord, bool]:
        existing = self._cache.by_key(key)
        if existing is not None:
            return existing, False
        attributes, tags = dict(attributes), dict(tags)
        return await self._writer.submit(
            lambda tx: queues.create_queue(
                tx, self._cache, key, attributes, tags, retention_ms, now_ms, deleted_since_ms
            ),
            barrier=True,
        )

    async def get_queue(self, key: QueueKey, *, fresh: bool = False) -> QueueRecord | None:
        # One process owns the file: the writer's cache is the truth, so ``fresh`` changes nothing.
        return self._cache.by_key(key)

    async def get_queue_by_id(self, queue_id: int) -> QueueRecord | None:
        return self._cache.by_id(queue_id)

    async def list_queues(self, account_id: str, region: str, prefix: str = "") -> list[QueueRecord]:
        return self._cache.listing(account_id, region, prefix)

    async def update_queue(
        self,
        queue_id: int,
        now_ms: int,
        attributes: Mapping[str, str] | None = None,
        retention_ms: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> QueueRecord:
        """Answered once the stored messages' expiry follows a new retention period (rewritten in chunks)."""
        attrs = None if attributes is None else dict(attributes)
        tag_map = None if tags is None else dict(tags)

        def work(tx: Tx) -> tuple[QueueRecord, bool]:
            before = queues.queue_of(tx, queue_id).retention_ms
            record = queues.update_queue(tx, self._cache, queue_id, now_ms, attrs, retention_ms, tag_map)
            changed = record.retention_ms != before
            if not changed or not sweeps.start_retention_rewrite(tx.conn, queue_id, record.retention_ms):
                return record, True
            return record, sweeps.rewrite_chunk(tx, queue_id)  # the first span: often the only one

        # A new retention period rewrites a span of messages' expiry in this item: off the event loop.
        record, done = await self._writer.submit(work, bulk=retention_ms is not None, barrier=True)
        if not done:
            await asyncio.shield(self._rewrite_in_background(queue_id))
        return record

    async def delete_queue(self, queue_id: int, now_ms: int) -> None:
        """Gone at once; its messages, which nothing reaches any more, are deleted in the background."""

        def work(tx: Tx) -> bool:
            queues.delete_queue(tx, self._cache, queue_id, now_ms)
            sweeps.start_sweep(tx.conn, queue_id, sweeps.EVERY_MESSAGE)
            tx.on_commit(lambda: self._waiters.wake((queue_id,)))
            tx.on_commit(lambda: self._fair.forget(queue_id))
            return sweeps.sweep_chunk(tx, queue_id)  # the first chunk: all of a small queue

        if not await self._writer.submit(work, bulk=True, barrier=True):
            self._sweep_in_background(queue_id)

    async def purge_queue(self, queue_id: int, now_ms: int, min_interval_ms: int) -> None:
        """Answered once every message sent before is deleted, in chunks that let other work commit between.

        The chunks run in a task of their own, so a caller that goes away does not stop them.
        """

        def work(tx: Tx) -> bool:
            queues.purge_queue(tx, self._cache, queue_id, now_ms, min_interval_ms)
            sweeps.start_sweep(tx.conn, queue_id, now_ms)
            return sweeps.sweep_chunk(tx, queue_id)  # the first chunk: all of a small queue

        if not await self._writer.submit(work, bulk=True, barrier=True):
            await asyncio.shield(self._sweep_in_background(queue_id))
        self._waiters.wake((queue_id,))

    def _sweep_in_background(self, queue_id: int) -> asyncio.Task[None]:
        return self._in_background(lambda tx: sweeps.sweep_chunk(tx, queue_id))

    def _rewrite_in_background(self, queue_id: int) -> asyncio.Task[None]:
        return self._in_background(lambda tx: sweeps.rewrite_chunk(tx, queue_id))

    def _in_background(self, chunk: Callable[[Tx], bool]) -> asyncio.Task[None]:
        """Run ``chunk`` as work items, one at a time, until it says it is done (`loosely.storage.sqlite.sweeps`).

        In a task of its own, so that a caller that goes away does not stop it. Two tasks may work on
        the same queue at once (a purge during a resumed sweep): each chunk does what is left, so they
        only share the work.
        """

        async def run() -> None:
            while not await self._writer.submit(chunk, bulk=True):
                pass

        task = asyncio.create_task(run(), name="loosely-chunks")
        self._sweeping.add(task)
        task.add_done_callback(self._sweeping.discard)
        return task

    async def settle_sweeps(self) -> None:
        """Wait for the chunked work running in the background (deleted queues' sweeps, resumed ones) to end."""
        while self._sweeping:
            await asyncio.gather(*self._sweeping, return_exceptions=True)

    async def count_messages(self, queue_id: int, now_ms: int) -> QueueCounts:
        self._require(queue_id)
        if self._reader is not None:
            return await self._reader.run(lambda conn: messages.count_messages(conn, queue_id, now_ms))
        return await self._writer.submit(lambda tx: messages.count_messages(tx.conn, queue_id, now_ms), bulk=True)

    # ---- messages ----

    async def send_messages(
        self, queue_id: int, messages_: Sequence[NewMessage], now_ms: int, dedup_window_ms: int
    ) -> list[SendOutcome]:
        self._require(queue_id)
        batch = list(messages_)
        size = sum(len(m.body) + len(m.meta) for m in batch)
        if not self._space.admit_at_once(size):
            await self._space.admit(size)
        served = Served(queue_id)

        def wake() -> None:
            self._parked.wake(self._waiters, served)

        sent = self._writer.enqueue(
            lambda tx: messages.send_messages(tx, self._waiters, queue_id, batch, now_ms, dedup_window_ms, wake)
        )
        self._serve_parked(served, batch, now_ms)
        return await sent

    def _serve_parked(self, served: Served, batch: Sequence[NewMessage], now_ms: int) -> None:
        """Right behind a send just enqueued: claims for the receives parked on its queue that its messages
        can fill, to run in the send's group (see parked.py). The send's wake-up reads ``served``."""
        served.last = self._parked.serve(
            served.queue_id, batch, now_ms, lambda parked, request: self._enqueue_parked_claim(parked, request, served)
        )

    async def claim_messages(self, queue_id: int, request: ClaimRequest) -> ClaimResult:
        self._require(queue_id)
        made = self._parked.take(queue_id)
        if made is not None:
            try:
                result = await made
            except Exception:  # the claim of its own below meets the same error, if any
                result = None
            if result is not None and result.messages:
                return result
        self._waiters.before_claim(queue_id)
        self._parked.claiming(queue_id, request)
        return await self._enqueue_claim(queue_id, request)

    def _enqueue_claim(self, queue_id: int, request: ClaimRequest) -> asyncio.Future[ClaimResult]:
        return self._writer.enqueue(lambda tx: claims.claim_messages(tx, self._waiters, self._fair, queue_id, request))

    def _enqueue_parked_claim(
        self, parked: ParkedReceive, request: ClaimRequest, served: Served
    ) -> asyncio.Future[ClaimResult]:
        def work(tx: Tx) -> ClaimResult:
            if served.last is parked:
                served.drained = False  # until this claim has run (again, if the group is run again)
            if parked.gone:  # its client went away before the group started: leave the messages visible
                return ClaimResult(messages=[])
            result = claims.claim_messages(tx, self._waiters, self._fair, parked.queue_id, request)
            if served.last is parked:
                served.drained = _nothing_left(tx, parked.queue_id, request, result)
            return result

        return self._writer.enqueue(work)

    async def delete_messages(
        self,
        queue_id: int,
        refs: Sequence[MessageRef],
        *,
        now_ms: int | None = None,
        received_ms: Sequence[int] | None = None,
    ) -> list[DeleteOutcome]:
        self._require(queue_id)
        batch = list(refs)
        if now_ms is None or received_ms is None or not self._fair.grouped(queue_id):
            return await self._writer.submit(
                lambda tx: messages.delete_messages(tx, self._waiters, queue_id, batch, now_ms)
            )
        fair, received = self._fair, list(received_ms)

        def delete_timed(tx: Tx) -> list[DeleteOutcome]:
            outcomes, groups = messages.delete_grouped_messages(tx, self._waiters, queue_id, batch)
            tx.on_commit(lambda: fair.deleted(queue_id, now_ms, groups, received, outcomes))
            return outcomes

        return await self._writer.submit(delete_timed)

    async def change_visibility(
        self, queue_id: int, changes: Sequence[tuple[MessageRef, int]], now_ms: int
    ) -> list[VisibilityOutcome]:
        self._require(queue_id)
        batch = list(changes)
        return await self._writer.submit(
            lambda tx: messages.change_visibility(tx, self._waiters, queue_id, batch, now_ms)
        )

    async def expire_messages(self, now_ms: int, limit: int) -> int:
        return await self._writer.submit(lambda tx: messages.expire_messages(tx, now_ms, limit), bulk=True)

    async def wait_for_messages(self, queue_id: int, timeout_s: float) -> None:
        with self._parked.parking(queue_id, timeout_s) as parked:
            await self._waiters.wait(queue_id, timeout_s, parked)

    def end_waits(self) -> None:
        self._waiters.end()  # the outbox's waiters are the SNS workers': they stop after the requests

    # ---- message move tasks ----

    async def create_move_task(self, task: MoveTask) -> None:
        await self._writer.submit(lambda tx: moves.create_move_task(tx, task))

    async def get_move_task(self, task_handle: str) -> MoveTask | None:
        return await self._writer.submit(lambda tx: moves.get_move_task(tx.conn, task_handle))

    async def list_move_tasks(self, source_arn: str, limit: int) -> list[MoveTask]:
        return await self._writer.submit(lambda tx: moves.list_move_tasks(tx.conn, source_arn, limit))

    async def update_move_task(self, task: MoveTask) -> None:
        await self._writer.submit(lambda tx: moves.update_move_task(tx, task))

    async def lease_move_task(self, owner: str, now_ms: int, lease_ms: int) -> MoveTask | None:
        return await self._writer.submit(lambda tx: moves.lease_move_task(tx, owner, now_ms, lease_ms))

    async def move_messages(
        self, source_queue_id: int, destination_queue_id: int | None, limit: int, now_ms: int
    ) -> int:
        return await self._writer.submit(
            lambda tx: moves.move_messages(tx, self._waiters, source_queue_id, destination_queue_id, limit, now_ms),
            bulk=True,
        )

    # ---- helpers ----

    def _require(self, queue_id: int) -> None:
        """Fail fast, without a trip to the writer, for a queue that does not exist (the writer checks again)."""
        if self._cache.by_id(queue_id) is None:
            raise QueueDoesNotExist()


def _nothing_left(tx: Tx, queue_id: int, request: ClaimRequest, result: ClaimResult) -> bool:
    """Whether nothing is left visible on a (standard) queue right after this claim on it.

    A claim that took fewer messages than it could, without stopping early (then it says the next
    one is visible now: `claims.MAX_PASSED_OVER`), took or passed over every visible message: no
    query needed. A FIFO queue's claim stops at blocked groups, so it tells nothing there.
    """
    took_all = len(result.messages) < request.max_messages and result.next_visible_at_ms != request.now_ms
    if took_all and not queues.queue_of(tx, queue_id).key.fifo:
        return True
    return claims.nothing_visible(tx, queue_id, request.now_ms)
