"""PostgresStore: the queue store shared by many loosely nodes through one PostgreSQL database.

Every operation borrows a pooled autocommit connection, runs one statement or one short
transaction (see `_messages` and `_sql` for the locking rules), and returns it. Two things are
kept in memory: facts that never change for a queue id (whether it is FIFO; ids are never reused),
and recently read queue records, which every node drops when any node changes the queue (a
notification sent by the change's transaction; `_queuecache` explains why that is safe).

Failure behaviour: an operation that cannot get a connection within ``pool_timeout_s``, or that
does not finish within its deadline, raises ``ServiceUnavailable`` instead of hanging; the
connection it used is cancelled in the background. Dead connections are purged by checking the
pool as soon as one fails, and both the pool and the LISTEN connection reconnect on their own
when the database comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import conninfo as pg_conninfo

from loosely.core.errors import (
    PurgeQueueInProgress,
    QueueDeletedRecently,
    QueueDoesNotExist,
    ServiceUnavailable,
)
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
from loosely.storage._fair import NONE_NOISY, FairQueues
from loosely.storage.postgres import _messages, _tasks
from loosely.storage.postgres._archive import PostgresArchive
from loosely.storage.postgres._deadline import Deadline
from loosely.storage.postgres._documents import PostgresDocuments
from loosely.storage.postgres._errors import UNAVAILABLE_MESSAGE, is_transient_conflict, map_errors
from loosely.storage.postgres._messages import Conn, Row
from loosely.storage.postgres._migrate import migrate
from loosely.storage.postgres._notify import Listener, Waiters
from loosely.storage.postgres._outbox import OUTBOX_WAKE_KEY, PostgresOutbox
from loosely.storage.postgres._queuecache import QueueCache
from loosely.storage.postgres._rounds import Rounds
from loosely.storage.postgres._sql import Sql, channel_name, check_schema_name
from loosely.storage.postgres._wake import REGISTRATION_TTL_S, Registrations

logger = logging.getLogger(__name__)
_NUL = "\x00"

T = TypeVar("T")

# libpq settings applied unless the URL sets them: fail fast and notice dead peers quickly.
_CONNINFO_DEFAULTS = {
    "connect_timeout": "3",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
    "application_name": "loosely",
}
_OPTIONS = {
    "pool_timeout_s": 3.0,  # wait at most this long for a pooled connection
    "op_timeout_s": 10.0,  # deadline of an ordinary operation
    "bulk_timeout_s": 120.0,  # deadline of purge, delete_queue and retention re-stamping
    "wake_fallback_s": 1.0,  # longest a waiting receiver sleeps without a notification
    "max_idle_s": 300.0,  # pooled connections idle longer than this are closed
    "queue_cache_s": 1.0,  # longest a queue record is reused without being read again (0: never reused)
}
_DEFAULT_SCHEMA = "loosely"
# loosely's own URL query parameters, taken out before libpq (which rejects them) sees the URL.
_URL_SETTINGS = ("schema", "pool_min", "pool_max", *_OPTIONS)
_UNREGISTERED_POLL_S = 0.25  # longest wait while this node could not register as waiting
_RETRIES = 3  # attempts of a transaction that hit a deadlock or serialization failure
# Group commit of standard sends, deletes and claims (see _coalesce and _rounds): rounds written at
# once per node, at most half the pool, so other operations find connections too. Measured on 2
# cores: 1 writer halved send throughput, 4 beat 2 slightly (PostgreSQL shares the WAL flush of
# concurrent commits).
_MAX_WRITERS = 4


class PostgresStore(QueueStore, PostgresDocuments, PostgresOutbox, PostgresArchive):
    """`QueueStore`, `DocumentStore` and `OutboxStore` on PostgreSQL; ``url`` is a libpq URL or DSN,
    ``schema`` isolates one deployment. Documents and the outbox live in `_documents` and `_outbox`.

    A URL may carry loosely's own settings as query parameters, which are taken out before libpq
    sees it: ``?schema=name`` (default ``loosely``), ``pool_min``, ``pool_max`` and the ``options``
    below (e.g. ``?schema=prod&pool_max=20&op_timeout_s=5``). Keyword arguments given explicitly
    must agree with them.

    ``options``: ``pool_timeout_s``, ``op_timeout_s``, ``bulk_timeout_s``, ``wake_fallback_s``,
    ``max_idle_s``, ``queue_cache_s`` (seconds; see ``_OPTIONS`` for defaults).
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_min: int | None = None,
        pool_max: int | None = None,
        **options: float,
    ) -> None:
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown PostgresStore options: {', '.join(sorted(unknown))}")
        url, from_url = split_url_settings(url)
        schema = _agree("schema", schema, from_url.get("schema"), _DEFAULT_SCHEMA)
        pool_min = int(_agree("pool_min", pool_min, from_url.get("pool_min"), 2))
        pool_max = int(_agree("pool_max", pool_max, from_url.get("pool_max"), 10))
        for name in set(_OPTIONS) & set(from_url):
            options[name] = _agree(name, options.get(name), from_url[name], _OPTIONS[name])
        if not 0 <= pool_min <= pool_max or pool_max < 1:
            raise ValueError("need 0 <= pool_min <= pool_max and pool_max >= 1")
        self._settings = {**_OPTIONS, **{k: float(v) for k, v in options.items()}}
        self.schema = check_schema_name(schema)
        self.node_id = uuid.uuid4().hex
        self._conninfo = _with_defaults(url)
        self._sql = Sql(schema, self.node_id)
        self._channel = channel_name(schema)
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._pool: psycopg_pool.AsyncConnectionPool[Conn] | None = None
        self._waiters = Waiters()
        self._registrations = Registrations(self._register_waiting)
        # (queue id, wake-up epoch, messages wanted) as the current task last began a claim (per store):
        # see wait_for_messages.
        self._claim_epoch: contextvars.ContextVar[tuple[int, int, int] | None] = contextvars.ContextVar(
            f"loosely-claim-epoch-{self.node_id}", default=None
        )
        # The share of a wake-up this task was chosen for (`Waiters.wake_some`) and has not claimed yet.
        self._owed: contextvars.ContextVar[_Share | None] = contextvars.ContextVar(
            f"loosely-owed-{self.node_id}", default=None
        )
        self._listener = Listener(
            self._conninfo, self._channel, self._waiters.wake, self._reconnected, on_change=self._queue_changed
        )
        self._queues = QueueCache(self._settings["queue_cache_s"], self._listener.connected.is_set)
        self._fifo: dict[int, bool] = {}
        self._fair = FairQueues()  # fair queues: which hold grouped messages, their noisy tenants (this node's)
        self._writers = max(1, min(_MAX_WRITERS, pool_max // 2))
        self._rounds = Rounds(
            self._sql,
            self._channel,
            self._waiters,
            self._run,
            lambda queue_ids: self._in_background(self._notify(queue_ids)),
            max_writers=self._writers,
        )
        self._background: set[asyncio.Future[Any]] = set()
        # Queue lookups in flight: (statement, parameters, cache generation) -> the read (see _fetch_queue).
        self._lookups: dict[tuple[str, tuple[Any, ...], int], asyncio.Future[QueueRecord | None]] = {}
        self._checking = False

    # ---- life cycle ----

    async def open(self) -> None:
        pool: psycopg_pool.AsyncConnectionPool[Conn] = psycopg_pool.AsyncConnectionPool(
            self._conninfo,
            min_size=self._pool_min,
            max_size=self._pool_max,
            kwargs={"autocommit": True},
            timeout=self._settings["pool_timeout_s"],
            max_idle=self._settings["max_idle_s"],
            reconnect_timeout=3600.0,
            open=False,
            name=f"loosely-{self.schema}",
        )
        with map_errors():
            await pool.open(wait=False)
            self._pool = pool
            try:
                async with pool.connection() as conn:
                    await migrate(conn, self.schema)
            except BaseException:
                self._pool = None
                await pool.close()
                raise
        self._listener.start()
        # Receivers should not miss sends made right after open(): wait (briefly) for LISTEN.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings["pool_timeout_s"]):
                await self._listener.connected.wait()

    async def close(self) -> None:
        await self._rounds.close()
        await self._unregister_waiting()
        await self._listener.stop()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        self._waiters.wake_all()

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up (wake-ups from other nodes arrive at once)."""
        return self._listener.connected.is_set()

    async def drop_schema(self) -> None:
        """Remove the schema and everything in it (tests and decommissioning; not part of the port)."""
        await self._run(lambda conn: conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))

    # ---- plumbing ----

    def _reconnected(self) -> None:
        """The LISTEN connection is back: notifications may have been missed while it was down."""
        self._queues.clear()
        self._waiters.wake_all()

    def _queue_changed(self, queue_id: int) -> None:
        self._queues.invalidate(queue_id)
        self._fair.forget(queue_id)  # a deleted queue's state would stay forever; a changed one's is relearned

    @contextlib.contextmanager
    def _forget_if_gone(self, queue_id: int) -> Iterator[None]:
        """A queue the cache still named was deleted (its notification not yet here): forget it now."""
        try:
            yield
        except QueueDoesNotExist:
            self._queues.invalidate(queue_id)
            raise

    async def _run(self, work: Callable[[Conn], Awaitable[T]], *, bulk: bool = False) -> T:
        """Run ``work`` on a pooled connection within the operation's deadline.

        At the deadline the caller gets ``ServiceUnavailable``: the connection in use is severed
        rather than the query cancelled, because psycopg waits for a cancellation to be answered,
        which a dead link never does (see `_deadline`).
        """
        seconds = self._settings["bulk_timeout_s" if bulk else "op_timeout_s"]
        with Deadline(seconds) as deadline:
            try:
                return await self._attempts(work, deadline)
            except asyncio.CancelledError as error:
                if not deadline.owns(error):
                    raise
            except ServiceUnavailable:
                if not deadline.expired:
                    raise
        logger.warning("queue store operation exceeded its %.1f s deadline", seconds)
        raise ServiceUnavailable(UNAVAILABLE_MESSAGE)

    async def _attempts(self, work: Callable[[Conn], Awaitable[T]], deadline: Deadline | None = None) -> T:
        if self._pool is None:
            raise ServiceUnavailable(UNAVAILABLE_MESSAGE)
        for attempt in range(1, _RETRIES + 1):
            try:
                with map_errors(self._connection_lost):
                    async with self._pool.connection() as conn:
                        if deadline is None:
                            return await work(conn)
                        deadline.conn = conn
                        try:
                            return await work(conn)
                        finally:
                            deadline.conn = None
            except ServiceUnavailable as error:
                if attempt == _RETRIES or not is_transient_conflict(error.__cause__ or error):
                    raise
                logger.info("retrying a transaction after %s", error.__cause__)
        raise AssertionError("unreachable")

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so it is not reported as lost

    def _connection_lost(self) -> None:
        """A connection failed: check the idle ones now rather than hand out more dead ones."""
        if self._checking or self._pool is None:
            return
        self._checking = True
        task = asyncio.get_running_loop().create_task(self._check_pool(self._pool))
        self._background.add(task)
        task.add_done_callback(self._forget)

    async def _check_pool(self, pool: psycopg_pool.AsyncConnectionPool[Conn]) -> None:
        try:
            with contextlib.suppress(Exception):
                await pool.check()
        finally:
            self._checking = False

    async def _is_fifo(self, queue_id: int) -> bool:
        known = self._fifo.get(queue_id)
        if known is not None:
            return known

        async def fetch(conn: Conn) -> Row | None:
            cur = await conn.execute(self._sql.queue_kind, (queue_id,))
            return await cur.fetchone()

        row = await self._run(fetch)
        if row is None:
            raise QueueDoesNotExist()
        self._fifo[queue_id] = bool(row[0])
        return self._fifo[queue_id]

    async def _fetch_queue(self, statement: str, params: tuple[Any, ...], *, share: bool = True) -> QueueRecord | None:
        """Read a queue record (and cache it); concurrent lookups of the same queue share one read.

        When a record expires every request to the queue misses at once: under load a dozen lookups
        of one queue, each a statement and a pool checkout, where one does. A lookup joins a read
        only if no invalidation came since that read began (the generation is part of the key), so
        it never gets a record older than one it would have read itself. ``share=False``: a read
        of its own (management actions, which must see every change committed before they began).
        """
        if not share:
            return await self._read_queue(statement, params)
        key = (statement, params, self._queues.generation)
        pending = self._lookups.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._read_queue(statement, params))
            self._lookups[key] = pending
            self._background.add(pending)
            pending.add_done_callback(self._forget)
            pending.add_done_callback(lambda _: self._lookups.pop(key, None))
        return await asyncio.shield(pending)

    async def _read_queue(self, statement: str, params: tuple[Any, ...]) -> QueueRecord | None:
        async def fetch(conn: Conn) -> Row | None:
            cur = await conn.execute(statement, params)
            return await cur.fetchone()

        generation, read_at = self._queues.generation, self._queues.now()
        row = await self._run(fetch)
        if row is None:
            return None
        record = _queue_record(row)
        self._queues.put(record, generation, read_at)
        return record

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
        params = {
            "account": key.account_id,
            "region": key.region,
            "name": key.name,
            "fifo": key.fifo,
            "attributes": json.dumps(dict(attributes)),
            "tags": json.dumps(dict(tags)),
            "now": now_ms,
            "retention": retention_ms,
        }
        lookup = (key.account_id, key.region, key.name)

        async def create(conn: Conn) -> tuple[QueueRecord, bool] | None:
            async with conn.transaction():
                cur = await conn.execute(self._sql.insert_queue, params)
                row = await cur.fetchone()
                if row is None:
                    cur = await conn.execute(self._sql.queue_by_key, lookup)
                    existing = await cur.fetchone()
                    return None if existing is None else (_queue_record(existing), False)
                if deleted_since_ms is not None:
                    cur = await conn.execute(self._sql.tombstone, lookup)
                    tomb = await cur.fetchone()
                    if tomb is not None and tomb[0] >= deleted_since_ms:
                        raise QueueDeletedRecently(
                            "You must wait 60 seconds after deleting a queue before you can create another with the"
                            " same name."
                        )
                return _queue_record(row), True

        for _ in range(_RETRIES):  # None: the existing queue was deleted between insert and lookup
            result = await self._run(create)
            if result is not None:
                self._fifo[result[0].id] = key.fifo
                return result
        raise ServiceUnavailable(UNAVAILABLE_MESSAGE)

    async def get_queue(self, key: QueueKey, *, fresh: bool = False) -> QueueRecord | None:
        cached = None if fresh else self._queues.by_key(key)
        if cached is not None:
            return cached
        if _NUL in key.name:  # PostgreSQL text cannot hold it, so no stored queue has it in its name
            return None
        params = (key.account_id, key.region, key.name)
        return await self._fetch_queue(self._sql.queue_by_key, params, share=not fresh)

    async def get_queue_by_id(self, queue_id: int) -> QueueRecord | None:
        cached = self._queues.by_id(queue_id)
        if cached is not None:
            return cached
        return await self._fetch_queue(self._sql.queue_by_id, (queue_id,))

    async def list_queues(self, account_id: str, region: str, prefix: str = "") -> list[QueueRecord]:
        if _NUL in prefix:  # no stored name has it (see get_queue)
            return []

        async def fetch(conn: Conn) -> list[Row]:
            cur = await conn.execute(self._sql.list_queues, (account_id, region, prefix))
            return await cur.fetchall()

        return [_queue_record(row) for row in await self._run(fetch)]

    async def update_queue(
        self,
        queue_id: int,
        now_ms: int,
        attributes: Mapping[str, str] | None = None,
        retention_ms: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> QueueRecord:
        params = {
            "q": queue_id,
            "now": now_ms,
            "attributes": None if attributes is None else json.dumps(dict(attributes)),
            "tags": None if tags is None else json.dumps(dict(tags)),
            "retention": retention_ms,
        }

        async def update(conn: Conn) -> Row:
            async with conn.transaction():
                cur = await conn.execute(self._sql.lock_queue, (queue_id,))
                current = await cur.fetchone()
                if current is None:
                    raise QueueDoesNotExist()
                cur = await conn.execute(self._sql.update_queue, params)
                row = await cur.fetchone()
                assert row is not None  # locked above
                if retention_ms is not None and retention_ms != current[0]:
                    await conn.execute(self._sql.restamp_expiry, params)
                await conn.execute(self._sql.notify_changed, {"channel": self._channel, "q": queue_id})
                return row

        try:
            return _queue_record(await self._run(update, bulk=retention_ms is not None))
        finally:
            self._queues.invalidate(queue_id)

    async def delete_queue(self, queue_id: int, now_ms: int) -> None:
        async def delete(conn: Conn) -> bool:
            async with conn.pipeline(), conn.transaction():
                cur = await conn.execute(self._sql.delete_queue, {"q": queue_id, "now": now_ms})
                await conn.execute(self._sql.delete_queue_rows, {"q": queue_id})
                await conn.execute(self._sql.delete_queue_counts, {"q": queue_id})
                await conn.execute(self._sql.notify_changed, {"channel": self._channel, "q": queue_id})
            return await cur.fetchone() is not None

        try:
            existed = await self._run(delete, bulk=True)
        finally:
            self._queues.invalidate(queue_id)
            self._fair.forget(queue_id)
        self._waiters.wake(queue_id)
        if not existed:
            raise QueueDoesNotExist()

    async def purge_queue(self, queue_id: int, now_ms: int, min_interval_ms: int) -> None:
        params = {"q": queue_id, "now": now_ms, "interval": min_interval_ms}

        async def purge(conn: Conn) -> None:
            async with conn.transaction():
                cur = await conn.execute(self._sql.mark_purge, params)
                row = await cur.fetchone()
                if row is None:
                    cur = await conn.execute(self._sql.queue_kind, (queue_id,))
                    if await cur.fetchone() is None:
                        raise QueueDoesNotExist()
                    raise PurgeQueueInProgress(
                        "Only one PurgeQueue operation on the queue is allowed every 60 seconds."
                    )
                groups: list[str] = []
                if row[0]:
                    cur = await conn.execute(self._sql.lock_all_groups, (queue_id,))
                    groups = [g for (g,) in await cur.fetchall()]
                await conn.execute(self._sql.purge_messages, params)
                if groups:
                    pairs = {"queue_ids": [queue_id] * len(groups), "group_ids": groups}
                    await conn.execute(self._sql.recompute_groups, pairs)
                await conn.execute(self._sql.notify_changed, {"channel": self._channel, "q": queue_id})

        try:
            await self._run(purge, bulk=True)
        finally:
            self._queues.invalidate(queue_id)  # the record carries last_purge_ms (FIFO deduplication keys)

    async def count_messages(self, queue_id: int, now_ms: int) -> QueueCounts:
        async def count(conn: Conn) -> Row | None:
            cur = await conn.execute(self._sql.count_messages, {"q": queue_id, "now": now_ms})
            return await cur.fetchone()

        row = await self._run(count)
        if row is None or not row[0]:
            raise QueueDoesNotExist()
        _exists, total, expired, in_flight, delayed = row
        return QueueCounts(visible=max(total - expired - in_flight - delayed, 0), in_flight=in_flight, delayed=delayed)

    # ---- messages ----

    async def send_messages(
        self, queue_id: int, messages: Sequence[NewMessage], now_ms: int, dedup_window_ms: int
    ) -> list[SendOutcome]:
        if not messages:
            return []
        sql, channel = self._sql, self._channel
        with self._forget_if_gone(queue_id):
            if await self._is_fifo(queue_id):
                try:
                    return await self._run(
                        lambda conn: _messages.send_fifo(
                            conn, sql, channel, queue_id, messages, now_ms, dedup_window_ms
                        )
                    )
                finally:  # after the commit (or a failure that may hide one): no NOTIFY wakes this node's waiters
                    self._waiters.wake(queue_id)
            return await self._rounds.send(queue_id, messages)  # the writer wakes the waiters

    async def _notify(self, queue_ids: Sequence[int]) -> None:
        """Notify the other nodes' waiters on these queues: a send expected this node's to take its messages."""
        params = {
            "channel": self._channel,
            "queue_ids": list(queue_ids),
            "wake_key": self._sql.wake_key,
            "node": self._sql.node,
        }
        with contextlib.suppress(ServiceUnavailable):  # they wake by the fallback instead
            await self._run(lambda conn: conn.execute(self._sql.notify, params))

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._forget)

    async def claim_messages(self, queue_id: int, request: ClaimRequest) -> ClaimResult:
        """Claim; a receiver chosen by a partial wake-up passes it on when it may have left messages behind.

        Chosen (`Waiters.wake_some`), a receiver was one of just enough to take what was written. A
        full claim may have left more (other writes, other nodes' messages): the next waiters' worth
        is woken, and so on until a claim comes back short, which means the queue had no more
        visible messages. A claim that fails takes nothing, so the whole share is passed on.
        """
        share = self._take_share()
        if share is not None and share.queue_id != queue_id:
            self._pass_on(share)
            share = None
        try:
            result = await self._claim(queue_id, request)
        except BaseException:
            if share is not None:
                self._pass_on(share)
            raise
        if share is not None and len(result.messages) >= request.max_messages:
            self._waiters.wake_some(queue_id, request.max_messages)
        return result

    def _owe(self, queue_id: int, want: int) -> None:
        """This task was chosen to claim ``want`` of ``queue_id``'s messages: until it claims (or waits again),
        its share is owed, and passed on should the task end first (e.g. the client went away)."""
        share = _Share(queue_id, want, asyncio.current_task(), self._waiters)
        if share.task is not None:
            share.task.add_done_callback(share.task_done)
        self._owed.set(share)

    def _take_share(self) -> _Share | None:
        share = self._owed.get()
        if share is not None:
            self._owed.set(None)
            share.settled = True
            if share.task is not None:
                share.task.remove_done_callback(share.task_done)
        return share

    def _pass_on(self, share: _Share) -> None:
        self._waiters.wake_some(share.queue_id, share.want)

    async def _claim(self, queue_id: int, request: ClaimRequest) -> ClaimResult:
        self._claim_epoch.set((queue_id, self._waiters.epoch(queue_id), request.max_messages))
        fifo = request.fifo or await self._is_fifo(queue_id)
        sql, channel = self._sql, self._channel
        noisy = NONE_NOISY if fifo else self._fair.noisy(queue_id, request.now_ms)
        if noisy is None:
            noisy = await self._detect_noisy(queue_id, request.now_ms)
        if not fifo and not noisy and request.dead_letter is None and request.attempt_id is None:
            with self._forget_if_gone(queue_id):
                claimed, epoch = await self._rounds.claim(queue_id, request)
            self._claim_epoch.set((queue_id, epoch, request.max_messages))
            self._fair.learn(queue_id, claimed.messages)
            return claimed

        async def claim(conn: Conn) -> tuple[ClaimResult, list[int]]:
            if request.attempt_id is not None:
                replayed = await _messages.replay_attempt(conn, sql, queue_id, request, fifo)
                if replayed is not None:
                    return ClaimResult(replayed), []
            if fifo:
                result, woken = await _messages.claim_fifo(conn, sql, channel, queue_id, request)
            elif noisy:
                result, woken = await _messages.claim_standard_fair(conn, sql, channel, queue_id, request, noisy)
            else:
                result = await _messages.claim_standard(conn, sql, queue_id, request)
                woken = [request.dead_letter.queue_id] if result.moved_to_dead_letter and request.dead_letter else []
                if woken:
                    await conn.execute(
                        sql.notify, {"channel": channel, "queue_ids": woken, "wake_key": sql.wake_key, "node": sql.node}
                    )
                if request.attempt_id is not None and result.messages:
                    row_ids = [m.row_id for m in result.messages]
                    await _messages.save_attempt(conn, sql, queue_id, request, row_ids)
            if not result.messages:
                next_at = await _messages.next_visible(conn, sql, queue_id, request.now_ms, fifo)
                result = ClaimResult([], next_at, result.moved_to_dead_letter)
            return result, woken

        with self._forget_if_gone(queue_id):
            result, woken = await self._run(claim)
        for other in woken:
            self._waiters.wake(other)
        if not fifo:
            self._fair.learn(queue_id, result.messages)
        return result

    async def _detect_noisy(self, queue_id: int, now_ms: int) -> Mapping[str, int]:
        """Count the queue's in flight per group and keep the detection (this node's, see storage._fair)."""
        sql = self._sql
        counts = await self._run(lambda conn: _messages.in_flight_by_group(conn, sql, queue_id, now_ms))
        return self._fair.record(queue_id, now_ms, counts)

    async def delete_messages(
        self,
        queue_id: int,
        refs: Sequence[MessageRef],
        *,
        now_ms: int | None = None,
        received_ms: Sequence[int] | None = None,
    ) -> list[DeleteOutcome]:
        if not refs:
            return []
        if await self._is_fifo(queue_id):
            return await self._run(lambda conn: _messages.delete_fifo(conn, self._sql, queue_id, refs, now_ms))
        if now_ms is None or received_ms is None or not self._fair.grouped(queue_id):
            return await self._rounds.delete(queue_id, refs)
        # A fair queue's deletes tell this node's detection how long consumers worked on each tenant.
        sql = self._sql
        outcomes, groups = await self._run(lambda conn: _messages.delete_grouped(conn, sql, queue_id, refs))
        self._fair.deleted(queue_id, now_ms, groups, received_ms, outcomes)
        return outcomes

    async def change_visibility(
        self, queue_id: int, changes: Sequence[tuple[MessageRef, int]], now_ms: int
    ) -> list[VisibilityOutcome]:
        if not changes:
            return []
        fifo = await self._is_fifo(queue_id)
        sql, channel = self._sql, self._channel
        outcomes, visible_now = await self._run(
            lambda conn: _messages.change_visibility(conn, sql, channel, queue_id, changes, now_ms, fifo)
        )
        if visible_now:
            self._waiters.wake(queue_id)
        return outcomes

    async def expire_messages(self, now_ms: int, limit: int) -> int:
        return await self._run(lambda conn: _messages.expire(conn, self._sql, now_ms, limit), bulk=True)

    async def wait_for_messages(self, queue_id: int, timeout_s: float) -> None:
        """Wait for a wake-up of ``queue_id`` (at most ``wake_fallback_s``).

        Before the first wait on a queue (and whenever the registration would lapse during the
        wait) the node registers as waiting, so that sends to the queue notify. After a fresh
        registration a caller that claimed the queue before waiting gets a return at once, because
        only a claim made after the registration is sure to see every send that did not notify. A
        wake-up that arrived after this task's last claim of the queue began also returns at once.
        """
        unclaimed = self._take_share()
        if unclaimed is not None:  # woken to claim, it waits again instead (e.g. at the in-flight limit)
            self._pass_on(unclaimed)
        timeout_s = min(timeout_s, self._settings["wake_fallback_s"])
        if timeout_s <= 0:
            return
        claimed = self._claim_epoch.get()
        self._claim_epoch.set(None)  # one wait per claim: a wait without a claim before it waits for a wake-up
        since, want = (claimed[1], claimed[2]) if claimed is not None and claimed[0] == queue_id else (None, 0)
        if not self._registrations.covers(queue_id, timeout_s):
            if not await self._try_register(queue_id):
                timeout_s = min(timeout_s, _UNREGISTERED_POLL_S)  # sends may not notify: poll
            elif since is not None:
                return
        elif self._registrations.due(queue_id):
            await self._try_register(queue_id)  # still live: renewing it loses nothing
        if await self._waiters.wait(queue_id, timeout_s, since, want):
            self._owe(queue_id, want)

    def end_waits(self) -> None:
        self._waiters.end(keep=OUTBOX_WAKE_KEY)

    async def _try_register(self, queue_id: int) -> bool:
        """Register as waiting on ``queue_id``; False when the database is unavailable (timed polling)."""
        try:
            await self._registrations.ensure(queue_id)
        except ServiceUnavailable:
            return False
        return True

    async def _register_waiting(self, queue_id: int) -> None:
        params = {
            "node": self.node_id,
            "queue_ids": [queue_id],
            "wake_key": self._sql.wake_key,
            "ttl": int(REGISTRATION_TTL_S * 1000),
        }
        await self._run(lambda conn: conn.execute(self._sql.register_waiters, params))

    async def _unregister_waiting(self) -> None:
        """Delete this node's registrations, so sends stop notifying for it (best effort)."""
        if not self._registrations.forget() or self._pool is None:
            return
        with contextlib.suppress(ServiceUnavailable, psycopg.errors.UndefinedTable):  # schema dropped
            await self._run(lambda conn: conn.execute(self._sql.unregister_waiters, {"node": self.node_id}))

    # ---- message move tasks ----

    async def create_move_task(self, task: MoveTask) -> None:
        await self._run(lambda conn: _tasks.create_task(conn, self._sql, task))

    async def get_move_task(self, task_handle: str) -> MoveTask | None:
        async def fetch(conn: Conn) -> Row | None:
            cur = await conn.execute(self._sql.task_by_handle, (task_handle,))
            return await cur.fetchone()

        row = await self._run(fetch)
        return None if row is None else _tasks.move_task(row)

    async def list_move_tasks(self, source_arn: str, limit: int) -> list[MoveTask]:
        async def fetch(conn: Conn) -> list[Row]:
            cur = await conn.execute(self._sql.tasks_by_source, (source_arn, limit))
            return await cur.fetchall()

        return [_tasks.move_task(row) for row in await self._run(fetch)]

    async def update_move_task(self, task: MoveTask) -> None:
        await self._run(lambda conn: _tasks.update_task(conn, self._sql, task))

    async def lease_move_task(self, owner: str, now_ms: int, lease_ms: int) -> MoveTask | None:
        return await self._run(lambda conn: _tasks.lease_task(conn, self._sql, owner, now_ms, lease_ms))

    async def move_messages(
        self, source_queue_id: int, destination_queue_id: int | None, limit: int, now_ms: int
    ) -> int:
        source = (source_queue_id, await self._is_fifo(source_queue_id))
        sql, channel = self._sql, self._channel
        moved, woken = await self._run(
            lambda conn: _tasks.move_messages(conn, sql, channel, source, destination_queue_id, limit, now_ms),
            bulk=True,
        )
        for queue_id in woken:
            self._waiters.wake(queue_id)
        return moved


class _Share:
    """A chosen receiver's part of a partial wake-up (see `PostgresStore.claim_messages`)."""

    __slots__ = ("queue_id", "settled", "task", "waiters", "want")

    def __init__(self, queue_id: int, want: int, task: asyncio.Task[Any] | None, waiters: Waiters) -> None:
        self.queue_id = queue_id
        self.want = want
        self.task = task
        self.waiters = waiters
        self.settled = False

    def task_done(self, _task: asyncio.Task[Any]) -> None:
        """The task ended without claiming (e.g. cancelled before its claim): the next waiters take the share."""
        if not self.settled:
            self.settled = True
            self.waiters.wake_some(self.queue_id, self.want)


def _queue_record(row: Row) -> QueueRecord:
    return QueueRecord(
        id=row[0],
        key=QueueKey(account_id=row[1], region=row[2], name=row[3]),
        attributes=row[4],
        tags=row[5],
        created_ms=row[6],
        modified_ms=row[7],
        retention_ms=row[8],
        last_purge_ms=row[9],
    )


def split_url_settings(url: str) -> tuple[str, dict[str, str]]:
    """Take loosely's own query parameters (``schema``, pool sizes, timeouts) out of a URL.

    Returns the URL libpq should see and the settings found. Key=value DSNs pass through unchanged.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        return url, {}
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _URL_SETTINGS}
    rest = [(k, v) for k, v in query if k not in _URL_SETTINGS]
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


def _agree(name: str, given: Any, from_url: str | None, default: Any) -> Any:
    """The setting from the keyword argument or the URL (which must not contradict each other)."""
    if from_url is None:
        return default if given is None else given
    value = type(default)(from_url) if not isinstance(default, str) else from_url
    if given is not None and given != value:
        raise ValueError(f"{name} is {given!r} but the database URL says {from_url!r}")
    return value


def _with_defaults(url: str) -> str:
    """The URL with our libpq defaults for settings it leaves unset."""
    given = pg_conninfo.conninfo_to_dict(url)
    extra = {k: v for k, v in _CONNINFO_DEFAULTS.items() if k not in given}
    return pg_conninfo.make_conninfo(url, **extra)
