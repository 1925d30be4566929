"""Wake-ups across nodes: one LISTEN connection per store, asyncio futures per queue.

Writers (sends, visibility changes, dead-letter moves, redrives) call ``pg_notify(channel,
queue_id)`` inside their transaction while some other node has registered receivers waiting on
the queue (see `_wake`), so a notification is delivered exactly when the change commits, to every
node listening on the store's channel. The writer wakes its own node's waiters itself once the
commit returns (its registrations never make it notify). The listener turns each payload into a
wake-up of the local receivers waiting on that queue. Changes of a queue row
(attributes, purge, deletion) notify ``c<queue id>``, which also drops the node's cached record of
the queue (`_queuecache`).

A notification can be lost (the listener reconnecting, a node that crashed between commit and
delivery), so waiting is also bounded by ``fallback_s``: a lost wake-up only delays a receiver
by that much. Reconnection wakes every waiter, because notifications may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg

logger = logging.getLogger(__name__)

# Payload prefix of "the queue row changed" (attributes, purge, deletion): nodes drop their cached
# record of the queue (see `_queuecache`) and wake its waiters. A bare id only wakes waiters.
CHANGED_PREFIX = "c"


class Waiters:
    """Local receivers waiting per queue id (single event loop; no locking needed).

    Every wake-up also advances the queue's epoch, so a receiver that read the epoch before its
    (empty) claim can tell that a wake-up arrived between the claim and its wait, and not sleep.

    Each waiter says how many messages it will claim when woken (``want``). A send may `reserve`
    that room for the messages it is writing: when the node's own waiters can take them all, the
    send needs no NOTIFY (the node wakes them itself after the commit), so the other nodes' waiters
    are not woken for messages they would only find already taken. Reservations last until the
    queue's next wake-up, which wakes every waiter that was counted.
    """

    def __init__(self) -> None:
        self._by_queue: dict[int, dict[asyncio.Future[None], int]] = {}
        self._reserved: dict[int, int] = {}
        self._epochs: dict[int, int] = {}
        self._all = 0  # wake_all calls: part of every queue's epoch

    def epoch(self, queue_id: int) -> int:
        """A number that grows with every wake-up of ``queue_id`` (both parts only ever increase)."""
        return self._all + self._epochs.get(queue_id, 0)

    async def wait(self, queue_id: int, timeout_s: float, since: int | None = None, want: int = 0) -> None:
        """Return when `wake` is called for ``queue_id`` (or `wake_all`), or after ``timeout_s``.

        With ``since`` (an earlier `epoch`), return at once if a wake-up came after it. ``want``:
        the messages this waiter will claim once woken (0: it will not claim, e.g. the outbox's).
        """
        if timeout_s <= 0 or (since is not None and self.epoch(queue_id) != since):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._by_queue.setdefault(queue_id, {})
        waiting[future] = want
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, timeout_s)
        finally:
            waiting.pop(future, None)
            if not waiting and self._by_queue.get(queue_id) is waiting:
                del self._by_queue[queue_id]

    def reserve(self, queue_id: int, messages: int) -> bool:
        """Claim room for ``messages`` among the waiters of ``queue_id`` not yet reserved; False if too little."""
        room = sum(self._by_queue.get(queue_id, {}).values()) - self._reserved.get(queue_id, 0)
        if messages > room:
            return False
        self._reserved[queue_id] = self._reserved.get(queue_id, 0) + messages
        return True

    def wake(self, queue_id: int) -> int:
        """Wake the waiters of ``queue_id``; return how many messages they will claim (their ``want``)."""
        self._epochs[queue_id] = self._epochs.get(queue_id, 0) + 1
        self._reserved.pop(queue_id, None)
        woken = 0
        for future, want in self._by_queue.pop(queue_id, {}).items():
            if not future.done():
                future.set_result(None)
                woken += want
        return woken

    def wake_all(self) -> None:
        self._all += 1
        for queue_id in list(self._by_queue):
            self.wake(queue_id)

    def waiting(self, queue_id: int) -> int:
        return len(self._by_queue.get(queue_id, ()))


class Listener:
    """Keeps one connection LISTENing on ``channel`` and reconnects it for as long as it runs."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        on_notify: Callable[[int], object],
        on_reconnect: Callable[[], None],
        on_change: Callable[[int], None] | None = None,
        *,
        connect_timeout_s: float = 3.0,
        ping_interval_s: float = 5.0,
        retry_max_s: float = 2.0,
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._on_change = on_change
        self._connect_timeout_s = connect_timeout_s
        self._ping_interval_s = ping_interval_s
        self._retry_max_s = retry_max_s
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self.connected = asyncio.Event()
        self._ever_connected = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"loosely-listen-{self._channel}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()

    async def _run(self) -> None:
        delay_s = 0.1
        while True:
            try:
                await self._listen_once()
            except (psycopg.Error, OSError, TimeoutError) as error:
                logger.warning("listener on %s lost its connection: %s", self._channel, error)
            self.connected.clear()
            await self._close()
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self._retry_max_s)

    async def _listen_once(self) -> None:
        conn = await asyncio.wait_for(
            psycopg.AsyncConnection.connect(self._conninfo, autocommit=True), self._connect_timeout_s
        )
        self._conn = conn
        await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self._channel)))
        if self._ever_connected:
            self._on_reconnect()  # notifications may have been missed while disconnected
        self._ever_connected = True
        self.connected.set()
        while True:
            async for notify in conn.notifies(timeout=self._ping_interval_s):
                self._dispatch(notify.payload)
            # No traffic for a while: prove the link is alive, or raise and reconnect.
            await asyncio.wait_for(conn.execute("SELECT 1"), self._connect_timeout_s)

    def _dispatch(self, payload: str) -> None:
        changed = payload.startswith(CHANGED_PREFIX)
        try:
            queue_id = int(payload[len(CHANGED_PREFIX) :] if changed else payload)
        except ValueError:
            logger.warning("ignoring notification with payload %r on %s", payload, self._channel)
            return
        if changed and self._on_change is not None:
            self._on_change(queue_id)
        self._on_notify(queue_id)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
